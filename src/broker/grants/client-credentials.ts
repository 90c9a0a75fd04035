/**
 * `client_credentials` → a baseline token: the agent's standing permissions only, DPoP-bound when
 * the request carries a proof. The subject token of a later token exchange. In order: kill switch,
 * audience, then the token.
 */
import { randomBytes } from "node:crypto";
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import {
  type BrokerDeps,
  done,
  endpoints,
  NO_STORE,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
} from "../oauth.js";
import { mintAccessToken } from "../tokens.js";
import { absoluteUri, audienceAllowed, audienceRefusal, killed } from "./steps.js";

export async function baselineToken(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof | undefined,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const now = nowOf(deps);
  const { issuer } = endpoints(deps.baseUrl, env);
  const agent = client.agent;
  const rc = deps.config.runnerClasses.get(agent.runnerClass);
  const stopped = await killed(agent, env, deps);
  if (stopped) return stopped;
  const resource = req.form.get("resource");
  const asked = resource === null ? done(issuer) : absoluteUri(resource);
  if (!asked.ok) return asked;
  const aud = asked.value;
  if (aud !== issuer && !audienceAllowed(deps, env, aud)) return audienceRefusal(env, aud);
  const key = await deps.keys.activeKey(env);
  const exp = Math.min(
    Math.floor(now.getTime() / 1000) + Math.min(rc?.ceiling.maxTtlSeconds ?? 900, 3600),
    Math.floor(key.signUntil.getTime() / 1000),
  );
  const jti = randomBytes(16).toString("base64url");
  const claims = {
    iss: issuer,
    sub: agent.id,
    aud,
    exp,
    jti,
    client_id: agent.id,
    scope: "writ:baseline",
    ...(proof ? { cnf: { jkt: proof.jkt } } : {}),
  };
  const token = await mintAccessToken(key, claims, { clock: deps.clock });
  // the jti names the token in the log, so an investigator can tie a baseline token to its issuance
  await deps.audit("broker.baseline", {
    environment: env,
    agent: agent.id,
    jti,
    audience: aud,
    dpop: proof !== undefined,
    expiresAt: new Date(exp * 1000).toISOString(),
  });
  return done({
    status: 200,
    body: {
      access_token: token,
      token_type: proof ? "DPoP" : "Bearer",
      expires_in: exp - Math.floor(now.getTime() / 1000),
      scope: "writ:baseline",
    },
    headers: NO_STORE,
  });
}
