/**
 * What the agent SDK throws: `WritError`s with a stable code (docs/client.md#errors). A refusal by
 * the broker is a `WritRefusal` carrying the broker's OAuth `error`, its `reason`
 * (docs/reasons.md) and, when the broker said when to ask again, `retryAfter` in seconds.
 */
import { WritError } from "../core/errors.js";

/** The broker (or a resource) said no; `reason` says why. */
export const ERR_CLIENT_REFUSED = "ERR_CLIENT_REFUSED";
/** The server could not be reached (connection refused, DNS, timeout). */
export const ERR_CLIENT_UNREACHABLE = "ERR_CLIENT_UNREACHABLE";
/** The server answered something the protocol does not allow (not JSON, a malformed token response). */
export const ERR_CLIENT_PROTOCOL = "ERR_CLIENT_PROTOCOL";
/** The agent's key cannot sign (not a private JWK, an unsupported key type). */
export const ERR_CLIENT_KEY = "ERR_CLIENT_KEY";
/** The options cannot work (issuer not a URL, plain HTTP to a host other than this machine). */
export const ERR_CLIENT_OPTIONS = "ERR_CLIENT_OPTIONS";
/** No approver decided before the approval request expired or the wait the caller allowed ended. */
export const ERR_CLIENT_APPROVAL_TIMEOUT = "ERR_CLIENT_APPROVAL_TIMEOUT";

export type WritClientErrorCode =
  | typeof ERR_CLIENT_REFUSED
  | typeof ERR_CLIENT_UNREACHABLE
  | typeof ERR_CLIENT_PROTOCOL
  | typeof ERR_CLIENT_KEY
  | typeof ERR_CLIENT_OPTIONS
  | typeof ERR_CLIENT_APPROVAL_TIMEOUT;

/** The broker refused: its HTTP status, OAuth `error`, writ `reason` and description. */
export class WritRefusal extends WritError {
  override readonly code: typeof ERR_CLIENT_REFUSED = ERR_CLIENT_REFUSED;

  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string,
    readonly description: string,
    /** Seconds to wait before asking again (`Retry-After`, or `X-Writ-Retry-After` after a denial). */
    readonly retryAfter: number | undefined,
  ) {
    super(ERR_CLIENT_REFUSED, `refused: ${reason}: ${description}`);
  }
}

export function isWritRefusal(err: unknown, reason?: string): err is WritRefusal {
  return err instanceof WritRefusal && (reason === undefined || err.reason === reason);
}
