/**
 * The findings queue on both backends: a rescan that reclassifies a finding keeps its id and the
 * history shows it; a finding no longer found for a scanned workload is fixed; a person's status
 * change is recorded with who and why.
 */
import { describe, expect, it } from "vitest";
import { forEachBackend } from "../store/backends.js";

const base = {
  id: "wf-0123456789abcdef",
  severity: "high",
  title: "Deployment shop/web holds k8s:core/secrets:get",
  workload: { id: "k8s:Deployment:shop/web" },
  permission: { action: "k8s:core/secrets:get", resource: "shop/*" },
};

forEachBackend("analyzer findings queue", (h) => {
  describe("recordScan and setStatus", () => {
    it("opens, reclassifies, fixes and reopens, with the history", async () => {
      await h.setup();
      try {
        const repo = h.store.findings;
        const t = (m: number) => new Date(Date.UTC(2026, 10, 1, 10, m));
        const w = [base.workload.id];
        expect(
          await repo.recordScan([{ ...base, category: "unused-excess" }], { at: t(0), workloads: w }),
        ).toEqual({
          opened: 1,
          reclassified: 0,
          reopened: 0,
          fixed: 0,
          unchanged: 0,
        });
        // the next window shows the agent using it, from outside its declared work
        const second = await repo.recordScan([{ ...base, category: "unjustified-use" }], {
          at: t(1),
          workloads: w,
        });
        expect(second.reclassified).toBe(1);
        await repo.setStatus(base.id, "accepted", { actor: "alice", note: "guardrail added", at: t(2) });
        const third = await repo.recordScan([], { at: t(3), workloads: w });
        expect(third.fixed).toBe(1);
        const fourth = await repo.recordScan([{ ...base, category: "unjustified-use" }], {
          at: t(4),
          workloads: w,
        });
        expect(fourth.reopened).toBe(1);
        const { finding, history } = await repo.get(base.id);
        expect(finding.status).toBe("open");
        expect(finding.category).toBe("unjustified-use");
        expect(
          history.map((e) => [e.kind, e.fromCategory, e.toCategory, e.fromStatus, e.toStatus, e.actor]),
        ).toEqual([
          ["opened", null, "unused-excess", null, "open", "writ scan"],
          ["reclassified", "unused-excess", "unjustified-use", null, null, "writ scan"],
          ["status", null, null, "open", "accepted", "alice"],
          ["fixed", null, null, "accepted", "fixed", "writ scan"],
          ["reopened", null, null, "fixed", "open", "writ scan"],
        ]);
        expect((await repo.list({ status: "open" })).map((f) => f.id)).toEqual([base.id]);
        // a scan of other workloads leaves it alone
        expect((await repo.recordScan([], { at: t(5), workloads: ["k8s:Deployment:other/x"] })).fixed).toBe(
          0,
        );
        await expect(repo.setStatus("wf-missing", "fixed", { actor: "a", at: t(6) })).rejects.toMatchObject({
          code: "ERR_FINDING_NOT_FOUND",
        });
        await expect(
          repo.setStatus(base.id, "bogus" as "fixed", { actor: "a", at: t(6) }),
        ).rejects.toMatchObject({
          code: "ERR_FINDING_STATUS",
        });
      } finally {
        await h.teardown();
      }
    });
  });
});
