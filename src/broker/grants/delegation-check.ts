/**
 * Whether a writ may be delegated to a sub-agent, as a pure function of writ.yaml and the request:
 * the checks of token exchange with an `actor_token` (grants/delegation.ts) that need no token or
 * store, shared with `writ explain --delegate` so that it shows the broker's own reason.
 *
 *   1. the sub-agent is declared and registered in the environment      actor_unknown, actor_environment
 *   2. its runner class may act for the delegator's (`delegation.actors`)  delegation_actor_not_allowed
 *   3. the chain stays within every runner class's `delegation.maxDepth`  delegation_depth_exceeded
 *   4. every grant asked for is contained in a grant of the parent        delegation_exceeds_parent
 *   5. and inside the sub-agent's own ceiling (an allow covers it, no      delegation_exceeds_actor_ceiling
 *      deny overlaps it), unless that ceiling is in shadow mode
 */

import {
  type Agent,
  compileRule,
  excessGrants,
  isShadow,
  isWritError,
  q,
  type RuleText,
  ruleContains,
  ruleOverlaps,
  ruleToString,
  type WritConfig,
} from "../../core/index.js";
import type { OAuthErrorCode } from "../../http/problem.js";

export type DelegationReason =
  | "actor_unknown"
  | "actor_environment"
  | "delegation_actor_not_allowed"
  | "delegation_depth_exceeded"
  | "delegation_exceeds_parent"
  | "delegation_exceeds_actor_ceiling"
  | "intent_malformed";

/** OAuth `error` for each reason (RFC 6749 §5.2, RFC 9396). */
export const DELEGATION_OAUTH_ERROR: Readonly<Record<DelegationReason, OAuthErrorCode>> = {
  actor_unknown: "invalid_grant",
  actor_environment: "invalid_grant",
  delegation_actor_not_allowed: "access_denied",
  delegation_depth_exceeded: "access_denied",
  delegation_exceeds_parent: "access_denied",
  delegation_exceeds_actor_ceiling: "access_denied",
  intent_malformed: "invalid_authorization_details",
};

export interface DelegationInput {
  /** The agents holding the chain, from the parent writ's up to the root's. */
  readonly holders: readonly string[];
  readonly environment: string;
  readonly parentGrants: readonly RuleText[];
  /** The sub-agent. */
  readonly actor: string;
  /** What the child asks for; the parent's grants when undefined. */
  readonly grants?: readonly RuleText[] | undefined;
}

export type DelegationVerdict =
  | { readonly ok: true; readonly actor: Agent; readonly grants: readonly RuleText[]; readonly depth: number }
  | {
      readonly ok: false;
      readonly reason: DelegationReason;
      readonly message: string;
      /** For `delegation_exceeds_parent` (`…_actor_ceiling`): the grants asked for that the parent does not hold (the sub-agent's ceiling does not allow). */
      readonly excess?: readonly RuleText[];
    };

const refused = (
  reason: DelegationReason,
  message: string,
  excess?: readonly RuleText[],
): DelegationVerdict =>
  excess === undefined ? { ok: false, reason, message } : { ok: false, reason, message, excess };

export function checkDelegation(config: WritConfig, input: DelegationInput): DelegationVerdict {
  const actor = config.agents.get(input.actor);
  if (actor === undefined)
    return refused("actor_unknown", `the actor ${q(input.actor)} is declared nowhere in writ.yaml`);
  if (!actor.environments.includes(input.environment)) {
    return refused(
      "actor_environment",
      `the actor ${q(actor.id)} is not registered in ${q(input.environment)}`,
    );
  }
  const delegator = config.agents.get(input.holders[0] ?? "");
  const delegatorClass =
    delegator === undefined ? undefined : config.runnerClasses.get(delegator.runnerClass);
  if (
    delegator === undefined ||
    delegatorClass === undefined ||
    !(delegatorClass.delegation?.actors.includes(actor.runnerClass) ?? false)
  ) {
    const who = delegator === undefined ? "the parent's agent" : `runner class ${q(delegator.runnerClass)}`;
    return refused(
      "delegation_actor_not_allowed",
      `agents of runner class ${q(actor.runnerClass)} may not act for ${who}: list it in its \`delegation.actors\``,
    );
  }
  // the child's depth below the root writ; every class on the chain (and the actor's) bounds it
  const depth = input.holders.length;
  for (const id of [...input.holders, actor.id]) {
    const rcId = config.agents.get(id)?.runnerClass;
    const max = rcId === undefined ? 0 : (config.runnerClasses.get(rcId)?.delegation?.maxDepth ?? 0);
    if (depth > max) {
      return refused(
        "delegation_depth_exceeded",
        `a child here would be ${depth} deep; runner class ${q(rcId ?? "(undeclared)")} allows ${max}`,
      );
    }
  }
  const grants = input.grants ?? input.parentGrants;
  let excess: RuleText[];
  try {
    excess = excessGrants(input.parentGrants, grants);
  } catch (err) {
    if (!isWritError(err)) throw err;
    return refused("intent_malformed", `a grant asked for does not compile: ${err.message}`);
  }
  if (excess.length > 0) {
    return refused(
      "delegation_exceeds_parent",
      `the child may only narrow its parent: no grant of the parent contains ${excess.map((g) => q(ruleToString(g))).join(", ")}`,
      excess,
    );
  }
  const outside = outsideCeiling(config, actor, grants);
  if (outside.length > 0) {
    return refused(
      "delegation_exceeds_actor_ceiling",
      `the sub-agent's ${q(actor.runnerClass)} ceiling does not allow ${outside.map((g) => q(ruleToString(g))).join(", ")}`,
      outside,
    );
  }
  return { ok: true, actor, grants, depth };
}

/** The grants no `allow` of the actor's ceiling covers, or a `deny` of it overlaps (none in shadow mode). */
function outsideCeiling(config: WritConfig, actor: Agent, grants: readonly RuleText[]): RuleText[] {
  const rc = config.runnerClasses.get(actor.runnerClass);
  if (rc === undefined) return [...grants];
  if (isShadow(rc.mode)) return [];
  return grants.filter((g) => {
    const rule = compileRule(g);
    return (
      !rc.ceiling.allow.some((c) => ruleContains(c.rule, rule)) ||
      rc.ceiling.deny.some((d) => ruleOverlaps(rule, d.rule))
    );
  });
}
