/**
 * Category-2 findings' identity and place (issue 12): a finding's id does not change when its uses
 * cross the fold threshold (a folded finding keeps the id of the use it cites, which is the id of
 * that use's own finding below the threshold), and a finding whose grant is not in the input still
 * has a real location — the workload's manifest, else the log line where the use was seen — so
 * SARIF (GitHub code scanning) shows it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  declaredWork,
  defaultPlugins,
  type Finding,
  findingId,
  sarifReport,
  scanPaths,
} from "../../src/analyzer/index.js";
import { loadConfigText } from "../../src/config/index.js";
import { ROOT } from "../support/cli.js";
import { auditEvent, OPS_BOT_MANIFESTS } from "./cat2-fixture.js";

const T0 = Date.UTC(2026, 10, 1);

// The cluster of cat2-aggregation, and a Deployment `rogue` whose account no binding names.
const MANIFESTS = `${OPS_BOT_MANIFESTS}---
apiVersion: apps/v1
kind: Deployment
metadata: {name: rogue, namespace: ops}
spec:
  template:
    spec:
      serviceAccountName: rogue
      containers: [{name: app, image: app}]
`;

const agent = (name: string) => `  ${name}:
    owner: o@acme.example
    purpose: test
    runnerClass: c
    environments: [prod]
    baseline:
      - { action: "k8s:core/pods:get", resource: "ops/*" }
    workloads: [{ kind: Deployment, namespace: ops, name: ${name} }]
`;
const CONFIG = `version: 1
environments: { prod: {} }
runnerClasses: { c: { ceiling: { maxTtl: 1h, allow: [{ action: "k8s:*:*" }] } } }
agents:
${agent("bot")}${agent("rogue")}`;

let dir: string;
let declared: ReturnType<typeof declaredWork>;
const scanWith = (foldAfter: number) =>
  scanPaths(
    ["cluster.yaml", "audit.log"].map((f) => join(dir, f)),
    { plugins: defaultPlugins, declared, root: dir, foldAfter },
  );
const key = (f: Finding) => `${f.category} ${f.workload.id} ${f.permission.action} ${f.permission.resource}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-cat2-identity-"));
  const audit: string[] = [];
  const add = (id: string, sa: string, resource: string, name: string) =>
    audit.push(auditEvent(id, T0 + audit.length * 1000, "get", resource, name, sa));
  // bot: 4 secrets read twice each (outside declared work), 2 configmaps, declared pod reads.
  for (let round = 0; round < 2; round++)
    for (let k = 0; k < 4; k++) add(`s-${round}-${k}`, "bot", "secrets", `s-${k}`);
  for (let k = 0; k < 2; k++) add(`c-${k}`, "bot", "configmaps", `cm-${k}`);
  for (let k = 0; k < 3; k++) add(`p-${k}`, "bot", "pods", `p-${k}`);
  // rogue: a secret read through a grant the export does not show (no binding for its account).
  add("r-0", "rogue", "secrets", "db");
  await writeFile(join(dir, "cluster.yaml"), MANIFESTS);
  await writeFile(join(dir, "audit.log"), `${audit.join("\n")}\n`);
  const loaded = await loadConfigText(CONFIG, { file: "writ.yaml" });
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  declared = declaredWork(loaded.config!);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("finding ids across the fold threshold", () => {
  let unfolded: AnalysisResult;
  let folded: AnalysisResult;
  beforeAll(async () => {
    unfolded = await scanWith(10);
    folded = await scanWith(3);
  });

  it("folds past the threshold and not below it", () => {
    const secrets = (r: AnalysisResult) =>
      r.findings
        .filter(
          (f) => f.workload.id === "k8s:Deployment:ops/bot" && f.permission.action === "k8s:core/secrets:get",
        )
        .map((f) => f.permission.resource)
        .sort();
    expect(secrets(unfolded)).toEqual(["ops/s-0", "ops/s-1", "ops/s-2", "ops/s-3"]);
    expect(secrets(folded)).toEqual(["ops/*"]);
  });

  it("gives the folded finding the id of the use it cites, the id that use's own finding has below the threshold", () => {
    const f = folded.findings.find((x) => x.permission.resource === "ops/*")!;
    const cited = f.evidence.find((s) => s.kind === "event")!;
    expect(cited.ref).toBe("s-0-0");
    const same = unfolded.findings.find((x) => key(x) === key(f).replace("ops/*", "ops/s-0"))!;
    expect(f.id).toBe(same.id);
    expect(f.id).toBe(findingId("k8s:Deployment:ops/bot", "k8s:core/secrets:get", "ops/s-0"));
    expect(f.id).not.toBe(findingId("k8s:Deployment:ops/bot", "k8s:core/secrets:get", "ops/*"));
  });

  it("keeps every other finding's id, and no two findings share one", () => {
    const byKey = (r: AnalysisResult) =>
      new Map(r.findings.filter((f) => f.permission.resource !== "ops/*").map((f) => [key(f), f.id]));
    const a = byKey(unfolded);
    const b = byKey(folded);
    for (const [k, id] of b) expect(a.get(k), k).toBe(id);
    expect(b.size).toBeGreaterThan(2);
    for (const r of [unfolded, folded])
      expect(new Set(r.findings.map((f) => f.id)).size).toBe(r.findings.length);
  });
});

describe("the location of a category-2 finding whose grant is not in the input", () => {
  it("is the workload's manifest when it has one", async () => {
    const r = await scanWith(10);
    const f = r.findings.find(
      (x) => x.workload.id === "k8s:Deployment:ops/rogue" && x.category === "unjustified-use",
    )!;
    expect(f.evidence.some((s) => s.ref === "grant")).toBe(true);
    expect(f.location).toEqual({ file: "cluster.yaml", line: 28 }); // the Deployment's document
    const sarif = JSON.parse(sarifReport(r));
    const result = sarif.runs[0].results.find(
      (x: { partialFingerprints: Record<string, string> }) =>
        x.partialFingerprints["writFindingId/v1"] === f.id,
    );
    expect(result.locations[0].physicalLocation).toEqual({
      artifactLocation: { uri: "cluster.yaml", uriBaseId: "%SRCROOT%" },
      region: { startLine: 28 },
    });
    // Where the use was seen: the audit log's record, as a related location.
    expect(result.relatedLocations).toContainEqual(
      expect.objectContaining({
        physicalLocation: {
          artifactLocation: { uri: "audit.log", uriBaseId: "%SRCROOT%" },
          region: { startLine: 14 },
        },
      }),
    );
  });

  it("is the log line where the use was seen when the workload has no manifest (an identity writ.yaml ties)", async () => {
    const fixture = join(ROOT, "test", "fixtures", "unseen-identity");
    const loaded = await loadConfigText(
      await import("node:fs/promises").then((fs) => fs.readFile(join(fixture, "writ.yaml"), "utf8")),
      { file: "writ.yaml" },
    );
    const r = await scanPaths([fixture], {
      plugins: defaultPlugins,
      declared: declaredWork(loaded.config!),
      root: fixture,
    });
    const f = r.findings.find((x) => x.category === "unjustified-use")!;
    expect(f.workload.id).toBe("k8s:ServiceAccount:ops/reporter");
    const seen = f.evidence.find((s) => s.kind === "event")!.source!;
    expect(seen.file).toBe("audit.log");
    expect(f.location).toEqual(seen);
    const sarif = JSON.parse(sarifReport(r));
    const ids = sarif.runs[0].results.map(
      (x: { partialFingerprints: Record<string, string> }) => x.partialFingerprints["writFindingId/v1"],
    );
    expect(ids.sort()).toEqual(r.findings.map((x) => x.id).sort());
  });
});
