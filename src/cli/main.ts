/**
 * The `writ` command line: one file per verb, this file wires them. Exit codes: docs/cli.md.
 * This is the CLI's composition root: the only place that reads the environment.
 */
import { Command, CommanderError } from "commander";
import { registerAudit } from "./audit.js";
import { registerCheck } from "./check.js";
import { registerExplain } from "./explain.js";
import { registerInit } from "./init.js";
import { EXIT, type Io, reportFailure, stdio } from "./output.js";
import { registerServe } from "./serve.js";

export const VERSION = "0.1.0";

export async function main(
  argv: readonly string[],
  io: Io = stdio,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let exitCode: number = EXIT.ok;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command("writ")
    .description("permission control plane for AI agents")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(run `writ --help` for the verbs)");
  registerInit(program, io, setExit);
  registerCheck(program, io, setExit);
  registerExplain(program, io, setExit);
  const dataDir = env.WRIT_DATA_DIR || ".writ";
  const databaseUrl = env.WRIT_DATABASE_URL || undefined;
  registerServe(program, io, setExit, {
    dataDir,
    databaseUrl,
    pdpToken: env.WRIT_PDP_TOKEN || undefined,
    version: VERSION,
  });
  registerAudit(program, io, setExit, { dataDir, databaseUrl });
  const json = argv.includes("--json");
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      ) {
        return EXIT.ok;
      }
      return EXIT.usage;
    }
    return reportFailure(io, json, err);
  }
  return exitCode;
}
