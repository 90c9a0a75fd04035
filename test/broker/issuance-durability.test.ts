/**
 * Issuance under load and under `kill -9`: many token exchanges at once share the audit log's group
 * commit, and an answered writ is a committed writ. On both stores, every writ answered 200 is in
 * the `writs` table with exactly one `broker.writ_issued` record, the records are dense and the
 * chain verifies. Then the server is killed with SIGKILL in the middle of the load: whatever was
 * answered before the kill is still there, with its record, and the log verifies.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { openStore, type Store } from "../../src/store/index.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";
import { startServe } from "../support/serve.js";
import { exchangeClient } from "./exchange-client.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");
const BASE = "http://127.0.0.1:8080";

/** Every issuance record and writ row, checked against the writ ids the clients were given. */
async function expectIssued(store: Store, answered: readonly string[]): Promise<void> {
  const records = await store.db
    .selectFrom("audit_records")
    .select(["seq", "data"])
    .where("type", "=", "broker.writ_issued")
    .execute();
  const recorded = records.map((r) => (r.data as { writ: string }).writ);
  const stored = (await store.db.selectFrom("writs").select("id").execute()).map((r) => r.id);
  for (const id of answered) {
    expect(recorded.filter((w) => w === id)).toHaveLength(1);
    expect(stored).toContain(id);
  }
  // nothing half-done either: each stored writ has its record and each record its writ
  expect(new Set(recorded)).toEqual(new Set(stored));
}

for (const backend of ["pglite", ...(postgresEnabled ? ["postgres"] : [])] as const) {
  describe(`concurrent token exchanges [${backend}]`, () => {
    let dir = "";
    let temp: TempDatabase | undefined;
    let server: Server;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-issuance-"));
      if (backend === "postgres") temp = await createTempDatabase();
      const { policy } = await loadPolicy(CONFIG);
      // 64 writs at once for one agent: above the runner class's default limits (60 a minute)
      const runnerClasses = new Map(
        [...policy!.config.runnerClasses].map(([id, rc]) => [
          id,
          { ...rc, limits: { activeWrits: 1000, issuancePerMinute: 1000 } },
        ]),
      );
      server = await createServer({
        policy: { ...policy!, config: { ...policy!.config, runnerClasses } },
        dataDir: dir,
        databaseUrl: temp?.url,
        baseUrl: BASE,
        version: "test",
        checkpointEvery: 10,
      });
    }, 30_000);
    afterAll(async () => {
      await server?.close();
      await temp?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    it("store every answered writ with one record each, in a dense chain that verifies", async () => {
      const clients = await Promise.all(
        Array.from({ length: 8 }, () => exchangeClient(BASE, (url, init) => server.app.request(url, init))),
      );
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => clients[i % clients.length]!.exchange()),
      );
      expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
      const ids = results.map((r) => r.body.writ_id as string);
      expect(new Set(ids).size).toBe(64);
      await expectIssued(server.store, ids);
      await server.audit.settled();
      const report = await server.audit.verify();
      expect(report).toMatchObject({ ok: true });
      expect(report.records).toBe(report.lastSeq);
      expect(report.checkpoints).toBeGreaterThanOrEqual(Math.floor(report.records / 10));
    }, 60_000);
  });
}

describe("kill -9 under load", () => {
  let dir = "";
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), "writ-kill9-"));
  });
  afterAll(async () => {
    if (child?.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("loses no answered writ and leaves a log that verifies", async () => {
    const serve = await startServe(CONFIG, dir);
    child = serve.child;
    const clients = await Promise.all(Array.from({ length: 8 }, () => exchangeClient(serve.url)));
    const answered: string[] = [];
    let killed = false;
    const load = clients.map(async (c) => {
      while (!killed) {
        try {
          const r = await c.exchange();
          if (r.status === 200 && !killed) answered.push(r.body.writ_id as string);
        } catch {
          return; // the connection died with the server
        }
      }
    });
    // kill once a fair number of writs were answered, with more in flight
    while (answered.length < 40) await new Promise((resolve) => setTimeout(resolve, 20));
    const before = [...answered];
    serve.child.kill("SIGKILL");
    killed = true;
    expect(await serve.exited).toBe(null);
    await Promise.all(load);

    const verify = await runCli(["audit", "verify", "--data", dir, "--json"]);
    expect(verify.code, verify.stderr).toBe(0);
    const store = await openStore({ dataDir: dir, create: false });
    try {
      await expectIssued(store, before);
    } finally {
      await store.close();
    }
  }, 90_000);
});
