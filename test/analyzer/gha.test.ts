/**
 * zizmor's permission fixtures (../shared/corpora/gha-workflows) against its expected.md, regular
 * persona, `excessive-permissions` audit. writ's findings are compared as `file:line:severity`.
 * What zizmor's audit covers, writ reports as: a wildcard block (`read-all`, `write-all`), or a
 * grant inherited from the workflow's block (several jobs) or the repository default — on each job
 * and, when several jobs fall back on the default, on the workflow's top level (its own workload). writ's other
 * findings — explicit scopes of a job's own block that no step needs — are inferences zizmor does
 * not make; they are counted apart, not as false positives.
 */
import { relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type AnalysisResult, githubPlugin, scanPaths } from "../../src/analyzer/index.js";
import { corpus, printScore, score } from "./corpora.js";

const EXPECTED: Readonly<Record<string, readonly string[]>> = {
  "excessive-permissions/workflow-write-all.yml": ["5:high"],
  "excessive-permissions/workflow-read-all.yml": ["5:medium"],
  "excessive-permissions/workflow-write-explicit.yml": ["7:high", "8:high", "9:medium"],
  "excessive-permissions/jobs-broaden-permissions.yml": ["11:medium", "20:high"],
  "excessive-permissions/workflow-empty-perms.yml": [],
  "excessive-permissions/workflow-default-perms-all-jobs-explicit.yml": [],
  "excessive-permissions/workflow-default-perms.yml": ["14:medium"],
  "excessive-permissions/issue-336-repro.yml": [],
  "excessive-permissions/issue-472-repro.yml": ["20:medium"],
  "excessive-permissions/reusable-workflow-call.yml": ["7:medium"],
  "excessive-permissions/reusable-workflow-other-triggers.yml": ["1:medium", "11:medium", "19:medium"],
  "excessive-permissions.yml": ["12:high"],
};
const RANK = { critical: 4, high: 3, medium: 2, low: 1 } as const;

describe("GitHub Actions workflows (zizmor fixtures)", () => {
  let result: AnalysisResult;
  const root = () => corpus("gha-workflows");
  beforeAll(async () => {
    result = await scanPaths([root()], { plugins: [githubPlugin] });
  });

  it("finds what zizmor's excessive-permissions audit expects", () => {
    const expected = Object.entries(EXPECTED).flatMap(([f, list]) => list.map((x) => `${f}:${x}`));
    const worst = new Map<string, keyof typeof RANK>();
    for (const f of result.findings) {
      const file = relative(root(), f.location?.file ?? "");
      if (!(file in EXPECTED)) continue;
      const zizmorKind = f.category === "inherited-overreach" || f.permission.action.startsWith("github:*:");
      if (!zizmorKind) continue;
      const key = `${file}:${f.location?.line}`;
      const prev = worst.get(key);
      const sev = f.severity === "critical" ? "high" : f.severity;
      if (!prev || RANK[sev] > RANK[prev]) worst.set(key, sev);
    }
    const actual = [...worst].map(([k, s]) => `${k}:${s}`);
    const s = score(expected, actual);
    printScore("GitHub Actions excessive permissions (zizmor fixtures, regular persona)", s);
    // Measured: precision 1.000, recall 1.000 (tp 14).
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
  });

  it("reports the workflow's top level when several jobs fall back on the default, and only then", () => {
    const top = (file: string) =>
      result.findings.filter(
        (f) => f.workload.id === `github:workflow:${root()}/${file}` && f.category === "inherited-overreach",
      );
    const [f, ...more] = top("excessive-permissions/reusable-workflow-other-triggers.yml");
    expect(more).toEqual([]);
    expect(f?.location?.line).toBe(1);
    expect(f?.severity).toBe("medium");
    expect(f?.reduction.files[0]?.content).toMatch(
      /^# top level of the workflow, for job1, job2\npermissions:/,
    );
    // one job (the job is the place), every job explicit, reusable-only (the caller decides)
    for (const file of [
      "excessive-permissions/workflow-default-perms.yml",
      "excessive-permissions/workflow-default-perms-all-jobs-explicit.yml",
      "excessive-permissions/issue-472-repro.yml",
      "excessive-permissions/reusable-workflow-call.yml",
    ])
      expect(result.workloadIds).not.toContain(`github:workflow:${root()}/${file}`);
  });

  it("flags nothing on empty permissions, and generates a permissions block per job", () => {
    const empty = result.findings.filter((f) => f.location?.file.endsWith("workflow-empty-perms.yml"));
    expect(empty).toEqual([]);
    const f = result.findings.find(
      (x) => x.location?.file.endsWith("workflow-write-explicit.yml") && x.category === "inherited-overreach",
    );
    expect(f?.reduction.kind).toBe("permissions-block");
    // job2 only checks out: its own block needs contents: read, nothing else
    expect(f?.reduction.files[0]?.content).toContain("contents: read");
    expect(f?.reduction.files[0]?.content).not.toContain("id-token");
  });
});
