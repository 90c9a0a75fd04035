import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { blockSeconds, denialBackoff } from "../../src/broker/backoff.js";
import { ERR_KILL_NOT_ENGAGED, ERR_KILL_SCOPE, killSwitch } from "../../src/broker/kill.js";
import { loadConfigFile } from "../../src/config/index.js";
import { isWritError, type WritConfig } from "../../src/core/index.js";
import type { WritErrorCode } from "../../src/error-codes.js";
import { forEachBackend } from "../store/backends.js";
import { ROOT } from "../support/cli.js";

let config: WritConfig;
beforeAll(async () => {
  config = (await loadConfigFile(join(ROOT, "examples", "quickstart", "writ.yaml"))).config!;
});

const NOW = new Date("2026-11-18T10:00:00Z");
const later = (s: number) => new Date(NOW.getTime() + s * 1000);

async function expectCode(p: Promise<unknown>, code: WritErrorCode): Promise<void> {
  try {
    await p;
    expect.fail(`expected ${code}`);
  } catch (e) {
    expect(isWritError(e, code), String(e)).toBe(true);
  }
}

forEachBackend("kill switch", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());
  beforeEach(async () => {
    await h.store.db.deleteFrom("kill_switches").execute();
    await h.store.db.deleteFrom("writs").execute();
    // release-bot (deploy) in dev and prod, ops-assistant (ops-assist) in prod, one expired writ
    const writ = (id: string, agent: string, environment: string, expiresAt = later(600)) =>
      h.store.writs.insert({
        id,
        agent,
        playbook: "p",
        environment,
        params: {},
        grants: [{ action: "k8s:core/pods:get", resource: "a/b" }],
        issuedAt: NOW,
        expiresAt,
      });
    await writ("w-rb-dev", "release-bot", "dev");
    await writ("w-rb-prod", "release-bot", "prod");
    await writ("w-ops-prod", "ops-assistant", "prod");
    await writ("w-ops-old", "ops-assistant", "prod", later(1));
  });

  const active = async () =>
    (
      await h.store.db.selectFrom("writs").select("id").where("status", "=", "active").orderBy("id").execute()
    ).map((r) => r.id);

  it.each([
    [{ kind: "agent", agent: "release-bot" } as const, ["w-rb-dev", "w-rb-prod"]],
    [{ kind: "class", runnerClass: "ops-assist" } as const, ["w-ops-prod"]],
    [{ kind: "environment", environment: "prod" } as const, ["w-ops-prod", "w-rb-prod"]],
    [{ kind: "all" } as const, ["w-ops-prod", "w-rb-dev", "w-rb-prod"]],
  ])("%j revokes exactly the live writs in scope and reports them", async (scope, revoked) => {
    const ks = killSwitch(h.store);
    const r = await ks.engage(scope, { by: "alice@acme.example", reason: "incident", config, now: later(5) });
    expect(r.revoked.map((w) => w.id)).toEqual(revoked);
    expect(r.already).toBe(false);
    const left = await active();
    for (const id of revoked) expect(left).not.toContain(id);
    const row = await h.store.writs.get(revoked[0]!);
    expect(row?.status).toBe("revoked");
    expect(row?.revokedReason).toContain(r.kill.id);
  });

  it("answers from memory when exclusive, exactly: what it engages and lifts shows at once", async () => {
    const ks = killSwitch(h.store, { exclusive: true });
    expect(await ks.engaged()).toEqual([]);
    const { kill } = await ks.engage(
      { kind: "agent", agent: "release-bot" },
      { by: "alice@acme.example", config },
    );
    expect((await ks.engaged()).map((k) => k.id)).toEqual([kill.id]);
    // each answer is the caller's own copy
    (await ks.engaged()).pop();
    expect((await ks.engaged()).map((k) => k.id)).toEqual([kill.id]);
    // read once, then kept: a row deleted behind its back (never, on the embedded store) still shows
    await h.store.db.deleteFrom("kill_switches").execute();
    expect((await ks.engaged()).map((k) => k.id)).toEqual([kill.id]);
    // its own change reads again
    const other = await ks.engage(
      { kind: "environment", environment: "prod" },
      { by: "alice@acme.example", config },
    );
    expect((await ks.engaged()).map((k) => k.id)).toEqual([other.kill.id]);
    await ks.lift({ kind: "environment", environment: "prod" }, { by: "alice@acme.example" });
    expect(await ks.engaged()).toEqual([]);
    expect(await ks.blocking(config.agents.get("release-bot")!, "dev")).toBeUndefined();
  });

  it("blocks issuance for what is in scope until lifted, and only that", async () => {
    const ks = killSwitch(h.store);
    await ks.engage({ kind: "class", runnerClass: "deploy" }, { by: "alice@acme.example", config, now: NOW });
    const rb = config.agents.get("release-bot")!;
    const ops = config.agents.get("ops-assistant")!;
    expect((await ks.blocking(rb, "prod"))?.scope).toEqual({ kind: "class", runnerClass: "deploy" });
    expect(await ks.blocking(ops, "prod")).toBeUndefined();
    await ks.engage(
      { kind: "environment", environment: "dev" },
      { by: "bob@acme.example", config, now: NOW },
    );
    expect(await ks.blocking(ops, "dev")).toBeDefined();
    expect(
      (await ks.lift({ kind: "class", runnerClass: "deploy" }, { by: "alice@acme.example" })).lifted,
    ).toHaveLength(1);
    expect(await ks.blocking(rb, "prod")).toBeUndefined();
    expect(await ks.blocking(rb, "dev")).toBeDefined();
    await expectCode(ks.lift({ kind: "class", runnerClass: "deploy" }, { by: "a" }), ERR_KILL_NOT_ENGAGED);
  });

  it("engaging the same scope twice keeps one kill, and revokes again", async () => {
    const ks = killSwitch(h.store);
    const first = await ks.engage({ kind: "all" }, { by: "a", config, now: NOW });
    const second = await ks.engage({ kind: "all" }, { by: "b", config, now: later(1) });
    expect(second.already).toBe(true);
    expect(second.kill.id).toBe(first.kill.id);
    expect(second.revoked).toEqual([]);
    expect(await ks.engaged()).toHaveLength(1);
  });

  it("refuses a scope the config does not declare", async () => {
    const ks = killSwitch(h.store);
    await expectCode(ks.engage({ kind: "agent", agent: "ghost" }, { by: "a", config }), ERR_KILL_SCOPE);
    await expectCode(
      ks.engage({ kind: "environment", environment: "staging" }, { by: "a", config }),
      ERR_KILL_SCOPE,
    );
  });
});

forEachBackend("repeated denials", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());
  beforeEach(async () => {
    await h.store.db.deleteFrom("denial_counters").execute();
  });

  it("blocks after a denial, doubling with each repeat, capped", async () => {
    const b = denialBackoff(h.store, { maxSeconds: 16 });
    expect(await b.check("release-bot", "prod", NOW)).toBeUndefined();
    const waits: number[] = [];
    let t = NOW;
    for (let i = 0; i < 7; i++) {
      const r = await b.record("release-bot", "prod", t);
      waits.push(r.retryAfter);
      t = new Date(t.getTime() + r.retryAfter * 1000); // the agent waits exactly as told
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 16, 16]);
  });

  it("asking again inside the block extends it; the block is per agent and environment", async () => {
    const b = denialBackoff(h.store);
    await b.record("release-bot", "prod", NOW);
    await b.record("release-bot", "prod", NOW); // a rephrased request, still blocked
    const blocked = await b.check("release-bot", "prod", later(1));
    expect(blocked?.count).toBe(2);
    expect(blocked?.retryAfter).toBe(1);
    expect(await b.check("release-bot", "dev", later(1))).toBeUndefined();
    expect(await b.check("ops-assistant", "prod", later(1))).toBeUndefined();
    expect(await b.check("release-bot", "prod", later(2))).toBeUndefined();
  });

  it("starts over only after an hour of quiet", async () => {
    const b = denialBackoff(h.store);
    for (let i = 0; i < 5; i++) await b.record("release-bot", "prod", later(i * 60));
    expect((await b.record("release-bot", "prod", later(4 * 60 + 30 * 60))).count).toBe(6);
    expect((await b.record("release-bot", "prod", later(4 * 60 + 30 * 60 + 3601))).count).toBe(1);
  });

  it("concurrent denials all count", async () => {
    const b = denialBackoff(h.store);
    await Promise.all(Array.from({ length: 10 }, () => b.record("release-bot", "prod", NOW)));
    expect((await b.check("release-bot", "prod", NOW))?.count).toBe(10);
  });
});

describe("block schedule", () => {
  it("doubles from one second", () => {
    expect([1, 2, 3, 4, 10, 11].map((n) => blockSeconds(n))).toEqual([1, 2, 4, 8, 512, 900]);
  });
});
