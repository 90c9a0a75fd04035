/**
 * Category 2 at scale: a workload that touched 5,000 objects outside its declared work gets one
 * finding per (workload, permission, resource pattern) with counts and a bounded sample, not 5,000;
 * the tool calls behind it were streamed into the compact store and the cited ones read again from
 * their lines (span id and arguments intact).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findingId } from "../../src/analyzer/engine.js";
import { type AnalysisResult, declaredWork, defaultPlugins, scanPaths } from "../../src/analyzer/index.js";
import { loadConfigText } from "../../src/config/index.js";
import { auditEvent, OPS_BOT_MANIFESTS } from "./cat2-fixture.js";

const OBJECTS = 5000;
const T0 = Date.UTC(2026, 10, 1);

const MANIFESTS = OPS_BOT_MANIFESTS;

const CONFIG = `version: 1
environments: { prod: {} }
runnerClasses: { c: { ceiling: { maxTtl: 1h, allow: [{ action: "k8s:*:*" }, { action: "mcp:*:*" }] } } }
agents:
  bot:
    owner: o@acme.example
    purpose: test
    runnerClass: c
    environments: [prod]
    baseline:
      - { action: "k8s:core/pods:get", resource: "ops/*" }
    tools: ["kubectl:get"]
    workloads: [{ kind: Deployment, namespace: ops, name: bot }]
`;

const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });
const span = (id: number, at: number, tool: string, context: string, args?: unknown) => ({
  traceId: id.toString(16).padStart(32, "0"),
  spanId: id.toString(16).padStart(16, "0"),
  startTimeUnixNano: `${at - 100}000000`,
  endTimeUnixNano: `${at + 100}000000`,
  attributes: [
    kv("gen_ai.operation.name", "execute_tool"),
    kv("gen_ai.tool.name", tool),
    kv("gen_ai.conversation.id", context),
    ...(args === undefined ? [] : [kv("gen_ai.tool.call.arguments", JSON.stringify(args))]),
  ],
});
const event = auditEvent;

let dir: string;
let r: AnalysisResult;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-cat2-"));
  const audit: string[] = [];
  const spans: ReturnType<typeof span>[] = [];
  // 5,000 secret reads, one a second, each by a kubectl call; one conversation per 500 calls.
  for (let k = 0; k < OBJECTS; k++) {
    const at = T0 + 10_000 + k * 1000;
    audit.push(event(`s-${k}`, at, "get", "secrets", `s-${k}`));
    spans.push(span(k + 1, at, "kubectl:get", `conv-${Math.floor(k / 500)}`, { name: `s-${k}` }));
  }
  // An untrusted fetch in conversation 7, then the read it led to (the one to cite).
  const tainted = 7 * 500 + 3;
  spans.push(
    span(900_001, T0 + 10_000 + tainted * 1000 - 500, "web:fetch", "conv-7", { url: "https://x.example" }),
  );
  // Three configmaps, a few times each: few enough objects to stay one finding each.
  for (let k = 0; k < 9; k++) {
    const at = T0 + 10_000 + OBJECTS * 1000 + k * 1000;
    audit.push(event(`c-${k}`, at, "get", "configmaps", `cm-${k % 3}`));
  }
  // Declared work: pods get, never reported.
  for (let k = 0; k < 20; k++) {
    const at = T0 + 5_000_000 + k * 1000;
    audit.push(event(`p-${k}`, at, "get", "pods", `p-${k}`));
    spans.push(span(800_000 + k, at, "kubectl:get", "conv-p"));
  }
  spans.sort((a, b) => a.startTimeUnixNano.localeCompare(b.startTimeUnixNano));
  // JSON lines of 100 spans each: the cited calls are read again from their own line.
  const lines: string[] = [];
  for (let i = 0; i < spans.length; i += 100)
    lines.push(
      JSON.stringify({
        resourceSpans: [
          {
            resource: {
              attributes: [
                kv("service.name", "bot"),
                kv("k8s.namespace.name", "ops"),
                kv("k8s.deployment.name", "bot"),
              ],
            },
            scopeSpans: [{ spans: spans.slice(i, i + 100) }],
          },
        ],
      }),
    );
  await writeFile(join(dir, "cluster.yaml"), MANIFESTS);
  await writeFile(join(dir, "audit.log"), `${audit.join("\n")}\n`);
  await writeFile(join(dir, "traces.jsonl"), `${lines.join("\n")}\n`);
  const loaded = await loadConfigText(CONFIG, { file: "writ.yaml" });
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  r = await scanPaths(
    ["cluster.yaml", "audit.log", "traces.jsonl"].map((f) => join(dir, f)),
    { plugins: defaultPlugins, declared: declaredWork(loaded.config!), root: dir },
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("category 2 aggregated per (workload, permission, resource pattern)", () => {
  it("reports 5,000 secret reads as one finding on `ops/*` with counts and a bounded sample", () => {
    const cat2 = r.findings.filter((f) => f.category === "unjustified-use");
    const secrets = cat2.filter((f) => f.permission.action === "k8s:core/secrets:get");
    expect(secrets.map((f) => f.permission.resource)).toEqual(["ops/*"]);
    const f = secrets[0]!;
    // The id of the use it cites (s-3503), as its own finding would have below the fold.
    expect(f.id).toBe(findingId("k8s:Deployment:ops/bot", "k8s:core/secrets:get", "ops/s-3503"));
    expect(f.title).toContain(`(${OBJECTS}×) after untrusted input`);
    expect(f.severity).toBe("high");
    const count = f.evidence.find((s) => s.ref === "count");
    expect(count?.label).toContain(`${OBJECTS} such use(s) of k8s:core/secrets:get on ops/*`);
    expect(count?.label).toContain("on 1000+ distinct object(s)");
    // conv-7 after the fetch: s-3503 … s-3999.
    expect(count?.label).toContain(", 497 after untrusted input");
    // Bounded: the cited use and at most four others, each its own event.
    const events = f.evidence.filter((s) => s.kind === "event");
    expect(events.length).toBeGreaterThan(1);
    expect(events.length).toBeLessThanOrEqual(5);
    expect(new Set(events.map((s) => s.ref)).size).toBe(events.length);
    // The first tainted use is cited, with its own call read again whole and the retrieval.
    expect(events[0]!.ref).toBe("s-3503");
    const calls = f.evidence.filter((s) => s.kind === "tool-call");
    expect(calls[0]!.ref).toBe((3503 + 1).toString(16).padStart(16, "0"));
    expect(calls[0]!.label).toContain('with {"name":"s-3503"}');
    expect(calls[0]!.label).toContain("joined by workload `Deployment bot`");
    expect(calls[1]!.ref).toBe((900_001).toString(16).padStart(16, "0"));
    expect(calls[1]!.label).toContain("untrusted retrieval `web:fetch`");
    expect(calls[1]!.source).toMatchObject({ file: "traces.jsonl" });
    // The guardrail is built from the sample, not from 5,000 calls.
    expect(f.reduction.kind).toBe("gateway-guardrail");
    expect((f.reduction.files[0]!.content.match(/forbid/g) ?? []).length).toBeLessThanOrEqual(5);
  });

  it("keeps one finding per object below the fold, and none for declared work", () => {
    const cat2 = r.findings.filter((f) => f.category === "unjustified-use");
    const cms = cat2.filter((f) => f.permission.action === "k8s:core/configmaps:get");
    expect(cms.map((f) => f.permission.resource).sort()).toEqual(["ops/cm-0", "ops/cm-1", "ops/cm-2"]);
    expect(cms.every((f) => f.evidence.find((s) => s.ref === "count")?.label.includes("3 such use(s)"))).toBe(
      true,
    );
    expect(cat2.some((f) => f.permission.action === "k8s:core/pods:get")).toBe(false);
    expect(cat2).toHaveLength(4);
    expect(r.coverage.toolCalls).toBe(OBJECTS + 1 + 20);
    expect(r.problems).toEqual([]);
  });
});
