/**
 * Issuance batches (src/broker/grants/issuance.ts): one agent's concurrent issuances share one
 * hold of the store's issuance lock and one read of its counts, and stay exact — every check sees
 * the places held before it, a refusal gives its place back, a failure keeps it, and the next
 * batch reads counts that hold every writ the one before it stored.
 *
 * The store here is a counter with the repository's two calls (`load`, `serialiseIssuance`): what
 * is under test is the batching above them; the broker's tests (limits.test.ts) run the same
 * limits through the HTTP routes on the embedded store and PostgreSQL.
 */
import { describe, expect, it } from "vitest";
import { type IssuanceSlot, issuing, MAX_BATCH, unsettledOf } from "../../src/broker/grants/issuance.js";
import type { BrokerDeps } from "../../src/broker/oauth.js";
import type { WritLoad } from "../../src/store/index.js";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store of writ counts per agent with a lock that, like PostgreSQL's, admits one holder at a time. */
function fakeStore(opts: { lockFails?: () => boolean } = {}) {
  const stored = new Map<string, number>();
  let holders = 0;
  let mostHolders = 0;
  let lockTurns = 0;
  let loads = 0;
  let tail: Promise<unknown> = Promise.resolve();
  const deps = {
    store: {
      writs: {
        async load(agent: string): Promise<WritLoad> {
          loads++;
          await pause(2);
          const n = stored.get(agent) ?? 0;
          return { active: n, issuedSince: n };
        },
        serialiseIssuance<T>(_agent: string, fn: () => Promise<T>): Promise<T> {
          const run = async () => {
            if (opts.lockFails?.()) throw new Error("lock refused");
            lockTurns++;
            holders++;
            mostHolders = Math.max(mostHolders, holders);
            try {
              return await fn();
            } finally {
              holders--;
            }
          };
          const mine = tail.then(run, run);
          tail = mine.catch(() => {});
          return mine;
        },
      },
    },
  } as unknown as BrokerDeps;
  return {
    deps,
    store: (agent: string) => stored.set(agent, (stored.get(agent) ?? 0) + 1),
    stats: () => ({ mostHolders, lockTurns, loads }),
  };
}

const NOW = new Date("2026-12-07T12:00:00Z");
const SINCE = new Date(NOW.getTime() - 60_000);
const CAPS = { active: 100, issued: 100 };

/** One issuance under `limit` active writs: stores after `storeMs` when it passes. */
function issue(
  f: ReturnType<typeof fakeStore>,
  agent: string,
  limit: number,
  storeMs = 5,
): Promise<{ ok: boolean; seen: number }> {
  return issuing(f.deps, agent, async (slot: IssuanceSlot) => {
    const seen = { n: -1 };
    const ok = await slot.checked(
      NOW,
      SINCE,
      CAPS,
      (load) => {
        seen.n = load.active;
        return load.active < limit;
      },
      (passed) => passed,
    );
    if (!ok) return { ok: false, seen: seen.n };
    await pause(storeMs);
    f.store(agent);
    return { ok: true, seen: seen.n };
  });
}

/** One issuance of `agent` that holds a place and stores its writ only when `release` is called. */
function storingOne(f: ReturnType<typeof fakeStore>, agent: string) {
  let release!: () => void;
  const hold = new Promise<void>((resolve) => {
    release = resolve;
  });
  const done = issuing(f.deps, agent, async (slot) => {
    await holdOne(slot);
    await hold;
    f.store(agent);
    return { ok: true };
  });
  return { done, release };
}

/** A check that always passes and holds a place. */
const holdOne = (slot: IssuanceSlot) =>
  slot.checked(
    NOW,
    SINCE,
    CAPS,
    () => true,
    () => true,
  );

describe("issuance batches", () => {
  it("issues exactly the limit out of many at once, and shares one lock and one count among them", async () => {
    const f = fakeStore();
    const results = await Promise.all(Array.from({ length: 40 }, () => issue(f, "bot", 5)));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    // every check saw the places held before it: 0, 1, 2, 3, 4 for the five that passed
    expect(
      results
        .filter((r) => r.ok)
        .map((r) => r.seen)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4]);
    const { mostHolders, lockTurns, loads } = f.stats();
    expect(mostHolders).toBe(1);
    expect(lockTurns).toBe(1);
    expect(loads).toBe(1);
  });

  it("reads the counts anew for the next batch, after every writ of the one before is stored", async () => {
    const f = fakeStore();
    const first = await Promise.all(Array.from({ length: 3 }, () => issue(f, "bot", 10, 20)));
    expect(first.every((r) => r.ok)).toBe(true);
    // a batch closes once one of its issuances has ended: these arrive after and wait for the next
    const second = await Promise.all(Array.from({ length: 10 }, () => issue(f, "bot", 10)));
    expect(second.filter((r) => r.ok)).toHaveLength(7);
    expect(f.stats().loads).toBe(2);
    expect(f.stats().lockTurns).toBe(2);
  });

  it("takes no new issuance once one of its own has ended, so the next waits for the lock again", async () => {
    const f = fakeStore();
    const slow = issue(f, "bot", 100, 60);
    const quick = issue(f, "bot", 100, 1);
    await quick;
    // the batch is still held by `slow`; this one opens the next batch and waits for it
    const late = issue(f, "bot", 100, 1);
    let lateDone = false;
    void late.then(() => {
      lateDone = true;
    });
    await pause(20);
    expect(lateDone).toBe(false);
    await slow;
    await late;
    expect(f.stats().lockTurns).toBe(2);
  });

  it("forgets a batch's places once it ends: the next batch counts the store's writs alone", async () => {
    const f = fakeStore();
    let refusedSaw = -1;
    const refusing = issuing(f.deps, "bot", async (slot) => {
      await slot.checked(
        NOW,
        SINCE,
        CAPS,
        (load) => {
          refusedSaw = load.active;
          return true;
        },
        () => true,
      );
      await pause(5);
      return { ok: false };
    });
    const failing = issuing(f.deps, "bot", async (slot) => {
      await holdOne(slot);
      await pause(10);
      throw new Error("stored, or not: unknown");
    });
    await refusing;
    await expect(failing).rejects.toThrow("unknown");
    expect(refusedSaw).toBe(0);
    // the failure kept its place while its batch ran; it stored nothing, and the next batch reads
    // the store's count again, in which it is not
    const after = await issue(f, "bot", 100);
    expect(after).toEqual({ ok: true, seen: 0 });
  });

  it("counts a refused place back within the batch, and a failed one stays held", async () => {
    const f = fakeStore();
    const seen: number[] = [];
    const check = (slot: IssuanceSlot) =>
      slot.checked(
        NOW,
        SINCE,
        CAPS,
        (load) => seen.push(load.active),
        () => true,
      );
    const gate = pause(30);
    const refusing = issuing(f.deps, "bot", async (slot) => {
      await check(slot);
      return { ok: false };
    });
    const failing = issuing(f.deps, "bot", async (slot) => {
      await check(slot);
      await pause(5);
      throw new Error("failed after the check");
    });
    const watching = issuing(f.deps, "bot", async (slot) => {
      await gate;
      await check(slot);
      return { ok: true };
    });
    await refusing;
    await expect(failing).rejects.toThrow("failed after the check");
    await watching;
    // the refusal gave its place back, the failure kept its own: the third check sees one
    expect(seen).toEqual([0, 1, 1]);
  });

  it("reports the places not yet settled, for a count outside a batch", async () => {
    const f = fakeStore();
    const { done: pending, release } = storingOne(f, "bot");
    await pause(20);
    expect(unsettledOf(f.deps, "bot")).toBe(1);
    expect(unsettledOf(f.deps, "other-bot")).toBe(0);
    release();
    await pending;
    expect(unsettledOf(f.deps, "bot")).toBe(0);
  });

  it("reports the places of a closed batch still storing while the next one waits", async () => {
    const f = fakeStore();
    const { done: storing, release } = storingOne(f, "bot");
    await pause(20);
    // a member that ends closes the first batch; the next issuance waits in a second one
    await issuing(f.deps, "bot", async () => ({ ok: false }));
    const next = issuing(f.deps, "bot", async () => ({ ok: false }));
    await pause(20);
    expect(unsettledOf(f.deps, "bot")).toBe(1);
    release();
    await Promise.all([storing, next]);
    expect(unsettledOf(f.deps, "bot")).toBe(0);
    expect(f.stats().lockTurns).toBe(2);
  });

  it("closes a batch at its size, and lets different agents run apart", async () => {
    const f = fakeStore();
    await Promise.all(Array.from({ length: MAX_BATCH + 1 }, () => issue(f, "bot", 1000)));
    expect(f.stats().lockTurns).toBe(2);
    const g = fakeStore();
    await Promise.all([issue(g, "a-bot", 10), issue(g, "b-bot", 10)]);
    expect(g.stats().lockTurns).toBe(2);
  });

  it("fails every issuance of a batch whose lock could not be taken, and the next batch works", async () => {
    let fail = true;
    const f = fakeStore({ lockFails: () => fail });
    const failed = await Promise.allSettled(Array.from({ length: 4 }, () => issue(f, "bot", 10)));
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected", "rejected"]);
    fail = false;
    await expect(issue(f, "bot", 10)).resolves.toEqual({ ok: true, seen: 0 });
  });
});
