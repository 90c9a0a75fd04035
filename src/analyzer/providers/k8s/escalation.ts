/**
 * Kubernetes escalation edges (KubeHound's, for blast radius), as ordered steps over the graph:
 * namespaces, identities, container escapes, exposed endpoints, tokens on a node's disk, what each
 * permission set (binding) reaches, and nodes' group. Each step is a plain function of the graph
 * (and, for a binding, its compiled grants) that appends edges in a fixed order.
 */
import {
  compileRule,
  parseRequestAction,
  type Rule,
  ruleContains,
  ruleMatches,
} from "../../../core/index.js";
import type { EscalationEdge, GraphNode, GraphView, PermissionGrant } from "../../model.js";
import { CLUSTER_SCOPED } from "./rbac.js";

const WORKLOAD_RESOURCES = [
  "apps/deployments",
  "apps/daemonsets",
  "apps/statefulsets",
  "batch/jobs",
  "batch/cronjobs",
];
const WORKLOAD_RESOURCE_OF: Readonly<Record<string, string>> = {
  Deployment: "apps/deployments",
  DaemonSet: "apps/daemonsets",
  StatefulSet: "apps/statefulsets",
  Job: "batch/jobs",
  CronJob: "batch/cronjobs",
};
const NONE = { action: "", resource: "" };

interface Perm {
  rule: Rule;
}

function can(perms: readonly Perm[], action: string, resource: string): PermissionGrant | undefined {
  let parsed: ReturnType<typeof parseRequestAction>;
  try {
    parsed = parseRequestAction(action);
  } catch {
    return undefined;
  }
  const hit = perms.find((p) => ruleMatches(p.rule, parsed, resource, "cover"));
  return hit
    ? { kind: "permission", action: hit.rule.text.action, resource: hit.rule.text.resource }
    : undefined;
}

/** Is every grant of the binding contained in one of `perms` (Kubernetes' escalation check)? */
function holdsAll(perms: readonly Perm[], t: GraphNode): boolean {
  const grants = t.grants ?? [];
  if (grants.length === 0) return false;
  return grants.every((gr) => {
    let inner: Rule;
    try {
      inner = compileRule({ action: gr.action, resource: gr.resource });
    } catch {
      return false;
    }
    return perms.some((p) => ruleContains(p.rule, inner));
  });
}

/**
 * Does a RoleBinding carry the whole of the grant into a namespace? A rule on a cluster-scoped
 * resource (or on `*`, which includes them) grants nothing there — except `bind`, which Kubernetes
 * checks in the namespace of the binding being made.
 */
function namespaceEffective(gr: PermissionGrant): boolean {
  const [, service = "", verb = ""] = gr.action.split(":");
  const resource = service.split("/")[1] ?? "";
  if (service.startsWith("nonresource/") || resource === "*" || resource.includes("*")) return false;
  if (resource === "clusterroles" && verb === "bind") return true;
  return !CLUSTER_SCOPED.has(resource);
}

/**
 * ROLE_BIND (PermissionSet → PermissionSet), by Kubernetes' own rule: making a binding to a role
 * needs `create` on the binding's kind where it is made, and either `bind` on that role (resource
 * `roles` or `clusterroles`, by name, in the binding's namespace) or every permission of the role
 * already (the escalation check). A namespaced set can only make RoleBindings in its namespace, so it
 * reaches the sets of that namespace; a cluster-wide one reaches a ClusterRoleBinding's set by a
 * ClusterRoleBinding, or by a RoleBinding in every namespace when that carries all of the role.
 */
function roleBind(perms: readonly Perm[], ns: string | undefined, t: GraphNode): PermissionGrant | undefined {
  const [kind = "", role = ""] = String(t.attrs?.roleRef ?? "").split("/");
  if (kind !== "ClusterRole" && kind !== "Role") return undefined;
  const rbac = "k8s:rbac.authorization.k8s.io";
  const bindVerb = `${rbac}/${kind === "ClusterRole" ? "clusterroles" : "roles"}:bind`;
  // `bind` is checked where the binding is made: `<namespace>/<role>`, or the role's name cluster-wide.
  const mayBind = (at: string) => can(perms, bindVerb, at) !== undefined || holdsAll(perms, t);
  const createCrb = () =>
    ns === undefined ? can(perms, `${rbac}/clusterrolebindings:create`, "x") : undefined;
  if (t.namespace !== undefined) {
    if (ns !== undefined && t.namespace !== ns) return undefined;
    const rb = can(perms, `${rbac}/rolebindings:create`, `${t.namespace}/x`);
    if (rb && mayBind(`${t.namespace}/${role}`)) return rb;
    // A ClusterRoleBinding to the ClusterRole covers the namespace too.
    const crb = kind === "ClusterRole" ? createCrb() : undefined;
    return crb && mayBind(role) ? crb : undefined;
  }
  if (ns !== undefined || kind !== "ClusterRole") return undefined;
  const crb = createCrb();
  if (crb && mayBind(role)) return crb;
  // RoleBindings in every namespace carry the role only when none of it is cluster-scoped.
  const rb = can(perms, `${rbac}/rolebindings:create`, "x/x");
  return rb && (t.grants ?? []).every(namespaceEffective) && mayBind(`x/${role}`) ? rb : undefined;
}

/** The Kubernetes part of the graph, sorted once for every step, and the edges made so far. */
interface K8sView {
  readonly g: GraphView;
  readonly nodes: readonly GraphNode[];
  readonly pods: readonly GraphNode[];
  readonly tokenHolders: readonly GraphNode[];
  readonly bindings: readonly GraphNode[];
  readonly workloadNodes: readonly GraphNode[];
  /** Identities something is bound to (a credential with nothing bound to it is no step anywhere). */
  readonly holders: ReadonlySet<string>;
  readonly out: EscalationEdge[];
}

function push(
  v: K8sView,
  type: string,
  from: string,
  to: string,
  via: { action: string; resource: string },
): void {
  v.out.push({ kind: "escalation", type, from, to, via });
}

function viewOf(g: GraphView): K8sView {
  const nodes = [...g.nodes.values()].filter((n) => n.provider === "k8s");
  const outOf = (n: GraphNode) => g.out.get(n.id) ?? [];
  return {
    g,
    nodes,
    pods: nodes.filter((n) => n.type === "pod" || (n.type === "workload" && n.subtype === "Pod")),
    tokenHolders: nodes.filter(
      (n) =>
        n.subtype === "ServiceAccount" &&
        outOf(n).some((e) => e.type === "bound-by" || e.type === "member-of"),
    ),
    bindings: nodes.filter((n) => n.type === "binding"),
    workloadNodes: nodes.filter((n) => n.type === "workload" && n.subtype !== "Pod"),
    holders: new Set(
      nodes
        .filter((n) => outOf(n).some((e) => ["bound-by", "member-of", "assumes"].includes(e.type)))
        .map((n) => n.id),
    ),
    out: [],
  };
}

/**
 * The namespace a pod is made in: whatever runs there may run as any of its accounts. A pod made in
 * a namespace reaches its node only when it may be privileged: the namespace's Pod Security level
 * (exported Namespace) admits that unless it enforces `baseline` or `restricted`; a namespace not
 * in the input leaves it unknown.
 */
function namespaceEdges(v: K8sView): void {
  const namespaces = new Set(v.bindings.map((b) => b.namespace).filter((x): x is string => x !== undefined));
  for (const ns of namespaces)
    for (const sa of v.nodes)
      if (sa.subtype === "ServiceAccount" && sa.namespace === ns && v.holders.has(sa.id))
        push(v, "IDENTITY_ASSUME", `k8s:Namespace:${ns}`, sa.id, {
          action: "spec.serviceAccountName",
          resource: `${ns}/${sa.name}`,
        });
  for (const ns of namespaces) {
    const level = v.g.nodes.get(`k8s:Namespace:${ns}`)?.attrs?.podSecurity;
    if (level === "baseline" || level === "restricted") continue;
    v.out.push({
      kind: "escalation",
      type: "PRIVILEGED_POD",
      from: `k8s:Namespace:${ns}`,
      to: "k8s:Node:*",
      via: {
        action: "pod-security.kubernetes.io/enforce",
        resource: `${ns}: ${level || "unset (privileged)"}`,
      },
      ...(level === undefined
        ? {
            unknown: `namespace ${ns} is not in the input: whether its Pod Security admits privileged pods is unknown`,
          }
        : {}),
    });
  }
}

/**
 * Identity edges: workloads, pods and containers assume their service account; identities discover
 * their permission sets; members reach their groups; accounts assume their cloud identities.
 */
function identityEdges(v: K8sView): void {
  for (const n of v.nodes) {
    for (const e of v.g.out.get(n.id) ?? []) {
      // A credential with nothing bound to it is no step anywhere (KubeHound draws no edge either).
      if ((e.type === "runs-as" || e.type === "falls-back-to") && v.holders.has(e.to)) {
        push(v, "IDENTITY_ASSUME", n.id, e.to, NONE);
        const containers = String(n.attrs?.containers ?? "")
          .split(",")
          .filter(Boolean);
        if (n.type === "pod" || n.subtype === "Pod")
          for (const c of containers)
            push(v, "IDENTITY_ASSUME", `k8s:Container:${n.namespace}/${n.name}/${c}`, e.to, NONE);
      }
      if (e.type === "owns") push(v, "POD_ATTACH", n.id, e.to, NONE);
      if (e.type === "bound-by") push(v, "PERMISSION_DISCOVER", n.id, e.to, NONE);
      if (e.type === "member-of") push(v, "MEMBER_OF", n.id, e.to, NONE);
      if (e.type === "assumes") push(v, "CLOUD_ASSUME", n.id, e.to, NONE);
    }
  }
}

const runs = (v: K8sView) => v.nodes.filter((x) => x.type === "pod" || x.type === "workload");
const list = (s: unknown) =>
  String(s ?? "")
    .split(",")
    .filter(Boolean);

/** Container escapes from pod specs: privilege, host namespaces, capabilities, host paths. */
function escapeEdges(v: K8sView): void {
  for (const n of runs(v)) {
    const a = n.attrs ?? {};
    const caps = new Set(list(a.capabilities));
    const node = `k8s:Node:${a.nodeName ?? "*"}`;
    const from = n.id;
    const via = { action: "pod spec", resource: node };
    if (a.privileged) push(v, "CE_PRIV_MOUNT", from, node, via);
    if (a.privileged && a.hostPID) push(v, "CE_NSENTER", from, node, via);
    if (caps.has("SYS_MODULE")) push(v, "CE_MODULE_LOAD", from, node, via);
    if (a.hostPID && caps.has("SYS_PTRACE")) push(v, "CE_SYS_PTRACE", from, node, via);
    if (a.hostNetwork && caps.has("NET_ADMIN")) push(v, "CE_NET_MITM", from, node, via);
    for (const p of list(a.hostPaths)) {
      const clean = p.replace(/\/+$/, "") || "/";
      if (clean === "/proc/sys/kernel" || clean === "/proc") push(v, "CE_UMH_CORE_PATTERN", from, node, via);
      if (clean === "/var/log") push(v, "CE_VAR_LOG_SYMLINK", from, node, via);
      if (clean === "/") push(v, "EXPLOIT_HOST_WRITE", from, node, via);
      if (["/root/.ssh", "/etc", "/root", "/home"].includes(clean))
        push(v, "EXPLOIT_HOST_READ", from, node, via);
      if (clean === "/var/lib/kubelet/pods" || clean === "/var/lib/kubelet" || clean === "/")
        push(v, "EXPLOIT_HOST_TRAVERSE", from, node, via);
    }
    if (a.shareProcessNamespace) {
      const cs = list(a.containers);
      for (const x of cs)
        for (const y of cs)
          if (x !== y)
            push(
              v,
              "SHARE_PS_NAMESPACE",
              `k8s:Container:${n.namespace}/${n.name}/${x}`,
              `k8s:Container:${n.namespace}/${n.name}/${y}`,
              via,
            );
    }
  }
}

/**
 * Exposed endpoints (KubeHound's ENDPOINT_EXPLOIT, Endpoint → Container): every declared container
 * port is an entry point, at its widest exposure — a Service that selects the pod (`External`, the
 * endpoint named after the Service), a hostPort (`NodeIP`), else the pod IP (`ClusterIP`).
 */
function endpointEdges(v: K8sView): void {
  for (const n of runs(v)) {
    const a = n.attrs ?? {};
    const services = new Map<string, string>(); // "container|port name or number" → endpoint id
    for (const entry of list(a.exposedBy)) {
      const [svc, svcPort, container, port] = entry.split("|") as [string, string, string, string];
      services.set(`${container}|${port}`, `k8s:Endpoint:${n.namespace}/${svc}:${svcPort}`);
    }
    for (const entry of list(a.ports)) {
      const [container, name, port, hostPort, protocol] = entry.split("|") as [
        string,
        string,
        string,
        string,
        string,
      ];
      const key = `${container}|${name || port}`;
      const exposure = services.has(key) ? "External" : hostPort ? "NodeIP" : "ClusterIP";
      const endpoint =
        services.get(key) ?? `k8s:Endpoint:${n.namespace}/${n.name}/${container}:${name || port}`;
      push(v, "ENDPOINT_EXPLOIT", endpoint, `k8s:Container:${n.namespace}/${n.name}/${container}`, {
        action: `exposure ${exposure}`,
        resource: `${protocol}/${hostPort || port}`,
      });
    }
  }
}

/**
 * Tokens on the node's disk (KubeHound's TOKEN_STEAL): the kubelet keeps every pod's projected
 * service-account token under /var/lib/kubelet/pods, so whoever holds the node's filesystem (a
 * container escape, EXPLOIT_HOST_TRAVERSE) holds the identity of every pod that may run there: a
 * pod placed by nodeName on that node, or any pod whose placement the input does not fix.
 */
function tokenStealEdges(v: K8sView): void {
  const named = new Set(
    v.nodes
      .filter((n) => n.subtype === "Node" || n.attrs?.nodeName !== undefined)
      .map((n) => `k8s:Node:${n.subtype === "Node" ? n.name : n.attrs?.nodeName}`),
  );
  const stolen = new Set<string>();
  for (const n of runs(v)) {
    for (const e of v.g.out.get(n.id) ?? []) {
      if ((e.type !== "runs-as" && e.type !== "falls-back-to") || !v.holders.has(e.to)) continue;
      // No token is mounted when the service account opts out and the pod does not opt back in.
      const sa = v.g.nodes.get(e.to);
      if (sa?.attrs?.automountServiceAccountToken === false && n.attrs?.automountServiceAccountToken !== true)
        continue;
      const on =
        n.attrs?.nodeName === undefined
          ? ["k8s:Node:*", ...named]
          : ["k8s:Node:*", `k8s:Node:${n.attrs.nodeName}`];
      for (const node of on) {
        if (stolen.has(`${node}|${e.to}`)) continue;
        stolen.add(`${node}|${e.to}`);
        push(v, "TOKEN_STEAL", node, e.to, { action: "projected token", resource: "/var/lib/kubelet/pods" });
      }
    }
  }
}

/** One permission set's grants, where they apply, and how its edges are probed. */
interface PermissionSet {
  readonly b: GraphNode;
  readonly perms: readonly Perm[];
  /** undefined: cluster-wide. */
  readonly ns: string | undefined;
  /** A probe resource for "any object in scope". */
  readonly any: string;
  /** Where a pod or workload it makes lands: its namespace's workloads, or any node. */
  readonly made: string;
}

function permissionSet(b: GraphNode): PermissionSet | undefined {
  const perms: Perm[] = [];
  for (const gr of b.grants ?? []) {
    try {
      perms.push({ rule: compileRule({ action: gr.action, resource: gr.resource }) });
    } catch {}
  }
  if (perms.length === 0) return undefined;
  const ns = b.namespace;
  return {
    b,
    perms,
    ns,
    any: ns === undefined ? "*/x" : `${ns}/x`,
    // A pod made in a namespace runs as any account of that namespace: the step is to the
    // namespace's workloads, not off it. Made cluster-wide, it can be placed on any node.
    made: ns === undefined ? "k8s:Node:*" : `k8s:Namespace:${ns}`,
  };
}

/** The first probe the set's grants allow: `[action, resource]` pairs. */
function first(s: PermissionSet, ...probes: [string, string][]): PermissionGrant | undefined {
  for (const [action, resource] of probes) {
    const hit = can(s.perms, action, resource);
    if (hit) return hit;
  }
  return undefined;
}

function edgeIf(
  v: K8sView,
  s: PermissionSet,
  type: string,
  to: string,
  via: PermissionGrant | undefined,
): void {
  if (via) push(v, type, s.b.id, to, via);
}

const inScope = (s: PermissionSet) => (n: GraphNode) => s.ns === undefined || n.namespace === s.ns;

/** Making pods, and exec into or patching the pods in scope. */
function podEdges(v: K8sView, s: PermissionSet): void {
  edgeIf(v, s, "POD_CREATE", s.made, first(s, ["k8s:core/pods:create", s.any]));
  for (const pod of v.pods.filter(inScope(s))) {
    const res = `${pod.namespace}/${pod.name}`;
    edgeIf(v, s, "POD_EXEC", pod.id, first(s, ["k8s:core/pods/exec:create", res]));
    edgeIf(v, s, "POD_PATCH", pod.id, first(s, ["k8s:core/pods:patch", res]));
  }
}

/**
 * The accounts in scope: their legacy token Secret read by name or found by listing — only where
 * the input shows one (by its real name), none where the namespace's Secrets were exported without
 * one, unknown where they were not — a token minted, the account impersonated.
 */
function accountEdges(v: K8sView, s: PermissionSet): void {
  for (const sa of v.tokenHolders.filter(inScope(s))) {
    const res = `${sa.namespace}/${sa.name}`;
    const tokens = sa.attrs?.tokenSecrets;
    const known = typeof tokens === "string";
    const names = known ? tokens.split(",").filter(Boolean) : [`${sa.name}-token-x`];
    const unknown = known
      ? undefined
      : `the input has no Secrets of namespace ${sa.namespace}: whether ${sa.name} has a legacy token Secret is unknown`;
    for (const [type, verb] of [
      ["TOKEN_BRUTEFORCE", "get"],
      ["TOKEN_LIST", "list"],
    ] as const) {
      const via = names
        .map((t) =>
          first(s, [
            `k8s:core/secrets:${verb}`,
            verb === "get" ? `${sa.namespace}/${t}` : `${sa.namespace}/*`,
          ]),
        )
        .find((x) => x !== undefined);
      if (via)
        v.out.push({
          kind: "escalation",
          type,
          from: s.b.id,
          to: sa.id,
          via,
          ...(unknown ? { unknown } : {}),
        });
    }
    edgeIf(v, s, "TOKEN_CREATE", sa.id, first(s, ["k8s:core/serviceaccounts/token:create", res]));
    edgeIf(v, s, "IDENTITY_IMPERSONATE", sa.id, first(s, ["k8s:core/serviceaccounts:impersonate", res]));
  }
}

/** Reading Secrets of any name (get or list) reads whatever they hold; impersonating users; making accounts. */
function secretAndIdentityEdges(v: K8sView, s: PermissionSet): void {
  edgeIf(
    v,
    s,
    "SECRET_READ",
    `k8s:Secret:${s.ns ?? "*"}/*`,
    first(s, ["k8s:core/secrets:list", s.any], ["k8s:core/secrets:get", s.any]),
  );
  const userRes = s.ns === undefined ? "x" : s.any;
  edgeIf(
    v,
    s,
    "IDENTITY_IMPERSONATE",
    "k8s:Group:system:masters",
    first(s, ["k8s:core/users:impersonate", userRes], ["k8s:core/groups:impersonate", userRes]),
  );
  edgeIf(
    v,
    s,
    "SA_CREATE",
    `k8s:ServiceAccount:${s.ns ?? "*"}/*`,
    first(s, ["k8s:core/serviceaccounts:create", s.any]),
  );
}

/**
 * Workloads: creating one (a new pod template, like POD_CREATE) and patching one (the pods it rolls
 * out run as its account, and a new template can name another) are separate steps.
 */
function workloadEdges(v: K8sView, s: PermissionSet): void {
  edgeIf(
    v,
    s,
    "WORKLOAD_CREATE",
    s.made,
    first(s, ...WORKLOAD_RESOURCES.map((w): [string, string] => [`k8s:${w}:create`, s.any])),
  );
  let patched = false;
  for (const w of v.workloadNodes.filter(inScope(s))) {
    const res = WORKLOAD_RESOURCE_OF[w.subtype ?? ""];
    if (!res) continue;
    const via = first(
      s,
      [`k8s:${res}:patch`, `${w.namespace}/${w.name}`],
      [`k8s:${res}:update`, `${w.namespace}/${w.name}`],
    );
    if (!via) continue;
    push(v, "WORKLOAD_CREATE", s.b.id, w.id, via);
    patched = true;
  }
  if (!patched)
    edgeIf(
      v,
      s,
      "WORKLOAD_CREATE",
      s.made,
      first(s, ...WORKLOAD_RESOURCES.map((w): [string, string] => [`k8s:${w}:patch`, s.any])),
    );
}

/** The control plane: the node proxy, approving client certificates, mutating webhooks, escalating roles, binding them. */
function controlPlaneEdges(v: K8sView, s: PermissionSet): void {
  edgeIf(
    v,
    s,
    "NODE_PROXY",
    "k8s:Node:*",
    first(s, ["k8s:core/nodes/proxy:get", "x"], ["k8s:core/nodes/proxy:create", "x"]),
  );
  // Approving a client certificate mints an identity (the kube-apiserver-client signer, or any).
  if (
    first(
      s,
      ["k8s:certificates.k8s.io/signers:approve", "kubernetes.io/kube-apiserver-client"],
      ["k8s:certificates.k8s.io/signers:approve", "x"],
    )
  )
    edgeIf(
      v,
      s,
      "CSR_APPROVE",
      "k8s:Group:system:masters",
      first(s, ["k8s:certificates.k8s.io/certificatesigningrequests/approval:update", "x"]),
    );
  edgeIf(
    v,
    s,
    "WEBHOOK_CONFIG",
    "k8s:Pod:*",
    first(
      s,
      ["k8s:admissionregistration.k8s.io/mutatingwebhookconfigurations:create", "x"],
      ["k8s:admissionregistration.k8s.io/mutatingwebhookconfigurations:patch", "x"],
    ),
  );
  edgeIf(
    v,
    s,
    "ROLE_ESCALATE",
    "k8s:Group:system:masters",
    first(
      s,
      ["k8s:rbac.authorization.k8s.io/clusterroles:escalate", "x"],
      ["k8s:rbac.authorization.k8s.io/roles:escalate", s.any],
    ),
  );
  for (const t of v.bindings) {
    const via = t.id === s.b.id ? undefined : roleBind(s.perms, s.ns, t);
    if (via) push(v, "ROLE_BIND", s.b.id, t.id, via);
  }
}

/**
 * Every node's kubelet credential is in `system:nodes`: when something binds the group, any node
 * (the target of a container escape) assumes it, and each exported Node assumes it too.
 */
function nodeGroupEdges(v: K8sView): void {
  if (v.g.nodes.has("k8s:Group:system:nodes"))
    push(v, "IDENTITY_ASSUME", "k8s:Node:*", "k8s:Group:system:nodes", NONE);
  for (const n of v.nodes.filter((x) => x.subtype === "Node"))
    for (const e of v.g.out.get(n.id) ?? [])
      if (e.type === "member-of") push(v, "IDENTITY_ASSUME", n.id, e.to, NONE);
}

/** The steps in order; each permission set's edges in order too. */
export function k8sEscalations(g: GraphView): EscalationEdge[] {
  const v = viewOf(g);
  namespaceEdges(v);
  identityEdges(v);
  escapeEdges(v);
  endpointEdges(v);
  tokenStealEdges(v);
  for (const b of v.bindings) {
    const s = permissionSet(b);
    if (!s) continue;
    podEdges(v, s);
    accountEdges(v, s);
    secretAndIdentityEdges(v, s);
    workloadEdges(v, s);
    controlPlaneEdges(v, s);
  }
  nodeGroupEdges(v);
  return v.out;
}
