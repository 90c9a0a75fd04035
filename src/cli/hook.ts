/**
 * `writ hook <agent-kind>` in the full CLI (help, `npm run writ`); bin/writ.cjs runs the same
 * `runHook` without loading the CLI, which is the path agents take.
 */
import type { Command } from "commander";
import { HOOK_KINDS } from "../hook/protocol.js";
import { runHook } from "./hook-fast.js";
import type { Io } from "./output.js";

export interface HookCliOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: () => Promise<string>;
}

export function registerHook(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  o: HookCliOptions,
): void {
  program
    .command("hook")
    .description(
      `decide a coding agent's own tool call from its hook (${HOOK_KINDS.join(", ")}): docs/hooks.md`,
    )
    .argument("<agent-kind>", HOOK_KINDS.join(", "))
    .option("--server <url>", "a running writ serve (default: WRIT_SERVER; without one, the local store)")
    .option("--agent <id>", "the agent (default: WRIT_AGENT)")
    .option("--env <env>", "its environment (default: WRIT_ENV)")
    .option("--config <file>", "writ.yaml, without a server (default: WRIT_CONFIG or writ.yaml)")
    .option(
      "--allow-skips-prompt",
      "answer writ's allow as an explicit allow, which skips the agent's own permission prompt (default: no decision, the agent's own rules apply; WRIT_HOOK_ALLOW_SKIPS_PROMPT=1)",
    )
    .action(async (kind: string, opts: Record<string, string | boolean | undefined>) => {
      const argv = ["hook", kind];
      for (const k of ["server", "agent", "env", "config"]) {
        const v = opts[k];
        if (typeof v === "string") argv.push(`--${k}`, v);
      }
      if (opts.allowSkipsPrompt === true) argv.push("--allow-skips-prompt");
      const out = await runHook(argv, o.env, { stdin: o.stdin });
      if (out.stdout) io.out(out.stdout);
      if (out.stderr) io.err(out.stderr);
      setExit(out.exitCode);
    });
}
