/**
 * What an issuer's `issue` came to, read by the tests: the credential of one that must succeed, or
 * the refusal of one that must not (its refused outcome, or the coded error a path that throws —
 * a factory's configuration check, `revoke`, `kill` — threw).
 */
import { isWritError } from "../../src/core/index.js";
import type {
  DownstreamCredential,
  DownstreamOutcome,
  DownstreamReason,
} from "../../src/downstream/index.js";

/** The credential; a refusal fails the test with its reason and detail. */
export async function credentialOf(
  p: Promise<DownstreamOutcome<DownstreamCredential>>,
): Promise<DownstreamCredential> {
  const o = await p;
  if (!o.ok) throw new Error(`expected a credential, refused: ${o.reason}: ${o.detail}`);
  return o.value;
}

export interface SeenRefusal {
  /** `ERR_DOWNSTREAM_REFUSED` for an issuer's refusal; the thrown error's code otherwise. */
  readonly code: string;
  readonly reason: DownstreamReason | undefined;
  readonly detail: string;
  /** The reason, then the detail (as the wire says it). */
  readonly message: string;
}

/** The refusal (an outcome or a thrown coded error); anything else fails the test. */
export async function refusalOf(p: Promise<unknown>): Promise<SeenRefusal> {
  let o: unknown;
  try {
    o = await p;
  } catch (e) {
    if (!isWritError(e)) throw e;
    const reason = (e as { reason?: DownstreamReason }).reason;
    const detail = (e as { detail?: string }).detail ?? e.message;
    return { code: e.code, reason, detail, message: e.message };
  }
  const out = o as DownstreamOutcome<unknown> | undefined;
  if (out === undefined || out.ok !== false) throw new Error("expected a refusal");
  return {
    code: "ERR_DOWNSTREAM_REFUSED",
    reason: out.reason,
    detail: out.detail,
    message: `${out.reason}: ${out.detail}`,
  };
}
