/**
 * The replay cache contract: the store implementation on PGlite and PostgreSQL, and the in-memory
 * one, pass the same cases.
 */
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import { memoryReplayCache, replayCache, type StoreReplayCache } from "../../src/broker/replay.js";
import { writRow } from "../../src/store/index.js";
import { seenJtiRepository } from "../../src/store/seen-jti.js";
import { forEachBackend } from "../store/backends.js";

const T0 = Date.parse("2030-01-01T10:00:00.000Z");

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let now = start;
  return {
    clock: () => new Date(now),
    set(seconds: number) {
      now = start + seconds * 1000;
    },
  };
}
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const fresh = () => `scope-${randomUUID()}`;

interface Subject {
  make(clock: () => Date, options?: { purgeEvery?: number; purgeLimit?: number }): StoreReplayCache;
  /** Entries in `scope` (expired or not). */
  count(scope: string): Promise<number>;
}

function contract(subject: () => Subject): void {
  it("accepts a jti once and refuses it again until it expires", async () => {
    const c = manualClock();
    const cache = subject().make(c.clock);
    const scope = fresh();
    expect(await cache.remember(scope, "a", at(10))).toBe(true);
    expect(await cache.remember(scope, "a", at(10))).toBe(false);
    c.set(9.999);
    expect(await cache.remember(scope, "a", at(20))).toBe(false);
    expect(await cache.remember(scope, "b", at(10))).toBe(true);
  });

  it("keeps scopes apart", async () => {
    const cache = subject().make(manualClock().clock);
    const [s1, s2] = [fresh(), fresh()];
    expect(await cache.remember(s1, "same", at(10))).toBe(true);
    expect(await cache.remember(s2, "same", at(10))).toBe(true);
    expect(await cache.remember(s1, "same", at(10))).toBe(false);
  });

  it("lets an expired entry be taken again, with its new expiry", async () => {
    const c = manualClock();
    const cache = subject().make(c.clock);
    const scope = fresh();
    expect(await cache.remember(scope, "x", at(10))).toBe(true);
    c.set(10); // expiry reached: expired
    expect(await cache.remember(scope, "x", at(30))).toBe(true);
    c.set(20);
    expect(await cache.remember(scope, "x", at(40))).toBe(false); // the new entry lives until 30
    c.set(30);
    expect(await cache.remember(scope, "x", at(40))).toBe(true);
  });

  it("gives exactly one true among 20 concurrent calls with the same jti", async () => {
    const cache = subject().make(manualClock().clock);
    const scope = fresh();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => cache.remember(scope, "race", at(60))),
    );
    expect(results.filter((r) => r)).toHaveLength(1);
  });

  it("purges expired entries only, at most `limit` at a time", async () => {
    const c = manualClock();
    const s = subject();
    const cache = s.make(c.clock, { purgeEvery: 0 });
    const scope = fresh();
    for (let i = 0; i < 5; i++) await cache.remember(scope, `old-${i}`, at(5));
    for (let i = 0; i < 3; i++) await cache.remember(scope, `live-${i}`, at(100));
    c.set(50);
    expect(await s.count(scope)).toBe(8);
    expect(await cache.purge(2)).toBe(2); // this test's or other tests' expired rows
    await cache.purge(10_000);
    expect(await s.count(scope)).toBe(3);
    // the live ones still count as seen
    expect(await cache.remember(scope, "live-0", at(100))).toBe(false);
  });

  it("purges on its own every `purgeEvery` calls", async () => {
    const c = manualClock();
    const s = subject();
    const cache = s.make(c.clock, { purgeEvery: 4 });
    const scope = fresh();
    for (let i = 0; i < 3; i++) await cache.remember(scope, `old-${i}`, at(5)); // calls 1-3
    c.set(50);
    expect(await s.count(scope)).toBe(3);
    await cache.remember(scope, "trigger", at(100)); // call 4 purges
    await expect.poll(() => s.count(scope), { timeout: 5000 }).toBe(1);
  });

  it("refuses bad arguments as programmer errors", async () => {
    const cache = subject().make(manualClock().clock);
    await expect(cache.remember("", "a", at(1))).rejects.toThrow(TypeError);
    await expect(cache.remember("s", "", at(1))).rejects.toThrow(TypeError);
    await expect(cache.remember("s", "x".repeat(513), at(1))).rejects.toThrow(TypeError);
    await expect(cache.remember("s", "a", new Date(Number.NaN))).rejects.toThrow(TypeError);
  });
}

forEachBackend("replay cache", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());
  const stored = async (scope: string) =>
    Number(
      (
        await sql<{ n: number }>`select count(*)::int as n from seen_jti where scope = ${scope}`.execute(
          h.store.db,
        )
      ).rows[0]?.n,
    );

  const subject = (): Subject => ({
    make: (clock, options) => replayCache(h.store, { clock, ...options }),
    async count(scope) {
      const r = await sql<{ n: number | string }>`
        select count(*)::int as n from seen_jti where scope = ${scope}`.execute(h.store.db);
      return Number(r.rows[0]?.n);
    },
  });
  contract(subject);

  describe("inserts grouped while one is on its way", () => {
    /** The store's repository, counting the statements sent and the keys in each. */
    function counted() {
      const repo = seenJtiRepository(h.store.db);
      const groups: number[] = [];
      return {
        groups,
        cache: replayCache({
          seenJti: {
            ...repo,
            insertOnce: (...args: Parameters<typeof repo.insertOnce>) => {
              groups.push(1);
              return repo.insertOnce(...args);
            },
            insertEach: (entries, now) => {
              groups.push(entries.length);
              return repo.insertEach(entries, now);
            },
          },
        }),
      };
    }

    it("sends the calls that came meanwhile in one statement, each answered for its own key", async () => {
      const { cache, groups } = counted();
      const scope = fresh();
      expect(await cache.remember(scope, "seen-before", at(600))).toBe(true);
      groups.length = 0;
      const keys = ["k1", "seen-before", "k2", "k2", "k3", "k4"];
      const results = await Promise.all(keys.map((k) => cache.remember(scope, k, at(600))));
      // the first went alone, the rest together; a key asked twice in a group is taken once
      expect(results).toEqual([true, false, true, false, true, true]);
      expect(groups).toEqual([1, 4]);
      expect(await stored(scope)).toBe(5);
      // and each is a replay from now on
      const again = await Promise.all(keys.map((k) => cache.remember(scope, k, at(600))));
      expect(again.every((r) => r === false)).toBe(true);
    });

    it("fails only the call whose key the store refuses, when its group fails", async () => {
      const { cache } = counted();
      const scope = fresh();
      const results = await Promise.allSettled(
        ["first", "a", "bad\u0000key", "b"].map((k) => cache.remember(scope, k, at(600))),
      );
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: "ERR_STORE" });
      expect(results.filter((r) => r.status === "fulfilled").map((r) => r.value)).toEqual([true, true, true]);
      expect(await stored(scope)).toBe(3);
    });
  });

  // PostgreSQL only: a second store with its own pool, as a second `writ serve` process has.
  const second = h.second?.bind(h);
  if (second !== undefined) {
    it("refuses a jti between two processes sharing the database", async () => {
      const other = await second();
      const scope = fresh();
      const clock = manualClock().clock;
      const a = replayCache(h.store, { clock });
      const b = replayCache(other, { clock });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).remember(scope, "shared", at(60))),
      );
      expect(results.filter((r) => r)).toHaveLength(1);
    });
  }

  describe("exclusive (memory first, written behind)", () => {
    let last: ReturnType<typeof replayCache> | undefined;
    contract(() => ({
      make(clock, options) {
        last = replayCache(h.store, { clock, exclusive: true, ...options });
        return last;
      },
      async count(scope) {
        await last?.flush();
        const r = await sql<{ n: number | string }>`
          select count(*)::int as n from seen_jti where scope = ${scope}`.execute(h.store.db);
        return Number(r.rows[0]?.n);
      },
    }));

    it("a restarted server still refuses what the last one saw, once written", async () => {
      const clock = manualClock().clock;
      const scope = fresh();
      const before = replayCache(h.store, { clock, exclusive: true, flushAfterMs: 60_000 });
      expect(await before.remember(scope, "seen", at(60))).toBe(true);
      expect(await before.remember(scope, "seen", at(60))).toBe(false);
      await before.flush();
      const after = replayCache(h.store, { clock, exclusive: true });
      expect(await after.remember(scope, "seen", at(60))).toBe(false);
      expect(await after.remember(scope, "new", at(60))).toBe(true);
    });

    it("writes quotes, backslashes and SQL in a jti as they are (the written-behind literals)", async () => {
      const clock = manualClock().clock;
      const scope = fresh();
      const nasty = ["'", "\\'", "\\", "a'); drop table seen_jti; --", "\\x27", "é\u2028"];
      const before = replayCache(h.store, { clock, exclusive: true, flushAfterMs: 60_000 });
      for (const jti of nasty) expect(await before.remember(scope, jti, at(60))).toBe(true);
      expect(await before.remember(scope, "nul\u0000inside", at(60))).toBe(true); // memory only
      await before.flush();
      const r = await sql<{ jti: string }>`select jti from seen_jti where scope = ${scope}`.execute(
        h.store.db,
      );
      expect(r.rows.map((row) => row.jti).sort()).toEqual([...nasty].sort());
      const after = replayCache(h.store, { clock, exclusive: true });
      for (const jti of nasty) expect(await after.remember(scope, jti, at(60))).toBe(false);
      // the entry the table cannot hold did not block the flush, and later ones still go through
      expect(await after.remember(scope, "later", at(60))).toBe(true);
      await after.flush();
      const n = await sql<{
        n: number;
      }>`select count(*)::int as n from seen_jti where scope = ${scope}`.execute(h.store.db);
      expect(Number(n.rows[0]?.n)).toBe(nasty.length + 1);
    });

    it("writes on its own shortly after", async () => {
      const scope = fresh();
      const cache = replayCache(h.store, { clock: manualClock().clock, exclusive: true, flushAfterMs: 5 });
      for (let i = 0; i < 5; i++) await cache.remember(scope, `j${i}`, at(60));
      await expect
        .poll(
          async () =>
            Number(
              (
                await sql<{
                  n: number;
                }>`select count(*)::int as n from seen_jti where scope = ${scope}`.execute(h.store.db)
              ).rows[0]?.n,
            ),
          { timeout: 5000 },
        )
        .toBe(5);
    });

    it("rides with the next audit commit on the embedded store (one transaction), and is written on its own elsewhere", async () => {
      const clock = manualClock().clock;
      const scope = fresh();
      const cache = replayCache(h.store, { clock, exclusive: true, flushAfterMs: 60_000 });
      const log = openAuditLog({ repo: h.store.audit });
      await log.append("test.before", {}); // the log's first append reads the head: the next one carries
      for (const jti of ["a", "b", "c"]) expect(await cache.remember(scope, jti, at(60))).toBe(true);
      await log.append("test.carrier", { scope });
      // no flush yet: on the embedded store the entries are already committed, with the record
      expect(await stored(scope)).toBe(h.name === "pglite" ? 3 : 0);
      await cache.flush();
      expect(await stored(scope)).toBe(3);
      expect(await log.verify()).toMatchObject({ ok: true });
    });

    it("keeps entries whose carrying commit failed, and writes them itself", async () => {
      const clock = manualClock().clock;
      const scope = fresh();
      const cache = replayCache(h.store, { clock, exclusive: true, flushAfterMs: 60_000 });
      const log = openAuditLog({ repo: h.store.audit });
      await log.append("test.before", {});
      const taken = writRow({
        id: `writ_${randomUUID()}`,
        agent: "release-bot",
        playbook: "deploy",
        environment: "prod",
        params: {},
        grants: [{ action: "k8s:apps/deployments:patch", resource: "prod/api" }],
        issuedAt: new Date(),
        expiresAt: new Date(Date.now() + 60_000),
      });
      await log.append("test.writ", {}, { with: taken });
      for (const jti of ["a", "b"]) expect(await cache.remember(scope, jti, at(60))).toBe(true);
      // the same writ id again: the database refuses the commit, and the entries riding with it
      await expect(log.append("test.writ", {}, { with: taken })).rejects.toMatchObject({ code: "ERR_STORE" });
      expect(await stored(scope)).toBe(0);
      expect(await cache.remember(scope, "a", at(60))).toBe(false); // memory still refuses them
      // they do not ride again: the next commit leaves them, the cache's own statement writes them
      await log.append("test.after", {});
      expect(await stored(scope)).toBe(0);
      await cache.flush();
      expect(await stored(scope)).toBe(2);
    });

    it("fails closed when the store cannot be read: no answer from an empty memory", async () => {
      const db = h.store.db.withSchema("no_such_schema") as unknown as typeof h.store.db;
      const cache = replayCache(
        { seenJti: seenJtiRepository(db) },
        { exclusive: true, flushAfterMs: 60_000 },
      );
      // the initial load fails first: the store is the authority on what earlier runs saw
      await expect(cache.remember("s", "a", at(1))).rejects.toMatchObject({ code: "ERR_STORE" });
    });
  });

  it("reports a failing database as a store error", async () => {
    const db = h.store.db.withSchema("no_such_schema") as unknown as typeof h.store.db;
    const cache = replayCache({ seenJti: seenJtiRepository(db) });
    await expect(cache.remember("s", "a", at(1))).rejects.toMatchObject({ code: "ERR_STORE" });
  });
});

describe("replay cache [memory]", () => {
  // One cache per test, so its size is the test's own entries.
  let last: ReturnType<typeof memoryReplayCache> | undefined;
  contract(() => ({
    make(clock, options) {
      last = memoryReplayCache({ clock, ...options });
      return last;
    },
    count: async () => last?.size ?? 0,
  }));
});
