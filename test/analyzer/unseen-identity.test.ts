/**
 * Service accounts seen only in the audit log (no manifest of them exported): reported as
 * identities writ cannot see the grants of (`IDENTITY_GRANTS_UNKNOWN`, categories 1 and 3
 * unknown), their use still judged against declared work when writ.yaml's `serviceAccounts` tie an
 * agent to them; the control plane's controllers, exported accounts, accounts with only denied
 * requests and people are not reported (test/fixtures/unseen-identity/labels.yaml).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  type AnalysisResult,
  declaredWork,
  defaultPlugins,
  jsonReport,
  markdownReport,
  sarifReport,
  scanPaths,
  terminalReport,
} from "../../src/analyzer/index.js";
import { loadConfigFile } from "../../src/config/index.js";
import { ROOT } from "../support/cli.js";

const DIR = join(ROOT, "test", "fixtures", "unseen-identity");

interface Labels {
  unjudged: { identity: string; agent?: string; judged: string }[];
  "unjustified-use": { workload: string; action: string; resource: string }[];
  "must-not-report": { identity?: string; workload?: string; action?: string }[];
}
const labels = parse(readFileSync(join(DIR, "labels.yaml"), "utf8")) as Labels;

let r: AnalysisResult;
beforeAll(async () => {
  const loaded = await loadConfigFile(join(DIR, "writ.yaml"));
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  r = await scanPaths([DIR], { plugins: defaultPlugins, declared: declaredWork(loaded.config!), root: DIR });
});

describe("a service account seen only in the audit log", () => {
  it("is reported as an identity whose grants are unknown, exactly as labelled", () => {
    const got = (r.unjudged ?? []).map((u) => u.identity).sort();
    expect(got).toEqual(labels.unjudged.map((l) => l.identity).sort());
    for (const l of labels.unjudged) {
      const u = r.unjudged!.find((x) => x.identity === l.identity)!;
      expect(u.code).toBe("IDENTITY_GRANTS_UNKNOWN");
      expect(u.answer).toBe("unknown");
      expect(u.why).toContain("its grants, and so its unused or inherited scope, are unknown");
      expect(u.agent?.id).toBe(l.agent);
      expect(u.judged).toContain(l.judged);
      expect(u.use.length).toBeGreaterThan(0);
      expect(u.use.every((x) => x.events.length > 0 && x.events[0]!.source?.file === "audit.log")).toBe(true);
    }
    const legacy = r.unjudged!.find((u) => u.identity === "k8s:ServiceAccount:batch/legacy-sync")!;
    expect(legacy.use.map((x) => [x.action, x.count])).toEqual([
      ["k8s:core/pods:list", 3],
      ["k8s:apps/deployments:patch", 1],
    ]);
    // The id is stable: a hash of the identity alone.
    expect(legacy.id).toMatch(/^wf-[0-9a-f]{16}$/);
  });

  it("is judged against the declared work of the agent writ.yaml ties to it (category 2)", () => {
    const cat2 = r.findings.filter((f) => f.category === "unjustified-use");
    expect(cat2.map((f) => [f.workload.id, f.permission.action, f.permission.resource])).toEqual(
      labels["unjustified-use"].map((l) => [l.workload, l.action, l.resource]),
    );
    const f = cat2[0]!;
    expect(f.workload.agent).toBe("reporter");
    expect(f.evidence[0]).toMatchObject({ kind: "event", ref: "u-10" });
    expect(f.evidence.some((s) => s.label.includes("the grant that allowed it is not in the input"))).toBe(
      true,
    );
    // Nothing about grants it may hold: categories 1 and 3 need them.
    expect(r.findings.some((f) => f.workload.id.startsWith("k8s:ServiceAccount:"))).toBe(true);
    expect(
      r.findings.filter(
        (f) => f.workload.id.startsWith("k8s:ServiceAccount:") && f.category !== "unjustified-use",
      ),
    ).toEqual([]);
  });

  it("reports none of the must-not-report cases", () => {
    for (const m of labels["must-not-report"]) {
      if (m.identity && !m.action) expect(r.unjudged!.map((u) => u.identity)).not.toContain(m.identity);
      if (m.workload)
        expect(
          r.findings.filter(
            (f) => f.workload.id === m.workload && (!m.action || f.permission.action === m.action),
          ),
        ).toEqual([]);
    }
  });

  it("is shown in every report", () => {
    expect(terminalReport(r)).toContain(
      "IDENTITY_GRANTS_UNKNOWN k8s:ServiceAccount:batch/legacy-sync: 2 action(s), 4 use(s); grants unknown",
    );
    expect(markdownReport(r)).toContain("## Identities writ cannot see the grants of");
    const json = JSON.parse(jsonReport(r)) as { unjudged: { identity: string }[] };
    expect(json.unjudged.map((u) => u.identity)).toContain("k8s:ServiceAccount:ops/reporter");
    const sarif = JSON.parse(sarifReport(r)) as {
      runs: {
        invocations: {
          toolExecutionNotifications: { descriptor: { id: string }; message: { text: string } }[];
        }[];
      }[];
    };
    const notes = sarif.runs[0]!.invocations[0]!.toolExecutionNotifications.filter(
      (n) => n.descriptor.id === "identity-grants-unknown",
    );
    expect(notes.map((n) => n.message.text.split(" ")[0])).toEqual([
      "k8s:ServiceAccount:batch/legacy-sync",
      "k8s:ServiceAccount:ops/reporter",
    ]);
  });
});
