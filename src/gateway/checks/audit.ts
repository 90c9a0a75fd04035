/**
 * Audit: every call is recorded — allowed, refused or held — with the agent, writ, session, tool,
 * derived resources, the arguments' digest (never the arguments) and the prompt-context id. An
 * allowed call's record is written while the upstream works, and its result is returned only once
 * the record is durable: no record, no result.
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { isWritError } from "../../core/index.js";
import { GatewayError, type GatewayReason } from "../errors.js";
import type { CallContext } from "../gateway.js";
import { REFUSAL_META } from "../names.js";
import type { Call, CallEnv } from "./call.js";

export function refusalResult(
  reason: GatewayReason,
  message: string,
  detail: Record<string, unknown>,
): CallToolResult {
  return {
    isError: true,
    content: [{ type: "text", text: `writ refused this call [${reason}]: ${message}` }],
    _meta: { [REFUSAL_META]: { reason, message, ...detail } },
  };
}

/** The record as known before any check: who calls, and whether they are tainted already. */
export function startRecord(
  env: CallEnv,
  sessionId: string,
  name: string,
  ctx: CallContext,
): Record<string, unknown> {
  const s = env.sessions.get(sessionId);
  const id = s?.identity;
  return {
    session: sessionId,
    agent: id?.agent,
    environment: id?.environment,
    writ: id?.writ?.id,
    sponsor: id?.sponsor,
    ...(id?.delegation === undefined
      ? {}
      : { delegation: { chain: id.delegation.chain, parent: id.delegation.parent } }),
    tool: name,
    tainted:
      id === undefined
        ? undefined
        : env.taint.known(
            id,
            typeof ctx.promptContextId === "string" ? ctx.promptContextId : undefined,
            env.now(),
          ) !== undefined,
  };
}

/**
 * The allowed call, forwarded while its record is written; its result once both are done. The
 * request goes on the wire first: appending starts with the record's normalisation, canonical JSON
 * and size on this thread, and the upstream works meanwhile instead of after it.
 */
export async function forward(call: Call, env: CallEnv): Promise<CallToolResult> {
  const forwarded = call.conn!.call(call.tool.tool.name, call.args, {
    timeoutMs: env.deps.callTimeoutMs ?? 60_000,
  });
  call.record.decision = { allowed: true, code: "allowed" };
  let audited: Promise<unknown>;
  try {
    audited = env.deps.audit("gateway.call", call.record);
  } catch (err) {
    audited = Promise.reject(err);
  }
  const [auditResult, callResult] = await Promise.allSettled([audited, forwarded]);
  if (auditResult.status === "rejected") {
    // fail closed: a call that cannot be audited does not return its result
    return refusalResult("gateway_error", "the call could not be audited", {});
  }
  if (callResult.status === "rejected") {
    await env.deps.audit("gateway.call_failed", {
      session: call.sessionId,
      tool: call.record.tool,
      error: (callResult.reason as Error)?.message?.slice(0, 300) ?? "error",
    });
    return refusalResult(
      "upstream_error",
      `the upstream call failed: ${(callResult.reason as Error)?.message ?? ""}`.slice(0, 500),
      {},
    );
  }
  return callResult.value;
}

/** A refused (or held) call's record and result; any error that is not a refusal is one (fail closed). */
export async function refuse(call: Call, env: CallEnv, err: unknown): Promise<CallToolResult> {
  const refusal =
    err instanceof GatewayError
      ? err
      : new GatewayError("gateway_error", "the call could not be evaluated; it is refused", {
          error: isWritError(err) ? err.code : "error",
        });
  const held = refusal.reason === "approval_required" || refusal.reason === "approval_pending";
  const detail = { ...refusal.detail };
  delete (detail as Record<string, unknown>).binding;
  try {
    await env.deps.audit("gateway.call", {
      ...call.record,
      decision: {
        allowed: false,
        held,
        code: refusal.reason,
        message: refusal.message,
        ...(detail.approval ? { approval: detail.approval } : {}),
      },
    });
  } catch {
    // still refused; the audit failure is the server's to report
  }
  return refusalResult(refusal.reason, refusal.message, detail);
}
