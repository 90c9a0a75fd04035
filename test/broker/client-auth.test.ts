/**
 * Agent authentication with RFC 7523 private_key_jwt: assertions built with jose as the RFC says,
 * and a real round trip with openid-client's PrivateKeyJwt against a loopback token endpoint.
 */
import { randomUUID } from "node:crypto";
import { base64url, calculateJwkThumbprint, type JWTPayload, SignJWT } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuthenticatedClient,
  authenticateClient,
  CLIENT_AUTH_ERRORS,
  type ClientAuthOptions,
  clientAuthOAuthError,
  ERR_CLIENT_ASSERTION_ALG,
  ERR_CLIENT_ASSERTION_AUDIENCE,
  ERR_CLIENT_ASSERTION_CLIENT_ID,
  ERR_CLIENT_ASSERTION_EXPIRED,
  ERR_CLIENT_ASSERTION_ISSUER,
  ERR_CLIENT_ASSERTION_LIFETIME,
  ERR_CLIENT_ASSERTION_MALFORMED,
  ERR_CLIENT_ASSERTION_MISSING,
  ERR_CLIENT_ASSERTION_NOT_YET_VALID,
  ERR_CLIENT_ASSERTION_REPLAY,
  ERR_CLIENT_ASSERTION_SIGNATURE,
  ERR_CLIENT_ASSERTION_TYP,
  ERR_CLIENT_ASSERTION_TYPE,
  ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT,
  ERR_CLIENT_SECRET_REFUSED,
  JWT_BEARER_ASSERTION_TYPE,
} from "../../src/broker/client-auth.js";
import { memoryReplayCache } from "../../src/broker/replay.js";
import { isWritError } from "../../src/core/index.js";
import { type AgentKey, codeOf, type Fixture, type Loopback, loadFixture, startLoopback } from "./fixture.js";

const ISSUER = "https://writ.example/env/prod";
const TOKEN_ENDPOINT = `${ISSUER}/token`;
const NOW = Date.parse("2030-01-01T10:00:00.000Z") / 1000;
const clock = () => new Date(NOW * 1000);

let fx: Fixture;
beforeAll(async () => {
  fx = await loadFixture();
});

function options(extra: Partial<ClientAuthOptions> = {}): ClientAuthOptions {
  return {
    config: fx.config,
    audiences: [ISSUER, TOKEN_ENDPOINT],
    replay: memoryReplayCache({ clock }),
    clock,
    ...extra,
  };
}

/** A client assertion as RFC 7523 §3 describes it, with overrides (`undefined` removes a claim). */
async function assertion(
  signer: AgentKey,
  agent: string,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: agent,
    sub: agent,
    aud: ISSUER,
    jti: randomUUID(),
    iat: NOW,
    exp: NOW + 60,
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  const protectedHeader: Record<string, unknown> = { alg: signer.alg, kid: signer.kid, ...header };
  for (const [k, v] of Object.entries(protectedHeader)) if (v === undefined) delete protectedHeader[k];
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader(protectedHeader as { alg: string })
    .sign(signer.key);
}

function form(jwt: string | undefined, extra: Record<string, string> = {}): URLSearchParams {
  const f = new URLSearchParams({ grant_type: "client_credentials", ...extra });
  f.set("client_assertion_type", JWT_BEARER_ASSERTION_TYPE);
  if (jwt !== undefined) f.set("client_assertion", jwt);
  return f;
}

async function authenticate(
  jwt: string | undefined,
  extra: Record<string, string> = {},
  opts: Partial<ClientAuthOptions> = {},
): Promise<AuthenticatedClient> {
  return authenticateClient(form(jwt, extra), options(opts));
}

describe("authenticateClient accepts", () => {
  it("an EdDSA assertion with the issuer as audience, naming the key that verified it", async () => {
    const result = await authenticate(await assertion(fx.releaseBot, "release-bot"), {
      client_id: "release-bot",
    });
    expect(result.kind).toBe("authenticated-client");
    expect(result.agent.id).toBe("release-bot");
    expect(result.kid).toBe(fx.releaseBot.kid);
    expect(result.keyThumbprint).toBe(await calculateJwkThumbprint(fx.releaseBot.publicJwk));
    expect(result.expiresAt.getTime()).toBe((NOW + 60) * 1000);
  });

  it("the token endpoint as audience, alone or in a list", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", { aud: TOKEN_ENDPOINT });
    expect((await authenticate(a)).agent.id).toBe("release-bot");
    const b = await assertion(fx.releaseBot, "release-bot", {
      aud: ["https://other.example", TOKEN_ENDPOINT],
    });
    expect((await authenticate(b)).agent.id).toBe("release-bot");
  });

  it("the fully specified `Ed25519` algorithm for a key registered as EdDSA", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", {}, { alg: "Ed25519" });
    expect((await authenticate(a)).agent.id).toBe("release-bot");
  });

  it("an assertion without kid, trying each registered key", async () => {
    const second = fx.esBot[1];
    const result = await authenticate(await assertion(second, "es-bot"));
    expect(result.agent.id).toBe("es-bot");
    expect(result.kid).toBeUndefined();
    expect(result.keyThumbprint).toBe(await calculateJwkThumbprint(second.publicJwk));
  });

  it("a record of form parameters, as a web framework parses them", async () => {
    const jwt = await assertion(fx.releaseBot, "release-bot");
    const result = await authenticateClient(
      { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: jwt, client_id: "release-bot" },
      options(),
    );
    expect(result.agent.id).toBe("release-bot");
  });

  it("times at the edges of the skew and the lifetime", async () => {
    const edges = [
      { exp: NOW - 29 }, // expired by the agent's clock, inside the 30 s skew
      { exp: NOW + 300 }, // the longest lifetime
      { iat: NOW + 29, nbf: NOW + 29 }, // agent's clock ahead, inside the skew
    ];
    for (const claims of edges) {
      const a = await assertion(fx.releaseBot, "release-bot", claims);
      expect((await authenticate(a)).agent.id).toBe("release-bot");
    }
  });

  it("the same jti from two different agents (a jti is unique per issuer)", async () => {
    const replay = memoryReplayCache({ clock });
    const jti = randomUUID();
    const a = await assertion(fx.releaseBot, "release-bot", { jti });
    const b = await assertion(fx.opsAssistant, "ops-assistant", { jti });
    expect((await authenticate(a, {}, { replay })).agent.id).toBe("release-bot");
    expect((await authenticate(b, {}, { replay })).agent.id).toBe("ops-assistant");
  });

  it("a jti again after a refusal for another reason (a refused assertion does not spend its jti)", async () => {
    const replay = memoryReplayCache({ clock });
    const jti = randomUUID();
    const wrong = await assertion(fx.releaseBot, "release-bot", { jti, aud: "https://writ.example/env/dev" });
    expect(await codeOf(authenticate(wrong, {}, { replay }))).toBe(ERR_CLIENT_ASSERTION_AUDIENCE);
    const right = await assertion(fx.releaseBot, "release-bot", { jti });
    expect((await authenticate(right, {}, { replay })).agent.id).toBe("release-bot");
  });
});

describe("authenticateClient refuses", () => {
  it("a replayed jti", async () => {
    const replay = memoryReplayCache({ clock });
    const a = await assertion(fx.releaseBot, "release-bot");
    await authenticate(a, {}, { replay });
    expect(await codeOf(authenticate(a, {}, { replay }))).toBe(ERR_CLIENT_ASSERTION_REPLAY);
    const sameJti = await assertion(fx.releaseBot, "release-bot", {
      jti: JSON.parse(new TextDecoder().decode(base64url.decode(a.split(".")[1]!))).jti,
      exp: NOW + 120,
    });
    expect(await codeOf(authenticate(sameJti, {}, { replay }))).toBe(ERR_CLIENT_ASSERTION_REPLAY);
  });

  it("a key of another agent, with or without its kid", async () => {
    const withKid = await assertion(fx.opsAssistant, "release-bot");
    expect(await codeOf(authenticate(withKid))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
    const withoutKid = await assertion(fx.opsAssistant, "release-bot", {}, { kid: undefined });
    expect(await codeOf(authenticate(withoutKid))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
    const claimingItsKid = await assertion(fx.opsAssistant, "release-bot", {}, { kid: fx.releaseBot.kid });
    expect(await codeOf(authenticate(claimingItsKid))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
  });

  it("a kid naming another of the agent's keys than the one that signed", async () => {
    const right = await assertion(fx.opsAssistant, "rotating-bot");
    expect((await authenticate(right)).kid).toBe(fx.opsAssistant.kid);
    const wrong = await assertion(fx.opsAssistant, "rotating-bot", {}, { kid: fx.releaseBot.kid });
    expect(await codeOf(authenticate(wrong))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
  });

  it("a tampered payload", async () => {
    const a = await assertion(fx.releaseBot, "release-bot");
    const [h, p, s] = a.split(".") as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
    const forged = `${h}.${base64url.encode(JSON.stringify({ ...claims, exp: NOW + 200 }))}.${s}`;
    expect(await codeOf(authenticate(forged))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
  });

  it("an algorithm the agent's keys cannot verify", async () => {
    // ES256 signature claimed by release-bot, whose only key is Ed25519
    const a = await assertion(fx.esBot[0], "release-bot");
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
  });

  it("an expired assertion", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", { iat: NOW - 120, exp: NOW - 31 });
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_EXPIRED);
  });

  it("a lifetime that is too long", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", { exp: NOW + 331 });
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_LIFETIME);
    const b = await assertion(fx.releaseBot, "release-bot", { exp: NOW + 100 });
    expect(await codeOf(authenticate(b, {}, { maxLifetimeSeconds: 60 }))).toBe(ERR_CLIENT_ASSERTION_LIFETIME);
  });

  it("iat or nbf in the future", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", { iat: NOW + 31 });
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_NOT_YET_VALID);
    const b = await assertion(fx.releaseBot, "release-bot", { nbf: NOW + 31 });
    expect(await codeOf(authenticate(b))).toBe(ERR_CLIENT_ASSERTION_NOT_YET_VALID);
  });

  it("an audience that is not this environment", async () => {
    for (const aud of ["https://writ.example/env/dev", "https://writ.example/env/prod/", [], undefined]) {
      const a = await assertion(fx.releaseBot, "release-bot", { aud });
      expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_AUDIENCE);
    }
  });

  it("iss that is not sub", async () => {
    const a = await assertion(fx.releaseBot, "release-bot", { iss: "ops-assistant" });
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_ISSUER);
  });

  it("a client_id that is not the assertion's subject", async () => {
    const a = await assertion(fx.releaseBot, "release-bot");
    expect(await codeOf(authenticate(a, { client_id: "ops-assistant" }))).toBe(
      ERR_CLIENT_ASSERTION_CLIENT_ID,
    );
  });

  it("an unknown agent", async () => {
    const a = await assertion(fx.releaseBot, "ghost-bot");
    expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT);
    const proto = await assertion(fx.releaseBot, "__proto__");
    expect(await codeOf(authenticate(proto))).toBe(ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT);
  });

  it("a client secret, in the body or as HTTP Basic, even beside a valid assertion", async () => {
    const secretOnly = new URLSearchParams({ client_id: "release-bot", client_secret: "hunter2" });
    expect(await codeOf(authenticateClient(secretOnly, options()))).toBe(ERR_CLIENT_SECRET_REFUSED);
    const basic = `Basic ${Buffer.from("release-bot:hunter2").toString("base64")}`;
    const noBody = new URLSearchParams({ grant_type: "client_credentials" });
    expect(await codeOf(authenticateClient(noBody, options({ authorization: basic })))).toBe(
      ERR_CLIENT_SECRET_REFUSED,
    );
    const a = await assertion(fx.releaseBot, "release-bot");
    expect(await codeOf(authenticate(a, { client_secret: "hunter2" }))).toBe(ERR_CLIENT_SECRET_REFUSED);
    const err = await authenticate(
      await assertion(fx.releaseBot, "release-bot"),
      {},
      { authorization: basic },
    ).catch((e: unknown) => e);
    expect(isWritError(err, ERR_CLIENT_SECRET_REFUSED)).toBe(true);
    expect((err as Error).message).toContain("private_key_jwt");
  });

  it("HS256 (client_secret_jwt) and alg none", async () => {
    const secret = new TextEncoder().encode("a shared secret that is long enough for HS256!!");
    const hs = await new SignJWT({
      iss: "release-bot",
      sub: "release-bot",
      aud: ISSUER,
      jti: randomUUID(),
      exp: NOW + 60,
    })
      .setProtectedHeader({ alg: "HS256" })
      .sign(secret);
    expect(await codeOf(authenticate(hs))).toBe(ERR_CLIENT_ASSERTION_ALG);
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    const claims = { iss: "release-bot", sub: "release-bot", aud: ISSUER, jti: randomUUID(), exp: NOW + 60 };
    for (const alg of ["none", "None", undefined]) {
      const unsigned = `${enc(alg === undefined ? {} : { alg })}.${enc(claims)}.`;
      expect(await codeOf(authenticate(unsigned))).toBe(ERR_CLIENT_ASSERTION_ALG);
    }
    const rs512 = `${enc({ alg: "RS512" })}.${enc(claims)}.c2ln`;
    expect(await codeOf(authenticate(rs512))).toBe(ERR_CLIENT_ASSERTION_ALG);
  });

  it("a JWT typed as another kind of token", async () => {
    for (const typ of ["at+jwt", "dpop+jwt", "application/at+jwt"]) {
      const a = await assertion(fx.releaseBot, "release-bot", {}, { typ });
      expect(await codeOf(authenticate(a))).toBe(ERR_CLIENT_ASSERTION_TYP);
    }
    for (const typ of ["JWT", "client-authentication+jwt"]) {
      const a = await assertion(fx.releaseBot, "release-bot", {}, { typ });
      expect((await authenticate(a)).agent.id).toBe("release-bot");
    }
  });

  it("a missing or wrong client_assertion_type, and no authentication at all", async () => {
    const a = await assertion(fx.releaseBot, "release-bot");
    const noType = new URLSearchParams({ client_assertion: a });
    expect(await codeOf(authenticateClient(noType, options()))).toBe(ERR_CLIENT_ASSERTION_TYPE);
    const samlType = new URLSearchParams({
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
      client_assertion: a,
    });
    expect(await codeOf(authenticateClient(samlType, options()))).toBe(ERR_CLIENT_ASSERTION_TYPE);
    const nothing = new URLSearchParams({ grant_type: "client_credentials", client_id: "release-bot" });
    expect(await codeOf(authenticateClient(nothing, options()))).toBe(ERR_CLIENT_ASSERTION_MISSING);
    expect(await codeOf(authenticate(undefined))).toBe(ERR_CLIENT_ASSERTION_MISSING);
  });

  it("malformed assertions and missing required claims", async () => {
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    for (const bad of [
      "not-a-jwt",
      "a.b",
      "a.b.c.d.e",
      `${enc({ alg: "EdDSA" })}.${enc([1, 2])}.c2ln`,
      "x".repeat(9000),
    ]) {
      expect(await codeOf(authenticate(bad))).toBe(ERR_CLIENT_ASSERTION_MALFORMED);
    }
    for (const missing of ["jti", "exp", "sub", "iss"]) {
      const a = await assertion(fx.releaseBot, "release-bot", { [missing]: undefined });
      expect(await codeOf(authenticate(a)), missing).toBe(ERR_CLIENT_ASSERTION_MALFORMED);
    }
    const stringExp = await assertion(fx.releaseBot, "release-bot", { exp: String(NOW + 60) });
    expect(await codeOf(authenticate(stringExp))).toBe(ERR_CLIENT_ASSERTION_MALFORMED);
    const twice = form(await assertion(fx.releaseBot, "release-bot"));
    twice.append("client_assertion", "x.y.z");
    expect(await codeOf(authenticateClient(twice, options()))).toBe(ERR_CLIENT_ASSERTION_MALFORMED);
  });

  it("with a store error when the replay cache fails, not with a client error", async () => {
    const a = await assertion(fx.releaseBot, "release-bot");
    const failing = {
      remember: () => Promise.reject(Object.assign(new Error("down"), { code: "ERR_STORE_UNAVAILABLE" })),
    };
    expect(await codeOf(authenticate(a, {}, { replay: failing }))).toBe("ERR_STORE_UNAVAILABLE");
  });
});

describe("client authentication errors on the wire", () => {
  it("map every code to invalid_client with HTTP 401, and nothing else", () => {
    const codes = Object.keys(CLIENT_AUTH_ERRORS);
    expect(codes).toHaveLength(15);
    for (const code of codes)
      expect(clientAuthOAuthError(code)).toEqual({ error: "invalid_client", status: 401 });
    expect(clientAuthOAuthError("ERR_DPOP_HTU")).toBeUndefined();
    expect(clientAuthOAuthError("toString")).toBeUndefined();
  });
});

describe("openid-client PrivateKeyJwt against a loopback token endpoint", () => {
  let server: Loopback;
  let issuer: string;
  const seen: { form: URLSearchParams; result?: AuthenticatedClient; code?: string }[] = [];
  const replay = memoryReplayCache();

  beforeAll(async () => {
    server = await startLoopback(async (req) => {
      if (req.method !== "POST" || req.path !== "/env/prod/token") return { status: 404, json: {} };
      const f = new URLSearchParams(req.body);
      const entry: (typeof seen)[number] = { form: f };
      seen.push(entry);
      try {
        entry.result = await authenticateClient(f, {
          config: fx.config,
          audiences: [issuer, `${issuer}/token`],
          replay,
          authorization: req.headers.authorization,
        });
      } catch (err) {
        if (!isWritError(err)) throw err;
        entry.code = err.code;
        const wire = clientAuthOAuthError(err.code)!;
        return { status: wire.status, json: { error: wire.error, error_description: err.message } };
      }
      return {
        status: 200,
        json: { access_token: `token-for-${entry.result.agent.id}`, token_type: "Bearer", expires_in: 60 },
      };
    });
    issuer = `${server.origin}/env/prod`;
  });
  afterAll(() => server.close());

  function configuration(auth: client.ClientAuth): client.Configuration {
    const config = new client.Configuration(
      { issuer, token_endpoint: `${issuer}/token` },
      "release-bot",
      {},
      auth,
    );
    client.allowInsecureRequests(config);
    return config;
  }

  it("authenticates the agent, twice, and refuses the captured request when replayed", async () => {
    const config = configuration(client.PrivateKeyJwt({ key: fx.releaseBot.key, kid: fx.releaseBot.kid! }));
    const first = await client.clientCredentialsGrant(config);
    expect(first.access_token).toBe("token-for-release-bot");
    const second = await client.clientCredentialsGrant(config);
    expect(second.access_token).toBe("token-for-release-bot");
    const captured = seen.at(-1)!;
    expect(captured.result?.agent.id).toBe("release-bot");
    expect(captured.result?.kid).toBe(fx.releaseBot.kid);
    // openid-client sends aud = issuer, the fully specified alg, client_id beside the assertion
    expect(captured.form.get("client_id")).toBe("release-bot");
    const header = JSON.parse(
      new TextDecoder().decode(base64url.decode(captured.form.get("client_assertion")!.split(".")[0]!)),
    );
    expect(header.alg).toBe("Ed25519");
    expect(
      await codeOf(
        authenticateClient(captured.form, {
          config: fx.config,
          audiences: [issuer, `${issuer}/token`],
          replay,
        }),
      ),
    ).toBe(ERR_CLIENT_ASSERTION_REPLAY);
  });

  it("refuses another agent's key, and client_secret_post, with invalid_client", async () => {
    const stolen = configuration(
      client.PrivateKeyJwt({ key: fx.opsAssistant.key, kid: fx.opsAssistant.kid! }),
    );
    await expect(client.clientCredentialsGrant(stolen)).rejects.toMatchObject({
      error: "invalid_client",
      status: 401,
    });
    expect(seen.at(-1)?.code).toBe(ERR_CLIENT_ASSERTION_SIGNATURE);
    const secret = configuration(client.ClientSecretPost("hunter2"));
    await expect(client.clientCredentialsGrant(secret)).rejects.toMatchObject({
      error: "invalid_client",
      status: 401,
    });
    expect(seen.at(-1)?.code).toBe(ERR_CLIENT_SECRET_REFUSED);
    const basic = configuration(client.ClientSecretBasic("hunter2"));
    await expect(client.clientCredentialsGrant(basic)).rejects.toMatchObject({
      error: "invalid_client",
      status: 401,
    });
    expect(seen.at(-1)?.code).toBe(ERR_CLIENT_SECRET_REFUSED);
  });
});
