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
