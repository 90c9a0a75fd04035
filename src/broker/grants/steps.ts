/**
 * The steps the grant types share, each a plain function of its inputs: reading the intent and the
 * audience, the kill switch and the slow-down, the intent checks (`judge`, with the runner class's
 * limits counting writs in flight) and the one place a writ comes into being (`issueWrit`). A step
 * that can refuse returns its value or the refusal (oauth.ts's `Outcome`), never throws it.
 */
import { randomBytes } from "node:crypto";
import {
  type Agent,
  approverGroupsOf,
  normalizeIdentity,
  type Playbook,
  q,
  type WritConfig,
} from "../../core/index.js";
import type { OAuthErrorCode } from "../../http/problem.js";
import type { NewWrit, WritLoad, WritLoadCaps } from "../../store/index.js";
import type { DpopProof } from "../dpop.js";
import { evaluateIntent } from "../intent.js";
import type { EnvironmentKeys } from "../keys.js";
import { issuerFor, WRIT_PLAYBOOK_TYPE } from "../metadata.js";
import {
  ACCESS_TOKEN_TYPE,
  type BrokerDeps,
  done,
  endpoints,
  NO_STORE,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  type Refused,
  reasonOf,
  refuse,
} from "../oauth.js";
import { type AccessTokenClaims, checkAccessToken, mintAccessToken, TokenRefused } from "../tokens.js";
import { type IssuanceSlot, unsettledOf } from "./issuance.js";

export interface Intent {
  readonly playbook: string;
  readonly params: Record<string, unknown>;
  readonly environment?: string;
  readonly ticket?: string;
}

function parseDetails(raw: string | null): Outcome<Intent> {
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
  return done({
    playbook: d.playbook,
    params: params as Record<string, unknown>,
    ...(typeof d.environment === "string" ? { environment: d.environment } : {}),
    ...(typeof d.ticket === "string" ? { ticket: d.ticket } : {}),
  });
}

export function absoluteUri(value: string | null): Outcome<string> {
  if (value === null)
    return refuse(
      400,
      "invalid_target",
      "`resource` (RFC 8707) is required: the audience of the writ",
      "resource_missing",
    );
  let hash: string;
  try {
    hash = new URL(value).hash;
  } catch {
    hash = "#";
  }
  if (hash !== "") {
    return refuse(
      400,
      "invalid_target",
      `\`resource\` ${q(value)} must be an absolute URI without a fragment`,
      "resource_invalid",
    );
  }
  return done(value);
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
export function audienceAllowed(
  deps: BrokerDeps,
  env: string,
  resource: string,
  playbook?: Playbook,
): boolean {
  const declared = deps.config.environments.get(env)?.audiences;
  const byEnvironment =
    resource === gatewayAudience(deps) ||
    (declared?.includes(resource) ?? false) ||
    isDownstreamAudience(deps, env, resource);
  const listed = playbook?.audiences;
  if (listed === undefined) return byEnvironment;
  return listed.includes(resource) && (declared === undefined || byEnvironment);
}

export function audienceRefusal(env: string, resource: string, playbook?: Playbook): Refused {
  const where = playbook === undefined ? `environment ${q(env)}` : `playbook ${q(playbook.id)} in ${q(env)}`;
  return refuse(
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
export function sponsorOf(
  hint: string | null,
  playbook: Playbook,
  env: string,
  config: WritConfig,
): Outcome<string | undefined> {
  const rule = playbook.sponsor ?? "optional";
  if (hint === null) {
    if (rule === "optional") return done(undefined);
    return refuse(
      400,
      "invalid_request",
      `playbook ${q(playbook.id)} needs a sponsor: name them in \`login_hint\``,
      "sponsor_required",
    );
  }
  const sponsor = normalizeIdentity(hint);
  if (!declaredHumans(config).has(sponsor)) {
    return refuse(
      400,
      "unknown_user_id",
      `sponsor ${q(hint)} is declared nowhere in writ.yaml (approvers, approver groups, agent owners)`,
      "sponsor_unknown",
    );
  }
  if (rule === "approver") {
    const policy = playbook.approval.get(env);
    if (policy === undefined || approverGroupsOf(policy, config.approverGroups, sponsor).length === 0) {
      return refuse(
        400,
        "access_denied",
        `sponsor ${q(hint)} is in no approver group the policy of ${q(playbook.id)} in ${q(env)} names`,
        "sponsor_not_approver",
      );
    }
  }
  return done(sponsor);
}

/** Parses the one intent of `authorization_details` and checks it names this issuer's environment. */
export function readIntent(req: OAuthRequest, env: string): Outcome<Intent> {
  const parsed = parseDetails(req.form.get("authorization_details"));
  if (!parsed.ok) return parsed;
  const intent = parsed.value;
  if (intent.environment !== undefined && intent.environment !== env) {
    return refuse(
      400,
      "invalid_authorization_details",
      `the intent names ${q(intent.environment)}, but this is the ${q(env)} issuer`,
      "environment_mismatch",
    );
  }
  return parsed;
}

/** The 429 for an agent still blocked after a denial (asking again counts, and extends it). */
export async function slowDown(
  agent: string,
  env: string,
  now: Date,
  deps: BrokerDeps,
): Promise<Refused | undefined> {
  const blocked = await deps.backoff.check(agent, env, now);
  if (!blocked) return undefined;
  // Asking inside the block counts, and lengthens it: answer with the block this request started,
  // so a client that waits as told is not refused again.
  const longer = await deps.backoff.record(agent, env, now);
  await deps.audit("broker.denied", { environment: env, agent, reason: "repeated_denial" });
  return refuse(
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
export const countsTowardsSlowDown = (reason: unknown): boolean => reason !== "kill_switch_engaged";

/**
 * A kill switch covering the agent here: refused before anything else, audited, and never counted
 * towards the agent's slow-down — the kill is the operator's doing, not the agent's asking, so its
 * lift is not followed by a block the agent earned while it could not be served.
 */
export async function killed(agent: Agent, env: string, deps: BrokerDeps): Promise<Refused | undefined> {
  const kill = await deps.kill.blocking(agent, env);
  if (!kill) return undefined;
  await deps.audit("broker.denied", {
    environment: env,
    agent: agent.id,
    reason: "kill_switch_engaged",
    kill: kill.id,
  });
  return refuse(
    400,
    "access_denied",
    `a kill switch (${kill.id}) stops issuance for agent ${q(agent.id)} here`,
    "kill_switch_engaged",
  );
}

/** The answer to an intent check that failed (an undeclared runner class reads as an unknown client). */
export function intentRefusal(outcome: { reason: string; error: OAuthErrorCode; message: string }): Refused {
  return refuse(
    outcome.reason === "unknown_agent" ? 401 : 400,
    outcome.error,
    outcome.message,
    outcome.reason,
  );
}

/**
 * The intent checks, now, with the kill switch and the signing key of this environment. Inside an
 * issuance (`slot`, issuance.ts) the limits count through the slot, and a writ judged issuable
 * holds a place there; outside one (a first check before approval) they count the store's writs
 * and the places held in this process.
 */
export async function judge(
  env: string,
  agent: Agent,
  intent: Intent,
  now: Date,
  deps: BrokerDeps,
  approval?: "approved",
  slot?: IssuanceSlot,
): Promise<{
  key: Awaited<ReturnType<EnvironmentKeys["activeKey"]>>;
  outcome: ReturnType<typeof evaluateIntent>;
}> {
  const key = await deps.keys.activeKey(env);
  const kill = await deps.kill.blocking(agent, env);
  // the counts stop at the runner class's limits: no more is needed to check them
  const limits = deps.config.runnerClasses.get(agent.runnerClass)?.limits;
  const caps = { active: limits?.activeWrits, issued: limits?.issuancePerMinute };
  const since = new Date(now.getTime() - 60_000);
  const check = (load: WritLoad) =>
    evaluateIntent(
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
  const outcome =
    slot !== undefined
      ? await slot.checked(now, since, caps, check, (o) => o.kind === "issue")
      : check(await unbatchedLoad(agent.id, now, since, caps, deps));
  return { key, outcome };
}

/**
 * The counts outside an issuance (a first check before approval): the store's, and the places
 * held in this process for writs not yet stored.
 */
async function unbatchedLoad(
  agent: string,
  now: Date,
  since: Date,
  caps: WritLoadCaps,
  deps: BrokerDeps,
): Promise<WritLoad> {
  const stored = await (deps.writLoad ?? deps.store.writs.load)(agent, now, since, caps);
  const unsettled = unsettledOf(deps, agent);
  return { active: stored.active + unsettled, issuedSince: stored.issuedSince + unsettled };
}

export type Issuable = Extract<ReturnType<typeof evaluateIntent>, { kind: "issue" }>;

export interface IssueInput {
  readonly intent: Intent;
  readonly resource: string;
  readonly proof: DpopProof;
  readonly key: Awaited<ReturnType<EnvironmentKeys["activeKey"]>>;
  /** The human the agent acts for (CIBA's approved requester); `sub` of the token. */
  readonly sponsor?: string | undefined;
  /**
   * Runs with the new writ's id before the writ is stored (CIBA consumes its approval here); a
   * refusal it returns stops the issuance.
   */
  readonly beforeStore?: ((writId: string) => Promise<Refused | undefined>) | undefined;
  readonly approval?: string | undefined;
}

/** Stores the writ and mints its token: the one place a writ comes into being. */
export async function issueWrit(
  env: string,
  outcome: Issuable,
  input: IssueInput,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const { issuer } = endpoints(deps.baseUrl, env);
  const { intent, resource, proof, key } = input;
  const agent = outcome.agent;
  const writId = `writ_${randomBytes(16).toString("base64url")}`;
  const stopped = await input.beforeStore?.(writId);
  if (stopped !== undefined) return stopped;
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
  return done({
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
  });
}

/**
 * The token exchange's `subject_token`, which must be an access token of ours (RFC 8693 §2.1);
 * `what` says what it is in this grant, for the refusal.
 */
export function subjectTokenOf(req: OAuthRequest, what: string): Outcome<string> {
  if (req.form.get("subject_token_type") !== ACCESS_TOKEN_TYPE) {
    return refuse(
      400,
      "invalid_request",
      `\`subject_token_type\` must be \`${ACCESS_TOKEN_TYPE}\``,
      "subject_token_type",
    );
  }
  const token = req.form.get("subject_token");
  if (!token) {
    return refuse(400, "invalid_request", `\`subject_token\` is required: ${what}`, "subject_token_missing");
  }
  return done(token);
}

/** What an access token of ours presented in this environment is verified against. */
export const tokenVerifyOptions = (env: string, deps: BrokerDeps) => ({
  env,
  issuer: endpoints(deps.baseUrl, env).issuer,
  keys: deps.keys,
  clock: deps.clock,
});

/** The subject token's claims, verified with this environment's keys; one that is not valid here is `invalid_grant`. */
export async function verifiedSubject(
  token: string,
  env: string,
  deps: BrokerDeps,
): Promise<Outcome<AccessTokenClaims>> {
  const claims = await checkAccessToken(token, tokenVerifyOptions(env, deps));
  if (claims instanceof TokenRefused) {
    return refuse(
      400,
      "invalid_grant",
      `the subject token is not valid here: ${claims.message}`,
      reasonOf(claims.code),
    );
  }
  return done(claims);
}

/** The checks every writ-issuing grant runs first: the kill switch, then the denial slow-down. */
export async function stoppedOrSlowed(
  agent: Agent,
  env: string,
  now: Date,
  deps: BrokerDeps,
): Promise<Refused | undefined> {
  return (await killed(agent, env, deps)) ?? (await slowDown(agent.id, env, now, deps));
}
