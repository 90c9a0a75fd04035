/**
 * The decision point decides `mcp:<server>:<tool>` on each resource the call touches, with the
 * session's writ; the first denial refuses under the decision's own code, and the resources after
 * it are still asked for their shadow records only (docs/shadow.md). Whether only the writ allowed
 * the call (no baseline grant for some resource) decides whether it spends a use.
 */
import type { Decision } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { Call, CallCheck, CallEnv } from "./call.js";

/** The decision point's answer for one resource of the call, at `at`, `tainted` or not. */
export function decide(call: Call, env: CallEnv, resource: string, at: Date, tainted: boolean): Decision {
  const id = call.session.identity;
  return env.deps.pdp.decideWith(
    {
      agent: id.agent,
      action: call.action,
      resource,
      environment: id.environment,
      now: at,
      context: {
        writId: id.writ?.id,
        tainted,
        arguments: call.args,
        promptContextId: call.context,
      },
    },
    id.writ ? [id.writ] : [],
  );
}

export const decision: CallCheck = (call, env) => {
  const at = env.now();
  call.at = at;
  const reasons: unknown[] = [];
  for (const [i, resource] of call.resources.entries()) {
    const d = decide(call, env, resource, at, call.tainted);
    reasons.push(...d.reasons);
    call.shadow.add(...(d.shadow ?? []));
    if (!d.allowed) {
      call.record.reasons = d.reasons;
      // what the shadow rules say of the resources not reached: recorded, never deciding
      for (const rest of call.resources.slice(i + 1)) {
        call.shadow.add(...(decide(call, env, rest, at, call.tainted).shadow ?? []));
      }
      return new GatewayError(d.code as Exclude<Decision["code"], "allowed">, d.message, {
        code: d.code,
        resource,
      });
    }
    if (!d.reasons.some((r) => r.kind === "grant" && r.source === "baseline")) call.viaWritOnly = true;
  }
  call.record.reasons = reasons;
  return undefined;
};
