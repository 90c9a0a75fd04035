/**
 * The audit log: append, checkpoint, read, verify, export — over the store's audit repository.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isWritError, q, WritError } from "../core/index.js";
import {
  type AuditHead,
  type AuditRepository,
  type AuditRow,
  type CheckpointRow,
  type Companion,
  sqlState,
} from "../store/index.js";
import { canonicalJson, type JsonObject, toJsonValue } from "./canonical.js";
import { checkpointProblem, keyring, signCheckpoint } from "./checkpoint.js";
import {
  type AuditExport,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  exportCheckpoint,
  exportRecord,
  exportSource,
  parseExport,
} from "./export.js";
import { GENESIS_HASH, recordHashOfCanonical } from "./hash.js";
import type { AuditSigner, PublicJwk, TrustedKey } from "./keys.js";
import { redact } from "./redact.js";
import { type ChainReader, type VerifyReport, verifyChain, verifySegment } from "./verify.js";

/** The record's data, after normalisation and redaction, is larger than the limit. */
export const ERR_AUDIT_TOO_LARGE = "ERR_AUDIT_TOO_LARGE";
/** A checkpoint was asked for but the log has no signing key. */
export const ERR_AUDIT_NO_SIGNING_KEY = "ERR_AUDIT_NO_SIGNING_KEY";
/** A checkpoint was refused because the records since the last one are damaged. */
export const ERR_AUDIT_DAMAGED = "ERR_AUDIT_DAMAGED";

export interface AuditRecord extends AuditRow {
  readonly data: JsonObject;
}

export interface AuditLogOptions {
  /** The store's audit repository (`store.audit`). */
  readonly repo: AuditRepository;
  /** Signs checkpoints; without it the log appends but never checkpoints. */
  readonly signer?: AuditSigner | undefined;
  /** A checkpoint after every N records (default 100; 0 turns periodic checkpoints off). */
  readonly checkpointEvery?: number | undefined;
  /** Keys `verify` trusts by default (default: the signer's public key). */
  readonly trustedKeys?: readonly TrustedKey[] | undefined;
  /** Largest record data, in bytes of canonical JSON (default 1 MiB). */
  readonly maxRecordBytes?: number | undefined;
  readonly clock?: (() => Date) | undefined;
  /**
   * Hears of a periodic checkpoint that failed (`ERR_AUDIT_DAMAGED` when the records since the last
   * one are damaged). The record that triggered it is stored all the same, and its caller is not
   * kept waiting for the signature.
   */
  readonly onCheckpointError?: ((err: WritError) => void) | undefined;
  /**
   * When a transaction commits with appends waiting, send them in the next one before answering
   * its callers, rather than after the answers and a moment's wait for more (default false). For a
   * database in another process (PostgreSQL): it commits the next while the answers go out, instead
   * of waiting for them. On the embedded store the next would run on this thread, ahead of the
   * answers.
   */
  readonly sendNextFirst?: boolean | undefined;
}

export interface FollowOptions {
  /** Yield records after this seq (default: the head at the time of the call). */
  readonly afterSeq?: number | undefined;
  /** Poll interval (default 1000 ms). */
  readonly intervalMs?: number | undefined;
  /** Ends the iteration. */
  readonly signal?: AbortSignal | undefined;
}

export interface AuditLog {
  /**
   * Redacts, hashes and appends one record; checkpoints when its seq is a multiple of N. Resolves
   * once the record is committed. Concurrent appends share transactions (group commit). `with` is
   * a row stored in the same commit (the writ an issuance record is about): both or neither.
   */
  append(
    type: string,
    data: Readonly<Record<string, unknown>>,
    opts?: { readonly with?: Companion | undefined },
  ): Promise<AuditRecord>;
  /**
   * Signs a checkpoint at the current head (after checking the records since the last one), after
   * any periodic checkpoint still running.
   */
  checkpoint(): Promise<CheckpointRow>;
  /** Resolves once every periodic checkpoint started so far has been signed or reported. */
  settled(): Promise<void>;
  verify(opts?: { trustedKeys?: readonly TrustedKey[]; pageSize?: number }): Promise<VerifyReport>;
  head(): Promise<AuditHead>;
  /** The `n` latest records, ascending. */
  tail(n: number): Promise<AuditRecord[]>;
  /** New records as they are appended, polling. */
  follow(opts?: FollowOptions): AsyncIterable<AuditRecord>;
  /** The whole log as one document (one consistent snapshot). */
  export(opts?: { publicKeys?: readonly PublicJwk[] }): Promise<AuditExport>;
  /** The same document as JSON text in chunks, without holding it all in memory. */
  exportJson(
    write: (chunk: string) => void | Promise<void>,
    opts?: { publicKeys?: readonly PublicJwk[] },
  ): Promise<{
    records: number;
    checkpoints: number;
  }>;
}

const TYPE = /^[a-z][a-z0-9_.:-]{0,63}$/;
const PAGE = 1000;
/** Records per read when checking the records a checkpoint is about to sign. */
const VERIFY_PAGE = 25;
/** Most records, and most bytes of data, one group-commit transaction carries. */
const BATCH_RECORDS = 256;
const BATCH_BYTES = 4 * 1024 * 1024;
/** How long a transaction waits for more appends when they arrive concurrently. */
const GATHER_MS = 1;
/** Longest a checkpoint's insert waits for a pause in the appends (or, riding, for an append). */
const IDLE_WAIT_MS = 50;

interface Pending {
  readonly type: string;
  readonly data: JsonObject;
  /** `canonicalJson(data)`: measured once, hashed as is. */
  readonly canonical: string;
  readonly size: number;
  readonly companion: Companion | undefined;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (err: unknown) => void;
  /** Goes in a transaction of its own (its shared one was refused, perhaps because of another's row). */
  readonly alone?: true;
}

/** What the store said of a batch: the rows it committed, or why not. */
type Outcome = { readonly rows: readonly AuditRow[] } | { readonly error: unknown };

/** A batch on its way to the store. */
interface Sending {
  readonly batch: readonly Pending[];
  /** Never rejects. */
  readonly outcome: Promise<Outcome>;
}

/**
 * Whether the database refused a transaction for what it held — a value it cannot store (SQLSTATE
 * class 22) or a constraint (class 23, such as a writ id already taken) — rather than failing to
 * run it: an answer, so nothing of it was committed, and one record's row may be the cause.
 */
function refusedForContent(err: unknown): boolean {
  const state = sqlState(isWritError(err) ? err.cause : err);
  return state !== undefined && (state.startsWith("22") || state.startsWith("23"));
}

function asRecord(row: AuditRow): AuditRecord {
  return row as AuditRecord;
}

/** A checked copy of the clock's time. */
function readClock(clock: () => Date): Date {
  const at = clock();
  if (!(at instanceof Date) || Number.isNaN(at.getTime()))
    throw new TypeError("the audit clock returned an invalid date");
  return new Date(at.getTime());
}

/** The rows of `batch`, chained from `head`, as one transaction stores them. */
function chainRows(head: AuditHead, batch: readonly Pending[], now: () => Date): AuditRow[] {
  let previous: AuditHead = head;
  return batch.map((pending) => {
    const record = {
      seq: previous.seq + 1,
      at: now(),
      type: pending.type,
      prevHash: previous.hash,
    };
    const row = {
      ...record,
      data: pending.data,
      hash: recordHashOfCanonical(record, pending.canonical),
    };
    previous = row;
    return row;
  });
}

/** The next batch off the front of `queue` (removed from it). */
function takeBatch(queue: Pending[]): Pending[] {
  if (queue[0]!.alone) return queue.splice(0, 1);
  let bytes = 0;
  let n = 0;
  while (
    n < queue.length &&
    n < BATCH_RECORDS &&
    (n === 0 || (bytes + queue[n]!.size <= BATCH_BYTES && !queue[n]!.alone))
  ) {
    bytes += queue[n]!.size;
    n += 1;
  }
  return queue.splice(0, n);
}

/** A record's type and data, checked, normalised, redacted and measured (throws on bad input). */
function prepareRecord(
  type: string,
  data: Readonly<Record<string, unknown>>,
  maxBytes: number,
): { clean: JsonObject; canonical: string; size: number } {
  if (typeof type !== "string" || !TYPE.test(type)) {
    throw new TypeError(`audit type ${q(type)}: expected lowercase letters, digits and . _ : - (at most 64)`);
  }
  const normalised = toJsonValue(data);
  if (typeof normalised !== "object" || normalised === null || Array.isArray(normalised)) {
    throw new TypeError("audit data must be an object");
  }
  const clean = redact(normalised) as JsonObject;
  const canonical = canonicalJson(clean);
  const size = Buffer.byteLength(canonical, "utf8");
  if (size > maxBytes) {
    throw new WritError(
      ERR_AUDIT_TOO_LARGE,
      `audit record ${q(type)}: ${size} bytes of data, the limit is ${maxBytes}`,
    );
  }
  return { clean, canonical, size };
}

/** The error `onCheckpointError` hears of when the periodic checkpoint at `point` failed. */
function periodicFailure(point: AuditHead, err: unknown): WritError {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof WritError ? err.code : ERR_AUDIT_DAMAGED;
  return new WritError(code, `record ${point.seq} was appended, but its checkpoint failed: ${message}`, {
    cause: err,
  });
}

/** The last checkpoint that verifies with a trusted key, at or below `seq`, as a chain point. */
async function lastTrustedPoint(
  repo: AuditRepository,
  signer: AuditSigner | undefined,
  trusted: readonly TrustedKey[],
  seq: number,
): Promise<AuditHead> {
  const keys = keyring(trusted);
  for (const checkpoint of await repo.latestCheckpoints(seq, 20)) {
    const problem = await checkpointProblem(checkpoint, keys);
    if (problem === undefined) return { seq: checkpoint.seq, hash: checkpoint.hash };
    if (signer !== undefined && checkpoint.keyId === signer.kid) {
      throw new WritError(ERR_AUDIT_DAMAGED, `refusing to checkpoint: ${problem}`);
    }
  }
  return { seq: 0, hash: GENESIS_HASH };
}

/** New records as they are appended, polling. */
function followRecords(repo: AuditRepository, opts: FollowOptions): AsyncIterable<AuditRecord> {
  const interval = opts.intervalMs ?? 1000;
  const { signal } = opts;
  return {
    async *[Symbol.asyncIterator]() {
      let after = opts.afterSeq ?? (await repo.head()).seq;
      while (signal?.aborted !== true) {
        const rows = await repo.records(after, PAGE);
        for (const row of rows) {
          after = row.seq;
          yield asRecord(row);
        }
        if (rows.length === PAGE) continue;
        try {
          await sleep(interval, undefined, signal === undefined ? undefined : { signal });
        } catch {
          return; // aborted
        }
      }
    },
  };
}

/** The whole log as one document (one consistent snapshot). */
function exportDocument(
  repo: AuditRepository,
  now: () => Date,
  publicKeys: readonly PublicJwk[],
): Promise<AuditExport> {
  return repo.snapshot(async (reader) => {
    const head = await reader.head();
    const records: ReturnType<typeof exportRecord>[] = [];
    for (let after = 0; ; ) {
      const rows = await reader.records(after, PAGE);
      records.push(...rows.map(exportRecord));
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    const checkpoints = (await reader.checkpoints(-1)).map(exportCheckpoint);
    return {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exportedAt: now().toISOString(),
      head,
      records,
      checkpoints,
      publicKeys,
    };
  });
}

/** The same document as JSON text in chunks, without holding it all in memory. */
function exportJsonDocument(
  repo: AuditRepository,
  now: () => Date,
  write: (chunk: string) => void | Promise<void>,
  publicKeys: readonly PublicJwk[],
): Promise<{ records: number; checkpoints: number }> {
  return repo.snapshot(async (reader) => {
    const head = await reader.head();
    await write(
      `{"format":${JSON.stringify(EXPORT_FORMAT)},"version":${EXPORT_VERSION},"exportedAt":${JSON.stringify(now().toISOString())},"head":${JSON.stringify(head)},\n"records":[`,
    );
    let records = 0;
    for (let after = 0; ; ) {
      const rows = await reader.records(after, PAGE);
      for (const row of rows) {
        await write(`${records === 0 ? "\n" : ",\n"}${JSON.stringify(exportRecord(row))}`);
        records += 1;
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.seq;
    }
    const checkpoints = (await reader.checkpoints(-1)).map(exportCheckpoint);
    await write(
      `],\n"checkpoints":${JSON.stringify(checkpoints)},\n"publicKeys":${JSON.stringify(publicKeys)}}\n`,
    );
    return { records, checkpoints: checkpoints.length };
  });
}

/**
 * The appending side of one log: the group-commit queue, the run of records this log appended
 * itself, and the checkpoints, run one at a time.
 */
class AuditWriter {
  // The run: the records this log appended itself, each batch built on the one before (the head's
  // compare-and-set, or its lock, guarantees nobody else wrote in between; a batch that does not
  // follow this log's last record starts a new run). A run is sound when its base is the genesis or
  // a point this log has checked; a periodic checkpoint inside a sound run signs the hash this log
  // computed, without reading anything back. Damage done to stored records meanwhile is still
  // caught by verify: the signed hash is the chain as written, not as stored.
  private last: AuditHead | undefined;
  private runBase = 0;
  private runSound = false;

  // Checkpoints run one at a time, in order: periodic ones in the background, explicit ones after them.
  checkpoints: Promise<unknown> = Promise.resolve();
  /** Callers waiting for the checkpoints (`hurry`). */
  private hurried = 0;

  // Group commit: appends that arrive while a transaction is running wait and go together in the
  // next one. A lone append starts its transaction at once; under load, one transaction (one head
  // lock, one commit) carries many records. A failed transaction stores none of its records; it
  // fails every append it carried, unless the database refused it for what it held (a value, a
  // constraint): then each record goes again alone, so only the one at fault is refused.
  private readonly queue: Pending[] = [];
  private flushing = false;
  /** Whether the last transaction carried several records: appends are arriving concurrently. */
  private concurrent = false;
  // Waiting for the queue to drain (checkpoint inserts): released when a flush ends with nothing
  // queued, or after IDLE_WAIT_MS under steady load.
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly repo: AuditRepository,
    private readonly signer: AuditSigner | undefined,
    private readonly every: number,
    private readonly defaultKeys: readonly TrustedKey[],
    private readonly now: () => Date,
    private readonly onCheckpointError: ((err: WritError) => void) | undefined,
    private readonly sendNextFirst: boolean,
  ) {}

  private follows(first: AuditRow): boolean {
    return this.last !== undefined && first.seq === this.last.seq + 1 && first.prevHash === this.last.hash;
  }

  private extendRun(rows: readonly AuditRow[]): void {
    const first = rows[0]!;
    if (!this.follows(first)) {
      this.runBase = first.seq - 1;
      this.runSound = this.runBase === 0 && first.prevHash === GENESIS_HASH;
    }
    this.last = rows[rows.length - 1]!;
  }

  /** Whether `point` is a record of the current run (and so chains from its base). */
  private inRun(point: AuditHead): boolean {
    return this.last !== undefined && point.seq >= this.runBase && point.seq <= this.last.seq;
  }

  async checkpointAt(point: AuditHead, own: boolean): Promise<CheckpointRow> {
    const { signer, repo } = this;
    if (signer === undefined) {
      throw new WritError(ERR_AUDIT_NO_SIGNING_KEY, "the audit log has no signing key: checkpoints need one");
    }
    if (!(own && this.runSound && this.inRun(point))) {
      // whatever this log signs after a refusal, it checks first
      this.runSound = false;
      const from = await lastTrustedPoint(repo, signer, this.defaultKeys, point.seq);
      // in pages: on the embedded store each read holds the one connection, and appends wait behind it
      const damage = await verifySegment(repo as ChainReader, from, point, VERIFY_PAGE);
      if (damage !== undefined) {
        throw new WritError(
          ERR_AUDIT_DAMAGED,
          `refusing to checkpoint seq ${point.seq}: ${damage.problem} at ${damage.seq}: ${damage.message}`,
        );
      }
      // checked from a trusted point up to a record of the run: the run's base is sound
      if (this.inRun(point)) this.runSound = true;
    }
    const signed = await signCheckpoint(signer, { seq: point.seq, hash: point.hash, at: this.now() });
    // a periodic one rides with the next append where it can (one trip and commit for both),
    // unless someone waits for the checkpoints (settled, an explicit checkpoint)
    const riding = own && this.hurried === 0 ? repo.rideCheckpoint(signed, IDLE_WAIT_MS) : undefined;
    if (riding !== undefined) {
      await riding;
      return signed;
    }
    // the insert waits for a pause in the appends, so no call waits behind it (bounded wait)
    await this.idle();
    return repo.addCheckpoint(signed);
  }

  /** Periodic checkpoints do not ride while `work` runs: it waits for them. */
  async hurry<T>(work: () => Promise<T>): Promise<T> {
    this.hurried += 1;
    try {
      return await work();
    } finally {
      this.hurried -= 1;
    }
  }

  serialised<T>(run: () => Promise<T>): Promise<T> {
    const next = this.checkpoints.then(run);
    this.checkpoints = next.catch(() => {});
    return next;
  }

  private periodic(point: AuditHead): void {
    this.serialised(() => this.checkpointAt(point, true)).catch((err: unknown) => {
      const failure = periodicFailure(point, err);
      try {
        this.onCheckpointError?.(failure);
      } catch {
        // the listener's own failure
      }
    });
  }

  private idle(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, IDLE_WAIT_MS);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private releaseIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  enqueue(pending: Pending): void {
    this.queue.push(pending);
    void this.flush();
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    const { queue } = this;
    try {
      // the next batch, when it was sent before the answers of the one before it
      let next: Sending | undefined;
      for (let first = true; ; first = false) {
        let sending = next;
        next = undefined;
        if (sending === undefined) {
          // After a transaction, one turn of the event loop before the next (or before stopping):
          // requests already read but not yet at their append (an in-process store answers
          // synchronously, so nothing else ran while it worked) join the next transaction instead
          // of each starting its own. A lone append still starts at once.
          if (!first) await new Promise<void>((resolve) => setImmediate(resolve));
          if (queue.length === 0) break;
          if (this.concurrent && queue.length < BATCH_RECORDS) {
            // Under concurrent load (the last transaction carried several records) more appends
            // are on their way: a moment's wait lets one commit carry them rather than each its
            // own (a commit costs far more than a record in it). A lone append never waits.
            await new Promise<void>((resolve) => setTimeout(resolve, GATHER_MS));
          }
          sending = this.send(takeBatch(queue));
        }
        const outcome = await sending.outcome;
        // sendNextFirst: the appends that arrived while this one committed go to the store now,
        // built on the head it committed, and the database commits them while its callers hear
        // of theirs — answered first all the same: nothing of the next is committed yet. Not
        // after a failure: what goes next is then decided below.
        if (this.sendNextFirst && "rows" in outcome && queue.length > 0 && queue[0]!.alone === undefined) {
          next = this.send(takeBatch(queue));
        }
        this.settle(sending.batch, outcome);
      }
    } finally {
      this.flushing = false;
      if (queue.length === 0) this.releaseIdle();
    }
  }

  /** Sends one batch to the store, on the head the store finds. */
  private send(batch: readonly Pending[]): Sending {
    this.concurrent = batch.length > 1;
    const companions = batch.flatMap((pending) =>
      pending.companion === undefined ? [] : [pending.companion],
    );
    const outcome = this.repo
      .appendBatch((head) => chainRows(head, batch, this.now), companions)
      .then(
        (rows): Outcome => ({ rows }),
        (error: unknown): Outcome => ({ error }),
      );
    return { batch, outcome };
  }

  /** Answers a batch's callers, or fails them, or puts its records back to go again one by one. */
  private settle(batch: readonly Pending[], outcome: Outcome): void {
    if ("rows" in outcome) {
      this.committed(batch, outcome.rows);
    } else if (batch.length > 1 && refusedForContent(outcome.error)) {
      // Refused for one record's row, perhaps: nothing was stored, so each goes again in a
      // transaction of its own, ahead of later appends — only the culprit is refused, and every
      // other caller still hears of its record once it is committed.
      this.queue.unshift(...batch.map((pending): Pending => ({ ...pending, alone: true })));
    } else {
      for (const pending of batch) pending.reject(outcome.error);
    }
  }

  /** Answers the callers of a committed batch, and starts the periodic checkpoints it reached. */
  private committed(batch: readonly Pending[], rows: readonly AuditRow[]): void {
    this.extendRun(rows);
    for (const [i, row] of rows.entries()) {
      batch[i]!.resolve(asRecord(row));
      if (this.signer !== undefined && this.every > 0 && row.seq % this.every === 0) {
        // After the answer: nobody waits for the signature. A failure goes to onCheckpointError.
        this.periodic({ seq: row.seq, hash: row.hash });
      }
    }
  }
}

export function openAuditLog(options: AuditLogOptions): AuditLog {
  const { repo, signer } = options;
  const every = options.checkpointEvery ?? 100;
  const maxBytes = options.maxRecordBytes ?? 1024 * 1024;
  const clock = options.clock ?? (() => new Date());
  if (!Number.isSafeInteger(every) || every < 0)
    throw new TypeError("checkpointEvery must be an integer ≥ 0");
  const defaultKeys = options.trustedKeys ?? (signer === undefined ? [] : [signer.trusted]);
  const now = (): Date => readClock(clock);
  const writer = new AuditWriter(
    repo,
    signer,
    every,
    defaultKeys,
    now,
    options.onCheckpointError,
    options.sendNextFirst === true,
  );

  const exportKeys = (keys: readonly PublicJwk[] | undefined): readonly PublicJwk[] =>
    keys ?? (signer === undefined ? [] : [signer.publicJwk]);

  return {
    async append(type, data, opts = {}) {
      const { clean, canonical, size } = prepareRecord(type, data, maxBytes);
      return new Promise<AuditRecord>((resolve, reject) => {
        writer.enqueue({ type, data: clean, canonical, size, companion: opts.with, resolve, reject });
      });
    },

    checkpoint() {
      return writer.hurry(() => writer.serialised(async () => writer.checkpointAt(await repo.head(), false)));
    },

    settled() {
      return writer.hurry(async () => {
        for (let seen: Promise<unknown> | undefined; seen !== writer.checkpoints; ) {
          seen = writer.checkpoints;
          await seen;
        }
      });
    },

    verify(opts = {}) {
      return verifyChain(repo, { trustedKeys: opts.trustedKeys ?? defaultKeys, pageSize: opts.pageSize });
    },

    head: () => repo.head(),

    async tail(n) {
      if (!Number.isSafeInteger(n) || n < 0) throw new TypeError("tail: n must be an integer ≥ 0");
      return (await repo.latest(n)).map(asRecord);
    },

    follow(opts = {}) {
      return followRecords(repo, opts);
    },

    async export(opts = {}) {
      return exportDocument(repo, now, exportKeys(opts.publicKeys));
    },

    async exportJson(write, opts = {}) {
      return exportJsonDocument(repo, now, write, exportKeys(opts.publicKeys));
    },
  };
}

/**
 * Verifies an export document offline, trusting only `trustedKeys` (never the keys inside it).
 * Throws `ERR_AUDIT_EXPORT_INVALID` when the document is not an export at all.
 */
export async function verifyExport(
  doc: unknown,
  trustedKeys: readonly TrustedKey[],
  opts: { pageSize?: number } = {},
): Promise<VerifyReport> {
  const { source, duplicate } = exportSource(parseExport(doc));
  const report = await verifyChain(source, { trustedKeys, pageSize: opts.pageSize });
  if (duplicate !== undefined && (report.firstBad === undefined || report.firstBad.seq > duplicate)) {
    return {
      ...report,
      ok: false,
      firstBad: {
        seq: duplicate,
        problem: "inserted",
        message: `the export holds two records with seq ${duplicate}`,
      },
    };
  }
  return report;
}
