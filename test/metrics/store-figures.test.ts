/**
 * The store's side of the metrics on both backends: after a known set of writs, uses, approvals,
 * findings and scans, every figure has exactly the value docs/metrics.md defines.
 */
import { createHash } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../store/backends.js";

const NOW = new Date("2026-11-20T12:00:00Z");
const DAY = 86_400_000;
const at = (msAgo: number) => new Date(NOW.getTime() - msAgo);

forEachBackend("metrics figures", (h) => {
  beforeAll(() => h.setup(), 120_000);
  afterAll(() => h.teardown());

  const writ = (
    id: string,
    o: { env?: string; playbook?: string; ttl: number; ago?: number; ticket?: string; approval?: string },
  ) =>
    h.store.writs.insert({
      id,
      agent: "release-bot",
      playbook: o.playbook ?? "deploy-service",
      environment: o.env ?? "prod",
      params: {},
      grants: [{ action: "k8s:apps/deployments:get", resource: "a/b" }],
      issuedAt: at(o.ago ?? 3_600_000),
      expiresAt: new Date(at(o.ago ?? 3_600_000).getTime() + o.ttl * 1000),
      ticket: o.ticket,
      approvalRequest: o.approval,
    });

  it("reads an empty store as zeros and absences", async () => {
    await sql`select 1`.execute(h.store.db);
    const f = await h.store.metrics.figures({ now: NOW, windowSeconds: 86_400, production: [] });
    expect(f).toMatchObject({
      usesByPlaybook: [],
      lifetimeIssued: { count: 0, p50: undefined, p90: undefined },
      prodWrits: 0,
      prodApprovals: 0,
      prodApprovalMeanSeconds: undefined,
      findings: [],
      latestScan: undefined,
    });
  });

  it("computes every figure from a known store", async () => {
    // three writs in the window (TTL 600, 1200, 1800 s), one 40 days old (outside it)
    await writ("w1", { ttl: 600, ticket: "CHG-1" });
    await writ("w2", { ttl: 1200, approval: "ar_1" });
    await writ("w3", { ttl: 1800, env: "dev" });
    await writ("w-old", { ttl: 60, ago: 40 * DAY, ticket: "CHG-0" });
    await writ("w4", { ttl: 900, env: "prod", playbook: "rollback-service" });
    // uses (all issued at −60 min): w1 at −58 and −57 min (60 s); w2 at −55, −50 and −52 min (300 s:
    // spends from servers with different clocks keep the earliest and the latest); w4 once (0 s)
    const spend = (id: string, msAgo: number) => h.store.writs.spendUse(id, at(msAgo));
    await spend("w1", 58 * 60_000);
    await spend("w1", 57 * 60_000);
    await spend("w2", 55 * 60_000);
    await spend("w2", 50 * 60_000);
    await spend("w2", 52 * 60_000);
    await spend("w4", 50 * 60_000);
    // the spend records when the writ was first and last used
    const row = await h.store.db
      .selectFrom("writs")
      .select(["first_used_at", "last_used_at"])
      .where("id", "=", "w1")
      .executeTakeFirstOrThrow();
    expect(row.first_used_at?.toISOString()).toBe(at(58 * 60_000).toISOString());
    expect(row.last_used_at?.toISOString()).toBe(at(57 * 60_000).toISOString());

    // approvals in prod: approved after 120 s and 360 s; one denied; one in dev; one too old
    const approval = (id: string, env: string, status: string, waited: number, ago = 3_600_000) =>
      h.store.db
        .insertInto("approval_requests")
        .values({
          id,
          environment: env,
          agent: "release-bot",
          playbook: "deploy-service",
          params: "{}",
          ticket: null,
          binding: createHash("sha256").update(id).digest("hex"),
          requester: "release-bot",
          status,
          created_at: at(ago),
          expires_at: at(ago - 3_600_000),
          decided_at: at(ago - waited * 1000),
        })
        .execute();
    await approval("ar_1", "prod", "consumed", 120);
    await approval("ar_2", "prod", "approved", 360);
    await approval("ar_3", "prod", "denied", 10);
    await approval("ar_4", "dev", "approved", 1000);
    await approval("ar_5", "prod", "approved", 5000, 50 * DAY);

    // findings: two open category-3, one accepted category-1
    const findings = h.store.findings;
    const finding = (id: string, category: string) => ({
      id,
      category,
      severity: "high",
      title: id,
      workload: { id: `k8s:Deployment:shop/${id}` },
      permission: { action: "k8s:core/secrets:get", resource: "*" },
    });
    await findings.recordScan(
      [
        finding("f1", "inherited-overreach"),
        finding("f2", "inherited-overreach"),
        finding("f3", "unused-excess"),
      ],
      { at: at(DAY), workloads: [] },
    );
    await findings.setStatus("f3", "accepted", { actor: "alice", at: at(DAY) });
    // two scans: the latest one counts
    await h.store.metrics.recordScanPosture({
      at: at(2 * DAY),
      clusterRoleBindings: 9,
      workflows: 4,
      workflowsExplicit: 1,
      findings: 3,
    });
    await h.store.metrics.recordScanPosture({
      at: at(DAY),
      clusterRoleBindings: 7,
      workflows: 4,
      workflowsExplicit: 3,
      findings: 3,
    });

    const f = await h.store.metrics.figures({
      now: NOW,
      windowSeconds: 30 * 86_400,
      production: ["prod"],
    });
    expect(
      [...f.usesByPlaybook].sort(
        (a, b) => a.playbook.localeCompare(b.playbook) || a.environment.localeCompare(b.environment),
      ),
    ).toEqual([
      { playbook: "deploy-service", environment: "prod", uses: 5 },
      { playbook: "rollback-service", environment: "prod", uses: 1 },
    ]);
    // issued TTLs 600, 900, 1200, 1800: p50 = 1050, p90 = 1200 + 0.7 × 600 = 1620
    expect(f.lifetimeIssued).toEqual({ count: 4, p50: 1050, p90: 1620 });
    // used spans 0 (w4), 60 (w1), 300 (w2): p50 = 60, p90 = 60 + 0.8 × 240 = 252
    expect(f.lifetimeUsed).toEqual({ count: 3, p50: 60, p90: 252 });
    // prod writs in the window: w1 (ticket), w2 (approval), w4 (neither)
    expect(f.prodWrits).toBe(3);
    expect(f.prodWritsTicketOrApprover).toBe(2);
    expect(f.prodApprovals).toBe(2);
    expect(f.prodApprovalMeanSeconds).toBe(240);
    expect([...f.findings].sort((a, b) => a.status.localeCompare(b.status))).toEqual([
      { category: "unused-excess", status: "accepted", count: 1 },
      { category: "inherited-overreach", status: "open", count: 2 },
    ]);
    expect(f.latestScan).toMatchObject({ clusterRoleBindings: 7, workflows: 4, workflowsExplicit: 3 });
  });
});
