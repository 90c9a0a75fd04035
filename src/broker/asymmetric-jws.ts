/**
 * What writ accepts in a JWS it did not sign itself (client assertions, DPoP proofs): a compact
 * serialization parsed strictly, an asymmetric algorithm from a short allowlist, and a public key
 * that fits the algorithm. Never `none`, never an HMAC: a shared secret proves nothing about who
 * signed.
 */
import { base64url, type CryptoKey, compactVerify, importJWK, type JWK } from "jose";

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

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(base64url.decode(part)));
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

// Keys registered in writ.yaml are imported once; the config's JWK objects are stable.
const imported = new WeakMap<object, Map<string, CryptoKey>>();

async function publicKey(jwk: Jwk, alg: AsymmetricAlgorithm, cache: boolean): Promise<CryptoKey> {
  const byAlg = cache ? imported.get(jwk) : undefined;
  const hit = byAlg?.get(alg);
  if (hit !== undefined) return hit;
  const key = (await importJWK(bareKey(jwk), alg)) as CryptoKey;
  if (cache) {
    const map = byAlg ?? new Map<string, CryptoKey>();
    map.set(alg, key);
    imported.set(jwk, map);
  }
  return key;
}

/**
 * Whether `token`'s signature verifies with `jwk` under `alg` (the caller has checked that the key
 * fits). Any failure — bad key material, an unknown `crit` header, a wrong signature — is false.
 * `cache` keeps the imported key for the lifetime of the `jwk` object.
 */
export async function verifiesWith(
  token: string,
  jwk: Jwk,
  alg: AsymmetricAlgorithm,
  cache = false,
): Promise<boolean> {
  try {
    const key = await publicKey(jwk, alg, cache);
    await compactVerify(token, key, { algorithms: [alg] });
    return true;
  } catch {
    return false;
  }
}
