/**
 * Searches of the audit log for the console (`console/audit-query.ts` bounds and pages them): the
 * records matching a filter in one window of sequence numbers, newest first, and the refusals of a
 * window counted by day and reason.
 */
import { type ExpressionBuilder, type Kysely, type SqlBool, sql } from "kysely";
import { guard } from "./errors.js";
import { DENIAL_PREDICATE } from "./migrations.js";
import type { Database } from "./schema.js";

export interface AuditFilter {
  readonly agent?: string | undefined;
  /** Agents of a runner class (from writ.yaml). */
  readonly agents?: readonly string[] | undefined;
  readonly writ?: string | undefined;
  readonly reason?: string | undefined;
  readonly type?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  /** Only refusals: `broker.denied`, and decisions or gateway calls with `allowed: false`. */
  readonly denials?: boolean | undefined;
}

export interface AuditHit {
  readonly seq: number;
  readonly at: Date;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface AuditSearch {
  /** Matching records with `floor <= seq < top`, newest first, at most `limit`. */
  find(f: AuditFilter, window: { top: number; floor: number }, limit: number): Promise<AuditHit[]>;
  /** Refusals with `seq > after` at or after `since`, counted by UTC day (days since the epoch) and reason. */
  denialsByDay(
    after: number,
    since: Date,
  ): Promise<{ day: number; code: string | undefined; count: number }[]>;
}

/** The reason code of a record: the decision's code, or the broker's reason. */
const reasonOf = sql<string>`coalesce(data->'decision'->>'code', data->>'reason')`;

function where(eb: ExpressionBuilder<Database, "audit_records">, f: AuditFilter) {
  const conds = [];
  // word for word the partial index's predicate (store migration 0010), so the planner uses it
  if (f.denials) conds.push(sql<SqlBool>`${sql.raw(DENIAL_PREDICATE)}`);
  if (f.type) conds.push(eb("type", "=", f.type));
  if (f.agent) conds.push(eb(sql`data->>'agent'`, "=", f.agent));
  if (f.agents) conds.push(eb(sql`data->>'agent'`, "in", f.agents.length === 0 ? [""] : [...f.agents]));
  if (f.writ) {
    conds.push(
      eb.or([
        eb(sql`data->>'writ'`, "=", f.writ),
        eb(sql`data->'context'->>'writId'`, "=", f.writ),
        eb(sql`data->>'writId'`, "=", f.writ),
      ]),
    );
  }
  if (f.reason) conds.push(eb(reasonOf, "=", f.reason));
  if (f.from) conds.push(eb("at", ">=", f.from));
  if (f.to) conds.push(eb("at", "<", f.to));
  return eb.and(conds);
}

export function auditSearch(db: Kysely<Database>): AuditSearch {
  return {
    find: (f, window, limit) =>
      guard("search audit log", async () => {
        const rows = await db
          .selectFrom("audit_records")
          .select(["seq", "at", "type", "data"])
          .where("seq", "<", window.top)
          .where("seq", ">=", window.floor)
          .where((eb) => where(eb, f))
          .orderBy("seq", "desc")
          .limit(limit)
          .execute();
        return rows.map((r) => ({
          seq: Number(r.seq),
          at: r.at,
          type: r.type,
          data: (typeof r.data === "object" && r.data !== null ? r.data : {}) as Record<string, unknown>,
        }));
      }),
    denialsByDay: (after, since) =>
      guard("count denials", async () => {
        // one pass over the window: counts by day and reason
        const denialWhere = sql`seq > ${after} and at >= ${since} and ${sql.raw(DENIAL_PREDICATE)}`;
        const rows = await sql<{
          day: number;
          code: string | null;
          v: number;
        }>`select floor(extract(epoch from at) / 86400) as day, coalesce(data->'decision'->>'code', data->>'reason') as code, count(*) as v from audit_records where ${denialWhere} group by 1, 2`.execute(
          db,
        );
        return rows.rows.map((r) => ({ day: Number(r.day), code: r.code ?? undefined, count: Number(r.v) }));
      }),
  };
}
