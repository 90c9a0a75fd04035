/**
 * The shadow report's reads of the audit log (`operate/shadow.ts` shapes them): the would-have-
 * denied entries of the records' `shadow` lists, counted by rule, kind, reason and agent in the
 * database over the newest records of a period, and the records given as examples.
 */
import { type Kysely, sql } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

export interface ShadowGroupRow {
  readonly rule: string;
  readonly kind: string;
  readonly reason: string;
  readonly agent: string;
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** The newest record of the group. */
  readonly lastSeq: number;
}

export interface ShadowRecord {
  readonly at: Date;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface ShadowReader {
  /**
   * The groups over the newest `maxScan` records at or after `since`, largest first (then newest);
   * `complete: false` when the period holds more records than that.
   */
  groups(since: Date, maxScan: number): Promise<{ complete: boolean; groups: ShadowGroupRow[] }>;
  /** The records of these sequence numbers, by number. */
  records(seqs: readonly number[]): Promise<Map<number, ShadowRecord>>;
}

const date = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));

async function groups(db: Kysely<Database>, since: Date, maxScan: number) {
  // the window: the newest maxScan records in the period, found through the primary key
  const edge = await db
    .selectFrom("audit_records")
    .select("seq")
    .where("at", ">=", since)
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
    where r.seq > ${floor} and r.at >= ${since} and r.data ? 'shadow' and e->>'rule' is not null
    group by 1, 2, 3, 4
    order by count(*) desc, max(r.seq) desc
  `.execute(db);
  return {
    complete: edge === undefined,
    groups: rows.rows.map((g) => ({
      rule: g.rule,
      kind: g.kind,
      reason: g.reason,
      agent: g.agent,
      count: Number(g.n),
      firstAt: date(g.first_at),
      lastAt: date(g.last_at),
      lastSeq: Number(g.last_seq),
    })),
  };
}

export function shadowReader(db: Kysely<Database>): ShadowReader {
  return {
    groups: (since, maxScan) => guard("read shadow report", () => groups(db, since, maxScan)),
    records: (seqs) =>
      guard("read shadow report", async () => {
        const records = new Map<number, ShadowRecord>();
        if (seqs.length === 0) return records;
        const found = await db
          .selectFrom("audit_records")
          .select(["seq", "at", "type", "data"])
          .where("seq", "in", [...seqs])
          .execute();
        for (const r of found) {
          const data = (typeof r.data === "object" && r.data !== null ? r.data : {}) as Record<
            string,
            unknown
          >;
          records.set(Number(r.seq), { at: r.at, type: r.type, data });
        }
        return records;
      }),
  };
}
