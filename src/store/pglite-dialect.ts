/**
 * A Kysely dialect for PGlite (PostgreSQL compiled to WebAssembly, in process). It reuses Kysely's
 * PostgreSQL adapter, introspector and query compiler; only the driver is new.
 *
 * PGlite is one connection. The driver hands that connection to one Kysely caller at a time: a
 * mutex is taken in `acquireConnection` and given back in `releaseConnection`, so a transaction
 * (BEGIN … COMMIT on the connection) never interleaves with another caller's statements.
 *
 * Consequence: inside `db.transaction().execute(trx => …)`, use `trx`, never `db` — a second
 * acquisition from the same call chain waits forever for the first.
 *
 * A statement with parameters goes through PGlite's extended protocol (parse, describe, bind,
 * execute: one trip into the WebAssembly module each). Statements without any — BEGIN, COMMIT and
 * the queries made with `simpleQuery` — go in one trip, over the simple protocol, which costs
 * about half as much CPU. They go as one wire message straight to the database
 * (`execProtocolStream`) rather than through `exec`, which adds a queue of its own (this driver's
 * mutex already gives the connection to one caller at a time) and a second trip (a Sync the simple
 * protocol does not need): ~80 µs of CPU less per statement, and a few dozen promises and ~10 KiB
 * of garbage less — on the audit append every gateway call and decision waits for. The results,
 * the errors (PostgreSQL's, with their SQLSTATE), the notifications and the sync to the file
 * system after the statement are PGlite's own, as with `exec`.
 */
import { parse, protocol } from "@electric-sql/pglite";
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

/** The part of PGlite this dialect uses; `PGlite` from `@electric-sql/pglite` satisfies it. */
export interface PGliteClient {
  query(
    sql: string,
    params?: unknown[],
  ): Promise<{
    readonly rows: readonly unknown[];
    readonly command?: string | undefined;
    readonly rowCount?: number | undefined;
    readonly affectedRows?: number | undefined;
  }>;
  /** The simple protocol: one trip, no parameters; the results of each statement, in order. */
  exec?(sql: string): Promise<readonly SimpleResult[]>;
  /**
   * One wire message, its answer's messages (PGlite's `execProtocolStream`): throws the
   * database's error, delivers notifications, syncs the file system after unless told not to.
   */
  execProtocolStream?(message: Uint8Array, options?: { syncToFs?: boolean }): Promise<BackendMessages>;
  /** The type parsers `exec` applies to result values (PGlite's `parsers`). */
  readonly parsers?: Parsers | undefined;
  close(): Promise<void>;
}

/** The results of one statement run over the simple protocol. */
interface SimpleResult {
  readonly rows: readonly unknown[];
  readonly affectedRows?: number | undefined;
}

type BackendMessages = Parameters<typeof parse.parseResults>[0];
type Parsers = Parameters<typeof parse.parseResults>[1];

/**
 * `text` over the simple protocol in one trip: the results of each statement, as `exec` gives
 * them. Straight to the database when the client can (see the header), else through `exec`.
 */
async function runSimple(client: PGliteClient, text: string): Promise<readonly SimpleResult[]> {
  if (client.execProtocolStream !== undefined && client.parsers !== undefined) {
    const messages = await client.execProtocolStream(protocol.serialize.query(text), { syncToFs: true });
    return parse.parseResults(messages, client.parsers);
  }
  if (client.exec === undefined) throw new Error("the pglite client cannot run the simple protocol");
  return client.exec(text);
}

/** Queries made by `simpleQuery`: the driver runs them over the simple protocol. */
const SIMPLE = new WeakSet<CompiledQuery>();
/** Queries made by `carrierQuery`: statements waiting to ride (see `RiderSource`) go with them. */
const CARRIERS = new WeakSet<CompiledQuery>();

/**
 * Writes that may go in the same trip and transaction as the next carrier statement (the audit
 * log's append) instead of one of their own: `take` hands over the statement text (literals only,
 * as for `simpleQuery`) or undefined; `settled` then says whether it committed (no error) or not.
 * On the embedded store, every statement is a trip into the database and a commit: the replay
 * cache's entries riding with the issuance commit save both.
 */
export interface RiderSource {
  take(): string | undefined;
  settled(err?: unknown): void;
}

/** The rider source of each embedded store's Kysely instance (set with `carryWith`). */
const RIDERS = new WeakMap<object, { source: RiderSource | undefined }>();

/**
 * A statement without parameters, run over the simple protocol in one trip (the PGlite dialect; a
 * PostgreSQL pool runs it as any other raw query). Every value in `text` must already be a safe
 * literal: see `sqlLiteral`.
 */
export function simpleQuery(text: string): CompiledQuery {
  const query = CompiledQuery.raw(text);
  SIMPLE.add(query);
  return query;
}

/**
 * `simpleQuery`, and on the embedded store the carrier of other writes: whatever the database's
 * rider source hands over runs first, in the same implicit transaction (the simple protocol runs a
 * multi-statement text as one), so both commit or neither does. The result is the query's own.
 */
export function carrierQuery(text: string): CompiledQuery {
  const query = simpleQuery(text);
  CARRIERS.add(query);
  return query;
}

/**
 * Makes `source`'s writes ride with `db`'s carrier queries. False when `db` is not an embedded
 * store's (a PostgreSQL pool has no one connection to carry them on): write them yourself.
 */
export function carryWith(db: object, source: RiderSource): boolean {
  const slot = RIDERS.get(db);
  if (slot === undefined) return false;
  slot.source = source;
  return true;
}

/** Ties the dialect's riders to the Kysely instance built on it (open.ts). */
export function registerCarrier(db: object, dialect: PGliteDialect): void {
  RIDERS.set(db, dialect.riders);
}

/**
 * A string as an SQL literal, for `simpleQuery` (with `standard_conforming_strings` on, the
 * PostgreSQL default, a single quote doubled is the only escape). NUL, which no literal can hold,
 * is refused.
 */
export function sqlLiteral(text: string): string {
  if (text.includes("\0")) throw new TypeError("an SQL literal cannot hold NUL");
  return `'${text.replaceAll("'", "''")}'`;
}

export interface PGliteDialectConfig {
  /** The instance, or a function creating it when Kysely first needs it. Closed by `db.destroy()`. */
  readonly pglite: PGliteClient | (() => Promise<PGliteClient>);
}

export class PGliteDialect implements Dialect {
  readonly #config: PGliteDialectConfig;
  /** Where the writes riding with carrier queries come from (`carryWith`). */
  readonly riders: { source: RiderSource | undefined } = { source: undefined };

  constructor(config: PGliteDialectConfig) {
    this.#config = config;
  }

  createDriver(): Driver {
    return new PGliteDriver(this.#config, this.riders);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  // biome-ignore lint/suspicious/noExplicitAny: Kysely's Dialect interface takes Kysely<any>
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

/** A FIFO mutex: `lock()` resolves with the function that releases it. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.#tail;
    this.#tail = previous.then(() => held);
    return previous.then(() => release);
  }
}

const AFFECTING = new Set(["INSERT", "UPDATE", "DELETE", "MERGE"]);

class PGliteConnection implements DatabaseConnection {
  readonly #client: PGliteClient;
  readonly #riders: { source: RiderSource | undefined };

  constructor(client: PGliteClient, riders: { source: RiderSource | undefined }) {
    this.#client = client;
    this.#riders = riders;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const client = this.#client;
    const simple = client.exec !== undefined || client.execProtocolStream !== undefined;
    const source = this.#riders.source;
    if (simple && source !== undefined && CARRIERS.has(compiledQuery)) {
      const rider = source.take();
      if (rider !== undefined) {
        let results: readonly SimpleResult[];
        try {
          results = await runSimple(client, `${rider};\n${compiledQuery.sql}`);
        } catch (err) {
          source.settled(err);
          throw err;
        }
        source.settled();
        const own = results[results.length - 1];
        return { rows: (own?.rows ?? []) as R[], numAffectedRows: BigInt(own?.affectedRows ?? 0) };
      }
    }
    if (simple && SIMPLE.has(compiledQuery)) {
      const results = await runSimple(client, compiledQuery.sql);
      const last = results[results.length - 1];
      return {
        rows: (last?.rows ?? []) as R[],
        numAffectedRows: BigInt(results.reduce((n, r) => n + (r.affectedRows ?? 0), 0)),
      };
    }
    const result = await this.#client.query(compiledQuery.sql, [...compiledQuery.parameters]);
    const command = result.command?.toUpperCase();
    const rows = result.rows as R[];
    if (command !== undefined && AFFECTING.has(command)) {
      return { rows, numAffectedRows: BigInt(result.rowCount ?? result.affectedRows ?? 0) };
    }
    return { rows };
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error(
      "the pglite dialect does not stream: page with keyset queries (`where seq > $1 limit n`)",
    );
  }
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

class PGliteDriver implements Driver {
  readonly #config: PGliteDialectConfig;
  readonly #riders: { source: RiderSource | undefined };
  readonly #mutex = new Mutex();
  #client: PGliteClient | undefined;
  #connection: PGliteConnection | undefined;
  #release: (() => void) | undefined;

  constructor(config: PGliteDialectConfig, riders: { source: RiderSource | undefined }) {
    this.#config = config;
    this.#riders = riders;
  }

  async init(): Promise<void> {
    const { pglite } = this.#config;
    this.#client = typeof pglite === "function" ? await pglite() : pglite;
    this.#connection = new PGliteConnection(this.#client, this.#riders);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.#mutex.lock();
    if (this.#connection === undefined) {
      release();
      throw new Error("the pglite driver is not initialised or was destroyed");
    }
    this.#release = release;
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let text = "begin";
    if (settings.isolationLevel !== undefined || settings.accessMode !== undefined) {
      text = "start transaction";
      if (settings.isolationLevel !== undefined) text += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode !== undefined) text += ` ${settings.accessMode}`;
    }
    await connection.executeQuery(simpleQuery(text));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(simpleQuery("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(simpleQuery("rollback"));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(simpleQuery(`savepoint ${quoteIdent(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(simpleQuery(`rollback to savepoint ${quoteIdent(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(simpleQuery(`release savepoint ${quoteIdent(name)}`));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async destroy(): Promise<void> {
    // Wait for the current holder, so the instance is not closed under a running statement.
    const release = await this.#mutex.lock();
    try {
      const client = this.#client;
      this.#client = undefined;
      this.#connection = undefined;
      if (client !== undefined) await client.close();
    } finally {
      release();
    }
  }
}
