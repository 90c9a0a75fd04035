/**
 * Agents tied to what runs from writ.yaml alone (test/fixtures/agent-ties: a plain `kubectl get`
 * dump without writ annotations, a rollout's two ReplicaSets, a CronJob whose Jobs are gone, a
 * StatefulSet, IRSA, an audit log whose last line is cut off, OTel traces with k8s resource
 * attributes), the trace join by those attributes, and untrusted input from `untrustedInputs`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { podResolver, tieAgents } from "../../src/analyzer/agents.js";
import { translateDeclaredWork } from "../../src/analyzer/declared-file.js";
import {
  buildGraph,
  declaredWork,
  defaultPlugins,
  type GraphNode,
  type ObservedEvent,
  otlpTraceImporter,
  provisionedBindingsOf,
  scanPaths,
  type ToolCall,
  textInput,
} from "../../src/analyzer/index.js";
import { classifyUntrusted, TraceJoin } from "../../src/analyzer/join.js";
import { loadConfigFile, loadConfigText } from "../../src/config/index.js";
import { ROOT, runCli } from "../support/cli.js";

const DIR = join(ROOT, "test", "fixtures", "agent-ties");

async function scan() {
  const loaded = await loadConfigFile(join(DIR, "writ.yaml"));
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  const declared = declaredWork(loaded.config!);
  const r = await scanPaths(
    ["cluster.yaml", "audit.log", "traces.json"].map((f) => join(DIR, f)),
    { plugins: defaultPlugins, declared },
  );
  return { r, declared };
}

describe("agents tied from writ.yaml, no annotations", () => {
  it("ties by workload, service account and IRSA role, and not a look-alike workload", async () => {
    const { r } = await scan();
    const agentOf = (id: string) => [
      ...new Set(r.findings.filter((f) => f.workload.id === id).map((f) => f.workload.agent)),
    ];
    expect(agentOf("k8s:Deployment:support/triage")).toEqual(["triage-bot"]);
    expect(agentOf("k8s:StatefulSet:search/indexer")).toEqual(["indexer"]);
    // reporter: only its IRSA role ARN is in writ.yaml.
    expect(agentOf("k8s:Deployment:reports/reporter")).toEqual(["reporter"]);
    // `triage-canary` runs the same image and agent name in its spans, but writ.yaml names `triage`.
    expect(agentOf("k8s:Deployment:support/triage-canary")).toEqual([undefined]);
    expect(
      r.findings.some((f) => f.workload.id.includes("triage-canary") && f.category === "unjustified-use"),
    ).toBe(false);
    expect(r.problems.map((p) => p.code)).toEqual(["ERR_INPUT_JSON_LINE"]);
    expect(r.problems[0]!.line).toBe(6);
  });

  it("judges declared work: the out-of-scope secret read is unjustified, joined by pod, tainted by the configured retrieval", async () => {
    const { r } = await scan();
    const cat2 = r.findings.filter((f) => f.category === "unjustified-use");
    expect(cat2.map((f) => [f.workload.id, f.permission.action])).toEqual([
      ["k8s:Deployment:support/triage", "k8s:core/secrets:get"],
    ]);
    const ev = cat2[0]!.evidence;
    // The event came from a pod of the old ReplicaSet, gone after the rollout.
    expect(ev[0]).toMatchObject({ kind: "event", ref: "a2" });
    // The canary's span at the same second names another pod: never joined.
    expect(ev[1]).toMatchObject({ kind: "tool-call", ref: "00f067aa0ba90003" });
    expect(ev[1]!.label).toContain("joined by pod `support/triage-5d8f7c9b6-abcde` (k8s.pod.name)");
    expect(ev[2]!.label).toContain("tainted by `kb:search`");
    expect(cat2[0]!.severity).toBe("high");
    // Declared reads (pods get/list, in conv-B after a routine ticket read) are not reported.
    expect(
      r.findings.some((f) => f.category === "unjustified-use" && f.permission.action.includes("pods")),
    ).toBe(false);
  });

  it("counts a gone Job's pod for the CronJob and a gone ReplicaSet's pod for the Deployment, not for each other", async () => {
    const { r } = await scan();
    const digest = r.findings.find((f) => f.workload.id === "k8s:CronJob:support/digest")!;
    const used = digest.evidence.find((e) => e.ref === "use")!.label;
    expect(used).toContain("k8s:core/pods:list on support/*");
    expect(used).not.toContain("secrets");
    const triage = r.findings.find(
      (f) => f.workload.id === "k8s:Deployment:support/triage" && f.category === "inherited-overreach",
    )!;
    expect(triage.evidence.find((e) => e.ref === "use")!.label).toContain("k8s:core/pods:list on support/*");
  });
});

describe("untrusted input", () => {
  const call = (
    tool: string,
    agent: string,
    attributes: Record<string, string | boolean> = {},
  ): ToolCall => ({
    kind: "tool-call",
    traceId: "t",
    spanId: tool,
    start: 0,
    end: 1,
    agent,
    tool,
    context: "c",
    requestIds: [],
    untrustedSource: tool === "tickets:get_ticket" || attributes["writ.untrusted_source"] === true,
    attributes,
    source: { file: "traces.json" },
  });

  it("follows untrustedInputs where configured, the documented default elsewhere", async () => {
    const { declared } = await scan();
    const calls = classifyUntrusted(
      [
        call("tickets:get_ticket", "triage-bot"),
        call("kb:search", "triage-bot"),
        call("github:get_pull_request", "triage-bot", { "retrieval.trust": "untrusted" }),
        call("github:get_pull_request", "triage-bot", { "retrieval.trust": "internal" }),
        call("kubectl:get_pods", "triage-bot", { "writ.untrusted_source": true }),
        call("tickets:get_ticket", "indexer"),
      ],
      declared,
    );
    expect(calls.map((c) => c.untrustedSource)).toEqual([false, true, true, false, true, true]);
  });
});

describe("trace join", () => {
  const w: GraphNode = {
    kind: "node",
    id: "k8s:Deployment:ops/bot",
    provider: "k8s",
    type: "workload",
    subtype: "Deployment",
    name: "bot",
    namespace: "ops",
  };
  const g = buildGraph([w], []);
  const pods = podResolver(g, []);
  const tc = (
    spanId: string,
    start: number,
    runsIn?: ToolCall["runsIn"],
    agent = "bot",
    ids: string[] = [],
  ): ToolCall => ({
    kind: "tool-call",
    traceId: "t",
    spanId,
    start,
    end: start + 1000,
    agent,
    tool: "k:x",
    requestIds: ids,
    untrustedSource: false,
    runsIn,
    source: { file: "t.json" },
  });
  const ev = (at: number, pod?: string, requestId?: string): ObservedEvent => ({
    kind: "event",
    provider: "k8s",
    at,
    principal: "k8s:ServiceAccount:ops/bot",
    pod,
    action: "k8s:core/pods:get",
    resource: "ops/x",
    outcome: "allowed",
    requestId,
    source: { file: "audit.log" },
  });

  it("prefers pod, then workload, then namespace, then agent, and never crosses a named resource", () => {
    const calls = [
      tc("agent-only", 10_000),
      tc("ns", 10_000, { namespace: "ops" }),
      tc("other-ns", 10_000, { namespace: "prod" }),
      tc("workload", 10_000, { namespace: "ops", workload: { kind: "Deployment", name: "bot" } }),
      tc("other-workload", 10_000, {
        namespace: "ops",
        workload: { kind: "Deployment", name: "bot-canary" },
      }),
      tc("pod", 10_000, { namespace: "ops", pod: "bot-6f9c7d8b5-abcde" }),
      tc("other-pod", 10_000, { namespace: "ops", pod: "bot-6f9c7d8b5-zzzzz" }, "someone-else"),
    ];
    const j = new TraceJoin(calls, g, pods, 2000);
    const at = 10_500;
    expect(j.join("bot", w, ev(at, "k8s:Pod:ops/bot-6f9c7d8b5-abcde"))).toMatchObject({
      by: "pod",
      call: { spanId: "pod" },
    });
    // Without the pod in the event, the pod span resolves to the workload (by its name).
    const noPod = j.join("bot", w, ev(at));
    expect(noPod?.by).toBe("workload");
    expect(["workload", "pod"]).toContain(noPod?.call.spanId);
    const j2 = new TraceJoin(
      calls.filter((c) => !["pod", "workload", "other-pod"].includes(c.spanId)),
      g,
      pods,
      2000,
    );
    expect(j2.join("bot", w, ev(at))).toMatchObject({ by: "namespace", call: { spanId: "ns" } });
    const j3 = new TraceJoin([calls[0]!, calls[2]!, calls[4]!], g, pods, 2000);
    expect(j3.join("bot", w, ev(at))).toMatchObject({ by: "agent", call: { spanId: "agent-only" } });
    // Only spans naming another namespace or workload: nothing is joined.
    const j4 = new TraceJoin([calls[2]!, calls[4]!, calls[6]!], g, pods, 2000);
    expect(j4.join("bot", w, ev(at, "k8s:Pod:ops/bot-6f9c7d8b5-abcde"))).toBeUndefined();
    // Out of time: nothing.
    expect(j.join("bot", w, ev(60_000))).toBeUndefined();
    // A request id is exact, whatever the time.
    const j5 = new TraceJoin([tc("rid", 500_000, undefined, "bot", ["audit-7"])], g, pods, 2000);
    expect(j5.join("bot", w, ev(10, undefined, "audit-7"))).toMatchObject({ by: "request id" });
  });
});

describe("pods resolved to workloads by controller naming", () => {
  const node = (kind: string, ns: string, name: string): GraphNode => ({
    kind: "node",
    id: `k8s:${kind}:${ns}/${name}`,
    provider: "k8s",
    type: "workload",
    subtype: kind,
    name,
    namespace: ns,
  });
  const g = buildGraph(
    [
      node("Deployment", "a", "web"),
      node("CronJob", "a", "digest"),
      node("DaemonSet", "a", "logs"),
      node("StatefulSet", "a", "db"),
    ],
    [],
  );
  const r = podResolver(g, []);
  it("finds the exact workload, never a prefix", () => {
    expect(r("k8s:Pod:a/web-7c4b9d8f5-q2w8x")?.workload).toBe("k8s:Deployment:a/web");
    expect(r("k8s:Pod:a/digest-28930215-xk2pq")?.workload).toBe("k8s:CronJob:a/digest");
    expect(r("k8s:Pod:a/logs-x7k2p")?.workload).toBe("k8s:DaemonSet:a/logs");
    expect(r("k8s:Pod:a/db-2")?.workload).toBe("k8s:StatefulSet:a/db");
    expect(r("k8s:Pod:a/web-canary-7c4b9d8f5-q2w8x")).toBeUndefined();
    expect(r("k8s:Pod:b/web-7c4b9d8f5-q2w8x")).toBeUndefined();
  });
});

describe("tie warnings", () => {
  it("warns on an entry matching nothing, two agents on one workload, and an annotation writ.yaml overrides", async () => {
    const text = `version: 1
environments: { prod: {} }
runnerClasses:
  c: { ceiling: { maxTtl: 1h, allow: [{ action: "k8s:*:*" }] } }
agents:
  a:
    { owner: o@x.example, purpose: p, runnerClass: c, environments: [prod],
      workloads: [{ kind: Deployment, namespace: ops, name: "web*" }, { kind: CronJob, namespace: ops, name: nightly }] }
  b:
    { owner: o@x.example, purpose: p, runnerClass: c, environments: [prod],
      workloads: [{ kind: "*", namespace: ops, name: web-2 }, { kind: Deployment, namespace: ops, name: api }] }
`;
    const loaded = await loadConfigText(text, { file: "writ.yaml" });
    expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
    const mk = (name: string, agent?: string): GraphNode => ({
      kind: "node",
      id: `k8s:Deployment:ops/${name}`,
      provider: "k8s",
      type: "workload",
      subtype: "Deployment",
      name,
      namespace: "ops",
      agent,
    });
    const t = tieAgents([mk("web-1"), mk("web-2"), { ...mk("api", "a") }], [], declaredWork(loaded.config!));
    expect(t.nodes.map((n) => n.agent)).toEqual(["a", undefined, "b"]);
    expect(t.problems.map((p) => p.code).sort()).toEqual([
      "WARN_AGENT_TIE_AMBIGUOUS",
      "WARN_AGENT_TIE_CONFLICT",
      "WARN_AGENT_TIE_UNMATCHED",
    ]);
  });
});

describe("declared-work file → writ.yaml", () => {
  it("translates without loss: the same declared work as the hand-written writ.yaml", async () => {
    const text = readFileSync(join(DIR, "declared-work.yaml"), "utf8");
    const t = translateDeclaredWork(text, "declared-work.yaml");
    expect(t.problems).toEqual([]);
    expect(t.agents).toEqual(["triage-bot", "reporter", "indexer"]);
    const loaded = await loadConfigText(t.yaml!, { file: "declared-work.yaml (as writ.yaml)" });
    expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
    const fromFile = declaredWork(loaded.config!);
    const { declared: fromYaml } = await scan();
    expect([...fromFile.keys()].sort()).toEqual([...fromYaml.keys()].sort());
    for (const [id, w] of fromYaml) expect(fromFile.get(id), id).toEqual(w);
  });

  it("reports a bad declared file with line and column, and translates tool permissions and bindings", () => {
    const bad = translateDeclaredWork(
      [
        "agent: a",
        "owner: o@x.example",
        "purpose: p",
        "workloads: [Deployment-support-triage]",
        "provisionedBindings: [Role support/x]",
        "colour: blue",
      ].join("\n"),
      "d.yaml",
    );
    expect(bad.yaml).toBeUndefined();
    expect(bad.problems.map((p) => [p.code, p.line])).toEqual([
      ["ERR_DECLARED_WORK", 6],
      ["ERR_DECLARED_WORK", 4],
      ["ERR_DECLARED_WORK", 5],
    ]);
    const good = translateDeclaredWork(
      [
        "agent: a",
        "owner: o@x.example",
        "purpose: p",
        "tools:",
        '  "kubectl:rollout": ["k8s:apps/deployments:patch on ops/web"]',
        "provisionedBindings: [RoleBinding ops/a, ClusterRoleBinding a-read]",
      ].join("\n"),
      "d.yaml",
    );
    expect(good.problems).toEqual([]);
    expect(good.yaml).toContain("tool: kubectl:rollout");
    expect(good.yaml).toContain("action: k8s:apps/deployments:patch");
    expect(good.yaml).toMatch(/kind: ClusterRoleBinding\n\s+name: a-read/);
  });

  it("writ scan --declared finds the same unjustified use; --print-config prints the writ.yaml", async () => {
    const r = await runCli([
      "scan",
      "--declared",
      join(DIR, "declared-work.yaml"),
      "--format",
      "json",
      ...["cluster.yaml", "audit.log", "traces.json"].map((f) => join(DIR, f)),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      findings: { category: string; workload: { id: string; agent?: string } }[];
    };
    expect(
      out.findings
        .filter((f) => f.category === "unjustified-use")
        .map((f) => [f.workload.id, f.workload.agent]),
    ).toEqual([["k8s:Deployment:support/triage", "triage-bot"]]);
    const p = await runCli(["scan", "--declared", join(DIR, "declared-work.yaml"), "--print-config"]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain("runnerClass: declared-work");
    const both = await runCli([
      "scan",
      "--declared",
      join(DIR, "declared-work.yaml"),
      "--config",
      join(DIR, "writ.yaml"),
      join(DIR, "cluster.yaml"),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("in both --config and --declared");
  });
});

describe("provisionedBindings", () => {
  it("reach the analyzer as binding node ids, per agent that says", async () => {
    const text = `version: 1
environments: { prod: {} }
runnerClasses:
  c: { ceiling: { maxTtl: 1h, allow: [{ action: "k8s:*:*" }] } }
agents:
  a:
    owner: o@x.example
    purpose: p
    runnerClass: c
    environments: [prod]
    provisionedBindings:
      - { kind: RoleBinding, namespace: ops, name: a }
      - { kind: ClusterRoleBinding, name: a-read }
  b: { owner: o@x.example, purpose: p, runnerClass: c, environments: [prod] }
`;
    const loaded = await loadConfigText(text, { file: "writ.yaml" });
    expect(loaded.problems).toEqual([]);
    const pb = provisionedBindingsOf(declaredWork(loaded.config!));
    expect([...pb]).toEqual([["a", ["k8s:RoleBinding:ops/a", "k8s:ClusterRoleBinding:a-read"]]]);
  });
});

describe("OTLP JSON lines", () => {
  it("streams export requests line by line, reads the k8s resource attributes, and skips a cut-off last line", async () => {
    const req = (spanId: string, pod: string) =>
      JSON.stringify({
        resourceSpans: [
          {
            resource: {
              attributes: [
                { key: "service.name", value: { stringValue: "triage-bot" } },
                { key: "k8s.namespace.name", value: { stringValue: "support" } },
                { key: "k8s.pod.name", value: { stringValue: pod } },
                { key: "k8s.cronjob.name", value: { stringValue: "digest" } },
                { key: "k8s.job.name", value: { stringValue: "digest-28930215" } },
              ],
            },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: "ab",
                    spanId,
                    startTimeUnixNano: "1793613600000000000",
                    endTimeUnixNano: "1793613601000000000",
                    attributes: [
                      { key: "gen_ai.tool.name", value: { stringValue: "kb:search" } },
                      { key: "gen_ai.tool.call.arguments", value: { stringValue: '{"q":"x"}' } },
                      { key: "retrieval.trust", value: { stringValue: "untrusted" } },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      });
    const text = `${req("s1", "digest-28930215-xk2pq")}\n${req("s2", "digest-28930215-abcde")}\n${req("s3", "x").slice(0, 120)}`;
    const r = await otlpTraceImporter.import(textInput("traces.jsonl", text));
    expect(r.fragment.toolCalls.map((c) => c.spanId)).toEqual(["s1", "s2"]);
    expect(r.problems.map((p) => [p.code, p.line])).toEqual([["ERR_INPUT_JSON_LINE", 3]]);
    const c = r.fragment.toolCalls[0]!;
    // The CronJob is the workload (named before the Job); the arguments are not kept as attributes.
    expect(c.runsIn).toEqual({
      namespace: "support",
      pod: "digest-28930215-xk2pq",
      workload: { kind: "CronJob", name: "digest" },
    });
    expect(c.attributes?.["retrieval.trust"]).toBe("untrusted");
    expect(c.attributes?.["gen_ai.tool.call.arguments"]).toBeUndefined();
    expect(c.arguments).toEqual({ q: "x" });
  });
});

describe("provisionedBindings from writ.yaml reach the extra-subject rule", () => {
  it("a binding the canary's owner lists is its own (category 1); unlisted, it is inherited", async () => {
    const run = async (listed: boolean) => {
      const text = `${readFileSync(join(DIR, "writ.yaml"), "utf8")}  canary-bot:
    owner: eve@acme.example
    purpose: The triage canary
    runnerClass: assistants
    environments: [prod]
    workloads: [{ kind: Deployment, namespace: support, name: triage-canary }]
${listed ? "    provisionedBindings: [{ kind: RoleBinding, namespace: support, name: support-read }]\n" : ""}`;
      const loaded = await loadConfigText(text, { file: "writ.yaml" });
      const r = await scanPaths(
        ["cluster.yaml", "audit.log", "traces.json"].map((f) => join(DIR, f)),
        { plugins: defaultPlugins, declared: declaredWork(loaded.config!) },
      );
      return r.findings
        .filter((f) => f.workload.id === "k8s:Deployment:support/triage-canary")
        .map((f) => `${f.category} ${f.permission.action}`)
        .sort();
    };
    expect(await run(false)).toEqual([
      "inherited-overreach k8s:core/secrets:list",
      "unjustified-use k8s:core/secrets:get",
    ]);
    expect(await run(true)).toEqual([
      "unjustified-use k8s:core/secrets:get",
      "unused-excess k8s:core/pods:get",
      "unused-excess k8s:core/pods:list",
      "unused-excess k8s:core/secrets:list",
    ]);
  });
});
