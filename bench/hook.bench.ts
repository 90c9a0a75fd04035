/**
 * `writ hook claude-code` as the agent runs it: one process per tool call, its JSON on stdin, its
 * answer on stdout — through a running server (`WRIT_SERVER`, the fast default), beside
 * `node -e ''` (the floor: Node's own start), for a Read and for a shell command with a pipeline
 * and a redirection; and judged offline against the embedded store (PGlite opened per call), a few
 * times, in full (PGlite opened) and on the decision snapshot a full run leaves (cli/hook-local.ts). Target: ≤ 30 ms p50 including the process start (issue 15).
 *
 * Needs `npm run build` (the hook runs from dist/, as installed).
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createServer, loadPolicy } from "../src/app.js";
import { claude, makeProject } from "../test/hook/fixture.js";
import { BIN } from "../test/support/cli.js";

const ROUNDS = 41;
const OFFLINE_ROUNDS = 5;

function time(argv: string[], stdin: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, argv, {
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

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((q / 100) * s.length) - 1)]!;
};
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

export async function run(): Promise<void> {
  const p = await makeProject();
  const loaded = await loadPolicy(p.config);
  if (!loaded.policy) throw new Error(JSON.stringify(loaded.problems));
  const server = await createServer({
    policy: loaded.policy,
    dataDir: join(p.root, "server-data"),
    version: "bench",
  });
  let http: ReturnType<typeof serve> | undefined;
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  const base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  try {
    const env = { WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev" };
    const hook = [BIN, "hook", "claude-code"];
    const read = JSON.stringify(claude("PreToolUse", "Read", { file_path: join(p.src, "a.ts") }, p.src));
    const shell = JSON.stringify(
      claude("PreToolUse", "Bash", { command: "grep -n export a.ts | head -5 > out.txt" }, p.src),
    );
    await time(hook, read, env); // the server's first decision for this agent
    const bare: number[] = [];
    const reads: number[] = [];
    const shells: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      bare.push(await time(["-e", ""], "", {}));
      reads.push(await time(hook, read, env));
      shells.push(await time(hook, shell, env));
    }
    // the server's share: the same request answered in process, no hook process, no socket
    const inProcess: number[] = [];
    const body = JSON.stringify({ agent: "coder", environment: "dev", input: JSON.parse(read) });
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const r = await server.app.request("/hook/v1/claude-code", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await r.text();
      inProcess.push(performance.now() - t0);
    }
    const offline: number[] = [];
    const snapshot: number[] = [];
    const offEnv = { WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_CONFIG: p.config, WRIT_DATA_DIR: p.dataDir };
    await time(hook, read, offEnv); // creates and migrates the store once
    for (let i = 0; i < OFFLINE_ROUNDS; i++) {
      // without its snapshot, a call runs in full: the store opened (and the spool imported)
      await rm(join(p.dataDir, "hook-snapshot.json"), { force: true });
      offline.push(await time(hook, read, offEnv));
      // the calls after it decide on the snapshot it left, and spool their records
      for (let j = 0; j < 3; j++) snapshot.push(await time(hook, read, offEnv));
    }
    console.log(
      `writ hook claude-code as a process, ${ROUNDS} interleaved runs (offline: ${OFFLINE_ROUNDS})`,
    );
    console.log("| case | p50 | p99 | p50 added to node -e '' |");
    console.log("|---|---|---|---|");
    console.log(`| node -e '' (floor) | ${fmt(pct(bare, 50))} | ${fmt(pct(bare, 99))} | — |`);
    for (const [name, xs] of [
      ["hook, server, Read (target p50 ≤ 30 ms)", reads],
      ["hook, server, Bash pipeline + redirection", shells],
      ["of which the server: Read judged and audited, in process", inProcess],
      ["hook, offline, full run (PGlite opened)", offline],
      ["hook, offline, on the snapshot (spooled)", snapshot],
    ] as const) {
      console.log(
        `| ${name} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 99))} | ${fmt(pct(xs, 50) - pct(bare, 50))} |`,
      );
    }
  } finally {
    http?.close();
    await server.close();
  }
}
