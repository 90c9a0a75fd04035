/**
 * CIBA (poll mode) for playbooks that need approval: the backchannel authentication request puts the
 * intent before its approvers; the `urn:openid:params:grant-type:ciba` grant polls it and, once
 * approved, runs every check again at issuance.
 */
import { isWritError, q } from "../../core/index.js";
import { type ApprovalService, ERR_APPROVAL_CLOSED, ERR_APPROVAL_EXPIRED } from "../approvals.js";
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  NO_STORE,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  oauthError,
  reasonOf,
  refuse,
} from "../oauth.js";
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
): Promise<OAuthResponse> {
  const now = nowOf(deps);
  const agent = client.agent;
  const stopped = await stoppedOrSlowed(agent, env, now, deps);
  if (stopped) return stopped;
  const intent = readIntent(req, env);
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
  const resource = absoluteUri(req.form.get("resource"));
  const detail = { playbook: intent.playbook, parameters: intent.params, ticket: intent.ticket };
  const denied = async (response: OAuthResponse, reason: unknown): Promise<OAuthResponse> => {
    if (countsTowardsSlowDown(reason)) await deps.backoff.record(agent.id, env, now);
    await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, ...detail });
    return response;
  };
  const { outcome } = await judge(env, agent, intent, now, deps);
  if (outcome.kind === "refused") {
    return denied(intentRefusal(outcome), outcome.reason);
  }
  if (outcome.kind === "issue") {
    return refuse(
      400,
      "invalid_request",
      `playbook ${q(intent.playbook)} needs no approval in ${q(env)}: use token exchange`,
      "approval_not_needed",
    );
  }
  if (!audienceAllowed(deps, env, resource, outcome.playbook)) {
    return denied(audienceRefusal(env, resource, outcome.playbook), "resource_not_allowed");
  }
  const sponsor = sponsorOf(hint, outcome.playbook, env, deps.config);
  if (sponsor !== undefined && typeof sponsor !== "string") return denied(sponsor, sponsor.body.reason);
  const lifetime = deps.approvalLifetimeSeconds ?? 600;
  const request = await approvals.createRequest(
    {
      agent: agent.id,
      playbook: intent.playbook,
      params: intent.params,
      environment: env,
      ticket: intent.ticket,
      audience: resource,
      requester: sponsor ?? agent.id,
      expiresAt: new Date(now.getTime() + lifetime * 1000),
    },
    { now },
  );
  // the approval service records `approval.request` with the requester
  return {
    status: 200,
    body: { auth_req_id: request.id, expires_in: lifetime, interval: request.pollInterval },
    headers: NO_STORE,
  };
}

/** CIBA poll: pending, slow down, denied, expired — or, once approved, the writ. */
export async function cibaGrant(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
  approvals: ApprovalService,
): Promise<OAuthResponse> {
  const now = nowOf(deps);
  const agent = client.agent;
  const id = req.form.get("auth_req_id");
  if (!id) return refuse(400, "invalid_request", "`auth_req_id` is required", "auth_req_id_missing");
  const request = await approvals.get(id);
  if (!request || request.agent !== agent.id || request.environment !== env) {
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
  const resource = request.audience ?? absoluteUri(asked);
  const pace = await approvals.pollTooFast(id, now);
  if (pace.tooFast) {
    return oauthError(400, "slow_down", `poll at most every ${pace.pollInterval} s`, "slow_down", {
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
      return oauthError(
        400,
        "authorization_pending",
        "the approvers have not decided yet",
        "approval_pending",
      );
    case "denied":
      return oauthError(400, "access_denied", "the approvers denied this request", "approval_denied");
    case "expired":
      return oauthError(400, "expired_token", "the approval request expired; ask again", "approval_expired");
    case "consumed":
      return oauthError(400, "invalid_grant", "this approval was used already", "approval_consumed");
    default:
      break;
  }
  // approved: every check again, now, at issuance
  const intent: Intent = {
    playbook: request.playbook,
    params: { ...request.params },
    ...(request.ticket ? { ticket: request.ticket } : {}),
  };
  const { key, outcome, release } = await judge(env, agent, intent, now, deps, "approved", { reserve: true });
  try {
    if (outcome.kind !== "issue") {
      const reason = outcome.reason;
      await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, approval: id });
      return oauthError(
        outcome.kind === "refused" && reason === "unknown_agent" ? 401 : 400,
        outcome.kind === "refused" ? outcome.error : "access_denied",
        outcome.message,
        reason,
      );
    }
    // writ.yaml may have changed since the request: the audience must still be allowed
    if (!audienceAllowed(deps, env, resource, outcome.playbook)) {
      await deps.audit("broker.denied", {
        environment: env,
        agent: agent.id,
        reason: "resource_not_allowed",
        approval: id,
      });
      return audienceRefusal(env, resource, outcome.playbook);
    }
    // and the sponsor must still be one writ.yaml declares (and an approver, where the playbook
    // says so): the request may have been approved under an older writ.yaml
    const sponsor = sponsorOf(
      request.requester !== agent.id ? request.requester : null,
      outcome.playbook,
      env,
      deps.config,
    );
    if (sponsor !== undefined && typeof sponsor !== "string") {
      await deps.audit("broker.denied", {
        environment: env,
        agent: agent.id,
        reason: sponsor.body.reason,
        approval: id,
      });
      return sponsor;
    }
    return issueWrit(
      env,
      outcome,
      {
        intent,
        resource,
        proof,
        key,
        approval: id,
        sponsor,
        beforeStore: async (writId) => {
          try {
            await approvals.consume(id, writId, { binding: request.binding, now });
          } catch (err) {
            // another poll consumed it first, or it expired meanwhile: the same answers as above
            if (isWritError(err, ERR_APPROVAL_CLOSED)) {
              refuse(400, "invalid_grant", "this approval was used already", "approval_consumed");
            }
            if (isWritError(err, ERR_APPROVAL_EXPIRED)) {
              refuse(400, "expired_token", "the approval request expired; ask again", "approval_expired");
            }
            throw err;
          }
        },
      },
      deps,
    );
  } finally {
    release();
  }
}
