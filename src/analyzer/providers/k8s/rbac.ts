/**
 * Kubernetes RBAC rules in writ's vocabulary: `k8s:<group>/<resource>[/<sub>]:<verb>` on
 * `namespace/name` (cluster-scoped objects: `name`). A rule bound cluster-wide covers `*`; a rule
 * bound in a namespace covers `ns/*`. Built-in ClusterRoles a binding may name without them being in
 * the input are approximated here (cluster-admin exactly; admin, edit and view by their shape).
 */
import { K8S_RESOURCE_VERBS } from "../../../core/vocabulary.js";
import type { PermissionGrant, SourceRef } from "../../model.js";

export interface RbacRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** Verbs a `*` stands for on an ordinary resource. */
export const RESOURCE_VERBS = K8S_RESOURCE_VERBS;

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

export function toRule(v: unknown): RbacRule {
  const o = (v ?? {}) as Record<string, unknown>;
  return {
    apiGroups: strings(o.apiGroups),
    resources: strings(o.resources),
    verbs: strings(o.verbs),
    resourceNames: strings(o.resourceNames),
    nonResourceURLs: strings(o.nonResourceURLs),
  };
}

export function groupName(g: string): string {
  return g === "" ? "core" : g;
}

/** The resource pattern a rule covers when bound in `namespace` (undefined: cluster-wide). */
export function resourcePattern(namespace: string | undefined, names: readonly string[]): string {
  if (names.length === 0) return namespace === undefined ? "*" : `${namespace}/*`;
  const esc = names.map((n) => n.replace(/[*?|\\]/g, (c) => `\\${c}`));
  if (namespace !== undefined) return esc.map((n) => `${namespace}/${n}`).join("|");
  return esc.flatMap((n) => [n, `*/${n}`]).join("|");
}

/** One grant per (group, resource, verb) of the rule. */
export function ruleGrants(
  rule: RbacRule,
  namespace: string | undefined,
  text: string,
  source: SourceRef | undefined,
): PermissionGrant[] {
  const out: PermissionGrant[] = [];
  const resource = resourcePattern(namespace, rule.resourceNames ?? []);
  for (const g of rule.apiGroups ?? []) {
    for (const r of rule.resources ?? []) {
      for (const v of rule.verbs ?? []) {
        out.push({
          kind: "permission",
          action: `k8s:${groupName(g)}/${r === "*" ? "*" : r}:${v}`,
          resource,
          text,
          source,
        });
      }
    }
  }
  // Non-resource URLs (`/healthz`, `/metrics`) only exist cluster-wide.
  if (namespace === undefined) {
    for (const url of rule.nonResourceURLs ?? []) {
      for (const v of rule.verbs ?? []) {
        out.push({ kind: "permission", action: `k8s:nonresource/urls:${v}`, resource: url, text, source });
      }
    }
  }
  return out;
}

export function ruleText(rule: RbacRule): string {
  const groups = (rule.apiGroups ?? []).map((g) => (g === "" ? '""' : g)).join(",");
  const names = rule.resourceNames?.length ? ` names=${rule.resourceNames.join(",")}` : "";
  if (rule.nonResourceURLs?.length && !rule.resources?.length)
    return `nonResourceURLs=${rule.nonResourceURLs.join(",")} verbs=${(rule.verbs ?? []).join(",")}`;
  return `apiGroups=${groups} resources=${(rule.resources ?? []).join(",")} verbs=${(rule.verbs ?? []).join(",")}${names}`;
}

const READ = ["get", "list", "watch"];
const WRITE = ["create", "update", "patch", "delete", "deletecollection"];
const VIEW_CORE = [
  "configmaps",
  "endpoints",
  "persistentvolumeclaims",
  "pods",
  "pods/log",
  "replicationcontrollers",
  "services",
  "namespaces",
  "events",
  "limitranges",
  "resourcequotas",
  "serviceaccounts",
];
const VIEW_APPS = ["deployments", "daemonsets", "replicasets", "statefulsets"];

/** What `edit` and `admin` both allow on workloads and their secrets. */
const EDIT_WORKLOADS: readonly RbacRule[] = [
  { apiGroups: [""], resources: [...VIEW_CORE, "secrets"], verbs: [...READ, ...WRITE] },
  {
    apiGroups: [""],
    resources: ["pods/exec", "pods/attach", "pods/portforward"],
    verbs: ["create", "get"],
  },
  { apiGroups: ["apps"], resources: VIEW_APPS, verbs: [...READ, ...WRITE] },
  { apiGroups: ["batch"], resources: ["jobs", "cronjobs"], verbs: [...READ, ...WRITE] },
];
const IMPERSONATE_SERVICE_ACCOUNTS: RbacRule = {
  apiGroups: [""],
  resources: ["serviceaccounts"],
  verbs: ["impersonate"],
};

/**
 * Default ClusterRoles of a kubeadm cluster, approximated: `cluster-admin` is exact; `view` reads
 * the common namespaced objects but not secrets; `edit` adds writes and secrets; `admin` adds
 * roles and rolebindings.
 */
export const BUILTIN_CLUSTER_ROLES: ReadonlyMap<string, readonly RbacRule[]> = new Map<string, RbacRule[]>([
  [
    "cluster-admin",
    [
      { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
      { nonResourceURLs: ["*"], verbs: ["*"] },
    ],
  ],
  [
    "view",
    [
      { apiGroups: [""], resources: VIEW_CORE, verbs: READ },
      { apiGroups: ["apps"], resources: VIEW_APPS, verbs: READ },
      { apiGroups: ["batch"], resources: ["jobs", "cronjobs"], verbs: READ },
    ],
  ],
  ["edit", [...EDIT_WORKLOADS, IMPERSONATE_SERVICE_ACCOUNTS]],
  [
    "admin",
    [
      ...EDIT_WORKLOADS,
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles", "rolebindings"],
        verbs: [...READ, ...WRITE],
      },
      IMPERSONATE_SERVICE_ACCOUNTS,
    ],
  ],
]);

/** Resources that are cluster-scoped (their resource in writ's vocabulary is `name`). */
export const CLUSTER_SCOPED = new Set([
  "nodes",
  "namespaces",
  "persistentvolumes",
  "clusterroles",
  "clusterrolebindings",
  "certificatesigningrequests",
  "mutatingwebhookconfigurations",
  "validatingwebhookconfigurations",
  "customresourcedefinitions",
  "storageclasses",
  "priorityclasses",
  "csidrivers",
  "csinodes",
  "ingressclasses",
  "runtimeclasses",
  "apiservices",
  "tokenreviews",
  "subjectaccessreviews",
  "selfsubjectaccessreviews",
  "selfsubjectrulesreviews",
]);

/**
 * Kubernetes' own bindings for every caller (the API server's bootstrap policy, labelled
 * `kubernetes.io/bootstrapping: rbac-defaults`): the ClusterRoleBinding name, the ClusterRole it
 * names, the group subjects it carries by default (older releases also bound
 * `system:unauthenticated` to `system:basic-user` and `system:discovery`), and the rules that role
 * has in any release (self-reviews, discovery and health URLs, the service-account issuer's
 * documents). A grant to every caller is not a workload's overreach; only these exact subjects of
 * these exact bindings, with roles holding nothing more than these rules, are exempt.
 */
export const DEFAULT_PUBLIC_BINDINGS: ReadonlyMap<
  string,
  { readonly role: string; readonly groups: readonly string[]; readonly rules: readonly RbacRule[] }
> = new Map([
  [
    "system:basic-user",
    {
      role: "system:basic-user",
      groups: ["system:authenticated", "system:unauthenticated"],
      rules: [
        {
          apiGroups: ["authorization.k8s.io"],
          resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
          verbs: ["create"],
        },
        { apiGroups: ["authentication.k8s.io"], resources: ["selfsubjectreviews"], verbs: ["create"] },
      ],
    },
  ],
  [
    "system:discovery",
    {
      role: "system:discovery",
      groups: ["system:authenticated", "system:unauthenticated"],
      rules: [
        {
          nonResourceURLs: [
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/openapi",
            "/openapi/*",
            "/readyz",
            "/version",
            "/version/",
            "/swaggerapi",
            "/swaggerapi/*",
            "/swagger.json",
            "/swagger-2.0.0.pb-v1",
          ],
          verbs: ["get"],
        },
      ],
    },
  ],
  [
    "system:public-info-viewer",
    {
      role: "system:public-info-viewer",
      groups: ["system:authenticated", "system:unauthenticated"],
      rules: [
        { nonResourceURLs: ["/healthz", "/livez", "/readyz", "/version", "/version/"], verbs: ["get"] },
      ],
    },
  ],
  [
    "system:service-account-issuer-discovery",
    {
      role: "system:service-account-issuer-discovery",
      groups: ["system:serviceaccounts"],
      rules: [
        {
          nonResourceURLs: [
            "/.well-known/openid-configuration",
            "/.well-known/openid-configuration/",
            "/openid/v1/jwks",
            "/openid/v1/jwks/",
          ],
          verbs: ["get"],
        },
      ],
    },
  ],
]);

export const BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping";
