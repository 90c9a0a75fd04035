/**
 * Agents tied to what runs, from writ.yaml: an agent's `workloads` (kind/namespace/name globs),
 * `serviceAccounts` (`namespace/name` globs) and `cloudIdentities` (role ARNs, GCP service-account
 * e-mails) set the agent on the matching graph nodes, so declared work applies to exports that
 * carry no `writ.dev/agent` annotation. The annotation still ties when writ.yaml says nothing; when
 * both name an agent and disagree, writ.yaml wins, with a warning.
 *
 * Also: which workload a pod name belongs to when the pod itself is not in the export (a
 * Deployment's older ReplicaSets after a rollout, a CronJob's Jobs that are gone), from the
 * ReplicaSet and Job objects that are, else from the names Kubernetes' controllers give pods.
 */
import { type Glob, globMatches, parseGlob } from "../core/index.js";
import { problem } from "./input.js";
import type { DeclaredWork, GraphEdge, GraphNode, GraphView, InputProblem, ProviderObject } from "./model.js";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

const globs = new Map<string, Glob | null>();
const matches = (pattern: string, s: string | undefined): boolean => {
  if (s === undefined) return false;
  let g = globs.get(pattern);
  if (g === undefined) {
    try {
      g = parseGlob(pattern);
    } catch {
      g = null;
    }
    if (globs.size < 10_000) globs.set(pattern, g);
  }
  return g !== null && globMatches(g, s);
};

export interface Tie {
  readonly agent: string;
  /** `writ.yaml agents.x.workloads[0] (Deployment ops/triage-*)` */
  readonly why: string;
}

/**
 * The nodes with their agent set from writ.yaml. Workloads are matched by kind, namespace and
 * name; a `Pod`, `ReplicaSet` or `Job` entry also ties the workload that owns the matching pod
 * (or whose ReplicaSet or Job it is); identities by service account or cloud identity.
 */
export function tieAgents(
  nodes: readonly GraphNode[],
  edges: readonly GraphEdge[],
  declared: ReadonlyMap<string, DeclaredWork> | undefined,
): { nodes: GraphNode[]; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  if (!declared || ![...declared.values()].some(hasTies)) return { nodes: [...nodes], problems };
  const ties = new Map<string, Tie[]>();
  const used = new Set<string>();
  const tie = (id: string, t: Tie, entry: string) => {
    used.add(entry);
    const list = ties.get(id) ?? ties.set(id, []).get(id)!;
    if (!list.some((x) => x.agent === t.agent)) list.push(t);
  };
  const ownerOfPod = new Map<string, GraphEdge>();
  for (const e of edges) if (e.type === "owns") ownerOfPod.set(e.to, e);
  for (const [agent, work] of declared) {
    (work.workloads ?? []).forEach((w, i) => {
      const entry = `${agent}\u0000workloads\u0000${i}`;
      const why = `writ.yaml agents.${agent}.workloads[${i}] (${w.kind} ${w.namespace}/${w.name})`;
      for (const n of nodes) {
        if (n.provider !== "k8s" || !matches(w.namespace, n.namespace)) continue;
        if (n.type === "workload" && matches(w.kind, n.subtype) && matches(w.name, n.name))
          tie(n.id, { agent, why }, entry);
        else if (n.type === "pod") {
          const owns = ownerOfPod.get(n.id);
          if (!owns) continue;
          const owner = owns.from;
          // The pod itself, or the ReplicaSet / Job its owner reference names.
          const m = owns.note ? /^ownerReferences (\w+)\/(\S+)$/.exec(owns.note) : null;
          if (
            (matches(w.kind, "Pod") && matches(w.name, n.name)) ||
            (m && matches(w.kind, m[1]) && matches(w.name, m[2]))
          )
            tie(owner, { agent, why }, entry);
        }
      }
    });
    (work.serviceAccounts ?? []).forEach((sa, i) => {
      const entry = `${agent}\u0000serviceAccounts\u0000${i}`;
      const [ns, name] = sa.split("/") as [string, string];
      for (const n of nodes)
        if (n.subtype === "ServiceAccount" && matches(ns, n.namespace) && matches(name, n.name))
          tie(n.id, { agent, why: `writ.yaml agents.${agent}.serviceAccounts[${i}] (${sa})` }, entry);
    });
    (work.cloudIdentities ?? []).forEach((c, i) => {
      const entry = `${agent}\u0000cloudIdentities\u0000${i}`;
      for (const n of nodes)
        if (n.type === "identity" && (n.id === `aws:role:${c}` || n.id === `gcp:serviceAccount:${c}`))
          tie(n.id, { agent, why: `writ.yaml agents.${agent}.cloudIdentities[${i}] (${c})` }, entry);
    });
  }
  const hasK8s = nodes.some((n) => n.provider === "k8s" && (n.type === "workload" || n.type === "identity"));
  for (const [agent, work] of declared) {
    const check = (what: "workloads" | "serviceAccounts", list: readonly unknown[] | undefined) =>
      (list ?? []).forEach((x, i) => {
        if (!hasK8s || used.has(`${agent}\u0000${what}\u0000${i}`)) return;
        const text =
          typeof x === "string" ? x : `${(x as Obj).kind} ${(x as Obj).namespace}/${(x as Obj).name}`;
        problems.push(
          problem(
            "WARN_AGENT_TIE_UNMATCHED",
            { file: "writ.yaml" },
            `agents.${agent}.${what}[${i}] (${text}) matches nothing in the input`,
            "warning",
          ),
        );
      });
    check("workloads", work.workloads);
    check("serviceAccounts", work.serviceAccounts);
  }
  const out = nodes.map((n) => {
    const t = ties.get(n.id);
    if (!t) return n;
    if (t.length > 1) {
      problems.push(
        problem(
          "WARN_AGENT_TIE_AMBIGUOUS",
          n.source ?? { file: "writ.yaml" },
          `${n.id} is tied to ${t.length} agents (${t.map((x) => `\`${x.agent}\` by ${x.why}`).join("; ")}): tied to none`,
          "warning",
        ),
      );
      return n;
    }
    const only = t[0]!;
    if (n.agent && n.agent !== only.agent)
      problems.push(
        problem(
          "WARN_AGENT_TIE_CONFLICT",
          n.source ?? { file: "writ.yaml" },
          `${n.id} is annotated \`writ.dev/agent: ${n.agent}\` but ${only.why} ties it to \`${only.agent}\`: writ.yaml wins`,
          "warning",
        ),
      );
    return { ...n, agent: only.agent, attrs: { ...n.attrs, agentTie: only.why } };
  });
  return { nodes: out, problems };
}

/**
 * The agents whose writ.yaml `serviceAccounts` name the account `namespace/name`: for an account
 * seen only in an audit log (no manifest of it was exported), where `tieAgents` has no node to tie.
 */
export function agentsOfServiceAccount(
  declared: ReadonlyMap<string, DeclaredWork> | undefined,
  namespace: string,
  name: string,
): Tie[] {
  const out: Tie[] = [];
  for (const [agent, work] of declared ?? [])
    (work.serviceAccounts ?? []).forEach((sa, i) => {
      const [ns, n] = sa.split("/") as [string, string];
      if (matches(ns, namespace) && matches(n, name) && !out.some((t) => t.agent === agent))
        out.push({ agent, why: `writ.yaml agents.${agent}.serviceAccounts[${i}] (${sa})` });
    });
  return out;
}

function hasTies(w: DeclaredWork): boolean {
  return (w.workloads?.length ?? 0) + (w.serviceAccounts?.length ?? 0) + (w.cloudIdentities?.length ?? 0) > 0;
}

/** Which workload a pod (`k8s:Pod:ns/name`) belongs to, and how that was found. */
export type PodResolver = (pod: string) => { readonly workload: string; readonly how: string } | undefined;

/**
 * Resolves pods to workloads: an `owns` edge (the pod is in the export); else the ReplicaSet or
 * Job the pod's name continues (`<replicaset>-<5 chars>`, `<job>-<5 chars>`) when that object is in
 * the export; else the controllers' naming: `<deployment>-<template hash>-<5 chars>`,
 * `<cronjob>-<scheduled minute>-<5 chars>`, `<daemonset>-<5 chars>`, `<statefulset>-<ordinal>`,
 * `<job>-<5 chars>` — only to a workload of that exact name in the pod's namespace, never a prefix.
 */
export function podResolver(g: GraphView, objects: readonly ProviderObject[]): PodResolver {
  const owned = new Map<string, string>();
  for (const edges of g.out.values()) for (const e of edges) if (e.type === "owns") owned.set(e.to, e.from);
  const parents = new Map<string, string>(); // `ns/replicaset-or-job` → workload id
  for (const o of objects) {
    if (o.provider !== "k8s" || (o.type !== "ReplicaSet" && o.type !== "Job") || !isObject(o.value)) continue;
    const m = isObject(o.value.metadata) ? o.value.metadata : {};
    const ns = str(m.namespace) ?? "default";
    const refs = (Array.isArray(m.ownerReferences) ? m.ownerReferences : []).filter(isObject);
    const ref = refs.find((r) => r.controller === true) ?? refs[0];
    const id = ref && str(ref.kind) && str(ref.name) ? `k8s:${ref.kind}:${ns}/${ref.name}` : undefined;
    const self = `k8s:${o.type}:${ns}/${str(m.name) ?? ""}`;
    const target = id && g.nodes.has(id) ? id : g.nodes.has(self) ? self : undefined;
    if (target) parents.set(`${ns}/${str(m.name) ?? ""}`, target);
  }
  const has = (kind: string, ns: string, name: string | undefined) =>
    name !== undefined && g.nodes.get(`k8s:${kind}:${ns}/${name}`)?.type === "workload"
      ? `k8s:${kind}:${ns}/${name}`
      : undefined;
  return (pod) => {
    const direct = owned.get(pod);
    if (direct) return { workload: direct, how: "the pod's owner reference" };
    const m = /^k8s:Pod:([^/]+)\/(.+)$/.exec(pod);
    if (!m) return undefined;
    const [, ns, name] = m as unknown as [string, string, string];
    if (g.nodes.get(pod)?.type === "workload") return { workload: pod, how: "a bare pod" };
    const base = /^(.+)-[a-z0-9]{5}$/.exec(name)?.[1];
    if (base && parents.has(`${ns}/${base}`))
      return {
        workload: parents.get(`${ns}/${base}`)!,
        how: `its name continues ReplicaSet or Job \`${base}\``,
      };
    const dep = base ? /^(.+)-[a-z0-9]{6,10}$/.exec(base)?.[1] : undefined;
    const cron = base ? /^(.+)-\d{6,}$/.exec(base)?.[1] : undefined;
    const sts = /^(.+)-\d+$/.exec(name)?.[1];
    const found =
      (has("Deployment", ns, dep) && {
        id: has("Deployment", ns, dep)!,
        how: "`<deployment>-<hash>-<id>`",
      }) ||
      (has("CronJob", ns, cron) && { id: has("CronJob", ns, cron)!, how: "`<cronjob>-<minute>-<id>`" }) ||
      (has("DaemonSet", ns, base) && { id: has("DaemonSet", ns, base)!, how: "`<daemonset>-<id>`" }) ||
      (has("Job", ns, base) && { id: has("Job", ns, base)!, how: "`<job>-<id>`" }) ||
      (has("StatefulSet", ns, sts) && { id: has("StatefulSet", ns, sts)!, how: "`<statefulset>-<ordinal>`" });
    return found ? { workload: found.id, how: `the pod's name ${found.how}` } : undefined;
  };
}
