/**
 * What every endpoint of the broker shares: its dependencies, the OAuth request and response
 * shapes, the outcome of a step (its value, or the refusal `brokerService` answers through
 * http/problem.ts), client authentication and the DPoP proof. service.ts serves the endpoints; grants/ holds one file
 * per grant type of the token endpoint.
 */
import { q, type WritConfig } from "../core/index.js";
import { type OAuthError, type OAuthErrorCode, oauthErrorBody, oauthErrorHeaders } from "../http/problem.js";
import type { NewWrit, Store, WritLoad, WritLoadCaps } from "../store/index.js";
import type { ApprovalService } from "./approvals.js";
import type { DenialBackoff } from "./backoff.js";
import { type AuthenticatedClient, CLIENT_AUTH_ERRORS, ClientRefused, checkClient } from "./client-auth.js";
import { checkDpopProof, DPOP_ERRORS, type DpopProof, DpopRefused, type NonceService } from "./dpop.js";
import type { EnvironmentKeys } from "./keys.js";
import type { KillSwitch } from "./kill.js";
import { issuerFor } from "./metadata.js";
import type { ReplayCache } from "./replay.js";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const CIBA_GRANT = "urn:openid:params:grant-type:ciba";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

export interface BrokerDeps {
  readonly config: WritConfig;
  readonly store: Pick<Store, "writs">;
  /**
   * The counts the runner classes' `limits` check (default: the store's query). The embedded
   * store's server keeps them in memory (`writLoadCounter`).
   */
  readonly writLoad?:
    | ((agent: string, now: Date, since: Date, caps: WritLoadCaps) => WritLoad | Promise<WritLoad>)
    | undefined;
  readonly keys: EnvironmentKeys;
  readonly replay: ReplayCache;
  readonly nonce?: NonceService | undefined;
  /** Refuse DPoP proofs without a valid server nonce (`use_dpop_nonce`); needs `nonce`. */
  readonly requireDpopNonce?: boolean | undefined;
  readonly kill: Pick<KillSwitch, "blocking">;
  readonly backoff: DenialBackoff;
  /** Called with every issuance and denial (the audit log). Never given a token. */
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  /**
   * Stores a new writ and appends its `broker.writ_issued` record in one commit (shared with
   * concurrent issuances). Without it the writ is stored, then audited.
   */
  readonly storeIssued?: ((writ: NewWrit, record: Record<string, unknown>) => Promise<unknown>) | undefined;
  /** The public base URL; issuers are `${baseUrl}/env/<env>`. */
  readonly baseUrl: string;
  /** A bearer token resource servers may introspect with (the PDP token). */
  readonly introspectionToken?: string | undefined;
  /** Approval requests (CIBA poll mode); without it, playbooks that need approval cannot be issued. */
  readonly approvals?: ApprovalService | undefined;
  /** How long an approval request waits for its approvers, seconds (default 600). */
  readonly approvalLifetimeSeconds?: number | undefined;
  readonly clock?: (() => Date) | undefined;
  /**
   * Called once a writ's revocation (RFC 7009) is committed and audited: what was created for it
   * downstream is removed (docs/downstream.md). Must not throw; failures are its own to audit.
   */
  readonly onRevoked?: ((writ: string) => Promise<void>) | undefined;
}

export interface OAuthRequest {
  readonly form: URLSearchParams;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export interface OAuthResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Readonly<Record<string, string>>;
}

export const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/**
 * What a step of an endpoint comes to: its value, or the refusal to answer (the OAuth error of
 * http/problem.ts, `reason` one of docs/reasons.md). Steps return it, the grants hand it up, and
 * the endpoint (`brokerService`) answers it; only failures nobody expects (the store down) throw.
 */
export type Outcome<T> = { readonly ok: true; readonly value: T } | Refused;

/** A refusal on its way to the endpoint. */
export interface Refused {
  readonly ok: false;
  readonly refusal: OAuthError;
}

export const done = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });

/** The refusal with this status, OAuth `error`, `error_description`, reason and header fields. */
export function refuse(
  status: number,
  error: OAuthErrorCode,
  description: string,
  reason: string,
  headers: Record<string, string> = {},
): Refused {
  return { ok: false, refusal: { status, error, description, reason, headers } };
}

/** A refusal with header fields added (after its own). */
export function withHeaders(r: Refused, headers: Record<string, string>): Refused {
  return { ok: false, refusal: { ...r.refusal, headers: { ...r.refusal.headers, ...headers } } };
}

/** The answer to an endpoint's outcome: its response, or its refusal as an OAuth error. */
export function answer(o: Outcome<OAuthResponse>): OAuthResponse {
  if (o.ok) return o.value;
  const e = o.refusal;
  return { status: e.status, body: oauthErrorBody(e), headers: oauthErrorHeaders(e) };
}

/** The reason code for a WritError: its code, lower-cased without the ERR_ prefix. */
export function reasonOf(code: string): string {
  return code.replace(/^ERR_/, "").toLowerCase();
}

export function nowOf(deps: Pick<BrokerDeps, "clock">): Date {
  return deps.clock ? deps.clock() : new Date();
}

export interface Endpoints {
  readonly issuer: string;
  readonly token: string;
  readonly introspect: string;
  readonly revoke: string;
  readonly bcAuthorize: string;
}

/** The last environment's endpoints: the same few are asked for on every request. */
let lastEndpoints: { readonly baseUrl: string; readonly env: string; readonly value: Endpoints } | undefined;

export function endpoints(baseUrl: string, env: string): Endpoints {
  const last = lastEndpoints;
  if (last !== undefined && last.baseUrl === baseUrl && last.env === env) return last.value;
  const issuer = issuerFor(baseUrl, env);
  const value: Endpoints = Object.freeze({
    issuer,
    token: `${issuer}/token`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
    bcAuthorize: `${issuer}/bc-authorize`,
  });
  lastEndpoints = { baseUrl, env, value };
  return value;
}

export async function authenticate(
  env: string,
  req: OAuthRequest,
  deps: BrokerDeps,
  endpoint: string,
): Promise<Outcome<AuthenticatedClient>> {
  const { issuer } = endpoints(deps.baseUrl, env);
  const client = await checkClient(req.form, {
    config: deps.config,
    audiences: [issuer, endpoint],
    replay: deps.replay,
    clock: deps.clock,
    authorization: req.headers.authorization ?? null,
  });
  if (client instanceof ClientRefused) {
    const mapped = CLIENT_AUTH_ERRORS[client.code];
    return refuse(mapped.status, mapped.error, client.message, reasonOf(client.code), {
      "www-authenticate": 'Bearer error="invalid_client"',
    });
  }
  if (!client.agent.environments.includes(env)) {
    return refuse(
      400,
      "unauthorized_client",
      `agent ${q(client.agent.id)} is not registered in ${q(env)}`,
      "environment_not_allowed",
    );
  }
  return done(client);
}

/** The request's DPoP proof, verified; undefined when there is none and none is `required`. */
export async function dpopProof(
  req: OAuthRequest,
  deps: BrokerDeps,
  url: string,
  required: boolean,
): Promise<Outcome<DpopProof | undefined>> {
  const header = req.headers.dpop;
  if (header === undefined) {
    if (required)
      return refuse(400, "invalid_dpop_proof", "this grant needs a DPoP proof (RFC 9449)", "dpop_required");
    return done(undefined);
  }
  const proof = await checkDpopProof(header, {
    method: "POST",
    url,
    replay: deps.replay,
    clock: deps.clock,
    nonce: deps.nonce,
    requireNonce: deps.requireDpopNonce === true,
  });
  if (!(proof instanceof DpopRefused)) return done(proof);
  const mapped = DPOP_ERRORS[proof.code];
  const headers: Record<string, string> = proof.nonce === undefined ? {} : { "dpop-nonce": proof.nonce };
  return refuse(mapped.status, mapped.error, proof.message, reasonOf(proof.code), headers);
}
