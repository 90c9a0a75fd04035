/**
 * Kubernetes' default bindings for every caller (item 6 of issue 12): on a `kubectl get
 * clusterroles,clusterrolebindings -o yaml` export carrying the real default objects, no workload is
 * told it inherits `system:basic-user`, `system:discovery`, `system:public-info-viewer` or
 * `system:service-account-issuer-discovery`; an edited default (an added subject, a widened role)
 * and an ordinary binding to `system:authenticated` still are.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { effectiveGrants, identityUse } from "../../../src/analyzer/graph.js";
import { type AnalysisResult, type GraphView, k8sPlugin } from "../../../src/analyzer/index.js";
import { analyze } from "../corpora.js";

const meta = (name: string, extra = "") => `  metadata:
    annotations:
      rbac.authorization.kubernetes.io/autoupdate: "true"
    creationTimestamp: "2026-09-14T08:02:11Z"
    labels:
      kubernetes.io/bootstrapping: rbac-defaults
    name: ${name}
    resourceVersion: "${100 + name.length}"
    uid: 3f6a${name.length}c1e-0000-4000-8000-00000000000${name.length % 10}
${extra}`;

/** The four default roles and their bindings, as a v1.30 API server exports them. */
const DEFAULTS = `apiVersion: v1
items:
- aggregationRule: null
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
${meta("system:basic-user")}  rules:
  - apiGroups:
    - authorization.k8s.io
    resources:
    - selfsubjectaccessreviews
    - selfsubjectrulesreviews
    verbs:
    - create
  - apiGroups:
    - authentication.k8s.io
    resources:
    - selfsubjectreviews
    verbs:
    - create
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
${meta("system:discovery")}  rules:
  - nonResourceURLs:
    - /api
    - /api/*
    - /apis
    - /apis/*
    - /healthz
    - /livez
    - /openapi
    - /openapi/*
    - /readyz
    - /version
    - /version/
    verbs:
    - get
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
${meta("system:public-info-viewer")}  rules:
  - nonResourceURLs:
    - /healthz
    - /livez
    - /readyz
    - /version
    - /version/
    verbs:
    - get
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
${meta("system:basic-user")}  roleRef:
    apiGroup: rbac.authorization.k8s.io
    kind: ClusterRole
    name: system:basic-user
  subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:authenticated
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
${meta("system:discovery")}  roleRef:
    apiGroup: rbac.authorization.k8s.io
    kind: ClusterRole
    name: system:discovery
  subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:authenticated
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
${meta("system:public-info-viewer")}  roleRef:
    apiGroup: rbac.authorization.k8s.io
    kind: ClusterRole
    name: system:public-info-viewer
  subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:authenticated
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:unauthenticated
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
${meta("system:service-account-issuer-discovery")}  roleRef:
    apiGroup: rbac.authorization.k8s.io
    kind: ClusterRole
    name: system:service-account-issuer-discovery
  subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: system:serviceaccounts
kind: List
metadata:
  resourceVersion: ""
`;

const WORKLOADS = `apiVersion: v1
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: triage-bot
    namespace: support
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: triage-bot
    namespace: support
  spec:
    selector:
      matchLabels: {app: triage-bot}
    template:
      metadata:
        labels: {app: triage-bot}
      spec:
        serviceAccountName: triage-bot
        containers:
        - name: agent
          image: registry.example.com/triage-bot:2.4.1
kind: List
metadata:
  resourceVersion: ""
`;

const kinds = (r: AnalysisResult) =>
  r.findings.map((f) => `${f.category}|${f.workload.id}|${f.permission.action}|${f.permission.resource}`);

async function run(files: Record<string, string>): Promise<{ result: AnalysisResult; graph: GraphView }> {
  const dir = await mkdtemp(join(tmpdir(), "writ-k8s-defaults-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return analyze([dir], { plugins: [k8sPlugin] });
}
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("Kubernetes' default bindings for every caller", () => {
  let plain: { result: AnalysisResult; graph: GraphView };
  beforeAll(async () => {
    plain = await run({ "rbac.yaml": DEFAULTS, "workloads.yaml": WORKLOADS });
  });

  it("reports nothing about them for a workload, and draws no escalation from them", () => {
    expect(kinds(plain.result)).toEqual([]);
    expect(plain.result.problems).toEqual([]);
    const fromDefaults = plain.result.escalations.filter((e) =>
      /system:(authenticated|serviceaccounts)/.test(e.to),
    );
    expect(fromDefaults).toEqual([]);
    // The exemption is recorded on the binding, subject by subject.
    expect(
      plain.graph.nodes.get("k8s:ClusterRoleBinding:system:public-info-viewer")?.attrs?.kubernetesDefaultFor,
    ).toBe("system:authenticated,system:unauthenticated");
  });

  it("exempts them when only the bindings were exported (the roles are the defaults)", async () => {
    const bindingsOnly = DEFAULTS.split("\n- ")
      .filter((x, i) => i === 0 || !x.includes("kind: ClusterRole\n"))
      .join("\n- ");
    expect(bindingsOnly).not.toContain("selfsubjectaccessreviews");
    const r = await run({ "crb.yaml": bindingsOnly, "workloads.yaml": WORKLOADS });
    expect(kinds(r.result)).toEqual([]);
    expect(r.result.problems.map((p) => p.code)).not.toContain("WARN_K8S_MISSING_ROLE");
  });

  it("still reports a subject someone added to a default binding", async () => {
    const edited = DEFAULTS.replace(
      "    name: system:basic-user\n  subjects:\n",
      "    name: system:basic-user\n  subjects:\n  - kind: ServiceAccount\n    name: triage-bot\n    namespace: support\n",
    );
    expect(edited).not.toBe(DEFAULTS);
    const r = await run({ "rbac.yaml": edited, "workloads.yaml": WORKLOADS });
    // Bound to the agent's own ServiceAccount, it is the agent's grant (judged as its own, here
    // with no activity data, so not called unused); the default group subjects stay exempt.
    const grants = effectiveGrants(r.graph, "k8s:Deployment:support/triage-bot", identityUse(r.graph));
    const held = grants.map((g) => `${g.grant.action}|${g.path.join(">")}`);
    expect(held).toContain(
      "k8s:authorization.k8s.io/selfsubjectaccessreviews:create|k8s:Deployment:support/triage-bot>k8s:ServiceAccount:support/triage-bot>k8s:ClusterRoleBinding:system:basic-user",
    );
    expect(held.filter((h) => h.includes("Group:"))).toEqual([]);
    expect(held.filter((h) => h.includes("nonresource"))).toEqual([]);
    expect(kinds(r.result).filter((k) => k.startsWith("inherited-overreach"))).toEqual([]);
  });

  it("reports a default role that was widened, and a non-default binding to system:authenticated", async () => {
    const widened = DEFAULTS.replace(
      "    - selfsubjectrulesreviews\n    verbs:\n    - create\n",
      '    - selfsubjectrulesreviews\n    verbs:\n    - create\n  - apiGroups:\n    - ""\n    resources:\n    - secrets\n    verbs:\n    - get\n    - list\n',
    );
    expect(widened).toContain("secrets");
    const r1 = await run({ "rbac.yaml": widened, "workloads.yaml": WORKLOADS });
    expect(kinds(r1.result)).toContain(
      "inherited-overreach|k8s:Deployment:support/triage-bot|k8s:core/secrets:get|*",
    );

    const custom = `${DEFAULTS}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everyone-reads-config
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}
`;
    const r2 = await run({ "rbac.yaml": custom, "workloads.yaml": WORKLOADS });
    const found = kinds(r2.result);
    expect(found).toContain(
      "inherited-overreach|k8s:Deployment:support/triage-bot|k8s:core/configmaps:get|*",
    );
    // Nothing from the defaults next to it.
    expect(found.filter((k) => /selfsubject|nonresource/.test(k))).toEqual([]);
  });

  it("does not exempt a look-alike: the default's name without the bootstrap label", async () => {
    const unlabelled = DEFAULTS.replaceAll("      kubernetes.io/bootstrapping: rbac-defaults\n", "");
    const r = await run({ "rbac.yaml": unlabelled, "workloads.yaml": WORKLOADS });
    expect(kinds(r.result)).toContain(
      "inherited-overreach|k8s:Deployment:support/triage-bot|k8s:authorization.k8s.io/selfsubjectaccessreviews:create|*",
    );
  });
});
