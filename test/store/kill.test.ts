/**
 * The kill switches' rows on every backend (src/store/kill.ts): engaging records a kill once per
 * scope and revokes the writs in its reach with their delegated descendants, in one transaction;
 * lifting ends every engaged kill of the scope; `blocking` finds the oldest kill that stops an agent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KillRow, NewWrit } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

let n = 0;
function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  n += 1;
  return {
    id: `w-kill-${n}`,
    agent: "bot",
    playbook: "deploy",
    environment: "prod",
    params: {},
    grants: [{ action: "aws:s3:GetObject", resource: "arn:aws:s3:::b/*" }],
    issuedAt: at(0),
    expiresAt: at(600),
    ...overrides,
  };
}

const kill = (id: string, scope: string, target: string, engagedAt: Date): KillRow => ({
  id,
  scope,
  target,
  reason: "incident",
  engagedAt,
  engagedBy: "alice",
});

const reasons = { revoked: (id: string) => `kill ${id}`, descendants: (id: string) => `kill ${id} (tree)` };

forEachBackend("kill switch rows", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("engage", () => {
    it("records the kill and revokes the agent's live writs and their descendants, once", async () => {
      const mine = await h.store.writs.insert(writ({ agent: "k1" }));
      const child = await h.store.writs.insert(writ({ agent: "helper", parent: mine.id }));
      const other = await h.store.writs.insert(writ({ agent: "k1-other" }));
      const expired = await h.store.writs.insert(writ({ agent: "k1", expiresAt: at(5) }));
      const first = await h.store.kills.engage(
        kill("kill_a", "agent", "k1", at(10)),
        { agent: "k1" },
        reasons,
      );
      expect(first.already).toBe(false);
      expect(first.kill).toEqual(kill("kill_a", "agent", "k1", at(10)));
      expect(first.revoked).toEqual(
        [
          { id: mine.id, agent: "k1", playbook: "deploy", environment: "prod", expiresAt: at(600) },
          { id: child.id, agent: "helper", playbook: "deploy", environment: "prod", expiresAt: at(600) },
        ].sort((a, b) => a.id.localeCompare(b.id)),
      );
      expect((await h.store.writs.get(mine.id))?.status).toBe("revoked");
      expect((await h.store.writs.get(mine.id))?.revokedReason).toBe("kill kill_a");
      expect((await h.store.writs.get(child.id))?.revokedReason).toBe(
        "kill kill_a (tree) (an ancestor writ was revoked)",
      );
      expect((await h.store.writs.get(other.id))?.status).toBe("active");
      expect((await h.store.writs.get(expired.id))?.status).toBe("active");

      // the same scope again: the kill engaged first stands, nothing is left to revoke
      const again = await h.store.kills.engage(
        kill("kill_b", "agent", "k1", at(20)),
        { agent: "k1" },
        reasons,
      );
      expect(again).toEqual({ kill: kill("kill_a", "agent", "k1", at(10)), already: true, revoked: [] });
      expect((await h.store.kills.engaged()).filter((k) => k.target === "k1").map((k) => k.id)).toEqual([
        "kill_a",
      ]);
    });

    it("reaches an environment, or a runner class's agents (none: nothing)", async () => {
      const prod = await h.store.writs.insert(writ({ agent: "k2", environment: "k2-prod" }));
      const dev = await h.store.writs.insert(writ({ agent: "k2", environment: "k2-dev" }));
      const env = await h.store.kills.engage(
        kill("kill_env", "environment", "k2-prod", at(10)),
        { environment: "k2-prod" },
        reasons,
      );
      expect(env.revoked.map((w) => w.id)).toEqual([prod.id]);
      expect((await h.store.writs.get(dev.id))?.status).toBe("active");

      const a = await h.store.writs.insert(writ({ agent: "k3-a" }));
      const b = await h.store.writs.insert(writ({ agent: "k3-b" }));
      const none = await h.store.kills.engage(
        kill("kill_c0", "class", "empty", at(10)),
        { agents: [] },
        reasons,
      );
      expect(none.revoked).toEqual([]);
      expect((await h.store.writs.get(a.id))?.status).toBe("active");
      const cls = await h.store.kills.engage(
        kill("kill_c1", "class", "k3", at(10)),
        { agents: ["k3-a", "k3-b"] },
        reasons,
      );
      expect(cls.revoked.map((w) => w.id)).toEqual([a.id, b.id].sort());
    });

    it("does neither when the revocation fails: the kill is not recorded", async () => {
      const failing = {
        revoked: () => {
          throw new Error("boom");
        },
        descendants: reasons.descendants,
      };
      await expect(
        h.store.kills.engage(kill("kill_f", "agent", "k4", at(10)), { agent: "k4" }, failing),
      ).rejects.toThrow();
      expect((await h.store.kills.engaged()).map((k) => k.id)).not.toContain("kill_f");
    });
  });

  describe("blocking and lift", () => {
    it("finds the oldest engaged kill stopping an agent, by agent, class, environment or all", async () => {
      await h.store.kills.engage(kill("kill_b1", "class", "b-class", at(30)), { agents: [] }, reasons);
      await h.store.kills.engage(kill("kill_b2", "agent", "b-bot", at(31)), { agent: "b-bot" }, reasons);
      expect((await h.store.kills.blocking("b-bot", "b-class", "b-env"))?.id).toBe("kill_b1");
      expect((await h.store.kills.blocking("b-bot", "other", "b-env"))?.id).toBe("kill_b2");
      expect(await h.store.kills.blocking("b-other", "other", "b-env")).toBeUndefined();
      await h.store.kills.engage(
        kill("kill_b3", "environment", "b-env", at(32)),
        { environment: "b-env" },
        reasons,
      );
      expect((await h.store.kills.blocking("b-other", "other", "b-env"))?.id).toBe("kill_b3");
    });

    it("lifts every engaged kill of exactly the scope, and none of another", async () => {
      expect(await h.store.kills.lift("agent", "nobody", at(40), "bob")).toEqual([]);
      const lifted = await h.store.kills.lift("class", "b-class", at(40), "bob");
      expect(lifted.map((k) => k.id)).toEqual(["kill_b1"]);
      expect((await h.store.kills.blocking("b-bot", "b-class", "elsewhere"))?.id).toBe("kill_b2");
      expect(await h.store.kills.lift("class", "b-class", at(41), "bob")).toEqual([]);
      const engaged = await h.store.kills.engaged();
      expect(engaged.map((k) => k.id)).not.toContain("kill_b1");
      const times = engaged.map((k) => k.engagedAt.getTime());
      expect(times).toEqual([...times].sort((x, y) => x - y));
    });
  });
});
