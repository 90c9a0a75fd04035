/**
 * The runner classes' per-agent `limits` at the token endpoint, on each way a server counts: the
 * embedded store's in-memory counts (the default), the embedded store's query (`stateCache:
 * false`), and PostgreSQL's bounded query. A revoked, used-up or killed writ frees its active slot
 * but still counts towards the issuance rate, and a restarted server counts what its store holds.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy, type Server } from "../../src/app.js";
import type { RunnerClassLimits } from "../../src/core/index.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { ROOT } from "../support/cli.js";
import { type ExchangeClient, exchangeClient } from "./exchange-client.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");
const BASE = "http://127.0.0.1:8080";
const PDP_TOKEN = "limits-test-resource-server-token";

/** The quickstart with release-bot's runner class (`deploy`) under `limits`, deploy-service used once. */
async function policyWith(limits: RunnerClassLimits, maxUses?: number): Promise<Policy> {
  const { policy } = await loadPolicy(CONFIG);
  const config = policy!.config;
  const runnerClasses = new Map(config.runnerClasses);
  runnerClasses.set("deploy", { ...runnerClasses.get("deploy")!, limits });
  const playbooks = new Map(config.playbooks);
  if (maxUses !== undefined)
    playbooks.set("deploy-service", { ...playbooks.get("deploy-service")!, maxUses });
  return { ...policy!, config: { ...config, runnerClasses, playbooks } };
}

const MODES = [
  { name: "embedded store, counted in memory", stateCache: undefined, postgres: false },
  { name: "embedded store, counted by query", stateCache: false, postgres: false },
  ...(postgresEnabled
    ? [{ name: "PostgreSQL, counted by query", stateCache: undefined, postgres: true }]
    : []),
] as const;

for (const mode of MODES) {
  describe(`runner class limits [${mode.name}]`, () => {
    let dir = "";
    let temp: TempDatabase | undefined;
    const servers: Server[] = [];

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-limits-"));
      if (mode.postgres) temp = await createTempDatabase();
    });
    afterEach(async () => {
      for (const s of servers.splice(0)) await s.close();
      await temp?.drop();
      temp = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    async function start(policy: Policy): Promise<{ server: Server; agent: ExchangeClient }> {
      const server = await createServer({
        policy,
        dataDir: join(dir, "data"),
        databaseUrl: temp?.url,
        baseUrl: BASE,
        version: "test",
        pdpToken: PDP_TOKEN,
        ...(mode.stateCache === undefined ? {} : { stateCache: mode.stateCache }),
      });
      servers.push(server);
      return { server, agent: await exchangeClient(BASE, (url, init) => server.app.request(url, init)) };
    }

    // a denial slows the agent down (1 s, then 2 s …): the next exchange waits it out
    let blockedUntil = 0;

    /** One exchange: its writ token when issued, else the refusal's reason. */
    async function issue(agent: ExchangeClient): Promise<{ token?: string; reason?: string }> {
      const wait = blockedUntil - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 50));
      const r = await agent.exchange();
      if (r.status === 200) return { token: r.body.access_token as string };
      expect(r.status).toBe(400);
      expect(r.body.error).toBe("access_denied");
      const retryAfter = Number(r.headers.get("x-writ-retry-after") ?? "0");
      blockedUntil = Date.now() + retryAfter * 1000;
      return { reason: r.body.reason as string };
    }

    it("frees an active slot when a writ is revoked, and counts the revoked writ in the rate", async () => {
      const { agent } = await start(await policyWith({ activeWrits: 2, issuancePerMinute: 3 }));
      const first = await issue(agent);
      const second = await issue(agent);
      expect([first.token, second.token].every((t) => typeof t === "string")).toBe(true);
      expect(await issue(agent)).toEqual({ reason: "writ_limit_active" });

      expect(await agent.revoke(first.token!)).toBe(200);
      const third = await issue(agent);
      expect(third.token).toBeTypeOf("string");

      // two active slots free again, but three writs issued this minute (one of them revoked)
      expect(await agent.revoke(second.token!)).toBe(200);
      expect(await agent.revoke(third.token!)).toBe(200);
      expect(await issue(agent)).toEqual({ reason: "writ_limit_rate" });
    }, 60_000);

    it("holds under concurrency: of 24 exchanges in flight at once, exactly the limit is issued", async () => {
      const { server } = await start(await policyWith({ activeWrits: 5, issuancePerMinute: 1000 }));
      const clients = await Promise.all(
        Array.from({ length: 8 }, () => exchangeClient(BASE, (url, init) => server.app.request(url, init))),
      );
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => clients[i % 8]!.exchange()));
      const issued = results.filter((r) => r.status === 200);
      expect(issued).toHaveLength(5);
      const reasons = new Set(results.filter((r) => r.status !== 200).map((r) => r.body.reason));
      // refused by the limit, or by the slow-down that a first refusal starts
      for (const reason of reasons) expect(["writ_limit_active", "repeated_denial"]).toContain(reason);
      expect(reasons.has("writ_limit_active")).toBe(true);
    }, 60_000);

    if (mode.postgres) {
      /** `n` exchanges at once, sent in turn to two servers on the one database, as two processes. */
      async function acrossTwoServers(limits: RunnerClassLimits, n: number) {
        const policy = await policyWith(limits);
        const both = [(await start(policy)).server, (await start(policy)).server];
        const clients = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            exchangeClient(BASE, (url, init) => both[i % 2]!.app.request(url, init)),
          ),
        );
        const results = await Promise.all(Array.from({ length: n }, (_, i) => clients[i % 8]!.exchange()));
        const reasons = new Set(results.filter((r) => r.status !== 200).map((r) => r.body.reason));
        return { issued: results.filter((r) => r.status === 200).length, reasons, store: both[1]!.store };
      }

      it("holds across two servers on one database: of 24 exchanges at once, exactly the active limit is issued", async () => {
        const { issued, reasons, store } = await acrossTwoServers(
          { activeWrits: 5, issuancePerMinute: 1000 },
          24,
        );
        expect(issued).toBe(5);
        expect(await store.writs.listActive("release-bot", new Date())).toHaveLength(5);
        for (const reason of reasons) expect(["writ_limit_active", "repeated_denial"]).toContain(reason);
        expect(reasons.has("writ_limit_active")).toBe(true);
      }, 120_000);

      it("holds across two servers on one database: of 16 exchanges at once, exactly the rate limit is issued", async () => {
        const { issued, reasons } = await acrossTwoServers({ activeWrits: 1000, issuancePerMinute: 3 }, 16);
        expect(issued).toBe(3);
        for (const reason of reasons) expect(["writ_limit_rate", "repeated_denial"]).toContain(reason);
        expect(reasons.has("writ_limit_rate")).toBe(true);
      }, 120_000);
    }

    it("frees an active slot when a writ's last use is spent", async () => {
      const { server, agent } = await start(await policyWith({ activeWrits: 1, issuancePerMinute: 10 }, 1));
      const first = await issue(agent);
      expect(await issue(agent)).toEqual({ reason: "writ_limit_active" });
      const spent = await server.app.request(`${BASE}/env/dev/use`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${PDP_TOKEN}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ token: first.token! }).toString(),
      });
      expect(await spent.json()).toMatchObject({ uses: 1, uses_left: 0 });
      expect((await issue(agent)).token).toBeTypeOf("string");
    }, 60_000);

    it("frees the active slots a kill switch revoked once it is lifted", async () => {
      const { server, agent } = await start(await policyWith({ activeWrits: 1, issuancePerMinute: 10 }));
      expect((await issue(agent)).token).toBeTypeOf("string");
      expect(await issue(agent)).toEqual({ reason: "writ_limit_active" });
      const scope = { kind: "agent", agent: "release-bot" } as const;
      const engaged = await server.operator.engageKill(scope, { by: "limits-test" });
      expect(engaged.revoked).toHaveLength(1);
      expect(await issue(agent)).toEqual({ reason: "kill_switch_engaged" });
      await server.operator.liftKill(scope, { by: "limits-test" });
      expect((await issue(agent)).token).toBeTypeOf("string");
    }, 60_000);

    it("counts what the store holds after a restart", async () => {
      const policy = await policyWith({ activeWrits: 2, issuancePerMinute: 3 });
      const before = await start(policy);
      const kept = await issue(before.agent);
      const revoked = await issue(before.agent);
      expect(await before.agent.revoke(revoked.token!)).toBe(200);
      await servers.pop()!.close();

      const after = await start(policy);
      expect((await issue(after.agent)).token).toBeTypeOf("string"); // 2 active now, 3 issued
      expect(await issue(after.agent)).toEqual({ reason: "writ_limit_active" });
      expect(await after.agent.revoke(kept.token!)).toBe(200);
      expect(await issue(after.agent)).toEqual({ reason: "writ_limit_rate" });
    }, 90_000);
  });
}
