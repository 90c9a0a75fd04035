/**
 * Signed checkpoints. A checkpoint states "the record with seq S has hash H", signed at time T with
 * the data folder's Ed25519 key. The signature is a compact JWS:
 *
 *   protected header  {"alg":"EdDSA","kid":<thumbprint>,"typ":"writ-audit-checkpoint"}
 *   payload           canonicalJson({ at, hash, seq })   (at: ISO 8601 with milliseconds)
 *
 * A verifier with the public key can check it with any JOSE library. Anyone with write access to
 * the database but without the private key can rewrite records and even recompute the whole chain,
 * but cannot produce a checkpoint that agrees with the rewritten chain.
 */
import { sign } from "node:crypto";
import { compactVerify, decodeProtectedHeader } from "jose";
import { q } from "../core/index.js";
import type { CheckpointRow } from "../store/index.js";
import { canonicalJson } from "./canonical.js";
import type { AuditSigner, TrustedKey } from "./keys.js";

export const CHECKPOINT_TYPE = "writ-audit-checkpoint";

function payloadBytes(seq: number, hash: string, at: Date): Uint8Array {
  return new TextEncoder().encode(canonicalJson({ at: at.toISOString(), hash, seq }));
}

const base64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url");

/**
 * The compact JWS over a checkpoint, made here rather than by jose: the same bytes (Ed25519 is
 * deterministic, the header's members in the same order), signed by node:crypto on the thread
 * pool. jose signs through WebCrypto, whose argument checks and key conversion cost the event loop
 * ~0.2 ms every 100th record — the record's own call pays for it. Verification stays jose's.
 */
export async function signCheckpoint(
  signer: AuditSigner,
  point: { readonly seq: number; readonly hash: string; readonly at: Date },
): Promise<CheckpointRow> {
  if (signer.key.asymmetricKeyType !== "ed25519") {
    throw new TypeError("the audit signing key must be an Ed25519 private key");
  }
  const at = new Date(point.at.getTime());
  const header = base64url(JSON.stringify({ alg: "EdDSA", kid: signer.kid, typ: CHECKPOINT_TYPE }));
  const input = `${header}.${base64url(payloadBytes(point.seq, point.hash, at))}`;
  const signed = await new Promise<Buffer>((resolve, reject) =>
    sign(null, Buffer.from(input), signer.key, (err, bytes) => (err ? reject(err) : resolve(bytes))),
  );
  return {
    seq: point.seq,
    hash: point.hash,
    at,
    keyId: signer.kid,
    signature: `${input}.${base64url(signed)}`,
  };
}

/**
 * Why a checkpoint cannot be trusted, or undefined when its signature verifies with a trusted key
 * and covers exactly its row. Whether it agrees with the chain is the caller's check.
 */
export async function checkpointProblem(
  checkpoint: CheckpointRow,
  trusted: ReadonlyMap<string, TrustedKey>,
): Promise<string | undefined> {
  const key = trusted.get(checkpoint.keyId);
  if (key === undefined)
    return `checkpoint ${checkpoint.seq} is signed by key ${q(checkpoint.keyId)}, which is not trusted`;
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(checkpoint.signature);
  } catch {
    return `checkpoint ${checkpoint.seq}: the signature is not a compact JWS`;
  }
  if (header.kid !== checkpoint.keyId || header.typ !== CHECKPOINT_TYPE) {
    return `checkpoint ${checkpoint.seq}: the signature header does not name key ${q(checkpoint.keyId)}`;
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(checkpoint.signature, key.key, { algorithms: ["EdDSA"] }));
  } catch {
    return `checkpoint ${checkpoint.seq}: the signature does not verify with key ${q(checkpoint.keyId)}`;
  }
  let expected: Uint8Array;
  try {
    expected = payloadBytes(checkpoint.seq, checkpoint.hash, checkpoint.at);
  } catch {
    return `checkpoint ${checkpoint.seq}: its time is not a valid date`;
  }
  if (Buffer.compare(Buffer.from(payload), Buffer.from(expected)) !== 0) {
    return `checkpoint ${checkpoint.seq}: the stored seq, hash or time differ from what was signed`;
  }
  return undefined;
}

/** Trusted keys by key id. */
export function keyring(keys: readonly TrustedKey[]): ReadonlyMap<string, TrustedKey> {
  return new Map(keys.map((k) => [k.kid, k]));
}
