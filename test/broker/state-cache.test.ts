/**
 * The per-request state a server keeps in memory when it is the store's only writer (`exclusive`):
 * signing keys, engaged kills and slow-down blocks. Changes made through the same objects show at
 * once; a non-exclusive object reads the store each time, so it sees another writer's change.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { denialBackoff } from "../../src/broker/backoff.js";
import { environmentKeys } from "../../src/broker/keys.js";
import { killSwitch } from "../../src/broker/kill.js";
import { loadConfigFile } from "../../src/config/index.js";
import type { WritConfig } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { ROOT } from "../support/cli.js";

let dir: string;
let store: Store;
let config: WritConfig;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-state-cache-"));
  store = await openStore({ dataDir: dir });
  await store.migrate();
  config = (await loadConfigFile(join(ROOT, "examples", "quickstart", "writ.yaml"))).config!;
}, 60_000);

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const releaseBot = { id: "release-bot", runnerClass: "deploy" };

describe("kill switch kept in memory", () => {
  it("follows engage and lift through the same object, every scope", async () => {
    const ks = killSwitch(store, { exclusive: true });
    expect(await ks.blocking(releaseBot, "dev")).toBeUndefined();
    for (const scope of [
      { kind: "agent", agent: "release-bot" },
      { kind: "class", runnerClass: "deploy" },
      { kind: "environment", environment: "dev" },
      { kind: "all" },
    ] as const) {
      const { kill } = await ks.engage(scope, { by: "alice", config });
      expect((await ks.blocking(releaseBot, "dev"))?.id).toBe(kill.id);
      await ks.lift(scope, { by: "alice" });
      expect(await ks.blocking(releaseBot, "dev")).toBeUndefined();
    }
    // out of scope stays unblocked
    await ks.engage({ kind: "environment", environment: "prod" }, { by: "alice", config });
    expect(await ks.blocking(releaseBot, "dev")).toBeUndefined();
    expect(await ks.blocking(releaseBot, "prod")).toBeDefined();
    await ks.lift({ kind: "environment", environment: "prod" }, { by: "alice" });
  });

  it("a shared-store object sees a kill another writer engaged", async () => {
    const shared = killSwitch(store);
    const other = killSwitch(store);
    expect(await shared.blocking(releaseBot, "dev")).toBeUndefined();
    await other.engage({ kind: "agent", agent: "release-bot" }, { by: "bob", config });
    expect(await shared.blocking(releaseBot, "dev")).toBeDefined();
    await other.lift({ kind: "agent", agent: "release-bot" }, { by: "bob" });
    expect(await shared.blocking(releaseBot, "dev")).toBeUndefined();
  });
});

describe("signing keys kept in memory", () => {
  it("signs with the rotated key at once and drops a withdrawn key from verification", async () => {
    const keys = environmentKeys(store, { exclusive: true });
    const first = await keys.activeKey("dev");
    expect((await keys.activeKey("dev")).kid).toBe(first.kid);
    expect(await keys.verificationKey("dev", first.kid)).toBeDefined();
    // a compromised key: withdrawn at once (max token TTL 0)
    const { created } = await keys.rotate("dev", { maxTokenTtlSeconds: 0 });
    expect(created.kid).not.toBe(first.kid);
    expect((await keys.activeKey("dev")).kid).toBe(created.kid);
    expect(await keys.verificationKey("dev", first.kid)).toBeUndefined();
    expect(await keys.verificationKey("dev", created.kid)).toBeDefined();
    // never across environments, cached or not
    expect(await keys.verificationKey("prod", created.kid)).toBeUndefined();
  });
});

describe("slow-down kept in memory", () => {
  it("answers a block recorded through the same object, and its end", async () => {
    const b = denialBackoff(store, { exclusive: true });
    const t0 = new Date("2026-11-22T10:00:00Z");
    expect(await b.check("release-bot", "dev", t0)).toBeUndefined();
    expect((await b.record("release-bot", "dev", t0)).retryAfter).toBe(1);
    expect(await b.check("release-bot", "dev", t0)).toMatchObject({ retryAfter: 1, count: 1 });
    expect((await b.record("release-bot", "dev", t0)).retryAfter).toBe(2);
    expect(await b.check("release-bot", "dev", t0)).toMatchObject({ retryAfter: 2, count: 2 });
    expect(await b.check("release-bot", "dev", new Date(t0.getTime() + 2500))).toBeUndefined();
    expect(await b.check("release-bot", "prod", t0)).toBeUndefined();
  });
});
