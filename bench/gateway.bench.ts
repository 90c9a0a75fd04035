/**
 * Added latency per `tools/call` through the MCP gateway, in one run, against the same call made
 * directly to the same upstream (the floor):
 *
 *   direct      the SDK's client → server-everything / server-filesystem over stdio
 *   gateway     the SDK's client (in process) → the gateway's checks (pin, schema, resource
 *               derivation, decision point, audit record) → the same upstream over stdio
 *   gateway+HTTP the SDK's client over Streamable HTTP on loopback with a DPoP-bound writ token
 *               (a fresh proof signed by the client each request) → `writ serve` → the upstream
 *
 * Every call is allowed, so each pays for the whole path; the audit record is written while the
 * upstream works (the result waits for both). The tokens come from the broker through openid-client.
 *
 * Then kill → first refused call: an agent kill engaged through the operator while an in-process
 * session calls in a loop, the time until a call is refused (limit 1 s; the gateway reads the kills
 * every 200 ms), over 10 runs.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import * as oidc from "openid-client";
import { createServer, loadPolicy } from "../src/app.js";
import { sessionServer } from "../src/gateway/index.js";
import { agentClient, QUICKSTART } from "../test/broker/live.js";
import { connect, refusal } from "../test/gateway/support.js";
import { type Measurement, measure, table } from "./harness.js";

const ROOT = join(import.meta.dirname, "..");
const FS = join(ROOT, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js");
const EVERYTHING = join(
  ROOT,
  "node_modules",
  "@modelcontextprotocol",
  "server-everything",
  "dist",
  "index.js",
);

function config(root: string): string {
  return `version: 1
environments:
  dev: {}
runnerClasses:
  assist:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "mcp:fs:*"
          resource: "${root}/*"
        - action: "mcp:everything:*"
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Bench agent
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${join(QUICKSTART, "keys", "release-bot.jwks.json")}
    baseline:
      - action: "mcp:fs:read_text_file"
        resource: "${root}/*"
      - action: "mcp:everything:echo"
        standingWrite: bench
    tools: ["fs:read_text_file", "everything:echo"]
gateway:
  upstreams:
    fs:
      command: ${process.execPath}
      args: ["${FS}", "${root}"]
      tools:
        read_text_file: { resource: { from: path, as: path } }
    everything:
      command: ${process.execPath}
      args: ["${EVERYTHING}", "stdio"]
`;
}

async function stdioClient(args: string[]): Promise<Client> {
  const c = new Client({ name: "bench", version: "1" });
  await c.connect(new StdioClientTransport({ command: process.execPath, args, stderr: "ignore" }));
  return c;
}

/** The bench's gateway, upstreams and clients, as `run` measures them (bench/gateway-profile.ts too). */
export async function gatewayBench() {
  const dir = await realpath(await mkdtemp(join(tmpdir(), "writ-bench-gw-")));
  const root = join(dir, "root");
  await mkdir(join(root, "notes"), { recursive: true });
  const file = join(root, "notes", "todo.txt");
  await writeFile(file, "buy milk\n");
  await writeFile(join(dir, "writ.yaml"), config(root));
  const { policy, problems } = await loadPolicy(join(dir, "writ.yaml"));
  if (!policy) throw new Error(`bench config: ${JSON.stringify(problems)}`);
  const server = await createServer({ policy, dataDir: join(dir, "data"), version: "bench" });
  let http: ReturnType<typeof serve> | undefined;
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of closers) await c().catch(() => {});
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    await server.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const info = await new Promise<AddressInfo>((resolve) => {
      http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
    });
    const base = `http://127.0.0.1:${info.port}`;
    server.setBaseUrl(base);
    const gateway = server.gateway!;

    const directEcho = await stdioClient([EVERYTHING, "stdio"]);
    const directFs = await stdioClient([FS, root]);
    const session = gateway.openSession({ agent: "release-bot", environment: "dev", transport: "stdio" });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const inProcess = new Client({ name: "bench", version: "1" });
    await sessionServer(gateway, session.id, "bench").connect(serverSide);
    await inProcess.connect(clientSide);
    const c = await agentClient(base, "dev", "release-bot");
    const token = await oidc.clientCredentialsGrant(c.config, { resource: `${base}/mcp` }, { DPoP: c.DPoP });
    const overHttp = await connect(`${base}/mcp`, {
      token: token.access_token,
      keys: c.dpopKeys as unknown as Parameters<typeof connect>[1]["keys"],
    });
    closers.push(
      () => directEcho.close(),
      () => directFs.close(),
      () => inProcess.close(),
      () => overHttp.close(),
    );

    const echo = { name: "echo", arguments: { message: "hello" } };
    const gwEcho = { name: "everything__echo", arguments: { message: "hello" } };
    const read = { name: "read_text_file", arguments: { path: file } };
    const gwRead = { name: "fs__read_text_file", arguments: { path: file } };
    const check = async (p: Promise<{ isError?: unknown; _meta?: unknown }>) => {
      const r = await p;
      if (r.isError) throw new Error(`bench call refused: ${JSON.stringify(r)}`);
    };
    for (const [cl, req] of [
      [directEcho, echo],
      [inProcess, gwEcho],
      [overHttp, gwEcho],
      [directFs, read],
      [inProcess, gwRead],
      [overHttp, gwRead],
    ] as const) {
      await check(cl.callTool(req));
    }
    return { server, directEcho, directFs, inProcess, overHttp, echo, gwEcho, read, gwRead, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A new session, once the gateway has read that the last run's kill was lifted. */
async function openOnceLifted(gateway: NonNullable<Awaited<ReturnType<typeof createServer>>["gateway"]>) {
  for (;;) {
    try {
      return gateway.openSession({ agent: "release-bot", environment: "dev", transport: "stdio" });
    } catch (err) {
      if ((err as { reason?: unknown }).reason !== "killed") throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Kill engaged → first refused call of a live in-process session, `runs` times (ms, sorted). */
async function killToRefused(
  server: Awaited<ReturnType<typeof createServer>>,
  runs: number,
): Promise<number[]> {
  const gateway = server.gateway!;
  const scope = { kind: "agent", agent: "release-bot" } as const;
  const call = { name: "everything__echo", arguments: { message: "hello" } };
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const session = await openOnceLifted(gateway);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const c = new Client({ name: "bench-kill", version: "1" });
    await sessionServer(gateway, session.id, "bench").connect(serverSide);
    await c.connect(clientSide);
    if (refusal(await c.callTool(call))) throw new Error("bench: a call before the kill was refused");
    const t0 = performance.now();
    await server.operator.engageKill(scope, { by: "bench" });
    for (;;) {
      const outcome = await c.callTool(call).then(
        (r) => refusal(r)?.reason ?? "allowed",
        () => "session ended",
      );
      if (outcome !== "allowed") break;
      if (performance.now() - t0 > 10_000) throw new Error("bench: the kill did not refuse a call in 10 s");
      await new Promise((r) => setTimeout(r, 5));
    }
    times.push(performance.now() - t0);
    await server.operator.liftKill(scope, { by: "bench" });
    await c.close().catch(() => {});
  }
  return times.sort((a, b) => a - b);
}

export async function run(): Promise<void> {
  const { server, directEcho, directFs, inProcess, overHttp, echo, gwEcho, read, gwRead, close } =
    await gatewayBench();
  try {
    const opts = { budgetMs: 3000, warmupMs: 500, rounds: 6, maxIterations: 20_000 };
    const [dEcho, gEcho, hEcho] = await measure(
      [
        { name: "direct: echo (stdio)", op: () => directEcho.callTool(echo) },
        { name: "gateway: echo → stdio", op: () => inProcess.callTool(gwEcho) },
        { name: "gateway+HTTP+DPoP: echo → stdio", op: () => overHttp.callTool(gwEcho) },
      ],
      opts,
    );
    const [dRead, gRead, hRead] = await measure(
      [
        { name: "direct: read_text_file (stdio)", op: () => directFs.callTool(read) },
        { name: "gateway: read_text_file → stdio", op: () => inProcess.callTool(gwRead) },
        { name: "gateway+HTTP+DPoP: read_text_file → stdio", op: () => overHttp.callTool(gwRead) },
      ],
      opts,
    );
    const added = (m: Measurement, floor: Measurement) =>
      `${m.name}: +${((m.p50 - floor.p50) / 1000).toFixed(3)} ms at p50, +${((m.p99 - floor.p99) / 1000).toFixed(3)} ms at p99`;
    console.log(
      table(
        "MCP gateway: tools/call through the gateway vs direct to the same upstream",
        [dEcho!, gEcho!, hEcho!, dRead!, gRead!, hRead!],
        dEcho!,
        "calls/s",
      ),
    );
    console.log();
    console.log("added latency per call (goal in process: under 1 ms at p50 and 3 ms at p99):");
    for (const [m, floor] of [
      [gEcho!, dEcho!],
      [hEcho!, dEcho!],
      [gRead!, dRead!],
      [hRead!, dRead!],
    ] as const) {
      console.log(`  ${added(m, floor)}`);
    }
    // last: the kill revokes the agent's writs, so the HTTP client's token is done for after it
    const kills = await killToRefused(server, 10);
    const p = (q: number) => kills[Math.ceil((q / 100) * kills.length) - 1]!;
    console.log();
    console.log(
      `gateway kill (operator) → first refused call of a live session, ${kills.length} runs: p50 ${p(50).toFixed(0)} ms, p99 ${p(99).toFixed(0)} ms (limit ≤ 1000 ms)`,
    );
  } finally {
    await close();
  }
}
