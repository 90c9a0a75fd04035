/**
 * Kubernetes objects → the identity graph (service accounts carry `tokenSecrets`: their legacy token
 * Secrets by name, "" when the namespace's Secrets were exported without one, absent when unknown;
 * namespaces carry their Pod Security level): workloads (pods aggregated under their owning
 * Deployment, StatefulSet, DaemonSet, CronJob through owner references, or the pod-template-hash
 * when the ReplicaSet is not in the input), service accounts (the namespace's `default` when a pod
 * names none), groups (`system:serviceaccounts`, `system:serviceaccounts:<ns>`,
 * `system:authenticated`), bindings holding the grants of their role (aggregated ClusterRoles
 * resolved, built-in ClusterRoles approximated), cloud identities from service-account
 * annotations, and the container ports each pod declares and which Services expose them.
 */
import { problem } from "../../input.js";
import type {
  GraphEdge,
  GraphNode,
  InputProblem,
  Linker,
  LinkResult,
  PermissionGrant,
  ProviderObject,
  SourceRef,
} from "../../model.js";
import {
  BOOTSTRAP_LABEL,
  BUILTIN_CLUSTER_ROLES,
  DEFAULT_PUBLIC_BINDINGS,
  type RbacRule,
  ruleGrants,
  ruleText,
  toRule,
} from "./rbac.js";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const meta = (o: Obj): Obj => (isObject(o.metadata) ? o.metadata : {});
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const nameOf = (o: Obj) => str(meta(o).name) ?? "";
const nsOf = (o: Obj) => str(meta(o).namespace);
const labelsOf = (o: Obj): Record<string, string> =>
  (isObject(meta(o).labels) ? meta(o).labels : {}) as Record<string, string>;
const annotationsOf = (o: Obj): Record<string, string> =>
  (isObject(meta(o).annotations) ? meta(o).annotations : {}) as Record<string, string>;

export const AGENT_KEY = "writ.dev/agent";
const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "Pod"];

export const CLOUD_ANNOTATIONS: readonly {
  key: string;
  id: (v: string) => string;
  provider: "aws" | "gcp" | "azure";
}[] = [
  { key: "eks.amazonaws.com/role-arn", id: (v) => `aws:role:${v}`, provider: "aws" },
  { key: "iam.gke.io/gcp-service-account", id: (v) => `gcp:serviceAccount:${v}`, provider: "gcp" },
  // Azure workload identity: the client id of a managed identity, an opaque cloud node of its own
  // (writ's vocabulary has no azure provider: no Azure grants are read).
  { key: "azure.workload.identity/client-id", id: (v) => `azure:identity:${v}`, provider: "azure" },
];

export function saId(ns: string, name: string): string {
  return `k8s:ServiceAccount:${ns}/${name}`;
}

function podSpecOf(kind: string, o: Obj): { spec: Obj | undefined; path: string; template: Obj | undefined } {
  const spec = isObject(o.spec) ? o.spec : undefined;
  if (kind === "Pod") return { spec, path: "spec", template: o };
  if (kind === "CronJob") {
    const jt = isObject(spec?.jobTemplate) ? spec.jobTemplate : undefined;
    const js = isObject(jt?.spec) ? jt.spec : undefined;
    const t = isObject(js?.template) ? js.template : undefined;
    return {
      spec: isObject(t?.spec) ? t.spec : undefined,
      path: "spec.jobTemplate.spec.template.spec",
      template: t,
    };
  }
  const t = isObject(spec?.template) ? spec.template : undefined;
  return { spec: isObject(t?.spec) ? t.spec : undefined, path: "spec.template.spec", template: t };
}

function containerAttrs(spec: Obj): Record<string, string | number | boolean> {
  const attrs: Record<string, string | number | boolean> = {};
  if (spec.hostPID === true) attrs.hostPID = true;
  if (spec.hostNetwork === true) attrs.hostNetwork = true;
  if (spec.hostIPC === true) attrs.hostIPC = true;
  const containers = [
    ...(Array.isArray(spec.containers) ? spec.containers : []),
    ...(Array.isArray(spec.initContainers) ? spec.initContainers : []),
  ].filter(isObject);
  const caps = new Set<string>();
  for (const c of containers) {
    const sc = isObject(c.securityContext) ? c.securityContext : {};
    if (sc.privileged === true) attrs.privileged = true;
    const add = isObject(sc.capabilities) && Array.isArray(sc.capabilities.add) ? sc.capabilities.add : [];
    for (const a of add) if (typeof a === "string") caps.add(a.replace(/^CAP_/, ""));
  }
  if (caps.size > 0) attrs.capabilities = [...caps].sort().join(",");
  const names = containers.map((c) => str(c.name)).filter((n): n is string => n !== undefined);
  if (names.length > 0) attrs.containers = names.join(",");
  // Declared ports, `container|name|containerPort|hostPort|protocol` (names are DNS labels, no `|`).
  const ports = (Array.isArray(spec.containers) ? spec.containers : []).filter(isObject).flatMap((c) =>
    (Array.isArray(c.ports) ? c.ports : [])
      .filter(isObject)
      .filter((p) => typeof p.containerPort === "number")
      .map((p) =>
        [
          str(c.name) ?? "",
          str(p.name) ?? "",
          p.containerPort,
          p.hostPort ?? "",
          str(p.protocol) ?? "TCP",
        ].join("|"),
      ),
  );
  if (ports.length > 0) attrs.ports = ports.join(",");
  if (spec.automountServiceAccountToken === true) attrs.automountServiceAccountToken = true;
  if (spec.shareProcessNamespace === true) attrs.shareProcessNamespace = true;
  if (typeof spec.nodeName === "string") attrs.nodeName = spec.nodeName;
  const paths = (Array.isArray(spec.volumes) ? spec.volumes : [])
    .filter(isObject)
    .map((v) => (isObject(v.hostPath) ? str(v.hostPath.path) : undefined))
    .filter((p): p is string => p !== undefined);
  if (paths.length > 0) attrs.hostPaths = paths.join(",");
  return attrs;
}

/** The workload a pod-template-hash-suffixed ReplicaSet name stands for. */
function deploymentOfReplicaSet(rsName: string, hash: string | undefined): string | undefined {
  if (hash && rsName.endsWith(`-${hash}`)) return rsName.slice(0, -hash.length - 1);
  const m = /^(.+)-[a-z0-9]{5,10}$/.exec(rsName);
  return m?.[1];
}

/**
 * The group subjects of a ClusterRoleBinding that are Kubernetes' default grant to every caller:
 * the binding carries the bootstrap label, is one of the default bindings by name, names its
 * default ClusterRole, and that role (as exported, or the default when not exported) grants nothing
 * beyond the default rules. An edited default keeps its added subjects (they are reported); a
 * widened role makes the whole binding ordinary (reported); any other binding to these groups is
 * ordinary too.
 */
function defaultPublicSubjects(
  v: Obj,
  refKind: string | undefined,
  refName: string | undefined,
  grants: readonly PermissionGrant[],
): Set<string> {
  const def = DEFAULT_PUBLIC_BINDINGS.get(nameOf(v));
  if (!def || labelsOf(v)[BOOTSTRAP_LABEL] !== "rbac-defaults") return new Set();
  if (refKind !== "ClusterRole" || refName !== def.role) return new Set();
  const allowed = new Set(
    def.rules.flatMap((r) => ruleGrants(r, undefined, "", undefined)).map((g) => `${g.action} ${g.resource}`),
  );
  if (!grants.every((g) => allowed.has(`${g.action} ${g.resource}`))) return new Set();
  return new Set(def.groups);
}

/** The linker's state as its steps run: the nodes and edges made so far, the problems found. */
interface Linking {
  readonly objects: readonly ProviderObject[];
  readonly nodes: Map<string, GraphNode>;
  readonly edges: GraphEdge[];
  readonly problems: InputProblem[];
}

/** A node, unless one is there already (an implicit one gives way to the real object). */
function put(x: Linking, n: GraphNode): void {
  const prev = x.nodes.get(n.id);
  if (!prev || (prev.attrs?.implicit && !n.attrs?.implicit)) x.nodes.set(n.id, n);
}

function edge(
  x: Linking,
  from: string,
  to: string,
  type: GraphEdge["type"],
  note?: string,
  source?: SourceRef,
): void {
  x.edges.push({ kind: "edge", from, to, type, note, source });
}

const byKind = (x: Linking, kind: string) => x.objects.filter((o) => o.type === kind);
const lineOf = (o: ProviderObject, key: string): SourceRef =>
  o.lines?.[key] !== undefined ? { file: o.source.file, line: o.lines[key] } : o.source;

type Rules = { rule: RbacRule; at?: SourceRef }[];
interface Roles {
  readonly clusterRoles: ReadonlyMap<string, { o?: ProviderObject; rules: Rules }>;
  readonly roles: ReadonlyMap<string, { o: ProviderObject; rules: Rules }>;
}

const rulesOf = (o: ProviderObject): Rules => {
  const v = o.value as Obj;
  return (Array.isArray(v.rules) ? v.rules : []).map((r, i) => ({
    rule: toRule(r),
    at: lineOf(o, `rules[${i}]`),
  }));
};

/** ClusterRoles (aggregated ones resolved) and Roles, by name, and their nodes. */
function linkRoles(x: Linking): Roles {
  const clusterRoles = new Map<string, { o?: ProviderObject; rules: Rules }>();
  for (const o of byKind(x, "ClusterRole"))
    clusterRoles.set(nameOf(o.value as Obj), { o, rules: rulesOf(o) });
  aggregateClusterRoles(x, clusterRoles);
  const roles = new Map<string, { o: ProviderObject; rules: Rules }>();
  for (const o of byKind(x, "Role")) {
    const v = o.value as Obj;
    roles.set(`${nsOf(v) ?? "default"}/${nameOf(v)}`, { o, rules: rulesOf(o) });
  }
  for (const [name, r] of clusterRoles) {
    put(x, {
      kind: "node",
      id: `k8s:ClusterRole:${name}`,
      provider: "k8s",
      type: "role",
      subtype: "ClusterRole",
      name,
      source: r.o?.source,
    });
  }
  for (const [key, r] of roles) {
    const [ns, name] = key.split("/") as [string, string];
    put(x, {
      kind: "node",
      id: `k8s:Role:${key}`,
      provider: "k8s",
      type: "role",
      subtype: "Role",
      name,
      namespace: ns,
      source: r.o.source,
    });
  }
  return { clusterRoles, roles };
}

/** Aggregated ClusterRoles: the union of the rules of every ClusterRole whose labels match. */
function aggregateClusterRoles(
  x: Linking,
  clusterRoles: Map<string, { o?: ProviderObject; rules: Rules }>,
): void {
  for (const o of byKind(x, "ClusterRole")) {
    const v = o.value as Obj;
    const agg = isObject(v.aggregationRule) ? v.aggregationRule : undefined;
    const selectors = Array.isArray(agg?.clusterRoleSelectors)
      ? agg.clusterRoleSelectors.filter(isObject)
      : [];
    if (selectors.length === 0) continue;
    const target = clusterRoles.get(nameOf(v))!;
    for (const other of byKind(x, "ClusterRole")) {
      if (other === o) continue;
      const labels = labelsOf(other.value as Obj);
      const match = selectors.some((s) => {
        const ml = isObject(s.matchLabels) ? s.matchLabels : {};
        return Object.keys(ml).length > 0 && Object.entries(ml).every(([k, val]) => labels[k] === val);
      });
      if (match) target.rules.push(...clusterRoles.get(nameOf(other.value as Obj))!.rules);
    }
  }
}

/**
 * The exported ServiceAccounts by node id; their legacy token Secrets
 * (`kubernetes.io/service-account-token`) per account, and the namespaces whose Secrets the input
 * holds: elsewhere, whether an account has one is unknown.
 */
interface Accounts {
  readonly sas: ReadonlyMap<string, ProviderObject>;
  readonly tokenSecrets: ReadonlyMap<string, string[]>;
  readonly secretNamespaces: ReadonlySet<string>;
}

function readAccounts(x: Linking): Accounts {
  const sas = new Map<string, ProviderObject>();
  for (const o of byKind(x, "ServiceAccount")) {
    const v = o.value as Obj;
    sas.set(saId(nsOf(v) ?? "default", nameOf(v)), o);
  }
  const tokenSecrets = new Map<string, string[]>();
  const secretNamespaces = new Set<string>();
  for (const o of byKind(x, "Secret")) {
    const v = o.value as Obj;
    const ns = nsOf(v) ?? "default";
    secretNamespaces.add(ns);
    const owner = str(annotationsOf(v)["kubernetes.io/service-account.name"]);
    if (v.type !== "kubernetes.io/service-account-token" || !owner) continue;
    const id = saId(ns, owner);
    (tokenSecrets.get(id) ?? tokenSecrets.set(id, []).get(id)!).push(nameOf(v));
  }
  return { sas, tokenSecrets, secretNamespaces };
}

/** The ServiceAccount's node (made once, implicit when not exported) and its cloud identities. */
function ensureSa(x: Linking, acc: Accounts, ns: string, name: string, source?: SourceRef): string {
  const id = saId(ns, name);
  if (x.nodes.has(id)) return id;
  const o = acc.sas.get(id);
  const v = (o?.value ?? {}) as Obj;
  const ann = annotationsOf(v);
  const attrs: Record<string, string | boolean> = {};
  if (!o) attrs.implicit = true;
  // A pre-1.24 ServiceAccount lists its token Secrets in `secrets`; those named `…-token-…` are
  // legacy tokens even when the Secrets themselves were not exported.
  const listed = (Array.isArray(v.secrets) ? v.secrets : [])
    .filter(isObject)
    .map((s) => str(s.name))
    .filter((s): s is string => s !== undefined && s.startsWith(`${name}-token-`));
  const tokens = [...new Set([...(acc.tokenSecrets.get(id) ?? []), ...listed])].sort();
  if (tokens.length > 0) attrs.tokenSecrets = tokens.join(",");
  else if (acc.secretNamespaces.has(ns)) attrs.tokenSecrets = "";
  if (v.automountServiceAccountToken === false) attrs.automountServiceAccountToken = false;
  put(x, {
    kind: "node",
    id,
    provider: "k8s",
    type: "identity",
    subtype: "ServiceAccount",
    name,
    namespace: ns,
    agent: str(ann[AGENT_KEY]) ?? str(labelsOf(v)[AGENT_KEY]),
    shared: name === "default" ? true : undefined,
    attrs,
    source: o?.source ?? source,
  });
  for (const c of CLOUD_ANNOTATIONS) {
    const val = str(ann[c.key]);
    if (!val) continue;
    const cloud = c.id(val);
    put(x, {
      kind: "node",
      id: cloud,
      provider: c.provider,
      type: "identity",
      subtype: c.key,
      name: val,
      source: o?.source,
    });
    edge(x, id, cloud, "assumes", `annotation ${c.key}`, o?.source);
  }
  return id;
}

/** What a binding's roleRef resolves to: the role's node id and its rules (built-ins approximated). */
function resolveRoleRef(
  x: Linking,
  roles: Roles,
  o: ProviderObject,
  kind: string,
  name: string,
  ns: string | undefined,
): { refKind?: string; refName?: string; roleId?: string; rules?: Rules } {
  const v = o.value as Obj;
  const ref = isObject(v.roleRef) ? v.roleRef : {};
  const refKind = str(ref.kind);
  const refName = str(ref.name);
  let roleId: string | undefined;
  let rules: Rules | undefined;
  if (refKind === "ClusterRole" && refName) {
    roleId = `k8s:ClusterRole:${refName}`;
    rules = roles.clusterRoles.get(refName)?.rules;
    const builtin =
      BUILTIN_CLUSTER_ROLES.get(refName) ??
      [...DEFAULT_PUBLIC_BINDINGS.values()].find((d) => d.role === refName)?.rules;
    if (!rules && builtin) {
      rules = builtin.map((rule) => ({ rule }));
      put(x, {
        kind: "node",
        id: roleId,
        provider: "k8s",
        type: "role",
        subtype: "ClusterRole",
        name: refName,
        attrs: { builtin: true },
      });
    }
  } else if (refKind === "Role" && refName && ns) {
    roleId = `k8s:Role:${ns}/${refName}`;
    rules = roles.roles.get(`${ns}/${refName}`)?.rules;
  } else if (refKind === "Role" && !ns) {
    x.problems.push(
      problem(
        "WARN_K8S_BAD_ROLEREF",
        lineOf(o, "roleRef"),
        `ClusterRoleBinding \`${name}\` references a Role; it grants nothing`,
        "warning",
      ),
    );
  }
  if (roleId && !rules) {
    x.problems.push(
      problem(
        "WARN_K8S_MISSING_ROLE",
        lineOf(o, "roleRef"),
        `${kind} \`${ns ? `${ns}/` : ""}${name}\`: ${refKind} \`${refName}\` is not in the input; the binding grants nothing that writ can see`,
        "warning",
      ),
    );
  }
  return { refKind, refName, roleId, rules };
}

/** RoleBindings and ClusterRoleBindings holding their role's grants, and their subjects; the groups named. */
function linkBindings(x: Linking, roles: Roles, acc: Accounts): Set<string> {
  const groups = new Set<string>();
  for (const kind of ["RoleBinding", "ClusterRoleBinding"])
    for (const o of byKind(x, kind)) linkBinding(x, roles, acc, groups, o, kind);
  return groups;
}

function linkBinding(
  x: Linking,
  roles: Roles,
  acc: Accounts,
  groups: Set<string>,
  o: ProviderObject,
  kind: string,
): void {
  const v = o.value as Obj;
  const name = nameOf(v);
  const ns = kind === "RoleBinding" ? (nsOf(v) ?? "default") : undefined;
  const id = ns ? `k8s:RoleBinding:${ns}/${name}` : `k8s:ClusterRoleBinding:${name}`;
  const { refKind, refName, roleId, rules } = resolveRoleRef(x, roles, o, kind, name, ns);
  const grants: PermissionGrant[] = [];
  for (const r of rules ?? []) grants.push(...ruleGrants(r.rule, ns, ruleText(r.rule), r.at ?? o.source));
  const exempt = ns === undefined ? defaultPublicSubjects(v, refKind, refName, grants) : new Set<string>();
  put(x, {
    kind: "node",
    id,
    provider: "k8s",
    type: "binding",
    subtype: kind,
    name,
    namespace: ns,
    grants,
    attrs: {
      roleRef: `${refKind ?? "?"}/${refName ?? "?"}`,
      ...(exempt.size > 0 ? { kubernetesDefaultFor: [...exempt].sort().join(",") } : {}),
    },
    source: o.source,
  });
  if (roleId && x.nodes.has(roleId))
    edge(x, id, roleId, "references", `roleRef ${refKind}/${refName}`, lineOf(o, "roleRef"));
  const subjects = (Array.isArray(v.subjects) ? v.subjects : []).filter(isObject);
  subjects.forEach((s, i) => {
    const sk = str(s.kind);
    const sn = str(s.name);
    const at = lineOf(o, `subjects[${i}]`);
    if (!sk || !sn) return;
    let subject: string;
    // Kubernetes' own grant to every caller: no workload's overreach, no step of escalation.
    if (sk === "Group" && exempt.has(sn)) return;
    if (sk === "ServiceAccount") subject = ensureSa(x, acc, str(s.namespace) ?? ns ?? "default", sn, at);
    else if (sk === "Group") {
      subject = `k8s:Group:${sn}`;
      groups.add(sn);
      put(x, {
        kind: "node",
        id: subject,
        provider: "k8s",
        type: "group",
        subtype: "Group",
        name: sn,
        shared: true,
      });
    } else {
      subject = `k8s:User:${sn}`;
      put(x, { kind: "node", id: subject, provider: "k8s", type: "identity", subtype: "User", name: sn });
    }
    edge(x, subject, id, "bound-by", `subjects[${i}] ${sk}/${sn}`, at);
  });
}

/** Workloads seen so far: "Kind:ns/name" → workload node id; pod or workload id → its pods' labels. */
interface Workloads {
  readonly owners: Map<string, string>;
  readonly podLabels: Map<string, Record<string, string>>;
}

const workloadOf = (wl: Workloads, kind: string, ns: string, name: string): string | undefined =>
  wl.owners.get(`${kind}:${ns}/${name}`);

function ownerOf(v: Obj): { kind: string; name: string } | undefined {
  const refs = Array.isArray(meta(v).ownerReferences)
    ? (meta(v).ownerReferences as unknown[]).filter(isObject)
    : [];
  const ref = refs.find((r) => r.controller === true) ?? refs[0];
  return ref && str(ref.kind) && str(ref.name)
    ? { kind: ref.kind as string, name: ref.name as string }
    : undefined;
}

/** A workload's node, and the identity it runs as (the namespace's default when it names none). */
function addWorkload(x: Linking, acc: Accounts, wl: Workloads, o: ProviderObject, kind: string): string {
  const v = o.value as Obj;
  const ns = nsOf(v) ?? "default";
  const name = nameOf(v);
  const id = `k8s:${kind}:${ns}/${name}`;
  const { spec, path, template } = podSpecOf(kind, v);
  const agent =
    str(annotationsOf(v)[AGENT_KEY]) ??
    str(labelsOf(v)[AGENT_KEY]) ??
    (template ? (str(annotationsOf(template)[AGENT_KEY]) ?? str(labelsOf(template)[AGENT_KEY])) : undefined);
  put(x, {
    kind: "node",
    id,
    provider: "k8s",
    type: "workload",
    subtype: kind,
    name,
    namespace: ns,
    agent,
    attrs: spec ? containerAttrs(spec) : {},
    source: o.source,
  });
  wl.owners.set(`${kind}:${ns}/${name}`, id);
  wl.podLabels.set(id, template ? labelsOf(template) : {});
  if (spec) {
    const sa = str(spec.serviceAccountName) ?? str(spec.serviceAccount);
    const at = lineOf(o, `${path}.serviceAccountName`);
    if (spec.automountServiceAccountToken === false) return id;
    if (sa) edge(x, id, ensureSa(x, acc, ns, sa, at), "runs-as", `${path}.serviceAccountName: ${sa}`, at);
    else
      edge(
        x,
        id,
        ensureSa(x, acc, ns, "default"),
        "falls-back-to",
        `${path} names no serviceAccountName: the namespace's default`,
        lineOf(o, path),
      );
  }
  return id;
}

/** Workloads, then the ReplicaSets and Jobs under them, then pods under their owning workload. */
function linkWorkloads(x: Linking, acc: Accounts): Workloads {
  const wl: Workloads = { owners: new Map(), podLabels: new Map() };
  for (const kind of ["Deployment", "StatefulSet", "DaemonSet", "CronJob"])
    for (const o of byKind(x, kind)) addWorkload(x, acc, wl, o, kind);
  // ReplicaSets and Jobs under a Deployment / CronJob are not workloads of their own.
  for (const kind of ["ReplicaSet", "Job"]) {
    for (const o of byKind(x, kind)) {
      const v = o.value as Obj;
      const ns = nsOf(v) ?? "default";
      const owner = ownerOf(v);
      const parent = owner ? workloadOf(wl, owner.kind, ns, owner.name) : undefined;
      if (parent) wl.owners.set(`${kind}:${ns}/${nameOf(v)}`, parent);
      else if (kind === "ReplicaSet" && owner?.kind === "Deployment") {
        const as = { ...o, value: { ...v, metadata: { ...meta(v), name: owner.name } } };
        wl.owners.set(`${kind}:${ns}/${nameOf(v)}`, addWorkload(x, acc, wl, as, "Deployment"));
      } else addWorkload(x, acc, wl, o, kind);
    }
  }
  for (const o of byKind(x, "Pod")) linkPod(x, acc, wl, o);
  return wl;
}

/** The workload owning a pod: its owner, through a ReplicaSet's name or a CronJob's Job name. */
function podWorkload(x: Linking, acc: Accounts, wl: Workloads, o: ProviderObject): string | undefined {
  const v = o.value as Obj;
  const ns = nsOf(v) ?? "default";
  const owner = ownerOf(v);
  let workload = owner ? workloadOf(wl, owner.kind, ns, owner.name) : undefined;
  if (!workload && owner?.kind === "ReplicaSet") {
    const dep = deploymentOfReplicaSet(owner.name, labelsOf(v)["pod-template-hash"]);
    if (dep)
      workload =
        workloadOf(wl, "Deployment", ns, dep) ??
        addWorkload(
          x,
          acc,
          wl,
          { ...o, value: { ...v, kind: "Deployment", metadata: { ...meta(v), name: dep } } },
          "Deployment",
        );
  }
  if (!workload && owner?.kind === "Job") {
    const cron = /^(.+)-\d{6,}$/.exec(owner.name)?.[1];
    workload = (cron && workloadOf(wl, "CronJob", ns, cron)) || undefined;
  }
  if (!workload && owner && owner.kind !== "Node") workload = workloadOf(wl, owner.kind, ns, owner.name);
  return workload;
}

function linkPod(x: Linking, acc: Accounts, wl: Workloads, o: ProviderObject): void {
  const v = o.value as Obj;
  const ns = nsOf(v) ?? "default";
  const name = nameOf(v);
  const podId = `k8s:Pod:${ns}/${name}`;
  const owner = ownerOf(v);
  const workload = podWorkload(x, acc, wl, o);
  if (!workload) {
    // A bare pod (or one whose owner is not in the input) is its own workload.
    addWorkload(x, acc, wl, o, "Pod");
    return;
  }
  const spec = isObject(v.spec) ? v.spec : {};
  put(x, {
    kind: "node",
    id: podId,
    provider: "k8s",
    type: "pod",
    subtype: "Pod",
    name,
    namespace: ns,
    attrs: containerAttrs(spec),
    source: o.source,
  });
  wl.podLabels.set(podId, labelsOf(v));
  edge(x, workload, podId, "owns", `ownerReferences ${owner?.kind}/${owner?.name}`, o.source);
  const sa = str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? "default";
  if (spec.automountServiceAccountToken !== false)
    edge(x, podId, ensureSa(x, acc, ns, sa), "runs-as", `spec.serviceAccountName: ${sa}`, o.source);
}

/** Which declared container ports a Service exposes (`exposedBy` on the pod or workload). */
function linkServices(x: Linking, podLabels: ReadonlyMap<string, Record<string, string>>): void {
  for (const o of byKind(x, "Service")) {
    const v = o.value as Obj;
    const ns = nsOf(v) ?? "default";
    const spec = isObject(v.spec) ? v.spec : {};
    const selector = (isObject(spec.selector) ? spec.selector : {}) as Record<string, unknown>;
    // A Service without a selector has hand-made endpoints writ cannot attribute to a pod.
    if (Object.keys(selector).length === 0) continue;
    for (const [id, labels] of podLabels) {
      const n = x.nodes.get(id);
      if (n?.namespace !== ns || !Object.entries(selector).every(([k, val]) => labels[k] === val)) continue;
      const exposed: string[] = [];
      for (const sp of (Array.isArray(spec.ports) ? spec.ports : []).filter(isObject)) {
        const target = sp.targetPort ?? sp.port;
        for (const entry of String(n.attrs?.ports ?? "")
          .split(",")
          .filter(Boolean)) {
          const [container, name, port] = entry.split("|") as [string, string, string];
          if (target === name || String(target) === port)
            exposed.push([nameOf(v), str(sp.name) ?? String(sp.port), container, name || port].join("|"));
        }
      }
      if (exposed.length === 0) continue;
      const prev = String(n.attrs?.exposedBy ?? "");
      x.nodes.set(id, {
        ...n,
        attrs: { ...n.attrs, exposedBy: [prev, ...exposed].filter(Boolean).join(",") },
      });
    }
  }
}

/** Namespaces with their Pod Security level (`pod-security.kubernetes.io/enforce`, "" when unset), and Nodes. */
function linkNamespacesAndNodes(x: Linking): void {
  for (const o of byKind(x, "Namespace")) {
    const v = o.value as Obj;
    const name = nameOf(v);
    put(x, {
      kind: "node",
      id: `k8s:Namespace:${name}`,
      provider: "k8s",
      type: "namespace",
      subtype: "Namespace",
      name,
      attrs: { podSecurity: str(labelsOf(v)["pod-security.kubernetes.io/enforce"]) ?? "" },
      source: o.source,
    });
  }
  for (const o of byKind(x, "Node")) {
    const name = nameOf(o.value as Obj);
    put(x, {
      kind: "node",
      id: `k8s:Node:${name}`,
      provider: "k8s",
      type: "identity",
      subtype: "Node",
      name,
      shared: true,
      source: o.source,
    });
  }
}

/** Group membership, for the groups some binding names only. */
function linkMembership(x: Linking, groups: ReadonlySet<string>): void {
  for (const n of [...x.nodes.values()]) {
    const member = (g: string) => {
      if (groups.has(g)) edge(x, n.id, `k8s:Group:${g}`, "member-of", `every ${n.subtype} is in \`${g}\``);
    };
    if (n.subtype === "ServiceAccount") {
      member("system:serviceaccounts");
      member(`system:serviceaccounts:${n.namespace}`);
      member("system:authenticated");
    } else if (n.subtype === "User") member("system:authenticated");
    else if (n.subtype === "Node") {
      member("system:nodes");
      member("system:authenticated");
    }
  }
}

/** The steps, in order: roles, service accounts, bindings, workloads and pods, services, namespaces and nodes, groups. */
export const k8sLinker: Linker = {
  provider: "k8s",
  link(objects: readonly ProviderObject[]): LinkResult {
    const x: Linking = { objects, nodes: new Map(), edges: [], problems: [] };
    const roles = linkRoles(x);
    const acc = readAccounts(x);
    for (const [id, o] of acc.sas) {
      const [ns, name] = id.slice("k8s:ServiceAccount:".length).split("/") as [string, string];
      ensureSa(x, acc, ns, name, o.source);
    }
    const groups = linkBindings(x, roles, acc);
    const { podLabels } = linkWorkloads(x, acc);
    linkServices(x, podLabels);
    linkNamespacesAndNodes(x);
    linkMembership(x, groups);
    return { nodes: [...x.nodes.values()], edges: x.edges, problems: x.problems };
  },
};

export { WORKLOAD_KINDS };
