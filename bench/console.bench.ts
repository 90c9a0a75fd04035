/**
 * Console pages' server time (issue 14: under 200 ms each) with 10,000 writs, 100,000 audit
 * records (a valid chain over 11 days, stored by the repository's batch append) and 5,000 findings
 * in the store: every page answered in process by the server's own
 * app (`app.request`, no browser, no socket), signed in as an operator, p50 and p99 beside the
 * limit. The embedded store (PGlite), and PostgreSQL when one answers at 127.0.0.1:5432.
 *
 *   npx tsx bench/console.bench.ts            (or: npx tsx bench/run.ts console)
 */
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createServer, loadPolicy, type Server } from "../src/app.js";
import { recordHash } from "../src/audit/index.js";
import { measure, tempDatabase } from "./harness.js";

const WRITS = 10_000;
const AUDIT = 100_000;
const FINDINGS = 5_000;
const LIMIT_MS = 200;
const BASE = "http://127.0.0.1:8080";
const AGENTS = ["release-bot", "ops-assistant", "cost-analyst"];

async function seed(server: Server): Promise<{ writ: string; finding: string }> {
  const db = server.store.db;
  const now = Date.now();
  for (let i = 0; i < WRITS; i += 1000) {
    await db
      .insertInto("writs")
      .values(
        Array.from({ length: Math.min(1000, WRITS - i) }, (_, k) => {
          const n = i + k;
          return {
            id: `w_bench_${String(n).padStart(6, "0")}`,
            agent: AGENTS[n % 3]!,
            playbook: "scale-deployment",
            environment: n % 2 ? "dev" : "prod",
            params: JSON.stringify({ service: "search", replicas: 2 }),
            grants: JSON.stringify([
              { action: "k8s:apps/deployments/scale:patch", resource: "search/search" },
            ]),
            issued_at: new Date(now - (n % 14) * 86_400_000 - 1000),
            expires_at: new Date(now + 3_600_000),
            max_uses: 5,
          };
        }),
      )
      .execute();
  }
  // the log through the store's own batch append (a valid hash chain), 5,000 records a transaction
  const data = (n: number): [string, Record<string, unknown>] => {
    const agent = AGENTS[n % 3]!;
    if (n % 10 === 0) return ["broker.denied", { environment: "prod", agent, reason: "outside_window" }];
    if (n % 10 === 1)
      return [
        "broker.writ_issued",
        { environment: "dev", agent, writ: `w_bench_${String(n % WRITS).padStart(6, "0")}` },
      ];
    const allowed = n % 5 !== 2;
    return [
      "pdp.decision",
      {
        source: "authzen",
        agent,
        action: "k8s:apps/deployments:get",
        resource: "search/search",
        environment: "dev",
        decision: { allowed, code: allowed ? "allowed" : "no_grant", reasons: [] },
      },
    ];
  };
  for (let i = 0; i < AUDIT; i += 5000) {
    await server.store.audit.appendBatch((head) => {
      const rows = [];
      let prevHash = head.hash;
      for (let k = 0; k < Math.min(5000, AUDIT - i); k++) {
        const seq = head.seq + k + 1;
        const [type, d] = data(i + k);
        const at = new Date(now - (AUDIT - i - k) * 10_000);
        const hash = recordHash({ seq, at, type, data: d, prevHash });
        rows.push({ seq, at, type, data: d, prevHash, hash });
        prevHash = hash;
      }
      return rows;
    });
  }
  const findings = Array.from({ length: FINDINGS }, (_, n) => ({
    id: `f_${String(n).padStart(5, "0")}`,
    category: ["unused-excess", "unjustified-use", "inherited-overreach"][n % 3]!,
    severity: ["high", "medium", "low"][n % 3]!,
    title: `finding ${n}`,
    workload: { id: `k8s:team-${n % 250}/sa-${n % 250}` },
    permission: { action: `k8s:core/pods:get`, resource: `team-${n % 250}/pod-${n}` },
    evidence: [{ kind: "node", ref: `n${n}`, label: "a pod" }],
    reduction: { kind: "replace-role", summary: "narrow the role", files: [] },
  }));
  if (process.env.SKIP_FINDINGS) return { writ: "w_bench_004242", finding: "f_01234" };
  await server.store.findings.recordScan(findings, {
    at: new Date(),
    workloads: [...new Set(findings.map((f) => f.workload.id))],
  });
  return { writ: "w_bench_004242", finding: "f_01234" };
}

/** For profiling a page's queries on the same data (scratch scripts). */
export const seedForProfile = seed;

async function operatorCookie(server: Server): Promise<string> {
  const html = await (await server.app.request(`${BASE}/console/login`)).text();
  const challenge = /name="challenge" value="([^"]+)"/.exec(html)![1]!;
  const res = await server.app.request(`${BASE}/console/login/operator`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: BASE },
    body: new URLSearchParams({ challenge, name: "bench", token: server.adminToken }).toString(),
  });
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

async function bench(label: string, databaseUrl: string | undefined): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-console-bench-"));
  await cp(join("examples", "quickstart"), join(dir, "config"), { recursive: true });
  const policy = (await loadPolicy(join(dir, "config", "writ.yaml"))).policy!;
  const server = await createServer({
    policy,
    dataDir: join(dir, "data"),
    databaseUrl,
    version: "bench",
    baseUrl: BASE,
  });
  try {
    const t0 = performance.now();
    const { writ, finding } = await seed(server);
    console.log(
      `${label}: seeded ${WRITS} writs, ${AUDIT} audit records, ${FINDINGS} findings in ${Math.round((performance.now() - t0) / 1000)} s`,
    );
    const cookie = await operatorCookie(server);
    const pages = [
      "/console/approvals",
      "/console/writs",
      "/console/writs?agent=ops-assistant&env=dev",
      "/console/kill",
      "/console/denials",
      "/console/denials?agent=cost-analyst&reason=no_grant",
      "/console/findings",
      "/console/findings?status=open&category=unjustified-use",
      `/console/findings/${finding}`,
      "/console/audit",
      `/console/audit?writ=${writ}`,
      "/console/metrics",
      "/console/agents",
      "/console/maturity",
    ];
    const ms = await measure(
      pages.map((path) => ({
        name: path,
        op: async () => {
          const res = await server.app.request(`${BASE}${path}`, { headers: { cookie } });
          if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
          await res.text();
        },
      })),
      { warmupMs: 200, budgetMs: 1500, rounds: 3, maxIterations: 400 },
    );
    const w = Math.max(...ms.map((m) => m.name.length));
    console.log(
      `\n${label}: server time per page (limit ${LIMIT_MS} ms; machine shared with other sessions)\n`,
    );
    console.log(`| ${"page".padEnd(w)} | p50 ms | p99 ms | limit | iterations |`);
    console.log(`|${"-".repeat(w + 2)}|-------:|-------:|------:|-----------:|`);
    for (const m of ms) {
      const verdict = m.p99 / 1000 <= LIMIT_MS ? `${LIMIT_MS} ✓` : `${LIMIT_MS} ✗`;
      console.log(
        `| ${m.name.padEnd(w)} | ${(m.p50 / 1000).toFixed(1).padStart(6)} | ${(m.p99 / 1000).toFixed(1).padStart(6)} | ${verdict.padStart(5)} | ${String(m.iterations).padStart(10)} |`,
      );
    }
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  await bench("PGlite (embedded)", undefined);
  const pg = await tempDatabase();
  if (typeof pg === "string") console.log(`\nPostgreSQL: not measured (${pg})`);
  else {
    try {
      await bench("PostgreSQL", pg.url);
    } finally {
      await pg.drop();
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await run();
