/**
 * The broker's rows on every backend: denial counters (src/store/backoff.ts: a new counter, bumps
 * that see the row as it was, concurrent bumps serialised by the row lock) and approval requests
 * (src/store/approvals.ts: insert and its refusals, decisions under the row lock, polls, consume
 * once, the pending list) and signing keys (src/store/keys.ts: one family per repository, changes
 * serialised by the environment's lock, retirement clamps, what is published when).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DenialCounter, SigningKeyRepository } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

forEachBackend("broker rows", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("denial counters", () => {
    const plusOne =
      (now: Date) =>
      (c: DenialCounter): DenialCounter => ({
        count: c.count + 1,
        lastDeniedAt: now,
        blockedUntil: new Date(now.getTime() + 1000 * (c.count + 1)),
      });

    it("starts a counter at zero, bumps it from the row as stored, and keeps agents apart", async () => {
      const counters = h.store.denials;
      expect(await counters.read("bot", "prod")).toBeUndefined();
      const seenFirst: DenialCounter[] = [];
      const first = await counters.bump("bot", "prod", at(0), (c) => {
        seenFirst.push(c);
        return plusOne(at(0))(c);
      });
      expect(seenFirst).toEqual([{ count: 0, lastDeniedAt: at(0), blockedUntil: undefined }]);
      expect(first).toEqual({ count: 1, lastDeniedAt: at(0), blockedUntil: at(1) });
      await counters.bump("bot", "prod", at(5), plusOne(at(5)));
      expect(await counters.read("bot", "prod")).toEqual({
        count: 2,
        lastDeniedAt: at(5),
        blockedUntil: at(7),
      });
      expect(await counters.read("bot", "dev")).toBeUndefined();
      expect(await counters.read("other", "prod")).toBeUndefined();
    });

    it("serialises concurrent bumps of one counter", async () => {
      const counters = h.store.denials;
      await Promise.all(
        Array.from({ length: 6 }, () => counters.bump("racer", "prod", at(0), plusOne(at(0)))),
      );
      expect((await counters.read("racer", "prod"))?.count).toBe(6);
    });
  });

  describe("approval requests", () => {
    const request = (id: string, environment = "prod") => ({
      id,
      environment,
      agent: "bot",
      playbook: "deploy",
      params: JSON.stringify({ service: "api" }),
      ticket: null,
      audience: null,
      binding: "a".repeat(64),
      requester: "bot",
      created_at: at(0),
      expires_at: at(600),
      poll_interval: 5,
      last_polled_at: null,
      decided_at: null,
      writ_id: null,
    });

    it("inserts once, refuses a taken id and params jsonb cannot hold, removes", async () => {
      const approvals = h.store.approvals;
      const rows = await approvals.insert(request("ar-1"));
      expect("refused" in rows).toBe(false);
      if ("refused" in rows) return;
      expect(rows.request).toMatchObject({ id: "ar-1", status: "pending", params: { service: "api" } });
      expect(rows.decisions).toEqual([]);
      expect(await approvals.insert(request("ar-1"))).toMatchObject({ refused: "exists" });
      expect(await approvals.insert({ ...request("ar-nul"), params: '{"a":"\\u0000"}' })).toMatchObject({
        refused: "unstorable",
      });
      await approvals.insert(request("ar-gone"));
      await approvals.remove("ar-gone");
      expect(await approvals.load("ar-gone")).toBeUndefined();
    });

    it("decides under the row lock, commits an expiry flip, paces polls, consumes once", async () => {
      const approvals = h.store.approvals;
      await approvals.insert(request("ar-2"));
      const missing = await approvals.locked("nope", async (l) => l.rows);
      expect(missing).toBeUndefined();
      await approvals.locked("ar-2", async (l) => {
        expect(l.rows?.request.id).toBe("ar-2");
        await l.addDecision({ approver: "alice", decision: "approve", reason: null, at: at(10) });
        await l.close("approved", at(10));
      });
      const loaded = await approvals.load("ar-2");
      expect(loaded?.request).toMatchObject({ status: "approved", decided_at: at(10) });
      expect(loaded?.decisions).toEqual([
        { request_id: "ar-2", approver: "alice", decision: "approve", reason: null, at: at(10) },
      ]);

      const first = await approvals.recordPoll("ar-2", at(20), (p) => p.pollInterval);
      expect(first).toEqual({ pollInterval: 5, previous: { pollInterval: 5, lastPolledAt: undefined } });
      const second = await approvals.recordPoll("ar-2", at(21), (p) => p.pollInterval + 5);
      expect(second).toEqual({ pollInterval: 10, previous: { pollInterval: 5, lastPolledAt: at(20) } });
      expect(await approvals.recordPoll("nope", at(21), () => 5)).toBeUndefined();

      expect(await approvals.consume("ar-2", "w-1", at(700))).toBe(false);
      expect(await approvals.consume("ar-2", "w-1", at(30))).toBe(true);
      expect(await approvals.consume("ar-2", "w-2", at(31))).toBe(false);
      expect((await approvals.load("ar-2"))?.request).toMatchObject({ status: "consumed", writ_id: "w-1" });

      await approvals.insert(request("ar-3"));
      expect(await approvals.expire("ar-3", at(599))).toBe(false);
      expect(await approvals.locked("ar-3", (l) => l.expire(at(600)))).toBe(true);
      expect((await approvals.load("ar-3"))?.request.status).toBe("expired");
      expect(await approvals.expire("ar-3", at(601))).toBe(false);
    });

    it("lists pending, unexpired requests oldest first, by environment when asked", async () => {
      const approvals = h.store.approvals;
      await approvals.insert({ ...request("ar-4", "dev"), created_at: at(2) });
      await approvals.insert({ ...request("ar-5"), created_at: at(1) });
      await approvals.insert({ ...request("ar-6"), created_at: at(1), expires_at: at(50) });
      await approvals.locked("ar-5", (l) =>
        l.addDecision({ approver: "bob", decision: "approve", reason: null, at: at(3) }),
      );
      const all = await approvals.listPending({ now: at(100) });
      expect(all.map((r) => r.request.id)).toEqual(["ar-1", "ar-5", "ar-4"]);
      expect(all[1]?.decisions.map((d) => d.approver)).toEqual(["bob"]);
      const dev = await approvals.listPending({ now: at(40), environment: "dev" });
      expect(dev.map((r) => r.request.id)).toEqual(["ar-4"]);
    });
  });

  describe("signing keys", () => {
    const key = (kid: string, env: string, alg: string, created: number, life = 600) => ({
      kid,
      environment: env,
      alg,
      public_jwk: JSON.stringify({ kty: "OKP", kid }),
      private_jwk: JSON.stringify({ d: "secret" }),
      created_at: at(created),
      sign_until: at(created + life),
      publish_until: at(created + life),
      status: "active",
      retired_at: null,
    });
    /** Creates the environment's key under its lock unless one is active: what `activeKey` does. */
    const ensure = (keys: SigningKeyRepository, env: string, kid: string) =>
      keys.change(env, "ensure", async (k) => {
        const [current] = await k.active();
        return current ?? k.insert(key(kid, env, "EdDSA", 0));
      });

    it("serialises concurrent changes of one environment: one key is created, not several", async () => {
      const repos = [h.store.signingKeys.EdDSA];
      if (h.second !== undefined) repos.push((await h.second()).signingKeys.EdDSA);
      const made = await Promise.all(
        Array.from({ length: 6 }, (_, i) => ensure(repos[i % repos.length]!, "race", `race-${i}`)),
      );
      expect(new Set(made.map((r) => r.kid)).size).toBe(1);
      expect((await repos[0]!.active("race")).length).toBe(1);
    });

    it("keeps families apart, retires with clamped dates, publishes until publish_until", async () => {
      const ed = h.store.signingKeys.EdDSA;
      const es = h.store.signingKeys.ES256;
      await ed.change("prod", "seed", async (k) => {
        await k.insert(key("ed-old", "prod", "EdDSA", 0));
        await k.insert(key("ed-new", "prod", "EdDSA", 10));
      });
      await es.change("prod", "seed", (k) => k.insert(key("es-1", "prod", "ES256", 0)));
      expect((await ed.active("prod")).map((r) => r.kid)).toEqual(["ed-new", "ed-old"]);
      expect((await es.active("prod")).map((r) => r.kid)).toEqual(["es-1"]);

      const retired = await ed.change("prod", "retire", async (k) => {
        const [, old] = await k.active();
        return k.retire(old!, at(100), at(5000));
      });
      expect(retired).toMatchObject({
        kid: "ed-old",
        status: "retired",
        retired_at: at(100),
        sign_until: at(100),
      });
      // never published longer than it would have been
      expect(retired.publish_until).toEqual(at(600));
      expect(retired.private_jwk).toEqual({});
      // retired in the millisecond it was made: one millisecond of nominal life
      const instant = await ed.change("prod", "retire", async (k) => {
        const [latest] = await k.active();
        return k.retire(latest!, at(10), at(10));
      });
      expect(instant.sign_until.getTime()).toBe(at(10).getTime() + 1);
      expect(instant.publish_until.getTime()).toBe(at(10).getTime() + 1);

      expect((await ed.published("prod", at(300))).map((r) => r.kid)).toEqual(["ed-old"]);
      expect((await ed.published("prod", at(700))).map((r) => r.kid)).toEqual([]);
      expect((await ed.publishedKey("prod", "ed-old", at(300)))?.kid).toBe("ed-old");
      expect(await ed.publishedKey("prod", "es-1", at(300))).toBeUndefined();
      expect(await ed.publishedKey("dev", "ed-old", at(300))).toBeUndefined();
      expect((await es.list("prod")).map((r) => r.kid)).toEqual(["ed-old", "es-1", "ed-new"]);
    });
  });
});
