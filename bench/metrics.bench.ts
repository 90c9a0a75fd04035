/**
 * `GET /metrics` on a full store, beside the limit (a scrape under 50 ms with 10,000 writs,
 * 100,000 audit records and 5,000 findings): the server's own scrape (store aggregates, writ.yaml
 * figures, rendering), through its HTTP app in process with the admin token. The store is filled
 * first: writs over 60 days in two environments with uses spent, approval requests, findings from
 * one stored scan, and audit records (a real hash chain) appended in large transactions.
 *
 *   npx tsx bench/run.ts metrics              embedded store (PGlite)
 *   WRIT_BENCH_POSTGRES=1 npx tsx bench/run.ts metrics    also PostgreSQL (WRIT_BENCH_DATABASE_URL)
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, loadPolicy, type Server } from "../src/app.js";
import { recordHash } from "../src/audit/index.js";
import { type Measurement, measure, tempDatabase } from "./harness.js";

const WRITS = 10_000;
const AUDIT = 100_000;
const FINDINGS = 5_000;
const LIMIT_MS = 50;
const BASE = "http://127.0.0.1:9";

async function fill(server: Server): Promise<void> {
  const db = server.store.db;
  const now = Date.now();
  const playbooks = ["deploy-service", "rollback-service", "restart-pods", "scale-deployment"];
  for (let start = 0; start < WRITS; start += 1000) {
    const rows = [];
    for (let i = start; i < Math.min(WRITS, start + 1000); i++) {
      const issued = new Date(now - (i % 60) * 86_400_000 - (i % 977) * 1000);
      rows.push({
        id: `writ_bench_${i}`,
        agent: i % 2 === 0 ? "release-bot" : "ops-assistant",
        playbook: playbooks[i % playbooks.length]!,
        environment: i % 3 === 0 ? "prod" : "dev",
        params: "{}",
        grants: JSON.stringify([{ action: "k8s:apps/deployments:get", resource: "a/b" }]),
        issued_at: issued,
        expires_at: new Date(issued.getTime() + (300 + (i % 7) * 300) * 1000),
        max_uses: 10,
        uses: i % 4,
        ticket: i % 5 === 0 ? null : `CHG-${i}`,
        first_used_at: i % 4 === 0 ? null : new Date(issued.getTime() + 10_000),
        last_used_at: i % 4 === 0 ? null : new Date(issued.getTime() + 10_000 + (i % 13) * 20_000),
      });
    }
    await db.insertInto("writs").values(rows).execute();
  }
  const approvals = [];
  for (let i = 0; i < 1000; i++) {
    const created = new Date(now - (i % 40) * 86_400_000);
    approvals.push({
      id: `ar_bench_${i}`,
      environment: i % 2 === 0 ? "prod" : "dev",
      agent: "release-bot",
      playbook: "deploy-service",
      params: "{}",
      ticket: null,
      binding: createHash("sha256").update(String(i)).digest("hex"),
      requester: "release-bot",
      status: i % 3 === 0 ? "denied" : "consumed",
      created_at: created,
      expires_at: new Date(created.getTime() + 3_600_000),
      decided_at: new Date(created.getTime() + (i % 50) * 30_000),
    });
  }
  await db.insertInto("approval_requests").values(approvals).execute();
  const categories = ["unused-excess", "unjustified-use", "inherited-overreach"];
  await server.store.findings.recordScan(
    Array.from({ length: FINDINGS }, (_, i) => ({
      id: `f_bench_${i}`,
      category: categories[i % 3]!,
      severity: "high",
      title: `finding ${i}`,
      workload: { id: `k8s:Deployment:shop/w${i % 500}` },
      permission: { action: `k8s:core/secrets:get`, resource: `ns${i}/*` },
    })),
    { at: new Date(now - 86_400_000), workloads: [] },
  );
  await server.store.metrics.recordScanPosture({
    at: new Date(now - 86_400_000),
    clusterRoleBindings: 42,
    workflows: 120,
    workflowsExplicit: 80,
    findings: FINDINGS,
  });
  // audit records: a real hash chain, appended 5,000 at a time in one transaction each
  for (let start = 0; start < AUDIT; start += 5000) {
    await server.store.audit.appendBatch((head) => {
      const rows = [];
      let prevHash = head.hash;
      for (let k = 0; k < Math.min(5000, AUDIT - start); k++) {
        const record = {
          seq: head.seq + k + 1,
          at: new Date(now - (AUDIT - start - k) * 1000),
          type: "pdp.decision",
          data: {
            source: "authzen",
            agent: "cost-analyst",
            action: "aws:s3:GetObject",
            resource: `arn:aws:s3:::acme-reports/${start + k}.csv`,
            environment: "prod",
            decision: { allowed: (start + k) % 10 !== 0, code: "allowed", reasons: [] },
          },
          prevHash,
        };
        const hash = recordHash(record);
        rows.push({ ...record, hash });
        prevHash = hash;
      }
      return rows;
    });
  }
}

async function scrapes(
  label: string,
  opts: { dataDir: string; databaseUrl?: string | undefined; maxAgeSeconds?: number },
  fillFirst: boolean,
): Promise<Measurement> {
  const { policy } = await loadPolicy(join(import.meta.dirname, "..", "examples", "quickstart", "writ.yaml"));
  const server = await createServer({
    policy: policy!,
    dataDir: opts.dataDir,
    databaseUrl: opts.databaseUrl,
    version: "bench",
    metrics: { maxAgeSeconds: opts.maxAgeSeconds },
  });
  server.setBaseUrl(BASE);
  try {
    if (fillFirst) {
      const filling = performance.now();
      await fill(server);
      console.log(`  ${label}: store filled in ${((performance.now() - filling) / 1000).toFixed(1)} s`);
    }
    const headers = { authorization: `Bearer ${server.adminToken}` };
    const [m] = await measure(
      [
        {
          name: label,
          op: async () => {
            const res = await server.app.request(`${BASE}/metrics`, { headers });
            if (res.status !== 200) throw new Error(`scrape: ${res.status}`);
            await res.text();
          },
        },
      ],
      { warmupMs: 500, budgetMs: 4000, rounds: 2, maxIterations: 200 },
    );
    return m!;
  } finally {
    await server.close();
  }
}

async function scrapeBench(store: string, databaseUrl?: string): Promise<Measurement[]> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-metrics-"));
  try {
    const fresh = await scrapes(
      `${store}: store read on every scrape`,
      { dataDir: dir, databaseUrl, maxAgeSeconds: 0 },
      true,
    );
    const served = await scrapes(
      `${store}: figures up to 10 s old (default)`,
      { dataDir: dir, databaseUrl },
      false,
    );
    return [fresh, served];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  console.log(
    `metrics: a scrape with ${WRITS.toLocaleString("en-US")} writs, ${AUDIT.toLocaleString("en-US")} audit records, ${FINDINGS.toLocaleString("en-US")} findings (limit ${LIMIT_MS} ms)`,
  );
  const rows: Measurement[] = await scrapeBench("pglite");
  if (process.env.WRIT_BENCH_POSTGRES === "1") {
    const db = await tempDatabase();
    if (typeof db === "string") console.log(`  postgres: skipped (${db})`);
    else {
      try {
        rows.push(...(await scrapeBench("postgres", db.url)));
      } finally {
        await db.drop();
      }
    }
  }
  console.log("");
  console.log("| scrape | p50 ms | p99 ms | CPU ms/scrape | limit ms | p50 within limit | scrapes |");
  console.log("|---|---:|---:|---:|---:|---|---:|");
  for (const r of rows) {
    const p50 = r.p50 / 1000;
    const p99 = r.p99 / 1000;
    const cpu = r.cpuPerOp === undefined ? "—" : (r.cpuPerOp / 1000).toFixed(1);
    console.log(
      `| ${r.name} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${cpu} | ${LIMIT_MS} | ${p50 < LIMIT_MS ? "yes" : "NO"} | ${r.iterations} |`,
    );
  }
  console.log("(CPU: this process's, every thread; PGlite runs in it, PostgreSQL's server does not)");
}
