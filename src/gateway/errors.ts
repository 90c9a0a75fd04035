/**
 * The gateway's refusals: one error type carrying a machine-readable `reason` (docs/reasons.md,
 * "Gateway"). The MCP edge turns a refusal into a tool result with `isError` and the reason in
 * `_meta`; HTTP authentication failures become 401 with `WWW-Authenticate`.
 */
import { type DecisionCode, WritError } from "../core/index.js";
import type { DownstreamReason } from "../downstream/types.js";

export const ERR_GATEWAY_REFUSED = "ERR_GATEWAY_REFUSED";

/** Why a call or a session was refused. */
export type GatewayReason =
  | "unknown_tool"
  | "tool_quarantined"
  | "rate_limited"
  | "arguments_invalid"
  | "argument_constraint"
  | "resource_invalid"
  | "outside_bounds"
  | "header_mismatch"
  | "prompt_context_invalid"
  | "tainted_session"
  | "approval_required"
  | "approval_pending"
  | "approval_denied"
  | "killed"
  | "session_ended"
  | "upstream_unavailable"
  | "upstream_error"
  /** An upstream with per-writ credentials already runs for its `maxWrits` writs. */
  | "upstream_busy"
  /** A downstream issuer refused the writ's credential for the upstream (`downstream_*`). */
  | DownstreamReason
  | "gateway_error"
  | "writ_exhausted"
  | "writ_revoked"
  | "writ_expired"
  | "writ_not_found"
  | "writ_not_yet_valid"
  /** The decision point's denials, under its own codes (`no_grant`, `explicit_deny` …). */
  | Exclude<DecisionCode, "allowed">;

export class GatewayError extends WritError {
  readonly reason: GatewayReason;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(reason: GatewayReason, message: string, detail: Record<string, unknown> = {}) {
    super(ERR_GATEWAY_REFUSED, message);
    this.reason = reason;
    this.detail = detail;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
