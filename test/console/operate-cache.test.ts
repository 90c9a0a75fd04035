/**
 * The Agents and Maturity pages' cache of the store read: served while fresh, replaced in the
 * background once older than its limit (one read at a time), awaited past six times the limit,
 * and a failed read retried by the next load.
 */
import { expect, it } from "vitest";
import { operationalCache } from "../../src/console/operate-cache.js";
import { emptyState } from "../operate/fixture.js";

const T0 = Date.parse("2026-12-01T12:00:00Z");
const at = (s: number) => new Date(T0 + s * 1000);

it("serves one read while fresh, refreshes in the background when stale, waits when too old", async () => {
  const reads: Date[] = [];
  const pending: (() => void)[] = [];
  let fail = false;
  const cache = operationalCache(async (now) => {
    reads.push(now);
    await new Promise<void>((r) => pending.push(r));
    if (fail) throw new Error("store down");
    return emptyState(now);
  }, 10_000);
  const settle = () => new Promise((r) => setTimeout(r, 0));
  const releaseAll = async () => {
    for (const r of pending.splice(0)) r();
    await settle();
  };
  // the first load waits for a read
  const first = cache.get(at(0));
  await settle();
  await releaseAll();
  expect((await first).at).toEqual(at(0));
  // fresh: no read
  expect((await cache.get(at(9))).at).toEqual(at(0));
  expect(reads).toHaveLength(1);
  // stale: the old state at once, and one background read however many loads come meanwhile
  expect((await cache.get(at(11))).at).toEqual(at(0));
  expect((await cache.get(at(12))).at).toEqual(at(0));
  expect(reads).toEqual([at(0), at(11)]);
  await releaseAll();
  expect((await cache.get(at(13))).at).toEqual(at(11));
  // a failed background read leaves the old state, and the next stale load tries again
  fail = true;
  expect((await cache.get(at(30))).at).toEqual(at(11));
  await releaseAll();
  expect((await cache.get(at(31))).at).toEqual(at(11));
  expect(reads).toHaveLength(4);
  await releaseAll();
  // past six times the limit the load waits, and a failure reaches it
  const tooOld = cache.get(at(80)).then(
    () => "answered",
    (e: Error) => e.message,
  );
  await settle();
  await releaseAll();
  expect(await tooOld).toBe("store down");
  fail = false;
  const fresh = cache.get(at(81));
  await settle();
  await releaseAll();
  expect((await fresh).at).toEqual(at(81));
});

it("reads on every load with a limit of 0", async () => {
  let n = 0;
  const cache = operationalCache(async (now) => {
    n += 1;
    return emptyState(now);
  }, 0);
  await cache.get(at(0));
  await cache.get(at(0));
  expect(n).toBe(2);
});
