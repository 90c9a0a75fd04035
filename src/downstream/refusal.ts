/**
 * What a step of an issuer comes to: its value, or the refusal (a reason and what to say), which the
 * issuer throws as a `DownstreamRefusal` at its edge (`DownstreamIssuer.issue`).
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

/** The issuer's exception for a refusal returned by one of its steps. */
export function thrown(r: DownstreamRefused): DownstreamRefusal {
  return new DownstreamRefusal(r.reason, r.detail);
}
