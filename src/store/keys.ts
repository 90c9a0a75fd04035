/**
 * The broker's signing keys (`signing_keys`), one algorithm family per repository. What a key is
 * and when it is renewed is the broker's (`broker/keys.ts`); this module reads the rows and makes
 * every change of one environment's keys under a transaction-scoped advisory lock on it
 * (`pg_advisory_xact_lock`, which PGlite supports too): a row lock cannot serialise the creation of
 * a row that does not exist yet.
 */
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from "kysely";
import { q } from "../core/index.js";
import { guard } from "./errors.js";
import type { Database, SigningKeysTable } from "./schema.js";

export type SigningKeyRow = Selectable<SigningKeysTable>;
/** A new key's row. */
export type SigningKeyInsert = Insertable<SigningKeysTable>;
/** The key families the table holds (`alg`). */
export type SigningKeyAlg = "EdDSA" | "ES256";

/** One environment's keys of the family, inside the transaction holding its lock. */
export interface KeyChange {
  /** Its active keys, newest first. */
  active(): Promise<SigningKeyRow[]>;
  /**
   * Retires `row` at `now`: it stops signing at once and its private half is erased; its
   * publication ends at `publishUntil` (never later than it would have). `sign_until` stays after
   * `created_at` (a schema check), so a key retired in the millisecond it was made keeps one
   * millisecond of nominal life; its status already stops it from signing.
   */
  retire(row: SigningKeyRow, now: Date, publishUntil: Date): Promise<SigningKeyRow>;
  insert(row: SigningKeyInsert): Promise<SigningKeyRow>;
}

export interface SigningKeyRepository {
  /** The environment's active keys of the family, newest first (no lock). */
  active(env: string): Promise<SigningKeyRow[]>;
  /** Runs `work` holding the environment's lock for the family, in one transaction. */
  change<T>(env: string, what: string, work: (keys: KeyChange) => Promise<T>): Promise<T>;
  /** The family's keys of the environment still published at `at`, newest first. */
  published(env: string, at: Date): Promise<SigningKeyRow[]>;
  /** The family's key `kid` of the environment, when still published at `at`. */
  publishedKey(env: string, kid: string, at: Date): Promise<SigningKeyRow | undefined>;
  /** Every key of every family (of one environment, when given), by environment, age and kid. */
  list(env?: string): Promise<SigningKeyRow[]>;
}

type Db = Kysely<Database> | Transaction<Database>;

const ms = (value: unknown): number => new Date(value as string | Date).getTime();

function activeRows(db: Db, env: string, alg: string): Promise<SigningKeyRow[]> {
  return db
    .selectFrom("signing_keys")
    .selectAll()
    .where("environment", "=", env)
    .where("alg", "=", alg)
    .where("status", "=", "active")
    .orderBy("created_at", "desc")
    .execute();
}

function keyChange(trx: Transaction<Database>, env: string, alg: string): KeyChange {
  return {
    active: () => activeRows(trx, env, alg),
    retire: (r, now, publishUntil) => {
      const created = ms(r.created_at);
      const signUntil = Math.max(Math.min(ms(r.sign_until), now.getTime()), created + 1);
      const publish = Math.max(Math.min(ms(r.publish_until), publishUntil.getTime()), signUntil);
      return trx
        .updateTable("signing_keys")
        .set({
          status: "retired",
          retired_at: now,
          sign_until: new Date(signUntil),
          publish_until: new Date(publish),
          private_jwk: "{}",
        })
        .where("kid", "=", r.kid)
        .returningAll()
        .executeTakeFirstOrThrow();
    },
    insert: (row) => trx.insertInto("signing_keys").values(row).returningAll().executeTakeFirstOrThrow(),
  };
}

/** `alg` is the family's name in the `alg` column (`EdDSA`, `ES256`). */
export function signingKeyRepository(db: Kysely<Database>, alg: string): SigningKeyRepository {
  const lockName = (env: string) => (alg === "EdDSA" ? `writ-keys:${env}` : `writ-keys:${alg}:${env}`);
  return {
    active: (env) => guard(`signing key of ${q(env)}`, () => activeRows(db, env, alg)),
    change: (env, what, work) =>
      guard(what, () =>
        db.transaction().execute(async (trx) => {
          await sql`select pg_advisory_xact_lock(hashtext(${lockName(env)}))`.execute(trx);
          return work(keyChange(trx, env, alg));
        }),
      ),
    published: (env, at) =>
      guard(`keys of ${q(env)}`, () =>
        db
          .selectFrom("signing_keys")
          .selectAll()
          .where("environment", "=", env)
          .where("alg", "=", alg)
          .where("publish_until", ">", at)
          .orderBy("created_at", "desc")
          .execute(),
      ),
    publishedKey: (env, kid, at) =>
      guard(`key ${q(kid)} of ${q(env)}`, () =>
        db
          .selectFrom("signing_keys")
          .selectAll()
          .where("kid", "=", kid)
          .where("environment", "=", env)
          .where("alg", "=", alg)
          .where("publish_until", ">", at)
          .executeTakeFirst(),
      ),
    list: (env) =>
      guard("list signing keys", () => {
        let query = db.selectFrom("signing_keys").selectAll();
        if (env !== undefined) query = query.where("environment", "=", env);
        return query.orderBy("environment").orderBy("created_at").orderBy("kid").execute();
      }),
  };
}
