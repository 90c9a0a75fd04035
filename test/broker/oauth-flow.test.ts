/**
 * The broker driven by real third-party OAuth software over real HTTP: openid-client as the agent
 * (discovery, PrivateKeyJwt, DPoP, client_credentials, token exchange with authorization_details,
 * introspection, revocation) and oauth4webapi's validateJwtAccessToken as a resource server —
 * against `createServer` on the quickstart config, listening on loopback.
 */

import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateProof } from "dpop";
import { SignJWT } from "jose";
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadPolicy, type Server } from "../../src/app.js";
import {
  quickstartKey as agentKey,
  type Live,
  agentClient as liveAgent,
  QUICKSTART,
  requestWrit,
  startLive,
} from "./live.js";

const RESOURCE = "https://k8s.acme.example";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";

let dir: string;
let live: Live;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-broker-"));
  const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  live = await startLive(policy!, dir, { stateCache: false });
  ({ server, base } = live);
}, 60_000);

afterAll(async () => {
  await live.stop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await server.store.db.deleteFrom("denial_counters").execute();
  await server.store.db.deleteFrom("kill_switches").execute();
});

const agentClient = (env: string, agent = "release-bot") => liveAgent(base, env, agent);

const intent = (env: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify([
    {
      type: "writ_playbook",
      playbook: "deploy-service",
      parameters: { service: "checkout", tag: "v1.4.2" },
      environment: env,
      ticket: "CHG-1234",
      ...extra,
    },
  ]);

function writFor(env: string, c: Awaited<ReturnType<typeof agentClient>>, details = intent(env)) {
  return requestWrit(c, details, RESOURCE);
}

async function oauthErrorOf(
  p: Promise<unknown>,
): Promise<{ error: string; reason: string; status: number; retryAfter: string | null }> {
  try {
    await p;
  } catch (err) {
    const e = err as {
      error?: string;
      status?: number;
      cause?: Record<string, unknown>;
      response?: Response;
    };
    return {
      error: String(e.error),
      reason: String(e.cause?.reason),
      status: Number(e.status),
      retryAfter: e.response?.headers.get("retry-after") ?? null,
    };
  }
  throw new Error("expected an OAuth error");
}

/** A token request made by hand: a fresh client assertion, and the DPoP header given. */
async function rawToken(
  env: string,
  agent: string,
  form: Record<string, string>,
  dpop: string,
): Promise<Response> {
  const { key, kid } = await agentKey(agent);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", kid })
    .setIssuer(agent)
    .setSubject(agent)
    .setAudience(`${base}/env/${env}`)
    .setIssuedAt()
    .setExpirationTime("1m")
    .setJti(randomUUID())
    .sign(key);
  return fetch(`${base}/env/${env}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", dpop },
    body: new URLSearchParams({
      ...form,
      client_id: agent,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }),
  });
}

describe("openid-client against the broker", () => {
  it("discovers each environment as its own issuer", async () => {
    const { config } = await agentClient("dev");
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(`${base}/env/dev`);
    expect(meta.token_endpoint).toBe(`${base}/env/dev/token`);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(["private_key_jwt"]);
    expect(meta.authorization_details_types_supported).toEqual(["writ_playbook"]);
  });

  it("gets a DPoP-bound baseline token, exchanges it for a writ, and the writ carries the intent", async () => {
    const c = await agentClient("dev");
    const writ = await writFor("dev", c);
    expect(writ.token_type.toLowerCase()).toBe("dpop");
    expect(writ.issued_token_type).toBe(ACCESS_TOKEN);
    expect(writ.ttl_bound).toBe("playbook");
    expect(writ.expires_in).toBeGreaterThan(1190);
    expect(writ.expires_in).toBeLessThanOrEqual(1200);
    const claims = JSON.parse(
      Buffer.from(writ.access_token.split(".")[1]!, "base64url").toString(),
    ) as Record<string, unknown>;
    const header = JSON.parse(
      Buffer.from(writ.access_token.split(".")[0]!, "base64url").toString(),
    ) as Record<string, unknown>;
    expect(header.typ).toBe("at+jwt");
    expect(claims).toMatchObject({
      iss: `${base}/env/dev`,
      sub: "release-bot",
      aud: RESOURCE,
      client_id: "release-bot",
      act: { sub: "release-bot" },
      cnf: { jkt: expect.any(String) },
      writ: writ.writ_id,
    });
    const detail = (claims.authorization_details as Record<string, unknown>[])[0]!;
    expect(detail).toMatchObject({
      type: "writ_playbook",
      playbook: "deploy-service",
      environment: "dev",
      max_uses: 10,
    });
    expect(detail.grants).toContainEqual({
      action: "k8s:apps/deployments:get|patch",
      resource: "checkout/checkout",
    });
  });

  it("a resource server validates the writ with oauth4webapi, DPoP proof included", async () => {
    const c = await agentClient("dev");
    const writ = await writFor("dev", c);
    const as = await oauth
      .discoveryRequest(new URL(`${base}/env/dev`), {
        algorithm: "oauth2",
        [oauth.allowInsecureRequests]: true,
      })
      .then((r) => oauth.processDiscoveryResponse(new URL(`${base}/env/dev`), r));
    const url = `${RESOURCE}/apis/apps/v1/namespaces/checkout/deployments/checkout`;
    const proof = await generateProof(c.dpopKeys, url, "PATCH", undefined, writ.access_token);
    const request = new Request(url, {
      method: "PATCH",
      headers: { authorization: `DPoP ${writ.access_token}`, dpop: proof },
    });
    const claims = await oauth.validateJwtAccessToken(as, request, RESOURCE, {
      [oauth.allowInsecureRequests]: true,
    });
    expect(claims.client_id).toBe("release-bot");
    // the same token without its holder's proof is refused
    const stolen = new Request(url, {
      method: "PATCH",
      headers: { authorization: `DPoP ${writ.access_token}` },
    });
    await expect(
      oauth.validateJwtAccessToken(as, stolen, RESOURCE, { [oauth.allowInsecureRequests]: true }),
    ).rejects.toThrow();
  });

  it("introspection reports uses, and revocation shows at once", async () => {
    const c = await agentClient("dev");
    const writ = await writFor("dev", c);
    const live = await client.tokenIntrospection(c.config, writ.access_token);
    expect(live).toMatchObject({
      active: true,
      writ: writ.writ_id,
      max_uses: 10,
      uses: 0,
      uses_left: 10,
      token_type: "DPoP",
    });
    await client.tokenRevocation(c.config, writ.access_token);
    expect((await client.tokenIntrospection(c.config, writ.access_token)).active).toBe(false);
  });

  it("a dev token does not verify in prod: each environment is its own trust root", async () => {
    const dev = await agentClient("dev");
    const devBaseline = await client.clientCredentialsGrant(dev.config, {}, { DPoP: dev.DPoP });
    const prod = await agentClient("prod");
    const err = await oauthErrorOf(
      client.genericGrantRequest(
        prod.config,
        TOKEN_EXCHANGE,
        {
          subject_token: devBaseline.access_token,
          subject_token_type: ACCESS_TOKEN,
          resource: RESOURCE,
          authorization_details: intent("prod"),
        },
        { DPoP: dev.DPoP },
      ),
    );
    expect(err.error).toBe("invalid_grant");
    expect(["token_key", "token_issuer"]).toContain(err.reason);
  });

  it("refuses with the registered reason, then slows a repeating agent down with 429", async () => {
    const c = await agentClient("dev");
    const denied = await oauthErrorOf(
      writFor("dev", c, intent("dev", { parameters: { service: "billing", tag: "v1.0.0" } })),
    );
    expect(denied).toMatchObject({
      error: "invalid_authorization_details",
      reason: "invalid_parameters",
      status: 400,
    });
    const again = await oauthErrorOf(writFor("dev", c));
    expect(again).toMatchObject({ status: 429, reason: "repeated_denial" });
    expect(Number(again.retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it("the kill switch stops issuance and revokes outstanding writs", async () => {
    const c = await agentClient("dev");
    const writ = await writFor("dev", c);
    const r = await server.operator.engageKill(
      { kind: "agent", agent: "release-bot" },
      { by: "alice@acme.example" },
    );
    expect(r.revoked.map((w) => w.id)).toContain(writ.writ_id);
    expect((await client.tokenIntrospection(c.config, writ.access_token)).active).toBe(false);
    const refused = await oauthErrorOf(writFor("dev", c));
    expect(refused.reason).toBe("kill_switch_engaged");
  });

  it("a playbook that needs approval in prod says so instead of issuing", async () => {
    const c = await agentClient("prod");
    const err = await oauthErrorOf(writFor("prod", c));
    // Wednesday-in-window or not, the first failing check is named: outside the window, or approval
    expect(["approval_required", "outside_change_window"]).toContain(err.reason);
  });

  it("a writ needs DPoP, and a replayed proof is refused", async () => {
    const c = await agentClient("dev");
    const baseline = await client.clientCredentialsGrant(c.config, {}, { DPoP: c.DPoP });
    const form = {
      grant_type: TOKEN_EXCHANGE,
      subject_token: baseline.access_token,
      subject_token_type: ACCESS_TOKEN,
      resource: RESOURCE,
      authorization_details: intent("dev"),
    };
    const noDpop = await oauthErrorOf(client.genericGrantRequest(c.config, TOKEN_EXCHANGE, form));
    expect(noDpop.reason).toBe("dpop_required");
    const proof = await generateProof(c.dpopKeys, `${base}/env/dev/token`, "POST");
    const first = await rawToken("dev", "release-bot", form, proof);
    expect(first.status, await first.clone().text()).toBe(200);
    const second = await rawToken("dev", "release-bot", form, proof);
    expect(second.status).toBe(400);
    expect(await second.json()).toMatchObject({ error: "invalid_dpop_proof", reason: "dpop_replay" });
    const elsewhere = await rawToken(
      "dev",
      "release-bot",
      form,
      await generateProof(c.dpopKeys, `${base}/env/dev/revoke`, "POST"),
    );
    expect(await elsewhere.json()).toMatchObject({ error: "invalid_dpop_proof", reason: "dpop_htu" });
  });
});
