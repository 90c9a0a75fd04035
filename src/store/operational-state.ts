/**
 * What the store says about agents, read once for the inventory and the maturity check: live writs,
 * live downstream credentials, each agent's last activity (from the audit log, walked back from its
 * newest record as far as the caller bounds it), each live credential's writ's last use (the writ's
 * `last_used_at`), the findings queue, the gateway's tool pins, and every agent name the
 * store has seen. Reads only; the judging is done by pure functions over this (`inventory.ts`,
 * `maturity.ts` in `operate/`), so the console and the CLI answer the same.
 */
import { type Kysely, sql } from "kysely";
import { guard } from "./errors.js";
import { toolPinRepository } from "./pins.js";
import type { Database } from "./schema.js";

/** Audit record types an agent's own request produces, with `data.agent` naming it. */
export const ACTIVITY_TYPES = [
  "pdp.decision",
  "broker.baseline",
  "broker.writ_issued",
  "broker.denied",
  "broker.approval_required",
  "approval.request",
  "gateway.session_start",
  "gateway.call",
  "gateway.call_failed",
  "downstream.issued",
  "downstream.refused",
] as const;

/** Audit records read per step of the walk back through the log for agents' last activity. */
export const ACTIVITY_STEP = 2000;

/**
 * How much of the audit log the walk for agents' last activity reads: it goes back from the newest
 * record by `seq` until every agent of `agents` is found or `maxRecords` have been read. Without
 * `agents` it never stops early; without `maxRecords` it may read the whole log (exact).
 */
export interface ActivityBounds {
  readonly agents?: readonly string[] | undefined;
  readonly maxRecords?: number | undefined;
}

/** What the walk read: an agent not found has no activity in it (none at all when `complete`). */
export interface ActivityScan {
  /** The walk reached the log's first record: an agent it did not find has never been active. */
  readonly complete: boolean;
  /** Records read (agents' or not). */
  readonly records: number;
  /** The time of the oldest record read (undefined when none was). */
  readonly since: Date | undefined;
}

/** The most names of agents the store has seen that `storeAgents` keeps (audit data is partly caller-supplied). */
export const MAX_STORE_AGENTS = 1000;

export interface LiveWrit {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly maxUses: number | undefined;
  readonly uses: number;
}

export interface LiveDownstream {
  readonly id: string;
  readonly system: string;
  readonly environment: string;
  readonly writ: string;
  readonly agent: string;
  readonly kind: string;
  readonly state: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** An object its writ's end made (a deny), meant to outlive the writ. */
  readonly outlivesWrit: boolean;
  /** Its writ: `active`, `revoked`, or `missing` when the store has no such writ. */
  readonly writStatus: "active" | "revoked" | "missing";
  readonly writExpiresAt: Date | undefined;
}

export interface StoredFindingSummary {
  readonly id: string;
  readonly workload: string;
  /** The agent the scan tied the workload to, when it did. */
  readonly agent: string | undefined;
  readonly category: string;
  readonly severity: string;
  readonly status: string;
  readonly title: string;
}

export interface ToolPinSummary {
  readonly server: string;
  readonly tool: string;
  /** The MCP annotations of the definition last seen (`readOnlyHint`, `destructiveHint`, …). */
  readonly annotations: Readonly<Record<string, unknown>> | undefined;
}

export interface OperationalState {
  readonly at: Date;
  readonly liveWrits: readonly LiveWrit[];
  readonly liveDownstream: readonly LiveDownstream[];
  /** Per agent: the latest audit record its own requests produced, within `activityScan`. */
  readonly lastActivity: ReadonlyMap<string, { readonly at: Date; readonly type: string }>;
  /** How much of the audit log `lastActivity` comes from. */
  readonly activityScan: ActivityScan;
  /** Per writ of `liveWrits` and `liveDownstream`: its latest spent use (`writs.last_used_at`). */
  readonly writLastUse: ReadonlyMap<string, Date>;
  /** Agent names in writs, the downstream ledger and the audit log's part `activityScan` read (at most `MAX_STORE_AGENTS`). */
  readonly storeAgents: ReadonlySet<string>;
  /** Findings not fixed: `open`, `accepted`, `risk-accepted`. */
  readonly findings: readonly StoredFindingSummary[];
  /** Whether `writ scan --store` ever recorded anything (a finding, fixed or not). */
  readonly scanRecorded: boolean;
  readonly toolPins: readonly ToolPinSummary[];
}

/** Rows read per query from the two large tables (live writs, findings), ordered by id. */
export const PAGE_ROWS = 500;

/**
 * Reads a large result in pages by id, so that an embedded store, which runs in this process,
 * lets other requests in between the pages instead of blocking them for the whole read.
 */
async function inPages<R extends { id: string }>(page: (after: string) => Promise<R[]>): Promise<R[]> {
  const all: R[] = [];
  let after = "";
  for (;;) {
    const rows = await page(after);
    all.push(...rows);
    if (rows.length < PAGE_ROWS) return all;
    after = rows[rows.length - 1]!.id;
    await new Promise((r) => setImmediate(r));
  }
}

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const int = (v: unknown): number => Number(v);
const obj = (v: unknown): Record<string, unknown> | undefined => {
  const parsed = typeof v === "string" ? (JSON.parse(v) as unknown) : v;
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : undefined;
};

/**
 * The latest agent-originated record per agent, walking back from the log's head by `seq` (the
 * primary key: each step is a range read of `ACTIVITY_STEP` records, one row per agent out), until
 * `bounds` says stop. Nothing is added to the append path (no index on the records' data).
 */
async function readLastActivity(
  db: Kysely<Database>,
  bounds: ActivityBounds | undefined,
): Promise<{ lastActivity: Map<string, { at: Date; type: string }>; activityScan: ActivityScan }> {
  const lastActivity = new Map<string, { at: Date; type: string }>();
  const ends = await sql<{ lo: unknown; hi: unknown }>`
    select min(seq) as lo, max(seq) as hi from audit_records`.execute(db);
  const lo = ends.rows[0]?.lo == null ? undefined : Number(ends.rows[0].lo);
  const hi = ends.rows[0]?.hi == null ? undefined : Number(ends.rows[0].hi);
  if (lo === undefined || hi === undefined)
    return { lastActivity, activityScan: { complete: true, records: 0, since: undefined } };
  const wanted = bounds?.agents === undefined ? undefined : new Set(bounds.agents);
  const max = bounds?.maxRecords ?? Number.POSITIVE_INFINITY;
  const types = sql.join(ACTIVITY_TYPES.map((t) => sql.lit(t)));
  let top = hi;
  let since: Date | undefined;
  let records = 0;
  while (top >= lo && records < max) {
    const bottom = Math.max(lo, top - Math.min(ACTIVITY_STEP, max - records) + 1);
    const rows = await sql<{
      agent: string | null;
      at: unknown;
      type: string | null;
      oldest: unknown;
      n: unknown;
    }>`
      select a.agent, a.at, a.type, s.oldest, s.n from
        (select min(at) as oldest, count(*) as n from audit_records where seq between ${bottom} and ${top}) s
        left join (
          select distinct on (data->>'agent') data->>'agent' as agent, at, type from audit_records
          where seq between ${bottom} and ${top} and type in (${types})
            and jsonb_typeof(data->'agent') = 'string'
          order by data->>'agent', seq desc
        ) a on true`.execute(db);
    for (const r of rows.rows) {
      if (r.agent !== null && r.type !== null && !lastActivity.has(r.agent))
        lastActivity.set(r.agent, { at: date(r.at), type: r.type });
    }
    const first = rows.rows[0];
    if (first?.oldest != null) since = date(first.oldest);
    records += Number(first?.n ?? 0);
    top = bottom - 1;
    await new Promise((r) => setImmediate(r)); // let other requests in between steps (embedded store)
    if (wanted !== undefined && [...wanted].every((a) => lastActivity.has(a))) break;
  }
  return { lastActivity, activityScan: { complete: top < lo, records, since } };
}

type WritRow = {
  id: string;
  agent: string;
  playbook: string;
  environment: string;
  issued_at: Date | string;
  expires_at: Date | string;
  max_uses: number | null;
  uses: number | string;
  last_used_at: Date | string | null;
};

/** Live writs (active, unexpired, uses left), by agent then expiry, with each row's last use. */
async function readLiveWrits(
  db: Kysely<Database>,
  now: Date,
): Promise<{ rows: WritRow[]; liveWrits: LiveWrit[] }> {
  const rows: WritRow[] = await inPages((after) =>
    db
      .selectFrom("writs")
      .select([
        "id",
        "agent",
        "playbook",
        "environment",
        "issued_at",
        "expires_at",
        "max_uses",
        "uses",
        "last_used_at",
      ])
      .where("status", "=", "active")
      .where("expires_at", ">", now)
      .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]))
      .where("id", ">", after)
      .orderBy("id")
      .limit(PAGE_ROWS)
      .execute(),
  );
  rows.sort(
    (a, b) =>
      (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0) ||
      date(a.expires_at).getTime() - date(b.expires_at).getTime() ||
      (a.id < b.id ? -1 : 1),
  );
  const liveWrits: LiveWrit[] = rows.map((r) => ({
    id: r.id,
    agent: r.agent,
    playbook: r.playbook,
    environment: r.environment,
    issuedAt: date(r.issued_at),
    expiresAt: date(r.expires_at),
    maxUses: r.max_uses ?? undefined,
    uses: int(r.uses),
  }));
  return { rows, liveWrits };
}

/** Downstream credentials not removed and not expired, with their writ's state and last use. */
async function readLiveDownstream(db: Kysely<Database>, now: Date) {
  const rows = await db
    .selectFrom("downstream_records as r")
    .leftJoin("writs as w", "w.id", "r.writ")
    .select([
      "r.id",
      "r.system",
      "r.environment",
      "r.writ",
      "r.agent",
      "r.kind",
      "r.state",
      "r.created_at",
      "r.expires_at",
      "r.outlives_writ",
      "w.status as writ_status",
      "w.expires_at as writ_expires_at",
      "w.last_used_at as writ_last_used_at",
    ])
    .where("r.state", "<>", "removed")
    .where("r.expires_at", ">", now)
    .orderBy("r.agent")
    .orderBy("r.created_at")
    .execute();
  const liveDownstream: LiveDownstream[] = rows.map((r) => ({
    id: r.id,
    system: r.system,
    environment: r.environment,
    writ: r.writ,
    agent: r.agent,
    kind: r.kind,
    state: r.state,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    outlivesWrit: r.outlives_writ === true,
    writStatus: r.writ_status === null ? "missing" : r.writ_status === "revoked" ? "revoked" : "active",
    writExpiresAt: r.writ_expires_at === null ? undefined : date(r.writ_expires_at),
  }));
  return { rows, liveDownstream };
}

/** Agents the store knows (writs, downstream ledger), then those seen in the audit walk, up to the cap. */
async function readStoreAgents(
  db: Kysely<Database>,
  lastActivity: ReadonlyMap<string, unknown>,
): Promise<Set<string>> {
  const storeAgents = new Set<string>();
  const names = await sql<{ agent: string }>`
    select agent from (
      select agent from writs
      union select agent from downstream_records
    ) a order by agent limit ${sql.lit(MAX_STORE_AGENTS)}`.execute(db);
  for (const r of names.rows) storeAgents.add(r.agent);
  for (const agent of [...lastActivity.keys()].sort()) {
    if (storeAgents.size >= MAX_STORE_AGENTS) break;
    storeAgents.add(agent);
  }
  return storeAgents;
}

/** Open findings (not fixed), and whether any scan was ever recorded. */
async function readFindings(
  db: Kysely<Database>,
): Promise<{ findings: StoredFindingSummary[]; scanRecorded: boolean }> {
  const rows = await inPages((after) =>
    db
      .selectFrom("analyzer_findings")
      .select([
        "id",
        "workload",
        "category",
        "severity",
        "status",
        "title",
        sql<string | null>`finding->'workload'->>'agent'`.as("agent"),
      ])
      .where("status", "<>", "fixed")
      .where("id", ">", after)
      .orderBy("id")
      .limit(PAGE_ROWS)
      .execute(),
  );
  const findings: StoredFindingSummary[] = rows.map((r) => ({
    id: r.id,
    workload: r.workload,
    agent: r.agent ?? undefined,
    category: r.category,
    severity: r.severity,
    status: r.status,
    title: r.title,
  }));
  const scanRecorded =
    findings.length > 0 ||
    (await db.selectFrom("analyzer_findings").select("id").limit(1).executeTakeFirst()) !== undefined;
  return { findings, scanRecorded };
}

async function readToolPins(db: Kysely<Database>): Promise<ToolPinSummary[]> {
  const rows = await toolPinRepository(db).annotations();
  return rows.map((r) => ({ server: r.server, tool: r.tool, annotations: obj(r.annotations) }));
}

/**
 * Reads the state at `now`. Each read is one query, except the walk back through the audit log for
 * agents' last activity, bounded by `activity` (see `ActivityBounds`; exact without bounds).
 */
async function readOperationalState(
  db: Kysely<Database>,
  opts: OperationalStateOptions,
): Promise<OperationalState> {
  const now = opts.now;
  return guard("read operational state", async () => {
    const { rows: writRows, liveWrits } = await readLiveWrits(db, now);
    const { rows: dsRows, liveDownstream } = await readLiveDownstream(db, now);

    // Each live credential's writ's latest use: the writ's own `last_used_at` (set as a use is
    // spent), read for the writs of downstream credentials that are not live themselves.
    const writLastUse = new Map<string, Date>();
    for (const r of writRows) if (r.last_used_at !== null) writLastUse.set(r.id, date(r.last_used_at));
    for (const r of dsRows)
      if (r.writ_last_used_at !== null && !writLastUse.has(r.writ))
        writLastUse.set(r.writ, date(r.writ_last_used_at));

    const { lastActivity, activityScan } = await readLastActivity(db, opts.activity);
    const storeAgents = await readStoreAgents(db, lastActivity);
    const { findings, scanRecorded } = await readFindings(db);
    const toolPins = await readToolPins(db);
    return {
      at: now,
      liveWrits,
      liveDownstream,
      lastActivity,
      activityScan,
      writLastUse,
      storeAgents,
      findings,
      scanRecorded,
      toolPins,
    };
  });
}

export interface OperationalStateOptions {
  readonly now: Date;
  readonly activity?: ActivityBounds | undefined;
}

export interface OperationalStateReader {
  /**
   * Reads the state at `now`. Each read is one query, except the walk back through the audit log
   * for agents' last activity, bounded by `activity` (see `ActivityBounds`; exact without bounds).
   */
  read(opts: OperationalStateOptions): Promise<OperationalState>;
}

export function operationalStateReader(db: Kysely<Database>): OperationalStateReader {
  return { read: (opts) => readOperationalState(db, opts) };
}
