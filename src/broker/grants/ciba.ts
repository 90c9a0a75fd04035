/**
 * CIBA (poll mode) for playbooks that need approval: the backchannel authentication request puts the
 * intent before its approvers; the `urn:openid:params:grant-type:ciba` grant polls it and, once
 * approved, runs every check again at issuance.
 */
import { type Agent, isWritError, q } from "../../core/index.js";
import {
  type ApprovalRequest,
  type ApprovalService,
  ERR_APPROVAL_CLOSED,
  ERR_APPROVAL_EXPIRED,
} from "../approvals.js";
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  done,
  NO_STORE,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  type Refused,
  reasonOf,
  refuse,
} from "../oauth.js";
import { type IssuanceSlot, issuing } from "./issuance.js";
import {
  absoluteUri,
  audienceAllowed,
  audienceRefusal,
  countsTowardsSlowDown,
  type Intent,
  intentRefusal,
  issueWrit,
  judge,
  readIntent,
  sponsorOf,
  stoppedOrSlowed,
} from "./steps.js";

export async function bcAuthorize(
  env: string,
  client: AuthenticatedClient,
  req: OAuthRequest,
  deps: BrokerDeps,
  approvals: ApprovalService,
): Promise<Outcome<OAuthResponse>> {
  const now = nowOf(deps);
  const agent = client.agent;
  const stopped = await stoppedOrSlowed(agent, env, now, deps);
  if (stopped) return stopped;
  const read = readIntent(req, env);
  if (!read.ok) return read;
  const intent = read.value;
  const hint = req.form.get("login_hint");
  if (hint !== null && !/^[^\s\p{Cc}]{1,254}$/u.test(hint)) {
    return refuse(
      400,
      "invalid_request",
      "`login_hint` must name the sponsor: 1 to 254 characters without spaces",
      "login_hint_invalid",
    );
  }
  // the audience is fixed here, shown to the approvers and bound into the approval
  const audience = absoluteUri(req.form.get("resource"));
  if (!audience.ok) return audience;
  const resource = audience.value;
  const detail = { playbook: intent.playbook, parameters: intent.params, ticket: intent.ticket };
  const denied = async (refusal: Refused): Promise<Refused> => {
    const reason = refusal.refusal.reason;
    if (countsTowardsSlowDown(reason)) await deps.backoff.record(agent.id, env, now);
    await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, ...detail });
    return refusal;
  };
  const { outcome } = await judge(env, agent, intent, now, deps);
  if (outcome.kind === "refused") return denied(intentRefusal(outcome));
  if (outcome.kind === "issue") {
    return refuse(
      400,
      "invalid_request",
      `playbook ${q(intent.playbook)} needs no approval in ${q(env)}: use token exchange`,
      "approval_not_needed",
    );
  }
  if (!audienceAllowed(deps, env, resource, outcome.playbook)) {
    return denied(audienceRefusal(env, resource, outcome.playbook));
  }
  const sponsor = sponsorOf(hint, outcome.playbook, env, deps.config);
  if (!sponsor.ok) return denied(sponsor);
  const lifetime = deps.approvalLifetimeSeconds ?? 600;
  const request = await approvals.createRequest(
    {
      agent: agent.id,
      playbook: intent.playbook,
      params: intent.params,
      environment: env,
      ticket: intent.ticket,
      audience: resource,
      requester: sponsor.value ?? agent.id,
      expiresAt: new Date(now.getTime() + lifetime * 1000),
    },
    { now },
  );
  // the approval service records `approval.request` with the requester
  return done({
    status: 200,
    body: { auth_req_id: request.id, expires_in: lifetime, interval: request.pollInterval },
    headers: NO_STORE,
  });
}

/** The approval request the poll names: this agent's, here, for the audience it was approved for. */
async function polledRequest(
  env: string,
  agent: string,
  req: OAuthRequest,
  approvals: ApprovalService,
): Promise<Outcome<{ id: string; request: ApprovalRequest; resource: string }>> {
  const id = req.form.get("auth_req_id");
  if (!id) return refuse(400, "invalid_request", "`auth_req_id` is required", "auth_req_id_missing");
  const request = await approvals.get(id);
  if (!request || request.agent !== agent || request.environment !== env) {
    return refuse(400, "invalid_grant", "no such approval request for this agent here", "approval_not_found");
  }
  // The audience was fixed at bc-authorize and approved as such: the poll may repeat it, not change it.
  const asked = req.form.get("resource");
  if (request.audience !== undefined && asked !== null && asked !== request.audience) {
    return refuse(
      400,
      "invalid_target",
      `this approval is for \`resource\` ${q(request.audience)}, not ${q(asked)}`,
      "resource_mismatch",
    );
  }
  const resource = request.audience !== undefined ? done(request.audience) : absoluteUri(asked);
  if (!resource.ok) return resource;
  return done({ id, request, resource: resource.value });
}

/** Where the approval stands: approved, or the answer to a poll that must wait or stop. */
async function approved(
  id: string,
  request: ApprovalRequest,
  now: Date,
  approvals: ApprovalService,
): Promise<Refused | undefined> {
  const pace = await approvals.pollTooFast(id, now);
  if (pace.tooFast) {
    return refuse(400, "slow_down", `poll at most every ${pace.pollInterval} s`, "slow_down", {
      "retry-after": String(pace.pollInterval),
    });
  }
  let status: Awaited<ReturnType<ApprovalService["status"]>>;
  try {
    status = await approvals.status(id, { binding: request.binding, now });
  } catch (err) {
    if (isWritError(err) && err.code.startsWith("ERR_APPROVAL_")) {
      return refuse(400, "invalid_grant", err.message, reasonOf(err.code));
    }
    throw err;
  }
  switch (status.status) {
    case "pending":
      return refuse(400, "authorization_pending", "the approvers have not decided yet", "approval_pending");
    case "denied":
      return refuse(400, "access_denied", "the approvers denied this request", "approval_denied");
    case "expired":
      return refuse(400, "expired_token", "the approval request expired; ask again", "approval_expired");
    case "consumed":
      return refuse(400, "invalid_grant", "this approval was used already", "approval_consumed");
    default:
      return undefined;
  }
}

/** CIBA poll: pending, slow down, denied, expired — or, once approved, the writ. */
export async function cibaGrant(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
  approvals: ApprovalService,
): Promise<Outcome<OAuthResponse>> {
  const now = nowOf(deps);
  const agent = client.agent;
  const polled = await polledRequest(env, agent.id, req, approvals);
  if (!polled.ok) return polled;
  const { id, request } = polled.value;
  const waiting = await approved(id, request, now, approvals);
  if (waiting) return waiting;
  // approved: every check again, now, at issuance
  const intent: Intent = {
    playbook: request.playbook,
    params: { ...request.params },
    ...(request.ticket ? { ticket: request.ticket } : {}),
  };
  // counted, checked and stored as one step against the agent's other issuances, in any process
  return issuing(deps, agent.id, (slot) =>
    issueApproved(env, agent, intent, polled.value, proof, now, deps, approvals, slot),
  );
}

async function issueApproved(
  env: string,
  agent: Agent,
  intent: Intent,
  polled: { id: string; request: ApprovalRequest; resource: string },
  proof: DpopProof,
  now: Date,
  deps: BrokerDeps,
  approvals: ApprovalService,
  slot: IssuanceSlot,
): Promise<Outcome<OAuthResponse>> {
  const { id, request, resource } = polled;
  const { key, outcome } = await judge(env, agent, intent, now, deps, "approved", slot);
  const denied = async (refusal: Refused): Promise<Refused> => {
    const reason = refusal.refusal.reason;
    await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, approval: id });
    return refusal;
  };
  if (outcome.kind !== "issue") {
    return denied(
      refuse(
        outcome.kind === "refused" && outcome.reason === "unknown_agent" ? 401 : 400,
        outcome.kind === "refused" ? outcome.error : "access_denied",
        outcome.message,
        outcome.reason,
      ),
    );
  }
  // writ.yaml may have changed since the request: the audience must still be allowed
  if (!audienceAllowed(deps, env, resource, outcome.playbook)) {
    return denied(audienceRefusal(env, resource, outcome.playbook));
  }
  // and the sponsor must still be one writ.yaml declares (and an approver, where the playbook
  // says so): the request may have been approved under an older writ.yaml
  const sponsor = sponsorOf(
    request.requester !== agent.id ? request.requester : null,
    outcome.playbook,
    env,
    deps.config,
  );
  if (!sponsor.ok) return denied(sponsor);
  return issueWrit(
    env,
    outcome,
    {
      intent,
      resource,
      proof,
      key,
      approval: id,
      sponsor: sponsor.value,
      beforeStore: (writId) => consumed(id, request, writId, now, approvals),
    },
    deps,
  );
}

/** The approval spent on the writ `writId`; refused when another poll spent it first, or it expired. */
async function consumed(
  id: string,
  request: ApprovalRequest,
  writId: string,
  now: Date,
  approvals: ApprovalService,
): Promise<Refused | undefined> {
  try {
    await approvals.consume(id, writId, { binding: request.binding, now });
    return undefined;
  } catch (err) {
    // the same answers as a poll that finds it so
    if (isWritError(err, ERR_APPROVAL_CLOSED)) {
      return refuse(400, "invalid_grant", "this approval was used already", "approval_consumed");
    }
    if (isWritError(err, ERR_APPROVAL_EXPIRED)) {
      return refuse(400, "expired_token", "the approval request expired; ask again", "approval_expired");
    }
    throw err;
  }
}
