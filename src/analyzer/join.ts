/**
 * Joining cluster and cloud events to the agent tool calls that caused them, and deciding which
 * calls read untrusted content.
 *
 * The join, strongest first (the evidence names the one used):
 *   1. `request id`: the span carries the event's request id (`k8s.audit_id`, `aws.request_id`, …);
 *   2. `pod`: the span's `k8s.pod.name` (and `k8s.namespace.name`) is the pod the event's bound
 *      token names, the event inside the span's time ± the slack;
 *   3. `workload`: the span's workload (`k8s.deployment.name`, `k8s.statefulset.name`,
 *      `k8s.daemonset.name`, `k8s.cronjob.name`, `k8s.job.name`, or its pod resolved to one) is the
 *      event's workload, in time;
 *   4. `namespace`: the span names only `k8s.namespace.name`, the workload's namespace, and is the
 *      agent's own call, in time;
 *   5. `agent`: the span names no Kubernetes resource; its agent is the workload's, in time.
 * A span whose resource attributes name a different pod, workload or namespace is never joined by
 * a weaker rule: a call in one replica did not cause another replica's request.
 *
 * Untrusted input: an agent's `untrustedInputs` in writ.yaml (tool globs, span-attribute
 * matchers) decide for its calls; a span with `writ.untrusted_source: true` is untrusted whatever
 * the config. Without `untrustedInputs`, a conservative default: that attribute, or a tool named
 * like a web fetch or search, an e-mail, ticket or issue read (docs/analyzer.md).
 */
import { type Glob, globMatches, parseGlob } from "../core/index.js";
import type { PodResolver } from "./agents.js";
import { type CallIndex, type CallSignature, CallStore } from "./calls.js";
import type {
  DeclaredWork,
  GraphNode,
  GraphView,
  ObservedEvent,
  ToolCall,
  UntrustedMatcher,
} from "./model.js";

const DEFAULT_UNTRUSTED_TOOL =
  /(^|[:_.-])(fetch|browse|web_search|search_web|http_get|read_email|get_email|read_inbox|get_ticket|read_ticket|read_issue|get_issue)($|[_.-])/i;

type Attrs = Readonly<Record<string, string | number | boolean>> | undefined;

/** The default when writ.yaml configures no `untrustedInputs` for the agent. */
export function defaultUntrusted(tool: string, attributes: Attrs): boolean {
  return attributes?.["writ.untrusted_source"] === true || DEFAULT_UNTRUSTED_TOOL.test(tool);
}

const globs = new Map<string, Glob | null>();
const glob = (p: string, s: string): boolean => {
  let g = globs.get(p);
  if (g === undefined) {
    try {
      g = parseGlob(p);
    } catch {
      g = null;
    }
    if (globs.size < 10_000) globs.set(p, g);
  }
  return g !== null && globMatches(g, s);
};

/** Does one configured matcher mark the call untrusted? */
export function untrustedBy(m: UntrustedMatcher, tool: string, attributes: Attrs): boolean {
  if (m.kind === "tool") {
    const i = m.tool.indexOf(":");
    const j = tool.indexOf(":");
    // A bare tool name in the span (no MCP server) is matched against the tool part alone.
    return j < 0 ? glob(m.tool.slice(i + 1), tool) : glob(m.tool, tool);
  }
  const v = attributes?.[m.key];
  if (v === undefined) return false;
  if (m.equals !== undefined) return v === m.equals;
  if (m.matches !== undefined) return typeof v === "string" && glob(m.matches, v);
  return v !== false && v !== "" && v !== "false";
}

/** The calls with `untrustedSource` decided by each agent's `untrustedInputs`, where configured. */
export function classifyUntrusted(
  calls: readonly ToolCall[],
  declared: ReadonlyMap<string, DeclaredWork> | undefined,
): ToolCall[] {
  return calls.map((c) => classifyCall(c, declared));
}

/** One call with `untrustedSource` decided by its agent's `untrustedInputs`, where configured. */
export function classifyCall(c: ToolCall, declared: ReadonlyMap<string, DeclaredWork> | undefined): ToolCall {
  const ms = declared?.get(c.agent)?.untrustedInputs;
  if (ms === undefined) return c;
  const untrusted =
    c.attributes?.["writ.untrusted_source"] === true || ms.some((m) => untrustedBy(m, c.tool, c.attributes));
  return untrusted === c.untrustedSource ? c : { ...c, untrustedSource: untrusted };
}

export type JoinKind = "request id" | "pod" | "workload" | "namespace" | "agent";
const RANK: Readonly<Record<JoinKind, number>> = {
  "request id": 5,
  pod: 4,
  workload: 3,
  namespace: 2,
  agent: 1,
};

export interface Joined {
  readonly call: ToolCall;
  readonly by: JoinKind;
  /** For evidence: `joined by pod \`ops/triage-bot-7d9f-x2x1z\` (k8s.pod.name) and time`. */
  readonly how: string;
}

/** A join by call index into the store (no call object made): what the streaming judge uses. */
export interface JoinedIndex {
  readonly index: number;
  readonly by: JoinKind;
}

interface Best {
  index: number;
  by: JoinKind;
  gap: number;
}

/** The join over every tool call of a scan; build once, ask per event. */
export class TraceJoin {
  readonly store: CallStore;

  constructor(
    calls: CallStore | readonly ToolCall[],
    private readonly g: GraphView,
    private readonly pods: PodResolver,
    private readonly slack: number,
  ) {
    if (calls instanceof CallStore) this.store = calls;
    else {
      this.store = new CallStore();
      for (const c of calls) this.store.add(c, true);
    }
  }

  /** The untrusted read the call (by index) follows in its conversation (the latest before it). */
  taintIndex(i: number): number | undefined {
    const s = this.store.signature(i);
    if (!s.context) return undefined;
    if (s.taints === undefined) s.taints = this.store.tainted(s.agent, s.context) ?? null;
    const list = s.taints;
    if (!list) return undefined;
    const start = this.store.start(i);
    let found: number | undefined;
    for (let k = 0; k < list.length; k++) {
      const t = list[k]!;
      if (t === i || this.store.start(t) > start) break;
      found = t;
    }
    return found;
  }

  /** The untrusted read the call follows in its conversation, if any (the call whole). */
  taintOf(i: number): ToolCall | undefined {
    const t = this.taintIndex(i);
    return t === undefined ? undefined : this.store.call(t);
  }

  /** As `joinIndex`, with the call whole and the join described for evidence. */
  join(agent: string, w: GraphNode | undefined, e: ObservedEvent): Joined | undefined {
    const j = this.joinIndex(agent, w, e);
    if (!j) return undefined;
    return { call: this.store.call(j.index), by: j.by, how: this.describe(j, e) };
  }

  /** How a join is cited: `joined by request id …`, `joined by pod … and time`, … */
  describe(j: JoinedIndex, e: ObservedEvent): string {
    return j.by === "request id"
      ? `joined by request id \`${e.requestId}\``
      : describe(j.by, this.store.signature(j.index));
  }

  /** The tool call that caused the event of `agent`'s workload `w` (undefined `w`: a writ's credential). */
  joinIndex(agent: string, w: GraphNode | undefined, e: ObservedEvent): JoinedIndex | undefined {
    const store = this.store;
    if (e.requestId)
      for (const c of store.byRequest(e.requestId)) {
        const by = store.signature(c).agent === agent ? "agent" : w ? this.level(c, agent, w, e) : undefined;
        if (by) return { index: c, by: "request id" };
      }
    // No closure per event: this runs once per judged event.
    const best: Best = { index: -1, by: "agent", gap: Number.POSITIVE_INFINITY };
    this.consider(store.byAgent(agent), agent, w, e, best);
    if (w?.namespace) this.consider(store.byNamespace(w.namespace), agent, w, e, best);
    return best.index < 0 ? undefined : { index: best.index, by: best.by };
  }

  /** The calls of `idx` around the event's time, keeping the best join in `best`. */
  private consider(
    idx: CallIndex | undefined,
    agent: string,
    w: GraphNode | undefined,
    e: ObservedEvent,
    best: Best,
  ): void {
    if (!idx) return;
    const store = this.store;
    const calls = idx.calls;
    const from = e.at - this.slack - idx.maxSpan;
    let lo = 0;
    let hi = calls.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (store.start(calls[mid]!) < from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < calls.length; k++) {
      const c = calls[k]!;
      const start = store.start(c);
      if (start - this.slack > e.at) break;
      const end = store.end(c);
      if (e.at > end + this.slack) continue;
      const by: JoinKind | undefined = w
        ? this.level(c, agent, w, e)
        : store.signature(c).agent === agent
          ? "agent"
          : undefined;
      if (!by) continue;
      const gap = e.at < start ? start - e.at : e.at > end ? e.at - end : 0;
      if (best.index < 0 || RANK[by] > RANK[best.by] || (RANK[by] === RANK[best.by] && gap < best.gap)) {
        best.index = c;
        best.by = by;
        best.gap = gap;
      }
    }
  }

  /** How the call can be joined to an event of workload `w`, or undefined: it cannot. */
  private level(i: number, agent: string, w: GraphNode, e: ObservedEvent): JoinKind | undefined {
    const s = this.store.signature(i);
    const r = s.runsIn;
    if (!r) return s.agent === agent ? "agent" : undefined;
    const ns = r.namespace ?? w.namespace;
    if (ns && s.cacheNs !== ns) {
      // Computed once per signature (and namespace), not per event.
      s.cacheNs = ns;
      s.podId = r.pod ? `k8s:Pod:${ns}/${r.pod}` : undefined;
      s.workloadId = undefined;
      if (r.workload) {
        let id = `k8s:${r.workload.kind}:${ns}/${r.workload.name}`;
        if (r.workload.kind === "Job" && !this.g.nodes.has(id)) {
          const cron = /^(.+)-\d{6,}$/.exec(r.workload.name)?.[1];
          if (cron) id = `k8s:CronJob:${ns}/${cron}`;
        }
        s.workloadId = id;
      }
    }
    if (r.pod && ns) {
      const pod = s.podId!;
      if (e.pod) return e.pod === pod ? "pod" : undefined;
      const owner = this.pods(pod)?.workload;
      if (owner) return owner === w.id ? "workload" : undefined;
    }
    if (r.workload && ns) return s.workloadId === w.id ? "workload" : undefined;
    // Only a namespace: the agent's own calls, in the workload's namespace.
    if (r.namespace) return r.namespace === w.namespace && s.agent === agent ? "namespace" : undefined;
    return s.agent === agent ? "agent" : undefined;
  }
}

function describe(by: JoinKind, c: CallSignature): string {
  const r = c.runsIn;
  switch (by) {
    case "pod":
      return `joined by pod \`${r?.namespace ? `${r.namespace}/` : ""}${r?.pod}\` (k8s.pod.name) and time`;
    case "workload":
      return r?.workload
        ? `joined by workload \`${r.workload.kind} ${r.workload.name}\` (k8s.${r.workload.kind.toLowerCase()}.name) and time`
        : `joined by workload (pod \`${r?.pod}\` resolved to it) and time`;
    case "namespace":
      return `joined by namespace \`${r?.namespace}\` (k8s.namespace.name) and time`;
    default:
      return `joined by agent \`${c.agent}\` and time (the span names no Kubernetes resource)`;
  }
}
