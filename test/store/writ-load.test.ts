/**
 * The counts behind the runner classes' `limits`: the store's query (`writs.load`, bounded by the
 * caps, on both backends) and the embedded store's in-memory counter (`writLoadCounter`), which
 * must always give the query's answer — after issuance, revocation by the repository or by a
 * statement of its own (the kill switch's), spent uses, deletion, expiry, and a restart.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type NewWrit, openStore, type Store } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const minuteBefore = (d: Date) => new Date(d.getTime() - 60_000);

let counter = 0;
function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  counter += 1;
  return {
    id: `w-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    agent: "release-bot",
    playbook: "deploy",
    environment: "prod",
    params: {},
    grants: [{ action: "k8s:apps/deployments:patch", resource: "prod/api" }],
    issuedAt: at(0),
    expiresAt: at(600),
    ...overrides,
  };
}

forEachBackend("writ load query", (h) => {
  beforeEach(() => h.setup());
  afterEach(() => h.teardown());

  it("counts active writs and recent issuance, revoked and spent ones as issued only", async () => {
    const w = h.store.writs;
    for (let i = 0; i < 4; i++) await w.insert(writ({ issuedAt: at(i), expiresAt: at(600) }));
    const revoked = await w.insert(writ({ issuedAt: at(5) }));
    await w.revoke(revoked.id, "test", at(6));
    const spent = await w.insert(writ({ issuedAt: at(7), maxUses: 1 }));
    await w.spendUse(spent.id, at(8));
    await w.insert(writ({ issuedAt: at(-120), expiresAt: at(30) })); // old, expires at 30 s
    await w.insert(writ({ agent: "other-bot", issuedAt: at(9) }));

    expect(await w.load("release-bot", at(10), minuteBefore(at(10)))).toEqual({ active: 5, issuedSince: 6 });
    // the old one has expired by 40 s; issuance since 3 s leaves out the first three
    expect(await w.load("release-bot", at(40), at(3))).toEqual({ active: 4, issuedSince: 3 });
    expect(await w.load("nobody", at(10), at(0))).toEqual({ active: 0, issuedSince: 0 });
  });

  it("stops each count at its cap", async () => {
    const w = h.store.writs;
    for (let i = 0; i < 6; i++) await w.insert(writ({ issuedAt: at(i) }));
    expect(await w.load("release-bot", at(10), at(0), { active: 4, issued: 2 })).toEqual({
      active: 4,
      issuedSince: 2,
    });
    expect(await w.load("release-bot", at(10), at(0), { active: 10, issued: 10 })).toEqual({
      active: 6,
      issuedSince: 6,
    });
    expect(await w.load("release-bot", at(10), at(0), { active: 0 })).toEqual({ active: 0, issuedSince: 6 });
    expect(() => w.load("release-bot", at(10), at(0), { active: -1 })).toThrow(/cap must be an integer/);
  });
});

/** A small deterministic generator (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("the in-memory writ load counter [pglite]", () => {
  let dir = "";
  let store: Store;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "writ-load-"));
    store = await openStore({ dataDir: dir });
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  /** A counter on `s`, once its change feed is live. */
  const counterOf = async (s: Store) => {
    const counter = s.writLoadCounter();
    await s.writChanges.sync();
    expect(s.writChanges.live).toBe(true);
    return counter;
  };

  it("seeds from the store, then answers from memory (synchronously) as writs come and go", async () => {
    const w = store.writs;
    const first = await w.insert(writ({ issuedAt: at(0) }));
    await w.insert(writ({ issuedAt: at(1), maxUses: 2 }));
    const load = await counterOf(store);
    expect(await load.load("release-bot", at(10), minuteBefore(at(10)))).toEqual({
      active: 2,
      issuedSince: 2,
    });
    expect(load.agents).toBe(1);

    // issued: one more of each
    const third = await w.insert(writ({ issuedAt: at(11), maxUses: 1 }));
    const held = load.load("release-bot", at(12), minuteBefore(at(12)));
    expect(held).not.toBeInstanceOf(Promise);
    expect(held).toEqual({ active: 3, issuedSince: 3 });

    // revoked: frees an active slot, still counts as issued
    await w.revoke(first.id, "test", at(13));
    expect(load.load("release-bot", at(14), minuteBefore(at(14)))).toEqual({ active: 2, issuedSince: 3 });

    // used up: frees an active slot
    await w.spendUse(third.id, at(15));
    expect(load.load("release-bot", at(16), minuteBefore(at(16)))).toEqual({ active: 1, issuedSince: 3 });

    // a minute on, the issuance of the first two has left the window; at 11 min all have expired
    expect(load.load("release-bot", at(65), minuteBefore(at(65)))).toEqual({ active: 1, issuedSince: 1 });
    expect(load.load("release-bot", at(660), minuteBefore(at(660)))).toEqual({ active: 0, issuedSince: 0 });
    load.close();
  });

  it("hears of revocations made by statements of their own (the kill switch) and of deletions", async () => {
    const w = store.writs;
    const load = await counterOf(store);
    expect(await load.load("release-bot", at(0), minuteBefore(at(0)))).toEqual({ active: 0, issuedSince: 0 });
    const a = await w.insert(writ({ issuedAt: at(1) }));
    await w.insert(writ({ issuedAt: at(2) }));
    await w.insert(writ({ issuedAt: at(3) }));
    expect(load.load("release-bot", at(4), minuteBefore(at(4)))).toEqual({ active: 3, issuedSince: 3 });
    await sql`delete from writs where id = ${a.id}`.execute(store.db);
    expect(load.load("release-bot", at(5), minuteBefore(at(5)))).toEqual({ active: 2, issuedSince: 2 });
    await sql`update writs set status = 'revoked', revoked_at = ${at(6)}, revoked_reason = 'kill switch'
      where agent = 'release-bot' and status = 'active'`.execute(store.db);
    expect(load.load("release-bot", at(7), minuteBefore(at(7)))).toEqual({ active: 0, issuedSince: 2 });
    load.close();
  });

  it("applies the changes that race an agent's first count on top of what it read", async () => {
    const load = await counterOf(store);
    const old = await store.writs.insert(writ({ issuedAt: at(0) }));
    const once = await store.writs.insert(writ({ issuedAt: at(1), maxUses: 1 }));
    // The count reads the active writs, then the recent issuance. The embedded store runs one
    // statement at a time, in the order asked: these land between the two reads.
    const first = load.load("release-bot", at(10), minuteBefore(at(10)));
    const racing = Promise.all([
      store.writs.insert(writ({ issuedAt: at(2) })),
      store.writs.revoke(old.id, "race", at(3)),
      store.writs.spendUse(once.id, at(4)),
    ]);
    expect(await first).toEqual({ active: 1, issuedSince: 3 });
    await racing;
    expect(load.load("release-bot", at(10), minuteBefore(at(10)))).toEqual({ active: 1, issuedSince: 3 });
    expect(await store.writs.load("release-bot", at(10), minuteBefore(at(10)))).toEqual({
      active: 1,
      issuedSince: 3,
    });
  });

  it("starts from what the store holds after a restart", async () => {
    for (let i = 0; i < 3; i++) await store.writs.insert(writ({ issuedAt: at(i) }));
    const revoked = await store.writs.insert(writ({ issuedAt: at(3) }));
    await store.writs.revoke(revoked.id, "test", at(4));
    await store.close();
    store = await openStore({ dataDir: dir, create: false });
    const load = await counterOf(store);
    expect(await load.load("release-bot", at(5), minuteBefore(at(5)))).toEqual({ active: 3, issuedSince: 4 });
    load.close();
  });

  it("asks the store about times before what it keeps (a clock gone back)", async () => {
    const load = await counterOf(store);
    await store.writs.insert(writ({ issuedAt: at(0), expiresAt: at(100) }));
    expect(await load.load("release-bot", at(10), minuteBefore(at(10)))).toEqual({
      active: 1,
      issuedSince: 1,
    });
    // an hour on, the writ is dropped from memory …
    expect(load.load("release-bot", at(3600), minuteBefore(at(3600)))).toEqual({ active: 0, issuedSince: 0 });
    // … and a count about 50 s is the store's, right all the same
    const back = load.load("release-bot", at(50), minuteBefore(at(50)));
    expect(back).toBeInstanceOf(Promise);
    expect(await back).toEqual({ active: 1, issuedSince: 1 });
    load.close();
  });

  it("gives the store's answer through any sequence of issuance, uses, revocations and deletions", async () => {
    const next = random(20301);
    const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(next() * xs.length)];
    const agents = ["release-bot", "ops-bot"];
    const load = await counterOf(store);
    const ids: string[] = [];
    let clock = 0;
    let checks = 0;
    for (let step = 0; step < 150; step++) {
      clock += Math.floor(next() * 8);
      const r = next();
      const agent = pick(agents)!;
      if (r < 0.45) {
        const issued = clock + Math.floor(next() * 6) - 3;
        const w = writ({
          agent,
          issuedAt: at(issued),
          expiresAt: at(issued + 1 + Math.floor(next() * 90)),
          maxUses: next() < 0.5 ? undefined : 1 + Math.floor(next() * 2),
        });
        // half through the repository, half the way the broker stores them (with their record)
        if (next() < 0.5) await store.writs.insert(w);
        else {
          const done = store.writs.announce(w);
          await store.db
            .insertInto("writs")
            .values({
              id: w.id,
              agent: w.agent,
              playbook: w.playbook,
              environment: w.environment,
              params: "{}",
              grants: JSON.stringify(w.grants),
              issued_at: w.issuedAt,
              expires_at: w.expiresAt,
              max_uses: w.maxUses ?? null,
            })
            .execute();
          done(true);
        }
        ids.push(w.id);
      } else if (r < 0.65) {
        const id = pick(ids);
        if (id !== undefined) await store.writs.spendUse(id, at(clock)).catch(() => {});
      } else if (r < 0.8) {
        const id = pick(ids);
        // (it may have been deleted)
        if (id !== undefined) await store.writs.revoke(id, "test", at(clock)).catch(() => {});
      } else if (r < 0.85) {
        await sql`update writs set status = 'revoked', revoked_at = ${at(clock)}, revoked_reason = 'kill'
          where agent = ${agent} and status = 'active'`.execute(store.db);
      } else if (r < 0.9) {
        const id = pick(ids);
        if (id !== undefined) await sql`delete from writs where id = ${id}`.execute(store.db);
      }
      for (const who of agents) {
        const now = at(clock + Math.floor(next() * 10) - 5);
        const since = minuteBefore(now);
        const caps = next() < 0.3 ? { active: 3, issued: 4 } : {};
        const expected = await store.writs.load(who, now, since, caps);
        expect(
          await load.load(who, now, since, caps),
          `step ${step}, ${who} at ${now.toISOString()}`,
        ).toEqual(expected);
        checks++;
      }
    }
    expect(checks).toBe(300);
    expect(load.agents).toBe(2);
    load.close();
  }, 60_000);
});
