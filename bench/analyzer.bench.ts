/**
 * The analyzer on a large audit log: a generated 1,000,000-event `audit.k8s.io/v1` JSON-lines file
 * (200 service accounts in 20 namespaces, 40 actions each, 2% denied), written to a temporary
 * folder, never committed. Reported: events analyzed per second and peak memory for the whole scan
 * (manifests + streamed log + classification), beside the floor — the time to only read and
 * `JSON.parse` every line of the same file.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { k8sPlugin, scanPaths } from "../src/analyzer/index.js";

const EVENTS = Number(process.env.WRIT_BENCH_AUDIT_EVENTS ?? 1_000_000);
const NAMESPACES = 20;
const SAS = 200;
const RESOURCES = ["pods", "services", "configmaps", "secrets", "endpoints"];
const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

async function generate(dir: string): Promise<{ log: string; manifests: string }> {
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
async function withPeak<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; peakMiB: number }> {
  global.gc?.();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const start = performance.now();
  try {
    const value = await fn();
    return {
      value,
      ms: performance.now() - start,
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
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
