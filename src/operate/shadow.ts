/**
 * The shadow report (docs/shadow.md): what rules in `mode: shadow` would have blocked since a time,
 * grouped by rule, agent and reason, with counts, first and last seen and the newest example — read
 * from the audit records' `shadow` lists (decisions, tool calls, writs issued or refused).
 *
 * Bounded: one read of at most `MAX_SCAN` records, the newest, at or after `since`; the groups are
 * counted in the database (a record with several shadow entries counts once per entry), at most
 * `MAX_GROUPS` of them returned, the largest first. `complete: false` says older records in the
 * period were not read.
 */
import { type Kysely, sql } from "kysely";
import type { Database } from "../store/index.js";

export const MAX_SCAN = 100_000;
export const MAX_GROUPS = 500;

export interface ShadowExample {
  readonly seq: number;
  readonly at: string;
  /** The audit record's type: `pdp.decision`, `gateway.call`, `broker.writ_issued`, `broker.denied`. */
  readonly type: string;
  readonly action?: string | undefined;
  readonly resource?: string | undefined;
  readonly tool?: string | undefined;
  readonly playbook?: string | undefined;
  readonly environment?: string | undefined;
  /** Whether the request went on (`allowed`) or an enforcing rule denied it as well (`denied`). */
  readonly outcome: "allowed" | "denied";
  readonly message: string;
}

export interface ShadowGroup {
  readonly rule: string;
  readonly kind: string;
  readonly agent: string;
  readonly reason: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly example: ShadowExample;
}

export interface ShadowReport {
  readonly since: string;
  readonly at: string;
  /** Would-have-denied entries in the period (the sum of the groups' counts, all groups). */
  readonly total: number;
  readonly groups: readonly ShadowGroup[];
  /** More groups than `MAX_GROUPS`: the smallest are left out. */
  readonly groupsOmitted: number;
  /** false: the period holds more than `MAX_SCAN` records, and the oldest were not read. */
  readonly complete: boolean;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

function exampleOf(
  seq: number,
  at: Date,
  type: string,
  data: Record<string, unknown>,
  rule: string,
): ShadowExample {
  const decision = data.decision as { allowed?: unknown } | undefined;
  const entries = Array.isArray(data.shadow) ? (data.shadow as { rule?: unknown; message?: unknown }[]) : [];
  const entry = entries.find((e) => e?.rule === rule);
  const resources = Array.isArray(data.resources) ? data.resources.filter((r) => typeof r === "string") : [];
  return {
    seq,
    at: at.toISOString(),
    type,
    action: str(data.action),
    resource: str(data.resource) ?? (resources.length > 0 ? resources.join(", ") : undefined),
    tool: str(data.tool),
    playbook: str(data.playbook),
    environment: str(data.environment),
    outcome: type === "broker.denied" || decision?.allowed === false ? "denied" : "allowed",
    message: str(entry?.message) ?? "",
  };
}

/** The report over the records at or after `since` (the newest `MAX_SCAN` of them). */
export async function readShadowReport(
  db: Kysely<Database>,
  opts: { since: Date; now: Date; maxScan?: number; maxGroups?: number },
): Promise<ShadowReport> {
  const maxScan = opts.maxScan ?? MAX_SCAN;
  const maxGroups = opts.maxGroups ?? MAX_GROUPS;
  // the window: the newest maxScan records in the period, found through the primary key
  const edge = await db
    .selectFrom("audit_records")
    .select("seq")
    .where("at", ">=", opts.since)
    .orderBy("seq", "desc")
    .offset(maxScan)
    .limit(1)
    .executeTakeFirst();
  const floor = edge === undefined ? 0 : Number(edge.seq);
  const rows = await sql<{
    rule: string;
    kind: string;
    reason: string;
    agent: string;
    n: string | number;
    first_at: Date | string;
    last_at: Date | string;
    last_seq: string | number;
  }>`
    select e->>'rule' as rule, coalesce(e->>'kind', '') as kind, coalesce(e->>'reason', '') as reason,
           coalesce(r.data->>'agent', '') as agent, count(*) as n, min(r.at) as first_at,
           max(r.at) as last_at, max(r.seq) as last_seq
    from audit_records r, jsonb_array_elements(
      case when jsonb_typeof(r.data->'shadow') = 'array' then r.data->'shadow' else '[]'::jsonb end
    ) e
    where r.seq > ${floor} and r.at >= ${opts.since} and r.data ? 'shadow' and e->>'rule' is not null
    group by 1, 2, 3, 4
    order by count(*) desc, max(r.seq) desc
  `.execute(db);
  const all = rows.rows;
  const kept = all.slice(0, maxGroups);
  const seqs = [...new Set(kept.map((g) => Number(g.last_seq)))];
  const examples = new Map<number, { at: Date; type: string; data: Record<string, unknown> }>();
  if (seqs.length > 0) {
    const found = await db
      .selectFrom("audit_records")
      .select(["seq", "at", "type", "data"])
      .where("seq", "in", seqs)
      .execute();
    for (const r of found) {
      const data = (typeof r.data === "object" && r.data !== null ? r.data : {}) as Record<string, unknown>;
      examples.set(Number(r.seq), { at: r.at, type: r.type, data });
    }
  }
  const iso = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString();
  const groups: ShadowGroup[] = kept.map((g) => {
    const seq = Number(g.last_seq);
    const ex = examples.get(seq);
    return {
      rule: g.rule,
      kind: g.kind,
      agent: g.agent,
      reason: g.reason,
      count: Number(g.n),
      firstSeen: iso(g.first_at),
      lastSeen: iso(g.last_at),
      example: ex
        ? exampleOf(seq, ex.at, ex.type, ex.data, g.rule)
        : { seq, at: iso(g.last_at), type: "", outcome: "allowed", message: "" },
    };
  });
  return {
    since: opts.since.toISOString(),
    at: opts.now.toISOString(),
    total: all.reduce((n, g) => n + Number(g.n), 0),
    groups,
    groupsOmitted: all.length - kept.length,
    complete: edge === undefined,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length));

/** The report as text, one block per group. */
export function shadowReportText(r: ShadowReport): string {
  const lines = [`Shadow report: what rules in shadow mode would have blocked, ${r.since} to ${r.at}`];
  if (r.groups.length === 0) {
    lines.push("", "Nothing: no rule in shadow mode would have denied a request in this period.");
  } else {
    lines.push(`${r.total} would-have-denied in ${r.groups.length + r.groupsOmitted} groups`, "");
    for (const g of r.groups) {
      const e = g.example;
      const what = [e.action, e.tool && e.tool !== e.action ? e.tool : undefined, e.resource, e.playbook]
        .filter((x) => x !== undefined)
        .join(" ");
      lines.push(
        `${pad(String(g.count), 6)} ${g.rule}  agent ${g.agent || "-"}  ${g.reason}`,
        `       first ${g.firstSeen}  last ${g.lastSeen}`,
        `       e.g. #${e.seq} ${e.type} ${what} (${e.outcome === "allowed" ? "went on" : "denied by an enforcing rule too"})`,
        ...(e.message ? [`       ${e.message}`] : []),
      );
    }
    if (r.groupsOmitted > 0) lines.push("", `${r.groupsOmitted} smaller groups left out`);
  }
  if (!r.complete) lines.push("", `Only the newest ${MAX_SCAN} records of the period were read.`);
  return lines.join("\n");
}
