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
  if (!declared) return [...calls];
  return calls.map((c) => {
    const ms = declared.get(c.agent)?.untrustedInputs;
    if (ms === undefined) return c;
    const untrusted =
      c.attributes?.["writ.untrusted_source"] === true ||
      ms.some((m) => untrustedBy(m, c.tool, c.attributes));
    return untrusted === c.untrustedSource ? c : { ...c, untrustedSource: untrusted };
  });
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

interface Indexed {
  readonly calls: ToolCall[];
  maxSpan: number;
}

/** The join over every tool call of a scan; build once, ask per event. */
export class TraceJoin {
  private readonly byAgent = new Map<string, Indexed>();
  private readonly byNamespace = new Map<string, Indexed>();
  private readonly byRequest = new Map<string, ToolCall[]>();
  /** Untrusted reads per (agent, conversation), in time order. */
  private readonly tainted = new Map<string, ToolCall[]>();

  constructor(
    calls: readonly ToolCall[],
    private readonly g: GraphView,
    private readonly pods: PodResolver,
    private readonly slack: number,
  ) {
    const add = (m: Map<string, Indexed>, k: string, c: ToolCall) => {
      const x = m.get(k) ?? m.set(k, { calls: [], maxSpan: 0 }).get(k)!;
      x.calls.push(c);
      x.maxSpan = Math.max(x.maxSpan, c.end - c.start);
    };
    const sorted = [...calls].sort((a, b) => a.start - b.start);
    for (const c of sorted) {
      add(this.byAgent, c.agent, c);
      if (c.runsIn?.namespace) add(this.byNamespace, c.runsIn.namespace, c);
      for (const r of c.requestIds) (this.byRequest.get(r) ?? this.byRequest.set(r, []).get(r)!).push(c);
      const key = `${c.agent}\u0000${c.context}`;
      if (c.untrustedSource && c.context)
        (this.tainted.get(key) ?? this.tainted.set(key, []).get(key)!).push(c);
    }
  }

  /** The untrusted read the call follows in its conversation (the latest before it), if any. */
  taintOf(call: ToolCall): ToolCall | undefined {
    if (!call.context) return undefined;
    let found: ToolCall | undefined;
    for (const t of this.tainted.get(`${call.agent}\u0000${call.context}`) ?? []) {
      if (t === call || t.start > call.start) break;
      found = t;
    }
    return found;
  }

  /** The tool call that caused the event of `agent`'s workload `w` (undefined `w`: a writ's credential). */
  join(agent: string, w: GraphNode | undefined, e: ObservedEvent): Joined | undefined {
    let best: Joined | undefined;
    let bestGap = Number.POSITIVE_INFINITY;
    if (e.requestId)
      for (const c of this.byRequest.get(e.requestId) ?? []) {
        const by = c.agent === agent ? "agent" : w ? this.level(c, agent, w, e) : undefined;
        if (by) return { call: c, by: "request id", how: `joined by request id \`${e.requestId}\`` };
      }
    const consider = (idx: Indexed | undefined) => {
      if (!idx) return;
      const from = e.at - this.slack - idx.maxSpan;
      let lo = 0;
      let hi = idx.calls.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (idx.calls[mid]!.start < from) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < idx.calls.length; i++) {
        const c: ToolCall = idx.calls[i]!;
        if (c.start - this.slack > e.at) break;
        if (e.at > c.end + this.slack) continue;
        const by: JoinKind | undefined = w
          ? this.level(c, agent, w, e)
          : c.agent === agent
            ? "agent"
            : undefined;
        if (!by) continue;
        const gap = e.at < c.start ? c.start - e.at : e.at > c.end ? e.at - c.end : 0;
        if (!best || RANK[by] > RANK[best.by] || (RANK[by] === RANK[best.by] && gap < bestGap)) {
          best = { call: c, by, how: describe(by, c) };
          bestGap = gap;
        }
      }
    };
    consider(this.byAgent.get(agent));
    if (w?.namespace) consider(this.byNamespace.get(w.namespace));
    return best;
  }

  /** How the call can be joined to an event of workload `w`, or undefined: it cannot. */
  private level(c: ToolCall, agent: string, w: GraphNode, e: ObservedEvent): JoinKind | undefined {
    const r = c.runsIn;
    if (!r) return c.agent === agent ? "agent" : undefined;
    const ns = r.namespace ?? w.namespace;
    if (r.pod && ns) {
      const pod = `k8s:Pod:${ns}/${r.pod}`;
      if (e.pod) return e.pod === pod ? "pod" : undefined;
      const owner = this.pods(pod)?.workload;
      if (owner) return owner === w.id ? "workload" : undefined;
    }
    if (r.workload && ns) {
      let id = `k8s:${r.workload.kind}:${ns}/${r.workload.name}`;
      if (r.workload.kind === "Job" && !this.g.nodes.has(id)) {
        const cron = /^(.+)-\d{6,}$/.exec(r.workload.name)?.[1];
        if (cron) id = `k8s:CronJob:${ns}/${cron}`;
      }
      return id === w.id ? "workload" : undefined;
    }
    // Only a namespace: the agent's own calls, in the workload's namespace.
    if (r.namespace) return r.namespace === w.namespace && c.agent === agent ? "namespace" : undefined;
    return c.agent === agent ? "agent" : undefined;
  }
}

function describe(by: JoinKind, c: ToolCall): string {
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
