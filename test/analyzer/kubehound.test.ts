/**
 * KubeHound's attack manifests (../shared/corpora/k8s-attacks) against the expectations written by
 * hand in its expected-edges.md. Edges are compared as `TYPE|source|target` with KubeHound's names:
 * pods by name, permission sets as `<role>::<binding>`, service accounts by name, any node as `node`.
 * Only what KubeHound asserts is judged: the asserted edge types from the asserted sources, the
 * negative control and the `-fail` permission sets.
 */
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
    "ENDPOINT_EXPLOIT|endpoints-pod|*",
    "EXPLOIT_HOST_READ|host-read-exploit-pod|node",
    "EXPLOIT_HOST_TRAVERSE|host-read-exploit-pod|node",
    "EXPLOIT_HOST_WRITE|host-write-exploit-pod|node",
    "EXPLOIT_HOST_TRAVERSE|host-write-exploit-pod|node",
    "TOKEN_STEAL|host-read-exploit-pod|*",
    "IDENTITY_ASSUME|node|system:nodes",
    "IDENTITY_ASSUME|impersonate-pod|impersonate-sa",
    "PERMISSION_DISCOVER|impersonate-sa|impersonate::pod-impersonate",
    "POD_CREATE|create-pods::pod-create-pods|node",
  ];
  for (const p of PODS_29)
    e.push(`POD_EXEC|exec-pods::pod-exec-pods|${p}`, `POD_PATCH|patch-pods::pod-patch-pods|${p}`);
  for (const sa of SAS_17)
    e.push(
      `TOKEN_BRUTEFORCE|read-secrets::pod-get-secrets|${sa}`,
      `TOKEN_LIST|list-secrets::pod-list-secrets|${sa}`,
    );
  for (const [pod, cs] of [
    ["sharedps-pod1", ["a", "b", "c"]],
    ["sharedps-pod2", ["a", "b"]],
  ] as const)
    for (const x of cs)
      for (const y of cs) if (x !== y) e.push(`SHARE_PS_NAMESPACE|${pod}/${pod}-${x}|${pod}/${pod}-${y}`);
  // ROLE_BIND case 1 (cluster → cluster): two sources reach the four crb-cr-* sets (self-edges
  // excluded here: binding one's own role again gains nothing).
  // (`pod-bind-rola-crb-cr-rb-r` is spelled so in the manifest.)
  const crb = ["crb-cr-crb-cr", "crb-cr-crb-r-fail", "crb-cr-rb-cr", "crb-cr-rb-r"].map(
    (x) => `rolebind-${x}::pod-bind-${x === "crb-cr-rb-r" ? "rola" : "role"}-${x}`,
  );
  for (const src of ["crb-cr-crb-cr", "crb-cr-rb-cr"].map((x) => `rolebind-${x}::pod-bind-role-${x}`))
    for (const t of crb) if (t !== src) e.push(`ROLE_BIND|${src}|${t}`);
  // Case 3 (namespaced → namespaced): four sources, each reaching the other eleven namespaced sets.
  const ns = [
    ...["rb-cr-crb-cr-fail", "rb-cr-rb-cr", "rb-cr-rb-r", "rb-r-crb-cr-fail", "rb-r-rb-crb", "rb-r-rb-r"].map(
      (x) => `rolebind-${x}::pod-bind-role-${x}`,
    ),
    ...["rb-r-rb-r", "rb-r-crb-cr-fail", "rb-r-rb-crb"].flatMap((x) => [
      `rolebind-${x}::pod-bind-role-${x}-g`,
      `rolebind-${x}::pod-bind-role-${x}-u`,
    ]),
  ];
  const sources = [
    "rolebind-rb-cr-rb-r::pod-bind-role-rb-cr-rb-r",
    "rolebind-rb-r-rb-r::pod-bind-role-rb-r-rb-r",
    "rolebind-rb-r-rb-r::pod-bind-role-rb-r-rb-r-g",
    "rolebind-rb-r-rb-r::pod-bind-role-rb-r-rb-r-u",
  ];
  for (const src of sources) for (const t of ns) if (t !== src) e.push(`ROLE_BIND|${src}|${t}`);
  return e;
}

function namer(g: GraphView): (id: string) => string {
  return (id) => {
    if (id.startsWith("k8s:Node:")) return "node";
    const n = g.nodes.get(id);
    if (n?.type === "binding") return `${String(n.attrs?.roleRef ?? "").split("/")[1]}::${n.name}`;
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
    const expected = expectedEdges();
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
    // Expectations with a `*` target are met by any edge of that type from that source.
    const actual = new Set(judged);
    for (const k of expected.filter((x) => x.endsWith("|*"))) {
      const prefix = k.slice(0, -1);
      if (keys.some((a) => a.startsWith(prefix))) actual.add(k);
    }
    const s = score(expected, actual);
    printScore("KubeHound escalation edges (k8s-attacks)", s);
    // No edge at all from a -fail permission set as a ROLE_BIND source, none from the control pod.
    expect(keys.filter((k) => /^ROLE_BIND\|rolebind-[a-z-]+-fail::/.test(k))).toEqual([]);
    expect(
      keys.filter((k) => k.split("|")[1] === "control-pod" || k.split("|")[1]!.startsWith("control-pod/")),
    ).toEqual([]);
    // Measured: precision 0.934, recall 0.923. Misses: ENDPOINT_EXPLOIT and TOKEN_STEAL (not modelled);
    // ROLE_BIND differences are Kubernetes semantics vs KubeHound: binding a ClusterRole from a
    // RoleBinding needs `bind` on clusterroles, which the bind-Role sources lack (11 misses), and the
    // bind-ClusterRole namespaced sets can (11 extras). See docs/analyzer.md.
    expect(s.recall).toBeGreaterThanOrEqual(0.92);
    expect(s.precision).toBeGreaterThanOrEqual(0.93);
  });

  it("gives the -fail permission sets no ROLE_BIND edge as a source (the truth table's negatives)", () => {
    const fails = edges.filter((e) => e.type === "ROLE_BIND" && /-fail(-[gu])?$/.test(name(e.from)));
    expect(fails).toEqual([]);
  });
});
