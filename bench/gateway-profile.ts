/**
 * Where the gateway's added latency per `tools/call` goes, in process (bench/gateway.bench.ts's
 * setup, one call over HTTP made, so the request log's AsyncLocalStorage runs as in `writ serve`):
 * direct and gateway calls alternate in blocks of 50, one call at a time (as the bench's slices do:
 * a periodic checkpoint lands among gateway calls); each gateway call is timed with what overlapped
 * it — the audit appends (each a trip into the store), checkpoint inserts (alone, or riding in an
 * append's trip), the periodic checkpoint's signature (started in the call whose record is the
 * 100th), and garbage collection — so the p50 and the tail can be told apart. Each call's CPU time
 * is read too: run under `node --single-threaded` (no GC or compiler threads) it is the event
 * loop's own, steady on a loaded machine where wall times are not. `--profile FILE` then writes a
 * V8 CPU profile of as many gateway calls alone (summarised here with bench/profile-summary.ts).
 *
 * `--busy MS` adds direct calls with the event loop held MS ms after each is sent (as the
 * gateway's audit append holds it while its upstream works), beside direct calls alone: how much of
 * the tail is the upstream's wait for a CPU on a small machine rather than the gateway's own work.
 *
 * `--alloc` adds the JS heap left per call (after a full collection, with a young generation large
 * enough that none is collected meanwhile: `--expose-gc --max-semi-space-size=256`).
 *
 *   npx tsx bench/gateway-profile.ts [--calls 3000] [--tool echo|read] [--profile FILE] [--busy MS]
 *   node --single-threaded --import tsx bench/gateway-profile.ts [...]
 *   node --expose-gc --max-semi-space-size=256 --import tsx bench/gateway-profile.ts --calls 300 --alloc
 */
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { PerformanceObserver } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { gatewayBench } from "./gateway.bench.js";
import { summarise } from "./profile-summary.js";

const args = process.argv.slice(2);
const value = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const calls = Number(value("--calls", "3000"));
const tool = value("--tool", "echo");
const profile = value("--profile", "");
const alloc = args.includes("--alloc");
const busy = Number(value("--busy", "0"));

type Span = [number, number];
/** Milliseconds of `spans` inside [from, to]. */
const overlap = (spans: readonly Span[], from: number, to: number) =>
  spans.reduce((ms, [a, b]) => ms + Math.max(0, Math.min(b, to) - Math.max(a, from)), 0);
const pct = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** The store's audit calls, timed (the audit log calls them through the repository object). */
function timeRepository(repo: Record<string, unknown>, name: string, spans: Span[]): void {
  const original = repo[name] as (...a: unknown[]) => Promise<unknown>;
  repo[name] = async (...a: unknown[]) => {
    const t0 = performance.now();
    try {
      return await original.apply(repo, a);
    } finally {
      spans.push([t0, performance.now()]);
    }
  };
}

const bench = await gatewayBench();
try {
  const { server, inProcess } = bench;
  const [direct, directReq, gwReq] =
    tool === "read"
      ? [bench.directFs, bench.read, bench.gwRead]
      : [bench.directEcho, bench.echo, bench.gwEcho];
  const appends: Span[] = [];
  const checkpoints: Span[] = [];
  const gcs: Span[] = [];
  const repo = server.store.audit as unknown as Record<string, unknown>;
  timeRepository(repo, "appendBatch", appends);
  timeRepository(repo, "addCheckpoint", checkpoints);
  // the gateway's own part of a call (checks, upstream, audit), without the MCP hop to it
  const handled: Span[] = [];
  timeRepository(server.gateway as unknown as Record<string, unknown>, "callTool", handled);
  // the gateway's wait for its upstream (its client's callTool: every MCP client here but the
  // bench's own two), which the audit append overlaps
  const upstream: Span[] = [];
  const callTool = Client.prototype.callTool;
  Client.prototype.callTool = async function (this: Client, ...a: Parameters<Client["callTool"]>) {
    if (this === direct || this === inProcess) return callTool.apply(this, a);
    const t0 = performance.now();
    try {
      return await callTool.apply(this, a);
    } finally {
      upstream.push([t0, performance.now()]);
    }
  };
  // a checkpoint riding in an append's trip (the carrier's text names its table), and the appends
  // whose record a periodic checkpoint signs (every 100th: the log's default)
  const rides: number[] = [];
  const triggers: number[] = [];
  const db = server.store.db as unknown as { executeQuery(q: { sql: string }): Promise<unknown> };
  const executeQuery = db.executeQuery.bind(db);
  db.executeQuery = (q) => {
    if (q.sql.includes("audit_checkpoints")) rides.push(performance.now());
    return executeQuery(q);
  };
  const appendBatch = repo.appendBatch as (...a: unknown[]) => Promise<{ seq: number }[]>;
  repo.appendBatch = async (...a: unknown[]) => {
    const rows = await appendBatch.apply(repo, a);
    if (rows.some((r) => r.seq % 100 === 0)) triggers.push(performance.now());
    return rows;
  };
  const gcWatch = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
  });
  gcWatch.observe({ entryTypes: ["gc"] });

  for (let i = 0; i < Math.min(2000, calls); i++) {
    await direct.callTool(directReq);
    await inProcess.callTool(gwReq);
  }
  for (const spans of [appends, checkpoints, gcs, handled, upstream, rides, triggers]) spans.length = 0;
  const directMs: number[] = [];
  const gw: Span[] = [];
  const gwCpu: number[] = [];
  const cpu = { direct: 0, gateway: 0 };
  const BLOCK = 50;
  for (let i = 0; i < calls; i += BLOCK) {
    let c = process.cpuUsage();
    for (let j = 0; j < BLOCK; j++) {
      const t0 = performance.now();
      await direct.callTool(directReq);
      directMs.push(performance.now() - t0);
    }
    let used = process.cpuUsage(c);
    cpu.direct += used.user + used.system;
    c = process.cpuUsage();
    for (let j = 0; j < BLOCK; j++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await inProcess.callTool(gwReq);
      gw.push([t0, performance.now()]);
      const u = process.cpuUsage(c0);
      gwCpu.push((u.user + u.system) / 1000);
    }
    used = process.cpuUsage(c);
    cpu.gateway += used.user + used.system;
  }
  const n = directMs.length;
  gcWatch.disconnect();

  const rows = gw.map(([a, b], i) => ({
    ms: b - a,
    cpu: gwCpu[i]!,
    append: overlap(appends, a, b),
    checkpoint: overlap(checkpoints, a, b),
    gc: overlap(gcs, a, b),
    handled: overlap(handled, a, b),
    upstream: overlap(upstream, a, b),
    ride: rides.some((t) => t >= a && t <= b),
    signs: triggers.some((t) => t >= a && t <= b),
  }));
  const d = [...directMs].sort((x, y) => x - y);
  const g = rows.map((r) => r.ms).sort((x, y) => x - y);
  const f = (n: number) => n.toFixed(3);
  console.log(
    `${tool}, ${n} calls each: direct p50 ${f(pct(d, 50))} p99 ${f(pct(d, 99))} ms; gateway p50 ${f(pct(g, 50))} p99 ${f(pct(g, 99))} ms; added +${f(pct(g, 50) - pct(d, 50))} p50, +${f(pct(g, 99) - pct(d, 99))} p99`,
  );
  console.log(
    `CPU per call: direct ${(cpu.direct / n).toFixed(0)} µs, gateway ${(cpu.gateway / n).toFixed(0)} µs (+${((cpu.gateway - cpu.direct) / n).toFixed(0)})`,
  );
  const appendMs = appends.map(([a, b]) => b - a).sort((x, y) => x - y);
  console.log(
    `audit appends: ${appends.length}, p50 ${f(pct(appendMs, 50))} p99 ${f(pct(appendMs, 99))} ms; checkpoint inserts: ${checkpoints.length}, mean ${f(checkpoints.reduce((s, [a, b]) => s + b - a, 0) / Math.max(1, checkpoints.length))} ms; GCs: ${gcs.length}, ${f(gcs.reduce((s, [a, b]) => s + b - a, 0))} ms in all`,
  );
  // CPU per gateway call, by what happened in it
  const cpuLine = (label: string, rs: typeof rows) => {
    if (rs.length === 0) return;
    const c = rs.map((r) => r.cpu).sort((x, y) => x - y);
    console.log(
      `  ${label} (${rs.length}): p50 ${f(pct(c, 50))} p90 ${f(pct(c, 90))} p99 ${f(pct(c, 99))} ms`,
    );
  };
  console.log("CPU per gateway call (ms; the event loop's own under --single-threaded):");
  cpuLine("all", rows);
  cpuLine(
    "with GC",
    rows.filter((r) => r.gc > 0),
  );
  cpuLine(
    "carrying a checkpoint's insert",
    rows.filter((r) => r.ride && r.gc === 0),
  );
  cpuLine(
    "whose record a checkpoint signs",
    rows.filter((r) => r.signs && !r.ride && r.gc === 0),
  );
  cpuLine(
    "none of these",
    rows.filter((r) => !r.ride && !r.signs && r.gc === 0),
  );
  // the slowest 1 % of gateway calls: what overlapped them
  const threshold = pct(g, 99);
  const slow = rows.filter((r) => r.ms >= threshold);
  const typical = rows.filter((r) => r.ms <= pct(g, 50));
  const mean = (rs: typeof rows, k: "ms" | "handled" | "upstream" | "append" | "checkpoint" | "gc") =>
    f(rs.reduce((s, r) => s + r[k], 0) / Math.max(1, rs.length));
  for (const [label, rs] of [
    ["slowest 1 %", slow],
    ["up to p50", typical],
  ] as const) {
    console.log(
      `${label} (${rs.length}): mean ${mean(rs, "ms")} ms, of which in the gateway's callTool ${mean(rs, "handled")}, waiting for the upstream ${mean(rs, "upstream")}, audit append ${mean(rs, "append")}, checkpoint ${mean(rs, "checkpoint")}, GC ${mean(rs, "gc")}; with a checkpoint ${rs.filter((r) => r.checkpoint > 0 || r.ride).length}, signing one ${rs.filter((r) => r.signs).length}, with GC ${rs.filter((r) => r.gc > 0).length}`,
    );
  }
  if (busy > 0) {
    // the upstream's own tail when its caller works meanwhile: direct calls with the event loop
    // held for `busy` ms after each is sent, as the gateway holds it for the audit append
    const spin = (ms: number) => {
      const t = performance.now();
      while (performance.now() - t < ms);
    };
    for (const hold of [0, busy]) {
      const ms: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now();
        const p = direct.callTool(directReq);
        if (hold > 0) {
          await Promise.resolve();
          spin(hold);
        }
        await p;
        ms.push(performance.now() - t0);
      }
      ms.sort((x, y) => x - y);
      console.log(
        `direct, the event loop held ${hold} ms after sending: p50 ${f(pct(ms, 50))} p99 ${f(pct(ms, 99))} ms`,
      );
    }
  }
  if (alloc) {
    // the heap's growth over calls with no collection among them: run after a full collection
    // with a young generation larger than their garbage (--expose-gc --max-semi-space-size=256)
    for (const [label, op] of [
      ["direct", () => direct.callTool(directReq)],
      ["gateway", () => inProcess.callTool(gwReq)],
    ] as const) {
      (globalThis as { gc?: () => void }).gc?.();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 200; i++) await op();
      const kib = (process.memoryUsage().heapUsed - before) / 200 / 1024;
      console.log(`garbage per ${label} call: ${kib.toFixed(1)} KiB`);
    }
  }
  if (profile) {
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
    for (let i = 0; i < calls; i++) await inProcess.callTool(gwReq);
    const { profile: p } = await session.post("Profiler.stop");
    await writeFile(profile, JSON.stringify(p));
    console.log(
      `\n${calls} gateway calls alone:\n${summarise(p as unknown as Parameters<typeof summarise>[0], 50)}`,
    );
    session.disconnect();
  }
} finally {
  await bench.close();
}
