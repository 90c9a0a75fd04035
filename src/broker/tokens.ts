/**
 * Access tokens: RFC 9068 JWTs (`typ: at+jwt`) signed with the environment's Ed25519 key, which a
 * resource server verifies offline against the environment's JWKS.
 *
 * Minting refuses (`ERR_TOKEN_KEY_LIFE`) a token that would outlive the key that signs it rather
 * than capping it silently: the issuer computes the effective TTL with the key's `signUntil` as one
 * of its bounds (see `maxExpiry`), so the response can name the bound that applied.
 *
 * Verification takes keys from one environment only, so a token minted for `dev` fails in `prod`
 * with `ERR_TOKEN_KEY` even though its kid is a real key. Each refusal carries its own code; no
 * message ever contains the token.
 */
import { type KeyObject, randomBytes, sign } from "node:crypto";
import { q, WritError } from "../core/index.js";
import { impossibleBase64Length, onPool, signsInline, verifyOffThread } from "./asymmetric-jws.js";
import type { BrokerErrorCode } from "./codes.js";
import type { EnvironmentKeys, SigningKey, VerificationKey } from "./keys.js";

/** Not a compact JWS, or a claim missing or of the wrong type. */
export const ERR_TOKEN_MALFORMED = "ERR_TOKEN_MALFORMED";
/** The header's `typ` is not `at+jwt`. */
export const ERR_TOKEN_TYPE = "ERR_TOKEN_TYPE";
/** The header's `alg` is not `EdDSA` (`none` and HMAC included). */
export const ERR_TOKEN_ALG = "ERR_TOKEN_ALG";
/** No published key of this environment has the token's `kid`. */
export const ERR_TOKEN_KEY = "ERR_TOKEN_KEY";
/** The signature does not verify: the token was altered or signed with another key. */
export const ERR_TOKEN_SIGNATURE = "ERR_TOKEN_SIGNATURE";
/** `exp` has passed. */
export const ERR_TOKEN_EXPIRED = "ERR_TOKEN_EXPIRED";
/** `nbf` or `iat` is in the future. */
export const ERR_TOKEN_NOT_YET_VALID = "ERR_TOKEN_NOT_YET_VALID";
/** `iss` is not this environment's issuer. */
export const ERR_TOKEN_ISSUER = "ERR_TOKEN_ISSUER";
/** `aud` does not name the expected audience. */
export const ERR_TOKEN_AUDIENCE = "ERR_TOKEN_AUDIENCE";
/**
 * Minting: `exp` is after the signing key's `signUntil`, or the key no longer signs. Verifying: the
 * token claims to be issued after its key stopped signing, or to expire after its key's publication.
 */
export const ERR_TOKEN_KEY_LIFE = "ERR_TOKEN_KEY_LIFE";

/** One RFC 9396 authorization details object. */
export interface AuthorizationDetail {
  readonly type: string;
  readonly [member: string]: unknown;
}

/** An `act` claim: the current actor, and the chain of prior actors nested below it. */
export interface Actor {
  readonly sub: string;
  readonly act?: Actor;
}

/** The deepest `act` chain a token may carry (delegation depths are far below it). */
const MAX_ACT_DEPTH = 16;

/** Whether `v` is an `act` claim: `{ sub, act? }`, nested at most `MAX_ACT_DEPTH` deep. */
function isActor(v: unknown, depth = 0): v is Actor {
  if (depth >= MAX_ACT_DEPTH || !isObject(v) || typeof v.sub !== "string") return false;
  return v.act === undefined || isActor(v.act, depth + 1);
}

/** An `act` claim with only its members, in a fixed order. */
function copyActor(a: Actor): Actor {
  return a.act === undefined ? { sub: a.sub } : { sub: a.sub, act: copyActor(a.act) };
}

/** The claims of a writ access token (RFC 9068 §2.2, RFC 8693 `act`, RFC 9449 `cnf`, RFC 9396). */
export interface AccessTokenClaims {
  readonly iss: string;
  /** The principal: the sponsor when there is one, else the agent. */
  readonly sub: string;
  readonly aud: string | readonly string[];
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly iat: number;
  readonly nbf?: number;
  readonly jti: string;
  /** The agent (the OAuth client) the token was issued to. */
  readonly client_id: string;
  readonly scope?: string;
  /**
   * The actor (RFC 8693 §4.1): the agent acting for the sponsor in `sub`. A delegated writ nests the
   * prior actors (§4.4): `{ sub: sub-agent, act: { sub: its parent's agent, … } }`.
   */
  readonly act?: Actor;
  /** Sender binding (RFC 9449 §6.1): the SHA-256 thumbprint of the DPoP key. */
  readonly cnf?: { readonly jkt: string };
  readonly authorization_details?: readonly AuthorizationDetail[];
  /** The writ id. */
  readonly writ?: string;
}

/** What the issuer supplies: `iat` defaults to now, `jti` to 128 random bits. */
export type AccessTokenInput = Omit<AccessTokenClaims, "iat" | "jti"> & {
  readonly iat?: number;
  readonly jti?: string;
};

export interface MintOptions {
  readonly clock?: (() => Date) | undefined;
}

const seconds = (at: Date): number => Math.floor(at.getTime() / 1000);

/** The latest `exp` a token signed by `key` may carry: its signUntil, in seconds. */
export function maxExpiry(key: Pick<SigningKey, "signUntil">): number {
  return seconds(key.signUntil);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkInput(claims: AccessTokenInput, iat: number): void {
  for (const name of ["iss", "sub", "client_id"] as const) {
    if (typeof claims[name] !== "string" || claims[name].length === 0) {
      throw new TypeError(`access token: \`${name}\` must be a non-empty string`);
    }
  }
  const aud = claims.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== "string" || a.length === 0)) {
    throw new TypeError("access token: `aud` must be a non-empty string or array of strings");
  }
  for (const name of ["exp", "nbf"] as const) {
    const value = claims[name];
    if (value !== undefined && !Number.isSafeInteger(value)) {
      throw new TypeError(`access token: \`${name}\` must be whole seconds`);
    }
  }
  if (!Number.isSafeInteger(iat)) throw new TypeError("access token: `iat` must be whole seconds");
  if (claims.exp <= iat) throw new TypeError("access token: `exp` must be after `iat`");
  if (claims.nbf !== undefined && claims.nbf >= claims.exp) {
    throw new TypeError("access token: `nbf` must be before `exp`");
  }
  if (claims.act !== undefined && !isActor(claims.act)) {
    throw new TypeError("access token: `act` must be `{ sub, act? }`");
  }
  if (claims.cnf !== undefined && (!isObject(claims.cnf) || typeof claims.cnf.jkt !== "string")) {
    throw new TypeError("access token: `cnf` must be `{ jkt }`");
  }
  const details = claims.authorization_details;
  if (
    details !== undefined &&
    (!Array.isArray(details) || details.some((d) => typeof d?.type !== "string"))
  ) {
    throw new TypeError("access token: `authorization_details` must be an array of objects with a `type`");
  }
}

/**
 * Signs an RFC 9068 access token with `key`. Refuses (`ERR_TOKEN_KEY_LIFE`) an `exp` after the key's
 * signUntil. `iss` must be the key's environment's issuer (`…/env/<env>`): a key signs for its
 * environment only.
 */
export async function mintAccessToken(
  key: SigningKey,
  claims: AccessTokenInput,
  opts: MintOptions = {},
): Promise<string> {
  const now = (opts.clock ?? (() => new Date()))();
  const iat = claims.iat ?? seconds(now);
  checkInput(claims, iat);
  if (!claims.iss.endsWith(`/env/${key.env}`)) {
    throw new TypeError(
      `access token: \`iss\` ${q(claims.iss)} is not the issuer of environment ${q(key.env)}`,
    );
  }
  const limit = maxExpiry(key);
  if (iat >= limit) {
    throw new WritError(
      ERR_TOKEN_KEY_LIFE,
      `signing key ${q(key.kid)} of ${q(key.env)} stopped signing at ${key.signUntil.toISOString()}`,
    );
  }
  if (claims.exp > limit) {
    throw new WritError(
      ERR_TOKEN_KEY_LIFE,
      `exp ${new Date(claims.exp * 1000).toISOString()} is after the end of signing key ${q(key.kid)}'s life (${key.signUntil.toISOString()}): bound the ttl by the key`,
    );
  }
  // Claims in a fixed order, and only the ones the type names.
  const payload: Record<string, unknown> = {
    iss: claims.iss,
    sub: claims.sub,
    aud: typeof claims.aud === "string" ? claims.aud : [...claims.aud],
    exp: claims.exp,
    iat,
    ...(claims.nbf === undefined ? {} : { nbf: claims.nbf }),
    jti: claims.jti ?? randomBytes(16).toString("base64url"),
    client_id: claims.client_id,
    ...(claims.scope === undefined ? {} : { scope: claims.scope }),
    ...(claims.act === undefined ? {} : { act: copyActor(claims.act) }),
    ...(claims.cnf === undefined ? {} : { cnf: { jkt: claims.cnf.jkt } }),
    ...(claims.authorization_details === undefined
      ? {}
      : { authorization_details: claims.authorization_details }),
    ...(claims.writ === undefined ? {} : { writ: claims.writ }),
  };
  // Ed25519 is deterministic: the same bytes as any JOSE library signs (one `node:crypto` call),
  // signed on libuv's thread pool under load, so the event loop serves other requests meanwhile
  const text = `${base64urlJson({ alg: "EdDSA", typ: "at+jwt", kid: key.kid })}.${base64urlJson(payload)}`;
  const input = Buffer.from(text, "ascii");
  const signature = signsInline()
    ? sign(null, input, key.privateKey)
    : await onPool<Buffer>((done) => sign(null, input, key.privateKey, done));
  return `${text}.${signature.toString("base64url")}`;
}

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

export interface VerifyOptions {
  /** The environment whose keys may have signed the token; no other environment's are consulted. */
  readonly env: string;
  /** The environment's issuer, which `iss` must equal. */
  readonly issuer: string;
  /** The key lookup: `environmentKeys(store).verificationKey` or anything with its shape. */
  readonly keys: Pick<EnvironmentKeys, "verificationKey">;
  /** When given, `aud` must name it. */
  readonly audience?: string | undefined;
  readonly clock?: (() => Date) | undefined;
  /** Leeway for `exp`, `nbf` and `iat` (default 0: the broker verifies tokens its own clock made). */
  readonly maxClockSkewSeconds?: number | undefined;
}

/**
 * Room for a token signed while another process rotated the key (its signer read the key just
 * before the rotation committed): its `iat` or `exp` may pass the retired key's dates by that long.
 */
const ROTATION_LEEWAY_SECONDS = 5;

/** Bounds the size of what is parsed: a token is a few hundred bytes plus its authorization details. */
const MAX_TOKEN_LENGTH = 64 * 1024;

/**
 * A token that does not verify: its `ERR_TOKEN_*` code and what to say. Returned beside the claims,
 * never thrown: a bad token is an expected answer, and the claims of a good one come back as they
 * are, with nothing allocated around them (the token endpoint verifies one per exchange).
 */
export class TokenRefused {
  readonly code: BrokerErrorCode;
  readonly message: string;
  readonly cause: unknown;

  constructor(code: BrokerErrorCode, message: string, cause?: unknown) {
    this.code = code;
    this.message = message;
    this.cause = cause;
  }
}

/** What a token comes to: its claims, or why it is refused. */
export type TokenCheck = AccessTokenClaims | TokenRefused;

function refuse(code: BrokerErrorCode, message: string, cause?: unknown): TokenRefused {
  return new TokenRefused(code, `access token refused: ${message}`, cause);
}

function isAtJwt(typ: unknown): boolean {
  if (typeof typ !== "string") return false;
  const t = typ.toLowerCase();
  return t === "at+jwt" || t === "application/at+jwt";
}

function checkClaims(p: Record<string, unknown>): TokenCheck {
  for (const name of ["iss", "sub", "jti", "client_id"]) {
    if (typeof p[name] !== "string")
      return refuse(ERR_TOKEN_MALFORMED, `claim \`${name}\` missing or not a string`);
  }
  for (const name of ["exp", "iat"]) {
    if (typeof p[name] !== "number")
      return refuse(ERR_TOKEN_MALFORMED, `claim \`${name}\` missing or not a number`);
  }
  const aud = p.aud;
  if (!(typeof aud === "string" || (Array.isArray(aud) && aud.every((a) => typeof a === "string")))) {
    return refuse(ERR_TOKEN_MALFORMED, "claim `aud` missing or not a string or array of strings");
  }
  for (const name of ["scope", "writ"]) {
    if (p[name] !== undefined && typeof p[name] !== "string") {
      return refuse(ERR_TOKEN_MALFORMED, `claim \`${name}\` is not a string`);
    }
  }
  if (p.nbf !== undefined && typeof p.nbf !== "number")
    return refuse(ERR_TOKEN_MALFORMED, "claim `nbf` is not a number");
  if (p.act !== undefined && !isActor(p.act)) {
    return refuse(ERR_TOKEN_MALFORMED, "claim `act` is not `{ sub, act? }`");
  }
  if (p.cnf !== undefined && !(isObject(p.cnf) && typeof p.cnf.jkt === "string")) {
    return refuse(ERR_TOKEN_MALFORMED, "claim `cnf` is not `{ jkt }`");
  }
  const details = p.authorization_details;
  if (
    details !== undefined &&
    !(Array.isArray(details) && details.every((d) => isObject(d) && typeof d.type === "string"))
  ) {
    return refuse(ERR_TOKEN_MALFORMED, "claim `authorization_details` is not an array of typed objects");
  }
  return p as unknown as AccessTokenClaims;
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

/**
 * Tokens whose signature has verified, with the key it verified with. An Ed25519 signature over the
 * same bytes with the same key verifies every time: an agent presenting its baseline token again
 * (one per token exchange) is not verified again, while everything else — the key still published
 * for the environment, the claims, the clock — is checked anew. Bounded: emptied when full.
 */
const verified = new Map<string, KeyObject>();
const MAX_VERIFIED = 1024;
/** Only tokens this long are remembered (a baseline token is a few hundred characters). */
const MAX_VERIFIED_LENGTH = 4096;

/** The claims every access token must carry, in the order their absence is reported. */
const REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] as const;

/** What a missing or failed claim is refused as. */
function claimRefusal(claim: string, reason: string): TokenRefused {
  switch (claim) {
    case "iss":
      return refuse(ERR_TOKEN_ISSUER, "`iss` is not this environment's issuer");
    case "aud":
      return refuse(ERR_TOKEN_AUDIENCE, "`aud` does not name this audience");
    case "nbf":
      return refuse(ERR_TOKEN_NOT_YET_VALID, "`nbf` is in the future");
    default:
      return refuse(ERR_TOKEN_MALFORMED, `claim ${q(claim)}: ${reason}`);
  }
}

/**
 * The signature, then the registered claims, in the order and with the outcomes RFC 7519
 * validation has always had here (the JOSE library's; test/broker/jws-node.test.ts holds the two
 * side by side): presence, `iss`, `aud`, `iat` a number, `nbf`, `exp`, each with `skew` leeway.
 */
async function verifiedPayload(
  token: string,
  key: VerificationKey,
  opts: VerifyOptions,
  now: Date,
  skew: number,
): Promise<Record<string, unknown> | TokenRefused> {
  const [h, p, s] = token.split(".") as [string, string, string];
  if (impossibleBase64Length(s)) return refuse(ERR_TOKEN_MALFORMED, "not a valid JWS");
  if (verified.get(token) !== key.publicKey) {
    const valid = await verifyOffThread(
      null,
      Buffer.from(`${h}.${p}`, "ascii"),
      key.publicKey,
      Buffer.from(s, "base64url"),
    );
    if (!valid) return refuse(ERR_TOKEN_SIGNATURE, "the signature does not verify");
    if (token.length <= MAX_VERIFIED_LENGTH) {
      if (verified.size >= MAX_VERIFIED) verified.clear();
      verified.set(token, key.publicKey);
    }
  }
  let payload: unknown;
  try {
    if (impossibleBase64Length(p)) throw new Error("base64url");
    payload = JSON.parse(STRICT_UTF8.decode(Buffer.from(p, "base64url")));
  } catch {
    return refuse(ERR_TOKEN_MALFORMED, "the claims are not a JSON object");
  }
  if (!isPlainObject(payload)) return refuse(ERR_TOKEN_MALFORMED, "the claims are not a JSON object");
  const presence = new Set([
    "iss",
    ...(opts.audience === undefined ? [] : ["aud"]),
    ...[...REQUIRED].reverse(),
  ]);
  for (const claim of presence) {
    if (!Object.hasOwn(payload, claim)) return claimRefusal(claim, "missing");
  }
  if (payload.iss !== opts.issuer) return claimRefusal("iss", "check_failed");
  if (opts.audience !== undefined) {
    const aud = payload.aud;
    const named =
      typeof aud === "string" ? aud === opts.audience : Array.isArray(aud) && aud.includes(opts.audience);
    if (!named) return claimRefusal("aud", "check_failed");
  }
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (payload.iat !== undefined && typeof payload.iat !== "number") return claimRefusal("iat", "invalid");
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== "number") return claimRefusal("nbf", "invalid");
    if (payload.nbf > nowSeconds + skew) return claimRefusal("nbf", "check_failed");
  }
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== "number") return claimRefusal("exp", "invalid");
    if (payload.exp <= nowSeconds - skew) return refuse(ERR_TOKEN_EXPIRED, "it has expired");
  }
  return payload;
}

/**
 * Checks an access token of environment `env`: strict compact JWS, `alg` EdDSA only, `typ`
 * at+jwt, a key of `env` by `kid`, the signature, then `exp`, `nbf`, `iat`, `iss`, `aud` and the
 * claim types. Returns the claims, or the `TokenRefused` with one of the `ERR_TOKEN_*` codes; only
 * failures that are not the token's (the key store down, a bad option) throw.
 */
export async function checkAccessToken(token: string, opts: VerifyOptions): Promise<TokenCheck> {
  const now = (opts.clock ?? (() => new Date()))();
  const skew = opts.maxClockSkewSeconds ?? 0;
  if (!Number.isSafeInteger(skew) || skew < 0)
    throw new TypeError("maxClockSkewSeconds must be an integer ≥ 0");
  if (
    typeof token !== "string" ||
    token.length > MAX_TOKEN_LENGTH ||
    !/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)
  ) {
    return refuse(ERR_TOKEN_MALFORMED, "not a compact JWS");
  }
  let header: Record<string, unknown>;
  try {
    const encoded = token.slice(0, token.indexOf("."));
    if (impossibleBase64Length(encoded)) throw new Error("base64url");
    const decoded: unknown = JSON.parse(STRICT_UTF8.decode(Buffer.from(encoded, "base64url")));
    if (!isPlainObject(decoded)) throw new Error("not an object");
    header = decoded;
  } catch (err) {
    return refuse(ERR_TOKEN_MALFORMED, "the header is not a JSON object", err);
  }
  // The algorithm is checked before anything else is trusted: never `none`, never an HMAC keyed
  // with the public key, never an algorithm jose would pick for a key.
  if (header.alg !== "EdDSA")
    return refuse(ERR_TOKEN_ALG, `algorithm ${q(String(header.alg))}: only \`EdDSA\``);
  if (!isAtJwt(header.typ))
    return refuse(ERR_TOKEN_TYPE, `type ${q(String(header.typ))}: expected \`at+jwt\``);
  if (header.crit !== undefined)
    return refuse(ERR_TOKEN_MALFORMED, "`crit` header parameters are not supported");
  if (typeof header.kid !== "string" || header.kid.length === 0) return refuse(ERR_TOKEN_KEY, "no `kid`");
  const lookupAt = new Date(now.getTime() - skew * 1000);
  const key = await opts.keys.verificationKey(opts.env, header.kid, lookupAt);
  if (key === undefined || key.env !== opts.env) {
    return refuse(ERR_TOKEN_KEY, `no key ${q(header.kid)} is published for environment ${q(opts.env)}`);
  }
  const payload = await verifiedPayload(token, key, opts, now, skew);
  if (payload instanceof TokenRefused) return payload;
  const claims = checkClaims(payload);
  if (claims instanceof TokenRefused) return claims;
  const nowSeconds = now.getTime() / 1000;
  if (claims.iat > nowSeconds + skew) return refuse(ERR_TOKEN_NOT_YET_VALID, "`iat` is in the future");
  // A token cannot have been issued after its key stopped signing, nor expire after the key's
  // publication ends: one that does was not minted by writ (a leaked retired key, say).
  const leeway = skew + ROTATION_LEEWAY_SECONDS;
  if (claims.iat > Math.ceil(key.signUntil.getTime() / 1000) + leeway) {
    return refuse(ERR_TOKEN_KEY_LIFE, `issued after key ${q(key.kid)} stopped signing`);
  }
  if (claims.exp > Math.ceil(key.publishUntil.getTime() / 1000) + leeway) {
    return refuse(ERR_TOKEN_KEY_LIFE, `expires after key ${q(key.kid)}'s publication ends`);
  }
  return claims;
}

/**
 * `checkAccessToken` for callers that want an exception: the claims, or a `WritError` with the
 * refusal's `ERR_TOKEN_*` code thrown.
 */
export async function verifyAccessToken(token: string, opts: VerifyOptions): Promise<AccessTokenClaims> {
  const checked = await checkAccessToken(token, opts);
  if (checked instanceof TokenRefused) {
    throw new WritError(
      checked.code,
      checked.message,
      checked.cause === undefined ? undefined : { cause: checked.cause },
    );
  }
  return checked;
}
