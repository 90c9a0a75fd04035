/**
 * AWS web-identity mode end to end: `writ serve` with no AWS keys at all, its environment issuer
 * registered in the fake IAM as an OIDC provider with exactly the trust policy `writ downstream aws
 * policy` prints, and the fake STS checking each AssumeRoleWithWebIdentity as AWS documents — it
 * fetches `<iss>/.well-known/openid-configuration` and the `jwks_uri` from the running server over
 * HTTP and verifies the ES256 signature, `iss`, `aud`, `sub`, `iat`, `exp`. So a wrong discovery
 * path, an EdDSA key, a JWKS without the signing key or a claim AWS refuses fails these tests.
 */
import { generateKeyPairSync } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { AssumeRoleWithWebIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { serve } from "@hono/node-server";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { environmentKeys } from "../../src/broker/index.js";
import { WritRefusal } from "../../src/client/index.js";
import { awsSetup } from "../../src/downstream/aws/setup.js";
import { webIdentitySigner } from "../../src/downstream/aws/web-identity.js";
import { type AgentClient, agentClient, agentKeyFromJwk } from "../../src/downstream/client.js";
import { type FakeAws, startFakeAws } from "../fakes/aws.js";
import { ACCOUNT, awsConfigDir, BROKER, RELEASES_ROLE, ROLE_POLICY, TRUST } from "../fakes/aws-account.js";
import { QUICKSTART_KEYS } from "./fixture.js";

const ROLE = RELEASES_ROLE;

let fake: FakeAws;
let server: Server;
let http: ReturnType<typeof serve>;
let dir: string;
let base: string;
let issuer: string;
let bot: AgentClient;
let ops: AgentClient;

const client = (agent: string, file: string) =>
  readFile(join(QUICKSTART_KEYS, file), "utf8").then((jwk) =>
    agentClient({ server: base, environment: "dev", agent, key: agentKeyFromJwk(jwk) }),
  );

beforeAll(async () => {
  // the role starts trusting only the broker user: web identity must come from the printed setup
  fake = await startFakeAws({
    account: ACCOUNT,
    broker: BROKER,
    roles: [{ arn: ROLE, trust: TRUST, policies: [ROLE_POLICY] }],
  });
  let file: string;
  ({ dir, file } = await awsConfigDir({ endpoint: fake.endpoint, mode: "web-identity" }));
  const loaded = await loadPolicy(file);
  expect(loaded.problems).toEqual([]);
  server = await createServer({
    policy: loaded.policy!,
    dataDir: join(dir, "data"),
    version: "test",
    stateCache: false,
    env: {}, // no AWS keys anywhere
  });
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  issuer = `${base}/env/dev`;
  // what a user does in IAM: the OIDC provider, and each role's trust as writ prints it
  fake.addOidcProvider(issuer, ["sts.amazonaws.com"]);
  const setup = awsSetup({
    mode: "web-identity",
    roles: new Map([["*", ROLE]]),
    issuer,
    agents: ["release-bot"],
  });
  fake.setTrust(ROLE, setup.trustPolicies[ROLE]);
  bot = await client("release-bot", "release-bot.DEVELOPMENT-ONLY.private.jwk");
  ops = await client("ops-assistant", "ops-assistant.DEVELOPMENT-ONLY.private.jwk");
}, 60_000);

afterAll(async () => {
  if (http) await new Promise<void>((r) => http.close(() => r()));
  await server?.close();
  await fake?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const fetchV1 = { playbook: "fetch", params: { version: "v1.4" } };

/** A token of the shape writ mints, signed with the environment's web-identity key. */
async function token(claims: { sub?: string; aud?: string; expiresAt?: Date } = {}, now = new Date()) {
  const keys = environmentKeys(server.store, { alg: "ES256" });
  return webIdentitySigner(keys, () => issuer).sign(
    "dev",
    {
      subject: claims.sub ?? "release-bot",
      audience: claims.aud ?? "sts.amazonaws.com",
      sourceIdentity: claims.sub ?? "release-bot",
      tags: [],
      jti: `t-${Math.random()}`,
      expiresAt: claims.expiresAt ?? new Date(now.getTime() + 600_000),
    },
    now,
  );
}

async function assume(webIdentityToken: string): Promise<{ ok: boolean; code?: string }> {
  const sts = new STSClient({ region: "eu-west-1", endpoint: fake.endpoint, maxAttempts: 1 });
  try {
    await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: ROLE,
        RoleSessionName: "writ-test",
        WebIdentityToken: webIdentityToken,
        DurationSeconds: 900,
      }),
    );
    return { ok: true };
  } catch (err) {
    return { ok: false, code: (err as { name?: string }).name };
  }
}

describe("the environment issuer as an OpenID Connect provider", () => {
  it("serves discovery at `<iss>/.well-known/openid-configuration` with an ES256-only JWKS", async () => {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.issuer).toBe(issuer);
    expect(doc.id_token_signing_alg_values_supported).toEqual(["ES256"]);
    const jwks = (await (await fetch(doc.jwks_uri as string)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) {
      expect(k).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(k).not.toHaveProperty("d");
    }
    // writ's own token keys stay apart: no EC key among them, no Ed25519 key among these
    const own = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: Record<string, unknown>[] };
    expect(own.keys.every((k) => k.kty === "OKP")).toBe(true);
    expect(own.keys.map((k) => k.kid)).not.toContain(jwks.keys[0]!.kid);
  });

  it("answers 404 for an environment not in web-identity mode", async () => {
    expect((await fetch(`${base}/env/prod/.well-known/openid-configuration`)).status).toBe(404);
    expect((await fetch(`${base}/env/prod/.well-known/web-identity-jwks.json`)).status).toBe(404);
  });
});

describe("AWS web identity, end to end", () => {
  it("a redeemed session comes from AssumeRoleWithWebIdentity and may do the writ's grant only", async () => {
    const before = fake.discoveryFetches;
    const r = await bot.redeem("aws", await bot.writ(fetchV1, "aws"));
    const id = r.credential.accessKeyId as string;
    expect(fake.calls.at(-1)).toEqual({ service: "sts", action: "AssumeRoleWithWebIdentity" });
    expect(fake.discoveryFetches).toBe(before + 1);
    const session = fake.sessions.find((s) => s.accessKeyId === id)!;
    expect(session.subject).toBe("release-bot");
    expect(session.sourceIdentity).toBe("release-bot");
    expect(session.tags).toMatchObject({
      "writ:id": r.writ,
      "writ:agent": "release-bot",
      "writ:playbook": "fetch",
    });
    expect(fake.use(id, "s3:GetObject", "arn:aws:s3:::acme-releases/v1.4/app.tgz").allowed).toBe(true);
    expect(fake.use(id, "s3:GetObject", "arn:aws:s3:::acme-releases/v2.0/app.tgz").allowed).toBe(false);
    expect(fake.use(id, "s3:PutObject", "arn:aws:s3:::acme-releases/v1.4/app.tgz").allowed).toBe(false);
  });

  it("an agent the role's trust policy does not name (`sub`) is refused by STS", async () => {
    const refused = await ops.redeem("aws", await ops.writ(fetchV1, "aws")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WritRefusal);
    expect((refused as WritRefusal).reason).toBe("downstream_unavailable");
    expect((refused as WritRefusal).description).toContain("AccessDenied");
  });

  it("after `writ keys rotate --alg ES256` the new key is published and signs", async () => {
    const before = (await server.operator.listKeys("dev")).filter((k) => k.alg === "ES256");
    const report = await server.operator.rotateKey("dev", {
      maxTokenTtlSeconds: 0,
      by: "test",
      alg: "ES256",
    });
    expect(report.created.alg).toBe("ES256");
    const jwks = (await (await fetch(`${issuer}/.well-known/web-identity-jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    expect(jwks.keys.map((k) => k.kid)).toEqual([report.created.kid]);
    expect(before.map((k) => k.kid)).not.toContain(report.created.kid);
    // an environment not in web-identity mode has no ES256 key to rotate
    await expect(
      server.operator.rotateKey("prod", { maxTokenTtlSeconds: 0, by: "test", alg: "ES256" }),
    ).rejects.toMatchObject({ code: "ERR_OPERATOR_INPUT" });
    const r = await bot.redeem("aws", await bot.writ(fetchV1, "aws"));
    expect(fake.calls.at(-1)).toEqual({ service: "sts", action: "AssumeRoleWithWebIdentity" });
    expect(
      fake.use(r.credential.accessKeyId as string, "s3:GetObject", "arn:aws:s3:::acme-releases/v1.4/x")
        .allowed,
    ).toBe(true);
  });
});

describe("what the fake STS refuses, as AWS does", () => {
  it("takes a well-formed token", async () => {
    expect(await assume(await token())).toEqual({ ok: true });
  });

  it("refuses another audience, an expired token, another agent", async () => {
    expect(await assume(await token({ aud: "https://elsewhere.example" }))).toEqual({
      ok: false,
      code: "InvalidIdentityTokenException",
    });
    const past = new Date(Date.now() - 3_600_000);
    expect(await assume(await token({ expiresAt: new Date(past.getTime() + 60_000) }, past))).toEqual({
      ok: false,
      code: "ExpiredTokenException",
    });
    expect(await assume(await token({ sub: "ops-assistant" }))).toMatchObject({
      ok: false,
      code: "AccessDenied",
    });
  });

  it("refuses EdDSA, a key the JWKS does not hold, and an issuer without discovery", async () => {
    const jwt = (alg: string, key: Parameters<SignJWT["sign"]>[0], kid: string, iss = issuer) =>
      new SignJWT({})
        .setProtectedHeader({ alg, kid })
        .setIssuer(iss)
        .setSubject("release-bot")
        .setAudience("sts.amazonaws.com")
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(key);
    const own = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: { kid: string }[] };
    const ed = generateKeyPairSync("ed25519").privateKey;
    expect(await assume(await jwt("EdDSA", ed, own.keys[0]!.kid))).toMatchObject({
      code: "InvalidIdentityTokenException",
    });
    const published = (await (await fetch(`${issuer}/.well-known/web-identity-jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expect(await assume(await jwt("ES256", stranger, published.keys[0]!.kid))).toMatchObject({
      code: "InvalidIdentityTokenException",
    });
    // prod is registered as a provider but serves no discovery (not in web-identity mode)
    fake.addOidcProvider(`${base}/env/prod`, ["sts.amazonaws.com"]);
    expect(await assume(await jwt("ES256", stranger, "k", `${base}/env/prod`))).toMatchObject({
      code: "IDPCommunicationErrorException",
    });
  });
});
