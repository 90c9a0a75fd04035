/**
 * Sub-agent delegation (docs/broker.md#delegation), driven with openid-client against a live
 * `writ serve` app: the parent writ's holder exchanges its writ (subject_token) and the sub-agent's
 * DPoP-bound baseline token (actor_token) for a child writ, which can only narrow. Then a property
 * test of the pure check over generated grant sets: an accepted child is contained in its parent.
 */
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "../../src/app.js";
import { checkDelegation } from "../../src/broker/grants/delegation-check.js";
import { explain } from "../../src/cli/explain.js";
import {
  compileRule,
  parseRequestAction,
  type RuleText,
  ruleContains,
  ruleMatches,
  ruleOverlaps,
  type WritConfig,
} from "../../src/core/index.js";
import { liveFromYaml, QUICKSTART, quickstartKey } from "./live.js";

const RS_TOKEN = "resource-servers-token-for-the-delegation-test";
const RESOURCE = "https://k8s.acme.example";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";

const GET_PATCH = "k8s:apps/deployments:get|patch";
const WRIT_YAML = `version: 1
environments:
  dev: { audiences: ["${RESOURCE}"] }
  staging: { audiences: ["${RESOURCE}"] }
runnerClasses:
  lead:
    ceiling: { maxTtl: 30m, allow: [{ action: "${GET_PATCH}", resource: "shop/*" }] }
    delegation: { actors: [worker], maxDepth: 2 }
  worker:
    ceiling: { maxTtl: 5m, allow: [{ action: "${GET_PATCH}", resource: "shop/*" }] }
    delegation: { actors: [worker] }
  outsider:
    ceiling: { maxTtl: 30m, allow: [{ action: "${GET_PATCH}", resource: "shop/*" }] }
agents:
  lead-bot:
    owner: alice@acme.example
    purpose: holds parent writs and delegates
    runnerClass: lead
    environments: [dev, staging]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [work, short, twice]
  helper-bot:
    owner: alice@acme.example
    purpose: a sub-agent
    runnerClass: worker
    environments: [dev]
    keys: { file: keys/ops-assistant.jwks.json }
  sub-helper:
    owner: alice@acme.example
    purpose: a sub-agent's sub-agent
    runnerClass: worker
    environments: [dev]
    keys: { file: keys/cost-analyst.jwks.json }
  far-helper:
    owner: alice@acme.example
    purpose: one level too deep
    runnerClass: worker
    environments: [dev]
    keys: { file: keys/approver-alice.jwks.json }
  stranger:
    owner: alice@acme.example
    purpose: a class the lead may not delegate to
    runnerClass: outsider
    environments: [dev]
    keys: { file: keys/approver-dan.jwks.json }
  staging-helper:
    owner: alice@acme.example
    purpose: a sub-agent of another environment
    runnerClass: worker
    environments: [staging]
    keys: { file: keys/approver-carol.jwks.json }
playbooks:
  work:
    description: two deployments
    risk: low
    environments: [dev, staging]
    grants:
      - { action: "${GET_PATCH}", resource: "shop/checkout" }
      - { action: "k8s:apps/deployments:get", resource: "shop/payments" }
    ttl: 20m
  short:
    description: a short one
    risk: low
    environments: [dev]
    grants:
      - { action: "${GET_PATCH}", resource: "shop/checkout" }
    ttl: 2m
  twice:
    description: two uses
    risk: low
    environments: [dev]
    grants:
      - { action: "${GET_PATCH}", resource: "shop/checkout" }
    ttl: 20m
    maxUses: 2
`;

const KEY_OF: Readonly<Record<string, string>> = {
  "lead-bot": "release-bot",
  "helper-bot": "ops-assistant",
  "sub-helper": "cost-analyst",
  "far-helper": "approver-alice",
  stranger: "approver-dan",
  "staging-helper": "approver-carol",
};

const current = liveFromYaml("delegation", () => WRIT_YAML, { pdpToken: RS_TOKEN });
let server: Server;
let base: string;
beforeAll(() => {
  ({ server, base } = current());
});

type Agent = Awaited<ReturnType<typeof agent>>;

/** openid-client for one agent and environment, with a DPoP key of its own. */
async function agent(id: string, env = "dev") {
  const { key, kid } = await quickstartKey(KEY_OF[id]!);
  const config = await client.discovery(
    new URL(`${base}/env/${env}`),
    id,
    undefined,
    client.PrivateKeyJwt({ key, kid }),
    { algorithm: "oauth2", execute: [client.allowInsecureRequests] },
  );
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  return { id, config, DPoP };
}

const baseline = async (a: Agent) =>
  (await client.clientCredentialsGrant(a.config, {}, { DPoP: a.DPoP })).access_token;

/** A writ of `playbook` for `a`, through token exchange. */
async function writ(a: Agent, playbook: string) {
  return client.genericGrantRequest(
    a.config,
    TOKEN_EXCHANGE,
    {
      subject_token: await baseline(a),
      subject_token_type: ACCESS_TOKEN,
      resource: RESOURCE,
      authorization_details: JSON.stringify([{ type: "writ_playbook", playbook, parameters: {} }]),
    },
    { DPoP: a.DPoP },
  );
}

interface Answer {
  readonly ok: boolean;
  readonly body: Record<string, unknown>;
}

/** `holder` delegates its writ `parent` to `actor` (whose baseline token it is given). */
async function delegate(
  holder: Agent,
  parent: string,
  actor: Agent | { token: string },
  extra: Record<string, string> = {},
  dpop = holder.DPoP,
): Promise<Answer> {
  const actorToken = "token" in actor ? actor.token : await baseline(actor);
  try {
    const r = await client.genericGrantRequest(
      holder.config,
      TOKEN_EXCHANGE,
      {
        subject_token: parent,
        subject_token_type: ACCESS_TOKEN,
        actor_token: actorToken,
        actor_token_type: ACCESS_TOKEN,
        ...extra,
      },
      { DPoP: dpop },
    );
    return { ok: true, body: r as unknown as Record<string, unknown> };
  } catch (err) {
    if (err instanceof client.ResponseBodyError)
      return { ok: false, body: err.cause as Record<string, unknown> };
    throw err;
  }
}

const grants = (...g: RuleText[]) => JSON.stringify([{ type: "writ_delegation", grants: g }]);

/** A form POST with the resource servers' token (introspection, `use`). */
async function asResourceServer(path: string, token: string) {
  const res = await fetch(`${base}/env/dev/${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${RS_TOKEN}` },
    body: new URLSearchParams({ token }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The decision point's answer for `agent` reading `resource` with writ `writId` (AuthZEN). */
async function decide(agentId: string, writId: string, resource = "shop/checkout") {
  const res = await fetch(`${base}/access/v1/evaluation`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${RS_TOKEN}` },
    body: JSON.stringify({
      subject: { type: "agent", id: agentId },
      action: { name: "k8s:apps/deployments:get" },
      resource: { type: "k8s", id: resource },
      context: { environment: "dev", writ_id: writId },
    }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { decision: boolean }).decision;
}

/** Revokes the agents' writs left by earlier tests (decisions count every writ an agent holds). */
async function forgetWritsOf(...agents: string[]) {
  for (const a of agents) {
    for (const w of await server.store.writs.listUnexpired(a, new Date())) {
      await server.store.writs.revoke(w.id, "cleared by the test");
    }
  }
}

/** Forgets the slow-down a refusal earned, so that the next refusal is answered for itself. */
const forgive = () => server.store.db.deleteFrom("denial_counters").execute();

describe("delegation to a sub-agent", () => {
  it("issues a child within its parent: DPoP-bound to the sub-agent, the act chain nested, introspected and decided on", async () => {
    const lead = await agent("lead-bot");
    const helper = await agent("helper-bot");
    const parent = await writ(lead, "work");
    const child = await delegate(lead, parent.access_token, helper, {
      authorization_details: grants({ action: "k8s:apps/deployments:get", resource: "shop/checkout" }),
    });
    expect(child.ok, JSON.stringify(child.body)).toBe(true);
    expect(child.body.token_type).toMatch(/^dpop$/i);
    expect(child.body.parent_writ).toBe(parent.writ_id);
    expect(child.body.act).toEqual({ sub: "helper-bot", act: { sub: "lead-bot" } });
    const token = child.body.access_token as string;
    const seen = await asResourceServer("introspect", token);
    expect(seen.body).toMatchObject({
      active: true,
      client_id: "helper-bot",
      sub: "lead-bot",
      act: { sub: "helper-bot", act: { sub: "lead-bot" } },
      parent_writ: parent.writ_id,
      writ: child.body.writ_id,
      token_type: "DPoP",
    });
    // bound to the sub-agent's key: the holder's key is not the one
    expect((seen.body.cnf as { jkt: string }).jkt).not.toBe(
      ((await asResourceServer("introspect", parent.access_token as string)).body.cnf as { jkt: string }).jkt,
    );
    expect(await decide("helper-bot", child.body.writ_id as string)).toBe(true);
    // the child holds get on checkout only
    expect(await decide("helper-bot", child.body.writ_id as string, "shop/payments")).toBe(false);
    const rows = await server.store.db
      .selectFrom("audit_records")
      .select("data")
      .where("type", "=", "broker.writ_issued")
      .orderBy("seq", "desc")
      .limit(1)
      .execute();
    expect(rows[0]!.data).toMatchObject({
      writ: child.body.writ_id,
      parent: parent.writ_id,
      chain: ["helper-bot", "lead-bot"],
      depth: 1,
    });
  });

  it("refuses a child asking for more than its parent, naming the excess, and audits it", async () => {
    const lead = await agent("lead-bot");
    const parent = await writ(lead, "work");
    const r = await delegate(lead, parent.access_token, await agent("helper-bot"), {
      authorization_details: grants(
        { action: "k8s:apps/deployments:get", resource: "shop/checkout" },
        { action: "k8s:apps/deployments:patch", resource: "shop/payments" },
      ),
    });
    expect(r.ok).toBe(false);
    expect(r.body).toMatchObject({ error: "access_denied", reason: "delegation_exceeds_parent" });
    expect(r.body.error_description).toContain("k8s:apps/deployments:patch");
    expect(r.body.error_description).toContain("shop/payments");
    expect(r.body.error_description).not.toContain("shop/checkout");
    const rows = await server.store.db
      .selectFrom("audit_records")
      .select("data")
      .where("type", "=", "broker.denied")
      .orderBy("seq", "desc")
      .limit(1)
      .execute();
    expect(rows[0]!.data).toMatchObject({
      reason: "delegation_exceeds_parent",
      parent: parent.writ_id,
      actor: "helper-bot",
      excess: [{ action: "k8s:apps/deployments:patch", resource: "shop/payments" }],
    });
  });

  it("clamps the child's lifetime to its parent's remaining one, and to the sub-agent's ceiling", async () => {
    const lead = await agent("lead-bot");
    const helper = await agent("helper-bot");
    const short = await writ(lead, "short"); // 2 minutes
    const a = await delegate(lead, short.access_token, helper);
    expect(a.ok, JSON.stringify(a.body)).toBe(true);
    expect(a.body.ttl_bound).toBe("parent");
    expect(a.body.expires_in as number).toBeLessThanOrEqual(short.expires_in!);
    const long = await writ(lead, "work"); // 20 minutes; the worker ceiling is 5
    const b = await delegate(lead, long.access_token, helper);
    expect(b.body.ttl_bound).toBe("ceiling");
    expect(b.body.expires_in as number).toBeLessThanOrEqual(300);
  });

  it("limits the depth: a grandchild is allowed, a great-grandchild is not", async () => {
    const lead = await agent("lead-bot");
    const helper = await agent("helper-bot");
    const sub = await agent("sub-helper");
    const parent = await writ(lead, "work");
    const child = await delegate(lead, parent.access_token, helper);
    expect(child.ok, JSON.stringify(child.body)).toBe(true);
    const grandchild = await delegate(helper, child.body.access_token as string, sub);
    expect(grandchild.ok, JSON.stringify(grandchild.body)).toBe(true);
    expect(grandchild.body.act).toEqual({
      sub: "sub-helper",
      act: { sub: "helper-bot", act: { sub: "lead-bot" } },
    });
    const tooDeep = await delegate(sub, grandchild.body.access_token as string, await agent("far-helper"));
    expect(tooDeep.body).toMatchObject({ error: "access_denied", reason: "delegation_depth_exceeded" });
  });

  it("spends the parent's uses with each use of the child", async () => {
    const lead = await agent("lead-bot");
    const parent = await writ(lead, "twice");
    const child = await delegate(lead, parent.access_token, await agent("helper-bot"));
    expect(child.body.authorization_details).toMatchObject([{ max_uses: 2 }]);
    const childToken = child.body.access_token as string;
    expect((await asResourceServer("use", childToken)).body).toMatchObject({ uses: 1, uses_left: 1 });
    expect((await asResourceServer("introspect", parent.access_token)).body).toMatchObject({
      uses: 1,
      uses_left: 1,
    });
    expect((await asResourceServer("use", parent.access_token)).status).toBe(200);
    const spent = await asResourceServer("use", childToken);
    expect(spent.status).toBe(400);
    expect(spent.body.reason).toBe("writ_exhausted");
    expect((await asResourceServer("introspect", childToken)).body).toEqual({ active: false });
  });

  it("revoking the parent revokes the child and grandchild at once: introspection inactive, decisions refused", async () => {
    const lead = await agent("lead-bot");
    const helper = await agent("helper-bot");
    const parent = await writ(lead, "work");
    // only these writs count in the decisions below: the sub-agents' others from earlier tests go
    await forgetWritsOf("helper-bot", "sub-helper");
    const child = await delegate(lead, parent.access_token, helper);
    const grandchild = await delegate(helper, child.body.access_token as string, await agent("sub-helper"));
    expect(await decide("helper-bot", child.body.writ_id as string)).toBe(true);
    expect(await decide("sub-helper", grandchild.body.writ_id as string)).toBe(true);
    await client.tokenRevocation(lead.config, parent.access_token);
    for (const t of [child, grandchild]) {
      expect((await asResourceServer("introspect", t.body.access_token as string)).body).toEqual({
        active: false,
      });
      expect((await asResourceServer("use", t.body.access_token as string)).body.reason).toBe("writ_revoked");
    }
    expect(await decide("helper-bot", child.body.writ_id as string)).toBe(false);
    expect(await decide("sub-helper", grandchild.body.writ_id as string)).toBe(false);
    const revoked = await server.store.writs.get(grandchild.body.writ_id as string);
    expect(revoked?.status).toBe("revoked");
    // and a revoked parent can no longer delegate
    const again = await delegate(lead, parent.access_token, helper);
    expect(again.body.reason).toBe("parent_writ_inactive");
  });

  it("killing the parent's agent kills its descendants, whoever holds them", async () => {
    const lead = await agent("lead-bot");
    const helper = await agent("helper-bot");
    const parent = await writ(lead, "work");
    const child = await delegate(lead, parent.access_token, helper);
    const result = await server.operator.engageKill({ kind: "agent", agent: "lead-bot" }, { by: "test" });
    expect(result.revoked.map((w) => w.id)).toContain(child.body.writ_id);
    expect((await asResourceServer("introspect", child.body.access_token as string)).body).toEqual({
      active: false,
    });
    expect(await decide("helper-bot", child.body.writ_id as string)).toBe(false);
    await server.operator.liftKill({ kind: "agent", agent: "lead-bot" }, { by: "test" });
    // and a killed sub-agent is given nothing, even with a baseline token it got before the kill
    const fresh = await writ(lead, "work");
    const helperToken = await baseline(helper);
    await server.operator.engageKill({ kind: "agent", agent: "helper-bot" }, { by: "test" });
    const refused = await delegate(lead, fresh.access_token, { token: helperToken });
    expect(refused.body).toMatchObject({ error: "access_denied", reason: "kill_switch_engaged" });
    await server.operator.liftKill({ kind: "agent", agent: "helper-bot" }, { by: "test" });
  });

  it("fails closed: another environment's actor, an actor class not allowed, the wrong DPoP key, another audience", async () => {
    const lead = await agent("lead-bot");
    const parent = await writ(lead, "work");
    const staging = await agent("staging-helper", "staging");
    const cross = await delegate(lead, parent.access_token, { token: await baseline(staging) });
    expect(cross.body).toMatchObject({ error: "invalid_grant", reason: "actor_token_invalid" });
    await forgive();
    const stranger = await delegate(lead, parent.access_token, await agent("stranger"));
    expect(stranger.body).toMatchObject({ error: "access_denied", reason: "delegation_actor_not_allowed" });
    await forgive();
    const otherKey = client.getDPoPHandle(lead.config, await client.randomDPoPKeyPair("ES256"));
    const stolen = await delegate(lead, parent.access_token, await agent("helper-bot"), {}, otherKey);
    expect(stolen.body).toMatchObject({ error: "invalid_grant", reason: "subject_token_binding" });
    await forgive();
    const aud = await delegate(lead, parent.access_token, await agent("helper-bot"), {
      resource: "https://elsewhere.example",
    });
    expect(aud.body).toMatchObject({ error: "invalid_target", reason: "resource_mismatch" });
    await forgive();
    // a baseline token is no parent
    const noWrit = await delegate(lead, await baseline(lead), await agent("helper-bot"));
    expect(noWrit.body.reason).toBe("subject_token_mismatch");
  });
});

// --- the pure check, over generated grant sets --------------------------------------------------

const VERBS = ["get", "patch", "delete", "list"];
const NAMESPACES = ["shop", "web"];
const NAMES = ["checkout", "payments", "cart"];

const actionPattern = fc.oneof(
  fc.subarray(VERBS, { minLength: 1 }).map((v) => `k8s:apps/deployments:${v.join("|")}`),
  fc.constant("k8s:apps/deployments:*"),
);
const resourcePattern = fc
  .tuple(fc.constantFrom(...NAMESPACES, "*"), fc.constantFrom(...NAMES, "*", "c*"))
  .map(([ns, name]) => `${ns}/${name}`);
const grant = fc.record({ action: actionPattern, resource: resourcePattern });

const ceilingOf = (allow: RuleText[], deny: RuleText[] = []) => ({
  maxTtlSeconds: 1800,
  allow: allow.map((r) => ({ kind: "ceiling-rule", rule: compileRule(r), path: [] })),
  deny: deny.map((r) => ({ kind: "ceiling-rule", rule: compileRule(r), path: [] })),
});
/** Grants half of which fall in shop with get or patch, near the sub-agent's ceiling in CONFIG. */
const nearCeiling = fc.oneof(
  grant,
  fc.record({
    action: fc.subarray(["get", "patch"], { minLength: 1 }).map((v) => `k8s:apps/deployments:${v.join("|")}`),
    resource: fc.constantFrom(...NAMES, "c*").map((n) => `shop/${n}`),
  }),
);
/** The sub-agent's ceiling in CONFIG: get and patch in shop, never on payments. */
const WORKER_CEILING = ceilingOf(
  [{ action: "k8s:apps/deployments:get|patch", resource: "shop/*" }],
  [{ action: "k8s:apps/deployments:patch", resource: "shop/payments" }],
);
const configWith = (workerCeiling: ReturnType<typeof ceilingOf>) =>
  ({
    agents: new Map([
      ["lead-bot", { id: "lead-bot", runnerClass: "lead", environments: ["dev"] }],
      ["helper-bot", { id: "helper-bot", runnerClass: "worker", environments: ["dev"] }],
    ]),
    runnerClasses: new Map([
      [
        "lead",
        {
          ceiling: ceilingOf([{ action: "k8s:apps/deployments:*", resource: "*/*" }]),
          delegation: { actors: ["worker"], maxDepth: 2 },
        },
      ],
      ["worker", { ceiling: workerCeiling, delegation: { actors: [], maxDepth: 2 } }],
    ]),
  }) as unknown as WritConfig;
const CONFIG = configWith(WORKER_CEILING);
/** The same with a sub-agent ceiling that holds every generated grant. */
const OPEN_CONFIG = configWith(ceilingOf([{ action: "k8s:apps/deployments:*", resource: "*/*" }]));

describe("checkDelegation", () => {
  it("an accepted child's every request is one its parent's grants allow", () => {
    const requests = VERBS.flatMap((v) =>
      NAMESPACES.flatMap((ns) =>
        NAMES.map((n) => ({ action: `k8s:apps/deployments:${v}`, resource: `${ns}/${n}` })),
      ),
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(grant, { minLength: 1, maxLength: 4 }),
        fc.array(grant, { minLength: 1, maxLength: 4 }),
        (parent, child) => {
          const verdict = checkDelegation(OPEN_CONFIG, {
            holders: ["lead-bot"],
            environment: "dev",
            parentGrants: parent,
            actor: "helper-bot",
            grants: child,
          });
          const covers = (set: readonly RuleText[], r: { action: string; resource: string }) =>
            set.some((g) => ruleMatches(compileRule(g), parseRequestAction(r.action), r.resource, "cover"));
          if (!verdict.ok) {
            expect(verdict.reason).toBe("delegation_exceeds_parent");
            return;
          }
          accepted++;
          for (const r of requests) if (covers(child, r)) expect(covers(parent, r)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
    // the generator reaches acceptance, not only refusals
    expect(accepted).toBeGreaterThan(20);
  });

  it("a child within its parent is accepted exactly when the sub-agent's ceiling holds every grant; a refusal names those outside", () => {
    const inCeiling = (g: RuleText) =>
      WORKER_CEILING.allow.some((c) => ruleContains(c.rule, compileRule(g))) &&
      !WORKER_CEILING.deny.some((d) => ruleOverlaps(compileRule(g), d.rule));
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.array(nearCeiling, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat()),
        (parent, picks) => {
          // a child made of the parent's own grants: always within its parent
          const child = picks.length === 0 ? parent : picks.map((i) => parent[i % parent.length]!);
          const verdict = checkDelegation(CONFIG, {
            holders: ["lead-bot"],
            environment: "dev",
            parentGrants: parent,
            actor: "helper-bot",
            grants: child,
          });
          const outside = child.filter((g) => !inCeiling(g));
          if (outside.length === 0) {
            expect(verdict.ok).toBe(true);
            accepted++;
          } else {
            expect(verdict).toMatchObject({
              ok: false,
              reason: "delegation_exceeds_actor_ceiling",
              excess: outside,
            });
            refused++;
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(5);
    expect(refused).toBeGreaterThan(5);
  });

  it("a child of the parent's own grants, or of any one of them, is accepted", () => {
    fc.assert(
      fc.property(fc.array(grant, { minLength: 1, maxLength: 4 }), fc.nat(), (parent, i) => {
        const input = {
          holders: ["lead-bot"],
          environment: "dev",
          parentGrants: parent,
          actor: "helper-bot",
        };
        expect(checkDelegation(OPEN_CONFIG, input).ok).toBe(true);
        const one = [parent[i % parent.length]!];
        expect(checkDelegation(OPEN_CONFIG, { ...input, grants: one }).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

// --- writ explain --delegate ----------------------------------------------------------------------

describe("writ explain --delegate", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "writ-explain-delegate-"));
    await cp(join(QUICKSTART, "keys"), join(dir, "keys"), { recursive: true });
    await writeFile(join(dir, "writ.yaml"), WRIT_YAML);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function run(delegate: Record<string, unknown>, resource = "shop/checkout") {
    const out: string[] = [];
    const code = await explain(
      {
        config: join(dir, "writ.yaml"),
        agent: "lead-bot",
        action: "k8s:apps/deployments:patch",
        resource,
        env: "dev",
        withWrit: "work",
        param: [],
        delegate: JSON.stringify(delegate),
        json: false,
      },
      { out: (t) => out.push(t), err: (t) => out.push(t) },
    );
    return { code, text: out.join("\n") };
  }

  it("shows why a child was refused: the reason and each excess grant", async () => {
    const r = await run({
      to: "helper-bot",
      grants: [{ action: "k8s:apps/deployments:patch", resource: "shop/payments" }],
    });
    expect(r.code).toBe(1);
    expect(r.text).toContain("REFUSED delegation to helper-bot");
    expect(r.text).toContain("delegation_exceeds_parent");
    expect(r.text).toMatch(/excess\s+k8s:apps\/deployments:patch on shop\/payments/);
    const stranger = await run({ to: "stranger" });
    expect(stranger.code).toBe(1);
    expect(stranger.text).toContain("delegation_actor_not_allowed");
    const deep = await run({ to: "far-helper", above: ["helper-bot", "lead-bot"] });
    expect(deep.text).toContain("delegation_depth_exceeded");
  });

  it("decides as the sub-agent holding an accepted child", async () => {
    const narrow = {
      to: "helper-bot",
      grants: [{ action: "k8s:apps/deployments:get", resource: "shop/checkout" }],
    };
    const r = await run(narrow);
    expect(r.text).toContain("DELEGATED to helper-bot (depth 1)");
    // the child holds get only: patch is denied for the sub-agent, though its parent may patch
    expect(r.code).toBe(1);
    expect(r.text).toContain("DENY  k8s:apps/deployments:patch on shop/checkout");
    expect(r.text).toContain("agent helper-bot");
    const full = await run({ to: "helper-bot" });
    expect(full.code).toBe(0);
    expect(full.text).toContain("ALLOW  k8s:apps/deployments:patch on shop/checkout");
  });
});
