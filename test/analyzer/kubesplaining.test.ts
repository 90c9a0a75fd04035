/**
 * kubesplaining's snapshots and audit logs (../shared/corpora/k8s-audit/kubesplaining). The unused
 * permissions expected here were worked out by hand from each snapshot's RBAC and each log's events
 * (a denied request is not use); the blast-radius expectations follow the labels' privesc findings
 * and `deny` lists (workloads that must never be flagged as escalating).
 */
import { describe, expect, it } from "vitest";
import { type AnalysisResult, k8sPlugin, scanPaths } from "../../src/analyzer/index.js";
import { corpus, printScore, score } from "./corpora.js";

const K = "k8s-audit/kubesplaining";

function unused(r: AnalysisResult): string[] {
  return r.findings
    .filter((f) => f.category === "unused-excess")
    .map(
      (f) =>
        `${f.workload.id.replace(/^k8s:[A-Za-z]+:/, "")}|${f.permission.action}|${f.permission.resource}`,
    );
}

function escalating(r: AnalysisResult): string[] {
  return r.blastRadius
    .filter((b) => b.answers.some((a) => a.reachable))
    .map((b) => b.workload.replace(/^k8s:[A-Za-z]+:/, ""));
}

describe("kubesplaining snapshots and audit logs", () => {
  it("minimal-risky with the EKS audit log: reader holds list secrets and create pods it never used", async () => {
    const r = await scanPaths(
      [corpus(K, "snapshots/minimal-risky.json"), corpus(K, "audit/eks/minimal-risky-eks-audit.json")],
      {
        plugins: [k8sPlugin],
      },
    );
    const expected = [
      "default/reader-pod|k8s:core/secrets:list|*",
      "default/reader-pod|k8s:core/pods:create|*",
    ];
    const s = score(expected, unused(r));
    printScore("kubesplaining minimal-risky + EKS audit: unused permissions", s);
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
    // the create pods attempt was denied (403): counted apart, never as use
    expect(r.coverage.eventsDenied).toBeGreaterThanOrEqual(1);
    const b = score(["default/reader-pod", "default/risky"], escalating(r));
    printScore("kubesplaining minimal-risky: workloads whose credential escalates", b);
    expect(b.recall).toBe(1);
    expect(b.precision).toBe(1);
  });

  it("minimal-risky with the native audit log gives the same unused permissions", async () => {
    const r = await scanPaths(
      [corpus(K, "snapshots/minimal-risky.json"), corpus(K, "audit/native/minimal-risky-audit.log")],
      {
        plugins: [k8sPlugin],
      },
    );
    expect(unused(r).sort()).toEqual([
      "default/reader-pod|k8s:core/pods:create|*",
      "default/reader-pod|k8s:core/secrets:list|*",
    ]);
  });

  it("leastprivilege-demo: unused verbs per workload, and no escalation for the least-privilege ones", async () => {
    const r = await scanPaths(
      [
        corpus(K, "snapshots/leastprivilege-demo.json"),
        corpus(K, "audit/native/leastprivilege-demo-audit.log"),
      ],
      { plugins: [k8sPlugin] },
    );
    const prom = "monitoring/prometheus-0";
    const expected = [
      ...[
        "pods:create",
        "pods:delete",
        "services:get",
        "services:create",
        "services:delete",
        "endpoints:get",
        "endpoints:create",
        "endpoints:delete",
        "nodes:watch",
        "nodes:create",
        "nodes:delete",
      ].map((x) => `${prom}|k8s:core/${x}|*`),
      ...["pods:create", "pods:update", "pods:delete"].map(
        (x) => `prod-apps/deployer-7b9f|k8s:core/${x}|prod-apps/*`,
      ),
      ...["deployments:create", "deployments:update", "deployments:delete"].map(
        (x) => `prod-apps/deployer-7b9f|k8s:apps/${x}|prod-apps/*`,
      ),
      ...["watch", "create", "update", "patch", "delete", "deletecollection"].map(
        (v) => `analytics/etl-pipeline-abc|k8s:core/configmaps:${v}|analytics/*`,
      ),
      ...["pods:get", "pods:list", "pods/log:get"].map(
        (x) => `legacy/loadtester-runner|k8s:core/${x}|legacy/*`,
      ),
      "dashboard/dashboard-7c8d|k8s:*/*:*|*",
      "dashboard/dashboard-7c8d|k8s:nonresource/urls:*|*",
    ];
    const s = score(expected, unused(r));
    printScore("kubesplaining leastprivilege-demo + audit: unused permissions", s);
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
    // prometheus's `delete pods` was denied (403): still unused
    expect(unused(r)).toContain(`${prom}|k8s:core/pods:delete|*`);
    // the loadtester had no activity at all: reported, at low confidence
    const lt = r.findings.find((f) => f.workload.id.endsWith("loadtester-runner"));
    expect(lt?.confidence).toBeLessThan(0.5);
    // escalation: admin-sa (cluster-admin), prometheus and deployer (pod creation) — never the
    // read-only loadtester or the configmap-only etl-runner (the labels' deny list)
    const b = score(["dashboard/dashboard-7c8d", prom, "prod-apps/deployer-7b9f"], escalating(r));
    printScore("kubesplaining leastprivilege-demo: workloads whose credential escalates", b);
    expect(b.recall).toBe(1);
    expect(b.precision).toBe(1);
    expect(escalating(r)).not.toContain("legacy/loadtester-runner");
    expect(escalating(r)).not.toContain("analytics/etl-pipeline-abc");
    // the binding to a Role that does not exist is reported, not fatal
    expect(
      r.problems.some((p) => p.code === "WARN_K8S_MISSING_ROLE" && p.message.includes("cleanup-cron")),
    ).toBe(true);
  });

  it("csr-issuance: the CSR approver's binding has a CSR_APPROVE edge, the signer's does not", async () => {
    const r = await scanPaths([corpus(K, "snapshots/csr-issuance.json")], { plugins: [k8sPlugin] });
    const approvers = [...new Set(r.escalations.filter((e) => e.type === "CSR_APPROVE").map((e) => e.from))];
    printScore(
      "kubesplaining csr-issuance: CSR approval edges (KUBE-PRIVESC-011)",
      score(
        ["crb-csr-mint"],
        approvers.map((id) => id.replace(/^.*[:/]/, "")),
      ),
    );
    expect(approvers.map((id) => id.replace(/^.*[:/]/, ""))).toEqual(["crb-csr-mint"]);
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
  });
});
