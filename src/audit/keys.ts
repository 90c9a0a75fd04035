/**
 * The checkpoint signing key and the keys verification trusts.
 *
 * The signing key is an Ed25519 key pair kept in the data folder:
 *   <dataDir>/keys/audit-signing.jwk      private JWK, mode 0600, created on first use
 *   <dataDir>/keys/audit-signing.pub.jwk  its public half, to hand to verifiers
 * Its key id is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
 *
 * Verification trusts only public keys given to it — never a key read from the database or from an
 * export document.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
} from "node:crypto";
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { type CryptoKey, calculateJwkThumbprint, importJWK } from "jose";
import { q, WritError } from "../core/index.js";
import type { AuditErrorCode } from "./codes.js";

/** The key file is missing, unreadable or not an Ed25519 JWK. */
export const ERR_AUDIT_KEY_INVALID = "ERR_AUDIT_KEY_INVALID";
/** The private key file can be read by group or others. */
export const ERR_AUDIT_KEY_PERMISSIONS = "ERR_AUDIT_KEY_PERMISSIONS";
/** The public key file does not belong to the private key beside it. */
export const ERR_AUDIT_KEY_MISMATCH = "ERR_AUDIT_KEY_MISMATCH";

export interface PublicJwk {
  readonly kty: "OKP";
  readonly crv: "Ed25519";
  readonly x: string;
  readonly kid: string;
  readonly alg: "EdDSA";
  readonly use: "sig";
}

/** A public key verification trusts, with its thumbprint. */
export interface TrustedKey {
  readonly kid: string;
  readonly jwk: PublicJwk;
  readonly key: KeyObject | CryptoKey;
}

export interface AuditSigner {
  readonly kid: string;
  readonly publicJwk: PublicJwk;
  /** The private key, for jose. */
  readonly key: KeyObject;
  /** Its public half, as a key verification can trust. */
  readonly trusted: TrustedKey;
}

export function signingKeyPaths(dataDir: string): {
  readonly privateKey: string;
  readonly publicKey: string;
} {
  const dir = join(dataDir, "keys");
  return { privateKey: join(dir, "audit-signing.jwk"), publicKey: join(dir, "audit-signing.pub.jwk") };
}

function keyError(code: AuditErrorCode, file: string, message: string, cause?: unknown): WritError {
  return new WritError(code, `${q(file)}: ${message}`, cause === undefined ? undefined : { cause });
}

async function thumbprint(x: string): Promise<string> {
  return calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x }, "sha256");
}

function publicJwk(x: string, kid: string): PublicJwk {
  return { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" };
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** Checks that `value` is an Ed25519 public JWK without private members and makes it a trusted key. */
export async function trustKey(value: unknown, source: string): Promise<TrustedKey> {
  const jwk = value as Record<string, unknown> | null;
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) {
    throw keyError(ERR_AUDIT_KEY_INVALID, source, "expected a JWK object");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || !B64URL.test(jwk.x)) {
    throw keyError(
      ERR_AUDIT_KEY_INVALID,
      source,
      "expected an Ed25519 public JWK (`kty` OKP, `crv` Ed25519, `x`)",
    );
  }
  if (jwk.d !== undefined) {
    throw keyError(
      ERR_AUDIT_KEY_INVALID,
      source,
      "holds private key material: pass the public key (`.pub.jwk`)",
    );
  }
  const kid = await thumbprint(jwk.x);
  if (jwk.kid !== undefined && jwk.kid !== kid) {
    throw keyError(
      ERR_AUDIT_KEY_INVALID,
      source,
      `\`kid\` ${q(jwk.kid)} is not the key's thumbprint ${q(kid)}`,
    );
  }
  try {
    const key = (await importJWK({ kty: "OKP", crv: "Ed25519", x: jwk.x }, "EdDSA")) as KeyObject | CryptoKey;
    return { kid, jwk: publicJwk(jwk.x, kid), key };
  } catch (err) {
    throw keyError(ERR_AUDIT_KEY_INVALID, source, "not a usable Ed25519 public key", err);
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw keyError(ERR_AUDIT_KEY_INVALID, file, `cannot read: ${(err as Error).message}`, err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw keyError(ERR_AUDIT_KEY_INVALID, file, "not JSON", err);
  }
}

/** Reads a public key file (`--key FILE`) as a trusted key. */
export async function readTrustedKey(file: string): Promise<TrustedKey> {
  return trustKey(await readJson(file), file);
}

function exists(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "EEXIST";
}

async function writeExclusive(file: string, text: string, mode: number): Promise<boolean> {
  // Write a temporary file, then hard-link it into place: the link fails if another process got
  // there first, and a reader never sees a half-written key.
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  const handle = await open(tmp, "wx", mode);
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if (exists(err)) return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function createKeyPair(paths: ReturnType<typeof signingKeyPaths>): Promise<void> {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  if (typeof jwk.x !== "string" || typeof jwk.d !== "string") throw new Error("ed25519 key export failed");
  const kid = await thumbprint(jwk.x);
  const text = `${JSON.stringify({ ...publicJwk(jwk.x, kid), d: jwk.d }, null, 2)}\n`;
  await writeExclusive(paths.privateKey, text, 0o600);
}

/**
 * Loads the data folder's signing key, creating the pair on first use (`create`, default true).
 * Refuses a private key file that group or others can read.
 */
export async function loadSigningKey(dataDir: string, opts: { create?: boolean } = {}): Promise<AuditSigner> {
  const paths = signingKeyPaths(dataDir);
  const present = await stat(paths.privateKey).then(
    () => true,
    () => false,
  );
  if (!present) {
    if (opts.create === false) {
      throw keyError(ERR_AUDIT_KEY_INVALID, paths.privateKey, "no audit signing key in this data folder");
    }
    await mkdir(join(dataDir, "keys"), { recursive: true, mode: 0o700 });
    await createKeyPair(paths);
  }
  const info = await stat(paths.privateKey);
  if (process.platform !== "win32" && (info.mode & 0o077) !== 0) {
    throw keyError(
      ERR_AUDIT_KEY_PERMISSIONS,
      paths.privateKey,
      `readable by others (mode ${(info.mode & 0o777).toString(8)}): run \`chmod 600\` on it`,
    );
  }
  const jwk = (await readJson(paths.privateKey)) as Record<string, unknown>;
  if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string" || typeof jwk.x !== "string") {
    throw keyError(ERR_AUDIT_KEY_INVALID, paths.privateKey, "expected an Ed25519 private JWK");
  }
  let key: KeyObject;
  let x: string;
  try {
    key = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: jwk.d, x: jwk.x }, format: "jwk" });
    x = String(createPublicKey(key).export({ format: "jwk" }).x);
  } catch (err) {
    throw keyError(ERR_AUDIT_KEY_INVALID, paths.privateKey, "not a usable Ed25519 private key", err);
  }
  if (x !== jwk.x) throw keyError(ERR_AUDIT_KEY_INVALID, paths.privateKey, "`x` does not match `d`");
  const kid = await thumbprint(x);
  const pub = publicJwk(x, kid);

  const pubPresent = await stat(paths.publicKey).then(
    () => true,
    () => false,
  );
  if (!pubPresent) await writeExclusive(paths.publicKey, `${JSON.stringify(pub, null, 2)}\n`, 0o644);
  const onDisk = (await readJson(paths.publicKey)) as Record<string, unknown> | null;
  if (onDisk?.x !== x) {
    throw keyError(
      ERR_AUDIT_KEY_MISMATCH,
      paths.publicKey,
      `is not the public half of ${q(paths.privateKey)}`,
    );
  }
  return { kid, publicJwk: pub, key, trusted: { kid, jwk: pub, key: createPublicKey(key) } };
}

/** The data folder's public key as a trusted key, or undefined when the folder has none. */
export async function dataDirPublicKey(dataDir: string): Promise<TrustedKey | undefined> {
  const { publicKey } = signingKeyPaths(dataDir);
  const present = await stat(publicKey).then(
    () => true,
    () => false,
  );
  return present ? readTrustedKey(publicKey) : undefined;
}
