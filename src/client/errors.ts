/**
 * What the agent SDK throws: `WritError`s with a stable code (docs/client.md#errors). A refusal by
 * the broker is a `WritRefusal` carrying the broker's OAuth `error`, its `reason`
 * (docs/reasons.md) and, when the broker said when to ask again, `retryAfter` in seconds.
 */
import { q, WritError } from "../core/errors.js";

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

const seconds = (header: string | null): number | undefined =>
  header === null || !/^\d{1,9}$/.test(header.trim()) ? undefined : Number(header.trim());

/**
 * The refusal in an answer that is not 2xx (the broker's, or a writ resource server's: a JSON
 * object with `error`, `reason`, `error_description`); `ERR_CLIENT_PROTOCOL` when it holds none.
 */
export async function refusalFromResponse(res: Response, where: string): Promise<WritRefusal> {
  return refusalOf(res.status, await res.text(), (name) => res.headers.get(name), where);
}

/** `refusalFromResponse` of an answer already read: its status, body text and headers. */
export function refusalOf(
  status: number,
  text: string,
  header: (name: string) => string | null,
  where: string,
): WritRefusal {
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error();
    body = parsed as Record<string, unknown>;
  } catch {
    throw new WritError(
      ERR_CLIENT_PROTOCOL,
      `${q(where)} answered ${status} without a JSON object: is it a writ server?`,
    );
  }
  const str = (v: unknown, fallback: string) => (typeof v === "string" && v !== "" ? v : fallback);
  const error = str(body.error, status >= 500 ? "server_error" : "invalid_request");
  return new WritRefusal(
    status,
    error,
    str(body.reason, error),
    str(body.error_description, str(body.detail, `HTTP ${status}`)),
    seconds(header("retry-after")) ?? seconds(header("x-writ-retry-after")),
  );
}
