/**
 * The domain model of a loaded writ.yaml: readonly, tagged by `kind`, with compiled rules. The
 * config loader (src/config) builds it; everything else reads it.
 */
import type { Rule } from "./permission.js";

/** Where in the source document a value sits: `["agents", "release-bot", "playbooks", 1]`. */
export type Path = readonly (string | number)[];

export interface Grant {
  readonly kind: "grant";
  readonly rule: Rule;
  /** Restricts a baseline grant to some environments; undefined means all of the agent's. */
  readonly environments?: readonly string[] | undefined;
  /** A baseline grant that writes must say why it is standing. */
  readonly standingWrite?: string | undefined;
  readonly path: Path;
}

export interface CeilingRule {
  readonly kind: "ceiling-rule";
  readonly rule: Rule;
  readonly path: Path;
}

export interface Ceiling {
  readonly maxTtlSeconds: number;
  readonly allow: readonly CeilingRule[];
  readonly deny: readonly CeilingRule[];
}

export interface RunnerClass {
  readonly kind: "runner-class";
  readonly id: string;
  readonly description?: string | undefined;
  readonly ceiling: Ceiling;
}

export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6; // Sunday = 0, as Date#getDay

export interface ChangeWindow {
  readonly kind: "change-window";
  readonly days: readonly Weekday[];
  /** Minutes after local midnight. `end <= start` means the window runs past midnight. */
  readonly start: number;
  readonly end: number;
  readonly timezone: string;
}

export interface TicketRule {
  readonly pattern: RegExp;
  readonly source: string;
}

export interface Environment {
  readonly kind: "environment";
  readonly id: string;
  readonly description?: string | undefined;
  readonly ticket?: TicketRule | undefined;
  /** Empty means no window: writs can be issued at any time. */
  readonly changeWindows: readonly ChangeWindow[];
}

export interface Agent {
  readonly kind: "agent";
  readonly id: string;
  readonly owner: string;
  readonly purpose: string;
  readonly runnerClass: string;
  readonly environments: readonly string[];
  /** Public JWKs the agent authenticates with (private members are refused at load). */
  readonly keys: readonly Readonly<Record<string, unknown>>[];
  readonly baseline: readonly Grant[];
  readonly deny: readonly CeilingRule[];
  readonly playbooks: readonly string[];
  /** MCP tools the agent may use, as `server:tool` patterns; empty means none. */
  readonly tools: readonly Rule[];
}

/** A person who approves, with the public keys they sign in to the approvals API with. */
export interface Approver {
  readonly kind: "approver";
  readonly id: string;
  readonly keys: readonly Readonly<Record<string, unknown>>[];
}

export interface ApproverGroup {
  readonly kind: "approver-group";
  readonly id: string;
  readonly members: readonly string[];
}

export type ApprovalPolicy =
  | { readonly kind: "none" }
  | { readonly kind: "group"; readonly group: string; readonly count: number }
  | { readonly kind: "all"; readonly of: readonly ApprovalPolicy[] }
  | { readonly kind: "any"; readonly of: readonly ApprovalPolicy[] };

export interface GrantTemplate {
  readonly kind: "grant-template";
  readonly action: string;
  readonly resource: string;
  readonly reviewedException?: string | undefined;
  readonly path: Path;
}

export type Risk = "low" | "medium" | "high";
export type TicketRequirement = "required" | "optional" | "none";

export interface Playbook {
  readonly kind: "playbook";
  readonly id: string;
  readonly description: string;
  /** JSON Schema (draft 2020-12) for the parameters object. */
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly grants: readonly GrantTemplate[];
  readonly ttlSeconds: number;
  /** undefined: unlimited within the TTL. */
  readonly maxUses?: number | undefined;
  readonly risk: Risk;
  readonly environments: readonly string[];
  readonly ticket: TicketRequirement;
  /** Approval policy per environment; an environment not listed needs no approval. */
  readonly approval: ReadonlyMap<string, ApprovalPolicy>;
  readonly allowSelfApproval: boolean;
}

export interface Guardrails {
  readonly kind: "guardrails";
  /** Cedar policy text, all files joined, each policy tagged with `@id`. */
  readonly text: string;
  readonly files: readonly string[];
}

export interface WritConfig {
  readonly kind: "config";
  readonly file: string;
  readonly environments: ReadonlyMap<string, Environment>;
  readonly runnerClasses: ReadonlyMap<string, RunnerClass>;
  readonly agents: ReadonlyMap<string, Agent>;
  readonly approverGroups: ReadonlyMap<string, ApproverGroup>;
  /** Approvers with registered keys; a group member without an entry approves through the CLI only. */
  readonly approvers?: ReadonlyMap<string, Approver> | undefined;
  readonly playbooks: ReadonlyMap<string, Playbook>;
  readonly guardrails?: Guardrails | undefined;
}

/** An issued writ as the decision point sees it. */
export interface ActiveWrit {
  readonly kind: "writ";
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly grants: readonly Grant[];
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** undefined: unlimited uses. */
  readonly usesLeft?: number | undefined;
  readonly revoked?: boolean | undefined;
}
