/**
 * The denial counters (`denial_counters`) of the broker's slow-down (`broker/backoff.ts`): per
 * agent and environment, the denials in a row, the last one and the block in force. How a count
 * turns into a block is the broker's; this module keeps the rows, one transaction per update.
 */
import type { Kysely } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

export interface DenialCounter {
  readonly count: number;
  readonly lastDeniedAt: Date;
  /** Undefined when no block was ever set. */
  readonly blockedUntil: Date | undefined;
}

export interface DenialCounterRepository {
  read(agent: string, environment: string): Promise<DenialCounter | undefined>;
  /**
   * Counts one more denial: `next` gets the counter as it is (a new one has count 0 and was last
   * denied `now`) and answers the new one, written in the same transaction, holding the row.
   */
  bump(
    agent: string,
    environment: string,
    now: Date,
    next: (current: DenialCounter) => DenialCounter,
  ): Promise<DenialCounter>;
}

const fromRow = (row: {
  count: number;
  last_denied_at: Date;
  blocked_until: Date | null;
}): DenialCounter => ({
  count: row.count,
  lastDeniedAt: new Date(row.last_denied_at),
  blockedUntil: row.blocked_until ? new Date(row.blocked_until) : undefined,
});

export function denialCounterRepository(db: Kysely<Database>): DenialCounterRepository {
  return {
    read: (agent, environment) =>
      guard("denial counter", async () => {
        const row = await db
          .selectFrom("denial_counters")
          .select(["count", "last_denied_at", "blocked_until"])
          .where("agent", "=", agent)
          .where("environment", "=", environment)
          .executeTakeFirst();
        return row === undefined ? undefined : fromRow(row);
      }),
    bump: (agent, environment, now, next) =>
      guard("denial counter", () =>
        db.transaction().execute(async (trx) => {
          await trx
            .insertInto("denial_counters")
            .values({ agent, environment, count: 0, last_denied_at: now, blocked_until: null })
            .onConflict((oc) => oc.columns(["agent", "environment"]).doNothing())
            .execute();
          const row = await trx
            .selectFrom("denial_counters")
            .select(["count", "last_denied_at", "blocked_until"])
            .where("agent", "=", agent)
            .where("environment", "=", environment)
            .forUpdate()
            .executeTakeFirstOrThrow();
          const updated = next(fromRow(row));
          await trx
            .updateTable("denial_counters")
            .set({
              count: updated.count,
              last_denied_at: updated.lastDeniedAt,
              blocked_until: updated.blockedUntil ?? null,
            })
            .where("agent", "=", agent)
            .where("environment", "=", environment)
            .execute();
          return updated;
        }),
      ),
  };
}
