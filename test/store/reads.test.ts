/**
 * The store's reads for operators on every backend: the console's audit search
 * (src/store/audit-search.ts) and figures over time (history.ts), live writs and their credentials
 * (live-writs.ts), the findings page (findings.ts `page`), and the shadow report's groups
 * (shadow.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import type { FindingInput, NewWrit } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const DAY = 86_400_000;
/** Noon of a UTC day, days since the epoch. */
const DAY0 = Math.floor(new Date("2030-01-10T00:00:00Z").getTime() / DAY);
const noon = (day: number, minutes = 0) => new Date((DAY0 + day) * DAY + 12 * 3_600_000 + minutes * 60_000);

let n = 0;
function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  n += 1;
  return {
    id: `w-read-${String(n).padStart(3, "0")}`,
    agent: "bot",
    playbook: "deploy",
    environment: "prod",
    params: {},
    grants: [{ action: "aws:s3:GetObject", resource: "arn:aws:s3:::b/*" }],
    issuedAt: noon(0),
    expiresAt: noon(0, 60),
    ...overrides,
  };
}

const finding = (id: string, workload: string, category = "unused-excess"): FindingInput =>
  ({
    id,
    category,
    severity: "high",
    title: `finding ${id}`,
    workload: { id: workload },
    permission: { action: "s3:GetObject", resource: "*" },
  }) as FindingInput;

forEachBackend("operator reads", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("audit search", () => {
    it("finds records in a window by filter, newest first, and counts refusals by day and reason", async () => {
      const log = openAuditLog({ repo: h.store.audit });
      const first = (await h.store.audit.head()).seq + 1;
      await log.append("pdp.decision", { agent: "a1", decision: { allowed: false, code: "no_rule" } });
      await log.append("pdp.decision", { agent: "a1", decision: { allowed: true, code: "allowed" } });
      await log.append("broker.denied", { agent: "a2", reason: "killed", writ: "w-x" });
      await log.append("gateway.call", {
        agent: "a2",
        context: { writId: "w-x" },
        decision: { allowed: false },
      });
      await log.append("broker.writ_issued", { agent: "a3", writId: "w-y" });
      await log.settled();
      const all = { top: first + 100, floor: first };
      const seqs = async (f: Parameters<typeof h.store.auditSearch.find>[0], w = all, limit = 50) =>
        (await h.store.auditSearch.find(f, w, limit)).map((r) => r.seq - first);
      expect(await seqs({})).toEqual([4, 3, 2, 1, 0]);
      expect(await seqs({ denials: true })).toEqual([3, 2, 0]);
      expect(await seqs({ agent: "a1" })).toEqual([1, 0]);
      expect(await seqs({ agents: ["a1", "a3"] })).toEqual([4, 1, 0]);
      expect(await seqs({ agents: [] })).toEqual([]);
      expect(await seqs({ writ: "w-x" })).toEqual([3, 2]);
      expect(await seqs({ writ: "w-y" })).toEqual([4]);
      expect(await seqs({ reason: "killed" })).toEqual([2]);
      expect(await seqs({ type: "pdp.decision", reason: "allowed" })).toEqual([1]);
      expect(await seqs({ from: new Date(Date.now() + 3_600_000) })).toEqual([]);
      expect(await seqs({}, { top: first + 3, floor: first + 1 })).toEqual([2, 1]);
      expect(await seqs({}, all, 2)).toEqual([4, 3]);
      const [hit] = await h.store.auditSearch.find({ reason: "killed" }, all, 1);
      expect(hit).toMatchObject({ type: "broker.denied", data: { agent: "a2", reason: "killed" } });
      expect(hit!.at).toBeInstanceOf(Date);

      const today = Math.floor(Date.now() / DAY);
      const counted = await h.store.auditSearch.denialsByDay(first - 1, new Date((today - 1) * DAY));
      const byCode = Object.fromEntries(counted.map((c) => [c.code ?? "none", c.count]));
      expect(byCode).toEqual({ no_rule: 1, killed: 1, none: 1 });
      expect(new Set(counted.map((c) => c.day)).size).toBeLessThanOrEqual(2);
      expect(await h.store.auditSearch.denialsByDay(first + 3, new Date(0))).toEqual([]);
    });
  });

  describe("history", () => {
    it("counts writs and approval requests per UTC day with their median lifetime and mean wait", async () => {
      await h.store.writs.insert(writ({ issuedAt: noon(0), expiresAt: noon(0, 10) }));
      await h.store.writs.insert(writ({ issuedAt: noon(0, 1), expiresAt: noon(0, 31) }));
      await h.store.writs.insert(writ({ issuedAt: noon(0, 2), expiresAt: noon(0, 62) }));
      await h.store.writs.insert(writ({ issuedAt: noon(1), expiresAt: noon(1, 5) }));
      await h.store.writs.insert(writ({ issuedAt: noon(-5), expiresAt: noon(-5, 5) }));
      const writs = (await h.store.history.writsByDay(noon(-1))).sort((a, b) => a.day - b.day);
      expect(writs).toEqual([
        { day: DAY0, count: 3, value: 30 },
        { day: DAY0 + 1, count: 1, value: 5 },
      ]);

      const request = (id: string, created: Date, decided: Date | null) => ({
        id,
        binding: id.slice(-1).repeat(64),
        agent: "bot",
        playbook: "deploy",
        params: JSON.stringify({}),
        environment: "prod",
        ticket: null,
        requester: "bot",
        status: decided === null ? "pending" : "approved",
        created_at: created,
        expires_at: new Date(created.getTime() + DAY),
        decided_at: decided,
      });
      for (const r of [
        request("ap-1", noon(0), noon(0, 10)),
        request("ap-2", noon(0, 5), noon(0, 25)),
        request("ap-3", noon(0, 6), null),
      ]) {
        const stored = await h.store.approvals.insert(r);
        expect(stored).toHaveProperty("request");
      }
      expect(await h.store.history.approvalsByDay(noon(-1))).toEqual([{ day: DAY0, count: 3, value: 15 }]);
      expect(await h.store.history.approvalsByDay(noon(1))).toEqual([]);
    });

    it("counts findings by category and status", async () => {
      await h.store.findings.recordScan([finding("f-1", "wl-a"), finding("f-2", "wl-a", "unjustified-use")], {
        at: noon(0),
        workloads: ["wl-a"],
      });
      await h.store.findings.setStatus("f-2", "accepted", { actor: "alice", at: noon(0, 1) });
      const counts = await h.store.history.findingsByStatus();
      expect(counts.sort((a, b) => a.category.localeCompare(b.category))).toEqual([
        { category: "unjustified-use", status: "accepted", count: 1 },
        { category: "unused-excess", status: "open", count: 1 },
      ]);
    });
  });

  describe("findings page", () => {
    it("filters and pages by workload then id", async () => {
      await h.store.findings.recordScan(
        [finding("g-1", "wl-b"), finding("g-2", "wl-b", "unjustified-use"), finding("g-3", "wl-c")],
        { at: noon(0), workloads: ["wl-b", "wl-c"] },
      );
      const ids = async (...args: Parameters<typeof h.store.findings.page>) =>
        (await h.store.findings.page(...args)).map((f) => f.id);
      expect(await ids({ workload: "wl-b" }, undefined, 10)).toEqual(["g-1", "g-2"]);
      expect(await ids({ category: "unjustified-use", workload: "wl-b" }, undefined, 10)).toEqual(["g-2"]);
      expect(await ids({ status: "open", severity: "high" }, ["wl-b", "g-1"], 2)).toEqual(["g-2", "g-3"]);
      expect(await ids({ severity: "low" }, undefined, 10)).toEqual([]);
      const [line] = await h.store.findings.page({ workload: "wl-c" }, undefined, 1);
      expect(line).toEqual({
        id: "g-3",
        workload: "wl-c",
        action: "s3:GetObject",
        resource: "*",
        category: "unused-excess",
        severity: "high",
        title: "finding g-3",
        status: "open",
        lastSeen: noon(0),
      });
    });
  });

  describe("live writs", () => {
    it("pages live writs newest first, with their credentials, and counts a kill's reach", async () => {
      const now = noon(100);
      const mk = (o: Partial<NewWrit>) =>
        h.store.writs.insert(writ({ issuedAt: noon(99), expiresAt: noon(101), environment: "lw", ...o }));
      const a = await mk({ agent: "lw-a", issuedAt: noon(99, 1) });
      const b = await mk({ agent: "lw-b", issuedAt: noon(99, 2), maxUses: 3, ticket: "CHG-1" });
      const c = await mk({ agent: "lw-a", issuedAt: noon(99, 2) });
      await mk({ agent: "lw-a", expiresAt: noon(99, 30) }); // expired
      await mk({ agent: "lw-a", issuedAt: noon(99, 3) }).then((w) =>
        h.store.writs.revoke(w.id, "test", noon(99, 4)),
      );
      const page = await h.store.liveWrits.page({ environment: "lw" }, undefined, now, 10);
      // b and c were issued in the same millisecond: the later id first
      const expected = [...[b.id, c.id].sort().reverse(), a.id];
      expect(page.map((w) => w.id)).toEqual(expected);
      const bRow = page.find((w) => w.id === b.id)!;
      expect(bRow).toMatchObject({ agent: "lw-b", maxUses: 3, uses: 0, ticket: "CHG-1", sponsor: null });
      expect(bRow.issuedAt).toEqual(noon(99, 2));
      expect(bRow.expiresAt).toEqual(noon(101));
      expect(
        (await h.store.liveWrits.page({ environment: "lw", agent: "lw-b" }, undefined, now, 10)).length,
      ).toBe(1);
      const rest = await h.store.liveWrits.page(
        { environment: "lw" },
        { at: bRow.issuedAt, id: bRow.id },
        now,
        10,
      );
      expect(rest.map((w) => w.id)).toEqual(expected.slice(expected.indexOf(b.id) + 1));

      await h.store.downstream.intend({
        id: "ds-1",
        system: "aws",
        environment: "lw",
        writ: a.id,
        agent: "lw-a",
        kind: "sts-session",
        locator: {},
        expiresAt: noon(101),
      });
      await h.store.downstream.intend({
        id: "ds-2",
        system: "github",
        environment: "lw",
        writ: a.id,
        agent: "lw-a",
        kind: "installation-token",
        locator: {},
        expiresAt: noon(101),
      });
      await h.store.downstream.removed("ds-2");
      expect(await h.store.liveWrits.credentials([])).toEqual([]);
      expect(await h.store.liveWrits.credentials([a.id, b.id])).toEqual([
        { writ: a.id, system: "aws", kind: "sts-session", state: "intended", expiresAt: noon(101) },
      ]);

      const reach = await h.store.liveWrits.inReach({ agent: "lw-a" }, now, 1);
      expect(reach.count).toBe(2);
      expect(reach.rows).toHaveLength(1);
      expect(
        (await h.store.liveWrits.inReach({ agents: ["lw-a", "lw-b"], environment: "lw" }, now, 10)).count,
      ).toBe(3);
      expect(await h.store.liveWrits.inReach({ agents: [] }, now, 10)).toEqual({ rows: [], count: 0 });
    });
  });

  describe("shadow", () => {
    it("groups would-have-denied entries by rule, kind, reason and agent over the newest records", async () => {
      const log = openAuditLog({ repo: h.store.audit });
      const since = new Date(Date.now() - 1000);
      const shadow = (rule: string, reason = "deny") => [
        { rule, kind: "rule", reason, message: `m ${rule}` },
      ];
      await log.append("pdp.decision", { agent: "s1", shadow: shadow("r1") });
      await log.append("pdp.decision", { agent: "s1", shadow: [...shadow("r1"), ...shadow("r2")] });
      await log.append("gateway.call", { agent: "s2", shadow: shadow("r1") });
      await log.append("pdp.decision", { agent: "s1", shadow: "not a list" });
      const last = await log.append("broker.denied", { agent: "s1", shadow: shadow("r1") });
      await log.settled();
      const { complete, groups } = await h.store.shadow.groups(since, 1000);
      expect(complete).toBe(true);
      expect(groups.map((g) => [g.rule, g.agent, g.count])).toEqual([
        ["r1", "s1", 3],
        ["r1", "s2", 1],
        ["r2", "s1", 1],
      ]);
      expect(groups[0]).toMatchObject({ kind: "rule", reason: "deny", lastSeq: last.seq });
      expect(groups[0]!.firstAt.getTime()).toBeLessThanOrEqual(groups[0]!.lastAt.getTime());
      const narrow = await h.store.shadow.groups(since, 2);
      expect(narrow.complete).toBe(false);
      expect(narrow.groups.map((g) => [g.rule, g.agent, g.count])).toEqual([["r1", "s1", 1]]);
      const records = await h.store.shadow.records([last.seq, 999_999]);
      expect([...records.keys()]).toEqual([last.seq]);
      expect(records.get(last.seq)).toMatchObject({ type: "broker.denied", data: { agent: "s1" } });
      expect((await h.store.shadow.records([])).size).toBe(0);
    });
  });
});
