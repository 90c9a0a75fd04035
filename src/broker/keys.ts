/**
 * Per-environment signing keys. Each environment is its own trust root: its own Ed25519 keys, its
 * own issuer, its own JWKS, so a token minted for `dev` never verifies against `prod`.
 *
 * A second family of keys, ES256 (P-256), signs only the web-identity tokens AWS STS verifies
 * (`downstream/aws.ts`: AWS accepts RSA and ECDSA signatures, not EdDSA). `environmentKeys(store, { alg })`
 * serves one family: every query, lock and JWKS is of that algorithm alone, so an ES256 key never
 * verifies a writ access token and never joins the environment's EdDSA JWKS.
 *
 * A key lives in `signing_keys` through two dates:
 *   sign_until     the key signs tokens until then, and no token it signs may expire later (the
 *                  "signing key life" bound of the effective TTL);
 *   publish_until  its public half stays in the environment's JWKS until then: the active key's
 *                  is its sign_until; a key retired early keeps it until its last token expires.
 *
 * At most one key per environment is `active`. `activeKey` creates the first one lazily and
 * replaces one that has reached its renewal margin; `rotate` replaces it at once. Both run under
 * the store's lock on the environment (`store/keys.ts`), so several `writ serve` processes on one
 * PostgreSQL creating the first key at once end with one.
 *
 * At rest: the active key's private JWK is stored in its row, unencrypted; whoever can read the
 * database can sign tokens for that environment until the key is rotated. Database access must be
 * treated as key access. A retired key's private half is erased (`{}`) at retirement: nothing
 * signs with it any more, and its public half is all verification needs.
 *
 * The key id is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint } from "jose";
import { q, WritError } from "../core/index.js";
import {
  ERR_STORE_CORRUPT,
  type SigningKeyInsert,
  type SigningKeyRepository,
  type SigningKeyRow,
  type Store,
} from "../store/index.js";

/** The key families: EdDSA signs writ's own tokens, ES256 AWS web-identity tokens. */
export type KeyAlg = "EdDSA" | "ES256";
export const KEY_ALGS: readonly KeyAlg[] = ["EdDSA", "ES256"];

/** An environment's public signing key as its JWKS publishes it (never a private member). */
export type PublicJwk =
  | {
      readonly kty: "OKP";
      readonly crv: "Ed25519";
      readonly x: string;
      readonly kid: string;
      readonly alg: "EdDSA";
      readonly use: "sig";
    }
  | {
      readonly kty: "EC";
      readonly crv: "P-256";
      readonly x: string;
      readonly y: string;
      readonly kid: string;
      readonly alg: "ES256";
      readonly use: "sig";
    };

export type KeyStatus = "active" | "retired";

/** A key as `list` shows it: no key material. */
export interface KeyInfo {
  readonly kind: "key-info";
  readonly kid: string;
  readonly env: string;
  readonly alg: KeyAlg;
  readonly status: KeyStatus;
  readonly createdAt: Date;
  readonly signUntil: Date;
  readonly publishUntil: Date;
  readonly retiredAt: Date | undefined;
}

/** The key an environment signs with now. */
export interface SigningKey {
  readonly kind: "signing-key";
  readonly kid: string;
  readonly env: string;
  readonly alg: KeyAlg;
  readonly createdAt: Date;
  /** No token this key signs may expire after this instant (the "signing key life" TTL bound). */
  readonly signUntil: Date;
  readonly publicJwk: PublicJwk;
  /** The private key (Ed25519, or P-256 for ES256), for jose's `SignJWT#sign`. */
  readonly privateKey: KeyObject;
}

/** A published key of one environment, as token verification needs it. */
export interface VerificationKey {
  readonly kind: "verification-key";
  readonly kid: string;
  readonly env: string;
  readonly status: KeyStatus;
  readonly signUntil: Date;
  readonly publishUntil: Date;
  readonly publicJwk: PublicJwk;
  readonly publicKey: KeyObject;
}

export interface RotateOptions {
  /**
   * The longest lifetime any token of this environment can have. The retired key stays published
   * until `now + maxTokenTtlSeconds` (no later than its own sign_until): by then every token it
   * signed has expired. 0 withdraws it at once (a compromised key): its tokens stop verifying.
   */
  readonly maxTokenTtlSeconds: number;
}

export interface RotateResult {
  /** The key rotation retired, or undefined when the environment had no active key. */
  readonly retired: KeyInfo | undefined;
  readonly created: SigningKey;
}

export interface EnvironmentKeys {
  /** The key `env` signs with now, created when there is none or the active one is due for renewal. */
  activeKey(env: string): Promise<SigningKey>;
  /** Retires the active key at once (it stays published, see `RotateOptions`) and creates a new one. */
  rotate(env: string, opts: RotateOptions): Promise<RotateResult>;
  /** The JWKS of `env`: every key whose publication has not ended (default now: the clock). */
  jwks(env: string, now?: Date): Promise<{ readonly keys: readonly PublicJwk[] }>;
  /**
   * The published key `kid` of `env` — of that environment only — or undefined. A key of another
   * environment, or one whose publication ended before `now`, is not returned.
   */
  verificationKey(env: string, kid: string, now?: Date): Promise<VerificationKey | undefined>;
  /** Every key ever created, of one environment or all, oldest first per environment. */
  list(env?: string): Promise<readonly KeyInfo[]>;
}

export interface EnvironmentKeysOptions {
  /** The family served (default `EdDSA`, writ's own tokens). */
  readonly alg?: KeyAlg | undefined;
  /** How long a new key signs (default 30 days). */
  readonly keyLifetimeSeconds?: number | undefined;
  /**
   * `activeKey` replaces the active key when less than this is left of its life, so tokens issued
   * near its end are not cut short (default: a tenth of the lifetime, at most one day; must be less
   * than the lifetime; 0 uses a key to the end).
   */
  readonly renewBeforeSeconds?: number | undefined;
  readonly clock?: (() => Date) | undefined;
  /**
   * True when this process is the store's only user (the embedded store, which one process holds
   * under a lock): key rows are then kept in memory, since no other writer can change them behind
   * this object's back. Never for a shared PostgreSQL, where another process may rotate.
   */
  readonly exclusive?: boolean | undefined;
}

export const DEFAULT_KEY_LIFETIME_SECONDS = 30 * 86_400;

/** Environment ids as writ.yaml allows them. */
const ENV_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

type Row = SigningKeyRow;

function checkEnv(env: string): void {
  if (typeof env !== "string" || !ENV_ID.test(env)) {
    throw new TypeError(`environment ${q(env)}: expected a writ.yaml environment id`);
  }
}

function checkSeconds(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${what} must be an integer ≥ 0`);
}

function corrupt(kid: string, message: string, cause?: unknown): WritError {
  return new WritError(
    ERR_STORE_CORRUPT,
    `signing key ${q(kid)}: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

type Members = Readonly<Record<string, string>>;

/** What differs between the families: the key's public members (RFC 7638's) and its generation. */
interface Material {
  /** The public members of a stored public JWK, or undefined when it is not one of this family. */
  members(jwk: Record<string, unknown>): Members | undefined;
  generate(): KeyObject;
  readonly name: string;
}

const b64 = (v: unknown): v is string => typeof v === "string" && B64URL.test(v);

const MATERIAL: Readonly<Record<KeyAlg, Material>> = {
  EdDSA: {
    name: "Ed25519",
    members: (j) =>
      j.kty === "OKP" && j.crv === "Ed25519" && b64(j.x) && !("d" in j)
        ? { kty: "OKP", crv: "Ed25519", x: j.x }
        : undefined,
    generate: () => generateKeyPairSync("ed25519").privateKey,
  },
  ES256: {
    name: "P-256",
    members: (j) =>
      j.kty === "EC" && j.crv === "P-256" && b64(j.x) && b64(j.y) && !("d" in j)
        ? { kty: "EC", crv: "P-256", x: j.x, y: j.y }
        : undefined,
    generate: () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
  },
};

function publicJwkOf(members: Members, kid: string, alg: KeyAlg): PublicJwk {
  return { ...members, kid, alg, use: "sig" } as PublicJwk;
}

function algOf(r: Row): KeyAlg {
  return r.alg === "ES256" ? "ES256" : "EdDSA";
}

function infoOf(r: Row): KeyInfo {
  return {
    kind: "key-info",
    kid: r.kid,
    env: r.environment,
    alg: algOf(r),
    status: r.status === "active" ? "active" : "retired",
    createdAt: toDate(r.created_at),
    signUntil: toDate(r.sign_until),
    publishUntil: toDate(r.publish_until),
    retiredAt: r.retired_at === null ? undefined : toDate(r.retired_at),
  };
}

/**
 * Imported keys by kid. A row's key material never changes, so each is parsed and checked once per
 * process; the cache is small (an environment has a handful of keys) and bounded all the same.
 */
class KeyCache {
  readonly #public = new Map<string, { jwk: PublicJwk; key: KeyObject; members: Members }>();
  readonly #private = new Map<string, KeyObject>();

  constructor(readonly alg: KeyAlg) {}

  async publicKey(r: Row): Promise<{ jwk: PublicJwk; key: KeyObject; members: Members }> {
    const hit = this.#public.get(r.kid);
    if (hit !== undefined) return hit;
    const material = MATERIAL[this.alg];
    const jwk = r.public_jwk as Record<string, unknown> | null;
    const members =
      algOf(r) === this.alg && typeof jwk === "object" && jwk !== null ? material.members(jwk) : undefined;
    if (members === undefined) throw corrupt(r.kid, `\`public_jwk\` is not an ${material.name} public JWK`);
    // The kid is the thumbprint: a row whose key does not hash to its kid was not written by writ.
    const thumbprint = await calculateJwkThumbprint({ ...members }, "sha256");
    if (thumbprint !== r.kid) throw corrupt(r.kid, "the public key's thumbprint is not the kid");
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { ...members }, format: "jwk" });
    } catch (err) {
      throw corrupt(r.kid, `\`public_jwk\` is not a usable ${material.name} key`, err);
    }
    const entry = { jwk: publicJwkOf(members, r.kid, this.alg), key, members };
    if (this.#public.size >= 256) this.#public.clear();
    this.#public.set(r.kid, entry);
    return entry;
  }

  async privateKey(r: Row): Promise<KeyObject> {
    const hit = this.#private.get(r.kid);
    if (hit !== undefined) return hit;
    const { members } = await this.publicKey(r);
    const name = MATERIAL[this.alg].name;
    const jwk = r.private_jwk as Record<string, unknown> | null;
    if (typeof jwk !== "object" || jwk === null || typeof jwk.d !== "string") {
      throw corrupt(r.kid, "an active key without its private half");
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: { ...members, d: jwk.d }, format: "jwk" });
    } catch (err) {
      throw corrupt(r.kid, `\`private_jwk\` is not a usable ${name} key`, err);
    }
    const derived = createPublicKey(key).export({ format: "jwk" });
    if (derived.x !== members.x || derived.y !== members.y) {
      throw corrupt(r.kid, "the private key does not match the public key");
    }
    if (this.#private.size >= 64) this.#private.clear();
    this.#private.set(r.kid, key);
    return key;
  }

  forget(kid: string): void {
    this.#private.delete(kid);
  }
}

async function newKeyRow(
  env: string,
  alg: KeyAlg,
  now: Date,
  lifetimeSeconds: number,
): Promise<SigningKeyInsert> {
  const material = MATERIAL[alg];
  const jwk = material.generate().export({ format: "jwk" }) as Record<string, unknown>;
  const { d, ...pub } = jwk;
  const publicMembers = material.members(pub);
  if (publicMembers === undefined || typeof d !== "string") {
    throw new Error(`${material.name} key export failed`);
  }
  const kid = await calculateJwkThumbprint({ ...publicMembers }, "sha256");
  const signUntil = new Date(now.getTime() + lifetimeSeconds * 1000);
  return {
    kid,
    environment: env,
    alg,
    public_jwk: JSON.stringify(publicJwkOf(publicMembers, kid, alg)),
    private_jwk: JSON.stringify({ ...publicMembers, d }),
    created_at: now,
    sign_until: signUntil,
    // Every token it signs expires by sign_until, so publishing it longer serves nothing.
    publish_until: signUntil,
    status: "active",
    retired_at: null,
  };
}

/** What every operation on one family's keys works with. */
interface KeyCtx {
  readonly rows: SigningKeyRepository;
  readonly alg: KeyAlg;
  readonly lifetime: number;
  readonly renewBefore: number;
  readonly cache: KeyCache;
  /** Row caches, only when this process is the store's only writer (see `exclusive`). */
  readonly exclusive: boolean;
  readonly activeRow: Map<string, Row>;
  readonly verificationRows: Map<string, Row>;
  now(): Date;
}

function keyContext(store: Pick<Store, "signingKeys">, opts: EnvironmentKeysOptions): KeyCtx {
  const lifetime = opts.keyLifetimeSeconds ?? DEFAULT_KEY_LIFETIME_SECONDS;
  checkSeconds(lifetime, "keyLifetimeSeconds");
  if (lifetime < 1) throw new TypeError("keyLifetimeSeconds must be at least 1");
  const renewBefore = opts.renewBeforeSeconds ?? Math.min(86_400, Math.floor(lifetime / 10));
  checkSeconds(renewBefore, "renewBeforeSeconds");
  if (renewBefore >= lifetime) throw new TypeError("renewBeforeSeconds must be less than keyLifetimeSeconds");
  const clock = opts.clock ?? (() => new Date());
  const alg = opts.alg ?? "EdDSA";
  if (!KEY_ALGS.includes(alg)) throw new TypeError(`alg ${q(alg)}: expected one of ${KEY_ALGS.join(", ")}`);
  return {
    rows: store.signingKeys[alg],
    alg,
    lifetime,
    renewBefore,
    cache: new KeyCache(alg),
    exclusive: opts.exclusive === true,
    activeRow: new Map(),
    verificationRows: new Map(),
    now() {
      const at = clock();
      if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
        throw new TypeError("the key clock returned an invalid date");
      }
      return new Date(at.getTime());
    },
  };
}

function forgetEnvironment(ctx: KeyCtx, env: string): void {
  ctx.activeRow.delete(env);
  for (const [k, r] of ctx.verificationRows) if (r.environment === env) ctx.verificationRows.delete(k);
}

/** Usable for signing at `at`: active, and more than the renewal margin of life left. */
function usable(ctx: KeyCtx, r: Row, at: Date): boolean {
  return r.status === "active" && toDate(r.sign_until).getTime() - ctx.renewBefore * 1000 > at.getTime();
}

async function signingKeyOf(ctx: KeyCtx, r: Row): Promise<SigningKey> {
  const { jwk } = await ctx.cache.publicKey(r);
  return {
    kind: "signing-key",
    kid: r.kid,
    env: r.environment,
    alg: ctx.alg,
    createdAt: toDate(r.created_at),
    signUntil: toDate(r.sign_until),
    publicJwk: jwk,
    privateKey: await ctx.cache.privateKey(r),
  };
}

async function verificationKeyOf(ctx: KeyCtx, r: Row): Promise<VerificationKey> {
  const { jwk, key } = await ctx.cache.publicKey(r);
  const info = infoOf(r);
  return {
    kind: "verification-key",
    kid: r.kid,
    env: r.environment,
    status: info.status,
    signUntil: info.signUntil,
    publishUntil: info.publishUntil,
    publicJwk: jwk,
    publicKey: key,
  };
}

async function activeKey(ctx: KeyCtx, env: string): Promise<SigningKey> {
  checkEnv(env);
  const cached = ctx.exclusive ? ctx.activeRow.get(env) : undefined;
  if (cached !== undefined && usable(ctx, cached, ctx.now())) return signingKeyOf(ctx, cached);
  // The common case reads one row and takes no lock.
  const [current] = await ctx.rows.active(env);
  if (current !== undefined && usable(ctx, current, ctx.now())) {
    if (ctx.exclusive) ctx.activeRow.set(env, current);
    return signingKeyOf(ctx, current);
  }
  forgetEnvironment(ctx, env);
  const row = await ctx.rows.change(env, `signing key of ${q(env)}`, async (keys) => {
    // Another process may have created or replaced the key while this one waited.
    const at = ctx.now();
    const rows = await keys.active();
    const keep = rows[0] !== undefined && usable(ctx, rows[0], at) ? rows[0] : undefined;
    for (const r of rows) {
      if (r === keep) continue;
      // Out of life: its tokens have all expired. In its renewal margin: its tokens expire by
      // its sign_until. Either way its publication keeps the end it has. (A second active
      // key cannot arise under the lock; one left by hand is retired the same way.)
      await keys.retire(r, at, toDate(r.publish_until));
      ctx.cache.forget(r.kid);
    }
    return keep ?? keys.insert(await newKeyRow(env, ctx.alg, at, ctx.lifetime));
  });
  forgetEnvironment(ctx, env);
  if (ctx.exclusive) ctx.activeRow.set(env, row);
  return signingKeyOf(ctx, row);
}

async function rotate(ctx: KeyCtx, env: string, rotateOpts: RotateOptions): Promise<RotateResult> {
  checkEnv(env);
  checkSeconds(rotateOpts.maxTokenTtlSeconds, "maxTokenTtlSeconds");
  const { retired, created } = await ctx.rows.change(
    env,
    `rotate the signing key of ${q(env)}`,
    async (keys) => {
      const at = ctx.now();
      const until = new Date(at.getTime() + rotateOpts.maxTokenTtlSeconds * 1000);
      let last: Row | undefined;
      for (const r of (await keys.active()).reverse()) {
        last = await keys.retire(r, at, until);
        ctx.cache.forget(r.kid);
      }
      return { retired: last, created: await keys.insert(await newKeyRow(env, ctx.alg, at, ctx.lifetime)) };
    },
  );
  forgetEnvironment(ctx, env);
  return {
    retired: retired === undefined ? undefined : infoOf(retired),
    created: await signingKeyOf(ctx, created),
  };
}

async function verificationKey(
  ctx: KeyCtx,
  env: string,
  kid: string,
  at: Date | undefined,
): Promise<VerificationKey | undefined> {
  checkEnv(env);
  if (typeof kid !== "string" || kid.length === 0 || kid.length > 200) return undefined;
  const when = at ?? ctx.now();
  const hit = ctx.exclusive ? ctx.verificationRows.get(kid) : undefined;
  if (hit !== undefined && hit.environment === env && toDate(hit.publish_until) > when) {
    // one family per object: the cache holds only this family's rows
    return verificationKeyOf(ctx, hit);
  }
  const r = await ctx.rows.publishedKey(env, kid, when);
  if (r === undefined) return undefined;
  if (ctx.exclusive) {
    if (ctx.verificationRows.size >= 256) ctx.verificationRows.clear();
    ctx.verificationRows.set(kid, r);
  }
  return verificationKeyOf(ctx, r);
}

export function environmentKeys(
  store: Pick<Store, "signingKeys">,
  opts: EnvironmentKeysOptions = {},
): EnvironmentKeys {
  const ctx = keyContext(store, opts);
  return {
    activeKey: (env) => activeKey(ctx, env),
    rotate: (env, rotateOpts) => rotate(ctx, env, rotateOpts),
    async jwks(env, at) {
      checkEnv(env);
      const rows = await ctx.rows.published(env, at ?? ctx.now());
      const keys: PublicJwk[] = [];
      for (const r of rows) keys.push((await ctx.cache.publicKey(r)).jwk);
      return { keys };
    },
    verificationKey: (env, kid, at) => verificationKey(ctx, env, kid, at),
    async list(env) {
      if (env !== undefined) checkEnv(env);
      return (await ctx.rows.list(env)).map(infoOf);
    },
  };
}
