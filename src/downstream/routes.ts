/**
 * The redemption endpoint, beside the broker's own under each environment's issuer:
 *
 *   POST /env/<env>/downstream/<system>      (system: aws, github, kubernetes)
 *   GET  /env/<env>/.well-known/openid-configuration    } environments in AWS web-identity mode:
 *   GET  /env/<env>/.well-known/web-identity-jwks.json  } the OIDC provider AWS STS reads
 *
 * The caller presents a writ access token whose audience is this very URL, bound by DPoP
 * (`Authorization: DPoP <token>` and a fresh `DPoP` proof for this URL, `broker/bound-token.ts`).
 * The writ is looked up in the store and one of its uses spent — which refuses a writ revoked,
 * expired, not yet valid, used up, or another agent's or environment's — then the environment's
 * issuer of that system makes the credential, scoped to the writ's grants. The answer is JSON with
 * `Cache-Control: no-store`; the audit log gets `downstream.issued` (writ, system, kind, expiry),
 * never the credential. Refusals are OAuth errors with a reason (docs/reasons.md, "Downstream
 * reasons"), answered as a resource server does (RFC 6750 §3, RFC 9449 §7.1): 401 with
 * `WWW-Authenticate: DPoP` for the token's problems.
 */
import { Hono } from "hono";
import {
  type BoundToken,
  type EnvironmentKeys,
  issuerFor,
  type ReplayCache,
  spendWritUse,
  verifyBoundToken,
} from "../broker/index.js";
import { isWritError, q, type WritConfig } from "../core/index.js";
import { challenge, type OAuthErrorCode, oauthError, problem } from "../http/problem.js";
import type { Store } from "../store/index.js";
import { openIdConfiguration } from "./aws/web-identity.js";
import {
  causeOf,
  type DownstreamAudit,
  type DownstreamCredential,
  type DownstreamIssuer,
  type DownstreamReason,
  type DownstreamRegistry,
  type DownstreamSystem,
  isDownstreamSystem,
  writForIssuer,
} from "./index.js";

export interface DownstreamRouteOptions {
  readonly config: WritConfig;
  readonly registry: DownstreamRegistry;
  readonly keys: Pick<EnvironmentKeys, "verificationKey">;
  /** The ES256 family: the web-identity tokens' keys, published for AWS. */
  readonly webIdentityKeys?: Pick<EnvironmentKeys, "jwks" | "activeKey"> | undefined;
  readonly replay: ReplayCache;
  readonly store: Pick<Store, "writs">;
  readonly audit: DownstreamAudit;
  readonly baseUrl: () => string;
  readonly clock?: (() => Date) | undefined;
}

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/** The URL a writ must name as its audience to be redeemed for `system` in `env`. */
export function downstreamAudience(baseUrl: string, env: string, system: DownstreamSystem): string {
  return `${issuerFor(baseUrl, env)}/downstream/${system}`;
}

/** An issuer's refusal as HTTP: what the writ cannot become is 403; a system that cannot answer, 503. */
const ISSUER_REFUSAL: Readonly<Record<DownstreamReason, { status: number; error: OAuthErrorCode }>> = {
  downstream_scope_exceeds_writ: { status: 403, error: "access_denied" },
  downstream_permission_missing: { status: 403, error: "access_denied" },
  downstream_policy_too_large: { status: 403, error: "access_denied" },
  downstream_no_grants: { status: 403, error: "insufficient_scope" },
  downstream_not_configured: { status: 404, error: "invalid_target" },
  downstream_unavailable: { status: 503, error: "temporarily_unavailable" },
};

/** What the audit log calls each credential. */
const KIND: Readonly<Record<DownstreamSystem, string>> = {
  aws: "sts-session",
  github: "installation-token",
  kubernetes: "serviceaccount-token",
};

function refusal(
  status: number,
  error: OAuthErrorCode,
  reason: string,
  message: string,
  headers = {},
): Response {
  return oauthError({ status, error, description: message, reason, headers });
}

function credentialBody(c: DownstreamCredential): Record<string, unknown> {
  switch (c.system) {
    case "aws":
      return {
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
        expiration: c.expiration.toISOString(),
      };
    case "github":
      return {
        token: c.token,
        expiration: c.expiration.toISOString(),
        repositories: c.repositories,
        permissions: c.permissions,
      };
    case "kubernetes":
      return {
        token: c.token,
        expiration: c.expiration.toISOString(),
        server: c.server,
        ...(c.caData === undefined ? {} : { caData: c.caData }),
      };
  }
}

export function downstreamRoutes(opts: DownstreamRouteOptions): Hono {
  const app = new Hono();
  const now = () => (opts.clock ? opts.clock() : new Date());

  // AWS STS fetches `<iss>/.well-known/openid-configuration`, then its `jwks_uri`: served for the
  // environments whose AWS issuer is in web-identity mode, with that family's keys only.
  const webIdentityKeys = opts.webIdentityKeys;
  const webIdentity = (env: string) =>
    webIdentityKeys !== undefined &&
    opts.config.downstream?.environments.get(env)?.aws?.mode === "web-identity";
  const notServed = (env: string) =>
    problem({
      status: 404,
      detail: `environment ${q(env)} is not an OpenID Connect provider (no AWS web-identity mode)`,
    });
  app.get("/env/:env/.well-known/openid-configuration", (c) => {
    const env = c.req.param("env");
    if (!webIdentity(env)) return notServed(env);
    return c.json(openIdConfiguration(issuerFor(opts.baseUrl(), env)), 200, {
      "cache-control": "max-age=300",
    });
  });
  app.get("/env/:env/.well-known/web-identity-jwks.json", async (c) => {
    const env = c.req.param("env");
    if (!webIdentity(env)) return notServed(env);
    await webIdentityKeys!.activeKey(env); // the key the next token is signed with is published first
    return c.json(await webIdentityKeys!.jwks(env), 200, { "cache-control": "max-age=60" });
  });

  app.post("/env/:env/downstream/:system", async (c) => {
    const env = c.req.param("env");
    const system = c.req.param("system");
    if (!opts.config.environments.has(env)) {
      return problem({ status: 404, detail: `no environment ${q(env)} is declared` });
    }
    const issuer = isDownstreamSystem(system) ? opts.registry.issuer(env, system) : undefined;
    if (!isDownstreamSystem(system) || issuer === undefined) {
      return refusal(
        404,
        "invalid_target",
        "downstream_not_configured",
        `no downstream system ${q(system)} is configured for ${q(env)}`,
      );
    }
    const base = opts.baseUrl();
    const url = downstreamAudience(base, env, system);
    /** A refusal; audited once the caller is known (an anonymous caller cannot fill the log). */
    const refused = async (
      status: number,
      error: OAuthErrorCode,
      reason: string,
      message: string,
      who?: { agent: string; writ?: string | undefined },
    ) => {
      if (who) await opts.audit("downstream.refused", { environment: env, system, reason, ...who });
      const header =
        status === 401
          ? { "www-authenticate": challenge("DPoP", { error, error_description: message }) }
          : {};
      return refusal(status, error, reason, message, header);
    };

    const bound = await verifyBoundToken(c.req.raw.headers, {
      env,
      issuer: issuerFor(base, env),
      audience: url,
      url,
      method: "POST",
      keys: opts.keys,
      replay: opts.replay,
      clock: opts.clock,
    });
    if (bound.refused) return refused(bound.status, bound.error, bound.reason, bound.message);
    return redeem({ opts, env, system, issuer, refused, now }, bound.claims);
  });
  return app;
}

/** What the redemption's steps after the token check share: the route's options and the request's place. */
interface Redemption {
  readonly opts: DownstreamRouteOptions;
  readonly env: string;
  readonly system: DownstreamSystem;
  readonly issuer: DownstreamIssuer;
  readonly refused: (
    status: number,
    error: OAuthErrorCode,
    reason: string,
    message: string,
    who?: { agent: string; writ?: string | undefined },
  ) => Promise<Response>;
  readonly now: () => Date;
}

/**
 * A verified token redeemed, in order: it is a writ, the agent's, here; the agent still works here;
 * one use spent; the issuer's credential; the audit record; the answer (never stored by caches).
 */
async function redeem(c: Redemption, claims: BoundToken["claims"]): Promise<Response> {
  const { env, system } = c;
  if (claims.writ === undefined)
    return c.refused(
      401,
      "invalid_token",
      "not_a_writ",
      "a baseline token cannot be redeemed: exchange it for a writ",
      { agent: claims.client_id },
    );
  const stored = await c.opts.store.writs.get(claims.writ);
  const who = { agent: claims.client_id, writ: claims.writ };
  if (!stored || stored.agent !== claims.client_id || stored.environment !== env)
    return c.refused(
      401,
      "invalid_token",
      "writ_not_found",
      `writ ${q(claims.writ)} is not this agent's here`,
      who,
    );
  // writ.yaml may have changed since the writ was issued: its agent must still work here
  if (!c.opts.config.agents.get(stored.agent)?.environments.includes(env))
    return c.refused(
      401,
      "invalid_token",
      "writ_not_found",
      `agent ${q(stored.agent)} is no longer registered in ${q(env)}`,
      who,
    );
  try {
    await spendWritUse(
      { store: c.opts.store, audit: c.opts.audit, clock: c.opts.clock },
      stored.id,
      `downstream:${system}`,
    );
  } catch (err) {
    if (!isWritError(err) || !err.code.startsWith("ERR_WRIT_")) throw err;
    const reason = err.code.replace(/^ERR_/, "").toLowerCase();
    return c.refused(401, "invalid_token", reason, err.message, who);
  }
  let credential: DownstreamCredential;
  try {
    const out = await c.issuer.issue(writForIssuer(c.opts.config, stored), c.now());
    if (!out.ok) {
      const { status, error } = ISSUER_REFUSAL[out.reason];
      return c.refused(status, error, out.reason, out.detail, who);
    }
    credential = out.value;
    if (credential.system !== system)
      throw new Error(`the ${system} issuer answered a ${credential.system} credential`);
  } catch (err) {
    // anything thrown is a failure to look into (the system, the ledger …), never a refusal
    await c.opts.audit("downstream.issue_failed", {
      environment: env,
      system,
      writ: stored.id,
      cause: causeOf(err),
    });
    const { status, error } = ISSUER_REFUSAL.downstream_unavailable;
    return c.refused(
      status,
      error,
      "downstream_unavailable",
      "the downstream system could not issue the credential",
      who,
    );
  }
  const expiresAt = credential.expiration.toISOString();
  await c.opts.audit("downstream.issued", {
    environment: env,
    agent: stored.agent,
    writ: stored.id,
    system,
    kind: KIND[system],
    expiresAt,
  });
  return new Response(
    JSON.stringify({
      system,
      writ: stored.id,
      expires_at: expiresAt,
      notes: credential.notes,
      credential: credentialBody(credential),
    }),
    { status: 200, headers: { "content-type": "application/json", ...NO_STORE } },
  );
}
