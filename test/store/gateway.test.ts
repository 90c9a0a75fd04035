/**
 * The gateway's rows on every backend: tool pins (src/store/pins.ts: first sight pins or
 * quarantines, later sights move only what was seen, approval by the seen hash) and held calls
 * (src/store/holds.ts: one hold per binding, replaced, cleared, arguments read by request).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
/** Hashes and bindings are 64 hex digits (the tables check it). */
const hex = (c: string) => c.repeat(64);
const [H1, H2, H9, B1, B2] = [hex("1"), hex("2"), hex("9"), hex("b"), hex("c")];
const seen = (tool: string, hash: string) => ({
  tool,
  hash,
  definition: { name: tool, annotations: { readOnlyHint: hash === H1 } },
});

forEachBackend("gateway rows", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("tool pins", () => {
    it("pins on first sight, quarantines a changed definition until it is approved", async () => {
      const pins = h.store.pins;
      expect(await pins.known("fs")).toBe(false);
      const first = await pins.observe("fs", seen("read", H1), at(0), "pin");
      expect(first).toMatchObject({
        status: "pinned",
        approvedHash: H1,
        seenHash: H1,
        approvedBy: "first use",
      });
      expect(await pins.known("fs")).toBe(true);

      const changed = await pins.observe("fs", seen("read", H2), at(10), "pin");
      expect(changed).toMatchObject({ status: "quarantined", approvedHash: H1, seenHash: H2 });
      expect(changed.firstSeen.toISOString()).toBe(at(0).toISOString());
      expect(changed.seenAt.toISOString()).toBe(at(10).toISOString());
      expect(changed.seenDefinition).toEqual({ name: "read", annotations: { readOnlyHint: false } });

      expect(await pins.approve("fs", "read", { by: "ops", hash: H1, now: at(20) })).toBeUndefined();
      expect(await pins.approve("fs", "nope", { by: "ops", now: at(20) })).toBeUndefined();
      const approved = await pins.approve("fs", "read", { by: "ops", hash: H2, now: at(20) });
      expect(approved).toMatchObject({ status: "pinned", approvedHash: H2, approvedBy: "ops" });
      expect(approved?.approvedAt?.toISOString()).toBe(at(20).toISOString());
      expect((await pins.get("fs", "read"))?.status).toBe("pinned");
    });

    it("quarantines on first sight when asked, and lists by server then tool", async () => {
      const pins = h.store.pins;
      const q = await pins.observe("a-srv", seen("write", H9), at(0), "quarantine");
      expect(q).toMatchObject({ status: "quarantined", approvedHash: undefined, approvedBy: undefined });
      expect((await pins.list()).map((p) => `${p.server}:${p.tool}`)).toEqual(["a-srv:write", "fs:read"]);
      expect(await pins.annotations()).toEqual([
        { server: "a-srv", tool: "write", annotations: { readOnlyHint: false } },
        { server: "fs", tool: "read", annotations: { readOnlyHint: false } },
      ]);
      expect(await pins.get("a-srv", "missing")).toBeUndefined();
    });
  });

  describe("held calls", () => {
    it("keeps one hold per binding, replaced by a new request and cleared once used", async () => {
      const holds = h.store.holds;
      expect(await holds.find(B1)).toBeUndefined();
      await holds.record({ binding: B1, requestId: "r1", createdAt: at(0), arguments: '{"path":"/etc"}' });
      await holds.record({ binding: B2, requestId: "r2", createdAt: at(0), arguments: null });
      expect(await holds.find(B1)).toEqual({ binding: B1, requestId: "r1", createdAt: at(0) });
      expect(await holds.argumentsOf(["r1", "r2", "r9"])).toEqual(new Map([["r1", { path: "/etc" }]]));

      await holds.record({ binding: B1, requestId: "r3", createdAt: at(5), arguments: null });
      expect(await holds.find(B1)).toEqual({ binding: B1, requestId: "r3", createdAt: at(5) });
      expect(await holds.argumentsOf(["r1", "r3"])).toEqual(new Map());

      await holds.clear(B1);
      expect(await holds.find(B1)).toBeUndefined();
      expect((await holds.find(B2))?.requestId).toBe("r2");
      expect(await holds.argumentsOf([])).toEqual(new Map());
    });
  });
});
