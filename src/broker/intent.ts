/**
 * Should this agent get a writ for this intent? The broker's checks, in the order the issue fixes,
 * each failure answered with a `reason` from the registry (docs/reasons.md) and the OAuth error it
 * maps to:
 *
 *   1. the agent may request the playbook, in this environment     playbook_not_allowed, environment_not_allowed
 *   2. the parameters are valid against the playbook's schema       invalid_parameters
 *   3. the grants, parameters substituted, stay within the ceiling  grant_outside_ceiling
 *   4. a ticket is present and matches the environment's pattern    ticket_required, ticket_invalid
 *   5. now is inside a change window                               outside_change_window
 *   6. no kill switch is engaged for the agent, class, environment  kill_switch_engaged
 *      and the agent is within its runner class's limits           writ_limit_active, writ_limit_rate
 *   7. approvals are satisfied                                      approval_required (pending), approval_denied
 *
 * A playbook in `mode: shadow` records a check 2 failure, or a missing ticket it requires, instead
 * of refusing (the grants must still be built from the parameters given; a ticket that breaks the
 * environment's pattern is refused); a runner class in `mode: shadow` records a check 3
 * failure. The records ride on the outcome as `shadow` (docs/shadow.md); every other check enforces.
 *
 * Then the effective TTL: the minimum of the playbook's TTL, the ceiling's maximum, the end of the
 * change window and the signing key's life, with the bound that applied named. The clock starts
 * now, at issuance: a writ is never dated in the future.
 *
 * Pure: the kill switch state, the agent's writ counts, the approval state and the key's life are
 * inputs.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import {
  type Agent,
  type Ceiling,
  type CeilingRule,
  type Environment,
  type Grant,
  isShadow,
  isWritError,
  linearRegExpEngine,
  type Playbook,
  playbookGrants,
  q,
  type Rule,
  type RunnerClass,
  ruleContains,
  ruleOverlaps,
  ruleToString,
  type ShadowRecord,
  shadowRuleId,
  type WritConfig,
  windowState,
} from "../core/index.js";
import type { OAuthErrorCode } from "../http/problem.js";

export type IntentReason =
  | "unknown_agent"
  | "unknown_playbook"
  | "playbook_not_allowed"
  | "environment_not_allowed"
  | "invalid_parameters"
  | "grant_outside_ceiling"
  | "ticket_required"
  | "ticket_invalid"
  | "outside_change_window"
  | "kill_switch_engaged"
  | "writ_limit_active"
  | "writ_limit_rate"
  | "approval_required"
  | "approval_denied"
  | "signing_key_exhausted";

/** OAuth `error` for each reason (RFC 6749 §5.2, RFC 8693, RFC 9396, CIBA). */
export const INTENT_OAUTH_ERROR: Readonly<Record<IntentReason, OAuthErrorCode>> = {
  unknown_agent: "invalid_client",
  unknown_playbook: "invalid_authorization_details",
  playbook_not_allowed: "access_denied",
  environment_not_allowed: "access_denied",
  invalid_parameters: "invalid_authorization_details",
  grant_outside_ceiling: "access_denied",
  ticket_required: "invalid_request",
  ticket_invalid: "invalid_request",
  outside_change_window: "access_denied",
  kill_switch_engaged: "access_denied",
  writ_limit_active: "access_denied",
  writ_limit_rate: "access_denied",
  approval_required: "access_denied",
  approval_denied: "access_denied",
  signing_key_exhausted: "temporarily_unavailable",
};

export interface IntentRequest {
  readonly agent: string;
  readonly playbook: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly environment: string;
  readonly ticket?: string | undefined;
  readonly now: Date;
}

export interface IntentInputs {
  readonly config: WritConfig;
  /** The engaged kill switch that covers this agent here, if any (id for the message). */
  readonly kill?: { readonly id: string } | undefined;
  /**
   * The agent's writs now: active ones, and those issued in the last 60 s (the runner class's
   * `limits`); undefined: not checked.
   */
  readonly load?: { readonly active: number; readonly issuedSince: number } | undefined;
  /** Where the approval of this exact intent stands; undefined: none asked for yet. */
  readonly approval?: "approved" | "pending" | "denied" | "expired" | undefined;
  /** The last moment the environment's signing key may sign. */
  readonly keySignUntil: Date;
}

export type TtlBound = "playbook" | "ceiling" | "change_window" | "signing_key";

export interface EffectiveTtl {
  readonly seconds: number;
  readonly expiresAt: Date;
  /** Which bound set the expiry (the first of playbook, ceiling, change_window, signing_key on a tie). */
  readonly bound: TtlBound;
}

export type IntentOutcome =
  | {
      readonly kind: "refused";
      readonly reason: IntentReason;
      readonly error: OAuthErrorCode;
      readonly message: string;
      /** What shadow rules checked before the refusal would have refused too. */
      readonly shadow?: readonly ShadowRecord[] | undefined;
    }
  | {
      /** Checks 1–6 passed; the playbook needs an approval in this environment that is not given yet. */
      readonly kind: "needs-approval";
      readonly reason: "approval_required";
      readonly message: string;
      readonly playbook: Playbook;
      readonly shadow?: readonly ShadowRecord[] | undefined;
    }
  | {
      readonly kind: "issue";
      readonly agent: Agent;
      readonly playbook: Playbook;
      readonly grants: readonly Grant[];
      readonly ttl: EffectiveTtl;
      readonly maxUses: number | undefined;
      readonly issuedAt: Date;
      /** What shadow rules would have refused: the writ is issued all the same. */
      readonly shadow?: readonly ShadowRecord[] | undefined;
    };

// `pattern` matched in linear time: a parameter value cannot make a schema backtrack (ReDoS)
const ajv = new Ajv2020({ strict: false, allErrors: true, code: { regExp: linearRegExpEngine } });
const validators = new WeakMap<Playbook, ValidateFunction>();

function validatorFor(pb: Playbook): ValidateFunction {
  let v = validators.get(pb);
  if (!v) {
    v = ajv.compile(pb.parameters);
    validators.set(pb, v);
  }
  return v;
}

const OUTSIDE = "outside";

/**
 * Where a grant stands against a ceiling: `OUTSIDE` no allow rule contains it, the deny rule it
 * touches, or undefined (within). Remembered per ceiling and rule (rules are shared per text, see
 * `compileRule`), so the pattern algebra runs once per distinct grant, not once per exchange.
 */
const verdicts = new WeakMap<Ceiling, Map<Rule, typeof OUTSIDE | CeilingRule | undefined>>();

function ceilingVerdict(ceiling: Ceiling, rule: Rule): typeof OUTSIDE | CeilingRule | undefined {
  let known = verdicts.get(ceiling);
  if (known === undefined) {
    known = new Map();
    verdicts.set(ceiling, known);
  }
  if (known.has(rule)) return known.get(rule);
  const verdict = !ceiling.allow.some((c) => ruleContains(c.rule, rule))
    ? OUTSIDE
    : ceiling.deny.find((d) => ruleOverlaps(rule, d.rule));
  if (known.size >= 1024) known.clear();
  known.set(rule, verdict);
  return verdict;
}

function refuse(reason: IntentReason, message: string): IntentOutcome {
  return { kind: "refused", reason, error: INTENT_OAUTH_ERROR[reason], message };
}

export function evaluateIntent(req: IntentRequest, inputs: IntentInputs): IntentOutcome {
  const shadow: ShadowRecord[] = [];
  const outcome = checkIntent(req, inputs, shadow);
  return shadow.length === 0 ? outcome : { ...outcome, shadow };
}

type Shadowable = { mode?: "enforce" | "shadow" | undefined; id: string };

/**
 * The one place a refusal of a rule with a mode is made: in shadow mode it becomes a record and the
 * checks go on (undefined); otherwise it refuses.
 */
function refuseOr(
  shadow: ShadowRecord[],
  rule: Shadowable,
  kind: "playbook" | "ceiling",
  reason: IntentReason,
  message: string,
): IntentOutcome | undefined {
  if (!isShadow(rule.mode)) return refuse(reason, message);
  shadow.push({ rule: shadowRuleId[kind](rule.id), kind, reason, message });
  return undefined;
}

/** 1. The agent may request this playbook, and both run in this environment. */
function checkAllowed(req: IntentRequest, agent: Agent, pb: Playbook): IntentOutcome | undefined {
  if (!agent.playbooks.includes(pb.id)) {
    return refuse("playbook_not_allowed", `agent ${q(agent.id)} may not request playbook ${q(pb.id)}`);
  }
  if (!agent.environments.includes(req.environment) || !pb.environments.includes(req.environment)) {
    return refuse(
      "environment_not_allowed",
      `playbook ${q(pb.id)} for agent ${q(agent.id)} does not run in environment ${q(req.environment)}`,
    );
  }
  return undefined;
}

/** 2. The parameters match the playbook's schema. */
function checkParams(req: IntentRequest, pb: Playbook, shadow: ShadowRecord[]): IntentOutcome | undefined {
  const validate = validatorFor(pb);
  if (!validate(req.params)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    return refuseOr(
      shadow,
      pb,
      "playbook",
      "invalid_parameters",
      `parameters of ${q(pb.id)} do not match its schema: ${why}`,
    );
  }
  return undefined;
}

/** 3. The grants, after substitution, each within the runner class's ceiling: the grants, or the refusal. */
function grantsWithin(
  req: IntentRequest,
  pb: Playbook,
  rc: RunnerClass,
  shadow: ShadowRecord[],
): Grant[] | IntentOutcome {
  let grants: Grant[];
  try {
    grants = playbookGrants(pb, req.params);
  } catch (e) {
    if (isWritError(e)) return refuse("invalid_parameters", e.message);
    throw e;
  }
  for (const g of grants) {
    const verdict = ceilingVerdict(rc.ceiling, g.rule);
    if (verdict === undefined) continue;
    const refused = refuseOr(
      shadow,
      rc,
      "ceiling",
      "grant_outside_ceiling",
      verdict === OUTSIDE
        ? `grant ${q(ruleToString(g.rule.text))} lies outside the ${q(rc.id)} ceiling`
        : `grant ${q(ruleToString(g.rule.text))} touches deny ${q(ruleToString(verdict.rule.text))} of the ${q(rc.id)} ceiling`,
    );
    if (refused) return refused;
  }
  return grants;
}

/** 4. A ticket when the playbook needs one, matching the environment's pattern when one is given. */
function checkTicket(
  req: IntentRequest,
  pb: Playbook,
  env: Environment,
  shadow: ShadowRecord[],
): IntentOutcome | undefined {
  const ticket = req.ticket?.trim();
  if (pb.ticket === "required" && !ticket) {
    const refused = refuseOr(
      shadow,
      pb,
      "playbook",
      "ticket_required",
      `playbook ${q(pb.id)} needs a ticket`,
    );
    if (refused) return refused;
  }
  // the pattern is the environment's rule, not the playbook's: it always enforces
  if (ticket && env.ticket && !env.ticket.pattern.test(ticket)) {
    return refuse(
      "ticket_invalid",
      `ticket ${q(ticket)} does not match ${q(env.ticket.source)} of environment ${q(env.id)}`,
    );
  }
  return undefined;
}

/** 6. No kill switch engaged, and the agent within the runner class's limits. */
function checkStops(inputs: IntentInputs, agent: Agent, rc: RunnerClass): IntentOutcome | undefined {
  // 6. kill switch
  if (inputs.kill) {
    return refuse(
      "kill_switch_engaged",
      `a kill switch (${inputs.kill.id}) stops issuance for agent ${q(agent.id)} here`,
    );
  }

  // 6. the runner class's limits per agent
  const { limits } = rc;
  if (inputs.load && inputs.load.active >= limits.activeWrits) {
    return refuse(
      "writ_limit_active",
      `agent ${q(agent.id)} holds ${inputs.load.active} active writs, the most runner class ${q(rc.id)} allows`,
    );
  }
  if (inputs.load && inputs.load.issuedSince >= limits.issuancePerMinute) {
    return refuse(
      "writ_limit_rate",
      `agent ${q(agent.id)} was issued ${inputs.load.issuedSince} writs in the last minute, the most runner class ${q(rc.id)} allows`,
    );
  }
  return undefined;
}

/** 7. The approval the playbook needs in this environment, when it needs one. */
function checkApproval(inputs: IntentInputs, pb: Playbook, env: Environment): IntentOutcome | undefined {
  const policy = pb.approval.get(env.id);
  if (policy && policy.kind !== "none") {
    if (inputs.approval === "denied")
      return refuse("approval_denied", `the approval of this request was denied`);
    if (inputs.approval !== "approved") {
      return {
        kind: "needs-approval",
        reason: "approval_required",
        message:
          inputs.approval === "expired"
            ? `the approval of this request expired; ask again`
            : `playbook ${q(pb.id)} needs approval in ${q(env.id)}`,
        playbook: pb,
      };
    }
  }
  return undefined;
}

/** The effective TTL, bound named: the earliest of the bounds, or the refusal naming what ran out. */
function effectiveTtl(
  req: IntentRequest,
  inputs: IntentInputs,
  pb: Playbook,
  rc: RunnerClass,
  env: Environment,
  window: ReturnType<typeof windowState>,
): EffectiveTtl | IntentOutcome {
  const now = req.now.getTime();
  const bounds: [TtlBound, number][] = [
    ["playbook", now + pb.ttlSeconds * 1000],
    ["ceiling", now + rc.ceiling.maxTtlSeconds * 1000],
  ];
  if (window.endsAt) bounds.push(["change_window", window.endsAt.getTime()]);
  bounds.push(["signing_key", inputs.keySignUntil.getTime()]);
  let [bound, end] = bounds[0]!;
  for (const [b, t] of bounds.slice(1)) {
    if (t < end) {
      bound = b;
      end = t;
    }
  }
  const seconds = Math.floor((end - now) / 1000);
  if (seconds <= 0) {
    // less than a second of life: name what ran out
    if (bound === "change_window") {
      return refuse(
        "outside_change_window",
        `environment ${q(env.id)}'s change window closes in under a second`,
      );
    }
    if (bound === "signing_key") {
      return refuse("signing_key_exhausted", `the signing key of ${q(env.id)} has no life left: rotate it`);
    }
    // a playbook or ceiling TTL under a second cannot load (the config requires at least 1 s)
    return refuse("signing_key_exhausted", `no time left to issue a writ in ${q(env.id)}`);
  }
  return { seconds, expiresAt: new Date(now + seconds * 1000), bound };
}

/** The checks in order; refusals of rules in shadow mode go to `shadow` and the checks go on. */
function checkIntent(req: IntentRequest, inputs: IntentInputs, shadow: ShadowRecord[]): IntentOutcome {
  const { config } = inputs;
  const agent = config.agents.get(req.agent);
  if (!agent) return refuse("unknown_agent", `agent ${q(req.agent)} is not declared`);
  const pb = config.playbooks.get(req.playbook);
  if (!pb) return refuse("unknown_playbook", `playbook ${q(req.playbook)} is not declared`);

  // 1. allowed this playbook, in this environment
  const notAllowed = checkAllowed(req, agent, pb);
  if (notAllowed) return notAllowed;

  // 2. parameters
  const badParams = checkParams(req, pb, shadow);
  if (badParams) return badParams;

  // 3. grants within the ceiling, after substitution
  const rc = config.runnerClasses.get(agent.runnerClass);
  if (!rc)
    return refuse(
      "unknown_agent",
      `agent ${q(agent.id)}: runner class ${q(agent.runnerClass)} is not declared`,
    );
  const grants = grantsWithin(req, pb, rc, shadow);
  if (!Array.isArray(grants)) return grants;

  // 4. ticket
  const env = config.environments.get(req.environment);
  if (!env) return refuse("environment_not_allowed", `environment ${q(req.environment)} is not declared`);
  const badTicket = checkTicket(req, pb, env, shadow);
  if (badTicket) return badTicket;

  // 5. change window, at issuance
  const window = windowState(env.changeWindows, req.now);
  if (!window.inside) {
    return refuse("outside_change_window", `environment ${q(env.id)} is outside its change windows now`);
  }

  // 6. kill switch, then the runner class's limits per agent
  const stopped = checkStops(inputs, agent, rc);
  if (stopped) return stopped;

  // 7. approvals
  const unapproved = checkApproval(inputs, pb, env);
  if (unapproved) return unapproved;

  // the effective TTL, bound named
  const ttl = effectiveTtl(req, inputs, pb, rc, env, window);
  if ("kind" in ttl) return ttl;
  return {
    kind: "issue",
    agent,
    playbook: pb,
    grants,
    ttl,
    maxUses: pb.maxUses,
    issuedAt: req.now,
  };
}
