/**
 * The checks every `tools/call` passes before it reaches an upstream, in order; the first refusal a
 * check returns wins, and any error one throws is a refusal too (fail closed). Each check is a file
 * of its own. After a refusal the shadow rules of the checks not reached are still asked, for the
 * record only (shadow-sweep.ts).
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { GatewayError } from "../errors.js";
import type { CallContext } from "../gateway.js";
import { argumentsShape } from "./arguments.js";
import { forward, refuse, startRecord } from "./audit.js";
import { type Call, type CallCheck, type CallEnv, newCall } from "./call.js";
import { connection } from "./connection.js";
import { credentials } from "./credentials.js";
import { decision } from "./decision.js";
import { hold } from "./hold.js";
import { pins } from "./pins.js";
import { promptContext } from "./prompt-context.js";
import { rateLimits } from "./rate.js";
import { resources } from "./resources.js";
import { schema } from "./schema.js";
import { session, stillAlive } from "./session.js";
import { sweepShadow } from "./shadow-sweep.js";
import { markTaint, taint } from "./taint.js";
import { uses } from "./uses.js";

export type { CallEnv } from "./call.js";

export const CALL_CHECKS: readonly CallCheck[] = [
  session, //        the session is alive and no kill switch stops its agent
  pins, //           the tool exists upstream and its definition is the one pinned
  promptContext, //  the prompt-context id, when named, is well formed
  argumentsShape, // an object, nothing that cannot be decided or audited; its digest recorded
  rateLimits, //     per agent, per agent and tool
  schema, //         the tool's inputSchema and writ.yaml's constraints
  resources, //      derived from the arguments, within the gateway's bounds
  taint, //          a privileged tool after an untrusted read: refused or held
  decision, //       the decision point, on each resource, with the session's writ
  hold, //           irreversible (or tainted-held) calls need an approval bound to their arguments
  credentials, //    per-writ credentials: the writ's own connection
  uses, //           a call only the writ allows spends one of its uses
  stillAlive, //     a kill engaged while the checks ran still stops the call
  connection, //     the upstream is connected
  markTaint, //      an untrusted tool taints before its result is read
];

/** One call: the checks in order, then the upstream and the audit record together. */
export async function callTool(
  env: CallEnv,
  sessionId: string,
  name: string,
  input: unknown,
  ctx: CallContext,
): Promise<CallToolResult> {
  const call = newCall(sessionId, name, input, ctx, startRecord(env, sessionId, name, ctx));
  let at = 0;
  let refusal: GatewayError | undefined;
  try {
    for (; at < CALL_CHECKS.length; at++) {
      const out = CALL_CHECKS[at]!(call, env);
      refusal = out === undefined || out instanceof GatewayError ? out : await out;
      if (refusal !== undefined) break;
    }
    if (refusal === undefined) return await forward(call, env);
  } catch (err) {
    // a refusal thrown from deeper down (the bounds, a writ's connection) is still one
    if (err instanceof GatewayError) await sweep(call, env, at);
    return refuse(call, env, err);
  }
  await sweep(call, env, at);
  return refuse(call, env, refusal);
}

/** The shadow rules the refused call did not reach, recorded; a failure marks the record instead. */
async function sweep(call: Call, env: CallEnv, refusedAt: number): Promise<void> {
  try {
    await sweepShadow(call, env, CALL_CHECKS, refusedAt);
  } catch {
    call.record.shadowIncomplete = true;
  }
}
