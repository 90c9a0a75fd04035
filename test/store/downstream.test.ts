/**
 * The downstream ledger (migration 0008, src/store/downstream.ts) on every backend: intent before
 * creation, `created`/`removed` transitions, what the reaper finds due (expired records, revoked,
 * expired or missing writs), and records surviving a restart (a crash between intent and creation).
 */
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DownstreamRecord } from "../../src/downstream/types.js";
import {
  ERR_DOWNSTREAM_RECORD_EXISTS,
  ERR_DOWNSTREAM_RECORD_INVALID,
  ERR_STORE_NOT_FOUND,
  type NewWrit,
  type Store,
} from "../../src/store/index.js";
import { forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  return {
    id: `w-${randomUUID()}`,
    agent: "release-bot",
    playbook: "deploy",
    environment: "prod",
    params: {},
    grants: [{ action: "k8s:apps/deployments:patch", resource: "prod/api" }],
    issuedAt: at(0),
    expiresAt: at(600),
    ...overrides,
  };
}

function record(w: string, overrides: Partial<DownstreamRecord> = {}) {
  return {
    id: `r-${randomUUID()}`,
    system: "kubernetes" as const,
    environment: "prod",
    writ: w,
    agent: "release-bot",
    kind: "role",
    locator: { namespace: "prod", name: `writ-${w}` },
    expiresAt: at(600),
    ...overrides,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return "no error";
}

forEachBackend("downstream ledger", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());
  const ledger = () => h.store.downstream;
  const due = async (now: Date, ids: readonly string[]) =>
    (await ledger().due(now)).map((r) => r.id).filter((id) => ids.includes(id));

  it("migration 0008 creates the table", async () => {
    const tables = await sql<{ name: string }>`
      select table_name as name from information_schema.tables where table_schema = 'public'`.execute(
      h.store.db,
    );
    expect(tables.rows.map((r) => r.name)).toContain("downstream_records");
  });

  it("records intent, then creation with the system's locator merged in", async () => {
    const w = await h.store.writs.insert(writ());
    const before = Date.now();
    const r = await ledger().intend(record(w.id));
    expect(r.state).toBe("intended");
    expect(r.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(r.locator).toEqual({ namespace: "prod", name: `writ-${w.id}` });
    await ledger().created(r.id, { resourceVersion: "42" });
    const [got] = await ledger().ofWrit(w.id);
    expect(got).toEqual({
      ...r,
      state: "created",
      locator: { namespace: "prod", name: `writ-${w.id}`, resourceVersion: "42" },
    });
  });

  it("removes idempotently; an unknown record is an error", async () => {
    const w = await h.store.writs.insert(writ());
    const r = await ledger().intend(record(w.id));
    await ledger().removed(r.id);
    await ledger().removed(r.id);
    expect((await ledger().ofWrit(w.id)).map((x) => x.state)).toEqual(["removed"]);
    expect(await codeOf(ledger().removed("no-such-record"))).toBe(ERR_STORE_NOT_FOUND);
    expect(await codeOf(ledger().created("no-such-record"))).toBe(ERR_STORE_NOT_FOUND);
  });

  it("finds due what expired, what a revoked, expired or missing writ made, never what is removed", async () => {
    const live = await h.store.writs.insert(writ());
    const revoked = await h.store.writs.insert(writ());
    const expired = await h.store.writs.insert(writ({ issuedAt: at(-600), expiresAt: at(100) }));
    const keep = await ledger().intend(record(live.id));
    const recordExpired = await ledger().intend(record(live.id, { expiresAt: at(50) }));
    const ofRevoked = await ledger().intend(record(revoked.id));
    const ofExpired = await ledger().intend(record(expired.id, { expiresAt: at(900) }));
    const ofMissing = await ledger().intend(record("w-never-stored"));
    const gone = await ledger().intend(record(revoked.id));
    await ledger().removed(gone.id);
    await h.store.writs.revoke(revoked.id, "test", at(10));
    const ids = [keep, recordExpired, ofRevoked, ofExpired, ofMissing, gone].map((r) => r.id);

    expect((await due(at(20), ids)).sort()).toEqual([ofRevoked.id, ofMissing.id].sort());
    expect((await due(at(60), ids)).sort()).toEqual([recordExpired.id, ofRevoked.id, ofMissing.id].sort());
    expect((await due(at(100), ids)).sort()).toEqual(
      [recordExpired.id, ofRevoked.id, ofExpired.id, ofMissing.id].sort(),
    );
    expect((await due(at(600), ids)).sort()).toEqual(
      [keep.id, recordExpired.id, ofRevoked.id, ofExpired.id, ofMissing.id].sort(),
    );
  });

  it("a record that outlives its writ (a deny its revocation made) is due by its own expiry only", async () => {
    const w = await h.store.writs.insert(writ());
    await h.store.writs.revoke(w.id, "test", at(10));
    const deny = await ledger().intend(
      record(w.id, { kind: "deny", outlivesWrit: true, expiresAt: at(3600) }),
    );
    const session = await ledger().intend(record(w.id, { kind: "session" }));
    expect(deny.outlivesWrit).toBe(true);
    expect(session.outlivesWrit).toBeUndefined();
    const ids = [deny.id, session.id];
    expect(await due(at(20), ids)).toEqual([session.id]);
    expect((await due(at(3600), ids)).sort()).toEqual(ids.sort());
    // also for a writ that cannot be found
    const orphan = await ledger().intend(record("w-gone", { outlivesWrit: true, expiresAt: at(100) }));
    expect(await due(at(20), [orphan.id])).toEqual([]);
    expect(await due(at(100), [orphan.id])).toEqual([orphan.id]);
    expect((await ledger().ofWrit(w.id)).find((r) => r.id === deny.id)?.outlivesWrit).toBe(true);
  });

  it("a creation reported after the reaper removed the record brings it back for the next pass", async () => {
    const w = await h.store.writs.insert(writ());
    const r = await ledger().intend(record(w.id));
    await h.store.writs.revoke(w.id, "killed", at(5));
    await ledger().removed(r.id);
    expect(await due(at(10), [r.id])).toEqual([]);
    await ledger().created(r.id, { uid: "u-1" });
    expect(await due(at(10), [r.id])).toEqual([r.id]);
  });

  it("refuses a duplicate id and malformed records, storing nothing", async () => {
    const w = await h.store.writs.insert(writ());
    const r = await ledger().intend(record(w.id));
    expect(await codeOf(ledger().intend({ ...record(w.id), id: r.id }))).toBe(ERR_DOWNSTREAM_RECORD_EXISTS);
    const bad: Partial<DownstreamRecord>[] = [
      { id: "" },
      { system: "gcp" as never },
      { writ: "x".repeat(201) },
      { kind: "" },
      { expiresAt: new Date(Number.NaN) },
      { locator: [] as never },
      { locator: { blob: "x".repeat(17 * 1024) } },
    ];
    for (const b of bad) {
      expect(await codeOf(ledger().intend(record(w.id, b))), JSON.stringify(b).slice(0, 60)).toBe(
        ERR_DOWNSTREAM_RECORD_INVALID,
      );
    }
    expect(await ledger().ofWrit(w.id)).toHaveLength(1);
  });

  describe("after a crash between intent and creation", () => {
    it("the intent survives a restart and is due once its writ is revoked", async () => {
      const w = await h.store.writs.insert(writ());
      const r = await ledger().intend(
        record(w.id, { system: "aws", kind: "sts-session", locator: { role: "r" } }),
      );
      let other: Store;
      if (h.reopen) other = await h.reopen();
      else other = await h.second!();
      await other.writs.revoke(w.id, "killed", at(1));
      const found = (await other.downstream.due(at(2))).find((x) => x.id === r.id);
      expect(found).toMatchObject({
        state: "intended",
        system: "aws",
        kind: "sts-session",
        locator: { role: "r" },
      });
    });
  });
});
