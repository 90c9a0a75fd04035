/**
 * Classification order on an export shaped like a real one (issue 12, items 3, 4, 5 and 7): a
 * `kubectl get -o yaml` List with no writ annotations, an API-server audit log at level Metadata
 * from two ReplicaSets of one Deployment (a rollout in the window), OTLP GenAI traces whose
 * retrievals are marked untrusted, and the agent's declared work in writ.yaml. The agent is tied
 * to its Deployment by the engine's `workloadAgents` input (what writ.yaml's `workloads` feed).
 *
 *   helpdesk-bot (support)  declared: read its settings ConfigMap (get, list, watch), read and
 *                           field-select its SMTP Secret, get its web Deployment, re-create its
 *                           cache ConfigMap; tools kb:search, kb:read_article, kubectl:*.
 *   what happens            routine declared reads; a declared read after an untrusted read in
 *                           conv-2; a rollout whose new pod lists/watches ConfigMaps and checks its
 *                           Deployment; in conv-1 a knowledge-base search returns an injection,
 *                           then a declared read, then the DB Secret, every Secret, every Deployment;
 *                           a one-off declared re-create late; a late list of ConfigMaps in billing.
 *   bindings                its own Role; ClusterRoleBinding log-shipper-read (label names the log
 *                           shipper), prometheus-k8s (name names Prometheus; the agent is listed
 *                           first), cluster-readers (no evidence but order: kube-state-metrics
 *                           first), RoleBinding kb-sync (label names the kb-sync CronJob; the owner
 *                           may list it in provisionedBindings).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeclaredMatcher } from "../../src/analyzer/declared.js";
import {
  type AnalysisResult,
  type DeclaredWork,
  declaredWork,
  defaultPlugins,
  type Finding,
  scanPaths,
} from "../../src/analyzer/index.js";
import { loadPolicy } from "../../src/app.js";

const T0 = Date.parse("2026-11-02T08:00:00Z");
const at = (min: number, sec = 0) => T0 + min * 60_000 + sec * 1000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", ".000000Z");
const AGENT_WL = "k8s:Deployment:support/helpdesk-bot";
const OLD_POD = "helpdesk-bot-7c9f8d6b5-k2x7p";
const NEW_POD = "helpdesk-bot-5d4b7c9f8-q8r2m";

const WRIT_YAML = `version: 1
environments:
  prod:
    description: The support cluster
runnerClasses:
  support:
    description: Support assistants
    ceiling:
      maxTtl: 1h
      allow:
        - action: "k8s:*:*"
          resource: "support/*"
        - action: "mcp:*:*"
agents:
  helpdesk-bot:
    owner: dana@acme.example
    purpose: Answers support tickets from the knowledge base and its own settings
    runnerClass: support
    environments: [prod]
    baseline:
      - action: "k8s:core/configmaps:get|list|watch"
        resource: "support/helpdesk-settings"
      - action: "k8s:core/secrets:get|list|watch"
        resource: "support/helpdesk-smtp"
      - action: "k8s:apps/deployments:get"
        resource: "support/helpdesk-web"
      - action: "k8s:core/configmaps:create|delete"
        resource: "support/helpdesk-cache"
        standingWrite: re-creates its cache after a schema change
    tools: ["kb:search", "kb:read_article", "kubectl:get_config", "kubectl:recreate_cache"]
`;

const meta = (kind: string, name: string, ns?: string, labels?: Record<string, string>) =>
  [
    `  kind: ${kind}`,
    "  metadata:",
    `    name: ${name}`,
    ...(ns ? [`    namespace: ${ns}`] : []),
    `    uid: ${(kind + name).padEnd(8, "x").slice(0, 8)}-1c2d-4e5f-8a9b-${(ns ?? "cluster").padEnd(12, "0").slice(0, 12)}`,
    '    resourceVersion: "48213"',
    '    creationTimestamp: "2026-10-14T09:12:44Z"',
    ...(labels ? ["    labels:", ...Object.entries(labels).map(([k, v]) => `      ${k}: ${v}`)] : []),
  ].join("\n");
const sa = (name: string, ns: string) => `- apiVersion: v1\n${meta("ServiceAccount", name, ns)}`;
const workload = (kind: string, name: string, ns: string, saName: string, labels: Record<string, string>) => {
  const lab = Object.entries(labels)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  const podSpec = `serviceAccountName: ${saName}\n          containers:\n            - name: main\n              image: registry.acme.example/${name}:2.3.1`;
  if (kind === "CronJob")
    return `- apiVersion: batch/v1\n${meta(kind, name, ns, labels)}\n  spec:\n    schedule: "*/30 * * * *"\n    jobTemplate:\n      spec:\n        template:\n          metadata:\n            labels: { ${lab} }\n          spec:\n            restartPolicy: OnFailure\n            ${podSpec.replace(/\n {10}/g, "\n            ")}`;
  return `- apiVersion: apps/v1\n${meta(kind, name, ns, labels)}\n  spec:\n    selector: { matchLabels: { ${lab} } }\n    template:\n      metadata:\n        labels: { ${lab} }\n      spec:\n        ${podSpec.replace(/\n {10}/g, "\n        ")}`;
};
const rule = (groups: string[], resources: string[], verbs: string[]) =>
  `  - apiGroups: [${groups.map((g) => JSON.stringify(g)).join(", ")}]\n    resources: [${resources.join(", ")}]\n    verbs: [${verbs.join(", ")}]`;
const binding = (
  kind: "RoleBinding" | "ClusterRoleBinding",
  name: string,
  ns: string | undefined,
  role: string,
  subjects: [string, string][],
  labels?: Record<string, string>,
) =>
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta(kind, name, ns, labels)}\n  roleRef:\n    apiGroup: rbac.authorization.k8s.io\n    kind: ${kind === "RoleBinding" ? "Role" : "ClusterRole"}\n    name: ${role}\n  subjects:\n${subjects.map(([n, s]) => `  - kind: ServiceAccount\n    name: ${n}\n    namespace: ${s}`).join("\n")}`;

const CLUSTER = `apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
${[
  sa("helpdesk-bot", "support"),
  sa("kb-sync", "support"),
  sa("log-shipper", "logging"),
  sa("prometheus-k8s", "monitoring"),
  sa("kube-state-metrics", "monitoring"),
  workload("Deployment", "helpdesk-bot", "support", "helpdesk-bot", { app: "helpdesk-bot" }),
  workload("CronJob", "kb-sync", "support", "kb-sync", { "app.kubernetes.io/name": "kb-sync" }),
  workload("DaemonSet", "fluent-bit", "logging", "log-shipper", { "app.kubernetes.io/name": "log-shipper" }),
  workload("Deployment", "prometheus-k8s", "monitoring", "prometheus-k8s", { app: "prometheus" }),
  workload("Deployment", "kube-state-metrics", "monitoring", "kube-state-metrics", {
    "app.kubernetes.io/name": "kube-state-metrics",
  }),
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta("Role", "helpdesk-bot", "support")}\n  rules:\n${[
    rule([""], ["configmaps"], ["get", "list", "watch", "create", "delete"]),
    rule([""], ["secrets"], ["get", "list", "watch"]),
    rule(["apps"], ["deployments"], ["get", "list"]),
  ].join("\n")}`,
  binding("RoleBinding", "helpdesk-bot", "support", "helpdesk-bot", [["helpdesk-bot", "support"]]),
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta("Role", "kb-sync", "support")}\n  rules:\n${rule([""], ["persistentvolumeclaims"], ["get", "list", "update"])}`,
  binding(
    "RoleBinding",
    "kb-sync",
    "support",
    "kb-sync",
    [
      ["kb-sync", "support"],
      ["helpdesk-bot", "support"],
    ],
    { "app.kubernetes.io/name": "kb-sync" },
  ),
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta("ClusterRole", "log-shipper-read")}\n  rules:\n${[
    rule([""], ["pods", "namespaces"], ["get", "list", "watch"]),
  ].join("\n")}`,
  binding(
    "ClusterRoleBinding",
    "log-shipper-read",
    undefined,
    "log-shipper-read",
    [
      ["log-shipper", "logging"],
      ["helpdesk-bot", "support"],
    ],
    { "app.kubernetes.io/name": "log-shipper" },
  ),
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta("ClusterRole", "prometheus-k8s")}\n  rules:\n${[
    rule([""], ["services", "endpoints", "pods"], ["get", "list", "watch"]),
    rule([""], ["configmaps"], ["get", "list", "watch"]),
  ].join("\n")}`,
  // The agent's ServiceAccount is listed first, but the binding's name is Prometheus's.
  binding("ClusterRoleBinding", "prometheus-k8s", undefined, "prometheus-k8s", [
    ["helpdesk-bot", "support"],
    ["prometheus-k8s", "monitoring"],
  ]),
  `- apiVersion: rbac.authorization.k8s.io/v1\n${meta("ClusterRole", "node-reader")}\n  rules:\n${rule([""], ["nodes"], ["get", "list"])}`,
  // Nothing names a subject: the first one is who it was made for.
  binding("ClusterRoleBinding", "cluster-readers", undefined, "node-reader", [
    ["kube-state-metrics", "monitoring"],
    ["helpdesk-bot", "support"],
  ]),
].join("\n")}
`;

interface AuditSpec {
  id: string;
  at: number;
  verb: string;
  resource: string;
  ns: string;
  name?: string;
  group?: string;
  pod?: string;
  query?: string;
  binding?: string;
}
const audit = (a: AuditSpec) => {
  const group = a.group ?? "";
  const base = `/${group ? `apis/${group}/v1` : "api/v1"}/namespaces/${a.ns}/${a.resource}`;
  const uri = a.name && !a.query ? `${base}/${a.name}` : `${base}${a.query ? `?${a.query}` : ""}`;
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: a.id,
    stage: "ResponseComplete",
    requestURI: uri,
    verb: a.verb,
    user: {
      username: "system:serviceaccount:support:helpdesk-bot",
      uid: "5b1f7a2e-0c1d-4e0a-9d43-7e5e0c2b9a11",
      groups: ["system:serviceaccounts", "system:serviceaccounts:support", "system:authenticated"],
      extra: {
        "authentication.kubernetes.io/credential-id": ["JTI=0b8c4c4e-2f7a-4a53-9b8e-3f1c2d7e6a50"],
        "authentication.kubernetes.io/node-name": ["ip-10-0-3-17.eu-west-1.compute.internal"],
        "authentication.kubernetes.io/pod-name": [a.pod ?? OLD_POD],
        "authentication.kubernetes.io/pod-uid": ["e1d2c3b4-a5f6-4711-8a9b-0c1d2e3f4a5b"],
      },
    },
    sourceIPs: ["10.0.3.88"],
    userAgent: "helpdesk-bot/2.3.1 (linux/amd64) kubernetes/$Format",
    objectRef: {
      resource: a.resource,
      namespace: a.ns,
      ...(a.name ? { name: a.name } : {}),
      apiGroup: group || undefined,
      apiVersion: "v1",
    },
    responseStatus: { metadata: {}, code: a.verb === "create" ? 201 : 200 },
    requestReceivedTimestamp: iso(a.at),
    stageTimestamp: iso(a.at + 12),
    annotations: {
      "authorization.k8s.io/decision": "allow",
      "authorization.k8s.io/reason":
        a.binding ??
        'RBAC: allowed by RoleBinding "helpdesk-bot/support" of Role "helpdesk-bot" to ServiceAccount "helpdesk-bot/support"',
    },
  });
};

interface SpanSpec {
  span: string;
  tool: string;
  conv: string;
  at: number;
  args: Record<string, string>;
  audit?: string;
  untrusted?: boolean;
}
const span = (s: SpanSpec) => ({
  traceId: `4bf92f3577b34da6a3ce929d0e0e${s.conv === "conv-1" ? "4736" : "9921"}`,
  spanId: s.span,
  name: `execute_tool ${s.tool}`,
  kind: 1,
  startTimeUnixNano: `${BigInt(s.at) * 1_000_000n}`,
  endTimeUnixNano: `${BigInt(s.at + 900) * 1_000_000n}`,
  attributes: [
    { key: "gen_ai.operation.name", value: { stringValue: "execute_tool" } },
    { key: "gen_ai.tool.name", value: { stringValue: s.tool } },
    { key: "gen_ai.agent.name", value: { stringValue: "helpdesk-bot" } },
    { key: "gen_ai.conversation.id", value: { stringValue: s.conv } },
    { key: "gen_ai.tool.call.arguments", value: { stringValue: JSON.stringify(s.args) } },
    ...(s.audit ? [{ key: "k8s.audit_id", value: { stringValue: s.audit } }] : []),
    ...(s.untrusted ? [{ key: "writ.untrusted_source", value: { boolValue: true } }] : []),
  ],
});

const PROM =
  'RBAC: allowed by ClusterRoleBinding "prometheus-k8s" of ClusterRole "prometheus-k8s" to ServiceAccount "helpdesk-bot/support"';
const AUDIT: AuditSpec[] = [];
// Routine declared reads over the first half: its settings and its SMTP Secret.
for (let i = 0; i < 24; i++)
  AUDIT.push({
    id: `r-${i}`,
    at: at(i * 8),
    verb: "get",
    resource: i % 2 ? "secrets" : "configmaps",
    ns: "support",
    name: i % 2 ? "helpdesk-smtp" : "helpdesk-settings",
  });
AUDIT.push(
  // Outside any conversation, in the first half: a Secret it was never declared to read.
  { id: "o-1", at: at(50, 30), verb: "get", resource: "secrets", ns: "support", name: "helpdesk-legacy" },
  // conv-2: an untrusted article read, then a declared read of the SMTP Secret.
  { id: "c2-1", at: at(100, 5), verb: "get", resource: "secrets", ns: "support", name: "helpdesk-smtp" },
  // The rollout: the new pod's informer start-up and its check of its Deployment (no tool call).
  { id: "s-1", at: at(300), verb: "list", resource: "configmaps", ns: "support", pod: NEW_POD },
  {
    id: "s-2",
    at: at(300, 1),
    verb: "watch",
    resource: "configmaps",
    ns: "support",
    pod: NEW_POD,
    query: "watch=true",
  },
  {
    id: "s-3",
    at: at(300, 2),
    verb: "list",
    resource: "secrets",
    ns: "support",
    name: "helpdesk-smtp",
    query: "fieldSelector=metadata.name%3Dhelpdesk-smtp",
    pod: NEW_POD,
  },
  {
    id: "s-4",
    at: at(300, 3),
    verb: "get",
    resource: "deployments",
    group: "apps",
    ns: "support",
    name: "helpdesk-web",
    pod: NEW_POD,
  },
  // conv-1: a declared read, the injected retrieval, a declared read again, then the exfiltration.
  {
    id: "c1-1",
    at: at(360),
    verb: "get",
    resource: "configmaps",
    ns: "support",
    name: "helpdesk-settings",
    pod: NEW_POD,
  },
  {
    id: "c1-2",
    at: at(361, 30),
    verb: "get",
    resource: "configmaps",
    ns: "support",
    name: "helpdesk-settings",
    pod: NEW_POD,
  },
  {
    id: "c1-3",
    at: at(362),
    verb: "get",
    resource: "secrets",
    ns: "support",
    name: "helpdesk-db",
    pod: NEW_POD,
  },
  { id: "c1-4", at: at(362, 30), verb: "list", resource: "secrets", ns: "support", pod: NEW_POD },
  {
    id: "c1-5",
    at: at(363),
    verb: "list",
    resource: "deployments",
    group: "apps",
    ns: "support",
    pod: NEW_POD,
  },
  // A one-off declared re-create, late in the window.
  {
    id: "x-1",
    at: at(420),
    verb: "delete",
    resource: "configmaps",
    ns: "support",
    name: "helpdesk-cache",
    pod: NEW_POD,
  },
  {
    id: "x-2",
    at: at(420, 1),
    verb: "create",
    resource: "configmaps",
    ns: "support",
    name: "helpdesk-cache",
    pod: NEW_POD,
  },
  // Late, with no tool call: every ConfigMap in billing, through Prometheus's binding.
  {
    id: "b-1",
    at: at(430),
    verb: "list",
    resource: "configmaps",
    ns: "billing",
    pod: NEW_POD,
    binding: PROM,
  },
  {
    id: "r-last",
    at: at(440),
    verb: "get",
    resource: "configmaps",
    ns: "support",
    name: "helpdesk-settings",
    pod: NEW_POD,
  },
);

const SPANS: SpanSpec[] = [
  {
    span: "9f1a000000000001",
    tool: "kb:read_article",
    conv: "conv-2",
    at: at(100),
    args: { id: "KB-2291" },
    untrusted: true,
  },
  {
    span: "9f1a000000000002",
    tool: "kubectl:get_config",
    conv: "conv-2",
    at: at(100, 4),
    args: { kind: "secret", name: "helpdesk-smtp" },
    audit: "c2-1",
  },
  {
    span: "7c2e000000000001",
    tool: "kubectl:get_config",
    conv: "conv-1",
    at: at(359, 59),
    args: { name: "helpdesk-settings" },
    audit: "c1-1",
  },
  {
    span: "7c2e000000000002",
    tool: "kb:search",
    conv: "conv-1",
    at: at(361),
    args: { query: "password reset for enterprise" },
    untrusted: true,
  },
  {
    span: "7c2e000000000003",
    tool: "kubectl:get_config",
    conv: "conv-1",
    at: at(361, 29),
    args: { name: "helpdesk-settings" },
    audit: "c1-2",
  },
  {
    span: "7c2e000000000004",
    tool: "kubectl:get_config",
    conv: "conv-1",
    at: at(361, 59),
    args: { kind: "secret", name: "helpdesk-db" },
    audit: "c1-3",
  },
  {
    span: "7c2e000000000005",
    tool: "kubectl:get_config",
    conv: "conv-1",
    at: at(362, 29),
    args: { kind: "secret" },
    audit: "c1-4",
  },
  {
    span: "7c2e000000000006",
    tool: "kubectl:get_config",
    conv: "conv-1",
    at: at(362, 59),
    args: { kind: "deployment" },
    audit: "c1-5",
  },
  {
    span: "5d0b000000000001",
    tool: "kubectl:recreate_cache",
    conv: "conv-3",
    at: at(419, 59),
    args: { name: "helpdesk-cache" },
  },
];

let dir: string;
let declared: Map<string, DeclaredWork>;
const scan = (extra: { provisionedBindings?: Map<string, string[]> } = {}) =>
  scanPaths([join(dir, "cluster.yaml"), join(dir, "audit.log"), join(dir, "traces.json")], {
    plugins: defaultPlugins,
    declared,
    workloadAgents: new Map([[AGENT_WL, "helpdesk-bot"]]),
    ...extra,
  });
const of = (r: AnalysisResult, workload: string, category: string): Finding[] =>
  r.findings.filter((f) => f.workload.id === workload && f.category === category);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-classify-"));
  await writeFile(join(dir, "writ.yaml"), WRIT_YAML);
  await writeFile(join(dir, "cluster.yaml"), CLUSTER);
  await writeFile(join(dir, "audit.log"), `${AUDIT.map(audit).join("\n")}\n`);
  await writeFile(
    join(dir, "traces.json"),
    JSON.stringify({
      resourceSpans: [
        {
          resource: {
            attributes: [
              { key: "service.name", value: { stringValue: "helpdesk-bot" } },
              { key: "k8s.namespace.name", value: { stringValue: "support" } },
              { key: "k8s.deployment.name", value: { stringValue: "helpdesk-bot" } },
            ],
          },
          scopeSpans: [{ scope: { name: "helpdesk-bot.agent" }, spans: SPANS.map(span) }],
        },
      ],
    }),
  );
  const loaded = await loadPolicy(join(dir, "writ.yaml"));
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  declared = declaredWork(loaded.policy!.config);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("category 2: declared work first, then taint, per action and resource", () => {
  it("reports exactly the uses outside declared work, one finding each", async () => {
    const r = await scan();
    expect(r.problems.filter((p) => p.severity === "error").map((p) => `${p.line} ${p.message}`)).toEqual([]);
    const cat2 = of(r, AGENT_WL, "unjustified-use");
    expect(cat2.map((f) => `${f.permission.action} ${f.permission.resource}`).sort()).toEqual([
      "k8s:apps/deployments:list support/*",
      "k8s:core/configmaps:list billing/*",
      "k8s:core/secrets:get support/helpdesk-db",
      "k8s:core/secrets:get support/helpdesk-legacy",
      "k8s:core/secrets:list support/*",
    ]);
    // Each cites its own audit event, never a declared one on the same grant.
    const ref = (f: Finding) => f.evidence.find((e) => e.kind === "event")!.ref;
    expect(
      Object.fromEntries(cat2.map((f) => [`${f.permission.action} ${f.permission.resource}`, ref(f)])),
    ).toEqual({
      "k8s:apps/deployments:list support/*": "c1-5",
      "k8s:core/configmaps:list billing/*": "b-1",
      "k8s:core/secrets:get support/helpdesk-db": "c1-3",
      "k8s:core/secrets:get support/helpdesk-legacy": "o-1",
      "k8s:core/secrets:list support/*": "c1-4",
    });
    expect(new Set(cat2.map((f) => f.id)).size).toBe(5);
    // The untainted one is not raised by the tainted one beside it on the same grant.
    const legacy = cat2.find((f) => f.permission.resource === "support/helpdesk-legacy")!;
    expect(legacy.evidence.some((e) => e.kind === "tool-call" || e.kind === "context")).toBe(false);
    expect(legacy.title).not.toContain("after untrusted input");
  });

  it("cites the audit event, the tool call and the untrusted retrieval of that use", async () => {
    const r = await scan();
    const f = of(r, AGENT_WL, "unjustified-use").find(
      (x) => x.permission.resource === "support/helpdesk-db",
    )!;
    expect(f.evidence.slice(0, 4).map((e) => [e.kind, e.ref])).toEqual([
      ["event", "c1-3"],
      ["tool-call", "7c2e000000000004"],
      ["context", "conv-1"],
      ["tool-call", "7c2e000000000002"],
    ]);
    expect(f.evidence[3]!.label).toContain("untrusted retrieval `kb:search`");
    expect(f.severity === "high" || f.severity === "critical").toBe(true);
    // The grant it went through: the agent's own Role, which also carries its declared SMTP reads.
    expect(f.evidence.some((e) => e.ref === "k8s:RoleBinding:support/helpdesk-bot")).toBe(true);
    expect(f.reduction.kind).toBe("gateway-guardrail");
    expect(f.reduction.files[0]!.content).toContain("context.tainted");
  });

  it("never reports a use declared work covers: before or after the taint, at start-up, or a late one-off", async () => {
    const r = await scan();
    const cited = r.findings
      .filter((f) => f.category === "unjustified-use")
      .flatMap((f) => f.evidence.filter((e) => e.kind === "event").map((e) => e.ref));
    for (const id of ["c2-1", "c1-1", "c1-2", "s-1", "s-2", "s-3", "s-4", "x-1", "x-2", "r-0", "r-1"])
      expect(cited).not.toContain(id);
    const actions = of(r, AGENT_WL, "unjustified-use").map((f) => f.permission.action);
    expect(actions).not.toContain("k8s:core/configmaps:create");
    expect(actions).not.toContain("k8s:core/configmaps:delete");
    expect(actions).not.toContain("k8s:apps/deployments:get");
  });

  it("the baseline deviation only qualifies a use outside declared work", async () => {
    const r = await scan();
    const billing = of(r, AGENT_WL, "unjustified-use").find((x) => x.permission.resource === "billing/*")!;
    const reasons = billing.evidence.filter((e) => e.ref === "reason").map((e) => e.label);
    expect(reasons[0]).toContain("is in neither the baseline nor a playbook");
    expect(reasons.some((x) => x.startsWith("far from the learned baseline"))).toBe(true);
    expect(billing.evidence.some((e) => e.kind === "tool-call")).toBe(false);
    // Gone through Prometheus's binding: cited, and that rule is not also reported as inherited.
    expect(billing.evidence.some((e) => e.ref === "k8s:ClusterRoleBinding:prometheus-k8s")).toBe(true);
  });
});

describe("list/watch against declared work limited to named objects", () => {
  const work = (action: string, resource: string): DeclaredMatcher =>
    new DeclaredMatcher({
      agent: "a",
      grants: [{ action, resource, from: "baseline" }],
      tools: [],
      playbooks: [],
    });

  it("covers an unselected list/watch of the same resource in the namespace when the verb is declared", () => {
    const m = work("k8s:core/configmaps:get|list|watch", "support/helpdesk-settings");
    expect(m.covering("k8s:core/configmaps:list", "support/*")).toEqual(["baseline"]);
    expect(m.covering("k8s:core/configmaps:watch", "support/*")).toEqual(["baseline"]);
    // …a field-selected one is a named request, covered as such.
    expect(m.covering("k8s:core/configmaps:list", "support/helpdesk-settings")).toEqual(["baseline"]);
    const glob = work("k8s:core/configmaps:list", "support/helpdesk-*");
    expect(glob.covering("k8s:core/configmaps:list", "support/*")).toEqual(["baseline"]);
    const cluster = work("k8s:core/namespaces:get|list", "support");
    expect(cluster.covering("k8s:core/namespaces:list", "*")).toEqual(["baseline"]);
  });

  it("does not cover another namespace, another resource, an undeclared verb, all namespaces, or Secrets", () => {
    const m = work("k8s:core/configmaps:get|list", "support/helpdesk-settings");
    expect(m.covering("k8s:core/configmaps:list", "billing/*")).toEqual([]);
    expect(m.covering("k8s:core/configmaps:list", "*")).toEqual([]);
    expect(m.covering("k8s:core/configmaps:watch", "support/*")).toEqual([]);
    expect(m.covering("k8s:core/services:list", "support/*")).toEqual([]);
    expect(
      work("k8s:core/configmaps:get", "support/helpdesk-settings").covering(
        "k8s:core/configmaps:list",
        "support/*",
      ),
    ).toEqual([]);
    const secret = work("k8s:core/secrets:get|list|watch", "support/helpdesk-smtp");
    expect(secret.covering("k8s:core/secrets:list", "support/*")).toEqual([]);
    expect(secret.covering("k8s:core/secrets:watch", "support/*")).toEqual([]);
    expect(secret.covering("k8s:core/secrets:list", "support/helpdesk-smtp")).toEqual(["baseline"]);
    const cluster = work("k8s:core/namespaces:list", "support");
    expect(cluster.covering("k8s:core/namespaces:list", "support/*")).toEqual([]);
    // A namespaced resource declared without its namespace does not cover a list across all of them.
    const unqualified = work("k8s:core/configmaps:list", "helpdesk-settings");
    expect(unqualified.covering("k8s:core/configmaps:list", "*")).toEqual([]);
  });
});

describe("the extra-subject rule: a binding made for another workload is inherited", () => {
  const inheritedFrom = (r: AnalysisResult, wl: string) =>
    of(r, wl, "inherited-overreach")
      .flatMap((f) => f.evidence.filter((e) => /^k8s:(Cluster)?RoleBinding:/.test(e.ref)).map((e) => e.ref))
      .sort();

  it("reports the agent's extra-subject bindings as category 3, by label, by name and by order", async () => {
    const r = await scan();
    expect([...new Set(inheritedFrom(r, AGENT_WL))]).toEqual([
      "k8s:ClusterRoleBinding:cluster-readers",
      "k8s:ClusterRoleBinding:log-shipper-read",
      "k8s:ClusterRoleBinding:prometheus-k8s",
      "k8s:RoleBinding:support/kb-sync",
    ]);
    const why = (b: string) =>
      of(r, AGENT_WL, "inherited-overreach")
        .find((f) => f.evidence.some((e) => e.ref === b))!
        .evidence.find((e) => e.ref === "why")!.label;
    expect(why("k8s:ClusterRoleBinding:log-shipper-read")).toContain(
      "label `app.kubernetes.io/name: log-shipper`",
    );
    expect(why("k8s:ClusterRoleBinding:prometheus-k8s")).toContain("its name `prometheus-k8s`");
    expect(why("k8s:ClusterRoleBinding:cluster-readers")).toContain("is its first subject");
    // The fix is to take the agent out of the binding, not to edit the binding's role.
    const logs = of(r, AGENT_WL, "inherited-overreach").find((f) =>
      f.evidence.some((e) => e.ref === "k8s:ClusterRoleBinding:log-shipper-read"),
    )!;
    expect(logs.reduction.kind).toBe("remove-extra-subject");
    expect(logs.reduction.files[0]!.content).toBe(
      `kubectl patch clusterrolebinding log-shipper-read --type=json -p '[{"op":"test","path":"/subjects/1/name","value":"helpdesk-bot"},{"op":"remove","path":"/subjects/1"}]'\n`,
    );
    const prom = of(r, AGENT_WL, "inherited-overreach").find((f) =>
      f.evidence.some((e) => e.ref === "k8s:ClusterRoleBinding:prometheus-k8s"),
    )!;
    expect(prom.reduction.files[0]!.content).toContain('"path":"/subjects/0/name","value":"helpdesk-bot"');
    // None of these grants is the agent's own unused excess: narrowing them would break their owners.
    const unused = of(r, AGENT_WL, "unused-excess");
    expect(
      unused
        .flatMap((f) => f.evidence.map((e) => e.ref))
        .filter((x) => x.includes("Binding:") && !x.endsWith("support/helpdesk-bot")),
    ).toEqual([]);
  });

  it("does not make a binding inherited for the workload it was made for", async () => {
    const r = await scan();
    expect(inheritedFrom(r, "k8s:DaemonSet:logging/fluent-bit")).toEqual([]);
    expect(inheritedFrom(r, "k8s:Deployment:monitoring/prometheus-k8s")).toEqual([]);
    expect(inheritedFrom(r, "k8s:Deployment:monitoring/kube-state-metrics")).toEqual([]);
    expect(inheritedFrom(r, "k8s:CronJob:support/kb-sync")).toEqual([]);
    // The agent's own single-subject binding is its own.
    expect(inheritedFrom(r, AGENT_WL)).not.toContain("k8s:RoleBinding:support/helpdesk-bot");
  });

  it("a binding the owner lists in provisionedBindings is the agent's own (category 1 when unused)", async () => {
    const r = await scan({
      provisionedBindings: new Map([["helpdesk-bot", ["RoleBinding/support/kb-sync"]]]),
    });
    expect(inheritedFrom(r, AGENT_WL)).not.toContain("k8s:RoleBinding:support/kb-sync");
    const unused = of(r, AGENT_WL, "unused-excess").filter((f) =>
      f.evidence.some((e) => e.ref === "k8s:RoleBinding:support/kb-sync"),
    );
    expect(unused.map((f) => f.permission.action).sort()).toEqual([
      "k8s:core/persistentvolumeclaims:get",
      "k8s:core/persistentvolumeclaims:list",
      "k8s:core/persistentvolumeclaims:update",
    ]);
    // Another agent's list does not apply to this one.
    const other = await scan({
      provisionedBindings: new Map([["someone-else", ["RoleBinding/support/kb-sync"]]]),
    });
    expect(inheritedFrom(other, AGENT_WL)).toContain("k8s:RoleBinding:support/kb-sync");
  });
});
