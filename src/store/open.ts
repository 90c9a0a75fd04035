/**
 * Opening a store: PGlite in `<dataDir>/pg` by default, PostgreSQL when a URL is given. Both are
 * Kysely over the PostgreSQL dialect with one schema and one set of migrations.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { isWritError, q, WritError } from "../core/index.js";
import type { DownstreamLedger } from "../downstream/types.js";
import { type AuditRepository, auditRepository } from "./audit.js";
import { type ChangeHub, pgliteChanges, postgresChanges, type WritChanges } from "./changes.js";
import { downstreamLedger } from "./downstream.js";
import { ERR_STORE_NOT_FOUND, ERR_STORE_UNAVAILABLE, redactUrl, storeError } from "./errors.js";
import { issuanceLock } from "./issuance-lock.js";
import { type DirLock, lockFile } from "./lock.js";
import { type MigrationReport, migrateToLatest, pendingMigrations } from "./migrations.js";
import { PGliteDialect, registerCarrier } from "./pglite-dialect.js";
import type { Database } from "./schema.js";
import { type WritRepository, writRepository } from "./writs.js";

export type Backend = "pglite" | "postgres";

export interface StoreOptions {
  /** PostgreSQL connection URL. When given, the data folder is not used for the database. */
  readonly databaseUrl?: string | undefined;
  /** The data folder; the embedded database lives in `<dataDir>/pg`. Default `.writ`. */
  readonly dataDir?: string | undefined;
  /** Create the embedded database when missing (default true); false gives `ERR_STORE_NOT_FOUND`. */
  readonly create?: boolean | undefined;
  /** PostgreSQL pool size (default 10, at least 2). */
  readonly poolSize?: number | undefined;
}

export interface Store {
  readonly kind: "store";
  readonly backend: Backend;
  /** Where the data is, for messages: a folder, or the URL without its password. */
  readonly location: string;
  /** Kysely over the schema, for repositories added by later modules. */
  readonly db: Kysely<Database>;
  readonly writs: WritRepository;
  /**
   * Every committed change to writs, this process's and other processes' (LISTEN/NOTIFY), for
   * keeping writs in memory exactly (the decision point's writ index). Listens from the first
   * subscriber on.
   */
  readonly writChanges: WritChanges;
  readonly audit: AuditRepository;
  /** What was created downstream (AWS, GitHub, Kubernetes) for each writ, until it is removed. */
  readonly downstream: DownstreamLedger;
  /** Applies pending migrations; safe to call from several processes at once. */
  migrate(): Promise<MigrationReport>;
  /** The migrations this code knows that the database has not applied (readiness). */
  pendingMigrations(): Promise<string[]>;
  close(): Promise<void>;
}

function assemble(
  backend: Backend,
  location: string,
  db: Kysely<Database>,
  changes: WritChanges & { hub: ChangeHub },
  onClose: () => void,
  poolSize?: number,
): Store {
  let closed = false;
  return {
    kind: "store",
    backend,
    location,
    db,
    writs: writRepository(db, (change) => changes.hub.emit(change), issuanceLock(db, backend, poolSize)),
    writChanges: changes,
    audit: auditRepository(db, { prepared: backend === "pglite" }),
    downstream: downstreamLedger(db),
    migrate: () => migrateToLatest(db),
    pendingMigrations: () => pendingMigrations(db),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await changes.close();
        await db.destroy();
      } finally {
        onClose();
      }
    },
  };
}

async function openPostgres(url: string, poolSize: number): Promise<Store> {
  const shown = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000 });
  // An idle client that dies (server restart) is dropped by the pool; the next query reconnects or
  // fails with a coded error. Without a listener the event would crash the process.
  pool.on("error", () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy().catch(() => {});
    const cause = storeError(`open ${shown}`, err);
    throw new WritError(ERR_STORE_UNAVAILABLE, cause.message, { cause: err });
  }
  return assemble("postgres", shown, db, postgresChanges(url), () => {}, poolSize);
}

async function openPglite(dataDir: string, create: boolean): Promise<Store> {
  const root = resolve(dataDir);
  const dir = join(root, "pg");
  if (!create && !existsSync(join(dir, "PG_VERSION"))) {
    throw new WritError(ERR_STORE_NOT_FOUND, `no embedded database in ${q(dir)}`);
  }
  let lock: DirLock;
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    lock = lockFile(join(root, "pg.lock"));
  } catch (err) {
    if (isWritError(err)) throw err;
    throw new WritError(ERR_STORE_UNAVAILABLE, `data folder ${q(root)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let db: Kysely<Database> | undefined;
  let client: PGlite;
  try {
    client = await PGlite.create(dir);
    const dialect = new PGliteDialect({ pglite: client });
    db = new Kysely<Database>({ dialect });
    registerCarrier(db, dialect);
    await sql`select 1`.execute(db);
  } catch (err) {
    await db?.destroy().catch(() => {});
    lock.release();
    const cause = storeError(`open ${q(dir)}`, err);
    throw new WritError(ERR_STORE_UNAVAILABLE, cause.message, { cause: err });
  }
  return assemble("pglite", dir, db, pgliteChanges(db, client), () => lock.release());
}

/** Opens the store. Does not migrate: call `store.migrate()` where the schema may be created. */
export async function openStore(opts: StoreOptions = {}): Promise<Store> {
  const poolSize = opts.poolSize ?? 10;
  // two at least: an issuance holds one connection for its lock while it writes on another
  if (!Number.isSafeInteger(poolSize) || poolSize < 2) throw new TypeError(`poolSize must be an integer ≥ 2`);
  if (opts.databaseUrl !== undefined && opts.databaseUrl !== "")
    return openPostgres(opts.databaseUrl, poolSize);
  return openPglite(opts.dataDir ?? ".writ", opts.create ?? true);
}
