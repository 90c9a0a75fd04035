/**
 * An issuer's refusal: `WritError` with code `ERR_DOWNSTREAM_REFUSED`, its `reason` one of the
 * `DownstreamReason`s (also the message's first word, so a caller that reads only the message
 * still sees it).
 */
import { WritError } from "../../core/index.js";
import { type DownstreamReason, ERR_DOWNSTREAM_REFUSED } from "../types.js";

export class DownstreamRefusal extends WritError {
  readonly reason: DownstreamReason;

  constructor(reason: DownstreamReason, message: string) {
    super(ERR_DOWNSTREAM_REFUSED, `${reason}: ${message}`);
    this.reason = reason;
  }
}

export function refusal(reason: DownstreamReason, message: string): DownstreamRefusal {
  return new DownstreamRefusal(reason, message);
}
