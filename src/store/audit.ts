/**
 * Rows of the audit log. This module owns the SQL and the locking; hashing, redaction, signing and
 * verification live in src/audit, which builds each record inside `append`.
 *
 * Appends are serialised through the single `audit_head` row. The first append locks it (SELECT …
 * FOR UPDATE) in a transaction, lets the caller build the next records from it, inserts them and
 * moves the head, then commits. Later appends build on the head this process last saw and store
 * in one call of `writ_audit_append` (migration 0011) that moves the head only from exactly that
 * (seq, hash) — a compare-and-set — and stores the records and the writs issued with them; if
 * another process moved it meanwhile, nothing is written and the locked path runs. Any number of
 * processes sharing one PostgreSQL keep one chain.
 *
 * On the embedded store that call is prepared once (PREPARE) and each append runs it with literal
 * values over the simple protocol: one trip into PGlite, and the function's statements are planned
 * once per session — an issuance commit (records and writ rows) costs ~40 % less CPU than the
 * statement it replaced (`jsonb_populate_recordset` in a CTE, sent with parameters).
 */
import { type Kysely, type Selectable, sql, type Transaction } from "kysely";
import { WritError } from "../core/index.js";
import { ERR_STORE_CORRUPT, guard, toInt } from "./errors.js";
import { carrierQuery, simpleQuery, sqlLiteral } from "./pglite-dialect.js";
import type { AuditCheckpointsTable, AuditRecordsTable, Database } from "./schema.js";

/** One record as stored. `data` is whatever the row holds (verification must cope with anything). */
export interface AuditRow {
  readonly seq: number;
  readonly at: Date;
  readonly type: string;
  readonly data: unknown;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditHead {
  /** The seq of the last record; 0 for an empty log. */
  readonly seq: number;
  /** The hash of the last record; the genesis hash for an empty log. */
  readonly hash: string;
}

export interface CheckpointRow {
  readonly seq: number;
  readonly hash: string;
  readonly at: Date;
  readonly keyId: string;
  /** A compact JWS over the checkpoint (see src/audit). */
  readonly signature: string;
}

/** The read side of the log, also available inside a snapshot. */
export interface AuditReader {
  head(): Promise<AuditHead>;
  /** Up to `limit` records with seq > `afterSeq`, ascending. */
  records(afterSeq: number, limit: number): Promise<AuditRow[]>;
  /** The `n` latest records, ascending. */
  latest(n: number): Promise<AuditRow[]>;
  /** Checkpoints with `afterSeq` < seq (≤ `toSeq` when given), ascending by seq then key id. */
  checkpoints(afterSeq: number, toSeq?: number, limit?: number): Promise<CheckpointRow[]>;
  /** The `limit` checkpoints with the highest seq ≤ `atOrBelow`, descending. */
  latestCheckpoints(atOrBelow: number, limit: number): Promise<CheckpointRow[]>;
}

/**
 * Rows stored by the same statement (or transaction) as audit records: committed with them or not
 * at all. Values as JSON gives them (dates as ISO text, jsonb columns as objects); the table's own
 * defaults fill the columns a row leaves out.
 */
export interface Companion {
  readonly table: "writs";
  readonly row: Readonly<Record<string, unknown>>;
}

export interface AuditRepository extends AuditReader {
  /**
   * Appends one record. `build` receives the locked head and returns the next record, which must
   * have `seq = head.seq + 1` and `prevHash = head.hash` (a `TypeError` otherwise). `build` may run
   * more than once (again on the newer head when another process appended first) and may run inside
   * a transaction: keep it short, free of side effects, and do not touch the store from it.
   */
  append(build: (head: AuditHead) => AuditRow | Promise<AuditRow>): Promise<AuditRow>;
  /**
   * Appends several records in one transaction (group commit): the first follows the head, each
   * next one follows the one before. All are stored or none.
   */
  appendBatch(
    build: (head: AuditHead) => readonly AuditRow[] | Promise<readonly AuditRow[]>,
    companions?: readonly Companion[],
  ): Promise<AuditRow[]>;
  /** Stores a checkpoint; returns the stored one (the existing row when this seq and key already have one). */
  addCheckpoint(checkpoint: CheckpointRow): Promise<CheckpointRow>;
  /**
   * Stores a checkpoint in the trip and commit of the next append instead of one of its own (the
   * embedded store, where each trip into the database runs on this thread and holds its one
   * connection: a call's append would wait behind a lone insert); alone when no append takes it
   * within `waitMs`. Resolves once committed (a row already stored for its seq and key is kept).
   * Undefined where checkpoints do not ride (PostgreSQL): store it with `addCheckpoint`.
   */
  rideCheckpoint(checkpoint: CheckpointRow, waitMs: number): Promise<void> | undefined;
  /** Runs `fn` against one consistent, read-only snapshot (a REPEATABLE READ transaction). */
  snapshot<T>(fn: (reader: AuditReader) => Promise<T>): Promise<T>;
}

const HEAD_ID = 1;

function fromRecord(row: Selectable<AuditRecordsTable>): AuditRow {
  return {
    seq: toInt(row.seq, "audit record seq"),
    at: row.at,
    type: row.type,
    data: row.data,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function fromCheckpoint(row: Selectable<AuditCheckpointsTable>): CheckpointRow {
  return {
    seq: toInt(row.seq, "audit checkpoint seq"),
    hash: row.hash,
    at: row.at,
    keyId: row.key_id,
    signature: row.signature,
  };
}

function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new TypeError(`${what}: expected a non-negative integer, got ${n}`);
}

function reader(db: Kysely<Database> | Transaction<Database>): AuditReader {
  return {
    head: () =>
      guard("read audit head", async () => {
        const row = await db
          .selectFrom("audit_head")
          .select(["seq", "hash"])
          .where("id", "=", HEAD_ID)
          .executeTakeFirst();
        if (row === undefined) throw new WritError(ERR_STORE_CORRUPT, "the audit head row is missing");
        return { seq: toInt(row.seq, "audit head seq"), hash: row.hash };
      }),

    records(afterSeq, limit) {
      checkCount("records limit", limit);
      return guard("read audit records", async () => {
        const rows = await db
          .selectFrom("audit_records")
          .selectAll()
          .where("seq", ">", afterSeq)
          .orderBy("seq")
          .limit(limit)
          .execute();
        return rows.map(fromRecord);
      });
    },

    latest(n) {
      checkCount("latest count", n);
      return guard("read audit records", async () => {
        const rows = await db
          .selectFrom("audit_records")
          .selectAll()
          .orderBy("seq", "desc")
          .limit(n)
          .execute();
        return rows.map(fromRecord).reverse();
      });
    },

    checkpoints(afterSeq, toSeq, limit) {
      if (limit !== undefined) checkCount("checkpoints limit", limit);
      return guard("read audit checkpoints", async () => {
        let query = db.selectFrom("audit_checkpoints").selectAll().where("seq", ">", afterSeq);
        if (toSeq !== undefined) query = query.where("seq", "<=", toSeq);
        query = query.orderBy("seq").orderBy("key_id");
        if (limit !== undefined) query = query.limit(limit);
        return (await query.execute()).map(fromCheckpoint);
      });
    },

    latestCheckpoints(atOrBelow, limit) {
      checkCount("checkpoints limit", limit);
      return guard("read audit checkpoints", async () => {
        const rows = await db
          .selectFrom("audit_checkpoints")
          .selectAll()
          .where("seq", "<=", atOrBelow)
          .orderBy("seq", "desc")
          .orderBy("key_id")
          .limit(limit)
          .execute();
        return rows.map(fromCheckpoint);
      });
    },
  };
}

/** The columns `writ_audit_append` (migration 0011) stores of each writ row. */
const WRIT_COLUMNS: ReadonlySet<string> = new Set([
  "id",
  "agent",
  "playbook",
  "environment",
  "params",
  "grants",
  "issued_at",
  "expires_at",
  "max_uses",
  "ticket",
  "sponsor",
  "audience",
  "jkt",
  "approval_request",
  "parent_writ",
]);

/** Rows per INSERT: PostgreSQL allows 65535 parameters, six per row. */
const MAX_BATCH = 10_000;

function checkChain(head: AuditHead, rows: readonly AuditRow[]): void {
  if (rows.length === 0 || rows.length > MAX_BATCH) {
    throw new TypeError(`audit append: expected 1 to ${MAX_BATCH} records, got ${rows.length}`);
  }
  let previous = head;
  for (const row of rows) {
    if (row.seq !== previous.seq + 1 || row.prevHash !== previous.hash) {
      throw new TypeError(
        `audit append: each record must follow the one before (seq ${previous.seq + 1}, prev ${previous.hash}), got seq ${row.seq}`,
      );
    }
    previous = row;
  }
}

export interface AuditRepositoryOptions {
  /**
   * Prepare the append statement once and run it with literals over the simple protocol (the
   * embedded store, where every trip into the database costs this process's CPU).
   */
  readonly prepared?: boolean | undefined;
}

/** Prepared statements live in the session: each repository names its own. */
let repositories = 0;

type WritRows = readonly Readonly<Record<string, unknown>>[];

function toValues(rows: readonly AuditRow[]) {
  return rows.map((row) => ({
    seq: row.seq,
    at: row.at,
    type: row.type,
    data: JSON.stringify(row.data),
    prev_hash: row.prevHash,
    hash: row.hash,
  }));
}

// Companion rows of one table, as one INSERT … SELECT over jsonb_populate_recordset (PostgreSQL
// types each value by the table's own columns), only from `source` when given (the moved head).
function companionInserts(companions: readonly Companion[], source?: string) {
  const byTable = new Map<string, Readonly<Record<string, unknown>>[]>();
  for (const c of companions) byTable.set(c.table, [...(byTable.get(c.table) ?? []), c.row]);
  return [...byTable].map(([table, batch]) => {
    const columns = [...new Set(batch.flatMap((r) => Object.keys(r)))];
    const list = sql.join(columns.map((c) => sql.ref(c)));
    const picked = sql.join(columns.map((c) => sql.ref(`r.${c}`)));
    const from = source === undefined ? sql`` : sql` cross join ${sql.table(source)}`;
    return sql`insert into ${sql.table(table)} (${list}) select ${picked} from jsonb_populate_recordset(null::${sql.table(table)}, ${JSON.stringify(batch)}::jsonb) as r${from}`;
  });
}

/** Prepares the append statements named `statement`: true once prepared, false when they cannot be. */
async function prepareAppend(db: Kysely<Database>, statement: string): Promise<boolean> {
  try {
    const { rows } = await db.executeQuery<{ standard_conforming_strings: string }>(
      simpleQuery("show standard_conforming_strings"),
    );
    if (rows[0]?.standard_conforming_strings !== "on") return false;
    // with writs: the function; records alone: the same compare-and-set as one statement,
    // which costs less than the function call when there are no writs to store
    await db.executeQuery(
      simpleQuery(
        `prepare ${statement} (bigint, text, bigint[], timestamptz[], text[], jsonb[], text[], text[], jsonb) as select writ_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9) as stored`,
      ),
    );
    await db.executeQuery(
      simpleQuery(`prepare ${statement}_records (bigint, text, bigint[], timestamptz[], text[], jsonb[], text[], text[]) as
            with moved as (
              update audit_head set seq = $3[cardinality($3)], hash = $8[cardinality($8)], updated_at = now()
              where id = ${HEAD_ID} and seq = $1 and hash = $2
              returning seq
            ), stored as (
              insert into audit_records (seq, at, type, data, prev_hash, hash)
              select v.seq, v.at, v.type, v.data, v.prev_hash, v.hash
              from unnest($3, $4, $5, $6, $7, $8) as v (seq, at, type, data, prev_hash, hash) cross join moved
              returning 1
            )
            select count(*)::int as stored from stored`),
    );
    // one record alone (a call at a time): the same without the arrays, about a third less CPU
    await db.executeQuery(
      simpleQuery(`prepare ${statement}_one (bigint, text, bigint, timestamptz, text, jsonb, text, text) as
            with moved as (
              update audit_head set seq = $3, hash = $8, updated_at = now()
              where id = ${HEAD_ID} and seq = $1 and hash = $2
              returning seq
            )
            insert into audit_records (seq, at, type, data, prev_hash, hash)
            select $3, $4, $5, $6, $7, $8 from moved
            returning 1 as stored`),
    );
    return true;
  } catch {
    return false;
  }
}

/** The prepared append, run with literals: the number of records stored. */
async function executePrepared(
  db: Kysely<Database>,
  statement: string,
  head: AuditHead,
  rows: readonly AuditRow[],
  writs: WritRows | undefined,
  riding: string,
): Promise<number> {
  const array = (values: readonly string[], type: string) => `array[${values.join(",")}]::${type}[]`;
  const int = (n: number) => {
    if (!Number.isSafeInteger(n)) throw new TypeError(`audit append: seq ${n} is not an integer`);
    return String(n);
  };
  if (writs === undefined && rows.length === 1) {
    const r = rows[0]!;
    const values = [
      head.seq,
      head.hash,
      r.seq,
      r.at.toISOString(),
      r.type,
      JSON.stringify(r.data),
      r.prevHash,
      r.hash,
    ];
    const one = `${riding}execute ${statement}_one(${values.map((v) => (typeof v === "number" ? int(v) : sqlLiteral(v))).join(", ")})`;
    // a row per record stored: none when the head had moved
    return (await db.executeQuery(carrierQuery(one))).rows.length;
  }
  const text = `${riding}execute ${writs === undefined ? `${statement}_records` : statement}(${[
    int(head.seq),
    sqlLiteral(head.hash),
    array(
      rows.map((r) => int(r.seq)),
      "bigint",
    ),
    array(
      rows.map((r) => sqlLiteral(r.at.toISOString())),
      "timestamptz",
    ),
    array(
      rows.map((r) => sqlLiteral(r.type)),
      "text",
    ),
    array(
      rows.map((r) => sqlLiteral(JSON.stringify(r.data))),
      "jsonb",
    ),
    array(
      rows.map((r) => sqlLiteral(r.prevHash)),
      "text",
    ),
    array(
      rows.map((r) => sqlLiteral(r.hash)),
      "text",
    ),
    ...(writs === undefined ? [] : [sqlLiteral(JSON.stringify(writs))]),
  ].join(", ")})`;
  // other writes waiting for a commit (the replay cache's entries) ride with this one
  const result = await db.executeQuery<{ stored: number }>(carrierQuery(text));
  return Number(result.rows[0]?.stored ?? 0);
}

/** The same function called with parameters (PostgreSQL): the number of records stored. */
async function executeFunction(
  db: Kysely<Database>,
  head: AuditHead,
  rows: readonly AuditRow[],
  writs: WritRows | undefined,
): Promise<number> {
  // one array per column: nine parameters whatever the batch's size
  const column = <T>(pick: (row: AuditRow) => T): T[] => rows.map(pick);
  const result = await sql<{
    stored: number;
  }>`select writ_audit_append(${head.seq}::bigint, ${head.hash}::text,
      ${column((r) => r.seq)}::bigint[], ${column((r) => r.at.toISOString())}::timestamptz[],
      ${column((r) => r.type)}::text[], ${column((r) => JSON.stringify(r.data))}::jsonb[],
      ${column((r) => r.prevHash)}::text[], ${column((r) => r.hash)}::text[],
      ${writs === undefined ? null : JSON.stringify(writs)}::jsonb) as stored`.execute(db);
  return Number(result.rows[0]?.stored ?? 0);
}

/** The writ rows of `companions` when `writ_audit_append` can store them all, else undefined. */
function writRows(companions: readonly Companion[]) {
  const rows: Readonly<Record<string, unknown>>[] = [];
  for (const c of companions) {
    const keys = Object.keys(c.row);
    if (c.table !== "writs" || keys.length !== WRIT_COLUMNS.size || !keys.every((k) => WRIT_COLUMNS.has(k))) {
      return undefined;
    }
    rows.push(c.row);
  }
  return rows;
}

/** The general compare-and-set statement, for companions the function does not know: rows stored. */
async function executeGeneral(
  db: Kysely<Database>,
  head: AuditHead,
  rows: readonly AuditRow[],
  companions: readonly Companion[],
): Promise<number> {
  const last = rows[rows.length - 1]!;
  const column = <T>(pick: (row: AuditRow) => T): T[] => rows.map(pick);
  const at = column((r) => r.at.toISOString());
  const data = column((r) => JSON.stringify(r.data));
  const alongside = companionInserts(companions, "moved").map(
    (insert, i) => sql`, ${sql.raw(`c${i}`)} as (${insert})`,
  );
  const result = await sql`
      with moved as (
        update audit_head set seq = ${last.seq}, hash = ${last.hash}, updated_at = now()
        where id = ${HEAD_ID} and seq = ${head.seq} and hash = ${head.hash}
        returning seq
      )${sql.join(alongside, sql``)}
      insert into audit_records (seq, at, type, data, prev_hash, hash)
      select v.seq, v.at, v.type, v.data, v.prev_hash, v.hash
      from unnest(${column((r) => r.seq)}::bigint[], ${at}::timestamptz[], ${column((r) => r.type)}::text[],
        ${data}::jsonb[], ${column((r) => r.prevHash)}::text[], ${column((r) => r.hash)}::text[])
        as v (seq, at, type, data, prev_hash, hash) cross join moved`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/**
 * The append without a lock, from `head`: true when stored, false when the head had moved.
 * `prepared` is given when the prepared statement may be used (it says whether it can be).
 */
async function optimistic(
  db: Kysely<Database>,
  statement: string,
  prepared: (() => Promise<boolean>) | undefined,
  head: AuditHead,
  rows: readonly AuditRow[],
  companions: readonly Companion[],
  rides: CheckpointRides,
): Promise<boolean> {
  const stored = (n: number) => {
    if (n === rows.length) return true;
    if (n === 0) return false;
    throw new WritError(ERR_STORE_CORRUPT, `audit append: ${n} of ${rows.length} records stored`);
  };
  const writs = writRows(companions);
  if (writs !== undefined) {
    const onlyRecords = writs.length === 0 ? undefined : writs;
    if (prepared !== undefined && (await prepared())) {
      const riding = rides.take();
      let n: number;
      try {
        n = await executePrepared(db, statement, head, rows, onlyRecords, riding.text);
      } catch (err) {
        riding.settled(err);
        throw err;
      }
      riding.settled();
      return stored(n);
    }
    return stored(await executeFunction(db, head, rows, onlyRecords));
  }
  // companions the function does not know: the general statement
  return stored(await executeGeneral(db, head, rows, companions));
}

/** The append under the head's lock, in one transaction: the rows stored. */
function locked(
  db: Kysely<Database>,
  build: Parameters<AuditRepository["appendBatch"]>[0],
  companions: readonly Companion[],
) {
  return db.transaction().execute(async (trx) => {
    const locked = await trx
      .selectFrom("audit_head")
      .select(["seq", "hash"])
      .where("id", "=", HEAD_ID)
      .forUpdate()
      .executeTakeFirst();
    if (locked === undefined) throw new WritError(ERR_STORE_CORRUPT, "the audit head row is missing");
    const head: AuditHead = { seq: toInt(locked.seq, "audit head seq"), hash: locked.hash };
    const rows = [...(await build(head))];
    checkChain(head, rows);
    await trx.insertInto("audit_records").values(toValues(rows)).execute();
    for (const insert of companionInserts(companions)) await insert.execute(trx);
    const last = rows[rows.length - 1]!;
    await trx
      .updateTable("audit_head")
      .set({ seq: last.seq, hash: last.hash, updated_at: sql<Date>`now()` })
      .where("id", "=", HEAD_ID)
      .execute();
    return rows;
  });
}

/** The insert of `checkpoint` as literals (the simple protocol), keeping a row already stored. */
function checkpointInsert(checkpoint: CheckpointRow): string {
  if (!Number.isSafeInteger(checkpoint.seq)) throw new TypeError(`checkpoint seq ${checkpoint.seq}`);
  const values = [
    String(checkpoint.seq),
    sqlLiteral(checkpoint.keyId),
    sqlLiteral(checkpoint.hash),
    sqlLiteral(checkpoint.at.toISOString()),
    sqlLiteral(checkpoint.signature),
  ].join(", ");
  return `insert into audit_checkpoints (seq, key_id, hash, at, signature) values (${values}) on conflict (seq, key_id) do nothing;\n`;
}

interface Ride {
  readonly checkpoint: CheckpointRow;
  readonly text: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Checkpoints waiting to ride with the next prepared append (`rideCheckpoint`). The statements of
 * one text run in one implicit transaction: the append and the checkpoints commit together or not
 * at all. A ride whose trip failed goes alone (its failure is its own; the append's is the append's).
 */
class CheckpointRides {
  private waiting: Ride[] = [];

  constructor(private readonly alone: (checkpoint: CheckpointRow) => Promise<unknown>) {}

  add(checkpoint: CheckpointRow, waitMs: number): Promise<void> {
    const text = checkpointInsert(checkpoint);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.findIndex((r) => r.timer === timer);
        if (i >= 0) this.goAlone(this.waiting.splice(i, 1));
      }, waitMs);
      this.waiting.push({ checkpoint, text, timer, resolve, reject });
    });
  }

  /** The rides for the next trip: their text, and how to tell them how it ended. */
  take(): { text: string; settled(err?: unknown): void } {
    const taken = this.waiting;
    if (taken.length === 0) return { text: "", settled() {} };
    this.waiting = [];
    for (const r of taken) clearTimeout(r.timer);
    return {
      text: taken.map((r) => r.text).join(""),
      settled: (err) => {
        if (err === undefined) for (const r of taken) r.resolve();
        else this.goAlone(taken);
      },
    };
  }

  private goAlone(rides: readonly Ride[]): void {
    for (const r of rides) this.alone(r.checkpoint).then(() => r.resolve(), r.reject);
  }
}

/** Stores a checkpoint, or returns the one already stored for its seq and key. */
function addCheckpoint(db: Kysely<Database>, checkpoint: CheckpointRow): Promise<CheckpointRow> {
  return guard("store audit checkpoint", async () => {
    const inserted = await db
      .insertInto("audit_checkpoints")
      .values({
        seq: checkpoint.seq,
        key_id: checkpoint.keyId,
        hash: checkpoint.hash,
        at: checkpoint.at,
        signature: checkpoint.signature,
      })
      .onConflict((oc) => oc.columns(["seq", "key_id"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted !== undefined) return fromCheckpoint(inserted);
    const existing = await db
      .selectFrom("audit_checkpoints")
      .selectAll()
      .where("seq", "=", checkpoint.seq)
      .where("key_id", "=", checkpoint.keyId)
      .executeTakeFirstOrThrow();
    return fromCheckpoint(existing);
  });
}

export function auditRepository(db: Kysely<Database>, opts: AuditRepositoryOptions = {}): AuditRepository {
  repositories += 1;
  const statement = `writ_audit_append_${repositories}`;

  // The head as this process last wrote or read it. An append first tries it without a lock: one
  // statement moves the head from exactly this (seq, hash) and inserts the records, or, when the
  // head has moved (another process appended), does nothing at all; then the locked path runs.
  let knownHead: AuditHead | undefined;

  // The prepared append: true once prepared, false when it cannot be (then the parameters' path).
  let preparing: Promise<boolean> | undefined;
  const prepare = (): Promise<boolean> => {
    preparing ??= prepareAppend(db, statement);
    return preparing;
  };
  const prepared = opts.prepared === true ? prepare : undefined;
  const rides = new CheckpointRides((checkpoint) => addCheckpoint(db, checkpoint));

  const appendBatch: AuditRepository["appendBatch"] = (build, companions = []) =>
    guard("append audit records", async () => {
      const head = knownHead;
      knownHead = undefined;
      if (head !== undefined) {
        const rows = [...(await build(head))];
        checkChain(head, rows);
        if (await optimistic(db, statement, prepared, head, rows, companions, rides)) {
          knownHead = rows[rows.length - 1]!;
          return rows;
        }
      }
      const rows = await locked(db, build, companions);
      knownHead = rows[rows.length - 1]!;
      return rows;
    });

  return {
    ...reader(db),

    async append(build) {
      const [row] = await appendBatch(async (head) => [await build(head)]);
      return row!;
    },

    appendBatch,

    addCheckpoint(checkpoint) {
      return addCheckpoint(db, checkpoint);
    },

    rideCheckpoint(checkpoint, waitMs) {
      if (prepared === undefined) return undefined;
      return guard("store audit checkpoint", () => rides.add(checkpoint, waitMs));
    },

    snapshot(fn) {
      return guard("read audit snapshot", () =>
        db
          .transaction()
          .setIsolationLevel("repeatable read")
          .setAccessMode("read only")
          .execute((trx) => fn(reader(trx))),
      );
    },
  };
}
