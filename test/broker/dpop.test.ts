/**
 * DPoP proofs (RFC 9449) made by the real `dpop` library, hand-made bad ones, server nonces, and a
 * round trip with openid-client's DPoP handle: token endpoint, then a protected resource.
 */
import { randomBytes } from "node:crypto";
import { calculateThumbprint, generateKeyPair, generateProof, type KeyPair } from "dpop";
import { base64url, type CryptoKey, exportJWK, generateKeyPair as joseKeyPair, SignJWT } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateClient } from "../../src/broker/client-auth.js";
import {
  accessTokenHash,
  createNonceService,
  DPOP_ERRORS,
  DpopNonceError,
  type DpopOptions,
  dpopOAuthError,
  ERR_DPOP_ALG,
  ERR_DPOP_ATH,
  ERR_DPOP_HTM,
  ERR_DPOP_HTU,
  ERR_DPOP_IAT,
  ERR_DPOP_JWK,
  ERR_DPOP_MALFORMED,
  ERR_DPOP_MISSING,
  ERR_DPOP_MULTIPLE,
  ERR_DPOP_NONCE,
  ERR_DPOP_REPLAY,
  ERR_DPOP_SIGNATURE,
  ERR_DPOP_TYP,
  normalizeHtu,
  verifyDpopProof,
} from "../../src/broker/dpop.js";
import { memoryReplayCache } from "../../src/broker/replay.js";
import { isWritError } from "../../src/core/index.js";
import { codeOf, type Fixture, type Loopback, loadFixture, startLoopback } from "./fixture.js";

const URL_TOKEN = "https://writ.example/env/prod/token";

let keys: { es256: KeyPair; ed25519: KeyPair; rs256: KeyPair; ps256: KeyPair };
beforeAll(async () => {
  keys = {
    es256: await generateKeyPair("ES256"),
    ed25519: await generateKeyPair("Ed25519"),
    rs256: await generateKeyPair("RS256"),
    ps256: await generateKeyPair("PS256"),
  };
});

/** Real time: the dpop library stamps `iat` from the system clock. */
function options(extra: Partial<DpopOptions> = {}): DpopOptions {
  return { method: "POST", url: URL_TOKEN, replay: memoryReplayCache(), ...extra };
}

const shifted = (seconds: number) => () => new Date(Date.now() + seconds * 1000);
const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A proof signed with jose, for headers the dpop library would never produce. */
async function handMade(
  header: Record<string, unknown>,
  claims: Record<string, unknown> = {},
  signWith?: CryptoKey | Uint8Array,
): Promise<string> {
  const { privateKey, publicKey } = await joseKeyPair("ES256", { extractable: true });
  const payload = { jti: crypto.randomUUID(), htm: "POST", htu: URL_TOKEN, iat: nowSeconds(), ...claims };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: await exportJWK(publicKey), ...header } as {
      alg: string;
    })
    .sign(signWith ?? privateKey);
}

describe("verifyDpopProof accepts", () => {
  it.each(["es256", "ed25519", "rs256", "ps256"] as const)(
    "a proof from the dpop library (%s)",
    async (name) => {
      const pair = keys[name];
      const proof = await generateProof(pair, URL_TOKEN, "POST");
      const result = await verifyDpopProof(proof, options());
      expect(result.kind).toBe("dpop-proof");
      expect(result.jkt).toBe(await calculateThumbprint(pair.publicKey));
      expect(result.jwk).not.toHaveProperty("d");
      expect(typeof result.jti).toBe("string");
      expect(Math.abs(result.iat - nowSeconds())).toBeLessThanOrEqual(1);
    },
  );

  it("the header as a list holding one value", async () => {
    const proof = await generateProof(keys.es256, URL_TOKEN, "POST");
    expect((await verifyDpopProof([proof], options())).jkt).toBe(
      await calculateThumbprint(keys.es256.publicKey),
    );
  });

  it("a request URL with a query and fragment, and one differing only in normalization", async () => {
    const proof = await generateProof(keys.es256, URL_TOKEN, "POST");
    await verifyDpopProof(proof, options({ url: `${URL_TOKEN}?x=1&y=2#frag` }));
    const variants = [
      "HTTPS://Writ.EXAMPLE:443/env/prod/token",
      "https://writ.example/env/prod/%74oken",
      "https://writ.example/env/./prod/token",
    ];
    for (const url of variants) {
      await verifyDpopProof(await generateProof(keys.es256, URL_TOKEN, "POST"), options({ url }));
    }
    const withQuery = await generateProof(keys.es256, `${URL_TOKEN}?ignored=1`, "POST");
    await verifyDpopProof(withQuery, options());
  });

  it("an access token's proof carrying its ath", async () => {
    const proof = await generateProof(
      keys.ed25519,
      "https://api.example/things",
      "GET",
      undefined,
      "token-123",
    );
    const result = await verifyDpopProof(
      proof,
      options({ method: "GET", url: "https://api.example/things?page=2", accessToken: "token-123" }),
    );
    expect(result.jkt).toBe(await calculateThumbprint(keys.ed25519.publicKey));
  });

  it("iat at the edges of the window and the skew", async () => {
    const proof = () => generateProof(keys.es256, URL_TOKEN, "POST");
    await verifyDpopProof(await proof(), options({ clock: shifted(55) })); // 55 s old, window 60
    await verifyDpopProof(await proof(), options({ clock: shifted(-8) })); // 8 s ahead, skew 10
  });
});

describe("verifyDpopProof refuses", () => {
  it("a missing header and more than one value", async () => {
    for (const h of [undefined, null, "", "  ", []]) {
      expect(await codeOf(verifyDpopProof(h, options()))).toBe(ERR_DPOP_MISSING);
    }
    const a = await generateProof(keys.es256, URL_TOKEN, "POST");
    const b = await generateProof(keys.es256, URL_TOKEN, "POST");
    expect(await codeOf(verifyDpopProof([a, b], options()))).toBe(ERR_DPOP_MULTIPLE);
    expect(await codeOf(verifyDpopProof(`${a}, ${b}`, options()))).toBe(ERR_DPOP_MULTIPLE);
  });

  it("a replayed proof", async () => {
    const replay = memoryReplayCache();
    const proof = await generateProof(keys.es256, URL_TOKEN, "POST");
    await verifyDpopProof(proof, options({ replay }));
    expect(await codeOf(verifyDpopProof(proof, options({ replay })))).toBe(ERR_DPOP_REPLAY);
  });

  it("a proof for another path, host, scheme or port", async () => {
    for (const htu of [
      "https://writ.example/env/prod/introspect",
      "https://writ.example/env/dev/token",
      "https://writ.example/env/prod/token/",
      "https://evil.example/env/prod/token",
      "http://writ.example/env/prod/token",
      "https://writ.example:8443/env/prod/token",
      "not a url",
      "urn:x:writ.example",
    ]) {
      const proof = await generateProof(keys.es256, htu, "POST");
      expect(await codeOf(verifyDpopProof(proof, options())), htu).toBe(ERR_DPOP_HTU);
    }
  });

  it("a proof for another method", async () => {
    for (const htm of ["GET", "post"]) {
      const proof = await generateProof(keys.es256, URL_TOKEN, htm);
      expect(await codeOf(verifyDpopProof(proof, options()))).toBe(ERR_DPOP_HTM);
    }
  });

  it("a stale iat and a future iat", async () => {
    const stale = await generateProof(keys.es256, URL_TOKEN, "POST");
    expect(await codeOf(verifyDpopProof(stale, options({ clock: shifted(62) })))).toBe(ERR_DPOP_IAT);
    const ahead = await generateProof(keys.es256, URL_TOKEN, "POST");
    expect(await codeOf(verifyDpopProof(ahead, options({ clock: shifted(-12) })))).toBe(ERR_DPOP_IAT);
    const narrow = await generateProof(keys.es256, URL_TOKEN, "POST");
    expect(await codeOf(verifyDpopProof(narrow, options({ clock: shifted(10), iatWindowSeconds: 5 })))).toBe(
      ERR_DPOP_IAT,
    );
  });

  it("a missing or wrong ath when an access token is presented", async () => {
    const url = "https://api.example/things";
    const none = await generateProof(keys.es256, url, "GET");
    const opts = options({ method: "GET", url, accessToken: "token-123" });
    expect(await codeOf(verifyDpopProof(none, opts))).toBe(ERR_DPOP_ATH);
    const other = await generateProof(keys.es256, url, "GET", undefined, "token-456");
    expect(await codeOf(verifyDpopProof(other, opts))).toBe(ERR_DPOP_ATH);
    const garbage = await generateProof(keys.es256, url, "GET", undefined, undefined, { ath: 42 });
    expect(await codeOf(verifyDpopProof(garbage, opts))).toBe(ERR_DPOP_ATH);
  });

  it("a private key in the jwk header", async () => {
    const { privateKey } = await joseKeyPair("ES256", { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const proof = await handMade({ jwk: privateJwk }, {}, privateKey);
    expect(await codeOf(verifyDpopProof(proof, options()))).toBe(ERR_DPOP_JWK);
  });

  it("no jwk header, a jwk that does not fit alg, a symmetric jwk", async () => {
    expect(await codeOf(verifyDpopProof(await handMade({ jwk: undefined }), options()))).toBe(ERR_DPOP_JWK);
    expect(await codeOf(verifyDpopProof(await handMade({ jwk: "key" }), options()))).toBe(ERR_DPOP_JWK);
    const ed = await exportJWK(keys.ed25519.publicKey);
    expect(await codeOf(verifyDpopProof(await handMade({ jwk: ed }), options()))).toBe(ERR_DPOP_JWK);
    const ec = await exportJWK(keys.es256.publicKey);
    const claims = { jti: "j1", htm: "POST", htu: URL_TOKEN, iat: nowSeconds() };
    const rsaClaimed = `${enc({ alg: "RS256", typ: "dpop+jwt", jwk: ec })}.${enc(claims)}.c2ln`;
    expect(await codeOf(verifyDpopProof(rsaClaimed, options()))).toBe(ERR_DPOP_JWK);
    const oct = { kty: "oct", k: "c2VjcmV0" };
    expect(await codeOf(verifyDpopProof(await handMade({ jwk: oct }), options()))).toBe(ERR_DPOP_JWK);
  });

  it("a signature by another key than the jwk header's", async () => {
    const other = await exportJWK(keys.es256.publicKey);
    expect(await codeOf(verifyDpopProof(await handMade({ jwk: other }), options()))).toBe(ERR_DPOP_SIGNATURE);
  });

  it("HS256 and alg none", async () => {
    const secret = new TextEncoder().encode("a shared secret that is long enough for HS256!!");
    const hs = await handMade({ alg: "HS256" }, {}, secret);
    expect(await codeOf(verifyDpopProof(hs, options()))).toBe(ERR_DPOP_ALG);
    const jwk = await exportJWK(keys.es256.publicKey);
    const claims = { jti: "n1", htm: "POST", htu: URL_TOKEN, iat: nowSeconds() };
    const none = `${enc({ alg: "none", typ: "dpop+jwt", jwk })}.${enc(claims)}.`;
    expect(await codeOf(verifyDpopProof(none, options()))).toBe(ERR_DPOP_ALG);
  });

  it("typ JWT, or no typ", async () => {
    expect(await codeOf(verifyDpopProof(await handMade({ typ: "JWT" }), options()))).toBe(ERR_DPOP_TYP);
    expect(await codeOf(verifyDpopProof(await handMade({ typ: undefined }), options()))).toBe(ERR_DPOP_TYP);
    expect(await codeOf(verifyDpopProof(await handMade({ typ: "at+jwt" }), options()))).toBe(ERR_DPOP_TYP);
  });

  it("malformed proofs and missing claims", async () => {
    for (const bad of ["abc", "a.b.c", "a.b.c.d.e", "x".repeat(9000)]) {
      expect(await codeOf(verifyDpopProof(bad, options()))).toBe(ERR_DPOP_MALFORMED);
    }
    for (const missing of ["jti", "htm", "htu", "iat"]) {
      const proof = await handMade({}, { [missing]: undefined });
      expect(await codeOf(verifyDpopProof(proof, options())), missing).toBe(ERR_DPOP_MALFORMED);
    }
    const stringIat = await handMade({}, { iat: String(nowSeconds()) });
    expect(await codeOf(verifyDpopProof(stringIat, options()))).toBe(ERR_DPOP_MALFORMED);
  });

  it("with a TypeError when the caller misuses it", async () => {
    const proof = await generateProof(keys.es256, URL_TOKEN, "POST");
    await expect(verifyDpopProof(proof, options({ url: "/relative" }))).rejects.toThrow(TypeError);
    await expect(verifyDpopProof(proof, options({ requireNonce: true }))).rejects.toThrow(TypeError);
  });
});

describe("server nonces", () => {
  const T0 = Date.parse("2030-01-01T10:00:00.000Z"); // a multiple of 300 s
  const secret = randomBytes(32);
  const at = (seconds: number) => () => new Date(T0 + seconds * 1000);

  it("accept the current and the previous period's nonce, and nothing older", () => {
    const issued = createNonceService(secret, { clock: at(10) }).current();
    expect(createNonceService(secret, { clock: at(299) }).isValid(issued)).toBe(true); // same period
    expect(createNonceService(secret, { clock: at(300) }).isValid(issued)).toBe(true); // next period
    expect(createNonceService(secret, { clock: at(599) }).isValid(issued)).toBe(true);
    expect(createNonceService(secret, { clock: at(600) }).isValid(issued)).toBe(false); // two periods on
    expect(createNonceService(secret, { clock: at(-300) }).isValid(issued)).toBe(false); // a future nonce
  });

  it("refuse forged nonces and nonces of another secret", () => {
    const service = createNonceService(secret, { clock: at(10) });
    const good = service.current();
    const flipped = `${good.slice(0, -1)}${good.endsWith("A") ? "B" : "A"}`;
    for (const forged of [flipped, "", "x".repeat(good.length), `${good}=`, good.slice(1)]) {
      expect(service.isValid(forged), forged).toBe(false);
    }
    expect(service.isValid(42 as unknown as string)).toBe(false);
    const other = createNonceService(randomBytes(32), { clock: at(10) });
    expect(other.isValid(good)).toBe(false);
    expect(other.current()).not.toBe(good);
  });

  it("change with the period and honour lifetimeSeconds", () => {
    const a = createNonceService(secret, { clock: at(0), lifetimeSeconds: 60 }).current();
    expect(createNonceService(secret, { clock: at(59), lifetimeSeconds: 60 }).current()).toBe(a);
    expect(createNonceService(secret, { clock: at(60), lifetimeSeconds: 60 }).current()).not.toBe(a);
    expect(createNonceService(secret, { clock: at(120), lifetimeSeconds: 60 }).isValid(a)).toBe(false);
  });

  it("refuse a short secret", () => {
    expect(() => createNonceService(randomBytes(16))).toThrow(TypeError);
  });

  it("are required by verifyDpopProof when asked, with the fresh nonce in the error", async () => {
    const nonce = createNonceService(secret);
    const without = await generateProof(keys.es256, URL_TOKEN, "POST");
    const err = await verifyDpopProof(without, options({ nonce, requireNonce: true })).catch(
      (e: unknown) => e,
    );
    expect(isWritError(err, ERR_DPOP_NONCE)).toBe(true);
    expect(err).toBeInstanceOf(DpopNonceError);
    expect((err as DpopNonceError).nonce).toBe(nonce.current());

    const withNonce = await generateProof(keys.es256, URL_TOKEN, "POST", nonce.current());
    await verifyDpopProof(withNonce, options({ nonce, requireNonce: true }));

    const old = createNonceService(secret, { clock: shifted(-600) }).current();
    const stale = await generateProof(keys.es256, URL_TOKEN, "POST", old);
    expect(await codeOf(verifyDpopProof(stale, options({ nonce, requireNonce: true })))).toBe(ERR_DPOP_NONCE);
    // a nonce the server did not require is still checked when the proof carries one
    const forged = await generateProof(keys.es256, URL_TOKEN, "POST", "made-up");
    expect(await codeOf(verifyDpopProof(forged, options({ nonce })))).toBe(ERR_DPOP_NONCE);
    await verifyDpopProof(await generateProof(keys.es256, URL_TOKEN, "POST"), options({ nonce }));
  });
});

describe("DPoP errors on the wire", () => {
  it("map to invalid_dpop_proof, and the nonce code to use_dpop_nonce", () => {
    const codes = Object.keys(DPOP_ERRORS);
    expect(codes).toHaveLength(13);
    for (const code of codes) {
      expect(dpopOAuthError(code)).toEqual({
        error: code === ERR_DPOP_NONCE ? "use_dpop_nonce" : "invalid_dpop_proof",
        status: 400,
      });
    }
    expect(dpopOAuthError("ERR_CLIENT_ASSERTION_REPLAY")).toBeUndefined();
  });

  it("normalizes htu as RFC 3986 §6.2.2–6.2.3 says", () => {
    expect(normalizeHtu("HTTP://Example.COM:80")).toBe("http://example.com/");
    expect(normalizeHtu("https://example.com:443/a/../b/%7euser/%2f?q#f")).toBe(
      "https://example.com/b/~user/%2F",
    );
    expect(normalizeHtu("ftp://example.com/")).toBeUndefined();
    expect(accessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")).toBe(
      "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
    );
  });
});

describe("openid-client DPoP handle against a loopback token endpoint and resource", () => {
  let fx: Fixture;
  let server: Loopback;
  let issuer: string;
  const replay = memoryReplayCache();
  const nonce = createNonceService(randomBytes(32));
  const bound = new Map<string, string>(); // access token → jkt
  const refusals: string[] = [];
  let lastResourceProof: string | undefined;

  function refusal(err: unknown, resource: boolean) {
    if (!isWritError(err)) throw err;
    refusals.push(err.code);
    const wire = dpopOAuthError(err.code) ?? { error: "invalid_client", status: 401 };
    const headers: Record<string, string> = {};
    if (err instanceof DpopNonceError) headers["dpop-nonce"] = err.nonce;
    if (resource) headers["www-authenticate"] = `DPoP error="${wire.error}"`;
    return { status: resource ? 401 : wire.status, headers, json: { error: wire.error } };
  }

  beforeAll(async () => {
    fx = await loadFixture();
    server = await startLoopback(async (req) => {
      const url = `${server.origin}${req.path}`;
      const dpopHeader = req.headersDistinct.dpop;
      if (req.method === "POST" && req.path === "/env/prod/token") {
        try {
          const agent = await authenticateClient(new URLSearchParams(req.body), {
            config: fx.config,
            audiences: [issuer, `${issuer}/token`],
            replay,
          });
          const proof = await verifyDpopProof(dpopHeader, {
            method: req.method,
            url,
            replay,
            nonce,
            requireNonce: true,
          });
          const token = `at-${agent.agent.id}-${bound.size}`;
          bound.set(token, proof.jkt);
          return {
            status: 200,
            headers: { "dpop-nonce": nonce.current() },
            json: { access_token: token, token_type: "DPoP", expires_in: 60 },
          };
        } catch (err) {
          return refusal(err, false);
        }
      }
      if (req.path.startsWith("/resource")) {
        const auth = req.headers.authorization ?? "";
        const token = auth.startsWith("DPoP ") ? auth.slice(5) : "";
        try {
          lastResourceProof = dpopHeader?.[0];
          const proof = await verifyDpopProof(dpopHeader, {
            method: req.method,
            url,
            accessToken: token,
            replay,
            nonce,
            requireNonce: true,
          });
          if (bound.get(token) !== proof.jkt) return { status: 401, json: { error: "invalid_token" } };
          return { status: 200, json: { ok: true, jkt: proof.jkt } };
        } catch (err) {
          return refusal(err, true);
        }
      }
      return { status: 404, json: {} };
    });
    issuer = `${server.origin}/env/prod`;
  });
  afterAll(() => server.close());

  it("gets a DPoP-bound token through a nonce challenge and uses it at a resource", async () => {
    const config = new client.Configuration(
      { issuer, token_endpoint: `${issuer}/token` },
      "release-bot",
      {},
      client.PrivateKeyJwt({ key: fx.releaseBot.key, kid: fx.releaseBot.kid! }),
    );
    client.allowInsecureRequests(config);
    const pair = await client.randomDPoPKeyPair("ES256");
    const DPoP = client.getDPoPHandle(config, pair);
    const sameKeys = pair as unknown as KeyPair; // the dpop library's view of the same CryptoKeys
    const jkt = await calculateThumbprint(sameKeys.publicKey);

    const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe("dpop");
    expect(bound.get(tokens.access_token)).toBe(jkt);
    expect(refusals).toContain(ERR_DPOP_NONCE); // the first try had no nonce; openid-client retried

    const response = await client.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(`${server.origin}/resource/things?page=2`),
      "GET",
      undefined,
      undefined,
      { DPoP },
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, jkt });

    // the captured proof, replayed
    expect(
      await codeOf(
        verifyDpopProof(lastResourceProof, {
          method: "GET",
          url: `${server.origin}/resource/things`,
          accessToken: tokens.access_token,
          replay,
          nonce,
        }),
      ),
    ).toBe(ERR_DPOP_REPLAY);
    // and sent to another path
    const other = await generateProof(sameKeys, `${server.origin}/resource/other`, "GET", nonce.current());
    expect(
      await codeOf(
        verifyDpopProof(other, {
          method: "GET",
          url: `${server.origin}/resource/things`,
          accessToken: tokens.access_token,
          replay,
        }),
      ),
    ).toBe(ERR_DPOP_HTU);
  });
});
