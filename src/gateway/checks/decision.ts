/**
 * The decision point decides `mcp:<server>:<tool>` on each resource the call touches, with the
 * session's writ; the first denial refuses under the decision's own code. Whether only the writ
 * allowed the call (no baseline grant for some resource) decides whether it spends a use.
 */
import type { Decision } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

export const decision: CallCheck = (call, env) => {
  const id = call.session.identity;
  const writs = id.writ ? [id.writ] : [];
  const at = env.now();
  call.at = at;
  const reasons: unknown[] = [];
  for (const resource of call.resources) {
    const d = env.deps.pdp.decideWith(
      {
        agent: id.agent,
        action: call.action,
        resource,
        environment: id.environment,
        now: at,
        context: {
          writId: id.writ?.id,
          tainted: call.tainted,
          arguments: call.args,
          promptContextId: call.context,
        },
      },
      writs,
    );
    reasons.push(...d.reasons);
    call.shadow.add(...(d.shadow ?? []));
    if (!d.allowed) {
      call.record.reasons = d.reasons;
      throw new GatewayError(d.code as Exclude<Decision["code"], "allowed">, d.message, {
        code: d.code,
        resource,
      });
    }
    if (!d.reasons.some((r) => r.kind === "grant" && r.source === "baseline")) call.viaWritOnly = true;
  }
  call.record.reasons = reasons;
};
