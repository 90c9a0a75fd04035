/**
 * Who a binding was made for. A binding that lists several subjects was usually made for one of
 * them, the others added later: a cluster-wide binding made for an ingest job with an agent's
 * ServiceAccount appended to its subjects. What the agent gets that way is inherited (category 3),
 * not its own (category 1): narrowing that binding's role for the agent would break the workload
 * it was made for. Real exports carry no statement of intent, so it is decided from evidence in
 * the export, strongest first:
 *   1. labels — the binding's `app.kubernetes.io/name`, `app.kubernetes.io/instance`, `app` or
 *      `k8s-app` equal to the name (or the same label) of exactly one subject's workload or to the
 *      subject's own name;
 *   2. name — the binding's name contains, on `-`/`:`/`.` boundaries, the name of a subject, of its
 *      workload or of its ServiceAccount; the longest such match decides, a tie decides nothing;
 *   3. order — else the first subject (`subjects[0]`): subjects are appended to, and the first is
 *      the one the binding was written for.
 * A binding with one subject is that subject's. The agent's owner overrides all of this by listing
 * the binding in `provisionedBindings` (writ.yaml): then it is the agent's own.
 */
import { type GrantPath, identitiesOf, workloads } from "./graph.js";
import type { GraphView, ProviderObject } from "./model.js";

export interface MadeFor {
  /** The subject node the binding was made for. */
  readonly subject: string;
  /** The evidence, for the finding. */
  readonly why: string;
}

const APP_LABELS = ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app", "k8s-app"];
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "Pod"]);

/** For every binding with more than one subject: the subject it was made for, and why. */
export function bindingsMadeFor(g: GraphView, objects: readonly ProviderObject[]): Map<string, MadeFor> {
  const out = new Map<string, MadeFor>();
  // Labels of bindings and workloads, from the raw objects (Kubernetes only).
  const bindingLabels = new Map<string, Record<string, string>>();
  const workloadLabels = new Map<string, Set<string>>();
  for (const o of objects) {
    if (o.provider !== "k8s") continue;
    const meta = (o.value as { metadata?: Record<string, unknown> } | null)?.metadata;
    const name = typeof meta?.name === "string" ? meta.name : undefined;
    if (!name) continue;
    const ns = typeof meta?.namespace === "string" ? meta.namespace : "default";
    const labels = strings(meta?.labels);
    if (o.type === "RoleBinding") bindingLabels.set(`k8s:RoleBinding:${ns}/${name}`, labels);
    else if (o.type === "ClusterRoleBinding") bindingLabels.set(`k8s:ClusterRoleBinding:${name}`, labels);
    else if (WORKLOAD_KINDS.has(o.type)) {
      const spec = (o.value as { spec?: { template?: { metadata?: { labels?: unknown } } } }).spec;
      const all = { ...strings(spec?.template?.metadata?.labels), ...labels };
      workloadLabels.set(
        `k8s:${o.type}:${ns}/${name}`,
        new Set(APP_LABELS.map((k) => all[k]).filter((v): v is string => v !== undefined)),
      );
    }
  }
  // What each identity is called: its name, its workloads' names and app labels.
  const namesOf = new Map<string, Set<string>>();
  const add = (id: string, n: string | undefined) => {
    if (n) (namesOf.get(id) ?? namesOf.set(id, new Set()).get(id)!).add(n);
  };
  for (const w of workloads(g))
    for (const id of identitiesOf(g, w.id)) {
      add(id, w.name);
      for (const l of workloadLabels.get(w.id) ?? []) add(id, l);
    }
  for (const n of g.nodes.values()) {
    // Kubernetes bindings only: an IAM policy attached to several roles is not "made for" one of them.
    if (n.type !== "binding" || (n.subtype !== "RoleBinding" && n.subtype !== "ClusterRoleBinding")) continue;
    const subjects = (g.in.get(n.id) ?? [])
      .filter((e) => e.type === "bound-by")
      .map((e) => ({ id: e.from, index: subjectIndex(e.note) }))
      .sort((a, b) => a.index - b.index);
    if (subjects.length < 2) continue;
    const names = (s: string) =>
      new Set([g.nodes.get(s)?.name ?? "", ...(namesOf.get(s) ?? [])].filter(Boolean));
    // 1. labels
    const labels = Object.entries(bindingLabels.get(n.id) ?? {}).filter(([k]) => APP_LABELS.includes(k));
    const byLabel = subjects.filter((s) => labels.some(([, v]) => names(s.id).has(v)));
    if (byLabel.length === 1) {
      const [k, v] = labels.find(([, v]) => names(byLabel[0]!.id).has(v))!;
      out.set(n.id, { subject: byLabel[0]!.id, why: `its label \`${k}: ${v}\` names it` });
      continue;
    }
    // 2. name
    const scored = subjects.map((s) => {
      let best = "";
      for (const x of names(s.id)) if (x.length > best.length && tokenMatch(n.name, x)) best = x;
      return { s, best };
    });
    const top = Math.max(...scored.map((x) => x.best.length));
    const winners = scored.filter((x) => x.best.length === top);
    if (top > 0 && winners.length === 1) {
      out.set(n.id, {
        subject: winners[0]!.s.id,
        why: `its name \`${n.name}\` names \`${winners[0]!.best}\``,
      });
      continue;
    }
    // 3. order
    out.set(n.id, {
      subject: subjects[0]!.id,
      why: `nothing in its name or labels names a subject, and \`${display(subjects[0]!.id)}\` is its first subject`,
    });
  }
  return out;
}

/**
 * The workload's grant paths, with those through a binding made for another subject marked
 * inherited (unless the binding is among the agent's provisioned ones).
 */
export function inheritExtraSubjects(
  paths: readonly GrantPath[],
  madeFor: ReadonlyMap<string, MadeFor>,
  provisioned: (binding: string) => boolean,
): GrantPath[] {
  return paths.map((p) => {
    if (p.inherited) return p;
    for (const e of p.edges) {
      if (e.type !== "bound-by") continue;
      const m = madeFor.get(e.to);
      if (!m || m.subject === e.from || provisioned(e.to)) continue;
      return {
        ...p,
        inherited: true,
        why: `\`${display(e.to)}\` was made for \`${display(m.subject)}\` (${m.why}); \`${display(e.from)}\` is an extra subject${e.note ? ` (${e.note.split(" ")[0]})` : ""}`,
      };
    }
    return p;
  });
}

/** Does the agent's owner list this binding (node id) in `provisionedBindings`? */
export function provisionedFor(
  agent: string | undefined,
  byAgent: ReadonlyMap<string, readonly string[]> | undefined,
): (binding: string) => boolean {
  const listed = agent ? byAgent?.get(agent) : undefined;
  if (!listed || listed.length === 0) return () => false;
  const set = new Set(listed);
  return (id) => spellings(id).some((x) => set.has(x));
}

/** The ways an owner may name a binding: its node id, `Kind/name`, `Kind/ns/name`, `ns/name`. */
export function spellings(id: string): string[] {
  const m = /^k8s:(RoleBinding|ClusterRoleBinding):(.+)$/.exec(id);
  if (!m) return [id];
  const [, kind, rest] = m as unknown as [string, string, string];
  return [id, `${kind}/${rest}`, ...(kind === "RoleBinding" ? [rest] : [])];
}

function subjectIndex(note: string | undefined): number {
  const m = /^subjects\[(\d+)\]/.exec(note ?? "");
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

function tokenMatch(bindingName: string, name: string): boolean {
  if (bindingName === name) return true;
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[-:.])${esc}($|[-:.])`).test(bindingName);
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === "object" && !Array.isArray(v))
    for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return out;
}

function display(id: string): string {
  return id.replace(/^k8s:/, "").replace(/^[a-z0-9]+:/, "");
}
