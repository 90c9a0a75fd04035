/**
 * The gateway's taints (`gateway_taints`): per handle (a writ, or an agent in its environment) and
 * prompt context, the untrusted tool that tainted it and until when. What a handle is and how
 * contexts match is the gateway's (`gateway/taint.ts`); this module keeps the rows, which every
 * gateway process shares.
 */
import { type Kysely, sql } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

export interface TaintRow {
  readonly context: string;
  readonly taintedBy: string;
  readonly until: Date;
}

export interface TaintRepository {
  /** One taint of `handle` live after `now`, under one of `contexts` (any context when undefined). */
  find(handle: string, contexts: readonly string[] | undefined, now: Date): Promise<TaintRow | undefined>;
  /** Every taint of `handle` live after `now` (the offline hook's snapshot keeps them). */
  live(handle: string, now: Date): Promise<TaintRow[]>;
  /** Records a taint; when another process marked it already, the later expiry stands. */
  mark(handle: string, taint: TaintRow): Promise<void>;
}

export function taintRepository(db: Kysely<Database>): TaintRepository {
  return {
    find: (handle, contexts, now) =>
      guard("read taint", async () => {
        let query = db
          .selectFrom("gateway_taints")
          .select(["context", "tainted_by", "until"])
          .where("handle", "=", handle)
          .where("until", ">", now);
        if (contexts !== undefined) query = query.where("context", "in", [...contexts]);
        const row = (await query.limit(1).execute())[0];
        return row === undefined
          ? undefined
          : { context: row.context, taintedBy: row.tainted_by, until: new Date(row.until) };
      }),
    live: (handle, now) =>
      guard("read taints", async () => {
        const rows = await db
          .selectFrom("gateway_taints")
          .select(["context", "tainted_by", "until"])
          .where("handle", "=", handle)
          .where("until", ">", now)
          .execute();
        return rows.map((r) => ({ context: r.context, taintedBy: r.tainted_by, until: new Date(r.until) }));
      }),
    mark: (handle, taint) =>
      guard("record taint", async () => {
        await db
          .insertInto("gateway_taints")
          .values({ handle, context: taint.context, tainted_by: taint.taintedBy, until: taint.until })
          .onConflict((oc) =>
            oc
              .columns(["handle", "context"])
              .doUpdateSet({ until: sql<Date>`greatest(gateway_taints.until, excluded.until)` }),
          )
          .execute();
      }),
  };
}
