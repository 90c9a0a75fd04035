/**
 * KubeHound's attack manifests (../shared/corpora/k8s-attacks) against the expectations written by
 * hand in its expected-edges.md. Edges are compared as `TYPE|source|target` with KubeHound's names:
 * pods by name, permission sets as `<role>::<binding>`, service accounts by name, any node as `node`.
 * Only what KubeHound asserts is judged: the asserted edge types from the asserted sources, the
 * negative control and the `-fail` permission sets. Where KubeHound's ROLE_BIND expectations and
 * Kubernetes' RBAC rules disagree, the listed corrections below say which edges and why.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type EscalationEdge, type GraphView, k8sPlugin } from "../../src/analyzer/index.js";
import { analyze, corpus, printScore, score } from "./corpora.js";

const PODS_29 = [
  "control-pod",
  "endpoints-pod",
  "host-read-exploit-pod",
  "host-write-exploit-pod",
  "impersonate-pod",
  "modload-pod",
  "netadmin-pod",
  "nsenter-pod",
  "pod-create-pod",
  "pod-exec-pod",
  "pod-patch-pod",
  "priv-pod",
  ...[
    "crb-cr-crb-cr",
    "crb-cr-crb-r-fail",
    "crb-cr-rb-cr",
    "crb-cr-rb-r",
    "rb-cr-crb-cr-fail",
    "rb-cr-rb-cr",
    "rb-cr-rb-r",
    "rb-r-crb-cr-fail",
    "rb-r-rb-crb",
    "rb-r-rb-r",
  ].map((x) => `rolebind-pod-${x}`),
  "sharedps-pod1",
  "sharedps-pod2",
  "sys-ptrace-pod",
  "tokenget-pod",
  "tokenlist-pod",
  "umh-core-pod",
  "varlog-pod",
];
const ROLEBIND = [
  "crb-cr-crb-cr",
  "crb-cr-crb-r-fail",
  "crb-cr-rb-cr",
  "crb-cr-rb-r",
  "rb-cr-crb-cr-fail",
  "rb-cr-rb-cr",
  "rb-cr-rb-r",
  "rb-r-crb-cr-fail",
  "rb-r-rb-crb",
  "rb-r-rb-r",
];
const SAS_17 = [
  "impersonate-sa",
  "pod-create-sa",
  "pod-exec-sa",
  "pod-patch-sa",
  "tokenget-sa",
  "tokenlist-sa",
  "varlog-sa",
  ...ROLEBIND.map((x) => `rolebind-sa-${x}`),
];

/** Expected edges, by hand from expected-edges.md (`*` target: at least one edge of any target). */
function expectedEdges(): string[] {
  const e: string[] = [
    "CE_MODULE_LOAD|modload-pod|node",
    "CE_NSENTER|nsenter-pod|node",
    "CE_PRIV_MOUNT|priv-pod|node",
    "CE_SYS_PTRACE|sys-ptrace-pod|node",
    "CE_UMH_CORE_PATTERN|umh-core-pod|node",
    "CE_VAR_LOG_SYMLINK|varlog-pod|node",
    "IDENTITY_ASSUME|varlog-pod|varlog-sa",
    "PERMISSION_DISCOVER|varlog-sa|read-logs::pod-read-logs",
    // Endpoint → Container: the pod IP (`jmx`), a hostPort (`host-port-svc`), a Service.
    "ENDPOINT_EXPLOIT|jmx|endpoints-pod/endpoints-pod",
    "ENDPOINT_EXPLOIT|host-port-svc|endpoints-pod/endpoints-pod",
    "ENDPOINT_EXPLOIT|webproxy-service|endpoints-pod/endpoints-pod",
    "EXPLOIT_HOST_READ|host-read-exploit-pod|node",
    "EXPLOIT_HOST_TRAVERSE|host-read-exploit-pod|node",
    "EXPLOIT_HOST_WRITE|host-write-exploit-pod|node",
    "EXPLOIT_HOST_TRAVERSE|host-write-exploit-pod|node",
    "IDENTITY_ASSUME|node|system:nodes",
    "IDENTITY_ASSUME|impersonate-pod|impersonate-sa",
    "PERMISSION_DISCOVER|impersonate-sa|impersonate::pod-impersonate",
    "POD_CREATE|create-pods::pod-create-pods|node",
  ];
  for (const p of PODS_29)
    e.push(`POD_EXEC|exec-pods::pod-exec-pods|${p}`, `POD_PATCH|patch-pods::pod-patch-pods|${p}`);
  // TOKEN_STEAL: the node's kubelet directory (reached by EXPLOIT_HOST_TRAVERSE) holds the token of
  // every pod on it — KubeHound's volume → identity edges, with the volumes folded into the node.
  for (const sa of SAS_17)
    e.push(
      `TOKEN_BRUTEFORCE|read-secrets::pod-get-secrets|${sa}`,
      `TOKEN_LIST|list-secrets::pod-list-secrets|${sa}`,
      `TOKEN_STEAL|node|${sa}`,
    );
  for (const [pod, cs] of [
    ["sharedps-pod1", ["a", "b", "c"]],
    ["sharedps-pod2", ["a", "b"]],
  ] as const)
    for (const x of cs)
      for (const y of cs) if (x !== y) e.push(`SHARE_PS_NAMESPACE|${pod}/${pod}-${x}|${pod}/${pod}-${y}`);
  // ROLE_BIND case 1 (cluster → cluster): two sources, each reaching the four crb-cr-* sets,
  // itself included. (`pod-bind-rola-crb-cr-rb-r` is spelled so in the manifest.)
  for (const src of ["crb-cr-crb-cr", "crb-cr-rb-cr"])
    for (const t of CRB) e.push(`ROLE_BIND|${set(src)}|${set(t)}`);
  // Case 3 (namespaced → namespaced): four sources, each reaching the other eleven namespaced sets.
  for (const src of ["rb-cr-rb-r", "rb-r-rb-r", "rb-r-rb-r-g", "rb-r-rb-r-u"])
    for (const t of NS_SETS) if (t !== src) e.push(`ROLE_BIND|${set(src)}|${set(t)}`);
  return e;
}

/** A permission set's name (`<role>::<binding>`) from its manifest suffix (`rb-r-rb-r-g`). */
function set(x: string): string {
  const v = /-[gu]$/.exec(x)?.[0] ?? "";
  const role = x.slice(0, x.length - v.length);
  return `rolebind-${role}::pod-bind-${x === "crb-cr-rb-r" ? "rola" : "role"}-${x}`;
}
const CRB = ["crb-cr-crb-cr", "crb-cr-crb-r-fail", "crb-cr-rb-cr", "crb-cr-rb-r"];
const NS_SETS = [
  "rb-cr-crb-cr-fail",
  "rb-cr-rb-cr",
  "rb-cr-rb-r",
  ...["rb-r-crb-cr-fail", "rb-r-rb-crb", "rb-r-rb-r"].flatMap((x) => [x, `${x}-g`, `${x}-u`]),
];
const pairs = (srcs: readonly string[], dsts: readonly string[]) =>
  srcs.flatMap((a) => dsts.filter((b) => b !== a).map((b) => `ROLE_BIND|${set(a)}|${set(b)}`));

/**
 * Where KubeHound's expected ROLE_BIND edges and Kubernetes disagree, writ follows Kubernetes (the
 * RBAC API's rules for making a binding: `create` on the binding's kind where it is made, and `bind`
 * on the role or every permission of the role already). Each group is asserted the Kubernetes way
 * round — absent or present — and scored so; see docs/analyzer.md.
 */
const NOT_IN_KUBERNETES: readonly { edges: readonly string[]; why: string }[] = [
  {
    edges: ["POD_CREATE|create-pods::pod-create-pods|node"],
    why: "creating pods in a namespace is a step to that namespace's workloads, not to a node (see the allowed edge)",
  },
  {
    edges: ["crb-cr-crb-cr", "crb-cr-rb-cr"].map((x) => `ROLE_BIND|${set(x)}|${set(x)}`),
    why: "a set binding its own role again: no step at all (KubeHound draws none in case 3 either)",
  },
  {
    edges: pairs(
      ["rb-cr-rb-r", "rb-r-rb-r", "rb-r-rb-r-g", "rb-r-rb-r-u"],
      ["rb-cr-crb-cr-fail", "rb-cr-rb-cr"],
    ),
    why:
      "a RoleBinding to a ClusterRole needs `bind` on clusterroles or every permission of the ClusterRole; " +
      "these sets have `bind` on roles only, and lack `bind clusterroles` (and `create clusterrolebindings`) the targets hold",
  },
  {
    edges: pairs(["crb-cr-rb-cr"], ["crb-cr-crb-cr", "crb-cr-crb-r-fail"]),
    why:
      "it can create RoleBindings only: a RoleBinding carries no rule on a cluster-scoped resource, so the " +
      "targets' `create clusterrolebindings` — the whole point of those sets — stays out of reach",
  },
];
const KUBERNETES_ALLOWS: readonly { edges: readonly string[]; why: string }[] = [
  {
    edges: ["POD_CREATE|create-pods::pod-create-pods|default"],
    why:
      "a RoleBinding's `create pods` makes pods in its namespace, which run as that namespace's accounts: the step is " +
      "to the namespace; the node follows only by PRIVILEGED_POD, which rests on the namespace's Pod Security " +
      "(unknown here: the manifests carry no Namespace)",
  },
  {
    edges: pairs(
      ["rb-cr-rb-cr", "rb-r-rb-crb", "rb-r-rb-crb-g", "rb-r-rb-crb-u"],
      ["rb-cr-crb-cr-fail", "rb-cr-rb-cr", "rb-cr-rb-r"],
    ),
    why:
      "`create rolebindings` and `bind clusterroles` in the namespace make a RoleBinding there to any ClusterRole " +
      "(KubeHound's own ROLE_BIND page shows just this, with ClusterRole admin); its test counts no such source",
  },
  {
    edges: [
      ...pairs(["rb-cr-rb-cr"], ["rb-r-rb-crb", "rb-r-rb-crb-g", "rb-r-rb-crb-u"]),
      ...pairs(
        ["rb-r-rb-crb", "rb-r-rb-crb-g", "rb-r-rb-crb-u"],
        ["rb-r-rb-crb", "rb-r-rb-crb-g", "rb-r-rb-crb-u"],
      ),
    ],
    why:
      "the escalation check: holding every permission of Role rolebind-rb-r-rb-crb (create rolebindings, bind " +
      "clusterroles), it may bind that Role without `bind` on roles",
  },
];

function namer(g: GraphView): (id: string) => string {
  return (id) => {
    if (id.startsWith("k8s:Node:")) return "node";
    const n = g.nodes.get(id);
    if (n?.type === "binding") return `${String(n.attrs?.roleRef ?? "").split("/")[1]}::${n.name}`;
    // Endpoints by KubeHound's name: the Service, else the container port.
    const ep = /^k8s:Endpoint:[^/]+\/(?:[^/]+\/[^/:]+:(.+)|([^/:]+):.+)$/.exec(id);
    if (ep) return (ep[1] ?? ep[2])!;
    const c = /^k8s:Container:[^/]+\/(.+)$/.exec(id);
    if (c) return c[1]!;
    const m = /^k8s:[A-Za-z]+:(?:[^/]+\/)?(.+)$/.exec(id);
    return m ? m[1]! : id;
  };
}

describe("KubeHound attack manifests", () => {
  let edges: EscalationEdge[];
  let name: (id: string) => string;
  beforeAll(async () => {
    const { result, graph } = await analyze([corpus("k8s-attacks")], { plugins: [k8sPlugin] });
    edges = [...result.escalations];
    name = namer(graph);
  });

  it("yields the expected escalation edges, and none from the -fail sets or the control pod", () => {
    const forbidden = new Set(NOT_IN_KUBERNETES.flatMap((x) => x.edges));
    const allowed = KUBERNETES_ALLOWS.flatMap((x) => x.edges);
    const kubehound = expectedEdges();
    for (const k of forbidden) expect(kubehound, `${k} is not among KubeHound's edges`).toContain(k);
    for (const k of allowed) expect(kubehound, `${k} is among KubeHound's edges`).not.toContain(k);
    const expected = [...kubehound.filter((k) => !forbidden.has(k)), ...allowed];
    const keys = edges.map((e) => `${e.type}|${name(e.from)}|${name(e.to)}`);
    // Judge only what KubeHound asserts: edges of the asserted types whose source is an asserted
    // source, a `-fail` set, or the control pod; ROLE_BIND only within the two asserted cases.
    const assertedSources = new Set(expected.map((k) => k.split("|").slice(0, 2).join("|")));
    const judged = keys.filter((k) => {
      const [type, src, dst] = k.split("|") as [string, string, string];
      if (src === "control-pod" || src.startsWith("control-pod/")) return true;
      if (type === "ROLE_BIND") {
        const cluster = (x: string) => x.startsWith("rolebind-crb-");
        const nsSet = (x: string) => x.startsWith("rolebind-rb-");
        return (cluster(src) && cluster(dst)) || (nsSet(src) && nsSet(dst));
      }
      return assertedSources.has(`${type}|${src}`);
    });
    const s = score(expected, judged);
    printScore("KubeHound escalation edges (k8s-attacks)", s);
    // The disagreements, the Kubernetes way round.
    expect(keys.filter((k) => forbidden.has(k))).toEqual([]);
    expect(allowed.filter((k) => !keys.includes(k))).toEqual([]);
    // No edge at all from a -fail permission set as a ROLE_BIND source, none from the control pod.
    expect(keys.filter((k) => /^ROLE_BIND\|rolebind-[a-z-]+-fail::/.test(k))).toEqual([]);
    expect(
      keys.filter((k) => k.split("|")[1] === "control-pod" || k.split("|")[1]!.startsWith("control-pod/")),
    ).toEqual([]);
    // Case 4: a namespaced set reaches no cluster-wide set.
    expect(keys.filter((k) => /^ROLE_BIND\|rolebind-rb-[^|]+\|rolebind-crb-/.test(k))).toEqual([]);
    // Measured: precision 1.000, recall 1.000 (tp 196, fp 0, fn 0).
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
  });

  it("steals from the node exactly the identities its containers assume (KubeHound's traversal check)", () => {
    const keys = edges.map((e) => [e.type, name(e.from), name(e.to)] as const);
    for (const pod of ["host-read-exploit-pod", "host-write-exploit-pod"])
      expect(keys.some(([t, f, to]) => t === "EXPLOIT_HOST_TRAVERSE" && f === pod && to === "node")).toBe(
        true,
      );
    const stolen = new Set(
      keys.filter(([t, f]) => t === "TOKEN_STEAL" && f === "node").map(([, , to]) => to),
    );
    const assumed = new Set(
      edges
        .filter((e) => e.type === "IDENTITY_ASSUME" && e.from.startsWith("k8s:Container:"))
        .map((e) => name(e.to)),
    );
    expect([...stolen].sort()).toEqual([...assumed].sort());
    expect([...stolen].sort()).toEqual([...SAS_17].sort());
  });

  it("reaches a node from a namespace's pod creation only as unknown: the manifests carry no Namespace", () => {
    const priv = edges.filter((e) => e.type === "PRIVILEGED_POD");
    expect(priv.map((e) => `${e.from}|${e.to}`)).toContain("k8s:Namespace:default|k8s:Node:*");
    for (const e of priv) expect(e.unknown).toMatch(/is not in the input/);
    expect(edges.filter((e) => e.type === "POD_CREATE").map((e) => e.to)).not.toContain("k8s:Node:*");
  });

  it("gives the -fail permission sets no ROLE_BIND edge as a source (the truth table's negatives)", () => {
    const fails = edges.filter((e) => e.type === "ROLE_BIND" && /-fail(-[gu])?$/.test(name(e.from)));
    expect(fails).toEqual([]);
  });
});

describe("TOKEN_STEAL placement and ROLE_BIND by RoleBindings only", () => {
  const manifest = `
apiVersion: v1
kind: ServiceAccount
metadata: {name: a, namespace: ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: b, namespace: ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: quiet, namespace: ns}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-reader}
rules: [{apiGroups: [""], resources: [nodes], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: rb-maker}
rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}
  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: a-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects: [{kind: ServiceAccount, name: a, namespace: ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b-node-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-reader}
subjects: [{kind: ServiceAccount, name: b, namespace: ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: quiet-rb-maker}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rb-maker}
subjects: [{kind: ServiceAccount, name: quiet, namespace: ns}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-n1, namespace: ns}
spec: {nodeName: n1, serviceAccountName: a, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n2, namespace: ns}
spec: {nodeName: n2, serviceAccountName: b, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: quiet-pod, namespace: ns}
spec: {serviceAccountName: quiet, containers: [{name: c, image: x}]}
`;

  it("steals from a node only the tokens of pods that may run there, and none that is not mounted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-k8s-"));
    try {
      await writeFile(join(dir, "m.yaml"), manifest);
      const { result } = await analyze([join(dir, "m.yaml")], { plugins: [k8sPlugin] });
      const steal = (node: string) =>
        result.escalations
          .filter((e) => e.type === "TOKEN_STEAL" && e.from === `k8s:Node:${node}`)
          .map((e) => e.to)
          .sort();
      expect(steal("n1")).toEqual(["k8s:ServiceAccount:ns/a"]);
      expect(steal("n2")).toEqual(["k8s:ServiceAccount:ns/b"]);
      expect(steal("*")).toEqual(["k8s:ServiceAccount:ns/a", "k8s:ServiceAccount:ns/b"]);
      // RoleBindings in every namespace carry `get pods` (namespaced) but not `get nodes`.
      const binds = result.escalations
        .filter((e) => e.type === "ROLE_BIND" && e.from === "k8s:ClusterRoleBinding:quiet-rb-maker")
        .map((e) => e.to);
      expect(binds).toEqual(["k8s:ClusterRoleBinding:a-reader"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
