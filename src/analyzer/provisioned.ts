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
import type { GraphView, ProviderObject, Reduction, RemediationFile } from "./model.js";

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

/** A path's step into a binding made for another subject than the one it comes from. */
export interface ExtraSubject {
  readonly binding: string;
  readonly subject: string;
  /** `subjects[i]`, the subject's place in the binding. */
  readonly at: string;
  readonly madeFor: MadeFor;
}

/** Where a grant path enters a binding as an extra subject (and the owner does not claim it). */
export function extraSubjectOf(
  p: GrantPath,
  madeFor: ReadonlyMap<string, MadeFor>,
  provisioned: (binding: string) => boolean,
): ExtraSubject | undefined {
  for (const e of p.edges) {
    // A group's membership is inherited for its own reason (graph.ts), not as an extra subject.
    if (e.type !== "bound-by" || e.from.startsWith("k8s:Group:")) continue;
    const m = madeFor.get(e.to);
    if (!m || m.subject === e.from || provisioned(e.to)) continue;
    return { binding: e.to, subject: e.from, at: (e.note ?? "").split(" ")[0] ?? "", madeFor: m };
  }
  return undefined;
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
    const x = extraSubjectOf(p, madeFor, provisioned);
    if (!x) return p;
    return {
      ...p,
      inherited: true,
      why: `\`${display(x.binding)}\` was made for \`${display(x.madeFor.subject)}\` (${x.madeFor.why}); \`${display(x.subject)}\` is an extra subject${x.at ? ` (${x.at})` : ""}`,
    };
  });
}

/**
 * The fix for an extra subject: take it out of the binding (guarded by a JSON-patch `test` of the
 * subject's place), after giving the workload a Role of its own for what it used through it.
 */
export function extraSubjectFix(x: ExtraSubject, usedThrough: readonly string[]): Reduction {
  const m = /^k8s:(RoleBinding|ClusterRoleBinding):(?:([^/]+)\/)?(.+)$/.exec(x.binding);
  const sa = /^k8s:ServiceAccount:([^/]+)\/(.+)$/.exec(x.subject);
  const index = /^subjects\[(\d+)\]$/.exec(x.at)?.[1];
  const files: RemediationFile[] = [];
  if (m && index !== undefined) {
    const [, kind, ns, name] = m as unknown as [string, string, string | undefined, string];
    const ops = [
      ...(sa ? [{ op: "test", path: `/subjects/${index}/name`, value: sa[2] }] : []),
      { op: "remove", path: `/subjects/${index}` },
    ];
    files.push({
      path: `${ns ? `${ns}-` : ""}${name}-remove-subject.sh`,
      language: "text",
      content: `kubectl patch ${kind.toLowerCase()} ${name}${ns ? ` -n ${ns}` : ""} --type=json -p '${JSON.stringify(ops)}'\n`,
    });
  }
  return {
    kind: "remove-extra-subject",
    summary: `take \`${display(x.subject)}\` out of the subjects of \`${display(x.binding)}\`, which was made for \`${display(x.madeFor.subject)}\` and stays as it is for it${
      usedThrough.length > 0
        ? `; first give the workload a Role of its own for what it used through it: ${usedThrough.slice(0, 6).join("; ")}${usedThrough.length > 6 ? "; …" : ""}`
        : " (the workload used none of its permissions)"
    }`,
    files,
  };
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
