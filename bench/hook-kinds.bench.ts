/**
 * `writ hook <kind>` for every protocol, as each agent runs it (one process per call, its JSON on
 * stdin) through a running server, beside `node -e ''` (Node's own start) and beside Claude Code's
 * (bench/hook.bench.ts measures it in depth), each beside the thin client run by bash (bash speaks HTTP
 * itself on /dev/tcp): the same shell command from Claude Code, Gemini CLI,
 * Codex CLI and Cursor, and Cursor's beforeReadFile, which carries the file's content (64 KiB
 * here) that the hook parses and drops. Target: ≤ 30 ms p50 including the process start (issue 15).
 *
 * Every process is started as an agent starts its hook: its command line through `sh -c`, from a
 * plain Node process apart from the server's (bench/hook-agent.mjs).
 *
 * Needs `npm run build` (the hook runs from dist/, as installed).
 */
import { join } from "node:path";
import { claude, gemini } from "../test/hook/fixture.js";
import { codex, cursor } from "../test/hook/tables.js";
import { BIN, ROOT } from "../test/support/cli.js";
import { agentRuns, commandLine, fmt, hookServer, pct } from "./hook.bench.js";

const ROUNDS = 31;

export async function run(): Promise<void> {
  const { p, base, close } = await hookServer();
  try {
    const env = { WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev" };
    const command = "grep -n export a.ts | head -5 > out.txt";
    const cases: [string, string, Record<string, unknown>][] = [
      ["claude-code, Bash", "claude-code", claude("PreToolUse", "Bash", { command }, p.src)],
      [
        "gemini-cli, run_shell_command",
        "gemini-cli",
        gemini("BeforeTool", "run_shell_command", { command }, p.src),
      ],
      ["codex, Bash", "codex", codex("PreToolUse", "Bash", { command }, p.src)],
      [
        "cursor, beforeShellExecution",
        "cursor",
        cursor("beforeShellExecution", { command, cwd: p.src }, p.proj),
      ],
      [
        "cursor, beforeReadFile of 64 KiB",
        "cursor",
        cursor("beforeReadFile", { file_path: join(p.src, "a.ts"), content: "x".repeat(64 * 1024) }, p.proj),
      ],
    ];
    // each case by the Node hook and by the thin client under bash (bash on /dev/tcp)
    const thin = join(ROOT, "bin", "writ-hook.sh");
    const inputs = cases.flatMap(([name, kind, raw]) => [
      [name, [process.execPath, BIN, "hook", kind], JSON.stringify(raw)] as const,
      [`${name}, thin client by bash`, ["bash", "-p", thin, kind], JSON.stringify(raw)] as const,
    ]);
    // every process started by the agent's stand-in (bench/hook-agent.mjs), as an agent starts it
    const step = (argv: readonly string[], stdin: string, e: NodeJS.ProcessEnv) => ({
      command: commandLine(argv),
      stdin,
      env: e,
    });
    const bareStep = step([process.execPath, "-e", ""], "", {});
    const warm = inputs.map(([, argv, stdin]) => step(argv, stdin, env)); // each kind's first decision
    const rounds = Array.from({ length: ROUNDS }, () => [
      bareStep,
      ...inputs.map(([, argv, stdin]) => step(argv, stdin, env)),
    ]).flat();
    const ran = (await agentRuns([...warm, ...rounds])).slice(warm.length).map((r) => r.wallMs);
    const per = inputs.length + 1;
    const bare = ran.filter((_, i) => i % per === 0);
    const times = inputs.map((_, j) => ran.filter((_, i) => i % per === j + 1));
    console.log(
      `writ hook <kind> through a server, as a process started by an agent, ${ROUNDS} interleaved runs`,
    );
    console.log("| case | p50 | p99 | p50 added to node -e '' |");
    console.log("|---|---|---|---|");
    console.log(`| node -e '' (floor) | ${fmt(pct(bare, 50))} | ${fmt(pct(bare, 99))} | — |`);
    for (const [j, [name]] of inputs.entries()) {
      const xs = times[j]!;
      console.log(
        `| ${name} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 99))} | ${fmt(pct(xs, 50) - pct(bare, 50))} |`,
      );
    }
  } finally {
    await close();
  }
}
