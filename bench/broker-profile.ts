/**
 * The broker's server side alone: a writ server (bench/broker.bench.ts's) in a child process, a
 * token-exchange client here, and the server's CPU time per exchange — user and system, and its main
 * thread's alone (the event loop: JavaScript and the embedded store; the rest is libuv's thread
 * pool), measured in the server between the first and the last request of the run — so that a change to the hot
 * path can be weighed on a loaded machine, where wall time says little.
 *
 *   npx tsx bench/broker-profile.ts [--requests N] [--concurrency C] [--postgres] [--prof DIR]
 *                                   [--against CHECKOUT] [--rounds R]
 *
 * With `--prof DIR` the server profiles its CPU over the measured requests (the inspector's
 * profiler) and writes the profile to DIR (summarise it with bench/profile-summary.ts). With
 * `--against CHECKOUT` a second server runs from that checkout's own code (its broker-profile.ts)
 * and the two take turns, `--rounds` times (default 4), each round `--requests` exchanges against
 * each: an A/B of CPU per exchange and latency on a loaded machine, interleaved so that the load
 * of the moment weighs on both alike. Not one of `bench/run.ts`'s benches: a tool.
 */
import { fork } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { exchangeClient } from "../test/broker/exchange-client.js";

type Message =
  | { kind: "ready"; base: string }
  | { kind: "cpu"; user: number; system: number; main: number | undefined }
  | { kind: "closed" };

async function server(): Promise<void> {
  const { writServer } = await import("./broker.bench.js");
  const { mainThreadMicros, tempDatabase } = await import("./harness.js");
  const dir = await mkdtemp(join(tmpdir(), "writ-broker-profile-"));
  const database = process.env.WRIT_PROFILE_POSTGRES === "1" ? await tempDatabase() : undefined;
  if (typeof database === "string") throw new Error(`PostgreSQL unreachable: ${database}`);
  const s = await writServer(join(dir, "data"), database?.url);
  const prof = process.env.WRIT_PROFILE_DIR;
  const session = prof ? new (await import("node:inspector/promises")).Session() : undefined;
  session?.connect();
  let start = process.cpuUsage();
  let mainStart = mainThreadMicros();
  process.on("message", async (m: { kind: string }) => {
    if (m.kind === "start") {
      await session?.post("Profiler.enable");
      await session?.post("Profiler.start");
      start = process.cpuUsage();
      mainStart = mainThreadMicros();
    }
    if (m.kind === "stop") {
      const d = process.cpuUsage(start);
      const mainEnd = mainThreadMicros();
      const main = mainStart === undefined || mainEnd === undefined ? undefined : mainEnd - mainStart;
      if (session) {
        const { profile } = await session.post("Profiler.stop");
        await mkdir(prof!, { recursive: true });
        await writeFile(join(prof!, `broker-${Date.now()}.cpuprofile`), JSON.stringify(profile));
      }
      process.send!({ kind: "cpu", user: d.user, system: d.system, main } satisfies Message);
    }
    if (m.kind === "close") {
      await s.close();
      await database?.drop();
      await rm(dir, { recursive: true, force: true });
      process.send!({ kind: "closed" } satisfies Message);
      process.disconnect();
    }
  });
  process.send!({ kind: "ready", base: s.base } satisfies Message);
}

interface Side {
  readonly label: string;
  send(m: { kind: string }): void;
  next(): Promise<Message>;
  readonly exchange: () => Promise<{ status: number; body: Record<string, unknown> }>;
  cpu: { user: number; system: number; main: number };
  readonly latencies: number[];
}

async function startServer(label: string, script: string, env: NodeJS.ProcessEnv): Promise<Side> {
  const child = fork(script, ["--server"], { execArgv: ["--import", "tsx"], env });
  const next = () =>
    new Promise<Message>((resolve, reject) => {
      child.once("message", (m) => resolve(m as Message));
      child.once("error", reject);
    });
  const ready = await next();
  if (ready.kind !== "ready") throw new Error(`server: ${JSON.stringify(ready)}`);
  const c = await exchangeClient(ready.base);
  return {
    label,
    send: (m) => child.send(m),
    next,
    exchange: () => c.exchange(),
    cpu: { user: 0, system: 0, main: 0 },
    latencies: [],
  };
}

async function client(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "16" },
      postgres: { type: "boolean", default: false },
      prof: { type: "string" },
      against: { type: "string" },
      rounds: { type: "string" },
    },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds ?? (values.against === undefined ? "1" : "4"));
  const env = {
    ...process.env,
    WRIT_PROFILE_POSTGRES: values.postgres ? "1" : "0",
    ...(values.prof ? { WRIT_PROFILE_DIR: values.prof } : {}),
  };
  const sides = [await startServer("this checkout", import.meta.filename, env)];
  if (values.against !== undefined) {
    const script = join(resolve(values.against), "bench", "broker-profile.ts");
    sides.push(await startServer(values.against, script, { ...env, WRIT_PROFILE_DIR: undefined }));
  }
  const run = async (side: Side, n: number, record: boolean) => {
    let left = n;
    const worker = async () => {
      while (left-- > 0) {
        const t0 = performance.now();
        const r = await side.exchange();
        if (r.status !== 200) throw new Error(`exchange: ${r.status} ${JSON.stringify(r.body)}`);
        if (record) side.latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  for (const side of sides) await run(side, Math.min(300, requests), false); // warm-up
  let wall = 0;
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      side.send({ kind: "start" });
      const t0 = performance.now();
      await run(side, requests, true);
      if (side === sides[0]) wall += performance.now() - t0;
      const stopped = side.next();
      side.send({ kind: "stop" });
      const cpu = await stopped;
      if (cpu.kind !== "cpu") throw new Error(`server: ${JSON.stringify(cpu)}`);
      side.cpu.user += cpu.user;
      side.cpu.system += cpu.system;
      side.cpu.main += cpu.main ?? Number.NaN;
    }
  }
  for (const side of sides) {
    const closed = side.next();
    side.send({ kind: "close" });
    await closed;
  }
  const total = requests * rounds;
  const per = (us: number) => `${(us / total / 1000).toFixed(3)} ms`;
  for (const side of sides) {
    const sorted = [...side.latencies].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
    const { user, system, main } = side.cpu;
    console.log(
      `${side.label}: ${values.postgres ? "PostgreSQL" : "embedded"} c=${concurrency}, ${total} exchanges: server CPU per exchange ${per(user + system)} (user ${per(user)}, system ${per(system)}; main thread ${Number.isNaN(main) ? "—" : per(main)}); p50 ${p50.toFixed(2)} ms${side === sides[0] ? `; ${((total * 1000) / wall).toFixed(0)}/s wall` : ""}`,
    );
  }
}

if (process.argv.includes("--server")) await server();
else await client();
