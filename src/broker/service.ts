/**
 * The broker's endpoints as plain functions — HTTP-agnostic, one per endpoint, each returning an
 * OAuth response (status, JSON body, headers). routes.ts puts them on Hono.
 *
 *   token       the grant types of grants/ (grants/index.ts is their table):
 *               client_credentials → a baseline token (the agent's standing permissions only)
 *               token-exchange     → a writ: baseline token + one playbook intent
 *                                    (RFC 8693 + RFC 9396 authorization_details + RFC 8707 resource),
 *                                    DPoP-bound (RFC 9449), an RFC 9068 JWT
 *               CIBA               → a writ once its approvers approved it
 *   introspect  RFC 7662, reflecting revocation and spent uses at once
 *   revoke      RFC 7009, one writ
 *
 * Every refusal carries `error` (RFC 6749 and friends) and a machine-readable `reason`
 * (docs/reasons.md). Repeated denials get 429 with a growing Retry-After. Every issuance and every
 * denial is audited; no token ever is.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isWritError, q } from "../core/index.js";
import {
  ERR_WRIT_EXHAUSTED,
  ERR_WRIT_EXPIRED,
  ERR_WRIT_NOT_FOUND,
  ERR_WRIT_NOT_YET_VALID,
  ERR_WRIT_REVOKED,
  type StoredWrit,
} from "../store/index.js";
import { bcAuthorize } from "./grants/ciba.js";
import { GRANT_TYPES } from "./grants/index.js";
import {
  answer,
  authenticate,
  type BrokerDeps,
  done,
  dpopProof,
  endpoints,
  NO_STORE,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  reasonOf,
  refuse,
} from "./oauth.js";
import { checkAccessToken, TokenRefused } from "./tokens.js";

export {
  ACCESS_TOKEN_TYPE,
  type BrokerDeps,
  CIBA_GRANT,
  type OAuthRequest,
  type OAuthResponse,
  TOKEN_EXCHANGE,
} from "./oauth.js";

/**
 * True when the request carries the resource servers' bearer token (the PDP token); a wrong one is
 * refused (401). False when there is no bearer token or none is configured.
 */
function resourceServer(req: OAuthRequest, deps: BrokerDeps): Outcome<boolean> {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
  if (bearer === undefined || deps.introspectionToken === undefined) return done(false);
  const h = (s: string) => createHash("sha256").update(s).digest();
  if (!timingSafeEqual(h(bearer), h(deps.introspectionToken))) {
    return refuse(
      401,
      "invalid_client",
      "the resource server token is not valid",
      "introspection_token_invalid",
      {
        "www-authenticate": 'Bearer error="invalid_token"',
      },
    );
  }
  return done(true);
}

/** Why a use could not be spent, as a reason: `writ_exhausted`, `writ_revoked`, `writ_expired` … */
const USE_REFUSALS = new Set([
  ERR_WRIT_NOT_FOUND,
  ERR_WRIT_REVOKED,
  ERR_WRIT_EXPIRED,
  ERR_WRIT_NOT_YET_VALID,
  ERR_WRIT_EXHAUSTED,
]);

export interface SpentUse {
  readonly writ: string;
  readonly uses: number;
  /** Undefined for a writ without `maxUses`. */
  readonly usesLeft: number | undefined;
}

/**
 * Spends one use of a writ, atomically, and audits it (or the refusal). For resource servers in
 * process (the gateway) and the `use` endpoint. Throws the store's `ERR_WRIT_*` refusals.
 */
export async function spendWritUse(
  deps: Pick<BrokerDeps, "store" | "audit" | "clock">,
  writId: string,
  by: string,
): Promise<SpentUse> {
  try {
    const r = await deps.store.writs.spendUse(writId, nowOf(deps));
    await deps.audit("broker.writ_used", { writ: writId, by, uses: r.uses, usesLeft: r.usesLeft });
    return { writ: writId, uses: r.uses, usesLeft: r.usesLeft };
  } catch (err) {
    if (isWritError(err) && USE_REFUSALS.has(err.code)) {
      await deps.audit("broker.use_refused", { writ: writId, by, reason: reasonOf(err.code) });
    }
    throw err;
  }
}

/** Whether a stored writ is active, unexpired and not used up at `now`. */
function live(w: StoredWrit, now: Date): boolean {
  return w.status === "active" && w.expiresAt > now && (w.maxUses === undefined || w.uses < w.maxUses);
}

/** RFC 7662. Callers: an agent about its own tokens (private_key_jwt), or a resource server with the introspection token. */
async function introspectToken(
  env: string,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const { issuer, introspect } = endpoints(deps.baseUrl, env);
  const server = resourceServer(req, deps);
  if (!server.ok) return server;
  let onlyClient: string | undefined;
  if (!server.value) {
    const client = await authenticate(env, req, deps, introspect);
    if (!client.ok) return client;
    onlyClient = client.value.agent.id;
  }
  const token = req.form.get("token");
  if (!token) return refuse(400, "invalid_request", "`token` is required", "token_missing");
  const inactive = done<OAuthResponse>({ status: 200, body: { active: false }, headers: NO_STORE });
  const claims = await checkAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
  if (claims instanceof TokenRefused) return inactive;
  if (onlyClient !== undefined && claims.client_id !== onlyClient) return inactive;
  const extra: Record<string, unknown> = {};
  if (claims.writ !== undefined) {
    const writ = await deps.store.writs.get(claims.writ);
    const now = nowOf(deps);
    if (!writ || !live(writ, now)) return inactive;
    // a delegated writ lives only while every ancestor does, and spends their uses too
    const chain = writ.parent === undefined ? [writ] : await deps.store.writs.lineage(writ.id);
    if (!chain.every((w) => live(w, now)) || chain.at(-1)?.parent !== undefined) return inactive;
    const lefts = chain.flatMap((w) => (w.maxUses === undefined ? [] : [w.maxUses - w.uses]));
    extra.writ = writ.id;
    extra.max_uses = writ.maxUses;
    extra.uses = writ.uses;
    extra.uses_left = lefts.length === 0 ? undefined : Math.min(...lefts);
    if (writ.parent !== undefined) extra.parent_writ = writ.parent;
  }
  return done({
    status: 200,
    body: {
      active: true,
      iss: claims.iss,
      sub: claims.sub,
      aud: claims.aud,
      client_id: claims.client_id,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: claims.cnf ? "DPoP" : "Bearer",
      ...(claims.scope ? { scope: claims.scope } : {}),
      ...(claims.act ? { act: claims.act } : {}),
      ...(claims.cnf ? { cnf: claims.cnf } : {}),
      ...(claims.authorization_details ? { authorization_details: claims.authorization_details } : {}),
      ...extra,
    },
    headers: NO_STORE,
  });
}

/**
 * Spends one use of a writ: a resource server (with the resource servers' token) reports that it
 * acted on the writ. Answers the uses spent and left; a spent, revoked or expired writ is refused.
 */
async function spendUse(env: string, req: OAuthRequest, deps: BrokerDeps): Promise<Outcome<OAuthResponse>> {
  const { issuer } = endpoints(deps.baseUrl, env);
  const server = resourceServer(req, deps);
  if (!server.ok) return server;
  if (!server.value) {
    return refuse(
      401,
      "invalid_client",
      "spending a use needs the resource servers' bearer token",
      "resource_server_required",
      {
        "www-authenticate": 'Bearer realm="writ"',
      },
    );
  }
  const token = req.form.get("token");
  if (!token) return refuse(400, "invalid_request", "`token` is required", "token_missing");
  const claims = await checkAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
  if (claims instanceof TokenRefused)
    return refuse(400, "invalid_token", claims.message, reasonOf(claims.code));
  if (claims.writ === undefined) {
    return refuse(400, "invalid_token", "a baseline token has no uses to spend", "not_a_writ");
  }
  try {
    const spent = await spendWritUse(deps, claims.writ, "resource-server");
    return done({
      status: 200,
      body: { writ: spent.writ, uses: spent.uses, uses_left: spent.usesLeft },
      headers: NO_STORE,
    });
  } catch (err) {
    if (isWritError(err) && USE_REFUSALS.has(err.code)) {
      return refuse(400, "invalid_token", err.message, reasonOf(err.code));
    }
    throw err;
  }
}

/** RFC 7009: an agent revokes one of its own writs. Unknown or foreign tokens still answer 200. */
async function revokeToken(
  env: string,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const { issuer, revoke } = endpoints(deps.baseUrl, env);
  const authenticated = await authenticate(env, req, deps, revoke);
  if (!authenticated.ok) return authenticated;
  const client = authenticated.value;
  const token = req.form.get("token");
  if (!token) return refuse(400, "invalid_request", "`token` is required", "token_missing");
  const ok = done<OAuthResponse>({ status: 200, body: {}, headers: NO_STORE });
  const claims = await checkAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
  if (claims instanceof TokenRefused) return ok;
  if (claims.client_id !== client.agent.id || claims.writ === undefined) return ok;
  const { descendants } = await deps.store.writs.revoke(
    claims.writ,
    `revoked by ${client.agent.id} (RFC 7009)`,
  );
  await deps.audit("broker.writ_revoked", {
    environment: env,
    agent: client.agent.id,
    writ: claims.writ,
    ...(descendants.length > 0 ? { descendants: descendants.map((d) => d.id) } : {}),
  });
  // what was created downstream for the writ, and for each writ delegated from it
  for (const id of [claims.writ, ...descendants.map((d) => d.id)]) await deps.onRevoked?.(id);
  return ok;
}

/**
 * The token endpoint: the grant type looked up, the client authenticated, the DPoP proof the grant
 * asks for checked, then the grant's own steps.
 */
async function tokenOf(env: string, req: OAuthRequest, deps: BrokerDeps): Promise<Outcome<OAuthResponse>> {
  const url = endpoints(deps.baseUrl, env).token;
  const grant = req.form.get("grant_type");
  const type = GRANT_TYPES.get(grant ?? "");
  if (type === undefined || !type.enabled(deps)) {
    return refuse(
      400,
      "unsupported_grant_type",
      `grant type ${q(grant ?? "")} is not supported here`,
      "unsupported_grant_type",
    );
  }
  const client = await authenticate(env, req, deps, url);
  if (!client.ok) return client;
  const proof = await dpopProof(req, deps, url, type.dpop === "required");
  if (!proof.ok) return proof;
  if (type.dpop === "optional") return type.handle(env, client.value, proof.value, req, deps);
  return type.handle(env, client.value, proof.value!, req, deps);
}

/** CIBA backchannel authentication (poll mode), when approvals are configured. */
async function backchannel(
  env: string,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const approvals = deps.approvals;
  if (!approvals)
    return refuse(404, "invalid_request", "approvals are not served here", "approvals_unavailable");
  const client = await authenticate(env, req, deps, endpoints(deps.baseUrl, env).bcAuthorize);
  if (!client.ok) return client;
  return bcAuthorize(env, client.value, req, deps, approvals);
}

/** The endpoints; each answers its outcome, a refusal as the OAuth error http/problem.ts builds. */
export function brokerService(deps: BrokerDeps) {
  const run = async (fn: () => Promise<Outcome<OAuthResponse>>): Promise<OAuthResponse> => answer(await fn());
  const knownEnv = (env: string) => deps.config.environments.has(env);
  // RFC 9449 §8: with server nonces on, every token endpoint answer hands out the current one.
  const withNonce = async (fn: () => Promise<Outcome<OAuthResponse>>): Promise<OAuthResponse> => {
    const r = await run(fn);
    if (deps.nonce === undefined || r.headers?.["dpop-nonce"] !== undefined) return r;
    return { ...r, headers: { ...r.headers, "dpop-nonce": deps.nonce.current() } };
  };

  return {
    knownEnv,

    token: (env: string, req: OAuthRequest): Promise<OAuthResponse> =>
      withNonce(() => tokenOf(env, req, deps)),

    /** CIBA backchannel authentication (poll mode), when approvals are configured. */
    bcAuthorize: (env: string, req: OAuthRequest): Promise<OAuthResponse> =>
      run(() => backchannel(env, req, deps)),

    cibaEnabled: () => deps.approvals !== undefined,

    introspect: (env: string, req: OAuthRequest): Promise<OAuthResponse> =>
      run(() => introspectToken(env, req, deps)),

    use: (env: string, req: OAuthRequest): Promise<OAuthResponse> => run(() => spendUse(env, req, deps)),

    revoke: (env: string, req: OAuthRequest): Promise<OAuthResponse> =>
      run(() => revokeToken(env, req, deps)),
  };
}

export type BrokerService = ReturnType<typeof brokerService>;
