/**
 * The analyzer on a large audit log: a generated 1,000,000-event `audit.k8s.io/v1` JSON-lines file
 * (200 service accounts in 20 namespaces, 40 actions each, 2% denied), written to a temporary
 * folder, never committed. Reported: events analyzed per second and peak memory for the whole scan
 * (manifests + streamed log + classification), beside the floor — the time to only read and
 * `JSON.parse` every line of the same file. A second scan adds as many OTel tool-call spans (JSON
 * lines of OTLP export requests, each span naming its namespace and Deployment) and a writ.yaml
 * tying one agent to each Deployment by `workloads` (no annotations): the trace join and the
 * declared-work judgement on every event; its floor reads and parses both files.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { declaredWork, k8sPlugin, otlpTraceImporter, scanPaths } from "../src/analyzer/index.js";
import { loadConfigText } from "../src/config/index.js";

const EVENTS = Number(process.env.WRIT_BENCH_AUDIT_EVENTS ?? 1_000_000);
const SPANS = Number(process.env.WRIT_BENCH_SPANS ?? EVENTS);
const SPANS_PER_LINE = 1000;
const NAMESPACES = 20;
const SAS = 200;
const RESOURCES = ["pods", "services", "configmaps", "secrets", "endpoints"];
const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

export async function generate(dir: string): Promise<{ log: string; manifests: string }> {
  const docs: string[] = [];
  for (let i = 0; i < SAS; i++) {
    const ns = `ns-${i % NAMESPACES}`;
    const name = `sa-${i}`;
    docs.push(
      `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${name}, namespace: ${ns}}`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: ${name}, namespace: ${ns}}\nrules:\n  - apiGroups: [""]\n    resources: [${RESOURCES.join(", ")}]\n    verbs: ["*"]`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: ${name}, namespace: ${ns}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${name}}\nsubjects: [{kind: ServiceAccount, name: ${name}, namespace: ${ns}}]`,
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app-${i}, namespace: ${ns}}\nspec:\n  template:\n    spec:\n      serviceAccountName: ${name}\n      containers: [{name: app, image: app}]`,
    );
  }
  const manifests = join(dir, "cluster.yaml");
  await writeFile(manifests, docs.join("\n---\n"));
  const log = join(dir, "audit.log");
  const out = createWriteStream(log);
  const t0 = Date.UTC(2026, 10, 1);
  for (let i = 0; i < EVENTS; i++) {
    const sa = i % SAS;
    const ns = `ns-${sa % NAMESPACES}`;
    const r = RESOURCES[(i >> 3) % RESOURCES.length]!;
    const v = VERBS[(i * 7 + sa) % 5]!; // the first five verbs only: the rest stay unused
    const line = JSON.stringify({
      kind: "Event",
      apiVersion: "audit.k8s.io/v1",
      level: "Metadata",
      auditID: `a-${i}`,
      stage: "ResponseComplete",
      verb: v,
      user: {
        username: `system:serviceaccount:${ns}:sa-${sa}`,
        groups: ["system:serviceaccounts", "system:authenticated"],
      },
      objectRef: {
        resource: r,
        namespace: ns,
        name: v === "list" || v === "watch" ? undefined : `obj-${i % 500}`,
        apiVersion: "v1",
      },
      responseStatus: { code: i % 50 === 0 ? 403 : 200 },
      requestReceivedTimestamp: new Date(t0 + i * 500).toISOString(),
    });
    if (!out.write(`${line}\n`)) await new Promise<void>((res) => out.once("drain", () => res()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  return { log, manifests };
}

/** Tool-call spans, one per event slot, naming the Deployment the event's account runs in. */
export async function generateTraces(dir: string): Promise<{ traces: string; config: string }> {
  const traces = join(dir, "traces.jsonl");
  const out = createWriteStream(traces);
  const t0 = Date.UTC(2026, 10, 1);
  const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });
  for (let line = 0; line * SPANS_PER_LINE < SPANS; line++) {
    const resourceSpans = [];
    for (let j = 0; j < SPANS_PER_LINE && line * SPANS_PER_LINE + j < SPANS; j++) {
      const i = line * SPANS_PER_LINE + j;
      const sa = i % SAS;
      const start = BigInt(t0 + i * 500 - 200) * 1_000_000n;
      resourceSpans.push({
        resource: {
          attributes: [
            kv("service.name", `agent-${sa}`),
            kv("k8s.namespace.name", `ns-${sa % NAMESPACES}`),
            kv("k8s.deployment.name", `app-${sa}`),
          ],
        },
        scopeSpans: [
          {
            spans: [
              {
                traceId: i.toString(16).padStart(32, "0"),
                spanId: i.toString(16).padStart(16, "0"),
                startTimeUnixNano: String(start),
                endTimeUnixNano: String(start + 400_000_000n),
                attributes: [
                  kv("gen_ai.operation.name", "execute_tool"),
                  kv("gen_ai.tool.name", i % 97 === 0 ? "web:fetch" : "kubectl:get"),
                  kv("gen_ai.conversation.id", `c-${sa}-${Math.floor(i / 20_000)}`),
                ],
              },
            ],
          },
        ],
      });
    }
    if (!out.write(`${JSON.stringify({ resourceSpans })}\n`))
      await new Promise<void>((res) => out.once("drain", () => res()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  const agents = Array.from({ length: SAS }, (_, i) =>
    [
      `  agent-${i}:`,
      "    owner: o@acme.example",
      "    purpose: bench",
      "    runnerClass: c",
      "    environments: [prod]",
      "    baseline:",
      `      - { action: "k8s:core/pods:get|list|watch", resource: "ns-${i % NAMESPACES}/*" }`,
      '    tools: ["kubectl:get", "web:fetch"]',
      `    workloads: [{ kind: Deployment, namespace: ns-${i % NAMESPACES}, name: app-${i} }]`,
    ].join("\n"),
  );
  const config = [
    "version: 1",
    "environments: { prod: {} }",
    'runnerClasses: { c: { ceiling: { maxTtl: 1h, allow: [{ action: "k8s:*:*" }, { action: "mcp:*:*" }] } } }',
    "agents:",
    ...agents,
  ].join("\n");
  return { traces, config };
}

async function parseOnly(log: string): Promise<number> {
  const rl = createInterface({
    input: createReadStream(log, { encoding: "utf8", highWaterMark: 1 << 20 }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  for await (const line of rl) if (line && JSON.parse(line)) n++;
  return n;
}

/** Peak RSS while `fn` runs, sampled every 20 ms. */
async function withPeak<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; ms: number; cpuMs: number; peakMiB: number }> {
  global.gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const start = performance.now();
  const cpu = process.cpuUsage();
  try {
    const value = await fn();
    const used = process.cpuUsage(cpu);
    return {
      value,
      ms: performance.now() - start,
      // CPU time of the whole process (all threads): steadier than wall time on a shared machine.
      cpuMs: (used.user + used.system) / 1000,
      peakMiB: Math.max(peak, process.memoryUsage().rss) / 1048576,
    };
  } finally {
    clearInterval(timer);
  }
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-analyzer-"));
  try {
    const { log, manifests } = await generate(dir);
    const floor = await withPeak(() => parseOnly(log));
    const scan = await withPeak(() => scanPaths([manifests, log], { plugins: [k8sPlugin] }));
    const { traces, config } = await generateTraces(dir);
    const loaded = await loadConfigText(config, { file: "bench-writ.yaml" });
    if (!loaded.config) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
    const declared = declaredWork(loaded.config);
    const floor2 = await withPeak(async () => (await parseOnly(log)) + (await parseOnly(traces)));
    const joined = await withPeak(() =>
      scanPaths([manifests, log, traces], {
        plugins: [{ ...k8sPlugin, importers: [...k8sPlugin.importers, otlpTraceImporter] }],
        declared,
      }),
    );
    const fmt = (n: number, d = 0) =>
      n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
    const rows = [
      ["read + JSON.parse only (floor)", floor.value, floor.ms, floor.peakMiB],
      ["writ scan (import, attribute, classify)", scan.value.coverage.events, scan.ms, scan.peakMiB],
    ] as const;
    console.log(
      `analyzer: ${fmt(EVENTS)}-event audit log, ${SAS} service accounts (generated in a temp folder)\n`,
    );
    console.log("| path | events | seconds | events/s | peak RSS MiB | vs floor |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const [name, events, ms, peak] of rows)
      console.log(
        `| ${name} | ${fmt(events)} | ${fmt(ms / 1000, 2)} | ${fmt(events / (ms / 1000))} | ${fmt(peak)} | ${fmt(ms / floor.ms, 2)}× |`,
      );
    console.log(
      `\nfindings: ${scan.value.findings.length}; events denied (not use): ${fmt(scan.value.coverage.eventsDenied)}`,
    );
    console.log(
      `\nwith ${fmt(SPANS)} tool-call spans and ${SAS} agents tied by writ.yaml \`workloads\` (the trace join, declared work judged):\n`,
    );
    console.log(
      "| path | events + spans | seconds | peak RSS MiB | vs floor | floor / scan | CPU s | floor / scan (CPU) |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
    console.log(
      `| read + JSON.parse both files (floor) | ${fmt(EVENTS + SPANS)} | ${fmt(floor2.ms / 1000, 2)} | ${fmt(floor2.peakMiB)} | 1.00× | 100% | ${fmt(floor2.cpuMs / 1000, 2)} | 100% |`,
    );
    console.log(
      `| writ scan (import, tie, join, judge, classify) | ${fmt(EVENTS + SPANS)} | ${fmt(joined.ms / 1000, 2)} | ${fmt(joined.peakMiB)} | ${fmt(joined.ms / floor2.ms, 2)}× | ${fmt((floor2.ms / joined.ms) * 100)}% | ${fmt(joined.cpuMs / 1000, 2)} | ${fmt((floor2.cpuMs / joined.cpuMs) * 100)}% |`,
    );
    const cat2 = joined.value.findings.filter((f) => f.category === "unjustified-use").length;
    console.log(
      `\nfindings: ${joined.value.findings.length} (unjustified use: ${cat2}); tool calls: ${fmt(joined.value.coverage.toolCalls)}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
