/**
 * A writ's `k8s:` grants as Kubernetes RBAC: the rules of one Role per namespace and, only for
 * cluster-wide grants, of one ClusterRole — never more than the writ grants, never touching a deny.
 *
 * RBAC can say less than writ's patterns (no globs inside names, no "all but"), so each grant is
 * split into atoms (group, resource, verb, where) that RBAC expresses exactly; a grant RBAC cannot
 * express without widening it, or one a deny cuts into, is refused (`downstream_scope_exceeds_writ`).
 * An atom a deny wholly covers is dropped: the writ never held it. Pure: no I/O.
 */
import {
  compileRule,
  escapeGlob,
  globMatches,
  isWritError,
  parseGlob,
  q,
  type Rule,
  type RuleText,
  ruleContains,
  ruleOverlaps,
  ruleToString,
} from "../../core/index.js";
import { globAlternatives } from "../../core/pattern.js";
import { K8S_VERBS } from "../../core/vocabulary.js";
import { type DownstreamOutcome, type DownstreamRefused, refused } from "../refusal.js";

/** One rule of a Role or ClusterRole, in the API's shape. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[] | undefined;
}

/** The RBAC a writ needs: Role rules per namespace, ClusterRole rules (cluster-wide grants only). */
export interface RbacPlan {
  readonly namespaces: ReadonlyMap<string, readonly PolicyRule[]>;
  readonly cluster: readonly PolicyRule[];
}

/**
 * Built-in resources whose scope writ knows, by `group/resource` (core group `core`). A cluster-wide
 * grant (a `*` namespace, or a bare name) is only turned into a ClusterRole for a resource listed here: a
 * ClusterRole on a resource of unknown scope could reach cluster-scoped objects the writ's
 * `namespace/name` pattern does not name.
 */
const CLUSTER_SCOPED = new Set([
  "core/nodes",
  "core/namespaces",
  "core/persistentvolumes",
  "core/componentstatuses",
  "rbac.authorization.k8s.io/clusterroles",
  "rbac.authorization.k8s.io/clusterrolebindings",
  "storage.k8s.io/storageclasses",
  "storage.k8s.io/csidrivers",
  "storage.k8s.io/csinodes",
  "storage.k8s.io/volumeattachments",
  "apiextensions.k8s.io/customresourcedefinitions",
  "admissionregistration.k8s.io/mutatingwebhookconfigurations",
  "admissionregistration.k8s.io/validatingwebhookconfigurations",
  "admissionregistration.k8s.io/validatingadmissionpolicies",
  "admissionregistration.k8s.io/validatingadmissionpolicybindings",
  "scheduling.k8s.io/priorityclasses",
  "networking.k8s.io/ingressclasses",
  "node.k8s.io/runtimeclasses",
  "certificates.k8s.io/certificatesigningrequests",
  "apiregistration.k8s.io/apiservices",
  "flowcontrol.apiserver.k8s.io/flowschemas",
  "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations",
]);
const NAMESPACED = new Set([
  "core/pods",
  "core/services",
  "core/configmaps",
  "core/secrets",
  "core/serviceaccounts",
  "core/endpoints",
  "core/events",
  "core/persistentvolumeclaims",
  "core/replicationcontrollers",
  "core/limitranges",
  "core/resourcequotas",
  "core/podtemplates",
  "apps/deployments",
  "apps/statefulsets",
  "apps/daemonsets",
  "apps/replicasets",
  "apps/controllerrevisions",
  "batch/jobs",
  "batch/cronjobs",
  "autoscaling/horizontalpodautoscalers",
  "networking.k8s.io/ingresses",
  "networking.k8s.io/networkpolicies",
  "policy/poddisruptionbudgets",
  "rbac.authorization.k8s.io/roles",
  "rbac.authorization.k8s.io/rolebindings",
  "coordination.k8s.io/leases",
  "discovery.k8s.io/endpointslices",
  "events.k8s.io/events",
]);

/** `namespaced`, `cluster` or `unknown` for `group` (writ's spelling, `core`) and a resource (`pods/log` → pods). */
export function resourceScope(group: string, resource: string): "namespaced" | "cluster" | "unknown" {
  const key = `${group}/${resource.split("/")[0]}`;
  if (NAMESPACED.has(key)) return "namespaced";
  if (CLUSTER_SCOPED.has(key)) return "cluster";
  return "unknown";
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const API_GROUP = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const RESOURCE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
/** An object name as RBAC `resourceNames` holds it: a path segment (no `/`, `%`, not `.`/`..`). */
const OBJECT_NAME = /^(?!\.\.?$)[^/%\s]{1,253}$/;

/** Where an atom applies: one namespace (a Role) or the whole cluster (a ClusterRole). */
type Where = { readonly ns: string } | { readonly cluster: true };

interface Atom {
  /** `core` for the core group, `*` for every group. */
  readonly group: string;
  /** `pods`, `pods/log`, `*` (all resources and subresources), `*\/scale` (one subresource of all). */
  readonly resource: string;
  readonly verb: string;
  readonly where: Where;
  /** An exact object name, or undefined for every object. */
  readonly name: string | undefined;
  /** What RBAC lets the token reach, as a writ resource pattern (`ns/web`, `*\/*`, `node-1`, `*`). */
  readonly object: string;
}

const esc = (s: string) => escapeGlob(s);

/** The literal text of a glob source without wildcards or alternatives, else undefined. */
function literal(source: string): string | undefined {
  const g = parseGlob(source);
  if (!g.literal || g.alts.length !== 1) return undefined;
  return g.alts[0]!.map((t) => (t.t === "lit" ? t.c : "")).join("");
}

/** A service alternative (`apps/deployments`, `core/pods/log`, `apps/*`, `*`) → group and resource. */
function service(alt: string, grant: RuleText): DownstreamOutcome<{ group: string; resource: string }> {
  const bad = () =>
    refused(
      "downstream_scope_exceeds_writ",
      `grant ${q(ruleToString(grant))}: RBAC cannot express the resource pattern ${q(alt)} exactly (use \`group/resource\`, \`group/resource/subresource\`, \`group/*\`, \`*/resource\` or \`*\`)`,
    );
  if (alt === "*" || alt === "*/*") return { ok: true, value: { group: "*", resource: "*" } };
  const parts = alt.split("/");
  if (parts.length < 2 || parts.length > 3) return bad();
  const [g, r, s] = parts as [string, string, string | undefined];
  const group = g === "*" ? "*" : literal(g);
  if (group === undefined || (group !== "*" && !API_GROUP.test(group))) return bad();
  if (s === undefined) {
    if (r === "*") return { ok: true, value: { group, resource: "*" } };
    const res = literal(r);
    if (res === undefined || !RESOURCE.test(res)) return bad();
    return { ok: true, value: { group, resource: res } };
  }
  const sub = literal(s);
  if (sub === undefined || !RESOURCE.test(sub)) return bad();
  if (r === "*") return { ok: true, value: { group, resource: `*/${sub}` } };
  const res = literal(r);
  if (res === undefined || !RESOURCE.test(res)) return bad();
  return { ok: true, value: { group, resource: `${res}/${sub}` } };
}

/** A resource-pattern alternative → where it applies, which object, and its scope need. */
function target(
  alt: string,
  grant: RuleText,
): DownstreamOutcome<{ where: Where; name: string | undefined; needs: "any" | "namespaced" | "cluster" }> {
  const bad = (why: string) =>
    refused(
      "downstream_scope_exceeds_writ",
      `grant ${q(ruleToString(grant))}: RBAC cannot express the object pattern ${q(alt)} without widening it: ${why}`,
    );
  if (alt === "*") return { ok: true, value: { where: { cluster: true }, name: undefined, needs: "any" } };
  const slash = alt.indexOf("/");
  if (slash < 0) {
    const name = literal(alt);
    if (name === undefined || !OBJECT_NAME.test(name)) return bad("a name is exact or `*`");
    return { ok: true, value: { where: { cluster: true }, name, needs: "cluster" } };
  }
  const nsText = alt.slice(0, slash);
  const nameText = alt.slice(slash + 1);
  let name: string | undefined;
  if (nameText !== "*") {
    name = literal(nameText);
    if (name === undefined || !OBJECT_NAME.test(name))
      return bad("an object name is exact or `*` (RBAC `resourceNames` holds no patterns)");
  }
  if (nsText === "*") return { ok: true, value: { where: { cluster: true }, name, needs: "namespaced" } };
  const ns = literal(nsText);
  if (ns === undefined || !DNS_LABEL.test(ns)) return bad("a namespace is one exact name or `*`");
  return { ok: true, value: { where: { ns }, name, needs: "any" } };
}

/** The writ action an RBAC (group, resource, verb) grants, in writ's vocabulary. */
export function rbacAction(group: string, resource: string, verb: string): string {
  const g = group === "" ? "core" : group;
  const r =
    resource === "*" ? "*" : resource.startsWith("*/") ? `*/${esc(resource.slice(2))}` : esc(resource);
  return `k8s:${g === "*" ? "*" : esc(g)}/${r}:${esc(verb)}`;
}

/** A rule compiled, or the refusal of one that does not compile. */
function compiled(rule: RuleText): DownstreamOutcome<Rule> {
  try {
    return { ok: true, value: compileRule(rule) };
  } catch (e) {
    if (isWritError(e)) return refused("downstream_scope_exceeds_writ", e.message);
    throw e;
  }
}

/**
 * The RBAC for `grants` minus `denies`, or the refusal: a grant or deny that does not compile, a
 * grant RBAC cannot express exactly or a deny cuts into, or nothing left. In order: the denies
 * compiled, the grants split into atoms, the denies cut from them, the atoms grouped into rules.
 */
export function rbacPlan(
  grants: readonly RuleText[],
  denies: readonly RuleText[],
): DownstreamOutcome<RbacPlan> {
  const denyRules: Rule[] = [];
  for (const deny of denies) {
    const rule = compiled(deny);
    if (!rule.ok) return rule;
    denyRules.push(rule.value);
  }
  const atoms = atomsOf(grants);
  if (!atoms.ok) return atoms;
  const kept = cut(atoms.value, denyRules);
  if (!kept.ok) return kept;
  return { ok: true, value: groupAtoms(kept.value) };
}

/** The atoms of the writ's `k8s:` grants, each one RBAC expresses exactly; refused when one is not. */
function atomsOf(grants: readonly RuleText[]): DownstreamOutcome<Atom[]> {
  const atoms: Atom[] = [];
  let sawK8s = false;
  for (const grant of grants) {
    const rule = compiled(grant);
    if (!rule.ok) return rule;
    if (rule.value.literalProvider !== "k8s") continue;
    sawK8s = true;
    const found = grantAtoms(grant, rule.value);
    if (!found.ok) return found;
    atoms.push(...found.value);
  }
  if (!sawK8s) return refused("downstream_no_grants", "the writ has no `k8s:` grants");
  return { ok: true, value: atoms };
}

/** The atoms of one `k8s:` grant: each verb its pattern names, on each service and object it names. */
function grantAtoms(grant: RuleText, rule: Rule): DownstreamOutcome<Atom[]> {
  // k8s verbs are exact (no folding): enumerate the vocabulary's verbs the pattern names
  const verbs = K8S_VERBS.filter((v) => globMatches(rule.action.raw, v));
  if (verbs.length === 0) {
    return refused(
      "downstream_scope_exceeds_writ",
      `grant ${q(ruleToString(grant))}: its verb pattern names no Kubernetes verb`,
    );
  }
  const atoms: Atom[] = [];
  for (const svcAlt of globAlternatives(rule.service.raw)) {
    const svc = service(svcAlt, grant);
    if (!svc.ok) return svc;
    for (const objAlt of globAlternatives(rule.resource.raw)) {
      const t = target(objAlt, grant);
      if (!t.ok) return t;
      const wide = scopeRefusal(grant, svcAlt, svc.value, objAlt, t.value.needs);
      if (wide) return wide;
      for (const verb of verbs) {
        atoms.push({ ...svc.value, verb, where: t.value.where, name: t.value.name, object: objAlt });
      }
    }
  }
  return { ok: true, value: atoms };
}

/**
 * A cluster-wide object pattern on a resource whose scope is not the one it needs (or unknown): a
 * ClusterRole there could reach objects the pattern does not name.
 */
function scopeRefusal(
  grant: RuleText,
  svcAlt: string,
  svc: { group: string; resource: string },
  objAlt: string,
  needs: "any" | "namespaced" | "cluster",
): DownstreamRefused | undefined {
  if (needs === "any") return undefined;
  const scope =
    svc.group === "*" || svc.resource.startsWith("*") ? "unknown" : resourceScope(svc.group, svc.resource);
  if (scope === needs) return undefined;
  const why =
    scope === "unknown"
      ? "writ does not know whether it is namespaced"
      : `it is ${scope === "cluster" ? "cluster-scoped" : "namespaced"}`;
  return refused(
    "downstream_scope_exceeds_writ",
    `grant ${q(ruleToString(grant))}: a ClusterRole on ${q(svcAlt)} could reach objects outside ${q(objAlt)} (${why}); name the namespace, or grant on \`*\``,
  );
}

/**
 * The atoms the denies leave: one a deny wholly covers is dropped (the writ never held it); one a
 * deny cuts into is refused (RBAC cannot carve it out); none left is refused.
 */
function cut(atoms: readonly Atom[], denyRules: readonly Rule[]): DownstreamOutcome<Atom[]> {
  const kept: Atom[] = [];
  for (const atom of atoms) {
    const granted = compileRule({
      action: rbacAction(atom.group, atom.resource, atom.verb),
      resource: atom.object,
    });
    const hit = denyRules.filter((d) => ruleOverlaps(granted, d));
    if (hit.length === 0) {
      kept.push(atom);
      continue;
    }
    if (hit.some((d) => ruleContains(d, granted))) continue;
    return refused(
      "downstream_scope_exceeds_writ",
      `RBAC rule ${q(ruleToString(granted.text))} would overlap deny ${q(ruleToString(hit[0]!.text))}, and RBAC has no deny to carve it out`,
    );
  }
  if (kept.length === 0) {
    return refused("downstream_no_grants", "every `k8s:` grant of the writ is cut by a deny");
  }
  return { ok: true, value: kept };
}

interface Draft {
  group: string;
  resource: string;
  name: string | undefined;
  verbs: Set<string>;
}

/** Atoms → RBAC rules, one rule per (group, resource, name) with its verbs, in a stable order. */
function groupAtoms(atoms: readonly Atom[]): RbacPlan {
  const byWhere = new Map<string, Map<string, Draft>>();
  for (const a of atoms) {
    const where = "ns" in a.where ? a.where.ns : "";
    const rules = byWhere.get(where) ?? new Map<string, Draft>();
    byWhere.set(where, rules);
    const key = JSON.stringify([a.group, a.resource, a.name ?? null]);
    const r = rules.get(key) ?? { group: a.group, resource: a.resource, name: a.name, verbs: new Set() };
    r.verbs.add(a.verb);
    rules.set(key, r);
  }
  const toRules = (m: Map<string, Draft>): PolicyRule[] =>
    [...m.keys()].sort().map((k) => {
      const r = m.get(k)!;
      return {
        apiGroups: [r.group === "core" ? "" : r.group],
        resources: [r.resource],
        verbs: K8S_VERBS.filter((v) => r.verbs.has(v)),
        ...(r.name !== undefined ? { resourceNames: [r.name] } : {}),
      };
    });
  const namespaces = new Map<string, PolicyRule[]>();
  for (const ns of [...byWhere.keys()].filter((k) => k !== "").sort()) {
    namespaces.set(ns, toRules(byWhere.get(ns)!));
  }
  const cluster = byWhere.get("");
  return { namespaces, cluster: cluster ? toRules(cluster) : [] };
}
