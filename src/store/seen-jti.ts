/**
 * The replay cache's rows (`seen_jti`): a JWT identifier per scope until the token carrying it
 * expires. What is checked when is the broker's (`broker/replay.ts`); this module holds the
 * statements: the one atomic insert that accepts a `jti` once across processes, the bounded purge,
 * and, for the embedded store's in-memory cache, the batched insert of literals that is written on
 * its own or rides with the next audit commit (`carryWith`).
 */
import { type Kysely, sql } from "kysely";
import { carryWith, simpleQuery } from "./pglite-dialect.js";
import type { Database } from "./schema.js";

export interface SeenJti {
  readonly scope: string;
  readonly jti: string;
  readonly expiresAt: Date;
}

/** A batch of entries ready to write (`SeenJtiRepository.batch`); opaque to its users. */
export interface SeenJtiBatch {
  readonly kind: "seen-jti-batch";
}

interface Statement extends SeenJtiBatch {
  readonly text: string;
}

/** Where batches riding with the embedded store's next audit commit come from. */
export interface SeenJtiRider {
  /** The batch to ride now, if any. */
  take(): SeenJtiBatch | undefined;
  /** The commit it rode with has ended: `err` when it failed (the batch was not written). */
  settled(err?: unknown): void;
}

export interface SeenJtiRepository {
  /**
   * One statement: a fresh key is inserted; a live one (expiring after `now`) conflicts and the
   * guarded update does nothing; an expired one is taken over. True when this call took it.
   * Errors are the database's own (the caller codes them).
   */
  insertOnce(scope: string, jti: string, expiresAt: Date, now: Date): Promise<boolean>;
  /**
   * `insertOnce` for several keys in one statement (one trip, one commit): for each entry, true
   * when this call took its key. The keys must be distinct (a statement may touch a row once).
   */
  insertEach(entries: readonly SeenJti[], now: Date): Promise<boolean[]>;
  /** Deletes up to `limit` entries expired at `now`, oldest first; how many. */
  purge(now: Date, limit: number): Promise<number>;
  /** Entries expiring after `now`. */
  live(now: Date): Promise<SeenJti[]>;
  /**
   * The insert of `entries` as one statement of literals (the latest entry of a key wins; a live
   * row is kept as `insertOnce` would), or undefined when none is storable (a NUL in a key).
   */
  batch(entries: readonly SeenJti[], now: Date): SeenJtiBatch | undefined;
  /** Writes a batch in one trip (the simple protocol on the embedded store). */
  write(batch: SeenJtiBatch): Promise<void>;
  /** Lets batches ride with the embedded store's audit commits; false on PostgreSQL (nothing rides). */
  carry(rider: SeenJtiRider): boolean;
}

/**
 * Text as an escape-string literal (`E'…'`): read the same whatever `standard_conforming_strings`
 * says, since a backslash and a quote are both escaped. The caller has kept NUL out.
 */
function literal(text: string): string {
  return `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function statementFor(entries: readonly SeenJti[], now: Date): Statement | undefined {
  // one key once per statement (ON CONFLICT may touch a row once): the latest entry wins; a key
  // the table cannot hold (NUL) is left out, rather than failing every later write
  const byKey = new Map<string, SeenJti>();
  for (const e of entries) {
    if (!e.scope.includes("\0") && !e.jti.includes("\0")) byKey.set(`${e.scope}\u0000${e.jti}`, e);
  }
  if (byKey.size === 0) return undefined;
  const values = [...byKey.values()]
    .map((e) => `(${literal(e.scope)}, ${literal(e.jti)}, ${literal(e.expiresAt.toISOString())})`)
    .join(", ");
  const text = `insert into seen_jti (scope, jti, expires_at) values ${values} on conflict (scope, jti) do update set expires_at = excluded.expires_at where seen_jti.expires_at <= ${literal(now.toISOString())}`;
  return { kind: "seen-jti-batch", text };
}

export function seenJtiRepository(db: Kysely<Database>): SeenJtiRepository {
  const insertEach: SeenJtiRepository["insertEach"] = async (entries, now) => {
    if (entries.length === 0) return [];
    const rows = await db
      .insertInto("seen_jti")
      .values(entries.map((e) => ({ scope: e.scope, jti: e.jti, expires_at: e.expiresAt })))
      .onConflict((oc) =>
        oc
          .columns(["scope", "jti"])
          .doUpdateSet({ expires_at: (eb) => eb.ref("excluded.expires_at") })
          .where("seen_jti.expires_at", "<=", now),
      )
      .returning(["scope", "jti"])
      .execute();
    const taken = new Set(rows.map((r) => `${r.scope}\u0000${r.jti}`));
    return entries.map((e) => taken.has(`${e.scope}\u0000${e.jti}`));
  };

  return {
    async insertOnce(scope, jti, expiresAt, now) {
      const [taken] = await insertEach([{ scope, jti, expiresAt }], now);
      return taken === true;
    },
    insertEach,
    async purge(now, limit) {
      const result = await sql`
        delete from seen_jti
        where (scope, jti) in (
          select scope, jti from seen_jti where expires_at <= ${now} order by expires_at limit ${limit}
        )`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
    async live(now) {
      const rows = await db
        .selectFrom("seen_jti")
        .select(["scope", "jti", "expires_at"])
        .where("expires_at", ">", now)
        .execute();
      return rows.map((r) => ({ scope: r.scope, jti: r.jti, expiresAt: new Date(r.expires_at) }));
    },
    batch: statementFor,
    async write(batch) {
      // literals over the simple protocol, one trip: about half the CPU of the same insert sent
      // with parameters on the embedded store (no parse, bind and describe trips)
      await db.executeQuery(simpleQuery((batch as Statement).text));
    },
    carry: (rider) =>
      carryWith(db, {
        take: () => (rider.take() as Statement | undefined)?.text,
        settled: (err) => rider.settled(err),
      }),
  };
}
