/**
 * A small timing harness for the benchmarks. Cases are measured interleaved — a slice of each in
 * turn, several rounds — so that a shared machine's drift (other processes, thermal, GC) spreads
 * over every case instead of favouring whichever ran in a quiet moment. Each case is warmed up
 * first; single operations are timed, bounded by a time budget and an iteration cap.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";
import pg from "pg";
import type { Database } from "../src/store/index.js";

export interface Case {
  readonly name: string;
  /** One operation; may return a promise. */
  readonly op: (i: number) => unknown;
}

export interface Measurement {
  readonly name: string;
  readonly iterations: number;
  /** Operations per second over the time spent in this case. */
  readonly opsPerSecond: number;
  /** Latency percentiles, in microseconds. */
  readonly p50: number;
  readonly p99: number;
  /**
   * CPU time of this process per operation, in microseconds (every thread: servers, clients,
   * crypto pool). Steadier than latency on a shared machine: others' load delays an operation but
   * adds little to the work it takes.
   */
  readonly cpuPerOp?: number | undefined;
  /** CPU time of this process's main thread per operation, in microseconds, where measured. */
  readonly mainCpuPerOp?: number | undefined;
}

export interface MeasureOptions {
  readonly warmupMs?: number;
  /** Time per case in total, split over the rounds. */
  readonly budgetMs?: number;
  readonly rounds?: number;
  /** Cap per case. */
  readonly maxIterations?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export async function measure(cases: readonly Case[], opts: MeasureOptions = {}): Promise<Measurement[]> {
  const rounds = opts.rounds ?? 6;
  const sliceNs = BigInt(Math.round(((opts.budgetMs ?? 1500) / rounds) * 1e6));
  const max = opts.maxIterations ?? 200_000;
  const perRound = Math.ceil(max / rounds);

  for (const c of cases) {
    const end = performance.now() + (opts.warmupMs ?? 300);
    for (let i = 0; performance.now() < end; i++) await c.op(i);
  }
  const state = cases.map(() => ({ samples: new Float64Array(max), n: 0, ns: 0n, cpu: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [k, c] of cases.entries()) {
      const s = state[k]!;
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      let now = start;
      for (let j = 0; j < perRound && s.n < max && now - start < sliceNs; j++) {
        const t0 = process.hrtime.bigint();
        await c.op(s.n);
        now = process.hrtime.bigint();
        s.samples[s.n++] = Number(now - t0) / 1000;
      }
      s.ns += now - start;
      s.cpu += cpuMicros(cpu);
    }
  }
  return cases.map((c, k) => {
    const s = state[k]!;
    const sorted = s.samples.subarray(0, s.n).sort();
    return {
      name: c.name,
      iterations: s.n,
      opsPerSecond: s.n / (Number(s.ns) / 1e9),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      cpuPerOp: s.cpu / s.n,
    };
  });
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

export interface ConcurrentOptions {
  /** Operations in flight at once, per case. */
  readonly concurrency: number;
  readonly warmupMs?: number;
  /** Time per case in total, split over the rounds. */
  readonly budgetMs?: number;
  readonly rounds?: number;
}

/**
 * Throughput and latency with `concurrency` operations in flight (each loop starts its next
 * operation when the last one ends), the cases interleaved in rounds like `measure`.
 */
export async function measureConcurrent(
  cases: readonly Case[],
  opts: ConcurrentOptions,
): Promise<Measurement[]> {
  const rounds = opts.rounds ?? 6;
  const sliceMs = (opts.budgetMs ?? 3000) / rounds;
  const run = async (c: Case, ms: number, samples?: number[]) => {
    const end = performance.now() + ms;
    let n = 0;
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await c.op(n++);
          samples?.push((performance.now() - t0) * 1000);
        }
      }),
    );
  };
  for (const c of cases) await run(c, opts.warmupMs ?? 300);
  const state = cases.map(() => ({ samples: [] as number[], ms: 0, cpu: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [k, c] of cases.entries()) {
      const s = state[k]!;
      const cpu = process.cpuUsage();
      const start = performance.now();
      await run(c, sliceMs, s.samples);
      s.ms += performance.now() - start;
      s.cpu += cpuMicros(cpu);
    }
  }
  return cases.map((c, k) => summary(c.name, state[k]!));
}

/** One case's figures from its latency samples, wall time and CPU (and main-thread CPU, when read). */
function summary(
  name: string,
  s: {
    readonly samples: readonly number[];
    readonly ms: number;
    readonly cpu: number;
    readonly main?: number;
  },
): Measurement {
  const sorted = Float64Array.from(s.samples).sort();
  return {
    name,
    iterations: sorted.length,
    opsPerSecond: sorted.length / (s.ms / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpuPerOp: s.cpu / sorted.length,
    mainCpuPerOp: s.main === undefined || Number.isNaN(s.main) ? undefined : s.main / sorted.length,
  };
}

/** A Markdown table with the ratio of each row's median latency to the floor's. */
export function table(
  title: string,
  rows: readonly Measurement[],
  floor: Measurement,
  unit = "decisions/s",
): string {
  const fmt = (n: number, digits = 1) =>
    n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const main = rows.some((r) => r.mainCpuPerOp !== undefined);
  const header = [
    "path",
    unit,
    "p50 µs",
    "p99 µs",
    "CPU µs/op",
    ...(main ? ["main thread µs/op"] : []),
    "p50 vs floor",
    "iterations",
  ];
  const body = rows.map((r) => [
    r.name,
    fmt(r.opsPerSecond, 0),
    fmt(r.p50),
    fmt(r.p99),
    r.cpuPerOp === undefined ? "—" : fmt(r.cpuPerOp, 0),
    ...(main ? [r.mainCpuPerOp === undefined ? "—" : fmt(r.mainCpuPerOp, 0)] : []),
    `${fmt(r.p50 / floor.p50, 2)}×`,
    fmt(r.iterations, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i > 0 ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [title, "", line(header), rule, ...body.map(line)].join("\n");
}

/** A fresh PostgreSQL database for the run, or why there is none. */
export async function tempDatabase(tag = ""): Promise<{ url: string; drop(): Promise<void> } | string> {
  if (!/^[a-z0-9_]*$/.test(tag)) throw new TypeError(`database tag ${tag}`);
  const admin = process.env.WRIT_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `writ_bench_${process.pid}${tag}`;
  const run = async (text: string) => {
    const c = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 3000 });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  try {
    await run(`create database ${name}`);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
}

export interface HttpCase {
  readonly name: string;
  readonly url: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Text every answer's body must contain. */
  readonly expect: string;
}

/**
 * Like `measureConcurrent` for POSTs over HTTP to servers in this process, with the load generator
 * in a process of its own (bench/exchange-load.ts: node:http with keep-alive): this process's CPU
 * time is then the servers' alone, not a client's HTTP and JSON beside them. Reports, per case, the
 * CPU time of this process and of its main thread per request.
 */
export function measureHttpLoad(cases: readonly HttpCase[], opts: ConcurrentOptions): Promise<Measurement[]> {
  return measureTokenLoad(
    cases.map((c) => ({
      name: c.name,
      target: {
        url: c.url,
        body: c.body,
        headers: { "content-type": "application/json", ...c.headers },
        expect: c.expect,
      },
    })),
    opts,
  );
}

/**
 * Runs slices of a load generator outside this thread's event loop, the cases interleaved in
 * rounds after a warm-up slice each: `slice(k, ms)` runs case `k` for `ms` and answers its
 * latencies (µs) and the time it took. CPU is this process's (and its main thread's) meanwhile.
 */
async function sliceRounds(
  cases: readonly { readonly name: string }[],
  opts: ConcurrentOptions,
  slice: (k: number, ms: number) => Promise<{ samples: number[]; ms: number }>,
): Promise<Measurement[]> {
  const rounds = opts.rounds ?? 6;
  const sliceMs = (opts.budgetMs ?? 3000) / rounds;
  for (const k of cases.keys()) await slice(k, opts.warmupMs ?? 300);
  const state = cases.map(() => ({ samples: [] as number[], ms: 0, cpu: 0, main: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const k of cases.keys()) {
      const s = state[k]!;
      const cpu = process.cpuUsage();
      const main = mainThreadMicros();
      const done = await slice(k, sliceMs);
      s.ms += done.ms;
      s.cpu += cpuMicros(cpu);
      s.main += main === undefined ? Number.NaN : mainThreadMicros()! - main;
      s.samples.push(...done.samples);
    }
  }
  return cases.map((c, k) => summary(c.name, state[k]!));
}

/** An endpoint under load from `measureTokenLoad`'s client process. */
export interface TokenCase {
  readonly name: string;
  /**
   * A writ server's base URL (a token exchange signed per request), or a fixed POST: a form unless
   * `headers` say otherwise, its answers holding an access token unless `expect` says otherwise.
   */
  readonly target:
    | { readonly base: string }
    | {
        readonly url: string;
        readonly body: string;
        readonly headers?: Readonly<Record<string, string>>;
        readonly expect?: string;
      };
}

/** This process's main thread's time on a CPU so far, in microseconds (Linux), or undefined. */
export function mainThreadMicros(): number | undefined {
  try {
    const text = readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8");
    return Number(text.split(" ")[0]) / 1000;
  } catch {
    return undefined;
  }
}

/**
 * Like `measureConcurrent` for token endpoints served by this process, with the load generator in
 * a process of its own (bench/exchange-load.ts): this process's CPU time is then the servers'
 * alone — the client's HTTP and its signing are not in it (writ's requests are signed before
 * each slice). Reports, per case, the CPU time of this process and of its main thread (the
 * event loop: JavaScript and the embedded store; the rest is libuv's thread pool) per request.
 */
export async function measureTokenLoad(
  cases: readonly TokenCase[],
  opts: ConcurrentOptions,
): Promise<Measurement[]> {
  const { fork } = await import("node:child_process");
  const child = fork(join(import.meta.dirname, "exchange-load.ts"), [], { execArgv: ["--import", "tsx"] });
  const ask = <T>(message: Record<string, unknown>) =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the load client exited (${code})`));
      child.once("exit", onExit);
      child.once("message", (m) => {
        child.off("exit", onExit);
        resolve(m as T);
      });
      child.send(message);
    });
  type Done = { samples: number[]; ms: number; failure?: string };
  const slice = async (k: number, ms: number) => {
    const done = await ask<Done>({ op: "slice", id: String(k), concurrency: opts.concurrency, ms });
    if (done.failure !== undefined) throw new Error(`${cases[k]!.name}: ${done.failure}`);
    return done;
  };
  try {
    for (const [k, c] of cases.entries()) await ask({ op: "target", id: String(k), ...c.target });
    return await sliceRounds(cases, opts, slice);
  } finally {
    child.disconnect();
    child.kill();
  }
}

export interface ProcessRun {
  /** Wall time from spawn to exit, in milliseconds. */
  readonly wallMs: number;
  /**
   * The process's CPU time (user + system, with its own children), in milliseconds: the `times` of
   * the bash that runs it, which reads getrusage to the millisecond (dash's counts 10 ms clock
   * ticks) — average it over many runs. Steadier than wall time on a shared machine: others' load
   * delays a start but adds little to its work.
   */
  readonly cpuMs: number;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` once as a child of `bash` (for its `times`), `stdin` as its input. */
export function runProcess(
  argv: readonly string[],
  stdin: string,
  env: NodeJS.ProcessEnv,
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn("bash", ["-c", '"$@"; s=$?; times >&3; exit $s', "bash", ...argv], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let times = "";
    p.stdout!.on("data", (d) => {
      stdout += d;
    });
    p.stderr!.on("data", (d) => {
      stderr += d;
    });
    (p.stdio[3] as NodeJS.ReadableStream).on("data", (d) => {
      times += d;
    });
    p.on("error", reject);
    p.on("close", (code) => {
      const wallMs = performance.now() - t0;
      // `times`: the wrapper's own user and system time, then its children's (argv's)
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(times.trim());
      const cpuMs = m
        ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000
        : Number.NaN;
      resolve({ wallMs, cpuMs, code: code ?? -1, stdout, stderr });
    });
    p.stdin!.on("error", () => {}); // a process that exits before reading its input (a floor)
    p.stdin!.end(stdin);
  });
}

/**
 * Group commit's batch fill: the audit records after `afterSeq` and the transactions that stored
 * them (their `xmin`), on either store.
 */
export async function batchFill(
  db: Kysely<Database>,
  afterSeq: number,
): Promise<{ records: number; commits: number; perCommit: string }> {
  const { rows } = await sql<{ records: number; commits: number }>`
    select count(*)::int as records, count(distinct xmin::text)::int as commits
    from audit_records where seq > ${afterSeq}`.execute(db);
  const { records, commits } = rows[0]!;
  return { records, commits, perCommit: (records / Math.max(commits, 1)).toFixed(1) };
}
