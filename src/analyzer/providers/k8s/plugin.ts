/**
 * What the engine asks of Kubernetes: how risky a permission is, what `verbs: ["*"]` stands for,
 * the replacement Role from observed use (category 1), a dedicated ServiceAccount with its own
 * narrow Role (category 3), and the escalation edges for blast radius.
 */
import {
  compileRule,
  parseRequestAction,
  type Rule,
  ruleContains,
  ruleMatches,
} from "../../../core/index.js";
import type {
  EscalationEdge,
  GraphNode,
  GraphView,
  PermissionGrant,
  ProviderPlugin,
  Reduction,
  ReductionContext,
  Severity,
  UsedPermission,
} from "../../model.js";
import { yamlList, yamlScalar } from "../../remediation.js";
import { k8sAuditImporter } from "./audit.js";
import { k8sLinker } from "./link.js";
import { k8sManifestImporter } from "./manifests.js";
import { CLUSTER_SCOPED, RESOURCE_VERBS } from "./rbac.js";

const WORKLOADS =
  /^(apps\/(deployments|daemonsets|statefulsets|replicasets)|batch\/(jobs|cronjobs)|core\/replicationcontrollers)$/;

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

function parts(action: string): { service: string; verb: string } {
  const [, service = "", verb = ""] = action.split(":");
  return { service, verb };
}

export function k8sRisk(action: string, resource: string): Severity {
  const { service, verb } = parts(action);
  const wideService = service.includes("*");
  const wideVerb = verb === "*";
  const clusterWide = resource === "*" || resource.startsWith("*");
  if (wideService && wideVerb) return "critical";
  if (
    ["escalate", "bind", "impersonate"].includes(verb) ||
    (wideVerb && /rbac|serviceaccounts|secrets/.test(service))
  )
    return "critical";
  if (/^core\/secrets$/.test(service) || (wideService && ["get", "list", "watch"].includes(verb)))
    return clusterWide ? "critical" : "high";
  if (/serviceaccounts\/token$/.test(service) && verb === "create") return "critical";
  if (/nodes\/proxy$/.test(service)) return "critical";
  if (
    /certificatesigningrequests\/approval$/.test(service) ||
    (/signers$/.test(service) && ["approve", "sign"].includes(verb))
  )
    return "critical";
  if (/webhookconfigurations$/.test(service) && !["get", "list", "watch"].includes(verb)) return "critical";
  if (
    /^core\/pods(\/(exec|attach|ephemeralcontainers))?$/.test(service) &&
    ["create", "patch", "update", "*"].includes(verb)
  )
    return clusterWide ? "critical" : "high";
  if (WORKLOADS.test(service) && ["create", "patch", "update", "*"].includes(verb))
    return clusterWide ? "critical" : "high";
  if (/^rbac/.test(service) && !["get", "list", "watch"].includes(verb)) return "high";
  if (["get", "list", "watch"].includes(verb)) return "low";
  return "medium";
}

/** `*` verbs on a named resource stand for the eight resource verbs (special verbs stay explicit). */
export function k8sExpand(g: PermissionGrant): PermissionGrant[] {
  const { service, verb } = parts(g.action);
  if (verb !== "*" || service.includes("*") || service.startsWith("nonresource/")) return [g];
  return RESOURCE_VERBS.map((v) => ({ ...g, action: `k8s:${service}:${v}` }));
}

// ── remediation ──

interface RuleOut {
  group: string;
  resource: string;
  verbs: Set<string>;
  names: Set<string> | null;
  evidence: string[];
}

function rulesFrom(used: readonly UsedPermission[]): { byScope: Map<string, RuleOut[]> } {
  const byScope = new Map<string, RuleOut[]>(); // namespace or "" for cluster-wide
  for (const u of used) {
    let action: ReturnType<typeof parseRequestAction>;
    try {
      action = parseRequestAction(u.action);
    } catch {
      continue;
    }
    if (action.provider !== "k8s" || action.service.startsWith("nonresource/")) continue;
    const [group, ...res] = action.service.split("/");
    const resource = res.join("/");
    const slash = u.resource.indexOf("/");
    const ns = slash > 0 && !u.resource.startsWith("*") ? u.resource.slice(0, slash) : "";
    const name = slash > 0 ? u.resource.slice(slash + 1) : u.resource;
    const list = byScope.get(ns) ?? byScope.set(ns, []).get(ns)!;
    let r = list.find((x) => x.group === group && x.resource === resource);
    if (!r) {
      r = { group: group!, resource, verbs: new Set(), names: new Set(), evidence: [] };
      list.push(r);
    }
    r.verbs.add(action.action);
    if (
      name === "*" ||
      name === "" ||
      ["list", "watch", "create", "deletecollection"].includes(action.action)
    )
      r.names = null;
    else r.names?.add(name);
    r.evidence.push(
      `${action.action}: ${u.evidence}${u.confidence < 1 ? ` (confidence ${u.confidence})` : ""}`,
    );
  }
  return { byScope };
}

function rulesYaml(rules: readonly RuleOut[], indent = ""): string {
  if (rules.length === 0) return `${indent}rules: []  # nothing was used in the window\n`;
  let out = `${indent}rules:\n`;
  for (const r of [...rules].sort((a, b) =>
    `${a.group}/${a.resource}`.localeCompare(`${b.group}/${b.resource}`),
  )) {
    for (const e of r.evidence.slice(0, 4)) out += `${indent}  # evidence: ${e}\n`;
    out += `${indent}  - apiGroups: [${JSON.stringify(r.group === "core" ? "" : r.group)}]\n`;
    out += `${indent}    resources: ${yamlList([r.resource])}\n`;
    out += `${indent}    verbs: ${yamlList([...r.verbs].sort())}\n`;
    if (r.names && r.names.size > 0 && r.names.size <= 10)
      out += `${indent}    resourceNames: ${yamlList([...r.names].sort())}\n`;
  }
  return out;
}

function roleFiles(
  w: GraphNode,
  used: readonly UsedPermission[],
  name: string,
  sa: { ns: string; name: string },
): { path: string; language: "yaml"; content: string }[] {
  const { byScope } = rulesFrom(used);
  const ns = w.namespace ?? "default";
  const docs: string[] = [];
  for (const [scope, rules] of [...byScope].sort()) {
    if (scope === "") {
      docs.push(
        `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ${yamlScalar(name)}\n  annotations:\n    writ.dev/generated-by: writ scan\n${rulesYaml(rules)}`,
        `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ${yamlScalar(name)}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: ${yamlScalar(name)}\nsubjects:\n  - kind: ServiceAccount\n    name: ${yamlScalar(sa.name)}\n    namespace: ${yamlScalar(sa.ns)}\n`,
      );
    } else {
      docs.push(
        `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: ${yamlScalar(name)}\n  namespace: ${yamlScalar(scope)}\n  annotations:\n    writ.dev/generated-by: writ scan\n${rulesYaml(rules)}`,
        `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: ${yamlScalar(name)}\n  namespace: ${yamlScalar(scope)}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: ${yamlScalar(name)}\nsubjects:\n  - kind: ServiceAccount\n    name: ${yamlScalar(sa.name)}\n    namespace: ${yamlScalar(sa.ns)}\n`,
      );
    }
  }
  if (docs.length === 0)
    docs.push(
      `# ${w.subtype} ${ns}/${w.name} used no Kubernetes API in the window: it needs no Role.\n# Consider automountServiceAccountToken: false on its pod template.\n`,
    );
  return [{ path: `${ns}-${w.name}-rbac.yaml`, language: "yaml", content: docs.join("---\n") }];
}

function serviceAccountOf(ctx: ReductionContext): { ns: string; name: string } {
  const e = (ctx.graph.out.get(ctx.workload.id) ?? []).find(
    (x) => x.type === "runs-as" || x.type === "falls-back-to",
  );
  const sa = e ? ctx.graph.nodes.get(e.to) : undefined;
  return { ns: sa?.namespace ?? ctx.workload.namespace ?? "default", name: sa?.name ?? "default" };
}

function replacement(ctx: ReductionContext): Reduction {
  const w = ctx.workload;
  const sa = serviceAccountOf(ctx);
  const bindings = [...new Set(ctx.excess.map((p) => p.path[p.path.length - 1]!))];
  const used = ctx.used.filter((u) => u.action.startsWith("k8s:"));
  return {
    kind: "replace-role",
    summary: `replace ${bindings.map((b) => b.replace(/^k8s:/, "")).join(", ")} for ServiceAccount ${sa.ns}/${sa.name} with a Role built from the ${used.length} permission(s) it used; then delete the old binding(s)`,
    files: roleFiles(w, used, `${w.name}-observed`, sa),
  };
}

function dedicatedIdentity(ctx: ReductionContext): Reduction {
  const w = ctx.workload;
  const ns = w.namespace ?? "default";
  const name = w.agent ? `agent-${w.agent}` : `${w.name}`;
  const used = ctx.used.filter((u) => u.action.startsWith("k8s:"));
  const inherited = [
    ...new Set(
      ctx.excess.map(
        (p) =>
          p.path.find((id, i) => i > 0 && /Group|ServiceAccount:.*\/default$|ServiceAccount/.test(id)) ??
          p.path[1]!,
      ),
    ),
  ];
  const specPath =
    w.subtype === "CronJob"
      ? "spec.jobTemplate.spec.template.spec"
      : w.subtype === "Pod"
        ? "spec"
        : "spec.template.spec";
  const sa = `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${yamlScalar(name)}\n  namespace: ${yamlScalar(ns)}\n${w.agent ? `  annotations:\n    writ.dev/agent: ${yamlScalar(w.agent)}\n` : ""}automountServiceAccountToken: ${used.length > 0}\n`;
  const rbac = used.length > 0 ? roleFiles(w, used, `${name}`, { ns, name })[0]!.content : "";
  const patch = `# patch for ${w.subtype} ${ns}/${w.name} (${specPath}):\n${specPath
    .split(".")
    .map((k, i) => `${"  ".repeat(i)}${k}:`)
    .join("\n")}\n${"  ".repeat(specPath.split(".").length)}serviceAccountName: ${yamlScalar(name)}\n`;
  return {
    kind: "dedicated-identity",
    summary: `give ${w.subtype} ${ns}/${w.name} its own ServiceAccount \`${name}\` with only what it used (${used.length} permission(s)); leave ${inherited.map((i) => i.replace(/^k8s:/, "")).join(", ")} untouched for the others that rely on it`,
    files: [
      {
        path: `${ns}-${w.name}-identity.yaml`,
        language: "yaml",
        content: [sa, rbac].filter(Boolean).join("---\n"),
      },
      { path: `${ns}-${w.name}-patch.yaml`, language: "yaml", content: patch },
    ],
  };
}

// ── escalation edges ──

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

export function k8sEscalations(g: GraphView): EscalationEdge[] {
  const out: EscalationEdge[] = [];
  const push = (type: string, from: string, to: string, via: { action: string; resource: string }) =>
    out.push({ kind: "escalation", type, from, to, via });
  const nodes = [...g.nodes.values()].filter((n) => n.provider === "k8s");
  const pods = nodes.filter((n) => n.type === "pod" || (n.type === "workload" && n.subtype === "Pod"));
  const tokenHolders = nodes.filter(
    (n) =>
      n.subtype === "ServiceAccount" &&
      (g.out.get(n.id) ?? []).some((e) => e.type === "bound-by" || e.type === "member-of"),
  );
  const bindings = nodes.filter((n) => n.type === "binding");
  const workloadNodes = nodes.filter((n) => n.type === "workload" && n.subtype !== "Pod");
  const holders = new Set(
    nodes
      .filter((n) =>
        (g.out.get(n.id) ?? []).some((e) => ["bound-by", "member-of", "assumes"].includes(e.type)),
      )
      .map((n) => n.id),
  );
  // The namespace a pod is made in: whatever runs there may run as any of its accounts.
  for (const ns of new Set(bindings.map((b) => b.namespace).filter((x): x is string => x !== undefined)))
    for (const sa of nodes)
      if (sa.subtype === "ServiceAccount" && sa.namespace === ns && holders.has(sa.id))
        push("IDENTITY_ASSUME", `k8s:Namespace:${ns}`, sa.id, {
          action: "spec.serviceAccountName",
          resource: `${ns}/${sa.name}`,
        });
  // A pod made in a namespace reaches its node only when it may be privileged: the namespace's Pod
  // Security level (exported Namespace) admits that unless it enforces `baseline` or `restricted`;
  // a namespace not in the input leaves it unknown.
  for (const ns of new Set(bindings.map((b) => b.namespace).filter((x): x is string => x !== undefined))) {
    const level = g.nodes.get(`k8s:Namespace:${ns}`)?.attrs?.podSecurity;
    if (level === "baseline" || level === "restricted") continue;
    out.push({
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
  const none = { action: "", resource: "" };

  // Identity edges: workloads, pods and containers assume their service account; identities
  // discover their permission sets; nodes assume `system:nodes`.
  for (const n of nodes) {
    for (const e of g.out.get(n.id) ?? []) {
      // A credential with nothing bound to it is no step anywhere (KubeHound draws no edge either).
      if ((e.type === "runs-as" || e.type === "falls-back-to") && holders.has(e.to)) {
        push("IDENTITY_ASSUME", n.id, e.to, none);
        const containers = String(n.attrs?.containers ?? "")
          .split(",")
          .filter(Boolean);
        if (n.type === "pod" || n.subtype === "Pod")
          for (const c of containers)
            push("IDENTITY_ASSUME", `k8s:Container:${n.namespace}/${n.name}/${c}`, e.to, none);
      }
      if (e.type === "owns") push("POD_ATTACH", n.id, e.to, none);
      if (e.type === "bound-by") push("PERMISSION_DISCOVER", n.id, e.to, none);
      if (e.type === "member-of") push("MEMBER_OF", n.id, e.to, none);
      if (e.type === "assumes") push("CLOUD_ASSUME", n.id, e.to, none);
    }
  }

  // Container escapes from pod specs.
  for (const n of nodes.filter((x) => x.type === "pod" || x.type === "workload")) {
    const a = n.attrs ?? {};
    const caps = new Set(
      String(a.capabilities ?? "")
        .split(",")
        .filter(Boolean),
    );
    const paths = String(a.hostPaths ?? "")
      .split(",")
      .filter(Boolean);
    const node = `k8s:Node:${a.nodeName ?? "*"}`;
    const from = n.id;
    const via = { action: "pod spec", resource: node };
    if (a.privileged) push("CE_PRIV_MOUNT", from, node, via);
    if (a.privileged && a.hostPID) push("CE_NSENTER", from, node, via);
    if (caps.has("SYS_MODULE")) push("CE_MODULE_LOAD", from, node, via);
    if (a.hostPID && caps.has("SYS_PTRACE")) push("CE_SYS_PTRACE", from, node, via);
    if (a.hostNetwork && caps.has("NET_ADMIN")) push("CE_NET_MITM", from, node, via);
    for (const p of paths) {
      const clean = p.replace(/\/+$/, "") || "/";
      if (clean === "/proc/sys/kernel" || clean === "/proc") push("CE_UMH_CORE_PATTERN", from, node, via);
      if (clean === "/var/log") push("CE_VAR_LOG_SYMLINK", from, node, via);
      if (clean === "/") push("EXPLOIT_HOST_WRITE", from, node, via);
      if (["/root/.ssh", "/etc", "/root", "/home"].includes(clean))
        push("EXPLOIT_HOST_READ", from, node, via);
      if (clean === "/var/lib/kubelet/pods" || clean === "/var/lib/kubelet" || clean === "/")
        push("EXPLOIT_HOST_TRAVERSE", from, node, via);
    }
    if (a.shareProcessNamespace) {
      const cs = String(a.containers ?? "")
        .split(",")
        .filter(Boolean);
      for (const x of cs)
        for (const y of cs)
          if (x !== y)
            push(
              "SHARE_PS_NAMESPACE",
              `k8s:Container:${n.namespace}/${n.name}/${x}`,
              `k8s:Container:${n.namespace}/${n.name}/${y}`,
              via,
            );
    }
  }

  // Exposed endpoints (KubeHound's ENDPOINT_EXPLOIT, Endpoint → Container): every declared container
  // port is an entry point, at its widest exposure — a Service that selects the pod (`External`, the
  // endpoint named after the Service), a hostPort (`NodeIP`), else the pod IP (`ClusterIP`).
  for (const n of nodes.filter((x) => x.type === "pod" || x.type === "workload")) {
    const a = n.attrs ?? {};
    const services = new Map<string, string>(); // "container|port name or number" → endpoint id
    for (const entry of String(a.exposedBy ?? "")
      .split(",")
      .filter(Boolean)) {
      const [svc, svcPort, container, port] = entry.split("|") as [string, string, string, string];
      services.set(`${container}|${port}`, `k8s:Endpoint:${n.namespace}/${svc}:${svcPort}`);
    }
    for (const entry of String(a.ports ?? "")
      .split(",")
      .filter(Boolean)) {
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
      push("ENDPOINT_EXPLOIT", endpoint, `k8s:Container:${n.namespace}/${n.name}/${container}`, {
        action: `exposure ${exposure}`,
        resource: `${protocol}/${hostPort || port}`,
      });
    }
  }

  // Tokens on the node's disk (KubeHound's TOKEN_STEAL): the kubelet keeps every pod's projected
  // service-account token under /var/lib/kubelet/pods, so whoever holds the node's filesystem (a
  // container escape, EXPLOIT_HOST_TRAVERSE) holds the identity of every pod that may run there: a
  // pod placed by nodeName on that node, or any pod whose placement the input does not fix.
  const named = new Set(
    nodes
      .filter((n) => n.subtype === "Node" || n.attrs?.nodeName !== undefined)
      .map((n) => `k8s:Node:${n.subtype === "Node" ? n.name : n.attrs?.nodeName}`),
  );
  const stolen = new Set<string>();
  for (const n of nodes.filter((x) => x.type === "pod" || x.type === "workload")) {
    for (const e of g.out.get(n.id) ?? []) {
      if ((e.type !== "runs-as" && e.type !== "falls-back-to") || !holders.has(e.to)) continue;
      // No token is mounted when the service account opts out and the pod does not opt back in.
      const sa = g.nodes.get(e.to);
      if (sa?.attrs?.automountServiceAccountToken === false && n.attrs?.automountServiceAccountToken !== true)
        continue;
      const on =
        n.attrs?.nodeName === undefined
          ? ["k8s:Node:*", ...named]
          : ["k8s:Node:*", `k8s:Node:${n.attrs.nodeName}`];
      for (const node of on) {
        if (stolen.has(`${node}|${e.to}`)) continue;
        stolen.add(`${node}|${e.to}`);
        push("TOKEN_STEAL", node, e.to, { action: "projected token", resource: "/var/lib/kubelet/pods" });
      }
    }
  }

  // Permission sets (bindings) → what their grants reach.
  for (const b of bindings) {
    const perms: Perm[] = [];
    for (const gr of b.grants ?? []) {
      try {
        perms.push({ rule: compileRule({ action: gr.action, resource: gr.resource }) });
      } catch {}
    }
    if (perms.length === 0) continue;
    const ns = b.namespace; // undefined: cluster-wide
    const inScope = (n: GraphNode) => ns === undefined || n.namespace === ns;
    const any = ns === undefined ? "*/x" : `${ns}/x`;
    /** The first probe the binding's grants allow: `[action, resource]` pairs. */
    const first = (...probes: [string, string][]) => {
      for (const [action, resource] of probes) {
        const hit = can(perms, action, resource);
        if (hit) return hit;
      }
      return undefined;
    };
    const edgeIf = (type: string, to: string, via: PermissionGrant | undefined) => {
      if (via) push(type, b.id, to, via);
    };
    // A pod made in a namespace runs as any account of that namespace: the step is to the
    // namespace's workloads, not off it. Made cluster-wide, it can be placed on any node.
    const made = ns === undefined ? "k8s:Node:*" : `k8s:Namespace:${ns}`;
    edgeIf("POD_CREATE", made, first(["k8s:core/pods:create", any]));
    for (const pod of pods.filter(inScope)) {
      const res = `${pod.namespace}/${pod.name}`;
      edgeIf("POD_EXEC", pod.id, first(["k8s:core/pods/exec:create", res]));
      edgeIf("POD_PATCH", pod.id, first(["k8s:core/pods:patch", res]));
    }
    for (const sa of tokenHolders.filter(inScope)) {
      const res = `${sa.namespace}/${sa.name}`;
      // A legacy token Secret is read by name, or found by listing: only where the input shows one
      // (by its real name), none where the namespace's Secrets were exported without one, unknown
      // where they were not.
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
            first([
              `k8s:core/secrets:${verb}`,
              verb === "get" ? `${sa.namespace}/${t}` : `${sa.namespace}/*`,
            ]),
          )
          .find((x) => x !== undefined);
        if (via)
          out.push({ kind: "escalation", type, from: b.id, to: sa.id, via, ...(unknown ? { unknown } : {}) });
      }
      edgeIf("TOKEN_CREATE", sa.id, first(["k8s:core/serviceaccounts/token:create", res]));
      edgeIf("IDENTITY_IMPERSONATE", sa.id, first(["k8s:core/serviceaccounts:impersonate", res]));
    }
    // Reading Secrets of any name (get or list) reads whatever they hold.
    edgeIf(
      "SECRET_READ",
      `k8s:Secret:${ns ?? "*"}/*`,
      first(["k8s:core/secrets:list", any], ["k8s:core/secrets:get", any]),
    );
    const userRes = ns === undefined ? "x" : any;
    edgeIf(
      "IDENTITY_IMPERSONATE",
      "k8s:Group:system:masters",
      first(["k8s:core/users:impersonate", userRes], ["k8s:core/groups:impersonate", userRes]),
    );
    edgeIf("SA_CREATE", `k8s:ServiceAccount:${ns ?? "*"}/*`, first(["k8s:core/serviceaccounts:create", any]));
    // Workloads: creating one (a new pod template, like POD_CREATE) and patching one (the pods it
    // rolls out run as its account, and a new template can name another) are separate steps.
    edgeIf(
      "WORKLOAD_CREATE",
      made,
      first(...WORKLOAD_RESOURCES.map((w): [string, string] => [`k8s:${w}:create`, any])),
    );
    let patched = false;
    for (const w of workloadNodes.filter(inScope)) {
      const res = WORKLOAD_RESOURCE_OF[w.subtype ?? ""];
      if (!res) continue;
      const via = first(
        [`k8s:${res}:patch`, `${w.namespace}/${w.name}`],
        [`k8s:${res}:update`, `${w.namespace}/${w.name}`],
      );
      if (!via) continue;
      push("WORKLOAD_CREATE", b.id, w.id, via);
      patched = true;
    }
    if (!patched)
      edgeIf(
        "WORKLOAD_CREATE",
        made,
        first(...WORKLOAD_RESOURCES.map((w): [string, string] => [`k8s:${w}:patch`, any])),
      );
    edgeIf(
      "NODE_PROXY",
      "k8s:Node:*",
      first(["k8s:core/nodes/proxy:get", "x"], ["k8s:core/nodes/proxy:create", "x"]),
    );
    // Approving a client certificate mints an identity (the kube-apiserver-client signer, or any).
    if (
      first(
        ["k8s:certificates.k8s.io/signers:approve", "kubernetes.io/kube-apiserver-client"],
        ["k8s:certificates.k8s.io/signers:approve", "x"],
      )
    )
      edgeIf(
        "CSR_APPROVE",
        "k8s:Group:system:masters",
        first(["k8s:certificates.k8s.io/certificatesigningrequests/approval:update", "x"]),
      );
    edgeIf(
      "WEBHOOK_CONFIG",
      "k8s:Pod:*",
      first(
        ["k8s:admissionregistration.k8s.io/mutatingwebhookconfigurations:create", "x"],
        ["k8s:admissionregistration.k8s.io/mutatingwebhookconfigurations:patch", "x"],
      ),
    );
    edgeIf(
      "ROLE_ESCALATE",
      "k8s:Group:system:masters",
      first(
        ["k8s:rbac.authorization.k8s.io/clusterroles:escalate", "x"],
        ["k8s:rbac.authorization.k8s.io/roles:escalate", any],
      ),
    );
    for (const t of bindings) {
      const via = t.id === b.id ? undefined : roleBind(perms, ns, t);
      if (via) push("ROLE_BIND", b.id, t.id, via);
    }
  }
  // Every node's kubelet credential is in `system:nodes`: when something binds the group, any node
  // (the target of a container escape) assumes it.
  if (g.nodes.has("k8s:Group:system:nodes"))
    push("IDENTITY_ASSUME", "k8s:Node:*", "k8s:Group:system:nodes", none);
  // Nodes assume `system:nodes` when something binds it.
  for (const n of nodes.filter((x) => x.subtype === "Node"))
    for (const e of g.out.get(n.id) ?? [])
      if (e.type === "member-of") push("IDENTITY_ASSUME", n.id, e.to, none);
  return out;
}

export const k8sPlugin: ProviderPlugin = {
  provider: "k8s",
  // audit logs first: an audit event embeds objects (requestObject) that look like manifests
  importers: [k8sAuditImporter, k8sManifestImporter],
  linker: k8sLinker,
  risk: k8sRisk,
  expand: k8sExpand,
  replacement,
  dedicatedIdentity,
  escalations: k8sEscalations,
};
