/**
 * What writ accepts in a JWS it did not sign itself (client assertions, DPoP proofs): a compact
 * serialization parsed strictly, an asymmetric algorithm from a short allowlist, and a public key
 * that fits the algorithm. Never `none`, never an HMAC: a shared secret proves nothing about who
 * signed.
 */
import { constants, createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import type { JWK } from "jose";

/**
 * The algorithms writ verifies. `Ed25519` is the fully specified name (RFC 9864) for what `EdDSA`
 * means with an Ed25519 key; current clients (openid-client, dpop) send it.
 */
export const ASYMMETRIC_ALGORITHMS = ["EdDSA", "Ed25519", "ES256", "ES384", "PS256", "RS256"] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export function isAsymmetricAlgorithm(alg: unknown): alg is AsymmetricAlgorithm {
  return typeof alg === "string" && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg);
}

/** Members that only a private (or symmetric) JWK has (RFC 7518 §6). */
export const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;

export type Jwk = Readonly<Record<string, unknown>>;

const KEY_FOR: Readonly<Record<AsymmetricAlgorithm, { kty: string; crv?: string }>> = {
  EdDSA: { kty: "OKP", crv: "Ed25519" },
  Ed25519: { kty: "OKP", crv: "Ed25519" },
  ES256: { kty: "EC", crv: "P-256" },
  ES384: { kty: "EC", crv: "P-384" },
  PS256: { kty: "RSA" },
  RS256: { kty: "RSA" },
};

function sameAlgorithm(a: string, b: string): boolean {
  const ed = (x: string) => x === "EdDSA" || x === "Ed25519";
  return a === b || (ed(a) && ed(b));
}

/** Why `jwk` cannot verify `alg` (a message fragment), or undefined when it can. */
export function keyMismatch(jwk: Jwk, alg: AsymmetricAlgorithm): string | undefined {
  const want = KEY_FOR[alg];
  if (jwk.kty !== want.kty) return `a key of type \`${String(jwk.kty)}\` cannot verify \`${alg}\``;
  if (want.crv !== undefined && jwk.crv !== want.crv) {
    return `a key on curve \`${String(jwk.crv)}\` cannot verify \`${alg}\``;
  }
  if (typeof jwk.alg === "string" && !sameAlgorithm(jwk.alg, alg)) {
    return `the key is for \`${jwk.alg}\`, not \`${alg}\``;
  }
  if (jwk.use !== undefined && jwk.use !== "sig")
    return `the key's use is \`${String(jwk.use)}\`, not \`sig\``;
  if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes("verify"))
    return "the key's key_ops exclude `verify`";
  return undefined;
}

/** Names the private members `jwk` holds (empty for a public key). */
export function privateMembers(jwk: Jwk): string[] {
  return PRIVATE_JWK_MEMBERS.filter((m) => m in jwk);
}

/** The members that define a public key, nothing else (no `alg`, `use`, `key_ops`, `ext`). */
export function bareKey(jwk: Jwk): JWK {
  const out: Record<string, unknown> = {};
  for (const m of ["kty", "crv", "x", "y", "n", "e"]) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out as JWK;
}

export type ParsedJws =
  | {
      readonly ok: true;
      readonly header: Readonly<Record<string, unknown>>;
      readonly payload: Readonly<Record<string, unknown>>;
    }
  | { readonly ok: false; readonly problem: string };

const B64URL = /^[A-Za-z0-9_-]+$/;

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The JSON in a base64url part (its characters already checked), or undefined. A length no
 * encoding makes is refused, as a strict decoder refuses it; Node's decoder would drop the
 * dangling character instead.
 */
function decodeJson(part: string): unknown {
  if (impossibleBase64Length(part)) return undefined;
  try {
    return JSON.parse(STRICT_UTF8.decode(Buffer.from(part, "base64url")));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Splits a compact JWS with a JSON object payload, without verifying it. Refuses anything else: a
 * JWE, a detached or empty payload, an unsigned token (empty signature), text too long.
 */
export function parseCompactJws(token: string, maxLength: number): ParsedJws {
  if (token.length > maxLength) return { ok: false, problem: `longer than ${maxLength} characters` };
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, problem: "not a compact JWS (three dot-separated parts)" };
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(h) || !B64URL.test(p)) return { ok: false, problem: "a part is not base64url" };
  if (s !== "" && !B64URL.test(s)) return { ok: false, problem: "the signature is not base64url" };
  const header = decodeJson(h);
  if (!isObject(header)) return { ok: false, problem: "the protected header is not a JSON object" };
  const payload = decodeJson(p);
  if (!isObject(payload)) return { ok: false, problem: "the payload is not a JSON object" };
  return { ok: true, header, payload };
}

/** How each algorithm verifies with `node:crypto` (RFC 7518 §3). */
const VERIFY: Readonly<
  Record<AsymmetricAlgorithm, { hash: string | null; options: Record<string, unknown>; rsa?: true }>
> = {
  EdDSA: { hash: null, options: {} },
  Ed25519: { hash: null, options: {} },
  ES256: { hash: "sha256", options: { dsaEncoding: "ieee-p1363" } },
  ES384: { hash: "sha384", options: { dsaEncoding: "ieee-p1363" } },
  PS256: { hash: "sha256", options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, rsa: true },
  RS256: { hash: "sha256", options: { padding: constants.RSA_PKCS1_PADDING }, rsa: true },
};

/** RSA keys shorter than this verify nothing (RFC 7518 §3.3, §3.5). */
const MIN_RSA_BITS = 2048;

/**
 * Public keys by their key-defining members, imported once: the agents' registered keys and the
 * DPoP keys clients reuse across proofs. Bounded: emptied when full (a client inventing a key per
 * proof only costs itself an import).
 */
const imported = new Map<string, KeyObject | null>();
const MAX_IMPORTED = 1024;

function publicKeyObject(jwk: Jwk): KeyObject | null {
  const bare = bareKey(jwk);
  const id = JSON.stringify(bare);
  const hit = imported.get(id);
  if (hit !== undefined) return hit;
  let key: KeyObject | null;
  try {
    key = createPublicKey({ key: bare as import("node:crypto").JsonWebKey, format: "jwk" });
  } catch {
    key = null;
  }
  if (imported.size >= MAX_IMPORTED) imported.clear();
  imported.set(id, key);
  return key;
}

/** Whether the protected header's `crit` is one a JWS library may accept: absent, or `b64` alone. */
function critAcceptable(header: Readonly<Record<string, unknown>>): boolean {
  const crit = header.crit;
  if (crit === undefined) return true;
  if (!Array.isArray(crit) || crit.length === 0) return false;
  for (const name of crit) {
    if (name !== "b64" || header.b64 === undefined) return false;
  }
  return typeof header.b64 === "boolean";
}

/** A base64url text whose length no encoding can produce (the forgiving decoder's only refusal). */
export function impossibleBase64Length(text: string): boolean {
  return text.length % 4 === 1;
}

/** What a signature check needs, once the token's form, header and key have passed. */
interface SignatureCheck {
  readonly hash: string | null;
  readonly key: { key: KeyObject } & Record<string, unknown>;
  readonly data: Buffer;
  readonly signature: Buffer;
}

/** The signature check of `token` under `jwk` and `alg`, or false when it cannot verify anyway. */
function signatureCheck(token: string, jwk: Jwk, alg: AsymmetricAlgorithm): SignatureCheck | false {
  const parts = token.split(".");
  if (parts.length !== 3) return false;
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(h) || impossibleBase64Length(h) || impossibleBase64Length(s)) return false;
  if (s !== "" && !B64URL.test(s)) return false;
  const header = decodeJson(h);
  if (!isObject(header) || header.alg !== alg || !critAcceptable(header)) return false;
  // a base64url payload is decoded after the signature holds, and one no encoding makes is refused
  const encoded = !(Array.isArray(header.crit) && header.b64 === false);
  if (encoded && (impossibleBase64Length(p) || (p !== "" && !B64URL.test(p)))) return false;
  const key = publicKeyObject(jwk);
  if (key === null) return false;
  const how = VERIFY[alg];
  if (how.rsa && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return false;
  return {
    hash: how.hash,
    key: { key, ...how.options },
    data: Buffer.from(`${h}.${p}`, "ascii"),
    signature: Buffer.from(s, "base64url"),
  };
}

/**
 * Whether `token` (a compact JWS `parseCompactJws` accepted) verifies with `jwk` under `alg` (the
 * caller has checked that the key fits). Any failure — bad key material, an RSA key under 2048 bits, an unknown `crit` header, a
 * wrong signature — is false. Synchronous `node:crypto` on a cached key object; the answer is the
 * one a JOSE library gives (test/broker/jws-node.test.ts compares them).
 */
export function verifiesWith(token: string, jwk: Jwk, alg: AsymmetricAlgorithm): boolean {
  const check = signatureCheck(token, jwk, alg);
  if (check === false) return false;
  try {
    return verify(check.hash, check.data, check.key, check.signature);
  } catch {
    return false;
  }
}

/**
 * `verifiesWith`, the signature checked on libuv's thread pool under load: the same answer, while
 * the event loop serves other requests (a signature is most of a token request's CPU).
 */
export function verifiesWithAsync(token: string, jwk: Jwk, alg: AsymmetricAlgorithm): Promise<boolean> {
  const check = signatureCheck(token, jwk, alg);
  if (check === false) return Promise.resolve(false);
  return verifyOffThread(check.hash, check.data, check.key, check.signature);
}

/**
 * Signature jobs on libuv's thread pool now. With none there, no other request is waiting for a
 * signature: the hop to the pool and back (two thread wake-ups, 0.1–0.3 ms on a small VM, more
 * than the signature's own 30–80 µs) would be most of this one's time, so it runs on the event
 * loop. Under load there are nearly always some, and the pool takes the next one too, while the
 * loop serves other requests — which is what the pool is for.
 */
let pooled = 0;

/** Whether a signature job now runs on the event loop (see `pooled`). */
export const signsInline = (): boolean => pooled === 0;

/** `fn` on the thread pool: its callback-taking form, counted while it runs there. */
export function onPool<T>(start: (done: (err: Error | null, value: T) => void) => void): Promise<T> {
  pooled++;
  return new Promise<T>((resolve, reject) => {
    try {
      start((err, value) => {
        pooled--;
        if (err) reject(err);
        else resolve(value);
      });
    } catch (err) {
      pooled--;
      reject(err);
    }
  });
}

/**
 * `crypto.verify`, on the thread pool when others are there, else at once (see `pooled`); any
 * failure is false.
 */
export function verifyOffThread(
  hash: string | null,
  data: Buffer,
  key: KeyObject | ({ key: KeyObject } & Record<string, unknown>),
  signature: Buffer,
): Promise<boolean> {
  if (signsInline()) {
    try {
      return Promise.resolve(verify(hash, data, key as KeyObject, signature));
    } catch {
      return Promise.resolve(false);
    }
  }
  return onPool<boolean>((done) => verify(hash, data, key as KeyObject, signature, done)).catch(() => false);
}

/** RFC 7638 JWK thumbprint, SHA-256, base64url: the required members in lexicographic order. */
export function jwkThumbprint(jwk: Jwk): string {
  const members =
    jwk.kty === "OKP"
      ? ["crv", "kty", "x"]
      : jwk.kty === "EC"
        ? ["crv", "kty", "x", "y"]
        : jwk.kty === "RSA"
          ? ["e", "kty", "n"]
          : undefined;
  if (members === undefined) throw new TypeError(`jwk thumbprint: unsupported key type ${String(jwk.kty)}`);
  const picked: Record<string, string> = {};
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== "string" || v === "") throw new TypeError(`jwk thumbprint: member \`${m}\` missing`);
    picked[m] = v;
  }
  const input = JSON.stringify(picked);
  const hit = thumbprints.get(input);
  if (hit !== undefined) return hit;
  const thumbprint = createHash("sha256").update(input).digest("base64url");
  if (thumbprints.size >= MAX_IMPORTED) thumbprints.clear();
  thumbprints.set(input, thumbprint);
  return thumbprint;
}

/**
 * Thumbprints by the members they hash: the agents' keys and the DPoP keys clients reuse across
 * proofs come back on every request. Bounded like the imported keys.
 */
const thumbprints = new Map<string, string>();
