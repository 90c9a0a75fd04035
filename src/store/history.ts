/**
 * Figures over time for the console's metrics page (`console/metrics-page.ts` draws them): writs
 * issued and approval requests made per UTC day since a time, each one pass over an index range,
 * and the findings queue by category and status. The refusals per day are the audit search's
 * (`audit-search.ts`).
 */
import { type Kysely, sql } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

/** One UTC day (days since the epoch): how many, and the day's figure (minutes; undefined when none). */
export interface DayFigure {
  readonly day: number;
  readonly count: number;
  readonly value: number | undefined;
}

export interface History {
  /** Writs issued per day since `since`, with their median issued lifetime. */
  writsByDay(since: Date): Promise<DayFigure[]>;
  /** Approval requests made per day since `since`, with their mean time to a decision. */
  approvalsByDay(since: Date): Promise<DayFigure[]>;
  /** Every finding counted by category and status. */
  findingsByStatus(): Promise<{ category: string; status: string; count: number }[]>;
}

const day = (col: string) => sql<number>`floor(extract(epoch from ${sql.ref(col)}) / 86400)`;

const figure = (r: { day: unknown; n: unknown; v: unknown }): DayFigure => ({
  day: Number(r.day),
  count: Number(r.n),
  value: r.v === null || r.v === undefined ? undefined : Number(r.v),
});

export function history(db: Kysely<Database>): History {
  return {
    writsByDay: (since) =>
      guard("read metrics", async () => {
        // one pass over the writs: issued per day and their median issued lifetime
        const rows = await db
          .selectFrom("writs")
          .select([
            day("issued_at").as("day"),
            (eb) => eb.fn.countAll().as("n"),
            sql<number>`percentile_cont(0.5) within group (order by extract(epoch from expires_at - issued_at)) / 60`.as(
              "v",
            ),
          ])
          .where("issued_at", ">=", since)
          .groupBy(sql`1`)
          .execute();
        return rows.map(figure);
      }),
    approvalsByDay: (since) =>
      guard("read metrics", async () => {
        const rows = await db
          .selectFrom("approval_requests")
          .select([
            day("created_at").as("day"),
            (eb) => eb.fn.countAll().as("n"),
            sql<number>`avg(extract(epoch from decided_at - created_at)) / 60`.as("v"),
          ])
          .where("created_at", ">=", since)
          .groupBy(sql`1`)
          .execute();
        return rows.map(figure);
      }),
    findingsByStatus: () =>
      guard("read metrics", async () => {
        const rows = await db
          .selectFrom("analyzer_findings")
          .select(["category", "status", (eb) => eb.fn.countAll().as("v")])
          .groupBy(["category", "status"])
          .execute();
        return rows.map((r) => ({ category: r.category, status: r.status, count: Number(r.v) }));
      }),
  };
}
