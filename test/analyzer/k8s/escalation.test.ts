/**
 * Escalation edges on exported-cluster shapes (issue 12 item 8): workload patch and job create are
 * two steps; the token brute-force step needs a legacy token Secret the export shows (and is
 * unknown, not assumed, when Secrets were not exported); making pods or Jobs in the agent's own
 * namespace is a step into that namespace, not off it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  type GraphView,
  htmlReport,
  jsonReport,
  k8sPlugin,
  markdownReport,
  sarifReport,
  terminalReport,
} from "../../../src/analyzer/index.js";
import { analyze } from "../corpora.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function run(files: Record<string, string>): Promise<{ result: AnalysisResult; graph: GraphView }> {
  const dir = await mkdtemp(join(tmpdir(), "writ-k8s-edges-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return analyze([dir], { plugins: [k8sPlugin] });
}
const edgeKeys = (r: { result: AnalysisResult }) =>
  r.result.escalations.map((e) => `${e.type}|${e.from}|${e.to}`);

/** `kubectl get sa,deploy -n agents -o yaml`: the agent and a neighbour it could roll out. */
const WORKLOADS = `apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: release-bot, namespace: agents, uid: 6c1d0b9e-1111-4b7e-9a51-0f5d7b7e0001}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: indexer, namespace: agents, uid: 6c1d0b9e-1111-4b7e-9a51-0f5d7b7e0002}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: release-bot, namespace: agents, generation: 4}
  spec:
    selector: {matchLabels: {app: release-bot}}
    template:
      metadata: {labels: {app: release-bot}}
      spec:
        serviceAccountName: release-bot
        containers: [{name: agent, image: "ghcr.io/example/release-bot:1.8.0"}]
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: indexer, namespace: agents, generation: 11}
  spec:
    selector: {matchLabels: {app: indexer}}
    template:
      metadata: {labels: {app: indexer}}
      spec:
        serviceAccountName: indexer
        containers: [{name: indexer, image: "ghcr.io/example/indexer:0.9.2"}]
`;

const role = (rules: string) => `apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: release-bot, namespace: agents}
  rules:
${rules}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: release-bot, namespace: agents}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: release-bot}
  subjects:
  - {kind: ServiceAccount, name: release-bot, namespace: agents}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: indexer, namespace: agents}
  rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: indexer, namespace: agents}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: indexer}
  subjects:
  - {kind: ServiceAccount, name: indexer, namespace: agents}
`;

const NAMESPACE = (labels: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: agents
  labels:
    kubernetes.io/metadata.name: agents
${labels}`;

const blast = (r: { result: AnalysisResult }, q: string) =>
  r.result.blastRadius
    .find((b) => b.workload === "k8s:Deployment:agents/release-bot")
    ?.answers.find((a) => a.question === q);

const RB = "k8s:RoleBinding:agents/release-bot";

describe("workload-creation edges", () => {
  it("gives a set holding workload patch and job create both edges, into its namespace", async () => {
    const r = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role(`  - {apiGroups: [apps], resources: [deployments], verbs: [get, patch]}
  - {apiGroups: [batch], resources: [jobs], verbs: [create]}`),
      "ns.yaml": NAMESPACE("    pod-security.kubernetes.io/enforce: restricted\n"),
    });
    const wc = r.result.escalations.filter((e) => e.type === "WORKLOAD_CREATE" && e.from === RB);
    expect(wc.map((e) => `${e.to}|${e.via.action}`).sort()).toEqual([
      "k8s:Deployment:agents/indexer|k8s:apps/deployments:patch",
      "k8s:Deployment:agents/release-bot|k8s:apps/deployments:patch",
      "k8s:Namespace:agents|k8s:batch/jobs:create",
    ]);
    // Nothing from the set goes to a node, and under `restricted` the namespace leads to none.
    expect(edgeKeys(r).filter((k) => k.startsWith(`${RB}|`) && k.includes("Node"))).toEqual([]);
    expect(edgeKeys(r).filter((k) => k.startsWith("PRIVILEGED_POD|"))).toEqual([]);
    // A pod made there may run as the neighbour: its account is reached, inside the namespace.
    expect(edgeKeys(r)).toContain("IDENTITY_ASSUME|k8s:Namespace:agents|k8s:ServiceAccount:agents/indexer");
    expect(blast(r, "mutate-outside-namespace")).toMatchObject({ reachable: false, path: [] });
  });

  it("patch only, named: an edge to the named Deployment alone", async () => {
    const r = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role(
        "  - {apiGroups: [apps], resources: [deployments], verbs: [patch], resourceNames: [release-bot]}",
      ),
    });
    const wc = r.result.escalations.filter((e) => e.type === "WORKLOAD_CREATE" && e.from === RB);
    expect(wc.map((e) => e.to)).toEqual(["k8s:Deployment:agents/release-bot"]);
  });

  it("reaches the node from its own namespace only as Pod Security allows", async () => {
    const rules = '  - {apiGroups: [""], resources: [pods], verbs: [create]}';
    const open = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role(rules),
      "ns.yaml": NAMESPACE("    team: release\n"),
    });
    expect(edgeKeys(open)).toContain(`POD_CREATE|${RB}|k8s:Namespace:agents`);
    expect(edgeKeys(open)).toContain("PRIVILEGED_POD|k8s:Namespace:agents|k8s:Node:*");
    const m = blast(open, "mutate-outside-namespace")!;
    expect(m.reachable).toBe(true);
    expect(m.path.map((e) => e.type)).toEqual([
      "IDENTITY_ASSUME",
      "PERMISSION_DISCOVER",
      "POD_CREATE",
      "PRIVILEGED_POD",
    ]);

    const unknown = await run({ "workloads.yaml": WORKLOADS, "rbac.yaml": role(rules) });
    const u = blast(unknown, "mutate-outside-namespace")!;
    expect(u.reachable).toBe(false);
    expect(u.unknown).toMatch(/namespace agents is not in the input/);
  });

  it("shows the unknown answer, with why, in every report", async () => {
    const rules = '  - {apiGroups: [""], resources: [pods], verbs: [create]}';
    const { result } = await run({ "workloads.yaml": WORKLOADS, "rbac.yaml": role(rules) });
    const why = /namespace agents is not in the input/;
    const text = terminalReport(result);
    expect(text).toMatch(/Blast radius unknown: \d+ answer\(s\) the input cannot settle/);
    expect(text).toMatch(
      /Deployment:agents\/release-bot: create or change workloads outside its namespace \(or on the node\) — unknown: namespace agents is not in the input/,
    );
    const md = markdownReport(result);
    expect(md).toMatch(
      /\| k8s:Deployment:agents\/release-bot \| create or change workloads outside its namespace \(or on the node\) \| unknown \| namespace agents is not in the input/,
    );
    const json = JSON.parse(jsonReport(result)) as {
      blastRadius: {
        workload: string;
        answers: { question: string; text: string; answer: string; why?: string }[];
      }[];
    };
    const a = json.blastRadius
      .find((b) => b.workload === "k8s:Deployment:agents/release-bot")!
      .answers.find((x) => x.question === "mutate-outside-namespace")!;
    expect(a.answer).toBe("unknown");
    expect(a.why).toMatch(why);
    // Worded for Kubernetes in every report; the question's id stays for machines.
    expect(a.text).toBe("create or change workloads outside its namespace (or on the node)");
    const sarif = JSON.parse(sarifReport(result, "0.0.0")) as {
      runs: {
        invocations: {
          toolExecutionNotifications: { descriptor: { id: string }; message: { text: string } }[];
        }[];
      }[];
    };
    const notes = sarif.runs[0]!.invocations[0]!.toolExecutionNotifications;
    expect(notes.some((n) => n.descriptor.id === "blast-radius-unknown" && why.test(n.message.text))).toBe(
      true,
    );
    expect(htmlReport(result)).toMatch(/Blast radius: unknown/);
  });
});

describe("the token brute-force edge", () => {
  const GET_SECRETS =
    '  - {apiGroups: [""], resources: [secrets], verbs: [get], resourceNames: [indexer-token-q8v2m]}';
  const SECRETS = (items: string) => `apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: tls-frontend, namespace: agents}
  type: kubernetes.io/tls
  data: {tls.crt: LS0tLS1CRUdJTi, tls.key: LS0tLS1CRUdJTiBQUklWQVRF}
${items}`;

  it("draws it where the exported Secret metadata shows the account's legacy token", async () => {
    const r = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role(GET_SECRETS),
      "secrets.yaml": SECRETS(`- apiVersion: v1
  kind: Secret
  metadata:
    name: indexer-token-q8v2m
    namespace: agents
    annotations:
      kubernetes.io/service-account.name: indexer
      kubernetes.io/service-account.uid: 6c1d0b9e-1111-4b7e-9a51-0f5d7b7e0002
  type: kubernetes.io/service-account-token
  data: {token: ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklpSjkuZXlK}
`),
    });
    const t = r.result.escalations.filter((e) => e.type === "TOKEN_BRUTEFORCE" && e.from === RB);
    expect(t.map((e) => [e.to, e.unknown])).toEqual([["k8s:ServiceAccount:agents/indexer", undefined]]);
    // What writ keeps of a Secret holds none of its values.
    expect(JSON.stringify(r.graph.nodes.get("k8s:ServiceAccount:agents/indexer"))).not.toContain("ZXlK");
  });

  it("draws none when the Secrets were exported and show no token for the account", async () => {
    const r = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role(GET_SECRETS),
      "secrets.yaml": SECRETS(""),
    });
    expect(r.result.escalations.filter((e) => e.type === "TOKEN_BRUTEFORCE")).toEqual([]);
  });

  it("says unknown, not reachable, when no Secret of the namespace was exported", async () => {
    const r = await run({ "workloads.yaml": WORKLOADS, "rbac.yaml": role(GET_SECRETS) });
    const t = r.result.escalations.filter((e) => e.type === "TOKEN_BRUTEFORCE" && e.from === RB);
    expect(t).toHaveLength(0); // the rule names indexer-token-q8v2m, not an unknown token's name
    const wide = await run({
      "workloads.yaml": WORKLOADS,
      "rbac.yaml": role('  - {apiGroups: [""], resources: [secrets], verbs: [get]}'),
    });
    const tw = wide.result.escalations.filter((e) => e.type === "TOKEN_BRUTEFORCE" && e.from === RB);
    expect(tw.map((e) => e.to).sort()).toEqual([
      "k8s:ServiceAccount:agents/indexer",
      "k8s:ServiceAccount:agents/release-bot",
    ]);
    for (const e of tw) expect(e.unknown).toMatch(/no Secrets of namespace agents/);
  });
});
