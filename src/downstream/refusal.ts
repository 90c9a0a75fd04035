/**
 * What a step of an issuer comes to: its value, or the refusal (a reason and what to say). Issuers
 * return it from `DownstreamIssuer.issue` too; only failures nobody expects (the ledger or the audit
 * log down) throw. Revocation and kills (`revoke`, `kill`) still throw a `DownstreamRefusal`: their
 * callers (the reaper, the kill switch) audit any failure the same way.
 */
export type DownstreamOutcome<T> = { readonly ok: true; readonly value: T } | DownstreamRefused;

export interface DownstreamRefused {
  readonly ok: false;
  readonly reason: DownstreamReason;
  readonly detail: string;
}

export const refused = (reason: DownstreamReason, detail: string): DownstreamRefused => ({
  ok: false,
  reason,
  detail,
});

export const issued = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });

/**
 * An issuer's refusal (every issuer throws this one class): `WritError` with code `ERR_DOWNSTREAM_REFUSED`, its `reason` one of the
 * `DownstreamReason`s (also the message's first word, so a caller that reads only the message
 * still sees it).
 */
import { WritError } from "../core/index.js";
import { type DownstreamReason, ERR_DOWNSTREAM_REFUSED } from "./types.js";

export class DownstreamRefusal extends WritError {
  readonly reason: DownstreamReason;
  /** The message without the reason in front. */
  readonly detail: string;

  constructor(reason: DownstreamReason, detail: string) {
    super(ERR_DOWNSTREAM_REFUSED, `${reason}: ${detail}`);
    this.reason = reason;
    this.detail = detail;
  }
}

export function refusal(reason: DownstreamReason, message: string): DownstreamRefusal {
  return new DownstreamRefusal(reason, message);
}

/** The exception for a refusal returned by a step of a path that throws (`revoke`, `kill`). */
export function thrown(r: DownstreamRefused): DownstreamRefusal {
  return new DownstreamRefusal(r.reason, r.detail);
}

/** A refusal thrown by such a path, as the outcome of an issue that met it. */
export function refusedFrom(e: DownstreamRefusal): DownstreamRefused {
  return refused(e.reason, e.detail);
}
