/**
 * The broker's endpoints as plain functions — HTTP-agnostic, one per endpoint, each returning an
 * OAuth response (status, JSON body, headers). routes.ts puts them on Hono.
 *
 *   token       client_credentials → a baseline token (the agent's standing permissions only)
 *               token-exchange     → a writ: baseline token + one playbook intent
 *                                    (RFC 8693 + RFC 9396 authorization_details + RFC 8707 resource),
 *                                    DPoP-bound (RFC 9449), an RFC 9068 JWT
 *   introspect  RFC 7662, reflecting revocation and spent uses at once
 *   revoke      RFC 7009, one writ
 *
 * Every refusal carries `error` (RFC 6749 and friends) and a machine-readable `reason`
 * (docs/reasons.md). Repeated denials get 429 with a growing Retry-After. Every issuance and every
 * denial is audited; no token ever is.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  type Agent,
  approverGroupsOf,
  isWritError,
  normalizeIdentity,
  type Playbook,
  q,
  type WritConfig,
  WritError,
} from "../core/index.js";
import { type OAuthErrorCode, oauthErrorBody, oauthErrorHeaders } from "../http/problem.js";
import {
  ERR_WRIT_EXHAUSTED,
  ERR_WRIT_EXPIRED,
  ERR_WRIT_NOT_FOUND,
  ERR_WRIT_NOT_YET_VALID,
  ERR_WRIT_REVOKED,
  type NewWrit,
  type Store,
  type WritLoad,
  type WritLoadCaps,
} from "../store/index.js";
import { type ApprovalService, ERR_APPROVAL_CLOSED, ERR_APPROVAL_EXPIRED } from "./approvals.js";
import type { DenialBackoff } from "./backoff.js";
import { type AuthenticatedClient, authenticateClient, clientAuthOAuthError } from "./client-auth.js";
import {
  DpopNonceError,
  type DpopProof,
  dpopOAuthError,
  type NonceService,
  verifyDpopProof,
} from "./dpop.js";
import { evaluateIntent } from "./intent.js";
import type { EnvironmentKeys } from "./keys.js";
import type { KillSwitch } from "./kill.js";
import { issuerFor, WRIT_PLAYBOOK_TYPE } from "./metadata.js";
import type { ReplayCache } from "./replay.js";
import { type AccessTokenClaims, mintAccessToken, verifyAccessToken } from "./tokens.js";

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

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/** An RFC 6749 §5.2 error, built by the one wire edge (http/problem.ts). */
function oauthError(
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
 * response: a `WritError` (`ERR_BROKER_REFUSED`) that never leaves this file.
 */
class Refusal extends WritError {
  constructor(readonly response: OAuthResponse) {
    super("ERR_BROKER_REFUSED", String(response.body.error_description));
  }
}

const refuse = (...args: Parameters<typeof oauthError>): never => {
  throw new Refusal(oauthError(...args));
};

/**
 * A token that does not verify (`ERR_TOKEN_*`): the caller's problem. Anything else thrown while
 * verifying — the store failing to look a key up — is the server's, and must not read as a bad token.
 */
function isTokenRefusal(err: unknown): err is Error & { code: string } {
  return isWritError(err) && err.code.startsWith("ERR_TOKEN_");
}

/** The reason code for a WritError: its code, lower-cased without the ERR_ prefix. */
function reasonOf(code: string): string {
  return code.replace(/^ERR_/, "").toLowerCase();
}

function nowOf(deps: Pick<BrokerDeps, "clock">): Date {
  return deps.clock ? deps.clock() : new Date();
}

function endpoints(baseUrl: string, env: string) {
  const issuer = issuerFor(baseUrl, env);
  return {
    issuer,
    token: `${issuer}/token`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
    bcAuthorize: `${issuer}/bc-authorize`,
  };
}

async function authenticate(
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

async function dpopProof(
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

interface Intent {
  readonly playbook: string;
  readonly params: Record<string, unknown>;
  readonly environment?: string;
  readonly ticket?: string;
}

function parseDetails(raw: string | null): {
  playbook: string;
  params: Record<string, unknown>;
  environment?: string;
  ticket?: string;
} {
  if (raw === null)
    return refuse(
      400,
      "invalid_request",
      "`authorization_details` is required: one `writ_playbook` intent",
      "intent_missing",
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return refuse(
      400,
      "invalid_authorization_details",
      "`authorization_details` is not JSON",
      "intent_malformed",
    );
  }
  if (!Array.isArray(parsed) || parsed.length !== 1) {
    return refuse(
      400,
      "invalid_authorization_details",
      "`authorization_details` must hold exactly one intent",
      "intent_malformed",
    );
  }
  const d = parsed[0] as Record<string, unknown>;
  if (!d || typeof d !== "object" || d.type !== WRIT_PLAYBOOK_TYPE) {
    return refuse(
      400,
      "invalid_authorization_details",
      `the intent's \`type\` must be \`${WRIT_PLAYBOOK_TYPE}\``,
      "intent_malformed",
    );
  }
  const params = d.parameters ?? {};
  if (typeof d.playbook !== "string" || !params || typeof params !== "object" || Array.isArray(params)) {
    return refuse(
      400,
      "invalid_authorization_details",
      "the intent needs a `playbook` name and a `parameters` object",
      "intent_malformed",
    );
  }
  for (const k of ["environment", "ticket"] as const) {
    if (d[k] !== undefined && typeof d[k] !== "string") {
      return refuse(
        400,
        "invalid_authorization_details",
        `the intent's \`${k}\` must be a string`,
        "intent_malformed",
      );
    }
  }
  return {
    playbook: d.playbook,
    params: params as Record<string, unknown>,
    ...(typeof d.environment === "string" ? { environment: d.environment } : {}),
    ...(typeof d.ticket === "string" ? { ticket: d.ticket } : {}),
  };
}

function absoluteUri(value: string | null): string {
  if (value === null)
    return refuse(
      400,
      "invalid_target",
      "`resource` (RFC 8707) is required: the audience of the writ",
      "resource_missing",
    );
  try {
    const u = new URL(value);
    if (u.hash) throw new Error("fragment");
    return value;
  } catch {
    return refuse(
      400,
      "invalid_target",
      `\`resource\` ${q(value)} must be an absolute URI without a fragment`,
      "resource_invalid",
    );
  }
}

/**
 * The gateway of this server, when writ.yaml has one: an audience every environment allows (as
 * `gatewayResource` in gateway/http.ts puts it: `gateway.resource`, else `<base>/mcp`).
 */
function gatewayAudience(deps: BrokerDeps): string | undefined {
  const gateway = deps.config.gateway;
  return gateway === undefined ? undefined : (gateway.resource ?? `${deps.baseUrl}/mcp`);
}

/**
 * Whether `resource` is this environment's redemption endpoint of a downstream system writ.yaml
 * configures there (`<issuer>/downstream/<system>`, docs/downstream.md): an audience the
 * environment allows without listing it.
 */
function isDownstreamAudience(deps: BrokerDeps, env: string, resource: string): boolean {
  const systems = deps.config.downstream?.environments.get(env);
  if (systems === undefined) return false;
  const prefix = `${issuerFor(deps.baseUrl, env)}/downstream/`;
  if (!resource.startsWith(prefix)) return false;
  const system = resource.slice(prefix.length);
  return (
    (system === "aws" || system === "github" || system === "kubernetes") && systems[system] !== undefined
  );
}

/**
 * Whether a token of `env` (a writ of `playbook`, when given) may name `resource` as its audience:
 * the environment must allow it (its `audiences`, or the gateway), and a playbook that lists
 * `audiences` must list it. With nothing declared only the gateway is allowed: fail closed.
 */
function audienceAllowed(deps: BrokerDeps, env: string, resource: string, playbook?: Playbook): boolean {
  const declared = deps.config.environments.get(env)?.audiences;
  const byEnvironment =
    resource === gatewayAudience(deps) ||
    (declared?.includes(resource) ?? false) ||
    isDownstreamAudience(deps, env, resource);
  const listed = playbook?.audiences;
  if (listed === undefined) return byEnvironment;
  return listed.includes(resource) && (declared === undefined || byEnvironment);
}

function audienceRefusal(env: string, resource: string, playbook?: Playbook): OAuthResponse {
  const where = playbook === undefined ? `environment ${q(env)}` : `playbook ${q(playbook.id)} in ${q(env)}`;
  return oauthError(
    400,
    "invalid_target",
    `\`resource\` ${q(resource)} is not an audience writ.yaml allows for ${where}`,
    "resource_not_allowed",
  );
}

/** The humans writ.yaml declares (approvers, approver group members, agent owners), normalised. */
function declaredHumans(config: WritConfig): Set<string> {
  const humans = new Set<string>();
  for (const id of config.approvers?.keys() ?? []) humans.add(normalizeIdentity(id));
  for (const g of config.approverGroups.values()) for (const m of g.members) humans.add(normalizeIdentity(m));
  for (const a of config.agents.values()) humans.add(normalizeIdentity(a.owner));
  return humans;
}

/**
 * The sponsor a CIBA request names in `login_hint`, checked against writ.yaml: a declared human,
 * required when the playbook says so, and one who may approve the request under `sponsor: approver`.
 * Undefined when none is named (and none is required). A refusal otherwise.
 */
function sponsorOf(
  hint: string | null,
  playbook: Playbook,
  env: string,
  config: WritConfig,
): string | undefined | OAuthResponse {
  const rule = playbook.sponsor ?? "optional";
  if (hint === null) {
    if (rule === "optional") return undefined;
    return oauthError(
      400,
      "invalid_request",
      `playbook ${q(playbook.id)} needs a sponsor: name them in \`login_hint\``,
      "sponsor_required",
    );
  }
  const sponsor = normalizeIdentity(hint);
  if (!declaredHumans(config).has(sponsor)) {
    return oauthError(
      400,
      "unknown_user_id",
      `sponsor ${q(hint)} is declared nowhere in writ.yaml (approvers, approver groups, agent owners)`,
      "sponsor_unknown",
    );
  }
  if (rule === "approver") {
    const policy = playbook.approval.get(env);
    if (policy === undefined || approverGroupsOf(policy, config.approverGroups, sponsor).length === 0) {
      return oauthError(
        400,
        "access_denied",
        `sponsor ${q(hint)} is in no approver group the policy of ${q(playbook.id)} in ${q(env)} names`,
        "sponsor_not_approver",
      );
    }
  }
  return sponsor;
}

/** Parses the one intent of `authorization_details` and checks it names this issuer's environment. */
function readIntent(req: OAuthRequest, env: string): Intent {
  const intent = parseDetails(req.form.get("authorization_details"));
  if (intent.environment !== undefined && intent.environment !== env) {
    return refuse(
      400,
      "invalid_authorization_details",
      `the intent names ${q(intent.environment)}, but this is the ${q(env)} issuer`,
      "environment_mismatch",
    );
  }
  return intent;
}

/** The 429 for an agent still blocked after a denial (asking again counts, and extends it). */
async function slowDown(
  agent: string,
  env: string,
  now: Date,
  deps: BrokerDeps,
): Promise<OAuthResponse | undefined> {
  const blocked = await deps.backoff.check(agent, env, now);
  if (!blocked) return undefined;
  // Asking inside the block counts, and lengthens it: answer with the block this request started,
  // so a client that waits as told is not refused again.
  const longer = await deps.backoff.record(agent, env, now);
  await deps.audit("broker.denied", { environment: env, agent, reason: "repeated_denial" });
  return oauthError(
    429,
    "slow_down",
    `too many denied requests: retry after ${longer.retryAfter} s`,
    "repeated_denial",
    {
      "retry-after": String(longer.retryAfter),
    },
  );
}

/** A kill (engaged by an operator, possibly mid-request) is not the agent's denial to pay for. */
const countsTowardsSlowDown = (reason: unknown): boolean => reason !== "kill_switch_engaged";

/**
 * A kill switch covering the agent here: refused before anything else, audited, and never counted
 * towards the agent's slow-down — the kill is the operator's doing, not the agent's asking, so its
 * lift is not followed by a block the agent earned while it could not be served.
 */
async function killed(agent: Agent, env: string, deps: BrokerDeps): Promise<OAuthResponse | undefined> {
  const kill = await deps.kill.blocking(agent, env);
  if (!kill) return undefined;
  await deps.audit("broker.denied", {
    environment: env,
    agent: agent.id,
    reason: "kill_switch_engaged",
    kill: kill.id,
  });
  return oauthError(
    400,
    "access_denied",
    `a kill switch (${kill.id}) stops issuance for agent ${q(agent.id)} here`,
    "kill_switch_engaged",
  );
}

/** The answer to an intent check that failed (an undeclared runner class reads as an unknown client). */
function intentRefusal(outcome: { reason: string; error: OAuthErrorCode; message: string }): OAuthResponse {
  return oauthError(
    outcome.reason === "unknown_agent" ? 401 : 400,
    outcome.error,
    outcome.message,
    outcome.reason,
  );
}

/** The intent checks, now, with the kill switch and the signing key of this environment. */
/**
 * Writs judged issuable but not yet stored, per broker (its deps) and agent. The limits count them:
 * without this, concurrent requests of one agent all pass the count before any of their writs is
 * stored, and the agent ends above its limits. Released once the writ is stored (the counts then
 * hold it) or its issuance stopped. Per process: servers sharing PostgreSQL each count their own.
 */
const inFlight = new WeakMap<BrokerDeps, Map<string, number>>();

function pendingOf(deps: BrokerDeps, agent: string): number {
  return inFlight.get(deps)?.get(agent) ?? 0;
}

function reserve(deps: BrokerDeps, agent: string): () => void {
  const map = inFlight.get(deps) ?? new Map<string, number>();
  inFlight.set(deps, map);
  map.set(agent, (map.get(agent) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (map.get(agent) ?? 1) - 1;
    if (n <= 0) map.delete(agent);
    else map.set(agent, n);
  };
}

const NOTHING_RESERVED = () => {};

async function judge(
  env: string,
  agent: Agent,
  intent: Intent,
  now: Date,
  deps: BrokerDeps,
  approval?: "approved",
  opts: { readonly reserve?: boolean } = {},
): Promise<{
  key: Awaited<ReturnType<EnvironmentKeys["activeKey"]>>;
  outcome: ReturnType<typeof evaluateIntent>;
  /** Frees the slot this judgement reserved (with `reserve`, when the outcome is `issue`). */
  release: () => void;
}> {
  const key = await deps.keys.activeKey(env);
  const kill = await deps.kill.blocking(agent, env);
  // the counts stop at the runner class's limits: no more is needed to check them
  const limits = deps.config.runnerClasses.get(agent.runnerClass)?.limits;
  const caps = { active: limits?.activeWrits, issued: limits?.issuancePerMinute };
  const since = new Date(now.getTime() - 60_000);
  const stored = await (deps.writLoad ?? deps.store.writs.load)(agent.id, now, since, caps);
  // read after the count (no await between this and the reservation below)
  const pending = pendingOf(deps, agent.id);
  const load =
    pending === 0 ? stored : { active: stored.active + pending, issuedSince: stored.issuedSince + pending };
  const outcome = evaluateIntent(
    {
      agent: agent.id,
      playbook: intent.playbook,
      params: intent.params,
      environment: env,
      ticket: intent.ticket,
      now,
    },
    { config: deps.config, kill, load, keySignUntil: key.signUntil, approval },
  );
  const release =
    opts.reserve === true && outcome.kind === "issue" ? reserve(deps, agent.id) : NOTHING_RESERVED;
  return { key, outcome, release };
}

async function baselineToken(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof | undefined,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<OAuthResponse> {
  const now = nowOf(deps);
  const { issuer } = endpoints(deps.baseUrl, env);
  const agent = client.agent;
  const rc = deps.config.runnerClasses.get(agent.runnerClass);
  const stopped = await killed(agent, env, deps);
  if (stopped) return stopped;
  const resource = req.form.get("resource");
  const aud = resource === null ? issuer : absoluteUri(resource);
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
  return {
    status: 200,
    body: {
      access_token: token,
      token_type: proof ? "DPoP" : "Bearer",
      expires_in: exp - Math.floor(now.getTime() / 1000),
      scope: "writ:baseline",
    },
    headers: NO_STORE,
  };
}

async function exchange(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<OAuthResponse> {
  const now = nowOf(deps);
  const { issuer } = endpoints(deps.baseUrl, env);
  const agent = client.agent;

  const stopped = await killed(agent, env, deps);
  if (stopped) return stopped;
  const slowed = await slowDown(agent.id, env, now, deps);
  if (slowed) return slowed;
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
  if (req.form.get("subject_token_type") !== ACCESS_TOKEN_TYPE) {
    return refuse(
      400,
      "invalid_request",
      `\`subject_token_type\` must be \`${ACCESS_TOKEN_TYPE}\``,
      "subject_token_type",
    );
  }
  const subjectToken = req.form.get("subject_token");
  if (!subjectToken)
    return refuse(
      400,
      "invalid_request",
      "`subject_token` is required: the agent's baseline token",
      "subject_token_missing",
    );
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

type Issuable = Extract<ReturnType<typeof evaluateIntent>, { kind: "issue" }>;

interface IssueInput {
  readonly intent: Intent;
  readonly resource: string;
  readonly proof: DpopProof;
  readonly key: Awaited<ReturnType<EnvironmentKeys["activeKey"]>>;
  /** The human the agent acts for (CIBA's approved requester); `sub` of the token. */
  readonly sponsor?: string | undefined;
  /** Runs with the new writ's id before the writ is stored (CIBA consumes its approval here). */
  readonly beforeStore?: ((writId: string) => Promise<void>) | undefined;
  readonly approval?: string | undefined;
}

/** Stores the writ and mints its token: the one place a writ comes into being. */
async function issueWrit(
  env: string,
  outcome: Issuable,
  input: IssueInput,
  deps: BrokerDeps,
): Promise<OAuthResponse> {
  const { issuer } = endpoints(deps.baseUrl, env);
  const { intent, resource, proof, key } = input;
  const agent = outcome.agent;
  const writId = `writ_${randomBytes(16).toString("base64url")}`;
  await input.beforeStore?.(writId);
  const grants = outcome.grants.map((g) => g.rule.text);
  const writ: NewWrit = {
    id: writId,
    agent: agent.id,
    playbook: outcome.playbook.id,
    environment: env,
    params: intent.params,
    grants,
    issuedAt: outcome.issuedAt,
    expiresAt: outcome.ttl.expiresAt,
    maxUses: outcome.maxUses,
    ticket: intent.ticket,
    sponsor: input.sponsor,
    audience: resource,
    jkt: proof.jkt,
    approvalRequest: input.approval,
  };
  const detailGranted = {
    type: WRIT_PLAYBOOK_TYPE,
    playbook: outcome.playbook.id,
    parameters: intent.params,
    environment: env,
    ...(intent.ticket ? { ticket: intent.ticket } : {}),
    grants,
    ...(outcome.maxUses !== undefined ? { max_uses: outcome.maxUses } : {}),
  };
  const exp = Math.floor(outcome.ttl.expiresAt.getTime() / 1000);
  const token = await mintAccessToken(
    key,
    {
      iss: issuer,
      sub: input.sponsor ?? agent.id,
      aud: resource,
      exp,
      client_id: agent.id,
      act: { sub: agent.id },
      cnf: { jkt: proof.jkt },
      authorization_details: [detailGranted],
      writ: writId,
      iat: Math.floor(outcome.issuedAt.getTime() / 1000),
    },
    { clock: deps.clock },
  );
  const record = {
    environment: env,
    agent: agent.id,
    sponsor: input.sponsor,
    approval: input.approval,
    writ: writId,
    playbook: outcome.playbook.id,
    parameters: intent.params,
    ticket: intent.ticket,
    audience: resource,
    expiresAt: outcome.ttl.expiresAt.toISOString(),
    ttlBound: outcome.ttl.bound,
    maxUses: outcome.maxUses,
    ...(outcome.shadow === undefined ? {} : { shadow: outcome.shadow }),
  };
  // durable before the answer: the writ and its record are committed when this returns
  if (deps.storeIssued !== undefined) await deps.storeIssued(writ, record);
  else {
    await deps.store.writs.insert(writ);
    await deps.audit("broker.writ_issued", record);
  }
  return {
    status: 200,
    body: {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "DPoP",
      expires_in: outcome.ttl.seconds,
      authorization_details: [detailGranted],
      writ_id: writId,
      ttl_bound: outcome.ttl.bound,
    },
    headers: NO_STORE,
  };
}

/** CIBA backchannel authentication request: the intent goes to the approvers. */
async function bcAuthorize(
  env: string,
  client: AuthenticatedClient,
  req: OAuthRequest,
  deps: BrokerDeps,
  approvals: ApprovalService,
): Promise<OAuthResponse> {
  const now = nowOf(deps);
  const agent = client.agent;
  const stopped = await killed(agent, env, deps);
  if (stopped) return stopped;
  const slowed = await slowDown(agent.id, env, now, deps);
  if (slowed) return slowed;
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
async function cibaGrant(
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

/**
 * True when the request carries the resource servers' bearer token (the PDP token); a wrong one is
 * refused (401). False when there is no bearer token or none is configured.
 */
function resourceServer(req: OAuthRequest, deps: BrokerDeps): boolean {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
  if (bearer === undefined || deps.introspectionToken === undefined) return false;
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
  return true;
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

export function brokerService(deps: BrokerDeps) {
  const run = async (fn: () => Promise<OAuthResponse>): Promise<OAuthResponse> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Refusal) return err.response;
      throw err;
    }
  };
  const knownEnv = (env: string) => deps.config.environments.has(env);
  // RFC 9449 §8: with server nonces on, every token endpoint answer hands out the current one.
  const withNonce = async (fn: () => Promise<OAuthResponse>): Promise<OAuthResponse> => {
    const r = await run(fn);
    if (deps.nonce === undefined || r.headers?.["dpop-nonce"] !== undefined) return r;
    return { ...r, headers: { ...r.headers, "dpop-nonce": deps.nonce.current() } };
  };

  return {
    knownEnv,

    token(env: string, req: OAuthRequest): Promise<OAuthResponse> {
      return withNonce(async () => {
        const url = endpoints(deps.baseUrl, env).token;
        const grant = req.form.get("grant_type");
        const ciba = grant === CIBA_GRANT && deps.approvals !== undefined;
        if (grant !== "client_credentials" && grant !== TOKEN_EXCHANGE && !ciba) {
          return refuse(
            400,
            "unsupported_grant_type",
            `grant type ${q(grant ?? "")} is not supported here`,
            "unsupported_grant_type",
          );
        }
        const client = await authenticate(env, req, deps, url);
        if (grant === "client_credentials") {
          const proof = await dpopProof(req, deps, url, false);
          return baselineToken(env, client, proof, req, deps);
        }
        const proof = await dpopProof(req, deps, url, true);
        if (ciba) return cibaGrant(env, client, proof!, req, deps, deps.approvals!);
        return exchange(env, client, proof!, req, deps);
      });
    },

    /** CIBA backchannel authentication (poll mode), when approvals are configured. */
    bcAuthorize(env: string, req: OAuthRequest): Promise<OAuthResponse> {
      return run(async () => {
        const approvals = deps.approvals;
        if (!approvals)
          return refuse(404, "invalid_request", "approvals are not served here", "approvals_unavailable");
        const client = await authenticate(env, req, deps, endpoints(deps.baseUrl, env).bcAuthorize);
        return bcAuthorize(env, client, req, deps, approvals);
      });
    },

    cibaEnabled: () => deps.approvals !== undefined,

    /** RFC 7662. Callers: an agent about its own tokens (private_key_jwt), or a resource server with the introspection token. */
    introspect(env: string, req: OAuthRequest): Promise<OAuthResponse> {
      return run(async () => {
        const { issuer, introspect } = endpoints(deps.baseUrl, env);
        let onlyClient: string | undefined;
        if (!resourceServer(req, deps))
          onlyClient = (await authenticate(env, req, deps, introspect)).agent.id;
        const token = req.form.get("token");
        if (!token) return refuse(400, "invalid_request", "`token` is required", "token_missing");
        const inactive: OAuthResponse = { status: 200, body: { active: false }, headers: NO_STORE };
        let claims: AccessTokenClaims;
        try {
          claims = await verifyAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
        } catch (err) {
          if (isTokenRefusal(err)) return inactive;
          throw err;
        }
        if (onlyClient !== undefined && claims.client_id !== onlyClient) return inactive;
        const extra: Record<string, unknown> = {};
        if (claims.writ !== undefined) {
          const writ = await deps.store.writs.get(claims.writ);
          const now = nowOf(deps);
          if (!writ || writ.status !== "active" || writ.expiresAt <= now) return inactive;
          if (writ.maxUses !== undefined && writ.uses >= writ.maxUses) return inactive;
          extra.writ = writ.id;
          extra.max_uses = writ.maxUses;
          extra.uses = writ.uses;
          extra.uses_left = writ.maxUses === undefined ? undefined : writ.maxUses - writ.uses;
        }
        return {
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
        };
      });
    },

    /**
     * Spends one use of a writ: a resource server (with the resource servers' token) reports that it
     * acted on the writ. Answers the uses spent and left; a spent, revoked or expired writ is refused.
     */
    use(env: string, req: OAuthRequest): Promise<OAuthResponse> {
      return run(async () => {
        const { issuer } = endpoints(deps.baseUrl, env);
        if (!resourceServer(req, deps)) {
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
        let claims: AccessTokenClaims;
        try {
          claims = await verifyAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
        } catch (err) {
          if (isTokenRefusal(err)) return refuse(400, "invalid_token", err.message, reasonOf(err.code));
          throw err;
        }
        if (claims.writ === undefined) {
          return refuse(400, "invalid_token", "a baseline token has no uses to spend", "not_a_writ");
        }
        try {
          const spent = await spendWritUse(deps, claims.writ, "resource-server");
          return {
            status: 200,
            body: { writ: spent.writ, uses: spent.uses, uses_left: spent.usesLeft },
            headers: NO_STORE,
          };
        } catch (err) {
          if (isWritError(err) && USE_REFUSALS.has(err.code)) {
            return refuse(400, "invalid_token", err.message, reasonOf(err.code));
          }
          throw err;
        }
      });
    },

    /** RFC 7009: an agent revokes one of its own writs. Unknown or foreign tokens still answer 200. */
    revoke(env: string, req: OAuthRequest): Promise<OAuthResponse> {
      return run(async () => {
        const { issuer, revoke } = endpoints(deps.baseUrl, env);
        const client = await authenticate(env, req, deps, revoke);
        const token = req.form.get("token");
        if (!token) return refuse(400, "invalid_request", "`token` is required", "token_missing");
        const ok: OAuthResponse = { status: 200, body: {}, headers: NO_STORE };
        let claims: AccessTokenClaims;
        try {
          claims = await verifyAccessToken(token, { env, issuer, keys: deps.keys, clock: deps.clock });
        } catch (err) {
          if (isTokenRefusal(err)) return ok;
          throw err;
        }
        if (claims.client_id !== client.agent.id || claims.writ === undefined) return ok;
        await deps.store.writs.revoke(claims.writ, `revoked by ${client.agent.id} (RFC 7009)`);
        await deps.audit("broker.writ_revoked", {
          environment: env,
          agent: client.agent.id,
          writ: claims.writ,
        });
        await deps.onRevoked?.(claims.writ);
        return ok;
      });
    },
  };
}

export type BrokerService = ReturnType<typeof brokerService>;
