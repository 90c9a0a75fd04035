/**
 * Token exchange (RFC 8693) → a writ: the agent's own baseline token (DPoP-bound to the same key)
 * and one playbook intent (RFC 9396 `authorization_details`, RFC 8707 `resource`), in order: kill
 * switch, slow-down, subject token, audience, the intent checks, then issuance.
 */
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  done,
  endpoints,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  type Refused,
  refuse,
  withHeaders,
} from "../oauth.js";
import type { AccessTokenClaims } from "../tokens.js";
import { delegate } from "./delegation.js";
import { issuing } from "./issuance.js";
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
  stoppedOrSlowed,
  subjectTokenOf,
  verifiedSubject,
} from "./steps.js";

export async function exchange(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  // with an actor token: a child writ for a sub-agent (delegation.ts)
  if (req.form.get("actor_token") !== null || req.form.get("actor_token_type") !== null) {
    return delegate(env, client, proof, req, deps);
  }
  const now = nowOf(deps);
  const agent = client.agent;

  const stopped = await stoppedOrSlowed(agent, env, now, deps);
  if (stopped) return stopped;
  const deny = async (refusal: Refused, detail: Record<string, unknown>): Promise<Refused> => {
    const reason = refusal.refusal.reason;
    await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, ...detail });
    if (!countsTowardsSlowDown(reason)) return refusal;
    const b = await deps.backoff.record(agent.id, env, now);
    return withHeaders(refusal, { "x-writ-retry-after": String(b.retryAfter) });
  };

  const subjectToken = subjectTokenOf(req, "the agent's baseline token");
  if (!subjectToken.ok) return subjectToken;
  const subject = await baselineSubject(subjectToken.value, env, agent.id, proof, deps);
  if (!subject.ok) return deny(subject, {});
  const resource = absoluteUri(req.form.get("resource"));
  if (!resource.ok) return resource;
  const intent = readIntent(req, env);
  if (!intent.ok) return intent;

  // the count, the check and the store inside an issuance batch (issuance.ts): exact against
  // every other issuance for this agent, in this process or another sharing the store, so servers
  // on one PostgreSQL cannot together take the agent past its runner class's limits
  return issuing(deps, agent.id, async (slot) => {
    const { key, outcome } = await judge(env, agent, intent.value, now, deps, undefined, slot);
    return judged(outcome, key, intent.value, resource.value);
  });

  async function judged(
    outcome: Awaited<ReturnType<typeof judge>>["outcome"],
    key: Awaited<ReturnType<typeof judge>>["key"],
    intent: Intent,
    resource: string,
  ): Promise<Outcome<OAuthResponse>> {
    const detail = {
      playbook: intent.playbook,
      parameters: intent.params,
      ticket: intent.ticket,
      audience: resource,
    };
    if (outcome.kind === "refused") {
      return deny(intentRefusal(outcome), { ...detail, ...(outcome.shadow && { shadow: outcome.shadow }) });
    }
    if (!audienceAllowed(deps, env, resource, outcome.playbook)) {
      return deny(audienceRefusal(env, resource, outcome.playbook), detail);
    }
    if (outcome.kind === "needs-approval") {
      // Approvals go through CIBA (backchannel authentication); not a denial, so no slow-down.
      await deps.audit("broker.approval_required", { environment: env, agent: agent.id, ...detail });
      return refuse(
        400,
        "access_denied",
        `${outcome.message}: ask through the backchannel authentication endpoint (${endpoints(deps.baseUrl, env).bcAuthorize})`,
        "approval_required",
      );
    }

    return issueWrit(env, outcome, { intent, resource, proof, key }, deps);
  }
}

/**
 * The subject token: this agent's own baseline token from this environment, bound to the key of
 * this request's proof when it is bound at all; nobody else's.
 */
async function baselineSubject(
  token: string,
  env: string,
  agent: string,
  proof: DpopProof,
  deps: BrokerDeps,
): Promise<Outcome<AccessTokenClaims>> {
  const verified = await verifiedSubject(token, env, deps);
  if (!verified.ok) return verified;
  const subject = verified.value;
  if (subject.client_id !== agent || subject.sub !== agent || subject.scope !== "writ:baseline") {
    return refuse(
      400,
      "invalid_grant",
      "the subject token must be this agent's own baseline token",
      "subject_token_mismatch",
    );
  }
  if (subject.cnf && subject.cnf.jkt !== proof.jkt) {
    return refuse(
      400,
      "invalid_grant",
      "the subject token is bound to another DPoP key",
      "subject_token_binding",
    );
  }
  return done(subject);
}
