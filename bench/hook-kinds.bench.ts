/**
 * `writ hook <kind>` for every protocol, as each agent runs it (one process per call, its JSON on
 * stdin) through a running server, beside `node -e ''` (Node's own start) and beside Claude Code's
 * (bench/hook.bench.ts measures it in depth), each beside the thin client run by bash (bash speaks HTTP
 * itself on /dev/tcp): the same shell command from Claude Code, Gemini CLI,
 * Codex CLI and Cursor, and Cursor's beforeReadFile, which carries the file's content (64 KiB
 * here) that the hook parses and drops. Target: ≤ 30 ms p50 including the process start (issue 15).
 *
 * Needs `npm run build` (the hook runs from dist/, as installed).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { claude, gemini } from "../test/hook/fixture.js";
import { codex, cursor } from "../test/hook/tables.js";
import { BIN, ROOT } from "../test/support/cli.js";
import { fmt, hookServer, pct } from "./hook.bench.js";

const ROUNDS = 31;

function time(argv: readonly string[], stdin: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      out += d;
    });
    p.on("close", (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${argv.join(" ")}: exit ${code}: ${out}`)),
    );
    p.stdin.end(stdin);
  });
}

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
    for (const [, argv, stdin] of inputs) await time(argv, stdin, env); // each kind's first decision
    const bare: number[] = [];
    const times = inputs.map(() => [] as number[]);
    for (let i = 0; i < ROUNDS; i++) {
      bare.push(await time([process.execPath, "-e", ""], "", {}));
      for (const [j, [, argv, stdin]] of inputs.entries()) times[j]!.push(await time(argv, stdin, env));
    }
    console.log(`writ hook <kind> through a server, as a process, ${ROUNDS} interleaved runs`);
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
