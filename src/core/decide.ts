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
 */
import { isWritError, q } from "./errors.js";
import type { ActiveWrit, Agent, Grant, WritConfig } from "./model.js";
import { actionMatches, type Rule, type RuleText, resourceMatches, ruleMatches } from "./permission.js";
import {
  type ParsedAction,
  parseRequestAction,
  unknownActionProblem,
  type Vocabulary,
} from "./vocabulary.js";

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
}

function deny(code: DecisionCode, message: string, reasons: readonly Reason[] = []): Decision {
  return { kind: "decision", allowed: false, code, message, reasons };
}

const ERROR_CODES: Readonly<Record<string, DecisionCode>> = {
  ERR_MALFORMED_ACTION: "malformed_request",
  ERR_UNKNOWN_PROVIDER: "unknown_provider",
};

function inactive(w: ActiveWrit, env: string, now: Date): Reason | undefined {
  if (w.revoked) return { kind: "writ-inactive", writ: w.id, why: "revoked" };
  if (now.getTime() >= w.expiresAt.getTime()) return { kind: "writ-inactive", writ: w.id, why: "expired" };
  if (now.getTime() < w.issuedAt.getTime())
    return { kind: "writ-inactive", writ: w.id, why: "not-yet-valid" };
  if (w.usesLeft !== undefined && w.usesLeft <= 0) return { kind: "writ-inactive", writ: w.id, why: "spent" };
  if (w.environment !== env) return { kind: "writ-inactive", writ: w.id, why: "other-environment" };
  return undefined;
}

function grantApplies(g: Grant, a: ParsedAction, req: DecisionRequest): boolean {
  if (g.environments && !g.environments.includes(req.environment)) return false;
  return ruleMatches(g.rule, a, req.resource, "cover");
}

function toolAllowed(agent: Agent, a: ParsedAction): boolean {
  // tools are `server:tool` patterns compiled as `mcp:server:tool` on `*`
  return agent.tools.some((t: Rule) => actionMatches(t, a, "cover"));
}

export function decide(
  config: WritConfig,
  writs: readonly ActiveWrit[],
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

  // explicit denies: the ceiling's, then the agent's own
  const denies: Reason[] = [];
  rc.ceiling.deny.forEach((d, index) => {
    if (ruleMatches(d.rule, a, req.resource, "include")) {
      denies.push({ kind: "deny", source: "ceiling", owner: rc.id, rule: d.rule.text, index });
    }
  });
  agent.deny.forEach((d, index) => {
    if (ruleMatches(d.rule, a, req.resource, "include")) {
      denies.push({ kind: "deny", source: "agent", owner: agent.id, rule: d.rule.text, index });
    }
  });
  if (denies.length > 0) {
    const first = denies[0]!;
    const where =
      first.kind === "deny" && first.source === "ceiling"
        ? `the ${q(rc.id)} ceiling`
        : `agent ${q(agent.id)}`;
    return deny("explicit_deny", `${q(req.action)} on ${q(req.resource)} is denied by ${where}`, denies);
  }

  // grants: baseline, then active writs
  const grants: Reason[] = [];
  const skipped: Reason[] = [];
  agent.baseline.forEach((g, index) => {
    if (grantApplies(g, a, req)) grants.push({ kind: "grant", source: "baseline", rule: g.rule.text, index });
  });
  for (const w of writs) {
    if (w.agent !== agent.id) continue;
    const matching = w.grants
      .map((g, index) => ({ g, index }))
      .filter(({ g }) => ruleMatches(g.rule, a, req.resource, "cover"));
    if (matching.length === 0) continue;
    const off = inactive(w, req.environment, req.now);
    if (off) {
      skipped.push(off);
      continue;
    }
    for (const { g, index } of matching) {
      grants.push({
        kind: "grant",
        source: "writ",
        writ: w.id,
        playbook: w.playbook,
        rule: g.rule.text,
        index,
      });
    }
  }
  if (grants.length === 0) {
    const why = skipped.length > 0 ? ` (a matching writ is ${(skipped[0] as { why: string }).why})` : "";
    return deny(
      "no_grant",
      `no baseline grant or active writ covers ${q(req.action)} on ${q(req.resource)}${why}`,
      skipped,
    );
  }

  const bounds: Reason[] = [];
  rc.ceiling.allow.forEach((c, index) => {
    if (actionMatches(c.rule, a, "cover") && resourceMatches(c.rule, a.provider, req.resource)) {
      bounds.push({ kind: "ceiling-allow", runnerClass: rc.id, rule: c.rule.text, index });
    }
  });
  if (bounds.length === 0) {
    return deny(
      "outside_ceiling",
      `${q(req.action)} on ${q(req.resource)} is granted but lies outside the ${q(rc.id)} ceiling`,
      [...grants, ...skipped],
    );
  }
  return {
    kind: "decision",
    allowed: true,
    code: "allowed",
    message: `${q(req.action)} on ${q(req.resource)} is allowed`,
    reasons: [...grants, ...bounds, ...skipped],
  };
}
