/**
 * `writs.serialiseIssuance` on every backend: issuances for one agent run one at a time, in one
 * process and (PostgreSQL) across two stores on one database, as two servers would; issuances for
 * different agents do not wait for each other; a failing one releases the lock.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Store } from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

forEachBackend("store: issuance lock", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  /** Runs `n` holders for `agent` on `stores` in turn; the most that ever held it at once. */
  async function overlap(stores: readonly Store[], agents: readonly string[], n: number) {
    const inside = new Map<string, number>();
    let most = 0;
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const agent = agents[i % agents.length]!;
        return stores[i % stores.length]!.writs.serialiseIssuance(agent, async () => {
          const now = (inside.get(agent) ?? 0) + 1;
          inside.set(agent, now);
          most = Math.max(most, now);
          await pause(15);
          inside.set(agent, now - 1);
        });
      }),
    );
    return most;
  }

  it("runs one agent's issuances one at a time", async () => {
    const stores = h.second === undefined ? [h.store] : [h.store, await h.second()];
    expect(await overlap(stores, ["lock-bot"], 12)).toBe(1);
  });

  it("lets different agents' issuances run together", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let aInside!: () => void;
    const aStarted = new Promise<void>((resolve) => {
      aInside = resolve;
    });
    let aDone = false;
    const a = h.store.writs.serialiseIssuance("agent-a", async () => {
      aInside();
      await gate;
      aDone = true;
    });
    await aStarted;
    // b runs to its end while a still holds its own agent's lock
    await expect(h.store.writs.serialiseIssuance("agent-b", async () => aDone)).resolves.toBe(false);
    release();
    await a;
  });

  it("releases the lock when an issuance fails, and passes its error on", async () => {
    const failed = h.store.writs.serialiseIssuance("fail-bot", async () => {
      throw new Error("refused inside");
    });
    await expect(failed).rejects.toThrow("refused inside");
    await expect(h.store.writs.serialiseIssuance("fail-bot", async () => "next")).resolves.toBe("next");
  });
});
