/**
 * Issuances for one agent, one at a time, across every process sharing the store. The runner
 * classes' `limits` (active writs, issuance per minute) are a count, a check and then a write: run
 * inside `serialise(agent, fn)`, no other issuance for that agent counts between this one's count
 * and its write, so concurrent issuances cannot together overshoot a limit. The broker holds it
 * once per issuance batch (broker/grants/issuance.ts): the agent's issuances in flight on one
 * server run together under one hold, and are kept exact there.
 *
 * - Embedded store: one process holds the data folder (lock.ts), so a queue per agent in memory is
 *   the whole lock.
 * - PostgreSQL: the same queue (one waiter per agent per process), then a transaction-scoped
 *   advisory lock on the agent (`pg_advisory_xact_lock`, key space `writ.issuance`), held on a
 *   connection of its own while `fn` runs on the pool's others; the transaction is rolled back
 *   after `fn` (it wrote nothing), which releases the lock — so does the connection's end. At most
 *   half the pool holds such a lock at once, so `fn` always finds a connection.
 */
import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.js";

export interface IssuanceLock {
  /** Runs `fn` while no other `serialise` for `agent` runs on this store, in any process. */
  serialise<T>(agent: string, fn: () => Promise<T>): Promise<T>;
}

/** A queue per key: each `run` starts when the one before it with the same key has settled. */
function keyedQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const before = tails.get(key) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const tail = mine.then(
      () => {},
      () => {},
    );
    tails.set(key, tail);
    try {
      return await mine;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/** At most `slots` holders at once; the others wait in order. */
function semaphore(slots: number) {
  let free = slots;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next !== undefined) next();
      else free++;
    }
  };
}

export function issuanceLock(
  db: Kysely<Database>,
  backend: "pglite" | "postgres",
  poolSize = 10,
): IssuanceLock {
  const queue = keyedQueue();
  if (backend === "pglite") return { serialise: (agent, fn) => queue(agent, fn) };
  const slot = semaphore(Math.max(1, Math.floor(poolSize / 2)));
  const locked = <T>(agent: string, fn: () => Promise<T>): Promise<T> =>
    db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        await sql`select pg_advisory_xact_lock(hashtext('writ.issuance'), hashtext(${agent}))`.execute(conn);
        return await fn();
      } finally {
        // nothing was written on this connection: ending its transaction releases the lock
        await sql`rollback`.execute(conn).catch(() => {});
      }
    });
  return { serialise: (agent, fn) => queue(agent, () => slot(() => locked(agent, fn))) };
}
