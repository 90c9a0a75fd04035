/**
 * The broker's slow-down and kill switch on a clock the test moves, through the broker service
 * itself (the same function `writ serve` puts on HTTP):
 *
 *   - `Retry-After` of a 429 is the block that request started, so a client that waits exactly
 *     as told is served (it once gave the block before the request: the client came back too early,
 *     was refused again, and its block doubled);
 *   - a kill stops baseline tokens (`client_credentials`) as well as writs, for the agent, its
 *     runner class, its environment or everything; refusals during the kill do not count towards
 *     the slow-down, so the first request after the lift is served;
 *   - the audit record of a baseline token names its `jti`.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadPolicy, type Policy } from "../../src/app.js";
import * as broker from "../../src/broker/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { QUICKSTART, quickstartKey } from "./live.js";

const BASE = "http://127.0.0.1:9";
const ISSUER = `${BASE}/env/dev`;
const RESOURCE = "https://k8s.acme.example";
let dir: string;
let store: Store;
let policy: Policy;
let service: broker.BrokerService;
let kill: broker.KillSwitch;
let now: Date;
const audit: { type: string; data: Record<string, unknown> }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-slow-down-"));
  store = await openStore({ dataDir: dir });
  await store.migrate();
  policy = (await loadPolicy(join(QUICKSTART, "writ.yaml"))).policy!;
  kill = broker.killSwitch(store);
  service = broker.brokerService({
    config: policy.config,
    store,
    keys: broker.environmentKeys(store),
    replay: broker.replayCache(store),
    kill,
    backoff: broker.denialBackoff(store),
    audit: async (type, data) => {
      audit.push({ type, data });
    },
    baseUrl: BASE,
    clock: () => now,
  });
}, 60_000);

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  now = new Date();
  audit.length = 0;
  await store.db.deleteFrom("denial_counters").execute();
  await store.db.deleteFrom("kill_switches").execute();
});

const seconds = () => Math.floor(now.getTime() / 1000);
const wait = (s: number) => {
  now = new Date(now.getTime() + s * 1000);
};

async function clientAuth(agent = "release-bot"): Promise<Record<string, string>> {
  const { key, kid } = await quickstartKey(agent);
  const assertion = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: "EdDSA", kid })
    .setIssuer(agent)
    .setSubject(agent)
    .setAudience(ISSUER)
    .setIssuedAt(seconds())
    .setExpirationTime(seconds() + 60)
    .sign(key);
  return {
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: assertion,
  };
}

interface DpopKey {
  readonly privateKey: CryptoKey;
  readonly jwk: Record<string, unknown>;
}

async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)) } };
}

/** A DPoP proof for dev's token endpoint, dated by the test's clock. */
const proof = (k: DpopKey) =>
  new SignJWT({ jti: randomUUID(), htm: "POST", htu: `${ISSUER}/token`, iat: seconds() })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: k.jwk })
    .sign(k.privateKey);

const token = async (form: Record<string, string>, k: DpopKey) =>
  service.token("dev", {
    form: new URLSearchParams({ ...form, ...(await clientAuth()) }),
    headers: { dpop: await proof(k) },
  });

async function baseline(k: DpopKey): Promise<string> {
  const r = await token({ grant_type: "client_credentials" }, k);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.access_token as string;
}

const intent = (playbook: string) =>
  JSON.stringify([
    {
      type: "writ_playbook",
      playbook,
      parameters: { service: "checkout", tag: "v1.2.3" },
      ticket: "CHG-1234",
    },
  ]);

/** A token exchange for deploy-service in dev (or another playbook, to be denied). */
async function exchange(k: DpopKey, subject: string, playbook = "deploy-service") {
  return token(
    {
      grant_type: broker.TOKEN_EXCHANGE,
      subject_token: subject,
      subject_token_type: broker.ACCESS_TOKEN_TYPE,
      resource: RESOURCE,
      authorization_details: intent(playbook),
    },
    k,
  );
}

describe("Retry-After", () => {
  it("gives the block the refused request started: waiting that long is enough", async () => {
    const k = await dpopKey();
    const subject = await baseline(k);
    const denied = await exchange(k, subject, "rotate-cert");
    expect(denied.body.reason).toBe("unknown_playbook");
    // asking again at once: refused, and the block grows
    const first = await exchange(k, subject);
    expect(first.status).toBe(429);
    expect(first.body.reason).toBe("repeated_denial");
    const retryAfter = Number(first.headers?.["retry-after"]);
    expect(retryAfter).toBe(broker.blockSeconds(2));
    // a client that waits exactly as told is served
    wait(retryAfter);
    const served = await exchange(k, subject);
    expect(served.status, JSON.stringify(served.body)).toBe(200);
  });

  it("keeps telling the truth as the block doubles", async () => {
    const k = await dpopKey();
    const subject = await baseline(k);
    await exchange(k, subject, "rotate-cert");
    for (const count of [2, 3, 4]) {
      const r = await exchange(k, subject);
      expect(r.status).toBe(429);
      expect(Number(r.headers?.["retry-after"])).toBe(broker.blockSeconds(count));
    }
    wait(broker.blockSeconds(4));
    expect((await exchange(k, subject)).status).toBe(200);
  });
});

describe("the kill switch and baseline tokens", () => {
  it.each([
    { kind: "agent", agent: "release-bot" } as const,
    { kind: "class", runnerClass: "deploy" } as const,
    { kind: "environment", environment: "dev" } as const,
    { kind: "all" } as const,
  ])("%j stops client_credentials until it is lifted", async (scope) => {
    const k = await dpopKey();
    await kill.engage(scope, { by: "alice@acme.example", config: policy.config, now });
    const r = await token({ grant_type: "client_credentials" }, k);
    expect({ status: r.status, error: r.body.error, reason: r.body.reason }).toEqual({
      status: 400,
      error: "access_denied",
      reason: "kill_switch_engaged",
    });
    expect(r.body).not.toHaveProperty("access_token");
    expect(audit.at(-1)).toMatchObject({
      type: "broker.denied",
      data: { agent: "release-bot", reason: "kill_switch_engaged" },
    });
    await kill.lift(scope, { by: "alice@acme.example", now });
    await baseline(k);
  });

  it("refusals during a kill do not count towards the slow-down after the lift", async () => {
    const k = await dpopKey();
    const subject = await baseline(k);
    await kill.engage(
      { kind: "agent", agent: "release-bot" },
      { by: "alice@acme.example", config: policy.config, now },
    );
    for (let i = 0; i < 5; i++) {
      const r = await exchange(k, subject);
      expect(r.body.reason).toBe("kill_switch_engaged");
      const c = await token({ grant_type: "client_credentials" }, k);
      expect(c.body.reason).toBe("kill_switch_engaged");
    }
    await kill.lift({ kind: "agent", agent: "release-bot" }, { by: "alice@acme.example", now });
    const after = await exchange(k, await baseline(k));
    expect(after.status, JSON.stringify(after.body)).toBe(200);
  });
});

describe("the audit record of a baseline token", () => {
  it("names the token's jti", async () => {
    const k = await dpopKey();
    const t = await baseline(k);
    const { jti } = JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString()) as { jti: string };
    const record = audit.find((a) => a.type === "broker.baseline");
    expect(record?.data.jti).toBe(jti);
    expect(jti).toMatch(/^[\w-]{16,}$/);
  });
});
