/**
 * The analyzer's findings queue. `recordScan` applies one scan in a transaction: new findings are
 * opened, a finding whose category changed is reclassified (same id: the id is the workload and the
 * permission), a fixed finding seen again is reopened, and an open one the scan no longer finds —
 * for a workload the scan covered — is marked fixed. Every change is a history row; people change
 * the status with `setStatus` (accepted, risk-accepted, open, fixed).
 *
 * The store needs only the finding's shape, not the analyzer: the smallest type it reads.
 */
import type { Kysely, Selectable, Transaction } from "kysely";
import { q, WritError } from "../core/index.js";
import { guard, toInt } from "./errors.js";
import type { AnalyzerFindingHistoryTable, AnalyzerFindingsTable, Database } from "./schema.js";

export const ERR_FINDING_NOT_FOUND = "ERR_FINDING_NOT_FOUND";
export const ERR_FINDING_STATUS = "ERR_FINDING_STATUS";

export const FINDING_STATUSES = ["open", "accepted", "fixed", "risk-accepted"] as const;
export type FindingStatus = (typeof FINDING_STATUSES)[number];

export interface FindingInput {
  readonly id: string;
  readonly category: string;
  readonly severity: string;
  readonly title: string;
  readonly workload: { readonly id: string };
  readonly permission: { readonly action: string; readonly resource: string };
}

export interface StoredFinding {
  readonly id: string;
  readonly workload: string;
  readonly action: string;
  readonly resource: string;
  readonly category: string;
  readonly severity: string;
  readonly title: string;
  readonly status: FindingStatus;
  readonly finding: unknown;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
}

export interface FindingFilter {
  readonly status?: string | undefined;
  readonly category?: string | undefined;
  readonly severity?: string | undefined;
  readonly workload?: string | undefined;
}

/** A finding without its document and history (a line of a list). */
export type FindingLine = Omit<StoredFinding, "finding" | "firstSeen" | "status"> & {
  readonly status: string;
};

export interface FindingHistoryEntry {
  readonly seq: number;
  readonly at: Date;
  readonly kind: string;
  readonly fromCategory: string | null;
  readonly toCategory: string | null;
  readonly fromStatus: string | null;
  readonly toStatus: string | null;
  readonly actor: string;
  readonly note: string | null;
}

export interface ScanSummary {
  readonly opened: number;
  readonly reclassified: number;
  readonly reopened: number;
  readonly fixed: number;
  readonly unchanged: number;
}

export interface FindingRepository {
  /** Applies one scan. `workloads`: what the scan covered (only their findings can become fixed). */
  recordScan(
    findings: readonly FindingInput[],
    opts: { at: Date; workloads: readonly string[]; actor?: string },
  ): Promise<ScanSummary>;
  list(filter?: { status?: FindingStatus; category?: string }): Promise<StoredFinding[]>;
  /**
   * A page of findings matching every field of `filter` given, by workload then id, starting after
   * `after` ([workload, id]); at most `limit`, without their documents.
   */
  page(
    filter: FindingFilter,
    after: readonly [string, string] | undefined,
    limit: number,
  ): Promise<FindingLine[]>;
  get(id: string): Promise<{ finding: StoredFinding; history: FindingHistoryEntry[] }>;
  setStatus(
    id: string,
    status: FindingStatus,
    opts: { actor: string; note?: string; at: Date },
  ): Promise<StoredFinding>;
}

function toFinding(r: Selectable<AnalyzerFindingsTable>): StoredFinding {
  return {
    id: r.id,
    workload: r.workload,
    action: r.action,
    resource: r.resource,
    category: r.category,
    severity: r.severity,
    title: r.title,
    status: r.status as FindingStatus,
    finding: typeof r.finding === "string" ? JSON.parse(r.finding) : r.finding,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
  };
}

function toHistory(r: Selectable<AnalyzerFindingHistoryTable>): FindingHistoryEntry {
  return {
    seq: toInt(r.seq, "analyzer_finding_history.seq"),
    at: r.at,
    kind: r.kind,
    fromCategory: r.from_category,
    toCategory: r.to_category,
    fromStatus: r.from_status,
    toStatus: r.to_status,
    actor: r.actor,
    note: r.note,
  };
}

type ScanOpts = { at: Date; workloads: readonly string[]; actor?: string };
type Counts = { -readonly [K in keyof ScanSummary]: number };
type HistoryExtra = Partial<
  Omit<AnalyzerFindingHistoryTable, "seq" | "finding_id" | "kind" | "at" | "actor">
>;
type Trx = Transaction<Database>;

function addHistory(trx: Trx, opts: ScanOpts, finding_id: string, kind: string, extra: HistoryExtra) {
  return trx
    .insertInto("analyzer_finding_history")
    .values({
      finding_id,
      kind,
      at: opts.at,
      actor: opts.actor ?? "writ scan",
      from_category: extra.from_category ?? null,
      to_category: extra.to_category ?? null,
      from_status: extra.from_status ?? null,
      to_status: extra.to_status ?? null,
      note: extra.note ?? null,
    })
    .execute();
}

/** One finding of a scan: opened, or updated (reopened, reclassified, severity changed, unchanged). */
async function recordFinding(trx: Trx, f: FindingInput, opts: ScanOpts, summary: Counts): Promise<void> {
  const row = await trx
    .selectFrom("analyzer_findings")
    .selectAll()
    .where("id", "=", f.id)
    .forUpdate()
    .executeTakeFirst();
  const values = {
    workload: f.workload.id,
    action: f.permission.action,
    resource: f.permission.resource,
    category: f.category,
    severity: f.severity,
    title: f.title,
    finding: JSON.stringify(f),
    last_seen: opts.at,
    updated_at: opts.at,
  };
  if (!row) {
    await trx
      .insertInto("analyzer_findings")
      .values({ id: f.id, ...values, first_seen: opts.at })
      .execute();
    await addHistory(trx, opts, f.id, "opened", { to_category: f.category, to_status: "open" });
    summary.opened++;
    return;
  }
  let changed = false;
  let status = row.status;
  if (row.status === "fixed") {
    status = "open";
    await addHistory(trx, opts, f.id, "reopened", {
      from_status: "fixed",
      to_status: "open",
      note: "found again by a scan",
    });
    summary.reopened++;
    changed = true;
  }
  if (row.category !== f.category) {
    await addHistory(trx, opts, f.id, "reclassified", {
      from_category: row.category,
      to_category: f.category,
    });
    summary.reclassified++;
    changed = true;
  } else if (row.severity !== f.severity) {
    await addHistory(trx, opts, f.id, "severity", { note: `${row.severity} → ${f.severity}` });
  }
  if (!changed) summary.unchanged++;
  await trx
    .updateTable("analyzer_findings")
    .set({ ...values, status })
    .where("id", "=", f.id)
    .execute();
}

/** Open findings of the scanned workloads that the scan no longer found become fixed. */
async function markStaleFixed(
  trx: Trx,
  seen: ReadonlySet<string>,
  opts: ScanOpts,
  summary: Counts,
): Promise<void> {
  if (opts.workloads.length === 0) return;
  const stale = await trx
    .selectFrom("analyzer_findings")
    .select(["id", "status"])
    .where("workload", "in", [...opts.workloads])
    .where("status", "!=", "fixed")
    .forUpdate()
    .execute();
  for (const s of stale) {
    if (seen.has(s.id)) continue;
    await trx
      .updateTable("analyzer_findings")
      .set({ status: "fixed", updated_at: opts.at })
      .where("id", "=", s.id)
      .execute();
    await addHistory(trx, opts, s.id, "fixed", {
      from_status: s.status,
      to_status: "fixed",
      note: "no longer found by a scan of its workload",
    });
    summary.fixed++;
  }
}

function recordScan(
  db: Kysely<Database>,
  findings: readonly FindingInput[],
  opts: ScanOpts,
): Promise<ScanSummary> {
  return guard("record scan", () =>
    db.transaction().execute(async (trx) => {
      const summary: Counts = { opened: 0, reclassified: 0, reopened: 0, fixed: 0, unchanged: 0 };
      const seen = new Set<string>();
      for (const f of findings) {
        if (seen.has(f.id)) continue;
        seen.add(f.id);
        await recordFinding(trx, f, opts, summary);
      }
      await markStaleFixed(trx, seen, opts, summary);
      return summary;
    }),
  );
}

function listFindings(
  db: Kysely<Database>,
  filter: { status?: FindingStatus; category?: string } = {},
): Promise<StoredFinding[]> {
  return guard("list findings", async () => {
    let query = db.selectFrom("analyzer_findings").selectAll();
    if (filter.status) query = query.where("status", "=", filter.status);
    if (filter.category) query = query.where("category", "=", filter.category);
    const rows = await query.orderBy("last_seen", "desc").orderBy("id").execute();
    return rows.map(toFinding);
  });
}

function findingPage(
  db: Kysely<Database>,
  filter: FindingFilter,
  after: readonly [string, string] | undefined,
  limit: number,
): Promise<FindingLine[]> {
  return guard("list findings", async () => {
    let sel = db
      .selectFrom("analyzer_findings")
      .select([
        "id",
        "workload",
        "action",
        "resource",
        "category",
        "severity",
        "title",
        "status",
        "last_seen",
      ]);
    if (filter.status) sel = sel.where("status", "=", filter.status);
    if (filter.category) sel = sel.where("category", "=", filter.category);
    if (filter.severity) sel = sel.where("severity", "=", filter.severity);
    if (filter.workload) sel = sel.where("workload", "=", filter.workload);
    if (after) {
      const [w, id] = after;
      sel = sel.where((eb) =>
        eb.or([eb("workload", ">", w), eb.and([eb("workload", "=", w), eb("id", ">", id)])]),
      );
    }
    const rows = await sel.orderBy("workload").orderBy("id").limit(limit).execute();
    return rows.map(({ last_seen, ...r }) => ({ ...r, lastSeen: new Date(last_seen) }));
  });
}

function getFinding(db: Kysely<Database>, id: string) {
  return guard("get finding", async () => {
    const row = await db.selectFrom("analyzer_findings").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw new WritError(ERR_FINDING_NOT_FOUND, `finding ${q(id)}: not found`);
    const history = await db
      .selectFrom("analyzer_finding_history")
      .selectAll()
      .where("finding_id", "=", id)
      .orderBy("seq")
      .execute();
    return { finding: toFinding(row), history: history.map(toHistory) };
  });
}

function setFindingStatus(
  db: Kysely<Database>,
  id: string,
  status: FindingStatus,
  opts: { actor: string; note?: string; at: Date },
): Promise<StoredFinding> {
  return guard("set finding status", () =>
    db.transaction().execute(async (trx) => {
      if (!(FINDING_STATUSES as readonly string[]).includes(status))
        throw new WritError(
          ERR_FINDING_STATUS,
          `status ${q(status)}: expected one of ${FINDING_STATUSES.join(", ")}`,
        );
      const row = await trx
        .selectFrom("analyzer_findings")
        .selectAll()
        .where("id", "=", id)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new WritError(ERR_FINDING_NOT_FOUND, `finding ${q(id)}: not found`);
      if (row.status !== status) {
        await trx
          .updateTable("analyzer_findings")
          .set({ status, updated_at: opts.at })
          .where("id", "=", id)
          .execute();
        await addHistory(trx, { at: opts.at, workloads: [], actor: opts.actor }, id, "status", {
          from_status: row.status,
          to_status: status,
          note: opts.note ?? null,
        });
      }
      return toFinding({ ...row, status, updated_at: opts.at });
    }),
  );
}

export function findingRepository(db: Kysely<Database>): FindingRepository {
  return {
    recordScan: (findings, opts) => recordScan(db, findings, opts),
    list: (filter) => listFindings(db, filter),
    page: (filter, after, limit) => findingPage(db, filter, after, limit),
    get: (id) => getFinding(db, id),
    setStatus: (id, status, opts) => setFindingStatus(db, id, status, opts),
  };
}
