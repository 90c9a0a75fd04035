/**
 * The verifiers return their refusals (issue 13: one error model): `checkClient`, `checkDpopProof`
 * and `checkAccessToken` resolve to a refusal object with its code for a bad assertion, proof or
 * token — never reject — and reject only when something that is not the caller's fails (the key
 * store, the replay cache). Their throwing forms throw the same code as a `WritError`.
 */
import { describe, expect, it } from "vitest";
import { authenticateClient, ClientRefused, checkClient } from "../../src/broker/client-auth.js";
import { checkDpopProof, DpopRefused, verifyDpopProof } from "../../src/broker/dpop.js";
import type { EnvironmentKeys } from "../../src/broker/keys.js";
import type { ReplayCache } from "../../src/broker/replay.js";
import { checkAccessToken, TokenRefused, verifyAccessToken } from "../../src/broker/tokens.js";
import { isWritError } from "../../src/core/index.js";

const replay = { remember: async () => true } as unknown as ReplayCache;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
/** A token whose header passes every check before the key lookup. */
const wellFormed = `${b64({ alg: "EdDSA", typ: "at+jwt", kid: "k1" })}.${b64({ iss: "x" })}.${"A".repeat(86)}`;

async function thrownCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (!isWritError(err)) throw err;
    return err.code;
  }
  throw new Error("expected a coded error");
}

describe("checkAccessToken", () => {
  const keys = { verificationKey: async () => undefined } as unknown as EnvironmentKeys;
  const opts = { env: "dev", issuer: "http://127.0.0.1/env/dev", keys };

  it("resolves to the refusal with its code for a token that is not a JWS, a bad header, an unknown key", async () => {
    for (const [token, code] of [
      ["not a token", "ERR_TOKEN_MALFORMED"],
      [`${b64({ alg: "none", typ: "at+jwt", kid: "k1" })}.${b64({})}.`, "ERR_TOKEN_ALG"],
      [`${b64({ alg: "EdDSA", typ: "JWT", kid: "k1" })}.${b64({})}.`, "ERR_TOKEN_TYPE"],
      [wellFormed, "ERR_TOKEN_KEY"],
    ] as const) {
      const out = await checkAccessToken(token, opts);
      expect(out, token).toBeInstanceOf(TokenRefused);
      expect((out as TokenRefused).code, token).toBe(code);
      expect((out as TokenRefused).message).toMatch(/^access token refused: /);
      expect(await thrownCode(verifyAccessToken(token, opts)), token).toBe(code);
    }
  });

  it("rejects when the key store fails: not the token's fault", async () => {
    const down = {
      verificationKey: async () => {
        throw new Error("store down");
      },
    } as unknown as EnvironmentKeys;
    await expect(checkAccessToken(wellFormed, { ...opts, keys: down })).rejects.toThrow("store down");
  });
});

describe("checkDpopProof", () => {
  const opts = { method: "POST", url: "http://127.0.0.1/token", replay };

  it("resolves to the refusal with its code for no proof, two proofs, a malformed one", async () => {
    for (const [header, code] of [
      [undefined, "ERR_DPOP_MISSING"],
      [["a.b.c", "d.e.f"], "ERR_DPOP_MULTIPLE"],
      ["not-a-jws", "ERR_DPOP_MALFORMED"],
    ] as const) {
      const out = await checkDpopProof(header, opts);
      expect(out).toBeInstanceOf(DpopRefused);
      expect((out as DpopRefused).code).toBe(code);
      expect((out as DpopRefused).nonce).toBeUndefined();
      expect(await thrownCode(verifyDpopProof(header, opts))).toBe(code);
    }
  });
});

describe("checkClient", () => {
  const opts = { config: { agents: new Map() }, audiences: ["http://127.0.0.1/env/dev"], replay };

  it("resolves to the refusal with its code for a client secret, HTTP Basic, no assertion, a repeated parameter", async () => {
    const repeated = new URLSearchParams([
      ["client_assertion_type", "x"],
      ["client_assertion_type", "y"],
    ]);
    for (const [form, authorization, code] of [
      [{ client_secret: "s3cret" }, undefined, "ERR_CLIENT_SECRET_REFUSED"],
      [{}, "Basic YTpi", "ERR_CLIENT_SECRET_REFUSED"],
      [{}, undefined, "ERR_CLIENT_ASSERTION_MISSING"],
      [repeated, undefined, "ERR_CLIENT_ASSERTION_MALFORMED"],
      [
        {
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: "x.y",
        },
        undefined,
        "ERR_CLIENT_ASSERTION_MALFORMED",
      ],
    ] as const) {
      const out = await checkClient(form, { ...opts, authorization });
      expect(out).toBeInstanceOf(ClientRefused);
      expect((out as ClientRefused).code).toBe(code);
      expect(await thrownCode(authenticateClient(form, { ...opts, authorization }))).toBe(code);
    }
  });
});
