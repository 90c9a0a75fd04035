/**
 * The JWS checks on `node:crypto` key objects accept and refuse exactly what the JOSE library did
 * before them: access tokens (minted and verified), client assertions and DPoP proofs under every
 * accepted algorithm, and RFC 7638 thumbprints. Each case is run through both, side by side: the
 * old path (jose's `jwtVerify`, `compactVerify`, `calculateJwkThumbprint`, as the code called
 * them) is the oracle.
 */
import { constants, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { calculateJwkThumbprint, compactVerify, errors, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  type AsymmetricAlgorithm,
  bareKey,
  jwkThumbprint,
  verifiesWith,
} from "../../src/broker/asymmetric-jws.js";
import type { SigningKey, VerificationKey } from "../../src/broker/keys.js";
import {
  ERR_TOKEN_AUDIENCE,
  ERR_TOKEN_EXPIRED,
  ERR_TOKEN_ISSUER,
  ERR_TOKEN_MALFORMED,
  ERR_TOKEN_NOT_YET_VALID,
  ERR_TOKEN_SIGNATURE,
  mintAccessToken,
  verifyAccessToken,
} from "../../src/broker/tokens.js";
import { isWritError } from "../../src/core/index.js";

const ISSUER = "http://127.0.0.1:8080/env/dev";
const AUD = "https://gateway.example/mcp";
const NOW = new Date("2026-11-18T10:00:00.700Z");
const NOWS = Math.floor(NOW.getTime() / 1000);

const ed = generateKeyPairSync("ed25519");
const publicJwk = ed.publicKey.export({ format: "jwk" });
const KID = "kid-1";
const signingKey: SigningKey = {
  kind: "signing-key",
  kid: KID,
  env: "dev",
  alg: "EdDSA",
  createdAt: new Date(NOW.getTime() - 86_400_000),
  signUntil: new Date(NOW.getTime() + 30 * 86_400_000),
  publicJwk: { kty: "OKP", crv: "Ed25519", x: publicJwk.x!, kid: KID, alg: "EdDSA", use: "sig" },
  privateKey: ed.privateKey,
};
const verificationKey: VerificationKey = {
  kind: "verification-key",
  kid: KID,
  env: "dev",
  status: "active",
  signUntil: signingKey.signUntil,
  publishUntil: signingKey.signUntil,
  publicJwk: signingKey.publicJwk,
  publicKey: ed.publicKey,
};
const keys = {
  verificationKey: async (env: string, kid: string) =>
    env === "dev" && kid === KID ? verificationKey : undefined,
};

const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** A compact JWS over any header and payload text, signed with the environment key. */
function forge(header: Record<string, unknown>, payload: unknown, key: KeyObject = ed.privateKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`;
}

/** The code (or "ok") the old path gave: jose's jwtVerify with the options the broker passed. */
async function oldOutcome(token: string, audience: string | undefined, skew: number): Promise<string> {
  try {
    const { payload } = await jwtVerify(token, ed.publicKey, {
      algorithms: ["EdDSA"],
      typ: "at+jwt",
      issuer: ISSUER,
      ...(audience === undefined ? {} : { audience }),
      currentDate: NOW,
      clockTolerance: skew,
      requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
    });
    // then the claim types and `iat`, unchanged code after the library's checks
    const p = payload as Record<string, unknown>;
    const aud = p.aud;
    if (
      ["iss", "sub", "jti", "client_id"].some((c) => typeof p[c] !== "string") ||
      ["exp", "iat"].some((c) => typeof p[c] !== "number") ||
      !(typeof aud === "string" || (Array.isArray(aud) && aud.every((a) => typeof a === "string")))
    ) {
      return ERR_TOKEN_MALFORMED;
    }
    if ((p.iat as number) > NOW.getTime() / 1000 + skew) return ERR_TOKEN_NOT_YET_VALID;
    return "ok";
  } catch (err) {
    if (err instanceof errors.JWSSignatureVerificationFailed) return ERR_TOKEN_SIGNATURE;
    if (err instanceof errors.JWTExpired) return ERR_TOKEN_EXPIRED;
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === "iss") return ERR_TOKEN_ISSUER;
      if (err.claim === "aud") return ERR_TOKEN_AUDIENCE;
      if (err.claim === "nbf") return ERR_TOKEN_NOT_YET_VALID;
      return ERR_TOKEN_MALFORMED;
    }
    return ERR_TOKEN_MALFORMED;
  }
}

async function newOutcome(token: string, audience: string | undefined, skew: number): Promise<string> {
  try {
    await verifyAccessToken(token, {
      env: "dev",
      issuer: ISSUER,
      keys,
      audience,
      clock: () => NOW,
      maxClockSkewSeconds: skew,
    });
    return "ok";
  } catch (err) {
    if (isWritError(err)) return err.code;
    throw err;
  }
}

const HEADER = { alg: "EdDSA", typ: "at+jwt", kid: KID };
const CLAIMS = {
  iss: ISSUER,
  sub: "alice",
  aud: AUD,
  exp: NOWS + 600,
  iat: NOWS - 5,
  jti: "j-1",
  client_id: "release-bot",
};
const without = (name: string) => Object.fromEntries(Object.entries(CLAIMS).filter(([k]) => k !== name));

function tokenCorpus(): Array<[string, string]> {
  const valid = forge(HEADER, CLAIMS);
  const [h, p, s] = valid.split(".") as [string, string, string];
  const flip = (text: string, at: number) =>
    text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
  const cases: Array<[string, string]> = [
    ["valid", valid],
    ["tampered payload", `${h}.${flip(p, 10)}.${s}`],
    ["tampered signature", `${h}.${p}.${flip(s, 5)}`],
    ["signature of impossible length", `${h}.${p}.${s}A`],
    ["signature truncated", `${h}.${p}.${s.slice(0, -4)}`],
    ["empty signature", `${h}.${p}.`],
    ["signed by another key", forge(HEADER, CLAIMS, generateKeyPairSync("ed25519").privateKey)],
    ["payload not JSON", forge(HEADER, "not json")],
    ["payload an array", forge(HEADER, [CLAIMS])],
    ["payload a string", forge(HEADER, JSON.stringify("x"))],
    [
      "payload invalid UTF-8",
      (() => {
        const input = `${b64(HEADER)}.${Buffer.from([0x7b, 0xff, 0x7d]).toString("base64url")}`;
        return `${input}.${sign(null, Buffer.from(input), ed.privateKey).toString("base64url")}`;
      })(),
    ],
    ["iss wrong", forge(HEADER, { ...CLAIMS, iss: "http://127.0.0.1:8080/env/prod" })],
    ["aud other", forge(HEADER, { ...CLAIMS, aud: "https://other.example" })],
    ["aud array naming it", forge(HEADER, { ...CLAIMS, aud: ["https://other.example", AUD] })],
    ["aud a number", forge(HEADER, { ...CLAIMS, aud: 7 })],
    ["exp passed", forge(HEADER, { ...CLAIMS, exp: NOWS })],
    ["exp long passed", forge(HEADER, { ...CLAIMS, exp: NOWS - 60 })],
    ["exp a second ahead", forge(HEADER, { ...CLAIMS, exp: NOWS + 1 })],
    ["exp a string", forge(HEADER, { ...CLAIMS, exp: String(NOWS + 60) })],
    ["nbf ahead", forge(HEADER, { ...CLAIMS, nbf: NOWS + 3 })],
    ["nbf now", forge(HEADER, { ...CLAIMS, nbf: NOWS })],
    ["nbf a string", forge(HEADER, { ...CLAIMS, nbf: "soon" })],
    ["iat a string", forge(HEADER, { ...CLAIMS, iat: "then" })],
    ["iat null", forge(HEADER, { ...CLAIMS, iat: null })],
    ["sub null", forge(HEADER, { ...CLAIMS, sub: null })],
  ];
  for (const name of Object.keys(CLAIMS)) cases.push([`no ${name}`, forge(HEADER, without(name))]);
  cases.push([
    "no iss and no aud",
    forge(HEADER, Object.fromEntries(Object.entries(without("iss")).filter(([k]) => k !== "aud"))),
  ]);
  return cases;
}

describe("access tokens on node:crypto", () => {
  it("mints byte for byte what jose's SignJWT signs", async () => {
    const claims = {
      iss: ISSUER,
      sub: "alice",
      aud: AUD,
      exp: NOWS + 600,
      iat: NOWS,
      jti: "fixed",
      client_id: "release-bot",
      act: { sub: "release-bot" },
      cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" },
      authorization_details: [{ type: "writ_playbook", playbook: "p", parameters: { é: "ü", n: 1 } }],
      writ: "writ_1",
    };
    const minted = await mintAccessToken(signingKey, claims, { clock: () => NOW });
    const reference = await new SignJWT(claims)
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: KID })
      .sign(ed.privateKey);
    expect(minted).toBe(reference);
  });

  for (const audience of [undefined, AUD]) {
    for (const skew of [0, 5]) {
      it(`accepts and refuses what jwtVerify did (audience ${audience ?? "none"}, skew ${skew} s)`, async () => {
        const outcomes: Array<[string, string, string]> = [];
        for (const [name, token] of tokenCorpus()) {
          outcomes.push([
            name,
            await newOutcome(token, audience, skew),
            await oldOutcome(token, audience, skew),
          ]);
        }
        for (const [name, now, before] of outcomes) expect(`${name}: ${now}`).toBe(`${name}: ${before}`);
        // the corpus exercises acceptance and each refusal
        expect(new Set(outcomes.map(([, o]) => o))).toEqual(
          new Set([
            "ok",
            ERR_TOKEN_SIGNATURE,
            ERR_TOKEN_MALFORMED,
            ERR_TOKEN_ISSUER,
            ERR_TOKEN_AUDIENCE,
            ERR_TOKEN_EXPIRED,
            ERR_TOKEN_NOT_YET_VALID,
          ]),
        );
      });
    }
  }
});

type Pair = { privateKey: KeyObject; publicKey: KeyObject };
const PAIRS: Record<AsymmetricAlgorithm, Pair> = {
  EdDSA: ed,
  Ed25519: ed,
  ES256: generateKeyPairSync("ec", { namedCurve: "P-256" }),
  ES384: generateKeyPairSync("ec", { namedCurve: "P-384" }),
  PS256: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  RS256: generateKeyPairSync("rsa", { modulusLength: 2048 }),
};
const OTHER: Record<AsymmetricAlgorithm, Pair> = {
  EdDSA: generateKeyPairSync("ed25519"),
  Ed25519: generateKeyPairSync("ed25519"),
  ES256: generateKeyPairSync("ec", { namedCurve: "P-256" }),
  ES384: generateKeyPairSync("ec", { namedCurve: "P-384" }),
  PS256: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  RS256: generateKeyPairSync("rsa", { modulusLength: 2048 }),
};
const jwkOf = (k: KeyObject) => k.export({ format: "jwk" }) as unknown as Record<string, unknown>;

async function joseVerifies(token: string, jwk: Record<string, unknown>, alg: AsymmetricAlgorithm) {
  try {
    await compactVerify(token, await importJWK(bareKey(jwk), alg), { algorithms: [alg] });
    return true;
  } catch {
    return false;
  }
}

const SIGN_OPTIONS: Record<AsymmetricAlgorithm, [string | null, Record<string, unknown>]> = {
  EdDSA: [null, {}],
  Ed25519: [null, {}],
  ES256: ["sha256", { dsaEncoding: "ieee-p1363" }],
  ES384: ["sha384", { dsaEncoding: "ieee-p1363" }],
  PS256: ["sha256", { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }],
  RS256: ["sha256", {}],
};

/** Any header, signed as `alg` signs (jose itself refuses to sign some of these headers). */
function signed(alg: AsymmetricAlgorithm, key: KeyObject, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg, ...header })}.${b64({ sub: "release-bot", jti: "x", n: 1 })}`;
  const [hash, options] = SIGN_OPTIONS[alg];
  return `${input}.${sign(hash, Buffer.from(input), { key, ...options }).toString("base64url")}`;
}

describe("client assertions and DPoP proofs on node:crypto", () => {
  for (const alg of Object.keys(PAIRS) as AsymmetricAlgorithm[]) {
    it(`verifies ${alg} exactly as compactVerify did`, async () => {
      const { privateKey, publicKey } = PAIRS[alg];
      const jwk = jwkOf(publicKey);
      const good = signed(alg, privateKey);
      const [h, p, s] = good.split(".") as [string, string, string];
      const flip = (text: string, at: number) =>
        text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
      const cases: Array<[string, string, Record<string, unknown>]> = [
        ["valid", good, jwk],
        ["tampered payload", `${h}.${flip(p, 3)}.${s}`, jwk],
        ["tampered signature", `${h}.${p}.${flip(s, 7)}`, jwk],
        ["signature of impossible length", `${h}.${p}.${s}A`, jwk],
        ["signature truncated", `${h}.${p}.${s.slice(0, -8)}`, jwk],
        ["empty signature", `${h}.${p}.`, jwk],
        ["another key", good, jwkOf(OTHER[alg].publicKey)],
        [
          "a key of another type",
          good,
          jwkOf(
            alg.startsWith("E") && alg !== "ES256" && alg !== "ES384" ? PAIRS.ES256.publicKey : ed.publicKey,
          ),
        ],
        ["crit b64 true", signed(alg, privateKey, { crit: ["b64"], b64: true }), jwk],
        ["crit unknown", signed(alg, privateKey, { crit: ["exp"], exp: 1 }), jwk],
        ["crit empty", signed(alg, privateKey, { crit: [] }), jwk],
        ["crit b64 absent", signed(alg, privateKey, { crit: ["b64"] }), jwk],
        ["crit b64 not boolean", signed(alg, privateKey, { crit: ["b64"], b64: "no" }), jwk],
        ["x not a point", good, { ...jwk, x: "AAAA" }],
      ];
      for (const [name, token, key] of cases) {
        expect(`${name}: ${verifiesWith(token, key, alg)}`).toBe(
          `${name}: ${await joseVerifies(token, key, alg)}`,
        );
      }
      expect(verifiesWith(good, jwk, alg)).toBe(true);
    });
  }

  it("refuses RSA keys under 2048 bits, as compactVerify did", async () => {
    for (const alg of ["RS256", "PS256"] as const) {
      const short = generateKeyPairSync("rsa", { modulusLength: 1024 });
      const token = signed(alg, short.privateKey);
      expect(verifiesWith(token, jwkOf(short.publicKey), alg)).toBe(false);
      expect(await joseVerifies(token, jwkOf(short.publicKey), alg)).toBe(false);
    }
  });

  it("computes the RFC 7638 thumbprints jose computes", async () => {
    for (const pair of [ed, PAIRS.ES256, PAIRS.ES384, PAIRS.RS256]) {
      const jwk = { ...jwkOf(pair.publicKey), alg: "x", use: "sig", kid: "k" };
      expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk as JWK, "sha256"));
    }
    expect(() => jwkThumbprint({ kty: "EC", crv: "P-256", x: "AA" })).toThrow(TypeError);
  });
});
