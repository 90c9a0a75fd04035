/**
 * The domain model of a loaded writ.yaml: readonly, tagged by `kind`, with compiled rules. The
 * config loader (src/config) builds it; everything else reads it.
 */
import type { DownstreamConfig } from "../downstream/types.js";
import type { Rule } from "./permission.js";
import type { RegexLike } from "./regex.js";
import type { RuleMode } from "./shadow.js";

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
  /**
   * An agent's own deny only (a ceiling's rules follow their class's `mode`): `shadow` records what
   * it would refuse and refuses nothing (docs/shadow.md). undefined: `enforce`.
   */
  readonly mode?: RuleMode | undefined;
}

export interface Ceiling {
  readonly maxTtlSeconds: number;
  readonly allow: readonly CeilingRule[];
  readonly deny: readonly CeilingRule[];
}

/** What one agent of a runner class may hold and ask for: bounds the cost of each agent. */
export interface RunnerClassLimits {
  /** Writs active at once (unexpired, unrevoked, not used up). */
  readonly activeWrits: number;
  /** Writs issued in any 60 seconds. */
  readonly issuancePerMinute: number;
}

/** Who may act as a sub-agent of this class's writs, and how deep (docs/broker.md#delegation). */
export interface RunnerClassDelegation {
  /** The runner classes whose agents may be given a child writ of one held here (none by default). */
  readonly actors: readonly string[];
  /** The longest chain below a writ held here: 1 allows children, not grandchildren (default 2). */
  readonly maxDepth: number;
}

export interface RunnerClass {
  readonly kind: "runner-class";
  readonly id: string;
  readonly description?: string | undefined;
  readonly ceiling: Ceiling;
  /** Per agent of the class (config/load.ts has the defaults). */
  readonly limits: RunnerClassLimits;
  /** `shadow`: the ceiling (allow and deny) records what it would refuse, and refuses nothing. undefined: `enforce`. */
  readonly mode?: RuleMode | undefined;
  /** Sub-agents (config/load.ts has the defaults); absent in a hand-built config: nobody may act for it. */
  readonly delegation?: RunnerClassDelegation | undefined;
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
  /** Matched in linear time (`core/regex.ts`). */
  readonly pattern: RegexLike;
  readonly source: string;
}

export interface Environment {
  readonly kind: "environment";
  readonly id: string;
  readonly description?: string | undefined;
  readonly ticket?: TicketRule | undefined;
  /** Empty means no window: writs can be issued at any time. */
  readonly changeWindows: readonly ChangeWindow[];
  /**
   * The audiences (RFC 8707 `resource`, absolute URIs) tokens of this environment may name, besides
   * the gateway's own. undefined: none declared here.
   */
  readonly audiences?: readonly string[] | undefined;
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
  /**
   * Where the agent runs and what it authenticates as, for `writ scan` (no annotation needed on
   * cluster objects): absent when writ.yaml says nothing. Not used by decisions.
   */
  readonly runs?: AgentRuns | undefined;
}

/** A workload the agent runs as: a Kubernetes kind, namespace and name, each a glob. */
export interface AgentWorkload {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** A binding (RoleBinding `ns/name` or ClusterRoleBinding `name`) its owner says was made for the agent. */
export interface AgentBinding {
  readonly kind: "RoleBinding" | "ClusterRoleBinding";
  readonly namespace?: string | undefined;
  readonly name: string;
}

/**
 * What marks a tool call as having read untrusted content: a tool (`server:tool` glob), or a span
 * attribute (present and not `false`, equal to a value, or a string matching a glob).
 */
export type UntrustedInput =
  | { readonly kind: "tool"; readonly tool: string }
  | {
      readonly kind: "attribute";
      readonly key: string;
      readonly equals?: string | number | boolean | undefined;
      readonly matches?: string | undefined;
    };

/** The permissions one tool's calls need (`server:tool` glob → writ permissions). */
export interface ToolNeeds {
  readonly tool: string;
  readonly permissions: readonly { readonly rule: Rule; readonly path: Path }[];
}

export interface AgentRuns {
  readonly workloads: readonly AgentWorkload[];
  /** `namespace/name` of Kubernetes service accounts. */
  readonly serviceAccounts: readonly { readonly namespace: string; readonly name: string }[];
  /** AWS role ARNs and GCP service-account e-mails. */
  readonly cloudIdentities: readonly string[];
  /** Undefined: not configured (the analyzer's documented default applies). */
  readonly untrustedInputs?: readonly UntrustedInput[] | undefined;
  readonly toolNeeds: readonly ToolNeeds[];
  /** Undefined: not configured. */
  readonly provisionedBindings?: readonly AgentBinding[] | undefined;
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
  /** The audiences its writs may name; undefined: those of the environment. */
  readonly audiences?: readonly string[] | undefined;
  /**
   * Who may sponsor a run asked for through approvals (CIBA `login_hint`): `optional` — anyone
   * declared, or none; `required` — a declared human must be named; `approver` — one who may
   * approve the request (a member of a group its policy names). undefined: `optional`.
   */
  readonly sponsor?: SponsorRule | undefined;
  /** `shadow`: a broken parameter schema or ticket rule is recorded at issuance, not refused. undefined: `enforce`. */
  readonly mode?: RuleMode | undefined;
}

export type SponsorRule = "optional" | "required" | "approver";

export interface Guardrails {
  readonly kind: "guardrails";
  /** Cedar policy text, all files joined, each policy tagged with `@id`. */
  readonly text: string;
  readonly files: readonly string[];
  /** Each source with its mode; undefined: `text` is one source, enforcing. */
  readonly sources?:
    | readonly { readonly file: string; readonly text: string; readonly mode: RuleMode }[]
    | undefined;
}

/** How one argument of a tool call names what the call touches (the gateway's resource). */
export interface ResourceRule {
  readonly kind: "resource-rule";
  /** The argument names: one, or two for a repository given as owner and name. */
  readonly from: readonly string[];
  /** The argument is an array: every item is a resource. */
  readonly each: boolean;
  /**
   * `path`: a canonical filesystem path (absolute, `..` resolved, symlinks followed, case as the
   * filesystem has it); `url-host`: a URL's host; `email-domain`: an address's domain;
   * `repository`: `owner/name`, lower case.
   */
  readonly as: "path" | "url-host" | "email-domain" | "repository";
  /** `path`: relative paths resolve against it; without it a relative path is refused. */
  readonly base?: string | undefined;
  /** `path`: the filesystem ignores case, so the path is compared in lower case. */
  readonly foldCase: boolean;
  readonly path: Path;
}

/** One step of an argument path: a key, an array index, or every item of an array (`[*]`). */
export type ArgumentStep =
  | { readonly t: "key"; readonly key: string }
  | { readonly t: "index"; readonly index: number }
  | { readonly t: "each" };

/**
 * A filter of a resource template placeholder. `split` yields a list that `index` picks from;
 * `host`, `domain`, `path` and `repository` are the gateway's derivations (a URL's host, an
 * address's domain, a canonical path, `owner/name`).
 */
export type ResourceFilter =
  | { readonly f: "split"; readonly sep: string }
  | { readonly f: "index"; readonly index: number }
  | { readonly f: "lower" }
  | { readonly f: "host" }
  | { readonly f: "domain" }
  | { readonly f: "path"; readonly base?: string | undefined }
  | { readonly f: "repository" };

/** `{items[*].path|path}`: where a value comes from in the arguments and what is done to it. */
export interface TemplatePlaceholder {
  readonly source: string;
  readonly argument: readonly ArgumentStep[];
  /** `{name?}`: an absent argument makes the whole template yield nothing instead of refusing. */
  readonly optional: boolean;
  readonly filters: readonly ResourceFilter[];
}

/**
 * A declarative mapping from a call's arguments to a typed resource: `jira:project/{key|split('-')[0]}`,
 * `k8s:{namespace}/{kind}/{name}`. Text outside placeholders is literal; each placeholder's value is
 * escaped so it cannot add a separator or a wildcard (only `path` and `repository` values keep
 * their `/`, canonicalised). At most one placeholder expands an array (`[*]`): one resource each.
 */
export interface ResourceTemplate {
  readonly kind: "resource-template";
  readonly source: string;
  readonly parts: readonly (string | TemplatePlaceholder)[];
  readonly path: Path;
}

/** A rate: `count` calls per `perSeconds`. */
export interface RateLimit {
  readonly count: number;
  readonly perSeconds: number;
}

/** What the gateway knows of one upstream tool beyond its own definition. */
export interface GatewayTool {
  readonly kind: "gateway-tool";
  readonly server: string;
  readonly name: string;
  readonly resources: readonly (ResourceRule | ResourceTemplate)[];
  /** JSON Schemas by argument name, checked beside the tool's own `inputSchema`. */
  readonly constraints: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Delete, deploy, send, pay…: every call is held for an approval bound to its exact arguments. */
  readonly irreversible: boolean;
  /** Reads the outside world (web, e-mail, tickets): a call taints the session. */
  readonly untrusted: boolean;
  /** Changes our systems: refused (or held) in a tainted session. */
  readonly privileged: boolean;
  readonly whenTainted: "refuse" | "hold";
  /** Who approves held calls; required when calls can be held. */
  readonly approval?: ApprovalPolicy | undefined;
  /** How long a held call's approval request (and the approval) lives. */
  readonly approvalTtlSeconds: number;
  readonly rateLimit?: RateLimit | undefined;
  /** `shadow`: its constraints and its taint rule record what they would refuse. undefined: `enforce`. */
  readonly mode?: RuleMode | undefined;
  readonly path: Path;
}

/**
 * A configuration string that may hold `${env:NAME}` references, resolved by the composition root
 * (the only reader of the environment) when the gateway starts.
 */
export interface ConfigText {
  readonly template: string;
  /** The environment variables it names. */
  readonly env: readonly string[];
}

/**
 * Per-call credentials of an upstream (`credentials: { downstream: github }`): for each forwarded
 * call the gateway injects a credential a downstream issuer mints for the session's writ, never a
 * static one. One upstream connection (a process, for stdio) per writ, at most `maxWrits` at once.
 */
export interface UpstreamCredentials {
  readonly downstream: "aws" | "github" | "kubernetes";
  readonly maxWrits: number;
  readonly path: Path;
}

export type Upstream =
  | {
      readonly kind: "stdio-upstream";
      readonly id: string;
      readonly command: string;
      readonly args: readonly ConfigText[];
      readonly env: ReadonlyMap<string, ConfigText>;
      readonly cwd?: string | undefined;
      readonly tools: ReadonlyMap<string, GatewayTool>;
      /** Resources every call to this upstream touches, beside its tools' own. */
      readonly resources: readonly ResourceTemplate[];
      /** New tools on this (already pinned) upstream are pinned on first sight, not quarantined. */
      readonly trustNewTools: boolean;
      readonly credentials?: UpstreamCredentials | undefined;
      readonly path: Path;
    }
  | {
      readonly kind: "http-upstream";
      readonly id: string;
      readonly url: string;
      /** The gateway's own credentials for this upstream, never the agent's token. */
      readonly headers: ReadonlyMap<string, ConfigText>;
      readonly tools: ReadonlyMap<string, GatewayTool>;
      readonly resources: readonly ResourceTemplate[];
      readonly trustNewTools: boolean;
      readonly credentials?: UpstreamCredentials | undefined;
      readonly path: Path;
    };

export interface GatewayConfig {
  readonly kind: "gateway";
  /** The audience tokens must name; default `<public base URL>/mcp`. */
  readonly resource?: string | undefined;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly perAgent?: RateLimit | undefined;
  /** The default per agent and tool; a tool's own `rateLimit` wins. */
  readonly perTool?: RateLimit | undefined;
  /** Bounds no grant can pass: filesystem roots, hosts, mail domains, denied paths. */
  readonly bounds?: GatewayBounds | undefined;
  /** How long a writ's (or an agent's baseline) taint lasts, at most (seconds). */
  readonly taintTtlSeconds: number;
}

/**
 * The gateway's own limits on what a derived resource may be, checked before the decision point:
 * path resources must lie under a root and match no denied glob, hosts and mail domains must match
 * an allowed glob. Globs here are path globs: `*` and `?` never match `/`, `**` matches across it.
 */
export interface GatewayBounds {
  readonly roots?: readonly string[] | undefined;
  readonly hosts?: readonly string[] | undefined;
  readonly domains?: readonly string[] | undefined;
  readonly deny: readonly string[];
  /** `shadow`: a value outside the bounds is recorded, not refused. undefined: `enforce`. */
  readonly mode?: RuleMode | undefined;
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
  /** The MCP gateway's upstreams and tool declarations. */
  readonly gateway?: GatewayConfig | undefined;
  /** Per environment, the systems a writ can be redeemed in (issue 11); undefined: none. */
  readonly downstream?: DownstreamConfig | undefined;
  /** What `writ hook` needs beyond the grants (untrusted files, taint lifetime); undefined: defaults. */
  readonly hooks?: HooksConfig | undefined;
}

/** The `hooks:` section: files whose content taints the session that reads it, and for how long. */
export interface HooksConfig {
  /** Absolute path globs (the gateway's bounds syntax: `*` within a segment, `**` across). */
  readonly untrusted: readonly string[];
  readonly taintTtlSeconds: number;
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
