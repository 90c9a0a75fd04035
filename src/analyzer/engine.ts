/**
 * The engine: provider-agnostic. Structure files are imported and linked into one graph; activity
 * files are streamed and aggregated per identity as they are read; then every workload's effective
 * grants are compared with its use and sorted into the three categories.
 */

import { createHash } from "node:crypto";
import {
  compileRule,
  globMatches,
  parseRequestAction,
  type Rule,
  ruleContains,
  ruleMatches,
} from "../core/index.js";
import { agentsOfServiceAccount, type PodResolver, podResolver, tieAgents } from "./agents.js";
import { blastIndex, blastRadius } from "./blast.js";
import { type CallReloader, CallStore } from "./calls.js";
import { DeclaredMatcher, provisionedBindingsOf } from "./declared.js";
import {
  buildGraph,
  effectiveGrants,
  type GrantPath,
  identitiesOf,
  identityUse,
  workloads,
} from "./graph.js";
import { problem } from "./input.js";
import { classifyCall, type JoinKind, TraceJoin } from "./join.js";
import {
  type AnalysisResult,
  type AnalyzerPlugin,
  type BlastRadius,
  type Category,
  type DeclaredWork,
  type EscalationEdge,
  type EvidenceStep,
  type Finding,
  type GraphEdge,
  type GraphNode,
  type GraphView,
  type InferredUse,
  type InputFile,
  type InputProblem,
  type ModelFragment,
  type ObservationWindow,
  type ObservedEvent,
  type PermissionGrant,
  type ProviderObject,
  type ProviderPlugin,
  providesGrants,
  type Reduction,
  type Severity,
  type SourceRef,
  type ToolCall,
  type UnjudgedIdentity,
  type UsedPermission,
} from "./model.js";
import { postureOf } from "./posture.js";
import {
  bindingsMadeFor,
  extraSubjectFix,
  extraSubjectOf,
  inheritExtraSubjects,
  provisionedFor,
} from "./provisioned.js";
import { guardrailFor } from "./remediation.js";
import {
  type Attributed,
  type Correlated,
  insideAny,
  judgeWritUses,
  playbookRules,
  WritAttribution,
  type WritUse,
  writWorkloadId,
} from "./writs.js";

export interface EngineOptions {
  /** The plug-ins: providers of grants, and plug-ins that read input only (agent traces). */
  readonly plugins: readonly AnalyzerPlugin[];
  /** Agents' declared work, from writ.yaml. */
  readonly declared?: ReadonlyMap<string, DeclaredWork> | undefined;
  readonly window?: ObservationWindow | undefined;
  /** How far an event may sit outside a tool call's span and still be joined to it (ms). */
  readonly correlationSlackMs?: number | undefined;
  /**
   * Workloads tied to agents by configuration (workload node id → agent id), for exports that carry
   * no `writ.dev/agent` annotation. An annotation on the workload or its identity is used otherwise.
   */
  readonly workloadAgents?: ReadonlyMap<string, string> | undefined;
  /**
   * Per agent, the bindings its owner says were made for it (`provisionedBindings` in writ.yaml):
   * a binding named here is the agent's own even when it also serves other workloads
   * (provisioned.ts). Names as `ClusterRoleBinding/NAME`, `RoleBinding/NS/NAME`, or node ids.
   */
  readonly provisionedBindings?: ReadonlyMap<string, readonly string[]> | undefined;
  /**
   * Past this many distinct objects per workload and action, category-2 uses fold to a pattern
   * (`ns/*`, then `*`); default `CAT2_RESOURCES`. A finding's id does not depend on it.
   */
  readonly foldAfter?: number | undefined;
}

const MAX_RESOURCES = 64;
const SEVERITY_RANK: Readonly<Record<Severity, number>> = { critical: 4, high: 3, medium: 2, low: 1 };

interface Usage {
  readonly action: string;
  count: number;
  first: number;
  last: number;
  /** Distinct resources (capped); past the cap, the namespace (`ns/*`) stands for the rest. */
  readonly resources: Map<string, number>;
  readonly samples: ObservedEvent[];
}

/** One identity's use: action → usage. Denied and failed requests are counted apart, never as use. */
interface IdentityActivity {
  readonly used: Map<string, Usage>;
  denied: number;
  readonly byPod: Map<string, Set<string>>;
}

export function findingId(workload: string, action: string, resource: string): string {
  return `wf-${createHash("sha256").update(`${workload}\u0000${action}\u0000${resource}`).digest("hex").slice(0, 16)}`;
}

export class Engine {
  private readonly nodes: GraphNode[] = [];
  private readonly edges: GraphEdge[] = [];
  private readonly objects: ProviderObject[] = [];
  private readonly calls = new CallStore();
  private readonly problems: InputProblem[] = [];
  private readonly activity = new Map<string, IdentityActivity>();
  private graph: GraphView | undefined;
  /** Per agent workload, its uses outside declared work, judged as events stream in. */
  private readonly judged = new Map<string, Judged>();
  /** Identity → the agent workloads whose events it makes. */
  private judgesOf = new Map<string, Judged[]>();
  /** Writ uses joined to their tool calls (call indices), before the calls are read again. */
  private writJoins: Map<ObservedEvent, { call: number; taint: number | undefined }> | undefined;
  private events = 0;
  private eventsDenied = 0;
  private minAt = Number.POSITIVE_INFINITY;
  private maxAt = Number.NEGATIVE_INFINITY;
  private readonly providersWithActivity = new Set<string>();
  private readonly writs = new WritAttribution();
  private attributed: Attributed | undefined;
  private tiesWarned = false;
  /** writ.yaml's `provisionedBindings`, when the caller passes none of its own. */
  private readonly provisionedFromConfig: ReadonlyMap<string, readonly string[]> | undefined;
  private pods: PodResolver | undefined;
  private traceJoin: TraceJoin | undefined;
  files = 0;

  /** The plug-ins that provide grants (risk, fixes, escalation edges). */
  private readonly providers: readonly ProviderPlugin[];

  constructor(private readonly opts: EngineOptions) {
    this.providers = opts.plugins.filter(providesGrants);
    this.provisionedFromConfig = opts.declared ? provisionedBindingsOf(opts.declared) : undefined;
  }

  addProblems(ps: readonly InputProblem[]): void {
    this.problems.push(...ps);
  }

  /** A structure fragment (or any fragment: its events are streamed through `event`). */
  add(f: ModelFragment): void {
    this.nodes.push(...f.nodes);
    this.edges.push(...f.edges);
    this.objects.push(...f.objects);
    // A loop, not a spread: a large trace export has more calls than a call's arguments can hold.
    for (const c of f.toolCalls) this.calls.add(classifyCall(c, this.opts.declared), true);
    for (const e of f.events) this.event(e);
    if (f.nodes.length > 0 || f.edges.length > 0 || f.objects.length > 0) this.graph = undefined;
  }

  /** One tool call, as it is read: held compactly (calls.ts), read again if cited. */
  toolCall(c: ToolCall): void {
    this.calls.add(classifyCall(c, this.opts.declared), false);
  }

  /** Where the streamed calls of `file` can be read again (the importer's `reload`). */
  callSource(file: InputFile, reload: CallReloader): void {
    this.calls.source(file, reload);
  }

  /** Links provider objects into the graph. Call after every structure file, before activity. */
  link(): GraphView {
    if (this.graph) return this.graph;
    const nodes = [...this.nodes];
    const edges = [...this.edges];
    for (const p of this.opts.plugins) {
      if (!p.linker) continue;
      const objs = this.objects.filter((o) => o.provider === p.provider);
      if (objs.length === 0) continue;
      const r = p.linker.link(objs, new Map(nodes.map((n) => [n.id, n])));
      nodes.push(...r.nodes);
      edges.push(...r.edges);
      this.problems.push(...r.problems);
    }
    // Agents tied to what runs by writ.yaml (workloads, service accounts, cloud identities).
    const tied = tieAgents(nodes, edges, this.opts.declared);
    if (!this.tiesWarned) this.problems.push(...tied.problems);
    this.tiesWarned = true;
    this.graph = buildGraph(tied.nodes, edges);
    this.pods = podResolver(this.graph, this.objects);
    this.traceJoin = undefined;
    // Agent workloads with declared work: their identities' events are judged as they are read.
    this.judgesOf = new Map();
    for (const w of workloads(this.graph)) {
      const ids = identitiesOf(this.graph, w.id);
      const agent = this.agentOf(this.graph, w, ids);
      const work = agent ? this.opts.declared?.get(agent) : undefined;
      if (!agent || !work) continue;
      let j = this.judged.get(w.id);
      if (!j || j.agent !== agent) {
        j = { w, agent, m: new DeclaredMatcher(work), byAction: new Map() };
        this.judged.set(w.id, j);
      }
      for (const i of ids) (this.judgesOf.get(i) ?? this.judgesOf.set(i, []).get(i)!).push(j);
    }
    return this.graph;
  }

  /** The agent a workload runs for: configuration first, else `writ.dev/agent` on it or its identity. */
  private agentOf(g: GraphView, w: GraphNode, ids: readonly string[]): string | undefined {
    return (
      this.opts.workloadAgents?.get(w.id) ?? w.agent ?? ids.map((i) => g.nodes.get(i)?.agent).find(Boolean)
    );
  }

  /** One observed event, as it is read. */
  event(e: ObservedEvent): void {
    const w = this.opts.window;
    // A writ issuance names its writ whenever it happened; as use, it counts inside the window only.
    if (e.issues) this.writs.issue(e.issues, e.source);
    if (w && (e.at < w.start || e.at >= w.end)) return;
    this.events++;
    this.providersWithActivity.add(e.provider);
    if (e.at < this.minAt) this.minAt = e.at;
    if (e.at > this.maxAt) this.maxAt = e.at;
    // Possibly a writ's credential: held until every file is read, then attributed (writs.ts).
    if (e.via) {
      if (e.outcome !== "allowed") this.eventsDenied++;
      this.writs.hold(e);
      return;
    }
    this.aggregate(e);
  }

  /** Counts one event as its identity's own use. */
  private aggregate(e: ObservedEvent): void {
    let a = this.activity.get(e.principal);
    if (!a) {
      a = { used: new Map(), denied: 0, byPod: new Map() };
      this.activity.set(e.principal, a);
    }
    if (e.outcome !== "allowed") {
      if (!e.via) this.eventsDenied++;
      a.denied++;
      return;
    }
    if (e.pod) (a.byPod.get(e.pod) ?? a.byPod.set(e.pod, new Set()).get(e.pod)!).add(e.action);
    let u = a.used.get(e.action);
    if (!u) {
      u = { action: e.action, count: 0, first: e.at, last: e.at, resources: new Map(), samples: [] };
      a.used.set(e.action, u);
    }
    u.count++;
    if (e.at < u.first) u.first = e.at;
    if (e.at > u.last) u.last = e.at;
    let r = e.resource;
    if (!u.resources.has(r) && u.resources.size >= MAX_RESOURCES) {
      const slash = r.indexOf("/");
      r = slash > 0 ? `${r.slice(0, slash)}/*` : "*";
    }
    u.resources.set(r, (u.resources.get(r) ?? 0) + 1);
    if (u.samples.length < 3) u.samples.push(e);
    let judges = this.judgesOf.get(e.principal);
    if (judges === undefined && this.graph) {
      judges = this.unseenJudges(e.principal);
      this.judgesOf.set(e.principal, judges);
    }
    for (const j of judges ?? []) this.judge(j, e);
  }

  /**
   * A ServiceAccount the manifests do not show, tied to an agent by writ.yaml `serviceAccounts`:
   * its use is judged against the agent's declared work as its own (pseudo-)workload.
   */
  private unseenJudges(principal: string): Judged[] {
    const sa = /^k8s:ServiceAccount:([^/]+)\/(.+)$/.exec(principal);
    if (!sa || this.graph?.nodes.has(principal) || isControlPlaneAccount(sa[1]!, sa[2]!)) return [];
    const ties = agentsOfServiceAccount(this.opts.declared, sa[1]!, sa[2]!);
    const work = ties.length === 1 ? this.opts.declared?.get(ties[0]!.agent) : undefined;
    if (!work) return [];
    let j = this.judged.get(principal);
    if (!j) {
      const w: GraphNode = {
        kind: "node",
        id: principal,
        provider: "k8s",
        type: "identity",
        subtype: "ServiceAccount",
        name: sa[2]!,
        namespace: sa[1]!,
        agent: ties[0]!.agent,
        attrs: { agentTie: ties[0]!.why, notExported: true },
      };
      j = { w, agent: ties[0]!.agent, m: new DeclaredMatcher(work), byAction: new Map() };
      this.judged.set(principal, j);
    }
    return [j];
  }

  /**
   * Identities that acted but that no exported manifest shows (`IDENTITY_GRANTS_UNKNOWN`), with
   * their use; category-2 findings for those tied to an agent go into `findings`.
   */
  private unjudged(
    g: GraphView,
    window: ObservationWindow | undefined,
    findings: Finding[],
  ): UnjudgedIdentity[] {
    const out: UnjudgedIdentity[] = [];
    for (const [id, a] of this.activity) {
      const sa = /^k8s:ServiceAccount:([^/]+)\/(.+)$/.exec(id);
      if (!sa || g.nodes.has(id) || a.used.size === 0 || isControlPlaneAccount(sa[1]!, sa[2]!)) continue;
      const ties = agentsOfServiceAccount(this.opts.declared, sa[1]!, sa[2]!);
      const j = this.judged.get(id);
      const usages = [...a.used.values()];
      let judged: string;
      if (j) {
        const before = findings.length;
        const p = this.providers.find((x) => x.provider === "k8s");
        if (p) findings.push(...this.unjustifiedOf(j, usages, window, [], p));
        judged = `category 2 against agent \`${j.agent}\`'s declared work (${String(j.w.attrs?.agentTie)}): ${findings.length - before} finding(s)`;
      } else if (ties.length > 1)
        judged = `not judged: tied to ${ties.length} agents by writ.yaml (${ties.map((t) => t.agent).join(", ")})`;
      else
        judged =
          "not judged: no agent in writ.yaml names it in `serviceAccounts`, so there is no declared work to judge its use against";
      out.push({
        kind: "unjudged-identity",
        code: "IDENTITY_GRANTS_UNKNOWN",
        id: findingId(id, "unjudged", ""),
        identity: id,
        agent: ties.length === 1 ? { id: ties[0]!.agent, why: ties[0]!.why } : undefined,
        answer: "unknown",
        why: `no exported manifest shows \`${sa[1]}/${sa[2]}\` (no ServiceAccount, no binding naming it, no workload running as it): its grants, and so its unused or inherited scope, are unknown; export its RoleBindings and ClusterRoleBindings (\`kubectl get rolebindings,clusterrolebindings -A -o yaml\`)`,
        judged,
        use: usages
          .sort((x, y) => y.count - x.count || x.action.localeCompare(y.action))
          .map((u) => ({
            action: u.action,
            count: u.count,
            first: u.first,
            last: u.last,
            resources: [...u.resources.keys()].slice(0, 5),
            events: u.samples.map(eventStep),
          })),
        denied: a.denied,
      });
    }
    return out.sort((x, y) => x.identity.localeCompare(y.identity));
  }

  /**
   * Judges one allowed use by an agent workload against its declared work, as it is read. In
   * order: a use declared work covers (a baseline or playbook grant, through a declared tool, not
   * claiming a playbook that does not cover it) is never category 2, whatever came before it in
   * its conversation; a use outside it is, and an untrusted read earlier in the same conversation
   * or a departure from the learned baseline only qualify it (reasons, severity, evidence). Kept:
   * per action and resource (folded to a pattern past `CAT2_RESOURCES`), counts and a sample.
   */
  private judge(j: Judged, e: ObservedEvent): void {
    const covering = j.m.covering(e.action, e.resource);
    const join = this.join();
    const joined = join.joinIndex(j.agent, j.w, e);
    let flags = covering.length === 0 ? OUTSIDE_GRANTS : 0;
    if (joined) {
      const sig = this.calls.signature(joined.index);
      if (!j.m.toolDeclared(sig.tool)) flags |= TOOL_UNDECLARED;
      if (
        sig.playbook &&
        covering.length > 0 &&
        !covering.includes(`playbook:${sig.playbook}`) &&
        !covering.includes("baseline")
      )
        flags |= PLAYBOOK_CLAIMED;
    }
    // Declared work covers it: not category 2, tainted conversation or not.
    if (flags === 0) return;
    const v: Verdict = {
      event: e,
      call: joined?.index,
      by: joined?.by,
      taint: joined ? join.taintIndex(joined.index) : undefined,
      flags,
    };
    let a = j.byAction.get(e.action);
    if (!a) {
      a = { level: 0, groups: new Map() };
      j.byAction.set(e.action, a);
    }
    let key = foldResource(e.resource, a.level);
    if (!a.groups.has(key) && a.groups.size >= (this.opts.foldAfter ?? CAT2_RESOURCES) && a.level < 2) {
      // Too many distinct objects: one finding per namespace pattern (then one for all).
      a.level++;
      const old = [...a.groups.values()];
      a.groups = new Map();
      for (const g of old) mergeGroup(a, foldResource(g.resource, a.level), g);
      key = foldResource(e.resource, a.level);
    }
    addVerdict(a, key, v);
  }

  /** Writ use: attributed to its writ, else (no record names one) the identity's own after all. */
  private attribute(): Attributed {
    if (!this.attributed) {
      this.link();
      this.writs.fromObjects(this.objects);
      this.attributed = this.writs.resolve();
      this.problems.push(...this.attributed.problems);
      for (const e of this.attributed.standing) this.aggregate(e);
    }
    return this.attributed;
  }

  /**
   * After every file is read, before `result`: attributes writ use, joins it to its tool calls,
   * and reads again the tool calls the findings will cite (only those, only their lines).
   */
  async finish(): Promise<void> {
    const attributed = this.attribute();
    const need = new Set<number>();
    const cite = (v: Verdict | undefined) => {
      if (v?.call !== undefined) need.add(v.call);
      if (v?.taint !== undefined) need.add(v.taint);
    };
    for (const j of this.judged.values())
      for (const a of j.byAction.values())
        for (const g of a.groups.values()) {
          cite(g.cited);
          for (const v of g.samples) cite(v);
        }
    if (this.opts.declared && this.calls.size > 0) {
      const join = this.join();
      this.writJoins = new Map();
      for (const u of attributed.uses) {
        if (u.event.outcome !== "allowed") continue;
        const x = join.joinIndex(u.writ.agent, undefined, u.event);
        if (!x) continue;
        const taint = join.taintIndex(x.index);
        this.writJoins.set(u.event, { call: x.index, taint });
        need.add(x.index);
        if (taint !== undefined) need.add(taint);
      }
    }
    for (const message of await this.calls.hydrate(need))
      this.problems.push(problem("WARN_TRACE_CHANGED", { file: message.split(":")[0]! }, message, "warning"));
  }

  result(): AnalysisResult {
    const g = this.link();
    const attributed = this.attribute();
    const plugin = (provider: string) => this.providers.find((p) => p.provider === provider);
    const s: ResultScope = {
      g,
      pods: this.pods ?? podResolver(g, this.objects),
      use: identityUse(g),
      writUse: writUseByPrincipal(attributed.uses),
      // Writ use is judged per writ, against its playbook, before the identities' own use.
      writJudged: this.opts.declared
        ? judgeWritUses(
            attributed.uses,
            this.opts.declared,
            (provider, action, resource) => plugin(provider)?.risk(action, resource) ?? "medium",
            findingId,
            this.correlator(),
          )
        : { findings: [], outside: new Set<ObservedEvent>() },
      window: this.opts.window ?? (this.events > 0 ? { start: this.minAt, end: this.maxAt + 1 } : undefined),
      matchers: new Map([...(this.opts.declared ?? [])].map(([id, work]) => [id, new DeclaredMatcher(work)])),
      warnedAgents: new Set(),
      madeFor: bindingsMadeFor(g, this.objects),
    };
    const findings: Finding[] = [];
    let withActivity = 0;
    for (const w of workloads(g)) {
      const p = plugin(w.provider);
      if (!p) continue;
      const r = this.workloadFindings(s, w, p);
      findings.push(...r.findings);
      if (r.hasActivity) withActivity++;
    }
    findings.push(...s.writJudged.findings);
    const writWorkloads = new Set(attributed.uses.map((u) => writWorkloadId(u.writ.agent, u.writ.playbook)));
    const unjudged = this.unjudged(g, s.window, findings);
    findings.sort(
      (a, b) =>
        SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
        a.category.localeCompare(b.category) ||
        a.workload.id.localeCompare(b.workload.id) ||
        a.permission.action.localeCompare(b.permission.action),
    );
    const escalations: EscalationEdge[] = this.providers.flatMap((p) => [...(p.escalations?.(g) ?? [])]);
    const index = blastIndex(escalations);
    const radius: BlastRadius[] = workloads(g)
      .filter((w) => this.providers.some((p) => p.provider === w.provider && p.escalations))
      .map((w) =>
        blastRadius(g, w, index, this.providers.find((p) => p.provider === w.provider)?.blastQuestions),
      );
    return {
      findings,
      escalations,
      blastRadius: radius,
      problems: this.problems,
      unjudged,
      workloadIds: [
        ...workloads(g).map((w) => w.id),
        ...unjudged.filter((u) => u.agent).map((u) => u.identity),
        ...[...writWorkloads].sort(),
      ],
      posture: postureOf(g),
      coverage: {
        window: s.window,
        events: this.events,
        eventsDenied: this.eventsDenied,
        toolCalls: this.calls.size,
        workloads: workloads(g).length,
        workloadsWithActivity: withActivity,
        files: this.files,
      },
    };
  }

  /**
   * One workload's findings, in order: its use (its identities' own, through writs, or inferred),
   * its effective grants expanded, category 2 (uses outside declared work, through the grant they
   * went through), then categories 1 and 3 over the rest of its grants.
   */
  private workloadFindings(
    s: ResultScope,
    w: GraphNode,
    p: ProviderPlugin,
  ): { findings: Finding[]; hasActivity: boolean } {
    const ids = identitiesOf(s.g, w.id);
    const agent = this.agentOf(s.g, w, ids);
    const { usages, sharedAttribution } = workloadUsages(s, this.activity, w, ids);
    // Use through writs' credentials: it needs the grant (cat. 1), but is judged per writ (cat. 2).
    const viaWrits = ids
      .flatMap((id) => s.writUse.get(id) ?? [])
      .filter((u) => u.event.outcome === "allowed");
    const inferred = usages.length === 0 && viaWrits.length === 0 ? (p.inferredUse?.(w, s.g) ?? []) : [];
    const hasActivity = usages.length > 0 || inferred.length > 0 || viaWrits.length > 0;
    const providerObserved =
      this.providersWithActivity.has(w.provider) || inferred.length > 0 || p.inferredUse !== undefined;
    // A binding made for another workload, which lists this one's identity as an extra subject,
    // is inherited (provisioned.ts), unless the agent's owner says it was made for this agent.
    const provisioned = provisionedFor(agent, this.opts.provisionedBindings ?? this.provisionedFromConfig);
    const paths = inheritExtraSubjects(effectiveGrants(s.g, w.id, s.use), s.madeFor, provisioned);
    const usedPerms = usedPermissions(usages, viaWrits, s.writJudged.outside, inferred);
    const matcher = agent ? s.matchers.get(agent) : undefined;
    if (agent && this.opts.declared && !matcher && !s.warnedAgents.has(agent)) {
      s.warnedAgents.add(agent);
      this.problems.push(
        problem(
          "WARN_AGENT_NOT_DECLARED",
          w.source ?? { file: "" },
          `agent \`${agent}\` (on ${w.id}) is not in writ.yaml: its use cannot be judged against declared work`,
          "warning",
        ),
      );
    }
    const candidates = grantCandidates(p, paths, usedPerms);
    // Category 2 first: observed use outside declared work, one finding per action and resource
    // used, each citing its own events. A grant such a use went through is not also category 1/3.
    const findings: Finding[] = [];
    const cat2Keys = new Set<string>();
    const judged = matcher ? this.judged.get(w.id) : undefined;
    if (judged)
      findings.push(
        ...this.unjustifiedOf(judged, usages, s.window, candidates, p, (c) =>
          cat2Keys.add(`${c.grant.action}\u0000${c.grant.resource}`),
        ),
      );
    const writs = {
      viaWrits,
      outside: s.writJudged.outside,
      needed: playbookRules(writPlaybooks(viaWrits), this.opts.declared),
    };
    const { cat1, cat3 } = sortCategories(candidates, cat2Keys, providerObserved, writs);
    const ctxBase = { workload: w, graph: s.g, used: usedPerms };
    const inferredOnly = usedPerms.length > 0 && usedPerms.every((u) => u.confidence < 1);
    if (cat1.length > 0) {
      const reduction = p.replacement({ ...ctxBase, excess: cat1.flatMap((c) => c.paths) });
      for (const c of cat1)
        findings.push(
          unusedFinding(w, agent, c, reduction, p, hasActivity, sharedAttribution || inferredOnly, s.window),
        );
    }
    if (cat3.length > 0) {
      const reduction = p.dedicatedIdentity({ ...ctxBase, excess: cat3.flatMap((c) => c.paths) });
      findings.push(...inheritedFindings(w, agent, cat3, reduction, p, hasActivity, s.madeFor, provisioned));
    }
    return { findings, hasActivity };
  }

  /**
   * Joins an agent's event to the tool call that caused it (the span's request ids, else the call
   * whose span contains it, ± the slack) and the untrusted read that tainted its prompt context.
   * Writ uses were joined by `finish`, which read those calls again.
   */
  private correlator(): (agent: string, e: ObservedEvent) => Correlated | undefined {
    const join = this.join();
    return (agent, e) => {
      const pre = this.writJoins?.get(e);
      const x =
        pre ??
        (() => {
          const j = join.joinIndex(agent, undefined, e);
          return j ? { call: j.index, taint: join.taintIndex(j.index) } : undefined;
        })();
      if (!x) return undefined;
      return {
        call: this.calls.call(x.call),
        taint: x.taint === undefined ? undefined : this.calls.call(x.taint),
      };
    };
  }

  /** The trace join (join.ts), built once the graph is linked. */
  private join(): TraceJoin {
    if (this.traceJoin) return this.traceJoin;
    const g = this.link();
    this.traceJoin = new TraceJoin(
      this.calls,
      g,
      this.pods ?? podResolver(g, this.objects),
      this.opts.correlationSlackMs ?? 2000,
    );
    return this.traceJoin;
  }

  /** The category-2 findings of one judged workload, each through the grant it went through. */
  private unjustifiedOf(
    judged: Judged,
    usages: readonly Usage[],
    window: ObservationWindow | undefined,
    candidates: readonly { grant: PermissionGrant; paths: readonly GrantPath[] }[],
    p: ProviderPlugin,
    through: (c: { grant: PermissionGrant }) => void = () => {},
  ): Finding[] {
    const out: Finding[] = [];
    const mid = window ? window.start + (window.end - window.start) / 2 : undefined;
    const early = new Set(usages.filter((u) => mid !== undefined && u.first < mid).map((u) => u.action));
    const total = usages.reduce((n, u) => n + u.count, 0);
    const countOf = new Map(usages.map((u) => [u.action, u.count]));
    for (const [action, a] of judged.byAction)
      for (const group of a.groups.values()) {
        const via = candidates.filter((c) => {
          const rule = compileCached(c.grant);
          return rule !== null && [...group.objects].some((r) => matchesUse(rule, action, r));
        });
        for (const c of via) through(c);
        // The path to cite: one of the workload's own if there is one.
        const path = via.flatMap((c) => c.paths).find((x) => !x.inherited) ?? via[0]?.paths[0];
        // Far from the learned baseline: never in the first half of the window, rare in all.
        const deviation =
          mid !== undefined && total >= 20 && !early.has(action) && (countOf.get(action) ?? 0) <= 2
            ? `far from the learned baseline: \`${action}\` never appeared in the first half of the window and only ${countOf.get(action)}× in all`
            : undefined;
        out.push(this.unjustified(judged.w, judged.agent, action, group, path, deviation, p));
      }
    return out;
  }

  /**
   * One category-2 finding: a workload's uses of one action on one resource (or, past
   * `CAT2_RESOURCES` distinct objects, a pattern) outside declared work, citing the use most
   * likely to be the injection (a tainted one first, else the first), then a bounded sample.
   */
  private unjustified(
    w: GraphNode,
    agent: string,
    action: string,
    group: Cat2Group,
    path: GrantPath | undefined,
    deviation: string | undefined,
    p: ProviderPlugin,
  ): Finding {
    const join = this.join();
    const resource = group.resource;
    const v = group.cited;
    const call = v.call === undefined ? undefined : this.calls.call(v.call);
    const taint = v.taint === undefined ? undefined : this.calls.call(v.taint);
    const evidence: EvidenceStep[] = [eventStep(v.event)];
    if (call) {
      const how = v.by ? join.describe({ index: v.call!, by: v.by }, v.event) : undefined;
      evidence.push({
        kind: "tool-call",
        ref: call.spanId,
        label: `tool call \`${call.tool}\` by \`${call.agent}\` at ${iso(call.start)}${call.arguments !== undefined ? ` with ${short(JSON.stringify(call.arguments))}` : ""}${how ? `; ${how}` : ""}`,
        source: call.source,
      });
      if (call.context)
        evidence.push({
          kind: "context",
          ref: call.context,
          label: `prompt context \`${call.context}\`${taint ? ` (tainted by \`${taint.tool}\` at ${iso(taint.start)})` : ""}`,
          source: taint?.source,
        });
      if (taint)
        evidence.push({
          kind: "tool-call",
          ref: taint.spanId,
          label: `untrusted retrieval \`${taint.tool}\` at ${iso(taint.start)}${taint.arguments !== undefined ? ` with ${short(JSON.stringify(taint.arguments))}` : ""}, earlier in the same conversation`,
          source: taint.source,
        });
    }
    const reasons: string[] = [];
    if (v.flags & OUTSIDE_GRANTS)
      reasons.push(
        `\`${action}\` on \`${v.event.resource}\` is in neither the baseline nor a playbook of \`${agent}\``,
      );
    if (call && v.flags & TOOL_UNDECLARED)
      reasons.push(`tool \`${call.tool}\` is not among the agent's declared tools`);
    if (call?.playbook && v.flags & PLAYBOOK_CLAIMED)
      reasons.push(`the call claims playbook \`${call.playbook}\`, whose grants do not cover it`);
    if (taint && call)
      reasons.push(
        `prompt context \`${call.context}\` read untrusted input earlier (tool \`${taint.tool}\`)`,
      );
    if (deviation) reasons.push(deviation);
    for (const r of reasons) evidence.push({ kind: "note", ref: "reason", label: r });
    if (group.count > 1) {
      const objects = group.objects.size + (group.moreObjects ? "+" : "");
      evidence.push({
        kind: "note",
        ref: "count",
        label: `${group.count} such use(s) of ${action} on ${resource} between ${iso(group.first)} and ${iso(group.last)}${resource !== v.event.resource ? ` on ${objects} distinct object(s)` : ""}${group.tainted > 0 ? `, ${group.tainted} after untrusted input` : ""}`,
      });
      // A bounded sample of the other uses, each citing its own event.
      for (const x of group.samples.filter((y) => y !== v).slice(0, CAT2_SAMPLES))
        evidence.push(eventStep(x.event));
    }
    if (path) evidence.push(...grantChain(path));
    else
      evidence.push({
        kind: "note",
        ref: "grant",
        label: "the grant that allowed it is not in the input (its binding or role was not exported)",
      });
    const tainted = group.tainted > 0;
    const severity = atLeast(p.risk(action, resource), tainted ? "high" : "medium");
    const sample = [v, ...group.samples.filter((x) => x !== v).slice(0, CAT2_SAMPLES)];
    const reduction: Reduction = guardrailFor(
      agent,
      { kind: "permission", action, resource },
      sample.map((x) => ({
        event: x.event,
        call: x.call === undefined ? undefined : this.calls.call(x.call),
        tainted: x.taint !== undefined,
      })),
    );
    return {
      kind: "finding",
      // The identity of the finding is its workload, action and the use it cites, not its folding:
      // a folded finding keeps the id its cited use's own finding has below the fold threshold.
      id: findingId(w.id, action, v.event.resource),
      category: "unjustified-use",
      severity,
      title: `${label(w)} (agent ${agent}) used ${action} on ${resource} outside its declared work${group.count > 1 ? ` (${group.count}×)` : ""}${tainted ? " after untrusted input" : ""}`,
      workload: { id: w.id, label: label(w), agent },
      permission: { action, resource },
      location: path?.grant.source ?? useLocation(w, v.event),
      evidence,
      reduction,
      misclassification:
        "if this were unused excess, removing the grant would also break the agent's legitimate uses of it and be rolled back; if inherited, a new identity would carry the same use along — the call itself must be stopped at the gateway",
      confidence: call ? 0.9 : 0.7,
    };
  }
}

/** What every workload's classification shares, built once per result. */
interface ResultScope {
  readonly g: GraphView;
  readonly pods: PodResolver;
  /** Identity → the workloads that use it. */
  readonly use: ReadonlyMap<string, readonly string[]>;
  readonly writUse: ReadonlyMap<string, readonly WritUse[]>;
  readonly writJudged: {
    readonly findings: readonly Finding[];
    readonly outside: ReadonlySet<ObservedEvent>;
  };
  readonly window: ObservationWindow | undefined;
  readonly matchers: ReadonlyMap<string, DeclaredMatcher>;
  /** Agents already warned about (not in writ.yaml). */
  readonly warnedAgents: Set<string>;
  readonly madeFor: ReturnType<typeof bindingsMadeFor>;
}

function writUseByPrincipal(uses: readonly WritUse[]): Map<string, WritUse[]> {
  const out = new Map<string, WritUse[]>();
  for (const u of uses)
    (out.get(u.event.principal) ?? out.set(u.event.principal, []).get(u.event.principal)!).push(u);
  return out;
}

/**
 * The workload's use: its identities' activity; when an identity is shared and events name the
 * pod, only this workload's pods count (else the attribution is shared, and said so).
 */
function workloadUsages(
  s: ResultScope,
  activity: ReadonlyMap<string, IdentityActivity>,
  w: GraphNode,
  ids: readonly string[],
): { usages: Usage[]; sharedAttribution: boolean } {
  const myPods = new Set((s.g.out.get(w.id) ?? []).filter((e) => e.type === "owns").map((e) => e.to));
  const usages: Usage[] = [];
  let sharedAttribution = false;
  for (const id of ids) {
    const a = activity.get(id);
    if (!a) continue;
    const sharers = s.use.get(id) ?? [];
    if (sharers.length > 1 && a.byPod.size > 0) {
      const mine = new Set<string>();
      for (const [pod, actions] of a.byPod)
        if (myPods.has(pod) || pod === w.id || s.pods(pod)?.workload === w.id)
          for (const x of actions) mine.add(x);
      for (const u of a.used.values()) if (mine.has(u.action)) usages.push(u);
    } else {
      if (sharers.length > 1) sharedAttribution = true;
      usages.push(...a.used.values());
    }
  }
  return { usages, sharedAttribution };
}

/**
 * What the workload used, each with its evidence: observed use; what writs did inside their
 * playbooks (what they did outside is their finding's — narrow the role —, never a reason to keep
 * the grant); and, without activity, what the provider infers it needs.
 */
function usedPermissions(
  usages: readonly Usage[],
  viaWrits: readonly WritUse[],
  outside: ReadonlySet<ObservedEvent>,
  inferred: readonly InferredUse[],
): UsedPermission[] {
  const usedPerms: UsedPermission[] = [];
  for (const u of usages)
    for (const [resource, count] of u.resources)
      usedPerms.push({
        action: u.action,
        resource,
        count,
        evidence: `observed ${count}× between ${iso(u.first)} and ${iso(u.last)}`,
        confidence: 1,
      });
  const byWrit = new Map<string, { action: string; resource: string; writs: Set<string>; count: number }>();
  for (const u of viaWrits) {
    if (outside.has(u.event)) continue;
    const k = `${u.event.action}\u0000${u.event.resource}`;
    const x =
      byWrit.get(k) ??
      byWrit
        .set(k, { action: u.event.action, resource: u.event.resource, writs: new Set(), count: 0 })
        .get(k)!;
    x.count++;
    x.writs.add(`${u.writ.id} (playbook ${u.writ.playbook})`);
  }
  for (const x of byWrit.values())
    usedPerms.push({
      action: x.action,
      resource: x.resource,
      count: x.count,
      evidence: `used ${x.count}× through writs' credentials: ${[...x.writs].slice(0, 3).join(", ")}${x.writs.size > 3 ? ", …" : ""}`,
      confidence: 1,
    });
  for (const i of inferred)
    usedPerms.push({ action: i.action, resource: i.resource, count: 0, evidence: i.reason, confidence: 0.6 });
  return usedPerms;
}

/** The agent and playbook of each writ whose credential the workload's identities carried. */
function writPlaybooks(viaWrits: readonly WritUse[]): Set<string> {
  return new Set(viaWrits.map((u) => `${u.writ.agent}\u0000${u.writ.playbook}`));
}

/** Each grant (wildcards expanded where the provider can enumerate them), its paths and the uses it covers. */
function grantCandidates(
  p: ProviderPlugin,
  paths: readonly GrantPath[],
  usedPerms: readonly UsedPermission[],
): GrantPathGroup[] {
  const byGrant = new Map<string, { grant: PermissionGrant; paths: GrantPath[] }>();
  for (const path of paths) {
    for (const grant of p.expand?.(path.grant) ?? [path.grant]) {
      const key = `${grant.action}\u0000${grant.resource}`;
      const entry = byGrant.get(key) ?? byGrant.set(key, { grant, paths: [] }).get(key)!;
      entry.paths.push({ ...path, grant });
    }
  }
  return [...byGrant.values()].map(({ grant, paths: gp }) => {
    const rule = compileCached(grant);
    return {
      grant,
      paths: gp,
      uses: rule ? usedPerms.filter((u) => matchesUse(rule, u.action, u.resource)) : [],
    };
  });
}

/**
 * Categories 1 and 3 over the grants category 2 did not take: inherited-only grants are category 3
 * (unless a role it can assume adds nothing to what it holds on paths of its own); its own unused
 * (or wildcard) grants category 1 — unless a playbook whose writs run on it needs them, or only
 * writs outside their playbooks used them (their finding), or the provider shows no activity at all.
 */
function sortCategories(
  candidates: readonly GrantPathGroup[],
  cat2Keys: ReadonlySet<string>,
  providerObserved: boolean,
  writs: {
    readonly viaWrits: readonly WritUse[];
    readonly outside: ReadonlySet<ObservedEvent>;
    readonly needed: ReturnType<typeof playbookRules>;
  },
): { cat1: GrantPathGroup[]; cat3: GrantPathGroup[] } {
  const cat1: GrantPathGroup[] = [];
  const cat3: GrantPathGroup[] = [];
  // What the workload holds on paths of its own: a role it can assume adds nothing inside it.
  const ownRules = candidates
    .filter((c) => c.paths.some((x) => !x.inherited))
    .map((c) => compileCached(c.grant))
    .filter((r): r is Rule => r !== null);
  for (const c of candidates) {
    if (cat2Keys.has(`${c.grant.action}\u0000${c.grant.resource}`)) continue;
    const own = c.paths.filter((x) => !x.inherited);
    const rule = compileCached(c.grant);
    if (own.length === 0) {
      const chainedOnly =
        rule &&
        c.paths.every((x) => x.edges.some((e) => e.type === "can-assume")) &&
        ownRules.some((o) => ruleContains(o, rule));
      if (!chainedOnly) cat3.push(c);
      continue;
    }
    if (!providerObserved) continue;
    const wildcard = /\*/.test(c.grant.action.split(":").slice(1).join(":"));
    // Unused, but inside a playbook whose writs run on this identity: declared work needs it.
    if (c.uses.length === 0 && rule && insideAny(writs.needed, rule)) continue;
    // Used only by writs outside their playbooks: reported once, as the writ's finding.
    if (
      c.uses.length === 0 &&
      rule &&
      writs.viaWrits.some(
        (u) => writs.outside.has(u.event) && matchesUse(rule, u.event.action, u.event.resource),
      )
    )
      continue;
    if (c.uses.length === 0 || wildcard) cat1.push({ grant: c.grant, paths: own, uses: c.uses });
  }
  return { cat1, cat3 };
}

function unusedFinding(
  w: GraphNode,
  agent: string | undefined,
  c: GrantPathGroup,
  reduction: Reduction,
  p: ProviderPlugin,
  hasActivity: boolean,
  shared: boolean,
  window: ObservationWindow | undefined,
): Finding {
  const partial = c.uses.length > 0;
  const evidence: EvidenceStep[] = [...grantChain(c.paths[0])];
  evidence.push({
    kind: "note",
    ref: "use",
    label: partial
      ? `wildcard grant used only for: ${[...new Set(c.uses.map((u) => `${u.action} on ${u.resource}`))].slice(0, 8).join("; ")}`
      : window
        ? `not exercised between ${iso(window.start)} and ${iso(window.end)}`
        : "not needed by any step (no activity data)",
  });
  return {
    kind: "finding",
    id: findingId(w.id, c.grant.action, c.grant.resource),
    category: "unused-excess",
    severity: p.risk(c.grant.action, c.grant.resource),
    title: partial
      ? `${label(w)} holds wildcard ${c.grant.action} on ${c.grant.resource} but uses a small part of it`
      : `${label(w)} holds ${c.grant.action} on ${c.grant.resource} and never used it`,
    workload: { id: w.id, label: label(w), agent },
    permission: { action: c.grant.action, resource: c.grant.resource },
    location: c.grant.source,
    evidence,
    reduction,
    misclassification:
      "if the permission is in fact used outside the observation window (a monthly job, a failover path), the scope-down breaks the workload and gets rolled back: check the window covers its full cycle",
    confidence: !hasActivity ? 0.4 : shared ? 0.6 : 0.9,
  };
}

function inheritedFinding(
  w: GraphNode,
  agent: string | undefined,
  holder: string,
  key: string,
  group: readonly GrantPathGroup[],
  reduction: Reduction,
  p: ProviderPlugin,
  hasActivity: boolean,
): Finding {
  const ranked = [...group].sort(
    (a, b) =>
      SEVERITY_RANK[p.risk(b.grant.action, b.grant.resource)] -
      SEVERITY_RANK[p.risk(a.grant.action, a.grant.resource)],
  );
  const top = ranked[0]!;
  const path = top.paths[0]!;
  const evidence = grantChain(path);
  evidence.push({ kind: "note", ref: "why", label: `inherited: ${path.why}` });
  evidence.push({
    kind: "note",
    ref: "grants",
    label: `${group.length} permission(s) come this way: ${ranked
      .slice(0, 6)
      .map((c) => c.grant.action)
      .join(", ")}${group.length > 6 ? ", …" : ""}`,
  });
  const used = group.flatMap((c) => c.uses);
  evidence.push({
    kind: "note",
    ref: "use",
    label:
      used.length > 0
        ? `of these it used: ${[...new Set(used.map((u) => `${u.action} on ${u.resource}`))].slice(0, 6).join("; ")}`
        : "it used none of them in the window",
  });
  const viaGroup = path.path.some((id) =>
    /^k8s:Group:system:(authenticated|unauthenticated|serviceaccounts)/.test(id),
  );
  return {
    kind: "finding",
    id: findingId(w.id, "inherited", key),
    category: "inherited-overreach",
    severity: atLeast(p.risk(top.grant.action, top.grant.resource), viaGroup ? "high" : "low"),
    title: `${label(w)} inherits ${group.length} permission(s) from ${nodeName(holder)}, up to ${top.grant.action} on ${top.grant.resource}`,
    workload: { id: w.id, label: label(w), agent },
    permission: { action: top.grant.action, resource: top.grant.resource },
    // Inherited from a default: the place to look is where the workload fails to set its own.
    location: path.edges.find((e) => e.type === "falls-back-to")?.source ?? top.grant.source,
    evidence,
    reduction,
    misclassification:
      "if treated as unused excess, the fix edits the shared binding and breaks every other workload that relies on it; if the agent's own role were narrowed instead, the inherited binding stays and the scope with it",
    confidence: hasActivity ? 0.9 : 0.8,
  };
}

/**
 * Category 3: one finding per inherited rule (a binding's rule, a workflow's scope line), not per
 * verb; an extra subject on a binding made for another gets the fix of taking it out of the binding.
 */
function inheritedFindings(
  w: GraphNode,
  agent: string | undefined,
  cat3: readonly GrantPathGroup[],
  reduction: Reduction,
  p: ProviderPlugin,
  hasActivity: boolean,
  madeFor: ReturnType<typeof bindingsMadeFor>,
  provisioned: (binding: string) => boolean,
): Finding[] {
  const byRule = new Map<string, { holder: string; group: GrantPathGroup[] }>();
  for (const c of cat3) {
    const holder = c.paths[0]!.path[c.paths[0]!.path.length - 1]!;
    const key = `${holder}\u0000${c.grant.source?.file ?? ""}:${c.grant.source?.line ?? ""}`;
    (byRule.get(key) ?? byRule.set(key, { holder, group: [] }).get(key)!).group.push(c);
  }
  const out: Finding[] = [];
  for (const [key, { holder, group }] of byRule) {
    const extra = group
      .flatMap((c) => c.paths)
      .filter((x) => x.path[x.path.length - 1] === holder)
      .map((x) => extraSubjectOf(x, madeFor, provisioned));
    const x = extra[0];
    const fix =
      x && extra.every((y) => y?.binding === x.binding)
        ? extraSubjectFix(x, [
            ...new Set(group.flatMap((c) => c.uses.map((u) => `${u.action} on ${u.resource}`))),
          ])
        : reduction;
    out.push(inheritedFinding(w, agent, holder, key, group, fix, p, hasActivity));
  }
  return out;
}

interface GrantPathGroup {
  readonly grant: PermissionGrant;
  readonly paths: readonly GrantPath[];
  readonly uses: readonly UsedPermission[];
}

const compiledRules = new Map<string, Rule | null>();
function compileCached(g: PermissionGrant): Rule | null {
  const key = `${g.action}\u0000${g.resource}`;
  let r = compiledRules.get(key);
  if (r === undefined) {
    try {
      r = compileRule({ action: g.action, resource: g.resource });
    } catch {
      r = null;
    }
    if (compiledRules.size < 10_000) compiledRules.set(key, r);
  }
  return r;
}

/**
 * Accounts of the control plane's own controllers (kube-controller-manager's `*-controller`,
 * `generic-garbage-collector`, kube-proxy, CoreDNS) in `kube-system`: always in an audit log,
 * rarely in an export, and not an agent's. Not reported as unjudged (docs/analyzer.md).
 */
function isControlPlaneAccount(namespace: string, name: string): boolean {
  return (
    namespace === "kube-system" &&
    (/-controller$/.test(name) || ["generic-garbage-collector", "kube-proxy", "coredns"].includes(name))
  );
}

/** Why a use is outside declared work (bits of `Verdict.flags`). */
const OUTSIDE_GRANTS = 1;
const TOOL_UNDECLARED = 2;
const PLAYBOOK_CLAIMED = 4;

/** Past this many distinct objects per workload and action, uses fold to a pattern (`ns/*`, then `*`). */
export const CAT2_RESOURCES = 10;
/** Uses cited per category-2 finding beside the first (each with its own event). */
const CAT2_SAMPLES = 4;
/** Distinct objects counted per finding (past it: `N+`). */
const CAT2_OBJECTS = 1000;

/** One use outside declared work; tool calls by index into the call store. */
interface Verdict {
  readonly event: ObservedEvent;
  readonly call: number | undefined;
  /** Which join tied the event to the call (join.ts). */
  readonly by: JoinKind | undefined;
  readonly taint: number | undefined;
  readonly flags: number;
}

/** A workload's uses of one action on one resource (or pattern) outside declared work. */
interface Cat2Group {
  readonly resource: string;
  count: number;
  tainted: number;
  first: number;
  last: number;
  /** The use cited first: the first tainted one, else the first. */
  cited: Verdict;
  readonly samples: Verdict[];
  readonly objects: Set<string>;
  moreObjects: boolean;
}

interface ActionGroups {
  /** 0: per object; 1: per namespace (`ns/*`); 2: one for all (`*`). */
  level: number;
  groups: Map<string, Cat2Group>;
}

interface Judged {
  readonly w: GraphNode;
  readonly agent: string;
  readonly m: DeclaredMatcher;
  readonly byAction: Map<string, ActionGroups>;
}

function foldResource(resource: string, level: number): string {
  if (level === 0) return resource;
  const slash = resource.indexOf("/");
  return level === 1 && slash > 0 ? `${resource.slice(0, slash)}/*` : "*";
}

function addVerdict(a: ActionGroups, key: string, v: Verdict): void {
  const e = v.event;
  let g = a.groups.get(key);
  if (!g) {
    g = {
      resource: key,
      count: 0,
      tainted: 0,
      first: e.at,
      last: e.at,
      cited: v,
      samples: [],
      objects: new Set(),
      moreObjects: false,
    };
    a.groups.set(key, g);
  }
  g.count++;
  if (v.taint !== undefined) g.tainted++;
  if (e.at < g.first) g.first = e.at;
  if (e.at > g.last) g.last = e.at;
  if (g.objects.size < CAT2_OBJECTS) g.objects.add(e.resource);
  else if (!g.objects.has(e.resource)) g.moreObjects = true;
  if (v.taint !== undefined && g.cited.taint === undefined) g.cited = v;
  if (
    g.samples.length < CAT2_SAMPLES + 1 &&
    (key === e.resource || !g.samples.some((x) => x.event.resource === e.resource))
  )
    g.samples.push(v);
}

/** Adds a group folded from a finer level into `key`. */
function mergeGroup(a: ActionGroups, key: string, from: Cat2Group): void {
  const g = a.groups.get(key);
  if (!g) {
    a.groups.set(key, { ...from, resource: key, samples: [...from.samples], objects: new Set(from.objects) });
    return;
  }
  g.count += from.count;
  g.tainted += from.tainted;
  g.first = Math.min(g.first, from.first);
  g.last = Math.max(g.last, from.last);
  for (const o of from.objects) if (g.objects.size < CAT2_OBJECTS) g.objects.add(o);
  g.moreObjects ||= from.moreObjects;
  const taintedFirst = (x: Verdict) => (x.taint !== undefined ? 0 : 1);
  if (
    taintedFirst(from.cited) < taintedFirst(g.cited) ||
    (taintedFirst(from.cited) === taintedFirst(g.cited) && from.cited.event.at < g.cited.event.at)
  )
    g.cited = from.cited;
  for (const x of from.samples)
    if (g.samples.length < CAT2_SAMPLES + 1 && !g.samples.some((y) => y.event.resource === x.event.resource))
      g.samples.push(x);
}

/**
 * Where to point at a use whose grant the input does not show: the workload's own definition (its
 * manifest, workflow job or policy document), else the log record where the use was seen.
 */
function useLocation(w: GraphNode, e: ObservedEvent): SourceRef | undefined {
  if (w.source && w.source.file !== "") return w.source;
  return e.source.file !== "" ? e.source : undefined;
}

function eventStep(e: ObservedEvent): EvidenceStep {
  return {
    kind: "event",
    ref: e.requestId ?? `${e.source.file}:${e.source.line ?? ""}`,
    label: `${iso(e.at)} ${e.principal}${e.via ? ` (${e.via.key})` : ""} ${e.action} ${e.resource} (${e.outcome})`,
    source: e.source,
  };
}

/**
 * Does a use exercise the grant? writ's `cover` matching, except that a GitHub use matches only a
 * grant of its own level: a `write` grant whose holder only ever reads is still excess.
 */
const parsedActions = new Map<string, ReturnType<typeof parseRequestAction>>();
function matchesUse(rule: Rule, action: string, resource: string): boolean {
  try {
    // Parsed once per distinct action (a large log repeats a few dozen).
    let parsed = parsedActions.get(action);
    if (!parsed) {
      parsed = parseRequestAction(action);
      if (parsedActions.size < 4096) parsedActions.set(action, parsed);
    }
    if (parsed.provider === "github" && !globMatches(rule.action.folded, parsed.action, true)) return false;
    return ruleMatches(rule, parsed, resource, "cover");
  } catch {
    return false;
  }
}

function atLeast(s: Severity, floor: Severity): Severity {
  return SEVERITY_RANK[s] >= SEVERITY_RANK[floor] ? s : floor;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function short(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export function label(n: GraphNode): string {
  return `${n.subtype} ${n.namespace ? `${n.namespace}/` : ""}${n.name}`;
}

function nodeName(id: string): string {
  return id.replace(/^[a-z0-9]+:/, "");
}

/** The evidence chain of a grant path: workload → identity → … → binding → the rule. */
export function grantChain(path: GrantPath | undefined): EvidenceStep[] {
  if (!path) return [];
  const out: EvidenceStep[] = [];
  path.path.forEach((id, i) => {
    if (i > 0) {
      const e = path.edges[i - 1]!;
      out.push({
        kind: "edge",
        ref: `${e.from}→${e.to}`,
        label: `${e.type}${e.note ? `: ${e.note}` : ""}`,
        source: e.source,
      });
    }
    out.push({ kind: "node", ref: id, label: nodeName(id) });
  });
  out.push({
    kind: "node",
    ref: "rule",
    label: `grants ${path.grant.action} on ${path.grant.resource}${path.grant.text ? ` (${path.grant.text})` : ""}`,
    source: path.grant.source,
  });
  return out;
}

export type { Category };
