/**
 * What the store says about agents, read once for the inventory and the maturity check: live writs,
 * live downstream credentials, each agent's last activity and each live credential's writ's last
 * use (from the audit log), the findings queue, the gateway's tool pins, and every agent name the
 * store has seen. Reads only; the judging is done by pure functions over this (`inventory.ts`,
 * `maturity.ts`), so the console and the CLI answer the same.
 */
import { type Kysely, sql } from "kysely";
import type { Database } from "../store/index.js";
import { guard } from "../store/index.js";

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

/** Audit record types that are a use of a writ, with the writ's id at `data.writ` (or `data.context.writId`). */
export const WRIT_USE_TYPES = [
  "broker.writ_used",
  "gateway.call",
  "downstream.issued",
  "pdp.decision",
] as const;

/** How far before the oldest live credential the log is read for its uses (other servers' clocks). */
export const USE_MARGIN_MS = 10 * 60_000;

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
  /** Per agent: the latest audit record its own requests produced. */
  readonly lastActivity: ReadonlyMap<string, { readonly at: Date; readonly type: string }>;
  /** Per writ of `liveWrits` and `liveDownstream`: its latest use in the audit log. */
  readonly writLastUse: ReadonlyMap<string, Date>;
  /** Agent names in writs, the downstream ledger and the audit log (at most `MAX_STORE_AGENTS`). */
  readonly storeAgents: ReadonlySet<string>;
  /** Findings not fixed: `open`, `accepted`, `risk-accepted`. */
  readonly findings: readonly StoredFindingSummary[];
  /** Whether `writ scan --store` ever recorded anything (a finding, fixed or not). */
  readonly scanRecorded: boolean;
  readonly toolPins: readonly ToolPinSummary[];
}

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const int = (v: unknown): number => Number(v);
const obj = (v: unknown): Record<string, unknown> | undefined => {
  const parsed = typeof v === "string" ? (JSON.parse(v) as unknown) : v;
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : undefined;
};

/** Reads the state at `now`. Each read is one query; the audit log is scanned twice (grouped). */
export async function readOperationalState(
  db: Kysely<Database>,
  opts: { readonly now: Date },
): Promise<OperationalState> {
  const now = opts.now;
  return guard("read operational state", async () => {
    const writRows = await db
      .selectFrom("writs")
      .select(["id", "agent", "playbook", "environment", "issued_at", "expires_at", "max_uses", "uses"])
      .where("status", "=", "active")
      .where("expires_at", ">", now)
      .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]))
      .orderBy("agent")
      .orderBy("expires_at")
      .execute();
    const liveWrits: LiveWrit[] = writRows.map((r) => ({
      id: r.id,
      agent: r.agent,
      playbook: r.playbook,
      environment: r.environment,
      issuedAt: date(r.issued_at),
      expiresAt: date(r.expires_at),
      maxUses: r.max_uses ?? undefined,
      uses: int(r.uses),
    }));
    const dsRows = await db
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
      ])
      .where("r.state", "<>", "removed")
      .where("r.expires_at", ">", now)
      .orderBy("r.agent")
      .orderBy("r.created_at")
      .execute();
    const liveDownstream: LiveDownstream[] = dsRows.map((r) => ({
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

    // The latest agent-originated record per agent: one grouped scan of the log.
    const latestRows = await sql<{ seq: unknown }>`
      select max(seq) as seq from audit_records
      where type in (${sql.join(ACTIVITY_TYPES.map((t) => sql.lit(t)))})
      group by data->>'agent'`.execute(db);
    const latestSeq = latestRows.rows.map((r) => Number(r.seq));

    // The latest use of each live credential's writ: a use follows the writ's issuance, so only
    // the log's tail since the oldest of them is read (with a margin for clocks of other servers).
    const writLastUse = new Map<string, Date>();
    const wanted = [...new Set([...liveWrits.map((w) => w.id), ...liveDownstream.map((d) => d.writ)])];
    let oldest = Number.POSITIVE_INFINITY;
    for (const w of liveWrits) oldest = Math.min(oldest, w.issuedAt.getTime());
    for (const d of liveDownstream) oldest = Math.min(oldest, d.createdAt.getTime());
    if (wanted.length > 0) {
      const since = new Date(oldest - USE_MARGIN_MS);
      const uses = await sql<{ writ: string; at: unknown }>`
        select u.writ, max(u.at) as at from (
          select coalesce(data->>'writ', data->'context'->>'writId') as writ, at
          from audit_records
          where seq >= (select coalesce(min(seq), 9223372036854775807) from audit_records where at >= ${since})
            and type in (${sql.join(WRIT_USE_TYPES.map((t) => sql.lit(t)))})
        ) u
        where u.writ in (select unnest(${sql.val(wanted)}::text[]))
        group by u.writ`.execute(db);
      for (const r of uses.rows) writLastUse.set(r.writ, date(r.at));
    }

    const lastActivity = new Map<string, { at: Date; type: string }>();
    if (latestSeq.length > 0) {
      const latest = await sql<{ agent: string; at: unknown; type: string }>`
        select data->>'agent' as agent, at, type from audit_records
        where seq in (select unnest(${sql.val(latestSeq)}::bigint[]))
          and jsonb_typeof(data->'agent') = 'string'`.execute(db);
      for (const r of latest.rows) lastActivity.set(r.agent, { at: date(r.at), type: r.type });
    }

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

    const findingRows = await db
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
      .orderBy("id")
      .execute();
    const findings: StoredFindingSummary[] = findingRows.map((r) => ({
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

    const pinRows = await db
      .selectFrom("gateway_tool_pins")
      .select(["server", "tool", sql<unknown>`seen_definition->'annotations'`.as("annotations")])
      .orderBy("server")
      .orderBy("tool")
      .execute();
    const toolPins: ToolPinSummary[] = pinRows.map((r) => ({
      server: r.server,
      tool: r.tool,
      annotations: obj(r.annotations),
    }));

    return {
      at: now,
      liveWrits,
      liveDownstream,
      lastActivity,
      writLastUse,
      storeAgents,
      findings,
      scanRecorded,
      toolPins,
    };
  });
}
