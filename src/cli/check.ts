/** `writ check`: load writ.yaml, report every problem at once. */
import type { Command } from "commander";
import { loadPolicy } from "../app.js";
import { formatProblem, isUnreadableConfig } from "../config/index.js";
import { countErrors, DEFAULT_CONFIG } from "./common.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

export interface CheckOptions {
  readonly config: string;
  readonly json: boolean;
  readonly strict: boolean;
}

export async function check(opts: CheckOptions, io: Io): Promise<number> {
  const loaded = await loadPolicy(opts.config);
  const missing = loaded.problems.find(isUnreadableConfig);
  if (missing) throw new CliFailure(missing.code, missing.message, EXIT.usage);
  const errors = countErrors(loaded.problems);
  const warnings = loaded.problems.length - errors;
  const ok = errors === 0 && (!opts.strict || warnings === 0);
  const c = loaded.policy?.config;
  emit(io, opts.json, { ok, file: opts.config, errors, warnings, problems: loaded.problems }, () => {
    const lines = loaded.problems.map(formatProblem);
    if (c) {
      lines.push(
        `${opts.config}: ${ok ? "ok" : "warnings treated as errors (--strict)"}: ${c.environments.size} environments, ` +
          `${c.runnerClasses.size} runner classes, ${c.agents.size} agents, ${c.playbooks.size} playbooks` +
          `${warnings > 0 ? `, ${warnings} warning(s)` : ""}`,
      );
    } else {
      lines.push(`${opts.config}: ${errors} error(s)${warnings > 0 ? `, ${warnings} warning(s)` : ""}`);
    }
    return lines.join("\n");
  });
  return ok ? EXIT.ok : EXIT.no;
}

export function registerCheck(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("check")
    .description("load writ.yaml and report every problem at once, with file, line, column and code")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--strict", "treat warnings as errors", false)
    .option("--json", "print JSON", false)
    .action(async (o: CheckOptions) => setExit(await check(o, io)));
}
