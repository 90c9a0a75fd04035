/**
 * Taint: a privileged tool after an untrusted source read by the same writ (or agent) in the same
 * prompt context is refused, or held when the tool says `whenTainted: hold`. Taint outlives
 * sessions (`taint.ts`). An untrusted tool's call taints before its result is read.
 */
import { q, shadowRuleId } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { Call, CallCheck } from "./call.js";

/** The tool's taint rule's refusal of a call tainted by `taintedBy` (a hold, said so in shadow mode). */
export function taintRefusal(call: Call, taintedBy: string | undefined): GatewayError {
  const id = call.session.identity;
  const why = `${q(`${call.server}:${call.toolName}`)} is privileged and this ${id.writ ? "writ" : "agent"} read from untrusted source ${q(taintedBy)}${call.context === undefined ? "" : ` in prompt context ${q(call.context)}`}`;
  return new GatewayError(
    "tainted_session",
    call.decl.whenTainted === "refuse" ? why : `${why}: the call would be held for approval`,
    { taintedBy },
  );
}

/** The call's taint judged: its refusal, or undefined (held or not, it goes on). */
function judge(call: Call, taintedBy: string | undefined): GatewayError | undefined {
  const { decl, record } = call;
  call.tainted = taintedBy !== undefined;
  record.tainted = call.tainted;
  call.held = decl.irreversible ? "irreversible" : undefined;
  if (!call.tainted || !decl.privileged) return undefined;
  if (decl.whenTainted === "refuse" || decl.mode === "shadow") {
    // in shadow mode the refusal (or the hold) is recorded and the call goes on
    const rule = shadowRuleId.tool(call.server, call.toolName);
    return call.shadow.refuseOr(decl.mode, rule, "tool", taintRefusal(call, taintedBy));
  }
  call.held ??= "tainted";
  return undefined;
}

export const taint: CallCheck = (call, env) => {
  const id = call.session.identity;
  // where taint decides, the store is asked too: another process may have seen the untrusted read
  if (call.decl.privileged) {
    return env.taint.lookup(id, call.context, env.now()).then((by) => judge(call, by));
  }
  return judge(call, env.taint.known(id, call.context, env.now()));
};

/** An untrusted tool's call taints its writ (or agent) and prompt context before it runs. */
export const markTaint: CallCheck = (call, env) => {
  if (!call.decl.untrusted) return undefined;
  const by = `${call.server}:${call.tool.tool.name}`;
  return env.taint
    .mark(call.session.identity, call.context, by, env.now(), env.gw.taintTtlSeconds)
    .then(() => {
      call.record.taints = true;
      return undefined;
    });
};
