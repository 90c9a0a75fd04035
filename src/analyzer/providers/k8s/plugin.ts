/**
 * What the engine asks of Kubernetes: how risky a permission is, what `verbs: ["*"]` stands for,
 * the replacement Role from observed use (category 1), a dedicated ServiceAccount with its own
 * narrow Role (category 3), and the escalation edges for blast radius (escalation.ts).
 */
import { parseRequestAction } from "../../../core/index.js";
import type {
  GraphNode,
  PermissionGrant,
  ProviderPlugin,
  Reduction,
  ReductionContext,
  Severity,
  UsedPermission,
} from "../../model.js";
import { yamlList, yamlScalar } from "../../remediation.js";
import { k8sAuditImporter } from "./audit.js";
import { k8sEscalations } from "./escalation.js";
import { k8sLinker } from "./link.js";
import { k8sManifestImporter } from "./manifests.js";
import { RESOURCE_VERBS } from "./rbac.js";

const WORKLOADS =
  /^(apps\/(deployments|daemonsets|statefulsets|replicasets)|batch\/(jobs|cronjobs)|core\/replicationcontrollers)$/;

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
  blastQuestions: {
    "create-identities": "create identities (ServiceAccounts, tokens, client certificates, role bindings)",
    "read-unrelated-secrets": "read Secrets that are not its own",
    "mutate-outside-namespace": "create or change workloads outside its namespace (or on the node)",
  },
};
