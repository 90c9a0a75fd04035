/**
 * Shadow mode: a rule in `mode: shadow` is evaluated on every request but never refuses it; what it
 * would have refused is recorded instead (docs/shadow.md).
 *
 * The guarantee — a shadow rule never turns an enforcing deny into an allow — holds by construction:
 * a decision's outcome is computed with the shadow rules removed (they cannot add an allow, since
 * every rule that has a mode only restricts), and what the shadow rules would have denied is
 * computed apart, as plain records, which nothing reads to decide. So
 *
 *   outcome   = decision with the shadow rules removed
 *   wouldDeny = the shadow rules that deny the request on their own
 *   full      = decision with every rule enforcing = deny ⇔ outcome denies or wouldDeny ≠ ∅
 */

/** Whether a rule refuses (`enforce`, the default) or only records what it would have refused. */
export type RuleMode = "enforce" | "shadow";

export const RULE_MODES: readonly RuleMode[] = ["enforce", "shadow"];

/**
 * The kinds of rule that have a mode: a runner class's ceiling, an agent's own deny, a playbook's
 * issuance checks, a Cedar guardrail, a gateway tool's own rules (constraints, taint) and the
 * gateway's bounds.
 */
export type ShadowKind = "ceiling" | "deny" | "playbook" | "guardrail" | "tool" | "bounds";

export const SHADOW_KINDS: readonly ShadowKind[] = [
  "ceiling",
  "deny",
  "playbook",
  "guardrail",
  "tool",
  "bounds",
];

/** What one shadow rule would have denied: audited as `shadow: [{rule, kind, reason, message}]`. */
export interface ShadowRecord {
  /** The rule's id: `ceiling:<class>`, `deny:<agent>`, `playbook:<id>`, `guardrail:<policy>`, `tool:<server>:<tool>`, `gateway:bounds`. */
  readonly rule: string;
  readonly kind: ShadowKind;
  /** The reason code the rule would have refused with (docs/reasons.md). */
  readonly reason: string;
  readonly message: string;
}

/** The rule id of each kind, the one the report groups by. */
export const shadowRuleId = {
  ceiling: (runnerClass: string) => `ceiling:${runnerClass}`,
  deny: (agent: string) => `deny:${agent}`,
  playbook: (playbook: string) => `playbook:${playbook}`,
  guardrail: (policy: string) => `guardrail:${policy}`,
  tool: (server: string, tool: string) => `tool:${server}:${tool}`,
  bounds: () => "gateway:bounds",
} as const;

/** Is the rule in shadow mode? Anything but an explicit `shadow` enforces (fail closed). */
export function isShadow(mode: RuleMode | undefined): boolean {
  return mode === "shadow";
}
