/**
 * The agents inventory and the maturity check over a store the size of the issue's console figure
 * (10,000 writs, 100,000 audit records, 5,000 findings; 100 agents, 1,000 downstream records), on
 * the embedded store. Printed beside the issue's limit for a console page (200 ms server time) and
 * a floor: one plain scan of the same audit table (`count(*)`).
 *
 * Rows are generated in SQL (`generate_series`); the audit records' hashes are not a chain (nothing
 * here verifies it).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { loadConfigText } from "../src/config/index.js";
import { assessMaturity, buildInventory, readOperationalState } from "../src/operate/index.js";
import { openStore, type Store } from "../src/store/index.js";
import { measure } from "./harness.js";

const AGENTS = 100;
const WRITS = 10_000;
const RECORDS = 100_000;
const FINDINGS = 5_000;
const DOWNSTREAM = 1_000;

function config(): string {
  const agents = Array.from(
    { length: AGENTS },
    (_, i) => `  a${String(i).padStart(3, "0")}:
    owner: o${i}@acme.example
    purpose: bench
    runnerClass: deploy
    environments: [dev]
    baseline: [{ action: "k8s:apps/deployments:get", resource: "shop/web" }]
    playbooks: [deploy]`,
  ).join("\n");
  return `version: 1
environments: { dev: {} }
runnerClasses:
  deploy:
    ceiling: { maxTtl: 30m, allow: [{ action: "k8s:apps/deployments:get|patch", resource: "shop/*" }] }
playbooks:
  deploy:
    description: roll out
    risk: low
    environments: [dev]
    grants: [{ action: "k8s:apps/deployments:patch", resource: "shop/web" }]
    ttl: 15m
agents:
${agents}
`;
}

/** Fills a migrated store with the figure's rows, in SQL. */
export async function seedStore(db: Store["db"]): Promise<void> {
  await sql`insert into writs (id, agent, playbook, environment, params, grants, issued_at, expires_at, max_uses, uses, status)
    select 'w-' || g, 'a' || lpad((g % ${sql.lit(AGENTS)})::text, 3, '0'), 'deploy', 'dev', '{}'::jsonb,
      '[{"action":"k8s:apps/deployments:patch","resource":"shop/web"}]'::jsonb,
      now() - interval '10 minutes', now() + (case when g % 2 = 0 then interval '5 minutes' else interval '-1 minute' end),
      null, 0, 'active'
    from generate_series(1, ${sql.lit(WRITS)}) g`.execute(db);
  await sql`insert into audit_records (seq, at, type, data, prev_hash, hash)
    select g, now() - ((${sql.lit(RECORDS)} - g) || ' seconds')::interval,
      (array['pdp.decision','broker.writ_issued','gateway.call','broker.writ_used','downstream.issued'])[1 + g % 5],
      jsonb_build_object('agent', 'a' || lpad((g % ${sql.lit(AGENTS)})::text, 3, '0'), 'writ', 'w-' || (1 + g % ${sql.lit(WRITS)})),
      repeat('0', 64), encode(sha256(g::text::bytea), 'hex')
    from generate_series(1, ${sql.lit(RECORDS)}) g`.execute(db);
  await sql`insert into analyzer_findings (id, workload, action, resource, category, severity, title, status, finding, first_seen, last_seen, updated_at)
    select 'wf-' || g, 'k8s:Deployment:shop/w' || g, 'k8s:core/secrets:get', 'shop/*',
      (array['unused-excess','unjustified-use','inherited-overreach'])[1 + g % 3], 'high', 'finding ' || g,
      (array['open','accepted','fixed','risk-accepted'])[1 + g % 4],
      jsonb_build_object('workload', jsonb_build_object('id', 'k8s:Deployment:shop/w' || g, 'agent', 'a' || lpad((g % ${sql.lit(AGENTS)})::text, 3, '0'))),
      now(), now(), now()
    from generate_series(1, ${sql.lit(FINDINGS)}) g`.execute(db);
  await sql`insert into downstream_records (id, system, environment, writ, agent, kind, locator, state, expires_at, created_at)
    select 'd-' || g, 'aws', 'dev', 'w-' || g, 'a' || lpad((g % ${sql.lit(AGENTS)})::text, 3, '0'), 'role-session',
      '{}'::jsonb, 'created', now() + interval '5 minutes', now() - interval '5 minutes'
    from generate_series(1, ${sql.lit(DOWNSTREAM)}) g`.execute(db);
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-operate-"));
  const store = await openStore({ dataDir: dir });
  try {
    await store.migrate();
    const db = store.db;
    await seedStore(db);
    const loaded = await loadConfigText(config(), { file: "bench-writ.yaml" });
    if (!loaded.config) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
    const cfg = loaded.config;
    const now = new Date();
    const state = await readOperationalState(store, { now });
    const audit = { kind: "not-checked", reason: "bench" } as const;
    const results = await measure(
      [
        {
          name: "floor: select count(*) from audit_records",
          op: () => sql`select count(*) from audit_records`.execute(db),
        },
        {
          name: "readOperationalState (all store reads, whole log: the CLI)",
          op: () => readOperationalState(store, { now }),
        },
        {
          name: "readOperationalState (console: walk until every agent is found, at most 20,000 records)",
          op: () =>
            readOperationalState(store, {
              now,
              activity: { agents: [...cfg.agents.keys()], maxRecords: 20_000 },
            }),
        },
        {
          name: "readOperationalState (console, worst case: one agent never active, 20,000 records read)",
          op: () =>
            readOperationalState(store, {
              now,
              activity: { agents: [...cfg.agents.keys(), "never"], maxRecords: 20_000 },
            }),
        },
        { name: "buildInventory (pure, 100 agents)", op: () => buildInventory(cfg, state, { now }) },
        { name: "assessMaturity (pure, 100 agents)", op: () => assessMaturity(cfg, state, audit, { now }) },
      ],
      { budgetMs: 3000, rounds: 3, warmupMs: 500, maxIterations: 2000 },
    );
    console.log(
      `operate: ${WRITS.toLocaleString("en-US")} writs, ${RECORDS.toLocaleString("en-US")} audit records, ${FINDINGS.toLocaleString("en-US")} findings, ${AGENTS} agents, embedded store; limit: a console page in 200 ms\n`,
    );
    console.log("| case | runs | p50 ms | p99 ms |");
    console.log("|---|---:|---:|---:|");
    for (const m of results)
      console.log(
        `| ${m.name} | ${m.iterations} | ${(m.p50 / 1000).toFixed(1)} | ${(m.p99 / 1000).toFixed(1)} |`,
      );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
