/**
 * Delegation: token exchange with an `actor_token` (RFC 8693 §4.1, §4.4) issues a child writ for a
 * sub-agent, a proven subset of its parent (docs/broker.md#delegation). Who is who:
 *
 *   the client          the parent writ's holder, authenticated by its private_key_jwt, its DPoP
 *                       proof made with the key the parent writ is bound to: it delegates
 *   `subject_token`     the parent writ (active, unexpired, uses left, every ancestor too)
 *   `actor_token`       the sub-agent's own baseline token from this environment, DPoP-bound: the
 *                       child writ is bound to that key, so only the sub-agent can use it
 *
 * Then, in order: the actor may act for the delegator's runner class, the chain stays within the
 * depth limits, the grants asked for are contained in the parent's (`checkDelegation`), the
 * audience is the parent's, the actor is not killed and within its limits. The child expires no
 * later than its parent, its uses are spent from every ancestor too, and revoking or killing any
 * ancestor revokes it. Every refusal is audited (`broker.denied`, with the excess when there is).
 */
import { randomBytes } from "node:crypto";
import { type Agent, q, type RuleText } from "../../core/index.js";
import type { NewWrit, StoredWrit, WritLoad } from "../../store/index.js";
import type { AuthenticatedClient } from "../client-auth.js";
import type { DpopProof } from "../dpop.js";
import { WRIT_PLAYBOOK_TYPE } from "../metadata.js";
import {
  ACCESS_TOKEN_TYPE,
  type BrokerDeps,
  done,
  endpoints,
  NO_STORE,
  nowOf,
  type OAuthRequest,
  type OAuthResponse,
  type Outcome,
  type Refused,
  refuse,
  withHeaders,
} from "../oauth.js";
import {
  type AccessTokenClaims,
  type Actor,
  checkAccessToken,
  mintAccessToken,
  TokenRefused,
} from "../tokens.js";
import { checkDelegation, DELEGATION_OAUTH_ERROR } from "./delegation-check.js";
import { type IssuanceSlot, issuing } from "./issuance.js";
import {
  countsTowardsSlowDown,
  killed,
  stoppedOrSlowed,
  subjectTokenOf,
  tokenVerifyOptions,
  verifiedSubject,
} from "./steps.js";

/** The `authorization_details` type of a delegation's request (optional: the parent's grants). */
export const WRIT_DELEGATION_TYPE = "writ_delegation";

interface ChildRequest {
  readonly grants?: readonly RuleText[];
  readonly maxUses?: number;
}

const malformed = (message: string): Refused =>
  refuse(400, "invalid_authorization_details", message, "intent_malformed");

/** The optional `[{ type: "writ_delegation", grants?: [{action, resource}], max_uses? }]`. */
function readChildRequest(raw: string | null): Outcome<ChildRequest> {
  if (raw === null) return done({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return malformed("`authorization_details` is not JSON");
  }
  const d = Array.isArray(parsed) && parsed.length === 1 ? (parsed[0] as Record<string, unknown>) : undefined;
  if (!d || typeof d !== "object" || d.type !== WRIT_DELEGATION_TYPE) {
    return malformed(`a delegation's \`authorization_details\` is one \`${WRIT_DELEGATION_TYPE}\` entry`);
  }
  const out: { grants?: RuleText[]; maxUses?: number } = {};
  if (d.grants !== undefined) {
    if (!Array.isArray(d.grants) || d.grants.length === 0 || d.grants.length > 100) {
      return malformed("`grants` must list 1 to 100 `{action, resource}` grants");
    }
    const grants: RuleText[] = [];
    for (const [i, g] of (d.grants as unknown[]).entries()) {
      const o = g as { action?: unknown; resource?: unknown } | null;
      if (
        !o ||
        typeof o.action !== "string" ||
        (o.resource !== undefined && typeof o.resource !== "string")
      ) {
        return malformed(`grants[${i}] needs a string \`action\` and \`resource\``);
      }
      grants.push({ action: o.action, resource: o.resource ?? "*" });
    }
    out.grants = grants;
  }
  if (d.max_uses !== undefined) {
    const n = d.max_uses;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
      return malformed("`max_uses` must be a whole number ≥ 1");
    }
    out.maxUses = n;
  }
  return done(out);
}

/** The subject token (the parent writ), verified with this environment's keys. */
async function subjectOf(
  req: OAuthRequest,
  env: string,
  deps: BrokerDeps,
): Promise<Outcome<AccessTokenClaims>> {
  const token = subjectTokenOf(req, "the parent writ");
  if (!token.ok) return token;
  return verifiedSubject(token.value, env, deps);
}

/** Why a writ of the chain cannot be delegated from at `now`, or undefined. */
function inactive(w: StoredWrit, now: Date): string | undefined {
  if (w.status !== "active") return "is revoked";
  if (w.expiresAt <= now) return "has expired";
  if (w.maxUses !== undefined && w.uses >= w.maxUses) return "has no uses left";
  return undefined;
}

/** The parent writ and its ancestors, every one of them live: the subject token's writ, the client's. */
async function parentChain(
  claims: AccessTokenClaims,
  agent: Agent,
  proof: DpopProof,
  env: string,
  deps: BrokerDeps,
  now: Date,
): Promise<Outcome<StoredWrit[]>> {
  if (claims.writ === undefined || claims.client_id !== agent.id) {
    return refuse(
      400,
      "invalid_grant",
      "the subject token must be a writ this agent holds",
      "subject_token_mismatch",
    );
  }
  if (claims.cnf?.jkt !== proof.jkt) {
    return refuse(
      400,
      "invalid_grant",
      "the subject token is bound to another DPoP key",
      "subject_token_binding",
    );
  }
  const chain = await deps.store.writs.lineage(claims.writ);
  const parent = chain[0];
  if (parent === undefined || parent.agent !== agent.id || parent.environment !== env) {
    return refuse(
      400,
      "invalid_grant",
      `writ ${q(claims.writ)} is not this agent's here`,
      "subject_token_mismatch",
    );
  }
  return liveChain(chain, now);
}

/** The chain, refused unless every writ of it is live and it reaches its root. */
function liveChain(chain: StoredWrit[], now: Date): Outcome<StoredWrit[]> {
  const parent = chain[0];
  for (const w of chain) {
    const why = inactive(w, now);
    if (why !== undefined) {
      const which = w === parent ? `the parent writ ${q(w.id)}` : `its ancestor writ ${q(w.id)}`;
      return refuse(400, "invalid_grant", `${which} ${why}`, "parent_writ_inactive");
    }
  }
  if (parent === undefined || chain.at(-1)?.parent !== undefined) {
    return refuse(
      400,
      "invalid_grant",
      `an ancestor of writ ${q(parent?.id ?? "")} is gone`,
      "parent_writ_inactive",
    );
  }
  return done(chain);
}

/** The actor token: the sub-agent's own DPoP-bound baseline token from this environment. */
async function actorOf(
  req: OAuthRequest,
  env: string,
  deps: BrokerDeps,
): Promise<Outcome<{ id: string; jkt: string }>> {
  if (req.form.get("actor_token_type") !== ACCESS_TOKEN_TYPE) {
    return refuse(
      400,
      "invalid_request",
      `\`actor_token_type\` must be \`${ACCESS_TOKEN_TYPE}\``,
      "actor_token_type",
    );
  }
  const token = req.form.get("actor_token");
  if (!token)
    return refuse(
      400,
      "invalid_request",
      "`actor_token` is required: the sub-agent's baseline token",
      "actor_token_missing",
    );
  const claims = await checkAccessToken(token, tokenVerifyOptions(env, deps));
  if (claims instanceof TokenRefused) {
    return refuse(
      400,
      "invalid_grant",
      `the actor token is not valid here: ${claims.message}`,
      "actor_token_invalid",
    );
  }
  if (claims.scope !== "writ:baseline" || claims.sub !== claims.client_id || claims.writ !== undefined) {
    return refuse(
      400,
      "invalid_grant",
      "the actor token must be the sub-agent's own baseline token",
      "actor_token_invalid",
    );
  }
  if (claims.cnf === undefined) {
    return refuse(
      400,
      "invalid_grant",
      "the actor token must be DPoP-bound: the child is bound to its key",
      "actor_token_unbound",
    );
  }
  return done({ id: claims.client_id, jkt: claims.cnf.jkt });
}

/**
 * Refused when the actor's runner class's limits are reached: the same counts as token exchange,
 * through the actor's issuance batch. Otherwise the child holds a place in it (issuance.ts).
 */
async function withinLimits(
  actor: Agent,
  now: Date,
  deps: BrokerDeps,
  slot: IssuanceSlot,
): Promise<Outcome<undefined>> {
  const limits = deps.config.runnerClasses.get(actor.runnerClass)?.limits;
  if (limits === undefined) return done(undefined);
  const since = new Date(now.getTime() - 60_000);
  const caps = { active: limits.activeWrits, issued: limits.issuancePerMinute };
  const check = (load: WritLoad): Outcome<undefined> => {
    if (load.active >= limits.activeWrits) {
      return refuse(
        400,
        "access_denied",
        `agent ${q(actor.id)} holds ${load.active} active writs, its limit`,
        "writ_limit_active",
      );
    }
    if (load.issuedSince >= limits.issuancePerMinute) {
      return refuse(
        400,
        "access_denied",
        `agent ${q(actor.id)} was issued ${load.issuedSince} writs in 60 s, its limit`,
        "writ_limit_rate",
      );
    }
    return done(undefined);
  };
  return slot.checked(now, since, caps, check, (o) => o.ok);
}

/** The token exchange with an `actor_token`: a child writ, or a refusal that is audited. */
export async function delegate(
  env: string,
  client: AuthenticatedClient,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
): Promise<Outcome<OAuthResponse>> {
  const now = nowOf(deps);
  const agent = client.agent;
  const stopped = await stoppedOrSlowed(agent, env, now, deps);
  if (stopped) return stopped;
  const detail: Record<string, unknown> = { delegation: true };
  const deny = async (refusal: Refused): Promise<Refused> => {
    const reason = refusal.refusal.reason;
    await deps.audit("broker.denied", { environment: env, agent: agent.id, reason, ...detail });
    if (!countsTowardsSlowDown(reason)) return refusal;
    const b = await deps.backoff.record(agent.id, env, now);
    return withHeaders(refusal, { "x-writ-retry-after": String(b.retryAfter) });
  };
  return childWrit(env, agent, proof, req, deps, now, detail, deny);
}

/**
 * The checks in order, then the child stored and minted; `detail` gathers what the audit shows,
 * `deny` audits a refusal (and counts it towards the delegator's slow-down).
 */
async function childWrit(
  env: string,
  agent: Agent,
  proof: DpopProof,
  req: OAuthRequest,
  deps: BrokerDeps,
  now: Date,
  detail: Record<string, unknown>,
  deny: (refusal: Refused) => Promise<Refused>,
): Promise<Outcome<OAuthResponse>> {
  const subject = await subjectOf(req, env, deps);
  if (!subject.ok) return deny(subject);
  const chain = await parentChain(subject.value, agent, proof, env, deps, now);
  if (!chain.ok) return deny(chain);
  const parent = chain.value[0]!;
  detail.parent = parent.id;
  const actorToken = await actorOf(req, env, deps);
  if (!actorToken.ok) return deny(actorToken);
  detail.actor = actorToken.value.id;
  const asked = readChildRequest(req.form.get("authorization_details"));
  if (!asked.ok) return deny(asked);
  const verdict = checkDelegation(deps.config, {
    holders: chain.value.map((w) => w.agent),
    environment: env,
    parentGrants: parent.grants,
    actor: actorToken.value.id,
    grants: asked.value.grants,
  });
  if (!verdict.ok) {
    if (verdict.excess !== undefined) detail.excess = verdict.excess;
    return deny(refuse(400, DELEGATION_OAUTH_ERROR[verdict.reason], verdict.message, verdict.reason));
  }
  const resource = req.form.get("resource") ?? parent.audience;
  if (resource === undefined || resource !== parent.audience) {
    return deny(
      refuse(
        400,
        "invalid_target",
        `a child writ is for its parent's audience ${q(parent.audience ?? "")}`,
        "resource_mismatch",
      ),
    );
  }
  const actor = verdict.actor;
  // a kill covering the sub-agent: audited by `killed`, and never the delegator's slow-down
  const stoppedActor = await killed(actor, env, deps);
  if (stoppedActor) return stoppedActor;
  // the chain read again, the actor's writs counted and the child stored, as one step against
  // every other issuance for the actor (in any process): concurrent ones cannot overshoot its
  // limits, and the child's max_uses is what its ancestors have left just before it is stored
  const issued = await issuing(deps, actor.id, async (slot): Promise<Outcome<OAuthResponse>> => {
    const live = liveChain(await deps.store.writs.lineage(parent.id), now);
    if (!live.ok) return live;
    const within = await withinLimits(actor, now, deps, slot);
    if (!within.ok) return within;
    const child = {
      subject: subject.value,
      actor,
      jkt: actorToken.value.jkt,
      grants: verdict.grants,
      depth: verdict.depth,
    };
    return issueChild(env, { ...child, chain: live.value, asked: asked.value, resource }, deps, now);
  });
  return issued.ok ? issued : deny(issued);
}

interface Child {
  readonly chain: readonly StoredWrit[];
  readonly subject: AccessTokenClaims;
  readonly actor: Agent;
  readonly jkt: string;
  readonly grants: readonly RuleText[];
  readonly depth: number;
  readonly asked: ChildRequest;
  readonly resource: string;
}

/** The act chain (RFC 8693 §4.4): the sub-agent, then the prior actors nested below it. */
function actChain(actor: string, parent: AccessTokenClaims): Actor {
  return { sub: actor, act: parent.act ?? { sub: parent.client_id } };
}

/** The agents of an `act` chain, the current actor first. */
function agentsOf(act: Actor): string[] {
  return act.act === undefined ? [act.sub] : [act.sub, ...agentsOf(act.act)];
}

/** Stores the child with its record, checks its lineage again, and mints its token. */
async function issueChild(
  env: string,
  c: Child,
  deps: BrokerDeps,
  now: Date,
): Promise<Outcome<OAuthResponse>> {
  const parent = c.chain[0]!;
  const key = await deps.keys.activeKey(env);
  const ceilingTtl = deps.config.runnerClasses.get(c.actor.runnerClass)?.ceiling.maxTtlSeconds ?? 0;
  const bounds: [string, number][] = [
    ["parent", parent.expiresAt.getTime()],
    ["ceiling", now.getTime() + ceilingTtl * 1000],
    ["signing_key", key.signUntil.getTime()],
  ];
  const [bound, until] = bounds.reduce((a, b) => (b[1] < a[1] ? b : a));
  const exp = Math.floor(until / 1000);
  const iat = Math.floor(now.getTime() / 1000);
  if (exp <= iat)
    return refuse(
      400,
      "temporarily_unavailable",
      "no lifetime is left to give a child",
      "signing_key_exhausted",
    );
  const usesLeft = c.chain.flatMap((w) => (w.maxUses === undefined ? [] : [w.maxUses - w.uses]));
  const maxUses = [c.asked.maxUses, ...usesLeft].reduce<number | undefined>(
    (m, n) => (n === undefined ? m : m === undefined ? n : Math.min(m, n)),
    undefined,
  );
  const id = `writ_${randomBytes(16).toString("base64url")}`;
  const act = actChain(c.actor.id, c.subject);
  const writ: NewWrit = {
    id,
    agent: c.actor.id,
    playbook: parent.playbook,
    environment: env,
    params: parent.params,
    grants: c.grants,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
    maxUses,
    ticket: parent.ticket,
    sponsor: parent.sponsor,
    audience: c.resource,
    jkt: c.jkt,
    parent: parent.id,
  };
  const record = {
    environment: env,
    agent: c.actor.id,
    writ: id,
    parent: parent.id,
    delegatedBy: parent.agent,
    chain: agentsOf(act),
    depth: c.depth,
    playbook: parent.playbook,
    grants: c.grants,
    audience: c.resource,
    expiresAt: writ.expiresAt.toISOString(),
    ttlBound: bound,
    maxUses,
  };
  if (deps.storeIssued !== undefined) await deps.storeIssued(writ, record);
  else {
    await deps.store.writs.insert(writ);
    await deps.audit("broker.writ_issued", record);
  }
  // an ancestor revoked while the child was stored: its revocation may have missed the child
  const again = await deps.store.writs.lineage(parent.id);
  const dead = again.find((w) => w.status !== "active");
  if (dead !== undefined || again.length !== c.chain.length) {
    await deps.store.writs.revoke(
      id,
      `its ancestor writ ${dead?.id ?? parent.id} was revoked while it was issued`,
    );
    return refuse(
      400,
      "invalid_grant",
      `the parent writ ${q(parent.id)} was revoked meanwhile`,
      "parent_writ_inactive",
    );
  }
  const detailGranted = {
    type: WRIT_PLAYBOOK_TYPE,
    playbook: parent.playbook,
    parameters: parent.params,
    environment: env,
    ...(parent.ticket ? { ticket: parent.ticket } : {}),
    grants: c.grants,
    ...(maxUses !== undefined ? { max_uses: maxUses } : {}),
    parent_writ: parent.id,
  };
  const token = await mintAccessToken(
    key,
    {
      iss: endpoints(deps.baseUrl, env).issuer,
      sub: c.subject.sub,
      aud: c.resource,
      exp,
      client_id: c.actor.id,
      act,
      cnf: { jkt: c.jkt },
      authorization_details: [detailGranted],
      writ: id,
      iat,
    },
    { clock: deps.clock },
  );
  return done({
    status: 200,
    body: {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: "DPoP",
      expires_in: exp - iat,
      authorization_details: [detailGranted],
      writ_id: id,
      ttl_bound: bound,
      parent_writ: parent.id,
      act,
    },
    headers: NO_STORE,
  });
}
