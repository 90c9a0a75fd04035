/** What several verbs share: loading the policy once, with problems printed the same way. */
import { loadPolicy, type Policy } from "../app.js";
import { type ConfigProblem, formatProblem, isUnreadableConfig } from "../config/index.js";
import { CliFailure, EXIT, type Io } from "./output.js";

export const DEFAULT_CONFIG = "writ.yaml";

/** Loads writ.yaml and its guardrails, or fails with every error printed (exit 1), or an unreadable file (exit 2). */
export async function requirePolicy(file: string, io: Io, json: boolean): Promise<Policy> {
  const { policy, problems } = await loadPolicy(file);
  if (policy) {
    if (!json) for (const p of problems) io.err(formatProblem(p));
    return policy;
  }
  const missing = problems.find(isUnreadableConfig);
  if (missing) throw new CliFailure(missing.code, missing.message, EXIT.usage);
  if (json) io.err(JSON.stringify({ error: { code: "ERR_CONFIG_INVALID", problems } }));
  else for (const p of problems) io.err(formatProblem(p));
  throw new CliFailure(
    "ERR_CONFIG_INVALID",
    `${file}: ${countErrors(problems)} error(s); run \`writ check\` for details`,
    EXIT.no,
  );
}

export function countErrors(problems: readonly ConfigProblem[]): number {
  return problems.filter((p) => p.severity === "error").length;
}
