/**
 * The gateway's HTTP authentication: the DPoP-bound writ token (`broker/bound-token.ts`) whose
 * audience is this gateway, the environment named by its issuer, and the identity it carries (the
 * agent, its writ as stored, its sponsor). A refusal is answered 401 or 403 with `WWW-Authenticate`
 * pointing at the protected resource metadata (RFC 9728).
 */
import { type AccessTokenClaims, issuerFor, SIGNING_ALGORITHMS, verifyBoundToken } from "../broker/index.js";
import { q, WritError } from "../core/index.js";
import { type OAuthErrorCode, oauthError, challenge as wwwAuthenticate } from "../http/problem.js";
import { toActiveWrit } from "../store/index.js";
import type { GatewayIdentity } from "./gateway.js";
import type { GatewayHttpOptions } from "./http.js";

/** What the DPoP verifier accepts: the broker advertises the same list. */
export const DPOP_ALGS = SIGNING_ALGORITHMS.join(" ");

/** A request the gateway does not serve (`ERR_GATEWAY_REFUSED`), answered with its OAuth error. */
export class Unauthorized extends WritError {
  constructor(
    readonly status: 401 | 403,
    readonly error: OAuthErrorCode,
    readonly reason: string,
    message: string,
  ) {
    super("ERR_GATEWAY_REFUSED", message);
  }
}

/** The 401/403 answer, its `WWW-Authenticate` naming the metadata URL. */
export function challenge(err: Unauthorized, metadataUrl: string): Response {
  const meta = { resource_metadata: metadataUrl };
  const header =
    err.error === "invalid_request" && err.reason === "token_missing"
      ? `${wwwAuthenticate("Bearer", meta)}, ${wwwAuthenticate("DPoP", { algs: DPOP_ALGS, ...meta })}`
      : wwwAuthenticate("DPoP", {
          error: err.error,
          error_description: err.message,
          algs: DPOP_ALGS,
          ...meta,
        });
  return oauthError({
    status: err.status,
    error: err.error,
    description: err.message,
    reason: err.reason,
    headers: { "www-authenticate": header },
  });
}

/**
 * The DPoP-bound token and its proof (`broker/bound-token.ts`), the environment named by its
 * issuer; or its refusal, returned.
 */
export async function authenticate(
  opts: GatewayHttpOptions,
  audience: string,
  req: Request,
): Promise<{ claims: AccessTokenClaims; jkt: string; token: string } | Unauthorized> {
  const base = opts.baseUrl();
  const bound = await verifyBoundToken(req.headers, {
    env: (iss) => {
      const env =
        typeof iss === "string" && iss.startsWith(`${base}/env/`) ? iss.slice(base.length + 5) : undefined;
      return env !== undefined && opts.config.environments.has(env) ? env : undefined;
    },
    issuer: (env) => issuerFor(base, env),
    audience,
    url: `${base}${new URL(req.url).pathname}`,
    method: req.method,
    keys: opts.keys,
    replay: opts.replay,
    clock: opts.clock,
  });
  if (bound.refused) return new Unauthorized(bound.status, bound.error, bound.reason, bound.message);
  return { claims: bound.claims, jkt: bound.jkt, token: bound.token };
}

/**
 * Who the token speaks for: a declared agent of this environment, and its writ as stored (active);
 * or its refusal, returned. A store that cannot answer is thrown.
 */
export async function identityOf(
  opts: GatewayHttpOptions,
  claims: AccessTokenClaims,
  env: string,
): Promise<GatewayIdentity | Unauthorized> {
  const agent = opts.config.agents.get(claims.client_id);
  if (!agent || !agent.environments.includes(env)) {
    return new Unauthorized(
      403,
      "insufficient_scope",
      "unknown_agent",
      `agent ${q(claims.client_id)} may not use this gateway in ${q(env)}`,
    );
  }
  let writ: GatewayIdentity["writ"];
  let parent: string | undefined;
  if (claims.writ !== undefined) {
    const stored = await opts.store.writs.get(claims.writ);
    if (!stored || stored.agent !== agent.id || stored.environment !== env) {
      return new Unauthorized(
        401,
        "invalid_token",
        "writ_not_found",
        `writ ${q(claims.writ)} is not this agent's`,
      );
    }
    if (stored.status !== "active") {
      return new Unauthorized(401, "invalid_token", "writ_revoked", `writ ${q(claims.writ)} is revoked`);
    }
    writ = toActiveWrit(stored);
    parent = stored.parent;
  }
  const chain = actChain(claims.act);
  const delegated = chain.length > 1;
  return {
    agent: agent.id,
    environment: env,
    writ,
    sponsor: claims.sub !== agent.id && !(delegated && chain.includes(claims.sub)) ? claims.sub : undefined,
    ...(delegated ? { delegation: { chain, parent } } : {}),
    transport: "http",
  };
}

/** The agents of a token's nested `act` claim, the current actor first (RFC 8693 §4.4). */
function actChain(act: AccessTokenClaims["act"]): string[] {
  const chain: string[] = [];
  for (let a = act; a !== undefined && chain.length < 16; a = a.act) chain.push(a.sub);
  return chain;
}
