/**
 * The broker's server side alone: a writ server (bench/broker.bench.ts's) in a child process, a
 * token-exchange client here, and the server's CPU time per exchange — user and system, and its main
 * thread's alone (the event loop: JavaScript and the embedded store; the rest is libuv's thread
 * pool), measured in the server between the first and the last request of the run — so that a change to the hot
 * path can be weighed on a loaded machine, where wall time says little.
 *
 *   npx tsx bench/broker-profile.ts [--requests N] [--concurrency C] [--postgres] [--prof DIR]
 *
 * With `--prof DIR` the server profiles its CPU over the measured requests (the inspector's
 * profiler) and writes the profile to DIR (summarise it with bench/profile-summary.ts). Not one of `bench/run.ts`'s benches: a tool.
 */
import { fork } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

async function client(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "2000" },
      concurrency: { type: "string", default: "16" },
      postgres: { type: "boolean", default: false },
      prof: { type: "string" },
    },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const child = fork(import.meta.filename, ["--server"], {
    execArgv: ["--import", "tsx"],
    env: {
      ...process.env,
      WRIT_PROFILE_POSTGRES: values.postgres ? "1" : "0",
      ...(values.prof ? { WRIT_PROFILE_DIR: values.prof } : {}),
    },
  });
  const next = () =>
    new Promise<Message>((resolve, reject) => {
      child.once("message", (m) => resolve(m as Message));
      child.once("error", reject);
    });
  const ready = await next();
  if (ready.kind !== "ready") throw new Error(`server: ${JSON.stringify(ready)}`);
  const c = await exchangeClient(ready.base);
  const run = async (n: number) => {
    let left = n;
    const worker = async () => {
      while (left-- > 0) {
        const r = await c.exchange();
        if (r.status !== 200) throw new Error(`exchange: ${r.status} ${JSON.stringify(r.body)}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  await run(Math.min(300, requests)); // warm-up
  child.send({ kind: "start" });
  const t0 = performance.now();
  await run(requests);
  const wall = performance.now() - t0;
  const stopped = next();
  child.send({ kind: "stop" });
  const cpu = await stopped;
  if (cpu.kind !== "cpu") throw new Error(`server: ${JSON.stringify(cpu)}`);
  const closed = next();
  child.send({ kind: "close" });
  await closed;
  const per = (us: number) => `${(us / requests / 1000).toFixed(3)} ms`;
  console.log(
    `${values.postgres ? "PostgreSQL" : "embedded"} c=${concurrency}, ${requests} exchanges: server CPU per exchange ${per(cpu.user + cpu.system)} (user ${per(cpu.user)}, system ${per(cpu.system)}; main thread ${cpu.main === undefined ? "—" : per(cpu.main)}); ${((requests * 1000) / wall).toFixed(0)}/s wall`,
  );
}

if (process.argv.includes("--server")) await server();
else await client();
