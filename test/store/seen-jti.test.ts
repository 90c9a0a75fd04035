/**
 * The replay cache's rows on every backend (src/store/seen-jti.ts): a `jti` is taken once until it
 * expires, among concurrent callers exactly one wins; the purge is bounded and oldest first; a
 * batch writes the latest entry of each key and leaves live rows alone; batches ride with audit
 * commits on the embedded store only.
 */
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

forEachBackend("seen jti rows", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  const expiryOf = async (scope: string, jti: string) => {
    const r = await sql<{ expires_at: Date }>`
      select expires_at from seen_jti where scope = ${scope} and jti = ${jti}`.execute(h.store.db);
    return r.rows[0] === undefined ? undefined : new Date(r.rows[0].expires_at);
  };

  describe("insertOnce", () => {
    it("takes a key once while it lives, and again once it has expired", async () => {
      const seen = h.store.seenJti;
      expect(await seen.insertOnce("s1", "a", at(60), at(0))).toBe(true);
      expect(await seen.insertOnce("s1", "a", at(90), at(30))).toBe(false);
      expect(await expiryOf("s1", "a")).toEqual(at(60));
      expect(await seen.insertOnce("s2", "a", at(60), at(0))).toBe(true);
      expect(await seen.insertOnce("s1", "a", at(200), at(60))).toBe(true);
      expect(await expiryOf("s1", "a")).toEqual(at(200));
    });

    it("lets exactly one of concurrent callers win", async () => {
      const stores = h.second ? [h.store, await h.second()] : [h.store];
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          stores[i % stores.length]!.seenJti.insertOnce("race", "x", at(60), at(0)),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });
  });

  describe("purge and live", () => {
    it("deletes at most `limit` expired entries, oldest first, and lists the live ones", async () => {
      const seen = h.store.seenJti;
      await seen.purge(at(100), 1000); // what the tests before left expired by then
      for (let i = 1; i <= 5; i++) await seen.insertOnce("p", `old-${i}`, at(100 + i), at(0));
      await seen.insertOnce("p", "young", at(10_000), at(0));
      expect(await seen.purge(at(200), 2)).toBe(2);
      expect(await expiryOf("p", "old-1")).toBeUndefined();
      expect(await expiryOf("p", "old-2")).toBeUndefined();
      expect(await expiryOf("p", "old-3")).toEqual(at(103));
      const live = (await seen.live(at(104))).filter((e) => e.scope === "p");
      expect(live.sort((a, b) => a.jti.localeCompare(b.jti))).toEqual([
        { scope: "p", jti: "old-5", expiresAt: at(105) },
        { scope: "p", jti: "young", expiresAt: at(10_000) },
      ]);
      expect(await seen.purge(at(200), 100)).toBeGreaterThanOrEqual(3);
      expect(await expiryOf("p", "old-5")).toBeUndefined();
      expect(await expiryOf("p", "young")).toEqual(at(10_000));
    });
  });

  describe("batches", () => {
    it("writes the latest entry of each key, keeps live rows, leaves NUL keys out, and survives quotes", async () => {
      const seen = h.store.seenJti;
      await seen.insertOnce("b", "live", at(500), at(0));
      await seen.insertOnce("b", "stale", at(5), at(0));
      expect(seen.batch([{ scope: "b", jti: "nul\0", expiresAt: at(60) }], at(10))).toBeUndefined();
      const batch = seen.batch(
        [
          { scope: "b", jti: "one", expiresAt: at(60) },
          { scope: "b", jti: "one", expiresAt: at(70) },
          { scope: "b", jti: "it's \\ odd", expiresAt: at(60) },
          { scope: "b", jti: "live", expiresAt: at(900) },
          { scope: "b", jti: "stale", expiresAt: at(900) },
          { scope: "b", jti: "nul\0", expiresAt: at(60) },
        ],
        at(10),
      );
      expect(batch).toBeDefined();
      await seen.write(batch!);
      expect(await expiryOf("b", "one")).toEqual(at(70));
      expect(await expiryOf("b", "it's \\ odd")).toEqual(at(60));
      expect(await expiryOf("b", "live")).toEqual(at(500));
      expect(await expiryOf("b", "stale")).toEqual(at(900));
    });

    it("rides with the next audit commit on the embedded store only", async () => {
      const seen = h.store.seenJti;
      const log = openAuditLog({ repo: h.store.audit });
      await log.append("test.before", {}); // the log's first append reads the head: the next one carries
      const settled: unknown[] = [];
      let offered = seen.batch([{ scope: "ride", jti: "r1", expiresAt: at(60) }], at(0));
      const carried = seen.carry({
        take: () => {
          const b = offered;
          offered = undefined;
          return b;
        },
        settled: (err) => settled.push(err),
      });
      expect(carried).toBe(h.name === "pglite");
      await log.append("test.ride", {});
      if (h.name === "pglite") {
        expect(settled).toEqual([undefined]);
        expect(await expiryOf("ride", "r1")).toEqual(at(60));
      } else {
        expect(settled).toEqual([]);
        expect(await expiryOf("ride", "r1")).toBeUndefined();
      }
    });
  });
});
