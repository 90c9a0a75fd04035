/**
 * RFC 9068 access tokens: minting with the key-life bound, and every refusal of verification with
 * its code — cross-environment keys, `none`, HMAC with the public key, wrong `typ`, expiry, issuer,
 * audience, tampering — over the embedded store.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url, createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type EnvironmentKeys, environmentKeys, type SigningKey } from "../../src/broker/keys.js";
import { issuerFor } from "../../src/broker/metadata.js";
import {
  type AccessTokenInput,
  ERR_TOKEN_ALG,
  ERR_TOKEN_AUDIENCE,
  ERR_TOKEN_EXPIRED,
  ERR_TOKEN_ISSUER,
  ERR_TOKEN_KEY,
  ERR_TOKEN_KEY_LIFE,
  ERR_TOKEN_MALFORMED,
  ERR_TOKEN_NOT_YET_VALID,
  ERR_TOKEN_SIGNATURE,
  ERR_TOKEN_TYPE,
  maxExpiry,
  mintAccessToken,
  type VerifyOptions,
  verifyAccessToken,
} from "../../src/broker/tokens.js";
import { isWritError } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";

const BASE = "http://127.0.0.1:8080";
const DEV = issuerFor(BASE, "dev");
const PROD = issuerFor(BASE, "prod");
const AUD = "https://gateway.example/mcp";
const T0 = new Date("2026-11-18T10:00:00Z");
const T0S = T0.getTime() / 1000;

let now = T0.getTime();
const clock = () => new Date(now);
const advance = (seconds: number) => {
  now += seconds * 1000;
};

let dir = "";
let store: Store;
let keys: EnvironmentKeys;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-tokens-"));
  store = await openStore({ dataDir: dir });
  await store.migrate();
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  now = T0.getTime();
  await store.db.deleteFrom("signing_keys").execute();
  keys = environmentKeys(store, { clock });
});

function claims(over: Partial<AccessTokenInput> = {}): AccessTokenInput {
  return {
    iss: PROD,
    sub: "alice@example.com",
    aud: AUD,
    exp: Math.floor(now / 1000) + 600,
    client_id: "release-bot",
    act: { sub: "release-bot" },
    cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" },
    authorization_details: [
      {
        type: "writ_playbook",
        playbook: "restart-service",
        parameters: { namespace: "payments", deployment: "api" },
        environment: "prod",
        ticket: "CHG-1234",
      },
    ],
    writ: "w-0001",
    ...over,
  };
}

function verify(token: string, over: Partial<VerifyOptions> = {}) {
  return verifyAccessToken(token, { env: "prod", issuer: PROD, keys, audience: AUD, clock, ...over });
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isWritError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("expected a refusal");
}

/** Signs anything with a key, bypassing mintAccessToken's checks. */
function sign(payload: Record<string, unknown>, header: Record<string, unknown>, key: SigningKey) {
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", ...header }).sign(key.privateKey);
}

const b64 = (value: unknown) => base64url.encode(JSON.stringify(value));

/** A full claims set as plain JSON, for tokens signed by hand. */
const body = (): Record<string, unknown> => ({ ...claims(), iat: T0S, jti: "j1" });

describe("minting", () => {
  it("mints an RFC 9068 token that verifies, with every claim", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims({ scope: "deploy" }), { clock });
    expect(decodeProtectedHeader(token)).toEqual({ alg: "EdDSA", typ: "at+jwt", kid: key.kid });
    const got = await verify(token);
    expect(got).toEqual({
      iss: PROD,
      sub: "alice@example.com",
      aud: AUD,
      exp: T0S + 600,
      iat: T0S,
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      client_id: "release-bot",
      scope: "deploy",
      act: { sub: "release-bot" },
      cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" },
      authorization_details: claims().authorization_details,
      writ: "w-0001",
    });
    // jose, given only the published JWKS, agrees.
    const jwks = createLocalJWKSet({ keys: [...(await keys.jwks("prod")).keys] });
    const { payload } = await jwtVerify(token, jwks, {
      typ: "at+jwt",
      issuer: PROD,
      audience: AUD,
      currentDate: clock(),
    });
    expect(payload.jti).toBe(got.jti);
    // Two tokens never share a jti.
    const again = await verify(await mintAccessToken(key, claims(), { clock }));
    expect(again.jti).not.toBe(got.jti);
  });

  it("refuses an exp beyond the signing key's life (ERR_TOKEN_KEY_LIFE) and accepts exactly its end", async () => {
    const key = await keys.activeKey("prod");
    expect(maxExpiry(key)).toBe(Math.floor(key.signUntil.getTime() / 1000));
    const over = await refusal(mintAccessToken(key, claims({ exp: maxExpiry(key) + 1 }), { clock }));
    expect(over.code).toBe(ERR_TOKEN_KEY_LIFE);
    const atEnd = await mintAccessToken(key, claims({ exp: maxExpiry(key) }), { clock });
    expect((await verify(atEnd)).exp).toBe(maxExpiry(key));
    // A key object kept past its life does not sign at all.
    now = key.signUntil.getTime();
    expect((await refusal(mintAccessToken(key, claims(), { clock }))).code).toBe(ERR_TOKEN_KEY_LIFE);
  });

  it("refuses malformed claims as programmer errors, and an issuer of another environment", async () => {
    const key = await keys.activeKey("prod");
    await expect(mintAccessToken(key, claims({ iss: DEV }), { clock })).rejects.toBeInstanceOf(TypeError);
    await expect(mintAccessToken(key, claims({ exp: T0S }), { clock })).rejects.toBeInstanceOf(TypeError);
    await expect(mintAccessToken(key, claims({ exp: T0S + 0.5 }), { clock })).rejects.toBeInstanceOf(
      TypeError,
    );
    await expect(mintAccessToken(key, claims({ aud: [] }), { clock })).rejects.toBeInstanceOf(TypeError);
    await expect(mintAccessToken(key, claims({ sub: "" }), { clock })).rejects.toBeInstanceOf(TypeError);
  });
});

describe("verification refuses, each with its code", () => {
  it("a token minted for dev, in prod (ERR_TOKEN_KEY), though its kid is a real dev key", async () => {
    const devKey = await keys.activeKey("dev");
    await keys.activeKey("prod");
    const devToken = await mintAccessToken(devKey, claims({ iss: DEV }), { clock });
    expect(await verify(devToken, { env: "dev", issuer: DEV })).toMatchObject({ iss: DEV });
    expect((await refusal(verify(devToken))).code).toBe(ERR_TOKEN_KEY);
    // Even told to expect dev's issuer, prod's keys are the only ones consulted.
    expect((await refusal(verify(devToken, { issuer: DEV }))).code).toBe(ERR_TOKEN_KEY);
    // And a lookup that hands back another environment's key is not believed.
    const leaky = { verificationKey: (_env: string, kid: string) => keys.verificationKey("dev", kid) };
    expect((await refusal(verify(devToken, { keys: leaky }))).code).toBe(ERR_TOKEN_KEY);
  });

  it("`alg: none` (ERR_TOKEN_ALG), which jose refuses too", async () => {
    const key = await keys.activeKey("prod");
    const payload = body();
    const none = `${b64({ alg: "none", typ: "at+jwt", kid: key.kid })}.${b64(payload)}.`;
    expect((await refusal(verify(none))).code).toBe(ERR_TOKEN_ALG);
    await expect(jwtVerify(none, key.publicJwk as never)).rejects.toThrow();
    await expect(jwtVerify(none, (await keys.verificationKey("prod", key.kid))!.publicKey)).rejects.toThrow();
  });

  it("HS256 keyed with the public key (ERR_TOKEN_ALG)", async () => {
    const key = await keys.activeKey("prod");
    const payload = body();
    for (const secret of [JSON.stringify(key.publicJwk), key.publicJwk.x]) {
      const hs = await new SignJWT(payload)
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: key.kid })
        .sign(new TextEncoder().encode(secret));
      expect((await refusal(verify(hs))).code).toBe(ERR_TOKEN_ALG);
    }
    const hsRaw = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: key.kid })
      .sign(base64url.decode(key.publicJwk.x));
    expect((await refusal(verify(hsRaw))).code).toBe(ERR_TOKEN_ALG);
    // Other asymmetric algorithms are refused as well: writ signs with EdDSA only.
    const es = `${b64({ alg: "ES256", typ: "at+jwt", kid: key.kid })}.${b64(payload)}.AAAA`;
    expect((await refusal(verify(es))).code).toBe(ERR_TOKEN_ALG);
  });

  it("`typ: JWT` instead of at+jwt (ERR_TOKEN_TYPE), and no typ at all", async () => {
    const key = await keys.activeKey("prod");
    const payload = body();
    const jwt = await sign(payload, { typ: "JWT", kid: key.kid }, key);
    expect((await refusal(verify(jwt))).code).toBe(ERR_TOKEN_TYPE);
    const untyped = await sign(payload, { kid: key.kid }, key);
    expect((await refusal(verify(untyped))).code).toBe(ERR_TOKEN_TYPE);
    // The media type spelled in full is the same type (RFC 9068 §4).
    const full = await sign(payload, { typ: "application/at+jwt", kid: key.kid }, key);
    expect((await verify(full)).jti).toBe("j1");
  });

  it("an expired token (ERR_TOKEN_EXPIRED), within the clock skew allowed", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims({ exp: T0S + 60 }), { clock });
    advance(59);
    expect((await verify(token)).exp).toBe(T0S + 60);
    advance(1);
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_EXPIRED);
    expect((await verify(token, { maxClockSkewSeconds: 30 })).exp).toBe(T0S + 60);
    advance(30);
    expect((await refusal(verify(token, { maxClockSkewSeconds: 30 }))).code).toBe(ERR_TOKEN_EXPIRED);
  });

  it("a token not yet valid: `nbf` or `iat` in the future (ERR_TOKEN_NOT_YET_VALID)", async () => {
    const key = await keys.activeKey("prod");
    const later = await mintAccessToken(key, claims({ nbf: T0S + 30 }), { clock });
    expect((await refusal(verify(later))).code).toBe(ERR_TOKEN_NOT_YET_VALID);
    advance(30);
    expect((await verify(later)).nbf).toBe(T0S + 30);
    const future = await sign(
      { ...claims(), iat: T0S + 3600, jti: "j" },
      { typ: "at+jwt", kid: key.kid },
      key,
    );
    expect((await refusal(verify(future))).code).toBe(ERR_TOKEN_NOT_YET_VALID);
  });

  it("a wrong issuer (ERR_TOKEN_ISSUER)", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims({ iss: "http://evil.example/env/prod" }), { clock });
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_ISSUER);
  });

  it("a wrong audience (ERR_TOKEN_AUDIENCE); any of several audiences will do", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims({ aud: "https://other.example" }), { clock });
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_AUDIENCE);
    // Without an expected audience (the broker's own introspection) it is not checked.
    expect((await verify(token, { audience: undefined })).aud).toBe("https://other.example");
    const both = await mintAccessToken(key, claims({ aud: ["https://other.example", AUD] }), { clock });
    expect((await verify(both)).aud).toEqual(["https://other.example", AUD]);
  });

  it("a tampered payload (ERR_TOKEN_SIGNATURE), and the token is in no message", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims(), { clock });
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!)));
    const tampered = `${h}.${b64({ ...payload, sub: "mallory@example.com" })}.${s}`;
    const r = await refusal(verify(tampered));
    expect(r.code).toBe(ERR_TOKEN_SIGNATURE);
    expect(r.message).not.toContain(s!);
    expect(r.message).not.toContain(p!);
    // The same payload under another key of the same environment.
    const { created } = await keys.rotate("prod", { maxTokenTtlSeconds: 600 });
    const swapped = `${b64({ ...decodeProtectedHeader(token), kid: created.kid })}.${p}.${s}`;
    expect((await refusal(verify(swapped))).code).toBe(ERR_TOKEN_SIGNATURE);
  });

  it("an unknown kid, or none (ERR_TOKEN_KEY)", async () => {
    const key = await keys.activeKey("prod");
    const payload = body();
    const unknown = await sign(payload, { typ: "at+jwt", kid: "no-such-key" }, key);
    expect((await refusal(verify(unknown))).code).toBe(ERR_TOKEN_KEY);
    const kidless = await sign(payload, { typ: "at+jwt" }, key);
    expect((await refusal(verify(kidless))).code).toBe(ERR_TOKEN_KEY);
  });

  it("what is not a compact JWS (ERR_TOKEN_MALFORMED)", async () => {
    const key = await keys.activeKey("prod");
    const payload = body();
    for (const bad of ["", "abc", "a.b", "a.b.c.d", "eyJ.e30.", `${base64url.encode("not json")}.e30.sig`]) {
      expect((await refusal(verify(bad))).code, bad).toBe(ERR_TOKEN_MALFORMED);
    }
    // Properly signed but missing a claim RFC 9068 requires.
    const { client_id: _, ...noClient } = payload;
    const missing = await sign(noClient, { typ: "at+jwt", kid: key.kid }, key);
    expect((await refusal(verify(missing))).code).toBe(ERR_TOKEN_MALFORMED);
    const badAct = await sign({ ...payload, act: "release-bot" }, { typ: "at+jwt", kid: key.kid }, key);
    expect((await refusal(verify(badAct))).code).toBe(ERR_TOKEN_MALFORMED);
  });
});

describe("rotation and verification", () => {
  it("a token verified before is checked anew: another signature on it, or its key withdrawn", async () => {
    const key = await keys.activeKey("prod");
    const token = await mintAccessToken(key, claims(), { clock });
    expect((await verify(token)).writ).toBe("w-0001");
    expect((await verify(token)).writ).toBe("w-0001"); // remembered: the same answer
    // the same header and claims under a signature that is not the key's
    const [h, p, s] = token.split(".") as [string, string, string];
    const forged = `${h}.${p}.${s.slice(0, -4)}${s.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    expect((await refusal(verify(forged))).code).toBe(ERR_TOKEN_SIGNATURE);
    // a key withdrawn at once (compromised): what it signed stops verifying, remembered or not
    await keys.rotate("prod", { maxTokenTtlSeconds: 0 });
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_KEY_LIFE); // outlives its key now
    advance(1);
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_KEY); // and the key is gone
  });

  it("a token signed by the retired key verifies until its exp", async () => {
    const old = await keys.activeKey("prod");
    const token = await mintAccessToken(old, claims({ exp: T0S + 600 }), { clock });
    advance(100);
    const { created } = await keys.rotate("prod", { maxTokenTtlSeconds: 600 });
    expect(created.kid).not.toBe(old.kid);
    expect((await verify(token)).exp).toBe(T0S + 600);
    advance(499); // T0 + 599
    expect((await verify(token)).exp).toBe(T0S + 600);
    advance(1);
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_EXPIRED);
    advance(100); // publication of the old key ends (rotation + 600)
    expect((await refusal(verify(token))).code).toBe(ERR_TOKEN_KEY);
    // New tokens come from the new key.
    expect(
      decodeProtectedHeader(await mintAccessToken(await keys.activeKey("prod"), claims(), { clock })).kid,
    ).toBe(created.kid);
  });

  it("a retired key that leaked cannot make tokens issued after its retirement or outliving its publication", async () => {
    const old = await keys.activeKey("prod");
    advance(100);
    await keys.rotate("prod", { maxTokenTtlSeconds: 600 });
    advance(60);
    const nowS = Math.floor(now / 1000);
    // `old.privateKey` stands for the leaked key: the store erased its copy at retirement.
    const fresh = await sign(
      { ...claims(), iat: nowS, exp: nowS + 60, jti: "x" },
      { typ: "at+jwt", kid: old.kid },
      old,
    );
    expect((await refusal(verify(fresh))).code).toBe(ERR_TOKEN_KEY_LIFE);
    const longLived = await sign(
      { ...claims(), iat: T0S + 90, exp: T0S + 100 + 600 + 3600, jti: "y" },
      { typ: "at+jwt", kid: old.kid },
      old,
    );
    expect((await refusal(verify(longLived))).code).toBe(ERR_TOKEN_KEY_LIFE);
  });
});
