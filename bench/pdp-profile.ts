/**
 * CPU per AuthZEN decision in the server's process: `writ serve`'s app on PostgreSQL (or the
 * embedded store with `--embedded`), its load from a separate process (node:http, 16 in flight), the
 * server's CPU time divided by the decisions it answered; `--profile FILE` writes a V8 CPU profile
 * of the measured window (summarise it with bench/profile-summary.ts).
 *
 * `--answers-first` has the audit log answer a group commit's callers before it sends the appends
 * that arrived meanwhile (`sendNextFirst` off, as on the embedded store; on PostgreSQL `writ serve`
 * sends them first).
 *
 *   npx tsx bench/pdp-profile.ts [--embedded] [--seconds 10] [--concurrency 16] [--answers-first] [--profile FILE]
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createServer, loadPolicy } from "../src/app.js";
import { listenHttp } from "../src/http/node.js";
import { batchFill, tempDatabase } from "./harness.js";
import { summarise } from "./profile-summary.js";

const run = promisify(execFile);

/** CPU time of every `postgres` process on this machine, in ms (Linux /proc; 0 elsewhere). */
async function postgresCpuMs(): Promise<number> {
  let total = 0;
  const tick = 10; // USER_HZ is 100 on Linux
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (name !== "postgres") continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const seconds = Number(value("--seconds", "10"));
const concurrency = Number(value("--concurrency", "16"));
const profile = value("--profile", "");
const path = value("--path", "/access/v1/evaluation");
const answersFirst = flag("--answers-first");

const ROOT = join(import.meta.dirname, "..");
const { policy } = await loadPolicy(join(ROOT, "examples", "quickstart", "writ.yaml"));
const dir = await mkdtemp(join(tmpdir(), "writ-pdp-profile-"));
const database = flag("--embedded") ? undefined : await tempDatabase();
if (typeof database === "string") throw new Error(`PostgreSQL unreachable: ${database}`);
const server = await createServer({
  policy: policy!,
  dataDir: dir,
  databaseUrl: database?.url,
  version: "bench",
  auditSendNextFirst: answersFirst ? false : undefined,
});
const listening = await listenHttp({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 });
const base = `http://127.0.0.1:${listening.address.port}`;
server.setBaseUrl(base);
const evaluation = {
  subject: { type: "agent", id: "cost-analyst" },
  action: { name: "aws:s3:GetObject" },
  resource: { type: "aws", id: "arn:aws:s3:::acme-reports/2026/10.csv" },
  context: { environment: "prod" },
};
const body = JSON.stringify(path.endsWith("evaluations") ? { evaluations: [evaluation] } : evaluation);
const load = async (ms: number) => {
  const { stdout } = await run(process.execPath, [
    join(import.meta.dirname, "load.client.mjs"),
    `${base}${path}`,
    String(concurrency),
    String(ms),
    body,
  ]);
  const out = JSON.parse(stdout) as {
    cpuMs: number;
    n: number;
    ms: number;
    rate: number;
    p50: number;
    p99: number;
    fail?: string;
  };
  if (out.fail !== undefined) throw new Error(`load: ${out.fail}`);
  return out;
};
try {
  await load(2000); // warm-up
  const session = new Session();
  if (profile) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
  }
  const seq0 = (await server.audit.head()).seq;
  const pg0 = await postgresCpuMs();
  const cpu = process.cpuUsage();
  const out = await load(seconds * 1000);
  const used = process.cpuUsage(cpu);
  const pgMs = (await postgresCpuMs()) - pg0;
  if (profile) {
    const { profile: p } = await session.post("Profiler.stop");
    await writeFile(profile, JSON.stringify(p));
    console.log(summarise(p as unknown as Parameters<typeof summarise>[0], 45));
    session.disconnect();
  }
  const ms = (used.user + used.system) / 1000;
  const { commits, perCommit } = await batchFill(server.store.db, seq0);
  console.log(
    `${database ? "PostgreSQL" : "embedded"}, ${path}, ${concurrency} in flight${answersFirst ? ", answers before the next commit" : ""}: ${out.rate.toFixed(0)} decisions/s, p50 ${out.p50.toFixed(2)} ms, p99 ${out.p99.toFixed(2)} ms; server CPU ${(ms / out.n).toFixed(3)} ms per decision (user ${(used.user / 1000 / out.n).toFixed(3)}, system ${(used.system / 1000 / out.n).toFixed(3)}); client process ${(out.cpuMs / out.n).toFixed(3)} ms, PostgreSQL ${(pgMs / out.n).toFixed(3)} ms; ${perCommit} records per commit (${commits} commits)`,
  );
} finally {
  await listening.close();
  await server.close();
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
}
