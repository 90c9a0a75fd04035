/**
 * The realistic example (test/fixtures/realistic/): a cluster export as real ones look — no writ
 * annotations, agents tied to workloads by writ.yaml — scanned as `writ scan` does, and scored
 * against labels.yaml: precision and recall per category and for escalation edges, and the
 * must-not-report violations, all printed, and asserted at issue 12's target: 1.0 everywhere, 0
 * violations. The existing worked example is scored the same way, at the target.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  type DeclaredWork,
  declaredWork,
  defaultPlugins,
  scanPaths,
} from "../../src/analyzer/index.js";
import { loadConfigFile } from "../../src/config/index.js";
import { generate } from "../fixtures/realistic/generate.js";
import { ROOT } from "../support/cli.js";
import { type Labels, printScorecard, readLabels, type Scorecard, scoreAgainst } from "./labels.js";

const DIR = join(ROOT, "test", "fixtures", "realistic");
const EXPORT = join(DIR, "export");

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  return out.sort();
}

describe("the realistic example", () => {
  let result: AnalysisResult;
  let labels: Labels;
  let card: Scorecard;
  let configProblems: string[];
  beforeAll(async () => {
    const cfg = await loadConfigFile(join(DIR, "writ.yaml"));
    configProblems = cfg.problems.filter((p) => p.severity === "error").map((p) => `${p.code} ${p.path}`);
    // writ.yaml uses the per-agent fields of issue 12 item 1; where this tree's config does not
    // read them yet, the scan runs without declared work and the figures below say so.
    let declared: Map<string, DeclaredWork> | undefined;
    if (cfg.config && configProblems.length === 0) declared = declaredWork(cfg.config);
    console.log(
      `[realistic] writ.yaml: ${configProblems.length === 0 ? "loaded" : `${configProblems.length} error(s), scanned without declared work (first: ${configProblems[0]})`}`,
    );
    result = await scanPaths([EXPORT], { plugins: defaultPlugins, declared, root: EXPORT });
    labels = await readLabels(join(DIR, "labels.yaml"));
    card = scoreAgainst(result, labels);
    printScorecard("realistic example", card);
  });

  it("is what the committed generator writes, byte for byte", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "writ-realistic-"));
    try {
      generate(tmp);
      const files = await filesUnder(tmp);
      expect(await filesUnder(EXPORT)).toEqual(files);
      for (const f of files)
        expect(await readFile(join(EXPORT, f), "utf8"), f).toBe(await readFile(join(tmp, f), "utf8"));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("carries none of writ's annotations", async () => {
    for (const f of await filesUnder(EXPORT))
      expect(await readFile(join(EXPORT, f), "utf8"), f).not.toMatch(/writ\.dev\//);
  });

  it("labels enough: five agents' findings in every category, edges, at least 15 must-not-report", () => {
    const agents = new Set(
      [...labels["unused-excess"], ...labels["unjustified-use"], ...labels["inherited-overreach"]].map(
        (l) => l.workload,
      ),
    );
    expect(agents.size).toBeGreaterThanOrEqual(5);
    for (const c of ["unused-excess", "unjustified-use", "inherited-overreach"] as const)
      expect(labels[c].length).toBeGreaterThan(0);
    expect(labels.escalations?.length).toBeGreaterThan(0);
    expect(labels["must-not-report"].length).toBeGreaterThanOrEqual(15);
  });

  it("reads the broken document and the cut-off audit line as problems, and the rest", () => {
    expect(result.problems.map((p) => [p.code, p.file, p.line])).toEqual([
      ["ERR_INPUT_YAML", "k8s/extra-manifests.yaml", 12],
      ["ERR_INPUT_JSON_LINE", "audit/kube-apiserver-audit.log", 143],
    ]);
    // 142 whole audit lines and 30 CloudTrail records (7 of them STS), every one read
    expect(result.coverage.events).toBeGreaterThanOrEqual(142 + 23);
    expect(result.coverage.toolCalls).toBe(29);
    expect([...result.workloadIds].sort()).toEqual([
      "k8s:CronJob:batch/nightly-report",
      "k8s:DaemonSet:ops/log-shipper",
      "k8s:Deployment:platform/deploy-bot",
      "k8s:Deployment:support/support-bot",
      "k8s:StatefulSet:data/indexer",
    ]);
  });

  it("scores 1.0 in every category and on the edges, with no must-not-report violated", () => {
    for (const category of ["unused-excess", "unjustified-use", "inherited-overreach"] as const) {
      expect(card.categories[category].precision, category).toBe(1);
      expect(card.categories[category].recall, category).toBe(1);
    }
    expect(card.edges?.precision).toBe(1);
    expect(card.edges?.recall).toBe(1);
    expect(card.violated).toEqual([]);
  });
});

describe("the existing worked example (examples/analyzer), scored the same way", () => {
  it("scores 1.0 in every category with no must-not-report violated", async () => {
    const ex = join(ROOT, "examples", "analyzer");
    const cfg = await loadConfigFile(join(ex, "writ.yaml"));
    expect(cfg.problems.filter((p) => p.severity === "error")).toEqual([]);
    const r = await scanPaths(
      ["cluster.yaml", "audit.log", "traces.json"].map((f) => join(ex, f)),
      { plugins: defaultPlugins, declared: declaredWork(cfg.config!), root: ex },
    );
    const s = scoreAgainst(r, await readLabels(join(ex, "labels.yaml")));
    printScorecard("examples/analyzer", s);
    for (const c of ["unused-excess", "unjustified-use", "inherited-overreach"] as const) {
      expect(s.categories[c].precision, c).toBe(1);
      expect(s.categories[c].recall, c).toBe(1);
    }
    expect(s.violations).toEqual([]);
  });
});

describe("the scorer", () => {
  const base = {
    kind: "finding" as const,
    severity: "high" as const,
    title: "t",
    reduction: { kind: "x", summary: "s", files: [] },
    misclassification: "m",
    confidence: 1,
  };
  const labels: Labels = {
    "unused-excess": [{ workload: "w", action: "k8s:core/pods:delete", resource: "ns/*" }],
    "unjustified-use": [{ workload: "w", action: "k8s:core/secrets:get", resource: "ns/db" }],
    "inherited-overreach": [{ workload: "w", via: "k8s:RoleBinding:ns/shared" }],
    escalations: [{ type: "WORKLOAD_CREATE", from: "k8s:RoleBinding:ns/b", action: "k8s:batch/jobs:create" }],
    "must-not-report": [
      {
        why: "default",
        category: "inherited-overreach",
        evidence: "k8s:ClusterRoleBinding:system:discovery",
      },
    ],
  };
  const result = (findings: AnalysisResult["findings"], escalations: AnalysisResult["escalations"] = []) =>
    ({
      findings,
      escalations,
      blastRadius: [],
      problems: [],
      coverage: {
        events: 0,
        eventsDenied: 0,
        toolCalls: 0,
        workloads: 1,
        workloadsWithActivity: 1,
        files: 1,
      },
      workloadIds: ["w"],
    }) as AnalysisResult;
  const wl = { id: "w", label: "w" };

  it("matches category 2 on the resource an event of its evidence used, and counts misses and extras", () => {
    const findings: AnalysisResult["findings"] = [
      {
        ...base,
        id: "a",
        category: "unjustified-use",
        workload: wl,
        permission: { action: "k8s:core/secrets:get", resource: "ns/*" },
        evidence: [
          {
            kind: "event",
            ref: "r1",
            label: "2026-11-02T00:00:00.000Z k8s:ServiceAccount:ns/w k8s:core/secrets:get ns/db (allowed)",
          },
        ],
      },
      {
        ...base,
        id: "b",
        category: "unused-excess",
        workload: wl,
        permission: { action: "k8s:core/pods:get", resource: "ns/*" },
        evidence: [],
      },
    ];
    const s = scoreAgainst(result(findings), labels);
    expect(s.categories["unjustified-use"]).toMatchObject({ tp: 1, fp: 0, fn: 0 });
    // naming the conversation, the label needs the finding to cite it
    const strict = scoreAgainst(result(findings), {
      ...labels,
      "unjustified-use": [{ ...labels["unjustified-use"][0]!, conversation: "conv-9" }],
    });
    expect(strict.categories["unjustified-use"]).toMatchObject({ tp: 0, fp: 1, fn: 1 });
    expect(s.categories["unused-excess"]).toMatchObject({ tp: 0, fp: 1, fn: 1, precision: 0, recall: 0 });
    expect(s.categories["inherited-overreach"]).toMatchObject({ tp: 0, fn: 1, recall: 0 });
    expect(s.edges).toMatchObject({ tp: 0, fn: 1 });
    expect(s.violations).toEqual([]);
  });

  it("collapses inherited findings through one binding, and reports must-not violations", () => {
    const inherited = (id: string, via: string) => ({
      ...base,
      id,
      category: "inherited-overreach" as const,
      workload: wl,
      permission: { action: "k8s:core/pods:get", resource: "ns/*" },
      evidence: [{ kind: "node" as const, ref: via, label: via }],
    });
    const s = scoreAgainst(
      result(
        [
          inherited("a", "k8s:RoleBinding:ns/shared"),
          inherited("b", "k8s:RoleBinding:ns/shared"),
          inherited("c", "k8s:ClusterRoleBinding:system:discovery"),
        ],
        [
          {
            kind: "escalation",
            type: "WORKLOAD_CREATE",
            from: "k8s:RoleBinding:ns/b",
            to: "k8s:Node:*",
            via: { action: "k8s:batch/jobs:create", resource: "ns/*" },
          },
          {
            kind: "escalation",
            type: "IDENTITY_ASSUME",
            from: "w",
            to: "sa",
            via: { action: "", resource: "" },
          },
        ],
      ),
      labels,
    );
    expect(s.categories["inherited-overreach"]).toMatchObject({ tp: 1, fp: 1, fn: 0, precision: 0.5 });
    expect(s.edges).toMatchObject({ tp: 1, fp: 0, fn: 0 });
    expect(s.violations).toEqual(["default: c inherited-overreach w k8s:core/pods:get ns/*"]);
  });
});
