/**
 * Delegation under concurrency (docs/broker.md#delegation), on the embedded store (counted in
 * memory, and by query) and on PostgreSQL with two servers sharing the database, as two processes
 * would: child writs asked for at once never take the sub-agent past its runner class's `limits`,
 * and children issued and used at once, beside uses of their parent, never spend more than the
 * parent's `maxUses`.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy, type Server } from "../../src/app.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { ROOT } from "../support/cli.js";
import { type ExchangeClient, exchangeClient } from "./exchange-client.js";

const BASE = "http://127.0.0.1:8080";
const PDP_TOKEN = "delegation-concurrency-resource-server-token";
const RESOURCE = "https://k8s.acme.example";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const GET_PATCH = "k8s:apps/deployments:get|patch";
const CEILING = `{ maxTtl: 30m, allow: [{ action: "${GET_PATCH}", resource: "shop/*" }] }`;
const KEYS = join(ROOT, "examples", "quickstart", "keys");

const WRIT_YAML = `version: 1
environments:
  dev: { audiences: ["${RESOURCE}"] }
runnerClasses:
  lead:
    ceiling: ${CEILING}
    delegation: { actors: [worker, spender] }
  worker:
    ceiling: ${CEILING}
    limits: { activeWrits: 3, issuancePerMinute: 1000 }
  rated:
    ceiling: ${CEILING}
    limits: { activeWrits: 1000, issuancePerMinute: 2 }
  spender:
    ceiling: ${CEILING}
agents:
  lead-bot:
    owner: alice@acme.example
    purpose: holds the parent writs
    runnerClass: lead
    environments: [dev]
    keys: { file: ${join(KEYS, "release-bot.jwks.json")} }
    playbooks: [budget]
  helper-bot:
    owner: alice@acme.example
    purpose: a sub-agent under limits
    runnerClass: worker
    environments: [dev]
    keys: { file: ${join(KEYS, "ops-assistant.jwks.json")} }
  spender-bot:
    owner: alice@acme.example
    purpose: a sub-agent without limits, spending the parent's uses
    runnerClass: spender
    environments: [dev]
    keys: { file: ${join(KEYS, "cost-analyst.jwks.json")} }
playbooks:
  budget:
    description: four uses
    risk: low
    environments: [dev]
    grants:
      - { action: "${GET_PATCH}", resource: "shop/checkout" }
    ttl: 20m
    maxUses: 4
`;

const MODES = [
  { name: "embedded store, counted in memory", stateCache: undefined, postgres: false },
  { name: "embedded store, counted by query", stateCache: false, postgres: false },
  ...(postgresEnabled ? [{ name: "PostgreSQL, two servers", stateCache: undefined, postgres: true }] : []),
] as const;

for (const mode of MODES) {
  describe(`delegation under concurrency [${mode.name}]`, () => {
    let dir = "";
    let temp: TempDatabase | undefined;
    let policy: Policy;
    const servers: Server[] = [];

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-delegation-race-"));
      if (mode.postgres) temp = await createTempDatabase();
      await writeFile(join(dir, "writ.yaml"), WRIT_YAML);
      const loaded = await loadPolicy(join(dir, "writ.yaml"));
      expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
      policy = loaded.policy!;
    });
    afterEach(async () => {
      for (const s of servers.splice(0)) await s.close();
      await temp?.drop();
      temp = undefined;
      await rm(dir, { recursive: true, force: true });
    });

    /** One server, or on PostgreSQL two on the same database; each request goes to the next. */
    async function start(): Promise<(url: string, init: RequestInit) => Promise<Response>> {
      for (let i = 0; i < (mode.postgres ? 2 : 1); i++) {
        servers.push(
          await createServer({
            policy,
            dataDir: join(dir, "data"),
            databaseUrl: temp?.url,
            baseUrl: BASE,
            version: "test",
            pdpToken: PDP_TOKEN,
            ...(mode.stateCache === undefined ? {} : { stateCache: mode.stateCache }),
          }),
        );
      }
      let next = 0;
      return async (url, init) => servers[next++ % servers.length]!.app.request(url, init);
    }

    const as = (agent: string, key: string) => ({ agent, key });

    /** A parent writ of `budget` for lead-bot, and lead-bot's client that holds it. */
    async function parentWrit(fetcher: Parameters<typeof exchangeClient>[1]) {
      const lead = await exchangeClient(BASE, fetcher, as("lead-bot", "release-bot"));
      const r = await lead.post({
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: lead.baseline,
        subject_token_type: ACCESS_TOKEN,
        resource: RESOURCE,
        authorization_details: JSON.stringify([
          { type: "writ_playbook", playbook: "budget", parameters: {} },
        ]),
      });
      expect(r.status).toBe(200);
      return { lead, token: r.body.access_token as string, id: r.body.writ_id as string };
    }

    /** lead-bot delegates its writ `parent` to the holder of `actor`'s baseline token. */
    const delegate = (lead: ExchangeClient, parent: string, actor: ExchangeClient) =>
      lead.post({
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: parent,
        subject_token_type: ACCESS_TOKEN,
        actor_token: actor.baseline,
        actor_token_type: ACCESS_TOKEN,
      });

    it("issues exactly the sub-agent's active-writ limit of 12 child writs asked for at once", async () => {
      const fetcher = await start();
      const { lead, token } = await parentWrit(fetcher);
      const helper = await exchangeClient(BASE, fetcher, as("helper-bot", "ops-assistant"));
      const results = await Promise.all(Array.from({ length: 12 }, () => delegate(lead, token, helper)));
      const issued = results.filter((r) => r.status === 200);
      expect(issued).toHaveLength(3);
      const reasons = new Set(results.filter((r) => r.status !== 200).map((r) => r.body.reason));
      // refused by the limit, or by the slow-down a first refusal starts for the delegator
      for (const reason of reasons) expect(["writ_limit_active", "repeated_denial"]).toContain(reason);
      expect(reasons.has("writ_limit_active")).toBe(true);
      const held = await servers[0]!.store.writs.listActive("helper-bot", new Date());
      expect(held).toHaveLength(3);
    }, 120_000);

    it("issues exactly the issuance-per-minute limit when the class's rate is the bound", async () => {
      const rated = new Map(policy.config.runnerClasses);
      rated.set("worker", { ...rated.get("rated")!, delegation: rated.get("worker")!.delegation });
      policy = { ...policy, config: { ...policy.config, runnerClasses: rated } };
      const fetcher = await start();
      const { lead, token } = await parentWrit(fetcher);
      const helper = await exchangeClient(BASE, fetcher, as("helper-bot", "ops-assistant"));
      const results = await Promise.all(Array.from({ length: 8 }, () => delegate(lead, token, helper)));
      expect(results.filter((r) => r.status === 200)).toHaveLength(2);
      expect(results.some((r) => r.body.reason === "writ_limit_rate")).toBe(true);
    }, 120_000);

    it("never spends more than the parent's uses while children are issued and used at once", async () => {
      const fetcher = await start();
      const { lead, token, id } = await parentWrit(fetcher);
      const spender = await exchangeClient(BASE, fetcher, as("spender-bot", "cost-analyst"));
      const use = async (writToken: string) => {
        const r = await fetcher(`${BASE}/env/dev/use`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${PDP_TOKEN}`,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams({ token: writToken }).toString(),
        });
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      // six children asked for, each used three times as soon as it is issued, and the parent
      // used three times meanwhile: 21 uses tried against a budget of 4
      const children = Array.from({ length: 6 }, async () => {
        const child = await delegate(lead, token, spender);
        if (child.status !== 200) return { child, uses: [] };
        const maxUses = (child.body.authorization_details as { max_uses?: number }[])[0]?.max_uses;
        expect(maxUses).toBeLessThanOrEqual(4);
        const childToken = child.body.access_token as string;
        return { child, uses: await Promise.all([1, 2, 3].map(() => use(childToken))) };
      });
      const parentUses = Promise.all([1, 2, 3].map(() => use(token)));
      const done = await Promise.all(children);
      const all = [...done.flatMap((d) => d.uses), ...(await parentUses)];
      const spent = all.filter((u) => u.status === 200);
      expect(spent).toHaveLength(4);
      for (const u of all.filter((x) => x.status !== 200)) {
        expect(u.status).toBe(400);
        expect(u.body.reason).toBe("writ_exhausted");
      }
      // a child refused only because the parent was already spent
      for (const d of done.filter((x) => x.child.status !== 200)) {
        expect(d.child.body.reason).toBe("parent_writ_inactive");
      }
      const parent = await servers[0]!.store.writs.get(id);
      expect(parent?.uses).toBe(4);
      const kids = await servers[0]!.store.db
        .selectFrom("writs")
        .select(["uses", "max_uses"])
        .where("parent_writ", "=", id)
        .execute();
      expect(kids.reduce((n, k) => n + k.uses, 0)).toBeLessThanOrEqual(4);
      for (const k of kids) expect(k.uses).toBeLessThanOrEqual(k.max_uses ?? 0);
    }, 120_000);
  });
}
