import type { Path } from "../core/index.js";
import type { WritErrorCode } from "../error-codes.js";

/** One problem found while loading writ.yaml: where it is, a stable code and what is wrong. */
export interface ConfigProblem {
  readonly code: WritErrorCode;
  readonly severity: "error" | "warning";
  readonly file: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
  /** `agents.release-bot.playbooks[1]` */
  readonly path: string;
  readonly message: string;
}

export function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out.length === 0 ? seg : `.${seg}`;
  }
  return out;
}

/** `writ.yaml:12:7: agents.release-bot.playbooks[1]: unknown playbook \`rotate-cert\` [ERR_CONFIG_UNKNOWN_REF]` */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  const tag = p.severity === "warning" ? "warning: " : "";
  return `${where}: ${tag}${p.path ? `${p.path}: ` : ""}${p.message} [${p.code}]`;
}

const UNREADABLE = new Set([
  "ERR_CONFIG_FILE",
  "ERR_CONFIG_NOT_FILE",
  "ERR_CONFIG_TOO_LARGE",
  "ERR_CONFIG_ENCODING",
]);

/** A problem that says writ.yaml itself could not be read (the CLI's input error, exit 2). */
export function isUnreadableConfig(p: ConfigProblem): boolean {
  return p.path === "" && p.line === undefined && UNREADABLE.has(p.code);
}
