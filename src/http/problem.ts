/**
 * The one wire edge for errors: every HTTP error writ answers is built here, in the shape a client
 * of that endpoint expects (docs/errors.md, "On the wire").
 *
 * - RFC 9457 problem details (`application/problem+json`): everywhere but below. `type` points at
 *   the documentation of the code (`about:blank` when there is none: an unknown route, a 500);
 *   extension members `code` (an `ERR_*` of `WritErrorCode`), `reason` (a wire reason of
 *   docs/reasons.md) and `retry_after` (seconds, also the `Retry-After` header).
 * - OAuth 2 errors (RFC 6749 §5.2, `{error, error_description}` plus writ's `reason`): the broker's
 *   endpoints and the resource servers that take its tokens, with the RFC 6750 / RFC 9449
 *   `WWW-Authenticate` challenge a 401 carries.
 * - JSON-RPC 2.0 errors (`{jsonrpc, id, error: {code, message, data}}`): what the MCP endpoint
 *   answers itself, before a request reaches the MCP transport.
 *
 * The parts hand over a code, a status and a message; none builds an error body of its own.
 */
import { STATUS_CODES } from "node:http";
import type { WritErrorCode } from "../error-codes.js";

/** Where the codes are documented: a problem's `type` is a page here, its fragment the code. */
export const DOCS_URL = "https://github.com/writ-dev/writ/blob/main/docs";

/** The `type` URI of a code (`ERR_*`, listed from docs/errors.md) or a wire reason (docs/reasons.md). */
export function problemType(key: string): string {
  return /^(ERR|WARN)_/.test(key)
    ? `${DOCS_URL}/errors.md#${key.toLowerCase()}`
    : `${DOCS_URL}/reasons.md#${key}`;
}

/** RFC 9110's reason phrases, the `title` of an untyped problem (RFC 9457 §4.2.1). */
function statusTitle(status: number): string {
  if (status === 413) return "Content Too Large"; // RFC 9110's name; Node still says "Payload"
  return STATUS_CODES[status] ?? "Error";
}

export interface Problem {
  readonly status: number;
  /** What went wrong with this request, for a person: names the member or value at fault. */
  readonly detail: string;
  /** The stable code, as the `code` member; it also names the `type`. */
  readonly code?: WritErrorCode | undefined;
  /** The wire reason (docs/reasons.md), as the `reason` member; names the `type` without a code. */
  readonly reason?: string | undefined;
  /** A short summary of the type; the status's reason phrase when not given. */
  readonly title?: string | undefined;
  /** A URI naming this occurrence (a request id, an approval's path). */
  readonly instance?: string | undefined;
  /** Seconds after which a retry may succeed: the `retry_after` member and `Retry-After`. */
  readonly retryAfter?: number | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** The RFC 9457 body of a problem. */
export function problemBody(p: Problem): Record<string, unknown> {
  const key = p.code ?? p.reason;
  return {
    type: key === undefined ? "about:blank" : problemType(key),
    title: p.title ?? statusTitle(p.status),
    status: p.status,
    detail: p.detail,
    ...(p.instance === undefined ? {} : { instance: p.instance }),
    ...(p.code === undefined ? {} : { code: p.code }),
    ...(p.reason === undefined ? {} : { reason: p.reason }),
    ...(p.retryAfter === undefined ? {} : { retry_after: p.retryAfter }),
  };
}

/** The header fields of an error answer: never cached; `Retry-After` when a retry may succeed. */
function errorHeaders(
  contentType: string,
  retryAfter: number | undefined,
  extra = {},
): Record<string, string> {
  return {
    "content-type": contentType,
    "cache-control": "no-store",
    ...(retryAfter === undefined ? {} : { "retry-after": String(retryAfter) }),
    ...extra,
  };
}

/** The header fields of a problem answer. */
export function problemHeaders(p: Pick<Problem, "retryAfter" | "headers">): Record<string, string> {
  return errorHeaders("application/problem+json", p.retryAfter, p.headers);
}

/** An RFC 9457 problem answer. */
export function problem(p: Problem): Response {
  return new Response(JSON.stringify(problemBody(p)), { status: p.status, headers: problemHeaders(p) });
}

/** The `error` codes of RFC 6749 §5.2 and its extensions (RFC 6750, 8693, 8707, 9396, 9449, CIBA). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_target"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "invalid_authorization_details"
  | "access_denied"
  | "authorization_pending"
  | "slow_down"
  | "expired_token"
  | "unknown_user_id"
  | "temporarily_unavailable";

export interface OAuthError {
  readonly status: number;
  readonly error: OAuthErrorCode;
  /** `error_description`. */
  readonly description: string;
  /** writ's reason (docs/reasons.md), beside the OAuth code. */
  readonly reason?: string | undefined;
  readonly retryAfter?: number | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** The RFC 6749 §5.2 body: `{error, error_description, reason}`. */
export function oauthErrorBody(
  e: Pick<OAuthError, "error" | "description" | "reason">,
): Record<string, unknown> {
  return {
    error: e.error,
    error_description: e.description,
    ...(e.reason === undefined ? {} : { reason: e.reason }),
  };
}

/** The header fields of an OAuth error answer (RFC 6749 §5.1: `no-store`, `no-cache`). */
export function oauthErrorHeaders(e: Pick<OAuthError, "retryAfter" | "headers">): Record<string, string> {
  return { ...errorHeaders("application/json", e.retryAfter, { pragma: "no-cache" }), ...e.headers };
}

/** An OAuth 2 error answer. */
export function oauthError(e: OAuthError): Response {
  return new Response(JSON.stringify(oauthErrorBody(e)), { status: e.status, headers: oauthErrorHeaders(e) });
}

/** An auth-param value as an RFC 9110 quoted-string of what RFC 6750 §3 allows: printable ASCII. */
function quoted(value: string): string {
  return `"${value
    .slice(0, 300)
    .replace(/["\\]/g, "'")
    .replace(/[^\x20-\x7e]/g, "?")}"`;
}

/**
 * A `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1): `scheme` followed by its
 * parameters, those undefined left out, e.g. `DPoP error="invalid_token", error_description="…"`.
 */
export function challenge(
  scheme: "Bearer" | "DPoP",
  params: Readonly<Record<string, string | undefined>> = {},
): string {
  const list = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quoted(v)}`);
  return list.length === 0 ? scheme : `${scheme} ${list.join(", ")}`;
}

/** JSON-RPC 2.0's error codes writ answers with (§5.1; -32000 to -32099 are the server's). */
export const JSONRPC = {
  invalidRequest: -32600,
  /** No session for the request: `initialize` first (the MCP SDK's own). */
  noSession: -32000,
  /** The session named by `Mcp-Session-Id` is unknown or ended. */
  sessionNotFound: -32001,
} as const;

export interface JsonRpcError {
  readonly status: number;
  readonly id?: string | number | null | undefined;
  readonly code: number;
  readonly message: string;
  /** writ's reason and anything else a client may read, as `error.data`. */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
}

/** The JSON-RPC 2.0 error object: `{jsonrpc, id, error: {code, message, data}}`. */
export function jsonRpcErrorBody(e: Omit<JsonRpcError, "status">): Record<string, unknown> {
  return {
    jsonrpc: "2.0",
    id: e.id ?? null,
    error: { code: e.code, message: e.message, ...(e.data === undefined ? {} : { data: e.data }) },
  };
}

/** A JSON-RPC error answered over HTTP. */
export function jsonRpcError(e: JsonRpcError): Response {
  return new Response(JSON.stringify(jsonRpcErrorBody(e)), {
    status: e.status,
    headers: errorHeaders("application/json", undefined),
  });
}
