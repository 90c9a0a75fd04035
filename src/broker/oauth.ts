/**
 * What every endpoint of the broker shares: its dependencies, the OAuth request and response
 * shapes, refusals (`refuse` throws a `Refusal` that `brokerService` turns back into its answer),
 * client authentication and the DPoP proof. service.ts serves the endpoints; grants/ holds one file
 * per grant type of the token endpoint.
 */
import { isWritError, q, type WritConfig, WritError } from "../core/index.js";
import { type OAuthErrorCode, oauthErrorBody, oauthErrorHeaders } from "../http/problem.js";
import type { NewWrit, Store, WritLoad, WritLoadCaps } from "../store/index.js";
import type { ApprovalService } from "./approvals.js";
import type { DenialBackoff } from "./backoff.js";
import { type AuthenticatedClient, authenticateClient, clientAuthOAuthError } from "./client-auth.js";
import {
  DpopNonceError,
  type DpopProof,
  dpopOAuthError,
  type NonceService,
  verifyDpopProof,
} from "./dpop.js";
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

/** An RFC 6749 §5.2 error, built by the one wire edge (http/problem.ts). */
export function oauthError(
  status: number,
  error: OAuthErrorCode,
  description: string,
  reason: string,
  headers: Record<string, string> = {},
): OAuthResponse {
  const e = { status, error, description, reason, headers };
  return { status, body: oauthErrorBody(e), headers: oauthErrorHeaders(e) };
}

/**
 * A refusal thrown from deep in a grant's checks to the endpoint's `run`, which answers its
 * response: a `WritError` (`ERR_BROKER_REFUSED`) that never leaves the broker.
 */
export class Refusal extends WritError {
  constructor(readonly response: OAuthResponse) {
    super("ERR_BROKER_REFUSED", String(response.body.error_description));
  }
}

export const refuse = (...args: Parameters<typeof oauthError>): never => {
  throw new Refusal(oauthError(...args));
};

/**
 * A token that does not verify (`ERR_TOKEN_*`): the caller's problem. Anything else thrown while
 * verifying — the store failing to look a key up — is the server's, and must not read as a bad token.
 */
export function isTokenRefusal(err: unknown): err is Error & { code: string } {
  return isWritError(err) && err.code.startsWith("ERR_TOKEN_");
}

/** The reason code for a WritError: its code, lower-cased without the ERR_ prefix. */
export function reasonOf(code: string): string {
  return code.replace(/^ERR_/, "").toLowerCase();
}

export function nowOf(deps: Pick<BrokerDeps, "clock">): Date {
  return deps.clock ? deps.clock() : new Date();
}

export function endpoints(baseUrl: string, env: string) {
  const issuer = issuerFor(baseUrl, env);
  return {
    issuer,
    token: `${issuer}/token`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
    bcAuthorize: `${issuer}/bc-authorize`,
  };
}

export async function authenticate(
  env: string,
  req: OAuthRequest,
  deps: BrokerDeps,
  endpoint: string,
): Promise<AuthenticatedClient> {
  const { issuer } = endpoints(deps.baseUrl, env);
  try {
    const client = await authenticateClient(req.form, {
      config: deps.config,
      audiences: [issuer, endpoint],
      replay: deps.replay,
      clock: deps.clock,
      authorization: req.headers.authorization ?? null,
    });
    if (!client.agent.environments.includes(env)) {
      return refuse(
        400,
        "unauthorized_client",
        `agent ${q(client.agent.id)} is not registered in ${q(env)}`,
        "environment_not_allowed",
      );
    }
    return client;
  } catch (err) {
    if (err instanceof Refusal) throw err;
    const mapped = isWritError(err) ? clientAuthOAuthError(err.code) : undefined;
    if (!mapped || !isWritError(err)) throw err;
    return refuse(mapped.status, mapped.error, err.message, reasonOf(err.code), {
      "www-authenticate": 'Bearer error="invalid_client"',
    });
  }
}

export async function dpopProof(
  req: OAuthRequest,
  deps: BrokerDeps,
  url: string,
  required: boolean,
): Promise<DpopProof | undefined> {
  const header = req.headers.dpop;
  if (header === undefined) {
    if (required)
      return refuse(400, "invalid_dpop_proof", "this grant needs a DPoP proof (RFC 9449)", "dpop_required");
    return undefined;
  }
  try {
    return await verifyDpopProof(header, {
      method: "POST",
      url,
      replay: deps.replay,
      clock: deps.clock,
      nonce: deps.nonce,
      requireNonce: deps.requireDpopNonce === true,
    });
  } catch (err) {
    const mapped = isWritError(err) ? dpopOAuthError(err.code) : undefined;
    if (!mapped || !isWritError(err)) throw err;
    const headers: Record<string, string> = err instanceof DpopNonceError ? { "dpop-nonce": err.nonce } : {};
    return refuse(mapped.status, mapped.error, err.message, reasonOf(err.code), headers);
  }
}
