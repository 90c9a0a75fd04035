/**
 * The agent's signing key for `private_key_jwt` (RFC 7523): a private JWK (object or JSON text;
 * members starting with `_` are comments, as in the quickstart's key files) imported once into a
 * non-extractable WebCrypto key, or a `CryptoKey` the caller already holds.
 */
import { type JsonWebKey, webcrypto } from "node:crypto";
import { q, WritError } from "../core/errors.js";
import { ERR_CLIENT_KEY } from "./errors.js";

/** A private JSON Web Key (RFC 7517): `d` present. */
export interface PrivateJwk {
  readonly kty: string;
  readonly d: string;
  readonly kid?: string;
  readonly crv?: string;
  readonly alg?: string;
  readonly [member: string]: unknown;
}

/** What `createWritClient({ key })` takes. */
export type AgentKeyInput =
  | PrivateJwk
  | string
  | CryptoKey
  | { readonly key: CryptoKey; readonly kid?: string };

export interface AgentSigningKey {
  readonly key: CryptoKey;
  readonly kid?: string;
}

type ImportAlgorithm = Parameters<typeof webcrypto.subtle.importKey>[2];

/** The WebCrypto algorithm a JWK signs with (the JWS `alg` follows from it). */
function algorithmOf(jwk: Record<string, unknown>): ImportAlgorithm | undefined {
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return { name: "Ed25519" };
  if (jwk.kty === "EC" && (jwk.crv === "P-256" || jwk.crv === "P-384"))
    return { name: "ECDSA", namedCurve: jwk.crv };
  if (jwk.kty === "RSA")
    return jwk.alg === "PS256"
      ? { name: "RSA-PSS", hash: "SHA-256" }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  return undefined;
}

type CryptoKey = webcrypto.CryptoKey;

/** The global `CryptoKey` class (Node 20 does not export it from `node:crypto`). */
const CryptoKeyClass = (globalThis as unknown as { CryptoKey: abstract new () => CryptoKey }).CryptoKey;
const isCryptoKey = (v: unknown): v is CryptoKey => v instanceof CryptoKeyClass;

export async function importAgentKey(input: AgentKeyInput): Promise<AgentSigningKey> {
  if (isCryptoKey(input)) return { key: input };
  if (typeof input === "object" && input !== null && "key" in input && isCryptoKey(input.key))
    return input.kid === undefined ? { key: input.key } : { key: input.key, kid: input.kid };
  let jwk: unknown = input;
  if (typeof input === "string") {
    try {
      jwk = JSON.parse(input);
    } catch {
      throw new WritError(ERR_CLIENT_KEY, "the agent key is not JSON (expected a private JWK)");
    }
  }
  if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk))
    throw new WritError(ERR_CLIENT_KEY, "the agent key is not a JWK object");
  const clean = Object.fromEntries(Object.entries(jwk).filter(([k]) => !k.startsWith("_")));
  if (clean.d === undefined)
    throw new WritError(ERR_CLIENT_KEY, "the agent key is a public key: give the private JWK");
  const algorithm = algorithmOf(clean);
  if (algorithm === undefined)
    throw new WritError(
      ERR_CLIENT_KEY,
      `the agent key's type ${q(`${String(clean.kty)}/${String(clean.crv ?? "")}`)} is not supported: Ed25519, P-256, P-384 or RSA`,
    );
  // WebCrypto checks `alg` against the algorithm and `key_ops` against the use; the JWS alg is
  // chosen from the algorithm, so neither is needed here
  const { alg: _alg, key_ops: _ops, use: _use, ...material } = clean;
  let key: CryptoKey;
  try {
    key = await webcrypto.subtle.importKey("jwk", material as JsonWebKey, algorithm, false, ["sign"]);
  } catch (err) {
    throw new WritError(
      ERR_CLIENT_KEY,
      `the agent key is not a usable private JWK: ${(err as Error).message}`,
    );
  }
  return typeof clean.kid === "string" ? { key, kid: clean.kid } : { key };
}
