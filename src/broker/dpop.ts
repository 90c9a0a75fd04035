/**
 * DPoP (RFC 9449): checking a proof of possession sent in the `DPoP` header, and the server nonces
 * that keep proofs fresh.
 *
 * `checkDpopProof` runs the checks of RFC 9449 §4.3 and resolves to the proof's key thumbprint
 * (`jkt`, RFC 7638): the token endpoint binds an issued token to it (`cnf.jkt`), a resource server
 * compares it with the token's. Every refusal is a `DpopRefused` it returns (`verifyDpopProof`
 * throws it as a `WritError`) with an `ERR_DPOP_*` code; `DPOP_ERRORS` maps each to
 * `invalid_dpop_proof` or `use_dpop_nonce`.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { JWK } from "jose";
import { q, WritError } from "../core/index.js";
import {
  bareKey,
  isAsymmetricAlgorithm,
  type Jwk,
  jwkThumbprint,
  keyMismatch,
  parseCompactJws,
  privateMembers,
  verifiesWithAsync,
} from "./asymmetric-jws.js";
import type { OAuthErrorMapping } from "./client-auth.js";
import type { ReplayCache } from "./replay.js";

/** The request has no `DPoP` header (or an empty one). */
export const ERR_DPOP_MISSING = "ERR_DPOP_MISSING";
/** More than one `DPoP` header value. */
export const ERR_DPOP_MULTIPLE = "ERR_DPOP_MULTIPLE";
/** Not a compact JWS with a JSON payload, or a required claim (`jti`, `htm`, `htu`, `iat`) missing or mistyped. */
export const ERR_DPOP_MALFORMED = "ERR_DPOP_MALFORMED";
/** The `typ` header is not `dpop+jwt`. */
export const ERR_DPOP_TYP = "ERR_DPOP_TYP";
/** `alg` is not one of the asymmetric algorithms writ accepts (never `none`, never `HS*`). */
export const ERR_DPOP_ALG = "ERR_DPOP_ALG";
/** The `jwk` header is missing, holds private key material, or does not fit `alg`. */
export const ERR_DPOP_JWK = "ERR_DPOP_JWK";
/** The signature does not verify with the `jwk` header. */
export const ERR_DPOP_SIGNATURE = "ERR_DPOP_SIGNATURE";
/** `htm` is not the request's method. */
export const ERR_DPOP_HTM = "ERR_DPOP_HTM";
/** `htu` is not the request's URL (query and fragment aside). */
export const ERR_DPOP_HTU = "ERR_DPOP_HTU";
/** `iat` lies outside the accepted window. */
export const ERR_DPOP_IAT = "ERR_DPOP_IAT";
/** The proof's `jti` was used before with the same key. */
export const ERR_DPOP_REPLAY = "ERR_DPOP_REPLAY";
/** An access token came with the proof and `ath` is missing or is not its hash. */
export const ERR_DPOP_ATH = "ERR_DPOP_ATH";
/** A server nonce is required and the proof has none, or a stale or forged one. */
export const ERR_DPOP_NONCE = "ERR_DPOP_NONCE";

export type DpopErrorCode =
  | typeof ERR_DPOP_MISSING
  | typeof ERR_DPOP_MULTIPLE
  | typeof ERR_DPOP_MALFORMED
  | typeof ERR_DPOP_TYP
  | typeof ERR_DPOP_ALG
  | typeof ERR_DPOP_JWK
  | typeof ERR_DPOP_SIGNATURE
  | typeof ERR_DPOP_HTM
  | typeof ERR_DPOP_HTU
  | typeof ERR_DPOP_IAT
  | typeof ERR_DPOP_REPLAY
  | typeof ERR_DPOP_ATH
  | typeof ERR_DPOP_NONCE;

const INVALID_PROOF: OAuthErrorMapping = { error: "invalid_dpop_proof", status: 400 };

/**
 * The OAuth error of each code at the token endpoint (RFC 9449 §5, HTTP 400). A resource server
 * answers the same `error` with 401 and `WWW-Authenticate: DPoP error="…"` (§7.1). With
 * `use_dpop_nonce`, send the fresh nonce (`DpopNonceError.nonce`) in a `DPoP-Nonce` header.
 */
export const DPOP_ERRORS: Readonly<Record<DpopErrorCode, OAuthErrorMapping>> = {
  [ERR_DPOP_MISSING]: INVALID_PROOF,
  [ERR_DPOP_MULTIPLE]: INVALID_PROOF,
  [ERR_DPOP_MALFORMED]: INVALID_PROOF,
  [ERR_DPOP_TYP]: INVALID_PROOF,
  [ERR_DPOP_ALG]: INVALID_PROOF,
  [ERR_DPOP_JWK]: INVALID_PROOF,
  [ERR_DPOP_SIGNATURE]: INVALID_PROOF,
  [ERR_DPOP_HTM]: INVALID_PROOF,
  [ERR_DPOP_HTU]: INVALID_PROOF,
  [ERR_DPOP_IAT]: INVALID_PROOF,
  [ERR_DPOP_REPLAY]: INVALID_PROOF,
  [ERR_DPOP_ATH]: INVALID_PROOF,
  [ERR_DPOP_NONCE]: { error: "use_dpop_nonce", status: 400 },
};

/** The OAuth error for a DPoP code, or undefined for any other code. */
export function dpopOAuthError(code: string): OAuthErrorMapping | undefined {
  return Object.hasOwn(DPOP_ERRORS, code) ? DPOP_ERRORS[code as DpopErrorCode] : undefined;
}

/** `ERR_DPOP_NONCE`, with the nonce the client should use next (for the `DPoP-Nonce` header). */
export class DpopNonceError extends WritError {
  readonly nonce: string;

  constructor(message: string, nonce: string) {
    super(ERR_DPOP_NONCE, message);
    this.nonce = nonce;
  }
}

/** The replay cache scope of DPoP proofs. */
export const DPOP_SCOPE = "dpop";

const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

// --- server nonces -------------------------------------------------------------------------------

export interface NonceService {
  /** The nonce to hand out now (in a `DPoP-Nonce` header). */
  current(): string;
  /** Whether `nonce` was handed out in the current or the previous period. */
  isValid(nonce: string): boolean;
}

export interface NonceServiceOptions {
  /** Length of a period (default 300): a nonce is accepted for one to two periods. */
  readonly lifetimeSeconds?: number | undefined;
  /** The server clock; default `new Date()`. */
  readonly clock?: (() => Date) | undefined;
}

/**
 * Stateless server nonces: the nonce of a period is an HMAC-SHA-256 of the period's number under
 * `secret`, so every server sharing the secret hands out and accepts the same nonces without
 * sharing state. A nonce of the current or the previous period is valid; comparison is
 * constant-time.
 */
export function createNonceService(secret: Uint8Array, options: NonceServiceOptions = {}): NonceService {
  if (!(secret instanceof Uint8Array) || secret.length < 32) {
    throw new TypeError("the nonce secret must be at least 32 bytes");
  }
  const key = Uint8Array.from(secret);
  const lifetime = options.lifetimeSeconds ?? 300;
  if (!Number.isSafeInteger(lifetime) || lifetime < 1)
    throw new TypeError("lifetimeSeconds must be a positive integer");
  const clock = options.clock ?? (() => new Date());
  const memo = new Map<number, Buffer>();

  const period = () => Math.floor(clock().getTime() / 1000 / lifetime);
  function nonceOf(n: number): Buffer {
    let value = memo.get(n);
    if (value === undefined) {
      value = Buffer.from(
        createHmac("sha256", key).update(`writ dpop nonce ${n}`).digest("base64url"),
        "ascii",
      );
      if (memo.size >= 4) memo.clear();
      memo.set(n, value);
    }
    return value;
  }

  return {
    current: () => nonceOf(period()).toString("ascii"),
    isValid(nonce) {
      if (typeof nonce !== "string") return false;
      const given = Buffer.from(nonce, "utf8");
      const now = period();
      let ok = false;
      for (const n of [now, now - 1]) {
        const expected = nonceOf(n);
        if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
      }
      return ok;
    },
  };
}

// --- proofs --------------------------------------------------------------------------------------

export interface DpopOptions {
  /** The request's HTTP method, as received (`POST`). */
  readonly method: string;
  /** The request's absolute URL as the client addressed it (the public URL, behind a proxy). */
  readonly url: string | URL;
  /** The access token presented with the proof (resource requests): `ath` must be its hash. */
  readonly accessToken?: string | undefined;
  readonly replay: ReplayCache;
  /** The server clock; default `new Date()`. */
  readonly clock?: (() => Date) | undefined;
  /** How old a proof's `iat` may be (default 60). */
  readonly iatWindowSeconds?: number | undefined;
  /** How far ahead of the server's clock `iat` may be (default 10). */
  readonly clockSkewSeconds?: number | undefined;
  /** Server nonces: a proof carrying `nonce` must carry a valid one. */
  readonly nonce?: NonceService | undefined;
  /** Refuse proofs without a valid nonce (needs `nonce`). */
  readonly requireNonce?: boolean | undefined;
}

export interface DpopProof {
  readonly kind: "dpop-proof";
  /** RFC 7638 SHA-256 thumbprint of the proof's key: the `cnf.jkt` a bound token carries. */
  readonly jkt: string;
  /** The proof's public key (its key-defining members only). */
  readonly jwk: Readonly<JWK>;
  /** `iat`, in seconds since the epoch. */
  readonly iat: number;
  readonly jti: string;
}

/**
 * A proof that does not verify: its `ERR_DPOP_*` code, what to say, and for `ERR_DPOP_NONCE` the
 * nonce to use next. Returned beside the proof, never thrown: a bad proof is an expected answer,
 * and a good one comes back as it is, with nothing allocated around it.
 */
export class DpopRefused {
  readonly code: DpopErrorCode;
  readonly message: string;
  /** `ERR_DPOP_NONCE`: the nonce the client should use next (the `DPoP-Nonce` header). */
  readonly nonce: string | undefined;

  constructor(code: DpopErrorCode, message: string, nonce?: string) {
    this.code = code;
    this.message = message;
    this.nonce = nonce;
  }
}

/** What a proof comes to: the proof, or why it is refused. */
export type DpopCheck = DpopProof | DpopRefused;

function refuse(code: DpopErrorCode, message: string): DpopRefused {
  return new DpopRefused(code, message);
}

const UNRESERVED = /[A-Za-z0-9._~-]/;

/**
 * A URL as RFC 9449 compares it: scheme, host and path, after syntax- and scheme-based
 * normalization (RFC 3986 §6.2.2–6.2.3): scheme and host lowercased, default port dropped, empty
 * path as `/`, dot segments resolved, percent-encodings uppercased and unreserved ones decoded.
 * Query and fragment are left out. Undefined for anything but an absolute http(s) URL.
 */
export function normalizeHtu(value: string | URL): string | undefined {
  if (typeof value !== "string" || value.length > MAX_NORMALIZED_LENGTH) return normalizeUrl(value);
  // the server's own URL and the `htu` of clients' proofs come back on every request
  if (normalized.has(value)) return normalized.get(value);
  const n = normalizeUrl(value);
  if (normalized.size >= MAX_NORMALIZED) normalized.clear();
  normalized.set(value, n);
  return n;
}

/** `normalizeHtu`'s answers by the text asked about; bounded, emptied when full. */
const normalized = new Map<string, string | undefined>();
const MAX_NORMALIZED = 1024;
/** Longer texts are normalised every time, not kept. */
const MAX_NORMALIZED_LENGTH = 2048;

function normalizeUrl(value: string | URL): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (m) => {
    const c = String.fromCharCode(Number.parseInt(m.slice(1), 16));
    return UNRESERVED.test(c) ? c : m.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

function typOk(typ: unknown): boolean {
  if (typeof typ !== "string") return false;
  const t = typ.toLowerCase();
  return t === "dpop+jwt" || t === "application/dpop+jwt";
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `ath`: base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash("sha256").update(accessToken, "ascii").digest("base64url");
}

function nonNegative(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback;
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`${what} must be a non-negative number`);
  return n;
}

/**
 * Checks a DPoP proof (RFC 9449 §4.3): one `DPoP` header value; a compact JWS typed `dpop+jwt`
 * under an allowed asymmetric algorithm; a public `jwk` header that fits the algorithm and
 * verifies the signature; `htm` = the method; `htu` = the URL without query and fragment; `iat`
 * inside the window; `ath` = the hash of the presented access token; a valid server nonce where
 * one is given or required; and a `jti` never seen before with this key (remembered until the
 * proof could no longer be accepted).
 *
 * `header` is the `DPoP` header as the server received it: a string (values joined with commas
 * count as several), or a list of values. The caller still compares `jkt` with a bound token's
 * `cnf.jkt`.
 */
export async function checkDpopProof(
  header: string | readonly string[] | null | undefined,
  options: DpopOptions,
): Promise<DpopCheck> {
  const window = nonNegative(options.iatWindowSeconds, 60, "iatWindowSeconds");
  const skew = nonNegative(options.clockSkewSeconds, 10, "clockSkewSeconds");
  if (options.requireNonce === true && options.nonce === undefined) {
    throw new TypeError("requireNonce needs a nonce service");
  }
  const target = normalizeHtu(options.url);
  if (target === undefined) throw new TypeError("url must be an absolute http(s) URL");
  const clock = options.clock ?? (() => new Date());

  const values = (typeof header === "string" ? [header] : (header ?? []))
    .map((v) => v.trim())
    .filter((v) => v);
  if (values.length === 0) return refuse(ERR_DPOP_MISSING, "the request has no `DPoP` proof");
  if (values.length > 1 || values[0]!.includes(","))
    return refuse(ERR_DPOP_MULTIPLE, "the request has more than one `DPoP` header");
  const proof = values[0]!;

  const parsed = parseCompactJws(proof, MAX_PROOF_LENGTH);
  if (!parsed.ok) return refuse(ERR_DPOP_MALFORMED, `the DPoP proof is malformed: ${parsed.problem}`);
  const { header: h, payload } = parsed;

  if (!typOk(h.typ))
    return refuse(ERR_DPOP_TYP, `the proof's \`typ\` is ${q(h.typ ?? "(missing)")}: expected \`dpop+jwt\``);
  const alg = h.alg;
  if (!isAsymmetricAlgorithm(alg)) {
    return refuse(
      ERR_DPOP_ALG,
      `algorithm ${q(alg ?? "(missing)")} is not accepted: use EdDSA (Ed25519), ES256, ES384, PS256 or RS256`,
    );
  }
  const jwk = h.jwk;
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) {
    return refuse(ERR_DPOP_JWK, "the proof has no `jwk` header");
  }
  const key = jwk as Jwk;
  const secret = privateMembers(key);
  if (secret.length > 0) {
    return refuse(
      ERR_DPOP_JWK,
      `the \`jwk\` header holds private key material (${secret.map((m) => q(m)).join(", ")}): send the public key only`,
    );
  }
  const mismatch = keyMismatch(key, alg);
  if (mismatch !== undefined)
    return refuse(ERR_DPOP_JWK, `the \`jwk\` header does not fit the proof: ${mismatch}`);
  if (!(await verifiesWithAsync(proof, key, alg))) {
    return refuse(ERR_DPOP_SIGNATURE, "the proof's signature does not verify with its `jwk`");
  }

  const { jti, htm, htu, iat } = payload;
  if (typeof jti !== "string" || jti === "" || jti.length > MAX_JTI_LENGTH) {
    return refuse(ERR_DPOP_MALFORMED, `the proof needs a \`jti\` of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  if (typeof htm !== "string") return refuse(ERR_DPOP_MALFORMED, "the proof has no `htm`");
  if (typeof htu !== "string") return refuse(ERR_DPOP_MALFORMED, "the proof has no `htu`");
  if (typeof iat !== "number" || !Number.isFinite(iat))
    return refuse(ERR_DPOP_MALFORMED, "the proof has no numeric `iat`");

  if (htm !== options.method) {
    return refuse(ERR_DPOP_HTM, `the proof is for method ${q(htm)}, the request is ${q(options.method)}`);
  }
  if (normalizeHtu(htu) !== target)
    return refuse(ERR_DPOP_HTU, `the proof is for ${q(htu)}, the request is for ${q(target)}`);

  if (options.nonce !== undefined) {
    const given = payload.nonce;
    if (given !== undefined || options.requireNonce === true) {
      if (typeof given !== "string" || !options.nonce.isValid(given)) {
        return new DpopRefused(
          ERR_DPOP_NONCE,
          given === undefined
            ? "this server requires a DPoP nonce: retry with the one in the `DPoP-Nonce` header"
            : "the proof's nonce is stale or unknown: retry with the one in the `DPoP-Nonce` header",
          options.nonce.current(),
        );
      }
    }
  }

  const nowSeconds = clock().getTime() / 1000;
  if (iat < nowSeconds - window) {
    return refuse(
      ERR_DPOP_IAT,
      `the proof was made ${Math.round(nowSeconds - iat)}s ago: at most ${window}s is accepted`,
    );
  }
  if (iat > nowSeconds + skew) {
    return refuse(
      ERR_DPOP_IAT,
      `the proof's \`iat\` is ${Math.round(iat - nowSeconds)}s ahead: check the client's clock`,
    );
  }

  if (options.accessToken !== undefined) {
    const ath = payload.ath;
    if (typeof ath !== "string")
      return refuse(ERR_DPOP_ATH, "the proof comes with an access token but has no `ath`");
    if (!sameText(ath, accessTokenHash(options.accessToken))) {
      return refuse(ERR_DPOP_ATH, "the proof's `ath` is not the hash of the access token presented");
    }
  }

  const publicJwk = bareKey(key);
  const jkt = jwkThumbprint(publicJwk);
  // Acceptable while iat >= now − window: remember it until then, with a second to spare.
  const expiresAt = new Date((iat + window + 1) * 1000);
  if (!(await options.replay.remember(DPOP_SCOPE, `${jkt}:${jti}`, expiresAt))) {
    return refuse(ERR_DPOP_REPLAY, `proof ${q(jti)} was already used`);
  }
  return { kind: "dpop-proof", jkt, jwk: publicJwk, iat, jti };
}

/**
 * `checkDpopProof` for callers that want an exception: the proof, or a `WritError` with the
 * refusal's `ERR_DPOP_*` code thrown (a `DpopNonceError`, carrying the next nonce, for `ERR_DPOP_NONCE`).
 */
export async function verifyDpopProof(
  header: string | readonly string[] | null | undefined,
  options: DpopOptions,
): Promise<DpopProof> {
  const checked = await checkDpopProof(header, options);
  if (!(checked instanceof DpopRefused)) return checked;
  if (checked.nonce !== undefined) throw new DpopNonceError(checked.message, checked.nonce);
  throw new WritError(checked.code, checked.message);
}
