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
import { type ApprovalRepository, approvalRepository } from "./approvals.js";
import { type AuditRepository, auditRepository } from "./audit.js";
import { type AuditSearch, auditSearch } from "./audit-search.js";
import { type DenialCounterRepository, denialCounterRepository } from "./backoff.js";
import { type ChangeHub, pgliteChanges, postgresChanges, type WritChanges } from "./changes.js";
import { downstreamLedger } from "./downstream.js";
import { ERR_STORE_NOT_FOUND, ERR_STORE_UNAVAILABLE, redactUrl, storeError } from "./errors.js";
import { type FindingRepository, findingRepository } from "./findings.js";
import { type History, history } from "./history.js";
import { type HeldCallRepository, heldCallRepository } from "./holds.js";
import { issuanceLock } from "./issuance-lock.js";
import { type SigningKeyAlg, type SigningKeyRepository, signingKeyRepository } from "./keys.js";
import { type KillSwitchRepository, killSwitchRepository } from "./kill.js";
import { type LiveWrits, liveWrits } from "./live-writs.js";
import { type DirLock, lockFile } from "./lock.js";
import { type StoreMetrics, storeMetrics } from "./metrics.js";
import { type MigrationReport, migrateToLatest, pendingMigrations } from "./migrations.js";
import { type OperationalStateReader, operationalStateReader } from "./operational-state.js";
import { PGliteDialect, registerCarrier } from "./pglite-dialect.js";
import { type ToolPinRepository, toolPinRepository } from "./pins.js";
import type { Database } from "./schema.js";
import { type SeenJtiRepository, seenJtiRepository } from "./seen-jti.js";
import { type ShadowReader, shadowReader } from "./shadow.js";
import { type TaintRepository, taintRepository } from "./taints.js";
import { type WritLoadCounter, type WritLoadCounterOptions, writLoadCounter } from "./writ-load.js";
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
  /**
   * Kysely over the schema: for the store's own modules and for tests only. Every other part of
   * writ goes through the repositories below (test/store/boundary.test.ts keeps it so).
   */
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
  /** The broker's approval requests and their decisions. */
  readonly approvals: ApprovalRepository;
  /** The broker's denial counters (its slow-down). */
  readonly denials: DenialCounterRepository;
  /** The broker's signing keys, one repository per family. */
  readonly signingKeys: Readonly<Record<SigningKeyAlg, SigningKeyRepository>>;
  /** The kill switches, and the revocation an engaged one makes. */
  readonly kills: KillSwitchRepository;
  /** The replay cache's `jti`s. */
  readonly seenJti: SeenJtiRepository;
  /** The gateway's tool pins. */
  readonly pins: ToolPinRepository;
  /** The gateway's held calls. */
  readonly holds: HeldCallRepository;
  /** The gateway's taints, shared by every gateway process. */
  readonly taints: TaintRepository;
  /** The analyzer's findings queue. */
  readonly findings: FindingRepository;
  /** The aggregates a metrics scrape reads, and scans' posture. */
  readonly metrics: StoreMetrics;
  /** What the inventory and the maturity check read. */
  readonly operationalState: OperationalStateReader;
  /** The shadow report's reads of the audit log. */
  readonly shadow: ShadowReader;
  /** The console's searches of the audit log. */
  readonly auditSearch: AuditSearch;
  /** The console's figures over time. */
  readonly history: History;
  /** Live writs as operators look at them (the console). */
  readonly liveWrits: LiveWrits;
  /**
   * A counter of agents' active and recent writs kept in memory from the change feed, for a store
   * this process alone writes to (see `writ-load.ts`).
   */
  writLoadCounter(opts?: Pick<WritLoadCounterOptions, "maxAgents" | "marginMs">): WritLoadCounter;
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
  const writs = writRepository(db, (change) => changes.hub.emit(change), issuanceLock(db, backend, poolSize));
  return {
    kind: "store",
    backend,
    location,
    db,
    writs,
    writChanges: changes,
    audit: auditRepository(db, { prepared: backend === "pglite" }),
    downstream: downstreamLedger(db),
    approvals: approvalRepository(db),
    denials: denialCounterRepository(db),
    signingKeys: { EdDSA: signingKeyRepository(db, "EdDSA"), ES256: signingKeyRepository(db, "ES256") },
    kills: killSwitchRepository(db),
    seenJti: seenJtiRepository(db),
    pins: toolPinRepository(db),
    holds: heldCallRepository(db),
    taints: taintRepository(db),
    findings: findingRepository(db),
    metrics: storeMetrics(db),
    operationalState: operationalStateReader(db),
    shadow: shadowReader(db),
    auditSearch: auditSearch(db),
    history: history(db),
    liveWrits: liveWrits(db),
    writLoadCounter: (opts = {}) => writLoadCounter({ ...opts, db, writs, changes }),
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
