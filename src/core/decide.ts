/**
 * The core decision. Pure: the config, the active writs and the time are arguments.
 *
 *   effective = (baseline ∪ active writs) ∩ ceiling − explicit denies
 *
 * Order of checks, first failure wins:
 *   1. the request is well formed and names a known provider and action;
 *   2. the agent exists and is registered in the request's environment;
 *   3. MCP calls: the tool is in the agent's `tools` list;
 *   4. an explicit deny (the ceiling's, or the agent's own) that touches the request denies;
 *   5. a baseline grant or an active writ's grant must cover the request;
 *   6. and the ceiling's `allow` must cover it too, or the grant is cut.
 * Every decision carries the rules that made it.
 *
 * A runner class in `mode: shadow` has its ceiling removed from the decision (steps 4 and 6 for the
 * ceiling's rules; the agent's own denies and the grant requirement stay), and what its ceiling
 * would have denied is computed apart as `shadow` records (core/shadow.ts, docs/shadow.md). So has
 * each of the agent's own denies in `mode: shadow` (step 4).
 */
import { isWritError, q } from "./errors.js";
import type { ActiveWrit, Agent, Ceiling, Grant, RunnerClass, WritConfig } from "./model.js";
import { actionMatches, type RuleText, resourceMatches, ruleMatches, ruleToString } from "./permission.js";
import { isShadow, type ShadowRecord, shadowRuleId } from "./shadow.js";
import {
  type ParsedAction,
  parseRequestAction,
  unknownActionProblem,
  type Vocabulary,
} from "./vocabulary.js";
import { inactiveWhy, WritMatch, WritSet } from "./writ-set.js";

export interface DecisionRequest {
  readonly agent: string;
  readonly action: string;
  readonly resource: string;
  readonly environment: string;
  readonly now: Date;
}

export type DecisionCode =
  | "allowed"
  | "malformed_request"
  | "unknown_provider"
  | "unknown_action"
  | "unknown_agent"
  | "unknown_environment"
  | "environment_not_allowed"
  | "tool_not_allowed"
  | "explicit_deny"
  | "no_grant"
  | "outside_ceiling"
  | "guardrail_forbid"
  | "guardrail_error";

export type Reason =
  | { readonly kind: "grant"; readonly source: "baseline"; readonly rule: RuleText; readonly index: number }
  | {
      readonly kind: "grant";
      readonly source: "writ";
      readonly writ: string;
      readonly playbook: string;
      readonly rule: RuleText;
      readonly index: number;
    }
  | {
      readonly kind: "ceiling-allow";
      readonly runnerClass: string;
      readonly rule: RuleText;
      readonly index: number;
    }
  | {
      readonly kind: "deny";
      readonly source: "ceiling" | "agent";
      readonly owner: string;
      readonly rule: RuleText;
      readonly index: number;
    }
  | {
      readonly kind: "writ-inactive";
      readonly writ: string;
      readonly why: "expired" | "revoked" | "spent" | "other-environment" | "not-yet-valid";
    }
  | { readonly kind: "guardrail"; readonly policy: string; readonly effect: "forbid" }
  | { readonly kind: "error"; readonly message: string };

export interface Decision {
  readonly kind: "decision";
  readonly allowed: boolean;
  readonly code: DecisionCode;
  readonly message: string;
  readonly reasons: readonly Reason[];
  /**
   * What rules in shadow mode would have denied, each on its own (absent: nothing). Recorded, never
   * read to decide: `allowed` is computed with the shadow rules removed.
   */
  readonly shadow?: readonly ShadowRecord[] | undefined;
}

/** A decision with shadow records added: the outcome (`allowed`, `code`, …) is the one given. */
export function withShadow(d: Decision, shadow: readonly ShadowRecord[]): Decision {
  if (shadow.length === 0) return d;
  return { ...d, shadow: d.shadow === undefined ? shadow : [...d.shadow, ...shadow] };
}

function deny(code: DecisionCode, message: string, reasons: readonly Reason[] = []): Decision {
  return { kind: "decision", allowed: false, code, message, reasons };
}

const ERROR_CODES: Readonly<Record<string, DecisionCode>> = {
  ERR_MALFORMED_ACTION: "malformed_request",
  ERR_UNKNOWN_PROVIDER: "unknown_provider",
};

function grantApplies(g: Grant, a: ParsedAction, req: DecisionRequest): boolean {
  if (g.environments && !g.environments.includes(req.environment)) return false;
  return ruleMatches(g.rule, a, req.resource, "cover");
}

function toolAllowed(agent: Agent, a: ParsedAction): boolean {
  // tools are `server:tool` patterns compiled as `mcp:server:tool` on `*`
  const tools = agent.tools;
  for (let i = 0; i < tools.length; i++) if (actionMatches(tools[i]!, a, "cover")) return true;
  return false;
}

/**
 * The writs in a list, in order: the first active writ grant that covers the request, and the first
 * covering writ that does not count. The same answer `WritSet.lookup` gives from its index.
 */
function scanList(
  writs: readonly ActiveWrit[],
  agent: string,
  a: ParsedAction,
  req: DecisionRequest,
  now: number,
  out: WritMatch,
): void {
  for (let i = 0; i < writs.length; i++) {
    const w = writs[i]!;
    if (w.agent !== agent) continue;
    const grants = w.grants;
    let covering = -1;
    for (let j = 0; j < grants.length; j++) {
      if (ruleMatches(grants[j]!.rule, a, req.resource, "cover")) {
        covering = j;
        break;
      }
    }
    if (covering < 0) continue;
    const why = inactiveWhy(w, req.environment, now);
    if (why === undefined) {
      out.writ = w;
      out.grantIndex = covering;
      return;
    }
    if (out.skipped === undefined) {
      out.skipped = w;
      out.skippedWhy = why;
    }
  }
}

/**
 * Decides one request. `writs` is the agent's active writs: a list (scanned in order) or a
 * `WritSet` (looked up by its index). Reasons are bounded whatever the number of writs: every
 * baseline grant, ceiling rule and deny that applies (the config bounds those), but of the writs
 * only the deciding one — the first active writ grant that covers the request — and at most one
 * covering writ that did not count (expired, spent …) when it explains a `no_grant`.
 */
export function decide(
  config: WritConfig,
  writs: readonly ActiveWrit[] | WritSet,
  req: DecisionRequest,
  vocab: Vocabulary = {},
): Decision {
  let a: ParsedAction;
  try {
    a = parseRequestAction(req.action);
  } catch (err) {
    if (isWritError(err)) return deny(ERROR_CODES[err.code] ?? "malformed_request", err.message);
    throw err;
  }
  if (typeof req.resource !== "string" || req.resource.length === 0) {
    return deny("malformed_request", "resource must be a non-empty string");
  }
  const unknown = unknownActionProblem(a, vocab);
  if (unknown) return deny("unknown_action", `action ${q(req.action)}: ${unknown}`);

  const agent = config.agents.get(req.agent);
  if (!agent) return deny("unknown_agent", `agent ${q(req.agent)} is not declared`);
  if (!config.environments.has(req.environment)) {
    return deny("unknown_environment", `environment ${q(req.environment)} is not declared`);
  }
  if (!agent.environments.includes(req.environment)) {
    return deny(
      "environment_not_allowed",
      `agent ${q(agent.id)} is not registered in environment ${q(req.environment)}`,
    );
  }
  if (a.provider === "mcp" && !toolAllowed(agent, a)) {
    return deny("tool_not_allowed", `agent ${q(agent.id)} may not use tool ${q(`${a.service}:${a.action}`)}`);
  }
  const rc = config.runnerClasses.get(agent.runnerClass);
  if (!rc)
    return deny(
      "unknown_agent",
      `agent ${q(agent.id)}: runner class ${q(agent.runnerClass)} is not declared`,
    );

  // the enforced decision: a shadow ceiling, and the agent's shadow denies, are removed from it
  // and judged apart
  const shadow = isShadow(rc.mode);
  const enforced = judge(shadow ? undefined : rc.ceiling, rc.id, agent, a, req, writs);
  const denied = agent.deny.length === 0 ? NO_RECORDS : agentDenyShadow(agent, a, req);
  if (!shadow) return withShadow(enforced, denied);
  return withShadow(enforced, [...ceilingShadow(rc, a, req), ...denied]);
}

const NO_RECORDS: readonly ShadowRecord[] = [];

/** What the agent's own denies in shadow mode say of a request: each one it touches, as a record. */
export function agentDenyShadow(
  agent: Agent,
  a: ParsedAction,
  req: DecisionRequest,
): readonly ShadowRecord[] {
  let out: ShadowRecord[] | undefined;
  for (const d of agent.deny) {
    if (isShadow(d.mode) && ruleMatches(d.rule, a, req.resource, "include")) {
      out ??= [];
      out.push({
        rule: shadowRuleId.deny(agent.id),
        kind: "deny",
        reason: "explicit_deny",
        message: `${q(req.action)} on ${q(req.resource)} touches deny ${q(ruleToString(d.rule.text))} of agent ${q(agent.id)}`,
      });
    }
  }
  return out ?? NO_RECORDS;
}

/**
 * What a ceiling alone says of a request: the deny rules it touches, or that no allow rule covers
 * it. The same tests `judge` makes, as records.
 */
export function ceilingShadow(rc: RunnerClass, a: ParsedAction, req: DecisionRequest): ShadowRecord[] {
  const rule = shadowRuleId.ceiling(rc.id);
  const out: ShadowRecord[] = [];
  for (const d of rc.ceiling.deny) {
    if (ruleMatches(d.rule, a, req.resource, "include")) {
      out.push({
        rule,
        kind: "ceiling",
        reason: "explicit_deny",
        message: `${q(req.action)} on ${q(req.resource)} touches deny ${q(ruleToString(d.rule.text))} of the ${q(rc.id)} ceiling`,
      });
    }
  }
  const covered = rc.ceiling.allow.some(
    (c) => actionMatches(c.rule, a, "cover") && resourceMatches(c.rule, a.provider, req.resource),
  );
  if (!covered) {
    out.push({
      rule,
      kind: "ceiling",
      reason: "outside_ceiling",
      message: `${q(req.action)} on ${q(req.resource)} lies outside the ${q(rc.id)} ceiling`,
    });
  }
  return out;
}

/** Steps 4–6 under a ceiling; `undefined`: no ceiling (it is in shadow mode). */
function judge(
  ceiling: Ceiling | undefined,
  rcId: string,
  agent: Agent,
  a: ParsedAction,
  req: DecisionRequest,
  writs: readonly ActiveWrit[] | WritSet,
): Decision {
  // explicit denies: the ceiling's, then the agent's own
  const denies: Reason[] = [];
  const ceilingDeny = ceiling?.deny ?? [];
  for (let index = 0; index < ceilingDeny.length; index++) {
    const d = ceilingDeny[index]!;
    if (ruleMatches(d.rule, a, req.resource, "include")) {
      denies.push({ kind: "deny", source: "ceiling", owner: rcId, rule: d.rule.text, index });
    }
  }
  const agentDeny = agent.deny;
  for (let index = 0; index < agentDeny.length; index++) {
    const d = agentDeny[index]!;
    // a deny in shadow mode is judged apart (`agentDenyShadow`)
    if (d.mode !== "shadow" && ruleMatches(d.rule, a, req.resource, "include")) {
      denies.push({ kind: "deny", source: "agent", owner: agent.id, rule: d.rule.text, index });
    }
  }
  if (denies.length > 0) {
    const first = denies[0]!;
    const where =
      first.kind === "deny" && first.source === "ceiling" ? `the ${q(rcId)} ceiling` : `agent ${q(agent.id)}`;
    return deny("explicit_deny", `${q(req.action)} on ${q(req.resource)} is denied by ${where}`, denies);
  }

  // grants: baseline, then the deciding writ
  const grants: Reason[] = [];
  const baseline = agent.baseline;
  for (let index = 0; index < baseline.length; index++) {
    const g = baseline[index]!;
    if (grantApplies(g, a, req)) grants.push({ kind: "grant", source: "baseline", rule: g.rule.text, index });
  }
  const now = req.now.getTime();
  const match = new WritMatch();
  if (writs instanceof WritSet) {
    if (writs.agent === agent.id) writs.lookup(a, req.resource, req.environment, now, match);
  } else scanList(writs, agent.id, a, req, now, match);
  const w = match.writ;
  if (match.reason !== undefined) grants.push(match.reason);
  else if (w !== undefined) {
    grants.push({
      kind: "grant",
      source: "writ",
      writ: w.id,
      playbook: w.playbook,
      rule: w.grants[match.grantIndex]!.rule.text,
      index: match.grantIndex,
    });
  }
  const skipped: Reason[] =
    match.skipped === undefined || match.skippedWhy === undefined
      ? []
      : [{ kind: "writ-inactive", writ: match.skipped.id, why: match.skippedWhy }];
  if (grants.length === 0) {
    const why = match.skippedWhy === undefined ? "" : ` (a matching writ is ${match.skippedWhy})`;
    return deny(
      "no_grant",
      `no baseline grant or active writ covers ${q(req.action)} on ${q(req.resource)}${why}`,
      skipped,
    );
  }

  const bounds: Reason[] = [];
  if (ceiling !== undefined) {
    const allow = ceiling.allow;
    for (let index = 0; index < allow.length; index++) {
      const c = allow[index]!;
      if (actionMatches(c.rule, a, "cover") && resourceMatches(c.rule, a.provider, req.resource)) {
        bounds.push({ kind: "ceiling-allow", runnerClass: rcId, rule: c.rule.text, index });
      }
    }
    if (bounds.length === 0) {
      return deny(
        "outside_ceiling",
        `${q(req.action)} on ${q(req.resource)} is granted but lies outside the ${q(rcId)} ceiling`,
        grants,
      );
    }
  }
  return {
    kind: "decision",
    allowed: true,
    code: "allowed",
    message: `${q(req.action)} on ${q(req.resource)} is allowed`,
    reasons: grants.concat(bounds),
  };
}
