/**
 * Holds: an irreversible call (or a privileged one in a tainted context, when its tool says
 * `whenTainted: hold`) needs an approval bound to its exact arguments (`holds.ts`).
 */
import { GatewayError } from "../errors.js";
import { admitHeld } from "../holds.js";
import type { CallCheck } from "./call.js";

export const hold: CallCheck = (call, env) => {
  if (call.held === undefined) return undefined;
  const id = call.session.identity;
  return admitHeld(
    env.deps.store,
    env.deps.approvals,
    {
      agent: id.agent,
      environment: id.environment,
      server: call.server,
      tool: call.toolName,
      argumentsDigest: call.record.argumentsDigest as string,
      arguments: call.args,
      resources: call.resources,
      requester: id.sponsor ?? id.agent,
      ttlSeconds: call.decl.approvalTtlSeconds,
      why: call.held,
    },
    call.at,
  ).then((approval) => {
    if (approval instanceof GatewayError) return approval;
    call.record.approval = approval;
    return undefined;
  });
};
