/**
 * Token exchange (RFC 8693) → a writ: the agent's own baseline token (DPoP-bound to the same key)
 * and one playbook intent (RFC 9396 `authorization_details`, RFC 8707 `resource`), in order: kill
 * switch, slow-down, subject token, audience, the intent checks, then issuance.
 */
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  endpoints,
  isTokenRefusal,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  oauthError,
  reasonOf,
} from "../oauth.js";
import { type AccessTokenClaims, verifyAccessToken } from "../tokens.js";
import { delegate } from "./delegation.js";
import {
  absoluteUri,
  audienceAllowed,
  audienceRefusal,
  countsTowardsSlowDown,
  intentRefusal,
  issueWrit,
  judge,
  readIntent,
  stoppedOrSlowed,
  subjectTokenOf,
} from "./steps.js";

export async function exchange(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<OAuthResponse> {
  // with an actor token: a child writ for a sub-agent (delegation.ts)
  if (req.form.get("actor_token") !== null || req.form.get("actor_token_type") !== null) {
    return delegate(env, client, proof, req, deps);
  }
  const now = nowOf(deps);
  const { issuer } = endpoints(deps.baseUrl, env);
  const agent = client.agent;

  const stopped = await stoppedOrSlowed(agent, env, now, deps);
  if (stopped) return stopped;
  const deny = async (response: OAuthResponse, detail: Record<string, unknown>): Promise<OAuthResponse> => {
    await deps.audit("broker.denied", {
      environment: env,
      agent: agent.id,
      reason: response.body.reason,
      ...detail,
    });
    if (!countsTowardsSlowDown(response.body.reason)) return response;
    const b = await deps.backoff.record(agent.id, env, now);
    return { ...response, headers: { ...response.headers, "x-writ-retry-after": String(b.retryAfter) } };
  };

  // the subject token: this agent's own baseline token from this environment, nobody else's
  const subjectToken = subjectTokenOf(req, "the agent's baseline token");
  let subject: AccessTokenClaims;
  try {
    subject = await verifyAccessToken(subjectToken, { env, issuer, keys: deps.keys, clock: deps.clock });
  } catch (err) {
    if (!isTokenRefusal(err)) throw err;
    return deny(
      oauthError(
        400,
        "invalid_grant",
        `the subject token is not valid here: ${err.message}`,
        reasonOf(err.code),
      ),
      {},
    );
  }
  if (subject.client_id !== agent.id || subject.sub !== agent.id || subject.scope !== "writ:baseline") {
    return deny(
      oauthError(
        400,
        "invalid_grant",
        "the subject token must be this agent's own baseline token",
        "subject_token_mismatch",
      ),
      {},
    );
  }
  if (subject.cnf && subject.cnf.jkt !== proof.jkt) {
    return deny(
      oauthError(
        400,
        "invalid_grant",
        "the subject token is bound to another DPoP key",
        "subject_token_binding",
      ),
      {},
    );
  }

  const resource = absoluteUri(req.form.get("resource"));
  const intent = readIntent(req, env);

  const { key, outcome, release } = await judge(env, agent, intent, now, deps, undefined, { reserve: true });
  try {
    return await judged(outcome, key);
  } finally {
    release();
  }

  async function judged(
    outcome: Awaited<ReturnType<typeof judge>>["outcome"],
    key: Awaited<ReturnType<typeof judge>>["key"],
  ): Promise<OAuthResponse> {
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
      return oauthError(
        400,
        "access_denied",
        `${outcome.message}: ask through the backchannel authentication endpoint (${endpoints(deps.baseUrl, env).bcAuthorize})`,
        "approval_required",
      );
    }

    return issueWrit(env, outcome, { intent, resource, proof, key }, deps);
  }
}
