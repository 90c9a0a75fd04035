/**
 * The agents inventory over a real store on both backends: live writs and downstream credentials,
 * last activity and last use from the audit log, findings tied to agents, tool pins, and the flags
 * (dormant, credentials that outlive their use, agents writ.yaml does not declare).
 */
import { expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import { pinStore } from "../../src/gateway/index.js";
import { buildInventory, readOperationalState } from "../../src/operate/index.js";
import type { Store } from "../../src/store/index.js";
import { forEachBackend } from "../store/backends.js";
import { loadFixture } from "./fixture.js";

const T = new Date("2026-12-01T12:00:00Z");
const ago = (ms: number) => new Date(T.getTime() - ms);
const later = (ms: number) => new Date(T.getTime() + ms);
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const grant = [{ action: "k8s:apps/deployments:patch", resource: "shop/web" }];

/** Seeds the store as a few days of `writ serve` would leave it. */
export async function seed(store: Store): Promise<void> {
  const writ = (id: string, agent: string, issuedAt: Date, expiresAt: Date, maxUses?: number) =>
    store.writs.insert({
      id,
      agent,
      playbook: "deploy",
      environment: "dev",
      params: {},
      grants: grant,
      issuedAt,
      expiresAt,
      maxUses,
    });
  await writ("w-good", "good", ago(10 * MIN), later(5 * MIN));
  await writ("w-idle", "bad", ago(3 * HOUR), later(5 * HOUR));
  await writ("w-old", "good", ago(2 * DAY), ago(DAY));
  await writ("w-rev", "bad", ago(20 * MIN), later(HOUR));
  await store.writs.revoke("w-rev", "test", ago(10 * MIN));
  await writ("w-spent", "good", ago(5 * MIN), later(HOUR), 1);
  await store.writs.spendUse("w-spent", ago(4 * MIN));
  const ds = async (id: string, w: string, agent: string, expiresAt: Date) => {
    await store.downstream.intend({
      id,
      system: "aws",
      environment: "dev",
      writ: w,
      agent,
      kind: "role-session",
      locator: { session: id },
      expiresAt,
    });
    await store.downstream.created(id);
  };
  await store.writs.spendUse("w-good", ago(5 * MIN));
  await ds("d-rev", "w-rev", "bad", later(HOUR));
  await ds("d-good", "w-good", "good", later(5 * MIN));
  let now = T;
  const log = openAuditLog({ repo: store.audit, clock: () => now, checkpointEvery: 0 });
  const at = async (when: Date, type: string, data: Record<string, unknown>) => {
    now = when;
    await log.append(type, data);
  };
  await at(ago(40 * DAY), "broker.writ_issued", { agent: "bad", writ: "w-ancient" });
  await at(ago(9 * MIN), "gateway.call", { agent: "good", writ: "w-good", tool: "files:read_text_file" });
  await at(ago(5 * MIN), "broker.writ_used", { writ: "w-good", by: "gateway" });
  await at(ago(DAY), "broker.denied", { agent: "ghost", reason: "unknown_client" });
  // an operator's act about an agent is not the agent's activity
  await at(ago(MIN), "kill.engaged", { agent: "quiet", by: "op" });
  await store.findings.recordScan(
    [
      {
        id: "wf-bad",
        category: "unjustified-use",
        severity: "high",
        title: "bad read secrets",
        workload: { id: "k8s:Deployment:shop/bot", agent: "bad" } as { id: string },
        permission: { action: "k8s:core/secrets:get", resource: "shop/*" },
      },
      {
        id: "wf-none",
        category: "unused-excess",
        severity: "low",
        title: "nobody's",
        workload: { id: "k8s:Deployment:ops/x" },
        permission: { action: "k8s:core/pods:list", resource: "ops/*" },
      },
    ],
    { at: ago(HOUR), workloads: ["k8s:Deployment:shop/bot", "k8s:Deployment:ops/x"] },
  );
  await pinStore(store).observe(
    "files",
    { name: "read_text_file", inputSchema: { type: "object" }, annotations: { readOnlyHint: true } },
    ago(DAY),
  );
}

forEachBackend("agents inventory", (h) => {
  it("lists declared and store-only agents with credentials, activity, findings and flags", async () => {
    await h.setup();
    try {
      await seed(h.store);
      const { config, locate } = await loadFixture();
      const state = await readOperationalState(h.store, { now: T });
      expect(state.liveWrits.map((w) => w.id).sort()).toEqual(["w-good", "w-idle"]);
      expect(state.writLastUse.get("w-good")).toEqual(ago(5 * MIN));
      expect(state.lastActivity.get("quiet")).toBeUndefined();
      expect(state.toolPins).toEqual([
        { server: "files", tool: "read_text_file", annotations: { readOnlyHint: true } },
      ]);
      const inv = buildInventory(config, state, { now: T, locate });
      expect(inv.agents.map((a) => [a.id, a.declared])).toEqual([
        ["bad", true],
        ["ghost", false],
        ["good", true],
        ["quiet", true],
        ["twin", true],
      ]);
      const by = (id: string) => inv.agents.find((a) => a.id === id)!;
      const good = by("good");
      expect(good.owner).toBe("alice@acme.example");
      expect(good.ceiling).toMatchObject({ runnerClass: "tight", maxTtl: "30m" });
      expect(good.baseline[0]).toMatchObject({ action: "k8s:apps/deployments:get", resource: "shop/web" });
      expect(good.lastActivity).toEqual({ at: ago(9 * MIN), type: "gateway.call" });
      expect(good.credentials.filter((c) => c.kind !== "standing").map((c) => c.id)).toEqual([
        "w-good",
        "d-good",
      ]);
      expect(good.flags).toEqual([]);
      const bad = by("bad");
      expect(bad.flags.map((f) => [f.code, f.credential])).toEqual([
        ["dormant", undefined],
        ["credential-outlives-use", "w-idle"],
        ["credential-outlives-use", "d-rev"],
      ]);
      expect(bad.flags[0]?.message).toMatch(/no activity for 40 days/);
      expect(bad.flags[2]?.message).toMatch(/its writ was revoked/);
      expect(bad.openFindings.map((f) => f.id)).toEqual(["wf-bad"]);
      expect(bad.credentials.some((c) => c.kind === "standing" && c.type === "upstream-secret")).toBe(true);
      expect(JSON.stringify(bad.credentials)).not.toContain("Bearer");
      expect(by("quiet").flags.map((f) => f.message)).toEqual(["no activity in the audit log"]);
      expect(by("ghost").flags.map((f) => f.code)).toEqual(["undeclared"]);
      expect(inv.unattributedFindings).toBe(1);
      // a longer idle threshold and dormancy window clear those flags
      const lenient = buildInventory(config, state, { now: T, dormantDays: 60, idleSeconds: 4 * 3600 });
      expect(lenient.agents.find((a) => a.id === "bad")!.flags.map((f) => f.credential)).toEqual(["d-rev"]);
    } finally {
      await h.teardown();
    }
  }, 120_000); // a fresh PGlite takes seconds to start on a loaded machine

  it("reads only the newest records when bounded, and says how far back it read", async () => {
    await h.setup();
    try {
      await seed(h.store);
      const { config, locate } = await loadFixture();
      // the log, oldest first: bad (40 days ago), good (9 min), a use, ghost (1 day), an operator's kill
      const whole = await readOperationalState(h.store, { now: T, activity: { agents: ["good"] } });
      expect(whole.activityScan).toEqual({ complete: true, records: 5, since: ago(40 * DAY) });
      expect(whole.lastActivity.get("bad")?.at).toEqual(ago(40 * DAY));

      const two = await readOperationalState(h.store, { now: T, activity: { maxRecords: 2 } });
      expect(two.activityScan).toEqual({ complete: false, records: 2, since: ago(DAY) });
      expect([...two.lastActivity.keys()]).toEqual(["ghost"]);
      expect(two.storeAgents.has("ghost")).toBe(true);
      const inv = buildInventory(config, two, { now: T, locate });
      const by = (id: string) => inv.agents.find((a) => a.id === id)!;
      // not in the records read: older than the oldest of them, and not called dormant on that alone
      expect(by("good").lastActivity).toBeUndefined();
      expect(by("good").activityOlderThan).toEqual(ago(DAY));
      expect(by("good").flags).toEqual([]);
      expect(by("quiet").flags.map((f) => f.code)).toEqual([]);
      // …unless the records read reach back past the dormancy limit
      const strict = buildInventory(config, two, { now: T, dormantDays: 1 });
      expect(strict.agents.find((a) => a.id === "quiet")!.flags.map((f) => f.message)).toEqual([
        `no activity since ${ago(DAY).toISOString()} (the newest 2 audit records were read)`,
      ]);

      const four = await readOperationalState(h.store, { now: T, activity: { maxRecords: 4 } });
      expect(four.activityScan.complete).toBe(false);
      expect(four.lastActivity.get("good")).toEqual({ at: ago(9 * MIN), type: "gateway.call" });
      expect(four.lastActivity.has("bad")).toBe(false);
    } finally {
      await h.teardown();
    }
  }, 120_000);
});
