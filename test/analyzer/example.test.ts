/**
 * The worked example (examples/analyzer): each of the three categories appears, with its fix, and
 * the generated gateway guardrail loads as part of the example's own writ.yaml.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { declaredWork, defaultPlugins, scanPaths } from "../../src/analyzer/index.js";
import { loadPolicy } from "../../src/app.js";
import { ROOT } from "../support/cli.js";

const DIR = join(ROOT, "examples", "analyzer");

describe("examples/analyzer", () => {
  it("shows each category with its generated fix, and the guardrail loads in writ.yaml", async () => {
    const loaded = await loadPolicy(join(DIR, "writ.yaml"));
    expect(loaded.policy).toBeDefined();
    const r = await scanPaths([join(DIR, "cluster.yaml"), join(DIR, "audit.log"), join(DIR, "traces.json")], {
      plugins: defaultPlugins,
      declared: declaredWork(loaded.policy!.config),
    });
    expect(r.problems).toEqual([]);
    const of = (c: string) => r.findings.filter((f) => f.category === c);

    const unused = of("unused-excess").filter((f) => f.workload.id === "k8s:Deployment:ops/deploy-bot");
    expect(unused.map((f) => f.permission.action).sort()).toEqual([
      "k8s:apps/deployments:create",
      "k8s:apps/deployments:delete",
      "k8s:core/secrets:get",
    ]);
    const role = unused[0]!.reduction.files[0]!.content;
    expect(role).toContain("kind: Role");
    expect(role).toContain("verbs: [get, list, patch]");
    expect(role).not.toContain("secrets");
    expect(role).toMatch(/# evidence: patch: observed 14×/);

    const [unjustified, ...more] = of("unjustified-use");
    expect(more).toEqual([]);
    expect(unjustified!.workload.agent).toBe("triage-bot");
    expect(unjustified!.evidence.map((e) => e.kind).slice(0, 3)).toEqual(["event", "tool-call", "context"]);
    expect(unjustified!.evidence[0]!.ref).toBe("t-secret-1");
    expect(unjustified!.evidence[2]!.label).toContain("tainted by `web:fetch`");
    expect(unjustified!.reduction.kind).toBe("gateway-guardrail");

    const inherited = of("inherited-overreach");
    expect(inherited.map((f) => f.workload.id)).toEqual(["k8s:Deployment:ops/report-bot"]);
    expect(inherited[0]!.evidence.some((e) => e.ref === "k8s:RoleBinding:ops/ops-default-edit")).toBe(true);
    expect(inherited[0]!.reduction.kind).toBe("dedicated-identity");
    expect(inherited[0]!.reduction.files.map((f) => f.content).join("\n")).toContain(
      "serviceAccountName: agent-report-bot",
    );

    // The guardrail is writ configuration: it loads, validated against the generated Cedar schema.
    const dir = await mkdtemp(join(tmpdir(), "writ-example-"));
    try {
      const base = await readFile(join(DIR, "writ.yaml"), "utf8");
      const file = join(dir, "writ.yaml");
      await writeFile(file, `${base}\n${unjustified!.reduction.files[0]!.content}`);
      const withGuardrail = await loadPolicy(file);
      expect(withGuardrail.problems.filter((p) => p.severity === "error")).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
