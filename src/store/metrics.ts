/**
 * The store's side of the metrics (docs/metrics.md): aggregates over writs, approvals, findings and
 * the latest stored scan, each one bounded statement (an index range or a table of bounded size), so
 * a scrape costs the same whether the audit log holds a thousand records or a million — the audit
 * log is never read here. Durations are in seconds.
 */
import { type Kysely, sql } from "kysely";
import { guard, toInt } from "./errors.js";
import type { Database } from "./schema.js";

export interface LifetimeQuantiles {
  /** Writs counted (issued in the window; for `used`, those used at least once). */
  readonly count: number;
  readonly p50: number | undefined;
  readonly p90: number | undefined;
}

export interface StoreFigures {
  /** Spent uses of writs issued in the window, by playbook and environment. */
  readonly usesByPlaybook: readonly { playbook: string; environment: string; uses: number }[];
  /** Issued TTL (expiry − issuance) of writs issued in the window. */
  readonly lifetimeIssued: LifetimeQuantiles;
  /** First to last use of writs issued in the window that were used. */
  readonly lifetimeUsed: LifetimeQuantiles;
  /** Writs issued in the window in the production environments, and those with a ticket or an approval. */
  readonly prodWrits: number;
  readonly prodWritsTicketOrApprover: number;
  /** Approval requests approved in the window in the production environments, and their mean wait. */
  readonly prodApprovals: number;
  readonly prodApprovalMeanSeconds: number | undefined;
  /** Findings by category and status (the whole queue). */
  readonly findings: readonly { category: string; status: string; count: number }[];
  /** The latest `writ scan --store`'s posture, when one was stored. */
  readonly latestScan:
    | { at: Date; clusterRoleBindings: number; workflows: number; workflowsExplicit: number }
    | undefined;
}

export interface FigureOptions {
  readonly now: Date;
  /** How far back the windowed figures look (seconds). */
  readonly windowSeconds: number;
  /** The environments counted as production. */
  readonly production: readonly string[];
}

const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

/** Every figure, in parallel statements on the store's pool. */
function storeFigures(db: Kysely<Database>, opts: FigureOptions): Promise<StoreFigures> {
  const since = new Date(opts.now.getTime() - opts.windowSeconds * 1000);
  // no environment id is empty: `in ('')` matches nothing
  const prod = opts.production.length > 0 ? opts.production : [""];
  return guard("read metrics", async () => {
    const [writRows, approvals, findings, scan] = await Promise.all([
      // one pass over the window's writs (index range on issued_at): per playbook and environment
      // their uses, and over them all (the empty grouping set) the lifetimes and production counts
      sql<{
        playbook: string | null;
        environment: string | null;
        total: number;
        uses: string | number | null;
        issued: string | number;
        i50: number | null;
        i90: number | null;
        used: string | number;
        u50: number | null;
        u90: number | null;
        prod: string | number;
        backed: string | number;
      }>`
        select playbook, environment, grouping(playbook, environment) as total,
          sum(uses) as uses,
          count(*) as issued,
          case when grouping(playbook, environment) = 0 then null else
            percentile_cont(0.5) within group (order by extract(epoch from expires_at - issued_at)) end as i50,
          case when grouping(playbook, environment) = 0 then null else
            percentile_cont(0.9) within group (order by extract(epoch from expires_at - issued_at)) end as i90,
          count(first_used_at) as used,
          case when grouping(playbook, environment) = 0 then null else
            percentile_cont(0.5) within group (order by extract(epoch from last_used_at - first_used_at)) end as u50,
          case when grouping(playbook, environment) = 0 then null else
            percentile_cont(0.9) within group (order by extract(epoch from last_used_at - first_used_at)) end as u90,
          count(*) filter (where environment in (${sql.join(prod)})) as prod,
          count(*) filter (where environment in (${sql.join(prod)})
            and (ticket is not null or approval_request is not null)) as backed
        from writs
        where issued_at >= ${since} and issued_at <= ${opts.now}
        group by grouping sets ((playbook, environment), ())`.execute(db),
      db
        .selectFrom("approval_requests")
        .select([
          sql<number>`count(*)`.as("n"),
          sql<number>`avg(extract(epoch from decided_at - created_at))`.as("mean"),
        ])
        .where("status", "in", ["approved", "consumed"])
        .where("decided_at", "is not", null)
        .where("decided_at", ">=", since)
        .where("environment", "in", prod)
        .executeTakeFirstOrThrow(),
      db
        .selectFrom("analyzer_findings")
        .select(["category", "status", sql<number>`count(*)`.as("n")])
        .groupBy(["category", "status"])
        .execute(),
      db
        .selectFrom("analyzer_scans")
        .select(["at", "cluster_role_bindings", "workflows", "workflows_explicit"])
        .orderBy("seq", "desc")
        .limit(1)
        .executeTakeFirst(),
    ]);
    const rows = writRows.rows;
    const all = rows.find((r) => Number(r.total) !== 0);
    return {
      usesByPlaybook: rows
        .filter((r) => Number(r.total) === 0 && Number(r.uses ?? 0) > 0)
        .map((r) => ({
          playbook: r.playbook ?? "",
          environment: r.environment ?? "",
          uses: toInt(r.uses, "uses"),
        })),
      lifetimeIssued: { count: toInt(all?.issued ?? 0, "count"), p50: num(all?.i50), p90: num(all?.i90) },
      lifetimeUsed: { count: toInt(all?.used ?? 0, "count"), p50: num(all?.u50), p90: num(all?.u90) },
      prodWrits: toInt(all?.prod ?? 0, "count"),
      prodWritsTicketOrApprover: toInt(all?.backed ?? 0, "count"),
      prodApprovals: toInt(approvals.n, "count"),
      prodApprovalMeanSeconds: num(approvals.mean),
      findings: findings.map((r) => ({ category: r.category, status: r.status, count: toInt(r.n, "count") })),
      latestScan:
        scan === undefined
          ? undefined
          : {
              at: scan.at,
              clusterRoleBindings: scan.cluster_role_bindings,
              workflows: scan.workflows,
              workflowsExplicit: scan.workflows_explicit,
            },
    };
  });
}

/** Records the posture figures of one stored scan (beside its findings, `recordScan`). */
function recordScanPosture(db: Kysely<Database>, posture: ScanPosture): Promise<void> {
  return guard("record scan posture", async () => {
    await db
      .insertInto("analyzer_scans")
      .values({
        at: posture.at,
        cluster_role_bindings: posture.clusterRoleBindings,
        workflows: posture.workflows,
        workflows_explicit: posture.workflowsExplicit,
        findings: posture.findings,
      })
      .execute();
  });
}

export interface ScanPosture {
  readonly at: Date;
  readonly clusterRoleBindings: number;
  readonly workflows: number;
  readonly workflowsExplicit: number;
  readonly findings: number;
}

/** The store's metrics: the aggregates a scrape reads, and the posture a stored scan records. */
export interface StoreMetrics {
  figures(opts: FigureOptions): Promise<StoreFigures>;
  recordScanPosture(posture: ScanPosture): Promise<void>;
}

export function storeMetrics(db: Kysely<Database>): StoreMetrics {
  return {
    figures: (opts) => storeFigures(db, opts),
    recordScanPosture: (posture) => recordScanPosture(db, posture),
  };
}
