/**
 * The replay cache: a JWT identifier (`jti`) is accepted once per scope until the token carrying it
 * expires. Client assertions (RFC 7523) and DPoP proofs (RFC 9449) both use it.
 *
 * The store implementation is the real one: one atomic statement per call, so several `writ serve`
 * processes sharing a PostgreSQL database refuse the same `jti` between them. An entry whose expiry
 * has passed may be taken again (the token it protected can no longer be accepted anyway). Expired
 * rows are purged now and then, in bounded batches, by whichever call happens to come due.
 */
import { isWritError, WritError } from "../core/index.js";
import {
  ERR_STORE,
  type SeenJti,
  type SeenJtiBatch,
  type SeenJtiRepository,
  type Store,
} from "../store/index.js";

export interface ReplayCache {
  /**
   * Records `jti` in `scope` until `expiresAt`. True when it was not seen before (or its earlier
   * entry has expired); false when it is a replay. Atomic across processes sharing the store.
   */
  remember(scope: string, jti: string, expiresAt: Date): Promise<boolean>;
}

export interface StoreReplayCache extends ReplayCache {
  /** Deletes up to `limit` expired entries (default: the cache's batch size); returns how many. */
  purge(limit?: number): Promise<number>;
}

export interface ReplayCacheOptions {
  /** The server clock; default `new Date()`. */
  readonly clock?: (() => Date) | undefined;
  /** Purge expired rows every this many calls to `remember` (default 500; 0 turns it off). */
  readonly purgeEvery?: number | undefined;
  /** At most this many rows per purge (default 1000). */
  readonly purgeLimit?: number | undefined;
  /**
   * True when this process is the store's only user (the embedded store, held under a lock): the
   * check is then answered from memory, exactly, and new entries are written to the store behind
   * it in batches (`flush`, at most `flushAfterMs` later), so a restart still knows them. A crash
   * can lose the last batch; what a replayed proof or assertion would buy then is a token bound to
   * a DPoP key the attacker does not hold.
   */
  readonly exclusive?: boolean | undefined;
  /** With `exclusive`: how long a new entry may wait before it is written (default 20 ms). */
  readonly flushAfterMs?: number | undefined;
}

/** The longest `jti` key the `seen_jti` table holds. */
export const MAX_REPLAY_KEY_LENGTH = 512;

function checkArguments(scope: string, jti: string, expiresAt: Date): void {
  if (typeof scope !== "string" || scope.length === 0)
    throw new TypeError("scope must be a non-empty string");
  if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_REPLAY_KEY_LENGTH) {
    throw new TypeError(`jti must be a string of 1 to ${MAX_REPLAY_KEY_LENGTH} characters`);
  }
  if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) {
    throw new TypeError("expiresAt must be a valid Date");
  }
}

function positiveInteger(value: number | undefined, fallback: number, what: string, zero = false): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < (zero ? 0 : 1))
    throw new TypeError(`${what} must be a positive integer`);
  return n;
}

/** A database failure as a coded error (the store's own coded errors pass through). */
function failure(what: string, err: unknown): WritError {
  if (isWritError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WritError(ERR_STORE, `replay cache: ${what}: ${message}`, { cause: err });
}

/** The replay cache over the store's `seen_jti` table (PGlite or PostgreSQL). */
export function replayCache(
  store: Pick<Store, "seenJti">,
  options: ReplayCacheOptions = {},
): FlushableReplayCache {
  if (options.exclusive === true) return exclusiveReplayCache(store.seenJti, options);
  return { ...sharedReplayCache(store.seenJti, options), flush: () => Promise.resolve() };
}

export interface FlushableReplayCache extends StoreReplayCache {
  /**
   * Writes the entries not yet in the store and resolves when they are; call it before closing.
   * Immediate (nothing waits) unless the cache is `exclusive`.
   */
  flush(): Promise<void>;
}

interface Entry {
  readonly scope: string;
  readonly jti: string;
  readonly expiresAt: Date;
  /** Was in a commit that failed: written by the cache's own statement from now on, never riding. */
  readonly alone?: true;
}

function exclusiveReplayCache(seen: SeenJtiRepository, options: ReplayCacheOptions): FlushableReplayCache {
  const clock = options.clock ?? (() => new Date());
  const flushAfterMs = positiveInteger(options.flushAfterMs, 20, "flushAfterMs", true);
  const memory = memoryReplayCache(options);
  const store = sharedReplayCache(seen, { ...options, purgeEvery: 0 });
  const purgeEvery = positiveInteger(options.purgeEvery, 500, "purgeEvery", true);
  let calls = 0;
  let pending: Entry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  // What earlier runs remembered and has not expired, once, before the first answer.
  let loaded: Promise<void> | undefined;
  const load = () => {
    loaded ??= (async () => {
      for (const r of await seen.live(clock())) memory.seed(r.scope, r.jti, r.expiresAt);
    })().catch((err) => {
      loaded = undefined;
      throw failure("load", err);
    });
    return loaded;
  };

  /**
   * The insert of `batch` as one statement of literals (store/seen-jti.ts), or undefined when it
   * holds nothing storable: a key the table cannot hold (NUL) stays in memory only, rather than
   * failing every later flush.
   */
  const statementFor = (batch: readonly Entry[]): SeenJtiBatch | undefined => seen.batch(batch, clock());

  const write = async (batch: Entry[]): Promise<void> => {
    const statement = statementFor(batch);
    if (statement === undefined) return;
    try {
      await seen.write(statement);
    } catch (err) {
      pending = [...batch, ...pending]; // kept for the next flush; memory still refuses them
      throw failure("write", err);
    }
  };

  const schedule = () => {
    if (timer === undefined && pending.length > 0) {
      timer = setTimeout(() => void flush().catch(() => {}), flushAfterMs);
      timer.unref();
    }
  };

  // On the embedded store the new entries ride with the next audit commit (a writ's, a refusal's),
  // in its transaction, instead of a statement of their own; the timer still writes whatever no
  // commit took within `flushAfterMs`. Entries of a commit that failed go back, not to ride again.
  let riding: { batch: Entry[]; done: () => void; finished: Promise<void> } | undefined;
  seen.carry({
    take() {
      if (riding !== undefined) return undefined;
      const batch = pending.filter((e) => e.alone !== true);
      if (batch.length === 0) return undefined;
      const statement = statementFor(batch);
      if (statement === undefined) return undefined;
      pending = pending.filter((e) => e.alone === true);
      if (pending.length === 0 && timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      let done!: () => void;
      const finished = new Promise<void>((resolve) => {
        done = resolve;
      });
      riding = { batch, done, finished };
      return statement;
    },
    settled(err) {
      const ride = riding;
      riding = undefined;
      if (ride === undefined) return;
      if (err !== undefined) {
        pending = [...ride.batch.map((e): Entry => ({ ...e, alone: true })), ...pending];
        schedule();
      }
      ride.done();
    },
  });

  const flush = async (): Promise<void> => {
    // entries riding with a commit under way: what it settles (back into `pending` on a failure)
    if (riding !== undefined) await riding.finished;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    writing = writing.catch(() => {}).then(() => (batch.length === 0 ? undefined : write(batch)));
    return writing;
  };

  return {
    async remember(scope, jti, expiresAt) {
      checkArguments(scope, jti, expiresAt);
      await load();
      if (!(await memory.remember(scope, jti, expiresAt))) return false;
      pending.push({ scope, jti, expiresAt });
      calls += 1;
      if (purgeEvery > 0 && calls % purgeEvery === 0) {
        // expired rows out of the store too, in the background; a failure waits for the next turn
        void store.purge().catch(() => {});
      }
      schedule();
      return true;
    },
    async purge(limit) {
      await memory.purge(limit);
      return store.purge(limit);
    },
    flush,
  };
}

function sharedReplayCache(seen: SeenJtiRepository, options: ReplayCacheOptions): StoreReplayCache {
  const clock = options.clock ?? (() => new Date());
  const purgeEvery = positiveInteger(options.purgeEvery, 500, "purgeEvery", true);
  const purgeLimit = positiveInteger(options.purgeLimit, 1000, "purgeLimit");
  let calls = 0;
  let purging: Promise<unknown> | undefined;
  const batches = insertBatches(seen);

  async function purge(limit = purgeLimit): Promise<number> {
    positiveInteger(limit, purgeLimit, "limit");
    const now = clock();
    try {
      return await seen.purge(now, limit);
    } catch (err) {
      throw failure("purge", err);
    }
  }

  return {
    async remember(scope, jti, expiresAt) {
      checkArguments(scope, jti, expiresAt);
      const now = clock();
      calls += 1;
      if (purgeEvery > 0 && calls % purgeEvery === 0 && purging === undefined) {
        // In the background: a failed purge is retried at the next turn, and never fails a request.
        purging = purge()
          .catch(() => {})
          .finally(() => {
            purging = undefined;
          });
      }
      // One statement: a fresh key is inserted; a live one conflicts and the guarded update does
      // nothing (no row comes back); an expired one is taken over. PostgreSQL serializes the
      // conflicting inserts on the primary key, so among concurrent callers exactly one wins.
      // Sent with the keys of the calls that came while the one before was on its way.
      try {
        return await batches.insert({ scope, jti, expiresAt }, now);
      } catch (err) {
        throw failure(`remember ${scope}`, err);
      }
    },
    purge,
  };
}

/** Keys sent in one statement at most. */
const MAX_INSERT_BATCH = 128;

/**
 * The shared cache's inserts, grouped: a call with nothing on its way is sent at once; calls that
 * come while a statement is on its way go together in the next (one trip and one commit for all,
 * where each was its own). Within a group a key asked twice is sent once — the first call's — and
 * the later ones are replays, as the store would answer them one after the other. A group that
 * fails is sent again key by key, so that one key the store refuses fails only its own call.
 */
function insertBatches(seen: SeenJtiRepository) {
  interface Waiting {
    readonly entry: SeenJti;
    readonly now: Date;
    resolve(taken: boolean): void;
    reject(err: unknown): void;
  }
  let queue: Waiting[] = [];
  let sending = false;

  async function send(group: Waiting[]): Promise<void> {
    const first = new Map<string, Waiting>();
    const repeated: Waiting[] = [];
    for (const w of group) {
      const key = `${w.entry.scope}\u0000${w.entry.jti}`;
      if (first.has(key)) repeated.push(w);
      else first.set(key, w);
    }
    const unique = [...first.values()];
    // the latest clock of the group: an entry expired by then may be taken over
    const now = new Date(Math.max(...unique.map((w) => w.now.getTime())));
    const alone = (w: Waiting) => seen.insertOnce(w.entry.scope, w.entry.jti, w.entry.expiresAt, w.now);
    try {
      const taken = await seen.insertEach(
        unique.map((w) => w.entry),
        now,
      );
      for (const [i, w] of unique.entries()) w.resolve(taken[i] === true);
      for (const w of repeated) w.resolve(false);
    } catch (err) {
      if (unique.length === 1) {
        unique[0]!.reject(err);
        for (const w of repeated) w.reject(err);
        return;
      }
      // each again, alone: a key the store refuses fails its own call only
      await Promise.all(
        unique.map(async (w) => {
          try {
            w.resolve(await alone(w));
          } catch (e) {
            w.reject(e);
          }
        }),
      );
      for (const w of repeated) w.resolve(false);
    }
  }

  async function drain(): Promise<void> {
    sending = true;
    try {
      while (queue.length > 0) {
        const group = queue.slice(0, MAX_INSERT_BATCH);
        queue = queue.slice(group.length);
        await send(group);
      }
    } finally {
      sending = false;
    }
  }

  return {
    insert(entry: SeenJti, now: Date): Promise<boolean> {
      return new Promise<boolean>((resolve, reject) => {
        queue.push({ entry, now, resolve, reject });
        if (!sending) void drain();
      });
    },
  };
}

/**
 * The same contract in memory, for one process (tests, a single embedded server without a store).
 * Expired entries are dropped as calls come due, like the store's purge.
 */
export function memoryReplayCache(options: ReplayCacheOptions = {}): StoreReplayCache & {
  readonly size: number;
  /** Records an entry known from elsewhere (the store), without counting a call. */
  seed(scope: string, jti: string, expiresAt: Date): void;
} {
  const clock = options.clock ?? (() => new Date());
  const purgeEvery = positiveInteger(options.purgeEvery, 500, "purgeEvery", true);
  const purgeLimit = positiveInteger(options.purgeLimit, 1000, "purgeLimit");
  const seen = new Map<string, number>();
  let calls = 0;

  function purge(limit = purgeLimit): Promise<number> {
    positiveInteger(limit, purgeLimit, "limit");
    const now = clock().getTime();
    let removed = 0;
    for (const [key, expires] of seen) {
      if (removed >= limit) break;
      if (expires <= now) {
        seen.delete(key);
        removed += 1;
      }
    }
    return Promise.resolve(removed);
  }

  return {
    async remember(scope, jti, expiresAt) {
      checkArguments(scope, jti, expiresAt);
      const now = clock().getTime();
      calls += 1;
      if (purgeEvery > 0 && calls % purgeEvery === 0) await purge();
      const key = `${scope}\u0000${jti}`;
      const expires = seen.get(key);
      if (expires !== undefined && expires > now) return false;
      seen.set(key, expiresAt.getTime());
      return true;
    },
    purge,
    seed(scope, jti, expiresAt) {
      checkArguments(scope, jti, expiresAt);
      seen.set(`${scope}\u0000${jti}`, expiresAt.getTime());
    },
    /** Entries held, expired or not. */
    get size() {
      return seen.size;
    },
  };
}
