/**
 * The gateway's taint rows on every backend (src/store/taints.ts): found by handle and context
 * while they live; marking twice keeps the later expiry, whichever process marks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

forEachBackend("taint rows", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("find and mark", () => {
    it("finds a live taint of the handle under the contexts asked, any when none are", async () => {
      const taints = h.store.taints;
      expect(await taints.find("writ:t1", undefined, at(0))).toBeUndefined();
      await taints.mark("writ:t1", { context: "c1", taintedBy: "web.fetch", until: at(60) });
      expect(await taints.find("writ:t1", undefined, at(0))).toEqual({
        context: "c1",
        taintedBy: "web.fetch",
        until: at(60),
      });
      expect(await taints.find("writ:t1", ["c1", "*"], at(0))).toMatchObject({ context: "c1" });
      expect(await taints.find("writ:t1", ["c2", "*"], at(0))).toBeUndefined();
      expect(await taints.find("writ:t2", undefined, at(0))).toBeUndefined();
      expect(await taints.find("writ:t1", undefined, at(60))).toBeUndefined(); // expired
    });

    it("keeps the later expiry when marked again, from this process or another", async () => {
      const taints = h.store.taints;
      await taints.mark("writ:t3", { context: "*", taintedBy: "a", until: at(100) });
      await taints.mark("writ:t3", { context: "*", taintedBy: "b", until: at(50) });
      expect((await taints.find("writ:t3", ["x", "*"], at(0)))?.until).toEqual(at(100));
      const other = h.second ? (await h.second()).taints : taints;
      await other.mark("writ:t3", { context: "*", taintedBy: "c", until: at(200) });
      expect((await taints.find("writ:t3", undefined, at(150)))?.until).toEqual(at(200));
    });
  });
});
