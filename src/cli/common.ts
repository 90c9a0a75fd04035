/** What several verbs share: loading the config once, with problems printed the same way. */
import { type ConfigProblem, formatProblem, type LoadResult, loadConfigFile } from "../config/index.js";
import { CliFailure, EXIT, type Io } from "./output.js";

export const DEFAULT_CONFIG = "writ.yaml";

/** Loads the config or fails with every error printed (exit 1), or a missing file (exit 2). */
export async function requireConfig(
  file: string,
  io: Io,
  json: boolean,
): Promise<Required<Pick<LoadResult, "config">> & LoadResult> {
  const loaded = await loadConfigFile(file);
  if (loaded.config) {
    if (!json) for (const p of loaded.problems) io.err(formatProblem(p));
    return loaded as Required<Pick<LoadResult, "config">> & LoadResult;
  }
  const missing = loaded.problems.find((p) => p.code === "ERR_CONFIG_FILE" && p.path === "");
  if (missing) throw new CliFailure(missing.code, missing.message, EXIT.usage);
  if (json) io.err(JSON.stringify({ error: { code: "ERR_CONFIG_INVALID", problems: loaded.problems } }));
  else for (const p of loaded.problems) io.err(formatProblem(p));
  throw new CliFailure(
    "ERR_CONFIG_INVALID",
    `${file}: ${countErrors(loaded.problems)} error(s); run \`writ check\` for details`,
    EXIT.no,
  );
}

export function countErrors(problems: readonly ConfigProblem[]): number {
  return problems.filter((p) => p.severity === "error").length;
}
