/**
 * The analyzer's model: what importers produce and what the engine classifies. Provider-agnostic:
 * Kubernetes, GitHub Actions, AWS and agent traces all become the same nodes, edges, permissions,
 * observed events and tool calls. Permissions are writ's vocabulary (`provider:service:action` on a
 * resource pattern, docs/permissions.md), so the engine matches them with src/core's rules.
 *
 * Data is readonly and tagged by `kind`. Times are milliseconds since the epoch.
 *
 *   input files ──Importer.import──► ModelFragment (nodes, edges, events, tool calls, provider objects)
 *   fragments ──Linker.link (per provider, after every file)──► more nodes and edges
 *   graph + events + tool calls + declared work ──classify──► Finding[]
 */
import type { Provider, UntrustedInput } from "../core/index.js";

/** Where a fact came from: the input file and, when known, the line (1-based). */
export interface SourceRef {
  readonly file: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
}

/** Bad or partial input: reported with file and line, the rest still analyzed. */
export interface InputProblem {
  /** Stable code, e.g. `ERR_INPUT_YAML`, `ERR_INPUT_JSON_LINE`, `WARN_INPUT_UNKNOWN_KIND`. */
  readonly code: string;
  readonly severity: "error" | "warning";
  readonly file: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
  readonly message: string;
}

// ── the identity graph ──────────────────────────────────────────────────────────────────────────

/**
 * What a node is. `workload`: what runs and is analyzed (a Deployment, a CronJob, a bare Pod, a
 * GitHub job, a Lambda function); `pod`: one instance of a workload; `identity`: what a workload
 * authenticates as (a service account, a GitHub job token, an IAM role, a node identity); `group`:
 * an identity that others are members of; `binding`: what attaches permissions to identities
 * (RoleBinding, ClusterRoleBinding, a `permissions:` block, a policy attachment); `role`: a set of
 * permissions (Role, ClusterRole, IAM policy); `default`: a fallback that applies when nothing is
 * set (the repository's default token permissions).
 */
export type NodeType =
  | "workload"
  | "pod"
  | "identity"
  | "group"
  | "binding"
  | "role"
  | "default"
  | "namespace";

export interface PermissionGrant {
  readonly kind: "permission";
  /** `provider:service:action`, a pattern (`k8s:core/pods:get`, `github:contents:write`, `aws:s3:Get*`). */
  readonly action: string;
  /** A resource pattern in the provider's form (`shop/*`, `acme/widgets`, an ARN). */
  readonly resource: string;
  /** The rule as written in its source, for evidence (`pods: get, list` or a policy statement). */
  readonly text?: string | undefined;
  readonly source?: SourceRef | undefined;
}

/**
 * Whose node it is: a provider of writ's vocabulary, or `azure` — an Azure workload identity a
 * ServiceAccount assumes (recorded as an opaque cloud identity: no Azure grants are read).
 */
export type NodeProvider = Provider | "azure";

export interface GraphNode {
  readonly kind: "node";
  /** Unique across providers: `k8s:ServiceAccount:shop/web`, `github:job:.github/workflows/ci.yml#build`. */
  readonly id: string;
  readonly provider: NodeProvider;
  readonly type: NodeType;
  /** The provider's own kind: `Deployment`, `ServiceAccount`, `ClusterRoleBinding`, `job`, `role`. */
  readonly subtype: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  /** Permissions granted to whoever reaches this node (bindings and roles hold them). */
  readonly grants?: readonly PermissionGrant[] | undefined;
  /** The writ agent this node runs or authenticates for (declared by annotation `writ.dev/agent`). */
  readonly agent?: string | undefined;
  /**
   * Provisioned for everyone rather than for one workload: a group (`system:authenticated`), a
   * default service account, a node identity, a repository default. Paths through it are inherited.
   */
  readonly shared?: boolean | undefined;
  /** Provider facts the reports show (`privileged: true`, `hostPath: /`). */
  readonly attrs?: Readonly<Record<string, string | number | boolean>> | undefined;
  readonly source?: SourceRef | undefined;
}

/**
 * Arrows point from the holder towards the permission:
 * `owns` workload→pod, `runs-as` workload/pod→identity, `member-of` identity→group,
 * `bound-by` identity/group→binding, `references` binding→role, `assumes` identity→cloud identity
 * (IRSA, GKE Workload Identity, Azure workload identity, an EC2 instance profile's role),
 * `falls-back-to` workload→default identity or repository default, `inherits` binding→binding (a job
 * inheriting the workflow's block), `can-assume` identity→role whose trust policy lets the identity
 * assume it (AWS role chaining, decided by the evaluator): the role's grants are reachable, but were
 * not provisioned for the holder, and the role's own activity is not the holder's.
 */
export type EdgeType =
  | "owns"
  | "runs-as"
  | "member-of"
  | "bound-by"
  | "references"
  | "assumes"
  | "falls-back-to"
  | "inherits"
  | "can-assume";

export interface GraphEdge {
  readonly kind: "edge";
  readonly from: string;
  readonly to: string;
  readonly type: EdgeType;
  /** Why the edge exists, for evidence (`subjects[0]`, `roleRef ClusterRole/view`, `annotation eks.amazonaws.com/role-arn`). */
  readonly note?: string | undefined;
  readonly source?: SourceRef | undefined;
}

// ── what happened ───────────────────────────────────────────────────────────────────────────────

export type Outcome = "allowed" | "denied" | "error";

/** One use of a permission, from a cluster audit log, CloudTrail, a GitHub audit log. */
export interface ObservedEvent {
  readonly kind: "event";
  readonly provider: Provider;
  readonly at: number;
  /** The identity node id that acted (`k8s:ServiceAccount:shop/web`, `k8s:User:alice@example.com`). */
  readonly principal: string;
  /** The pod (node id) the credential was bound to, when the event says (bound service-account tokens). */
  readonly pod?: string | undefined;
  /** A concrete action in writ's vocabulary: `k8s:apps/deployments:patch`. */
  readonly action: string;
  /** A concrete resource: `shop/web`, or `shop/*` for a collection request (list, watch). */
  readonly resource: string;
  /** Denied and failed requests are not use: they never count as exercising a permission. */
  readonly outcome: Outcome;
  /** The provider's request id (k8s `auditID`, CloudTrail `requestID`), for joining to traces. */
  readonly requestId?: string | undefined;
  readonly userAgent?: string | undefined;
  /**
   * The credential the request was made with, when it may be a writ's downstream credential: an
   * AWS role session that carries a source identity, or a Kubernetes request authorised by a
   * binding named `writ-…`. Such events are attributed to their writ when one is found
   * (src/analyzer/writs.ts), else counted as the identity's own use.
   */
  readonly via?: CredentialRef | undefined;
  /** The writ issuance this event records (STS AssumeRole with writ's session tags, a writ binding's create). */
  readonly issues?: WritIssue | undefined;
  readonly source: SourceRef;
}

/**
 * What a request's credential is: `aws-session` keyed by the session ARN
 * (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`), with the session's access key id and source
 * identity when CloudTrail records them; `k8s-binding` keyed by the binding node id that authorised
 * it (`k8s:RoleBinding:ns/name`, `k8s:ClusterRoleBinding:name`).
 */
export interface CredentialRef {
  readonly kind: "aws-session" | "k8s-binding";
  readonly key: string;
  readonly accessKeyId?: string | undefined;
  readonly sourceIdentity?: string | undefined;
}

/** A writ's downstream credential coming into being, as the downstream system recorded it. */
export interface WritIssue {
  readonly writ: string;
  readonly agent: string;
  readonly playbook: string;
  readonly sponsor?: string | undefined;
  /** The credential it made: keys as in `CredentialRef`. */
  readonly credential: CredentialRef;
  /** How the writ was read from the record, for evidence (`session tags of AssumeRole`, `annotations of RoleBinding …`). */
  readonly how: string;
  /** The writ's expiry (ms), when the record says (`writ.dev/expires-at` on writ's Kubernetes objects). */
  readonly expiresAt?: number | undefined;
}

/** The writ a finding's use was made under. */
export interface WritRef {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly sponsor?: string | undefined;
}

/** One tool call by an agent (an OpenTelemetry GenAI `execute_tool` span). */
export interface ToolCall {
  readonly kind: "tool-call";
  readonly traceId: string;
  readonly spanId: string;
  readonly start: number;
  readonly end: number;
  /** The writ agent (`gen_ai.agent.name` or `gen_ai.agent.id`). */
  readonly agent: string;
  /** The tool (`gen_ai.tool.name`), as writ names MCP tools when it can: `server:tool`. */
  readonly tool: string;
  readonly arguments?: unknown;
  /** The conversation or prompt-context id (`gen_ai.conversation.id`, `writ.prompt_context`). */
  readonly context?: string | undefined;
  /** The playbook run the call claims to belong to (`writ.playbook`), when the agent says. */
  readonly playbook?: string | undefined;
  /** Request ids the call caused (`writ.request_ids`, `aws.request_id`, `k8s.audit_id`). */
  readonly requestIds: readonly string[];
  /**
   * The call read untrusted content: later calls in its context are tainted. Set by the importer
   * from the default rule (src/analyzer/join.ts), replaced by the agent's `untrustedInputs` when
   * writ.yaml configures them.
   */
  readonly untrustedSource: boolean;
  /** The span's own scalar attributes, for `untrustedInputs` attribute matchers. */
  readonly attributes?: Readonly<Record<string, string | number | boolean>> | undefined;
  /** Where the call ran, from the OTel resource attributes `k8s.*`: joins it to cluster events. */
  readonly runsIn?: K8sResource | undefined;
  readonly source: SourceRef;
}

/**
 * The OTel Kubernetes resource attributes of a span (`k8s.namespace.name`, `k8s.pod.name`,
 * `k8s.deployment.name`, `k8s.statefulset.name`, `k8s.daemonset.name`, `k8s.cronjob.name`,
 * `k8s.job.name`); the workload is the first of those kinds present.
 */
export interface K8sResource {
  readonly namespace?: string | undefined;
  readonly pod?: string | undefined;
  readonly workload?: { readonly kind: string; readonly name: string } | undefined;
}

// ── importers ───────────────────────────────────────────────────────────────────────────────────

/** A file handed to the importers. `text()` reads it whole; `lines()` streams it (large audit logs). */
export interface InputFile {
  /** The file's name in sources, ids and reports (relative to the scan root when there is one). */
  readonly path: string;
  /**
   * Where the file is on disk, when that differs from `path`: for an importer that must open the
   * file itself (a gzipped CloudTrail file); everything it reports still names `path`.
   */
  readonly location?: string | undefined;
  /** The first 64 KiB, for detection. */
  readonly head: string;
  readonly size: number;
  text(): Promise<string>;
  lines(): AsyncIterable<string>;
}

/** Provider objects kept for the linker: raw Kubernetes objects, workflow documents, IAM details. */
export interface ProviderObject {
  readonly kind: "object";
  readonly provider: Provider;
  /** The provider's kind (`ClusterRole`, `Deployment`, `workflow`). */
  readonly type: string;
  readonly value: unknown;
  readonly source: SourceRef;
  /** Lines of parts of the object (`rules[2]`, `subjects[0]`, `spec.template.spec`), for evidence. */
  readonly lines?: Readonly<Record<string, number>> | undefined;
}

/** What one importer turned one file into. Any part may be empty. */
export interface ModelFragment {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly events: readonly ObservedEvent[];
  readonly toolCalls: readonly ToolCall[];
  readonly objects: readonly ProviderObject[];
}

export interface ImportResult {
  readonly fragment: ModelFragment;
  readonly problems: readonly InputProblem[];
}

export interface ImportOptions {
  /** Called now and then with the bytes read so far (progress on large inputs). */
  readonly progress?: ((bytesRead: number) => void) | undefined;
  /** Events outside the window are dropped at import. */
  readonly window?: ObservationWindow | undefined;
  /**
   * When given, events go here as they are read instead of into the fragment: a large audit log
   * is then never held in memory (the engine aggregates as it goes).
   */
  readonly onEvent?: ((event: ObservedEvent) => void) | undefined;
  /**
   * When given, tool calls go here as they are read instead of into the fragment: a large trace
   * export is then never held as objects (the engine keeps them compactly, src/analyzer/calls.ts).
   * Calls of one line must come in the order `reload` gives them again.
   */
  readonly onToolCall?: ((call: ToolCall) => void) | undefined;
}

/**
 * Reads one input format. `detect` looks at the file's name and first bytes and says whether it
 * is this importer's; `import` never throws on bad input: it reports problems with file and line
 * and returns what it could read.
 */
export interface Importer {
  readonly name: string;
  /**
   * `structure` (grants, identities, traces) is read first and linked; `activity` (audit logs,
   * CloudTrail) is streamed after, so each event is attributed as it is read. Default `structure`.
   */
  readonly phase?: "structure" | "activity" | undefined;
  detect(file: InputFile): boolean;
  import(file: InputFile, opts?: ImportOptions): Promise<ImportResult>;
  /**
   * The tool calls of some lines of a file read before, whole and in the order `import` gave them:
   * the calls cited as evidence are read again rather than held (an importer that streams tool
   * calls through `onToolCall` must have it).
   */
  reload?(file: InputFile, lines: ReadonlySet<number>): Promise<ReadonlyMap<number, readonly ToolCall[]>>;
}

/**
 * Runs once over every fragment, after every file is imported: resolves references that cross
 * files (a binding in one file, its role in another; owner references; role aggregation) into
 * nodes and edges. One per provider; a provider whose importers emit nodes directly needs none.
 */
export interface Linker {
  readonly provider: Provider;
  link(objects: readonly ProviderObject[], nodes: ReadonlyMap<string, GraphNode>): LinkResult;
}

export interface LinkResult {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly problems: readonly InputProblem[];
}

// ── declared work (from writ.yaml) ──────────────────────────────────────────────────────────────

/** What an agent is declared to do: its baseline, its playbooks' grants (widened), its tools. */
export interface DeclaredWork {
  readonly agent: string;
  readonly grants: readonly DeclaredGrant[];
  /** MCP tool patterns `server:tool`; empty: none. */
  readonly tools: readonly string[];
  readonly playbooks: readonly string[];
  /** From writ.yaml: the workloads (kind/namespace/name globs) the agent runs as. */
  readonly workloads?: readonly {
    readonly kind: string;
    readonly namespace: string;
    readonly name: string;
  }[];
  /** From writ.yaml: service accounts (`namespace/name`, globs) the agent authenticates as. */
  readonly serviceAccounts?: readonly string[];
  /** From writ.yaml: AWS role ARNs and GCP service-account e-mails the agent's workloads assume. */
  readonly cloudIdentities?: readonly string[];
  /** From writ.yaml: what marks a call as reading untrusted content; undefined: the default rule. */
  readonly untrustedInputs?: readonly UntrustedMatcher[] | undefined;
  /**
   * From writ.yaml: the bindings (`k8s:RoleBinding:ns/name`, `k8s:ClusterRoleBinding:name`)
   * the owner says were made for this agent; undefined: not said.
   */
  readonly provisionedBindings?: readonly string[] | undefined;
}

/** What writ.yaml's `untrustedInputs` says marks a call as reading untrusted content: the configuration's own type. */
export type UntrustedMatcher = UntrustedInput;

export interface DeclaredGrant {
  readonly action: string;
  readonly resource: string;
  /** `baseline` or `playbook:<id>`. */
  readonly from: string;
}

// ── findings ────────────────────────────────────────────────────────────────────────────────────

export type Category = "unused-excess" | "unjustified-use" | "inherited-overreach";
export const CATEGORIES: readonly Category[] = ["unused-excess", "unjustified-use", "inherited-overreach"];

export type Severity = "critical" | "high" | "medium" | "low";
export const SEVERITIES: readonly Severity[] = ["critical", "high", "medium", "low"];

export interface ObservationWindow {
  readonly start: number;
  readonly end: number;
}

/** One link of an evidence chain: a graph node, an edge, an event or a tool call, in order. */
export interface EvidenceStep {
  readonly kind: "node" | "edge" | "event" | "tool-call" | "context" | "note";
  /** The node id, `from→to` for an edge, the request id, the span id, the context id. */
  readonly ref: string;
  readonly label: string;
  readonly source?: SourceRef | undefined;
}

/** A generated file: never applied, only shown. */
export interface RemediationFile {
  readonly path: string;
  readonly language: "yaml" | "json" | "text";
  readonly content: string;
}

export interface Reduction {
  /** `replace-role`, `permissions-block`, `dedicated-identity`, `gateway-guardrail`, `replace-policy`. */
  readonly kind: string;
  readonly summary: string;
  readonly files: readonly RemediationFile[];
}

export interface Finding {
  readonly kind: "finding";
  /**
   * Stable across scans for the same workload and permission (a hash of both), so a rescan that
   * reclassifies the finding keeps its id and its history.
   */
  readonly id: string;
  readonly category: Category;
  readonly severity: Severity;
  readonly title: string;
  /** The workload node the finding is about. */
  readonly workload: { readonly id: string; readonly label: string; readonly agent?: string | undefined };
  readonly permission: { readonly action: string; readonly resource: string };
  /** Where the permission is granted: the source of the rule or block. */
  readonly location?: SourceRef | undefined;
  /** The chain: pod → workload → identity → binding → role → rule; event → tool call → context. */
  readonly evidence: readonly EvidenceStep[];
  readonly reduction: Reduction;
  /** What goes wrong if this category is wrong (the fix aimed at the wrong category). */
  readonly misclassification: string;
  /** How sure the classification is, 0..1 (lower without activity data or with little coverage). */
  readonly confidence: number;
  /** The writs whose downstream credentials made the uses (category 2 of writ use), first one first. */
  readonly writs?: readonly WritRef[] | undefined;
}

/** An escalation edge: what holding a permission lets one reach (KubeHound-style). */
export interface EscalationEdge {
  readonly kind: "escalation";
  /** `POD_CREATE`, `POD_EXEC`, `POD_PATCH`, `TOKEN_LIST`, `TOKEN_BRUTEFORCE`, `ROLE_BIND`, … */
  readonly type: string;
  readonly from: string;
  readonly to: string;
  /** The permission that makes the edge. */
  readonly via: { readonly action: string; readonly resource: string };
  /**
   * Set when the edge rests on a fact the input does not show (why): the step exists only if that
   * fact holds. Blast radius answers through such edges as unknown, not as reachable.
   */
  readonly unknown?: string | undefined;
}

/** The blast-radius questions: if a workload's credential leaked, could it … */
export type BlastQuestion = "create-identities" | "read-unrelated-secrets" | "mutate-outside-namespace";
export const BLAST_QUESTIONS: readonly BlastQuestion[] = [
  "create-identities",
  "read-unrelated-secrets",
  "mutate-outside-namespace",
];

export interface BlastRadius {
  readonly workload: string;
  /** Each question answered with the shortest path that reaches it, or none. */
  readonly answers: readonly {
    readonly question: BlastQuestion;
    /** The question as the workload's provider words it (`read Secrets of other workloads`, …). */
    readonly text: string;
    readonly reachable: boolean;
    readonly path: readonly EscalationEdge[];
    /** Not known to be reachable, but reachable if an unknown edge of `path` holds (its reason). */
    readonly unknown?: string | undefined;
  }[];
}

/**
 * An identity that acted (allowed requests in an audit log) but whose grants writ cannot see: a
 * Kubernetes ServiceAccount that no exported manifest shows — no ServiceAccount object, no binding
 * naming it, no workload running as it. Categories 1 and 3 need its grants and are `unknown`; its
 * use is still judged against declared work (category 2) when writ.yaml's `serviceAccounts` tie
 * an agent to it. Code `IDENTITY_GRANTS_UNKNOWN` (docs/analyzer.md).
 */
export interface UnjudgedIdentity {
  readonly kind: "unjudged-identity";
  readonly code: "IDENTITY_GRANTS_UNKNOWN";
  /** Stable across scans: a hash of the identity. */
  readonly id: string;
  /** `k8s:ServiceAccount:ns/name` */
  readonly identity: string;
  /** The agent writ.yaml ties to it, and by which entry. */
  readonly agent?: { readonly id: string; readonly why: string } | undefined;
  /** Whether its grants exceed its use (categories 1 and 3): unknown, and why. */
  readonly answer: "unknown";
  readonly why: string;
  /** What was judged anyway: `category 2 against agent X's declared work: N finding(s)`, or why not. */
  readonly judged: string;
  /** Its observed use, per action: counts, first and last seen, a few resources and events. */
  readonly use: readonly {
    readonly action: string;
    readonly count: number;
    readonly first: number;
    readonly last: number;
    readonly resources: readonly string[];
    readonly events: readonly EvidenceStep[];
  }[];
  /** Denied or failed requests (not use, but worth a look: probing). */
  readonly denied: number;
}

/** What was looked at: the window, how many events, which workloads had any activity data. */
export interface Coverage {
  readonly window?: ObservationWindow | undefined;
  readonly events: number;
  readonly eventsDenied: number;
  readonly toolCalls: number;
  readonly workloads: number;
  readonly workloadsWithActivity: number;
  readonly files: number;
}

export interface AnalysisResult {
  readonly findings: readonly Finding[];
  readonly escalations: readonly EscalationEdge[];
  readonly blastRadius: readonly BlastRadius[];
  readonly problems: readonly InputProblem[];
  readonly coverage: Coverage;
  /** Identities that acted but whose grants the input does not show (judged as far as it can). */
  readonly unjudged?: readonly UnjudgedIdentity[] | undefined;
  /** Every workload the scan looked at (a stored finding of one of these not found again is fixed). */
  readonly workloadIds: readonly string[];
  /**
   * The scan root (absolute), when inputs were named relative to one: sources' relative `file`s
   * are relative to it (SARIF's `%SRCROOT%`).
   */
  readonly root?: string | undefined;
  /** ClusterRoleBindings and workflows with explicit token permissions (posture.ts), for the metrics. */
  readonly posture?:
    | { readonly clusterRoleBindings: number; readonly workflows: number; readonly workflowsExplicit: number }
    | undefined;
}

// ── providers plug into the engine ──────────────────────────────────────────────────────────────

/** The graph the engine built, as providers see it. */
export interface GraphView {
  readonly nodes: ReadonlyMap<string, GraphNode>;
  /** Outgoing edges by node id. */
  readonly out: ReadonlyMap<string, readonly GraphEdge[]>;
  /** Incoming edges by node id. */
  readonly in: ReadonlyMap<string, readonly GraphEdge[]>;
}

/** A permission a workload holds, with the path that gives it. */
export interface EffectiveGrant {
  readonly grant: PermissionGrant;
  /** Node ids from the workload to the node holding the grant. */
  readonly path: readonly string[];
  /** The path crosses a shared node or a group: the grant was not provisioned for this workload. */
  readonly inherited: boolean;
}

/**
 * A plug-in that reads input only: its importers (and a linker, if its objects cross files). Agent
 * traces are one: tool calls carry no grants, risk or fixes of their own, they are joined to the
 * providers' events (src/analyzer/join.ts).
 */
export interface InputPlugin {
  /** The provider its input belongs to (`mcp` for agents' tool calls). */
  readonly provider: Provider;
  readonly importers: readonly Importer[];
  readonly linker?: Linker | undefined;
}

/** What a provider knows that the engine does not: risk, wildcard expansion, fixes, escalation. */
export interface ProviderPlugin extends InputPlugin {
  /** How dangerous holding the permission is; drives severity. */
  risk(action: string, resource: string): Severity;
  /**
   * Concrete permissions a granted pattern stands for, to compare with observed use (Kubernetes
   * `verbs: ["*"]` → the eight resource verbs). Default: the grant itself.
   */
  expand?(grant: PermissionGrant): readonly PermissionGrant[];
  /**
   * Permissions a workload needs, inferred without activity data (a GitHub job's steps); used as
   * observed use, at lower confidence, when the workload has no events.
   */
  inferredUse?(workload: GraphNode, graph: GraphView): readonly InferredUse[];
  /** Category 1: a replacement for the workload's own grants, from what it used. */
  replacement(ctx: ReductionContext): Reduction;
  /** Category 3: a dedicated identity with its own narrow role, from what it used. */
  dedicatedIdentity(ctx: ReductionContext): Reduction;
  /** Escalation edges (KubeHound-style) the graph allows, for blast radius. */
  escalations?(graph: GraphView): readonly EscalationEdge[];
  /** The blast-radius questions in the provider's words (what "identities", "secrets", "outside" mean there). */
  readonly blastQuestions?: Readonly<Record<BlastQuestion, string>> | undefined;
}

export interface InferredUse {
  readonly action: string;
  readonly resource: string;
  /** Why: `step actions/checkout@v4 reads contents`. */
  readonly reason: string;
  readonly source?: SourceRef | undefined;
}

/** What a remediation generator is given about one workload. */
export interface ReductionContext {
  readonly workload: GraphNode;
  readonly graph: GraphView;
  /** Permissions it used (or needs), each with its evidence: the events or the inferred reasons. */
  readonly used: readonly UsedPermission[];
  /** The grants the fix removes or replaces. */
  readonly excess: readonly EffectiveGrant[];
}

export interface UsedPermission {
  readonly action: string;
  readonly resource: string;
  readonly count: number;
  /** `observed 12× in the window`, `inferred from step …`. */
  readonly evidence: string;
  /** 0..1: observed use is 1, an inference less. */
  readonly confidence: number;
}

/** Any plug-in of a scan: a provider of grants, or one that reads input only. */
export type AnalyzerPlugin = InputPlugin | ProviderPlugin;

/** Whether a plug-in provides grants (risk, fixes), not only input. */
export function providesGrants(p: AnalyzerPlugin): p is ProviderPlugin {
  return "risk" in p;
}

export const EMPTY_FRAGMENT: ModelFragment = { nodes: [], edges: [], events: [], toolCalls: [], objects: [] };
