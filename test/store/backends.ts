/**
 * The backends every store and audit test runs against: PGlite in a temporary folder, and
 * PostgreSQL in a fresh database created for the run and dropped after it.
 *
 * PostgreSQL comes from WRIT_TEST_DATABASE_URL (an admin connection, default
 * postgres://postgres@127.0.0.1:5432/postgres). When it cannot be reached the PostgreSQL suites are
 * skipped with a printed reason — unless WRIT_TEST_REQUIRE_POSTGRES=1, when they fail.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kysely, sql, type Transaction } from "kysely";
import pg from "pg";
import { describe } from "vitest";
import { type Database, GENESIS_HASH, openStore, type Store } from "../../src/store/index.js";

const ADMIN_URL = process.env.WRIT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REQUIRED = process.env.WRIT_TEST_REQUIRE_POSTGRES === "1";

async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

const unreachable = await probe();
if (unreachable !== undefined) {
  const what = REQUIRED ? "FAILING (WRIT_TEST_REQUIRE_POSTGRES=1)" : "SKIPPING the PostgreSQL suites";
  console.warn(`[writ tests] PostgreSQL unreachable at ${ADMIN_URL} (${unreachable}): ${what}`);
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface TempDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh, uniquely named PostgreSQL database. */
export async function createTempDatabase(): Promise<TempDatabase> {
  const name = `writ_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
}

export interface Harness {
  readonly name: "pglite" | "postgres";
  /** The store under test, migrated (valid after `setup`). */
  readonly store: Store;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** PGlite: close and reopen the same data folder. */
  reopen?(): Promise<Store>;
  /** PostgreSQL: a second store (its own pool) on the same database, as a second process would have. */
  second?(): Promise<Store>;
  /** The data folder (PGlite) or a scratch folder (PostgreSQL). */
  readonly dir: string;
}

function pgliteHarness(): Harness {
  let store: Store | undefined;
  let dir = "";
  return {
    name: "pglite",
    get store() {
      if (store === undefined) throw new Error("harness not set up");
      return store;
    },
    get dir() {
      return dir;
    },
    async setup() {
      dir = await mkdtemp(join(tmpdir(), "writ-store-"));
      store = await openStore({ dataDir: dir });
      await store.migrate();
    },
    async teardown() {
      await store?.close();
      if (dir !== "") await rm(dir, { recursive: true, force: true });
    },
    async reopen() {
      await store?.close();
      store = await openStore({ dataDir: dir, create: false });
      return store;
    },
  };
}

function postgresHarness(): Harness {
  let store: Store | undefined;
  let temp: TempDatabase | undefined;
  let dir = "";
  const extra: Store[] = [];
  return {
    name: "postgres",
    get store() {
      if (store === undefined) throw new Error("harness not set up");
      return store;
    },
    get dir() {
      return dir;
    },
    async setup() {
      if (unreachable !== undefined) {
        throw new Error(
          `PostgreSQL is required (WRIT_TEST_REQUIRE_POSTGRES=1) but unreachable at ${ADMIN_URL}: ${unreachable}`,
        );
      }
      dir = await mkdtemp(join(tmpdir(), "writ-pg-"));
      temp = await createTempDatabase();
      store = await openStore({ databaseUrl: temp.url });
      await store.migrate();
    },
    async teardown() {
      for (const s of extra) await s.close();
      await store?.close();
      await temp?.drop();
      if (dir !== "") await rm(dir, { recursive: true, force: true });
    },
    async second() {
      if (temp === undefined) throw new Error("harness not set up");
      const s = await openStore({ databaseUrl: temp.url });
      extra.push(s);
      return s;
    },
  };
}

/** Whether the PostgreSQL suites run (or must fail). */
export const postgresEnabled = unreachable === undefined || REQUIRED;

/**
 * Declares `body` once per backend, each in its own describe block with its own harness. A
 * skipped PostgreSQL suite shows up as skipped, with the reason in its title.
 */
export function forEachBackend(title: string, body: (h: Harness) => void): void {
  describe(`${title} [pglite]`, () => body(pgliteHarness()));
  if (postgresEnabled) describe(`${title} [postgres]`, () => body(postgresHarness()));
  else
    describe.skip(`${title} [postgres] — skipped: PostgreSQL unreachable at ${ADMIN_URL}`, () =>
      body(postgresHarness()));
}

/**
 * Runs SQL as someone with direct database access would: in one transaction, with the append-only
 * triggers switched off for it (`session_replication_role = replica`, superuser only).
 */
export async function asAttacker(
  db: Kysely<Database>,
  work: readonly string[] | ((trx: Transaction<Database>) => Promise<void>),
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    if (typeof work === "function") await work(trx);
    else for (const statement of work) await sql.raw(statement).execute(trx);
  });
}

/** Empties the audit tables (tests only). */
export async function resetAudit(db: Kysely<Database>): Promise<void> {
  await asAttacker(db, [
    "delete from audit_records",
    "delete from audit_checkpoints",
    `update audit_head set seq = 0, hash = '${GENESIS_HASH}'`,
  ]);
}
