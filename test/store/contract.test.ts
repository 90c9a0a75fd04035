/**
 * The store contract: every backend passes the same suite.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRequestAction, ruleMatches } from "../../src/core/index.js";
import { auditRepository } from "../../src/store/audit.js";
import {
  type AuditHead,
  type AuditRow,
  ERR_STORE_LOCKED,
  ERR_STORE_NOT_FOUND,
  ERR_STORE_NOT_MIGRATED,
  ERR_STORE_UNAVAILABLE,
  ERR_WRIT_EXHAUSTED,
  ERR_WRIT_EXISTS,
  ERR_WRIT_EXPIRED,
  ERR_WRIT_INVALID,
  ERR_WRIT_NOT_FOUND,
  ERR_WRIT_NOT_YET_VALID,
  ERR_WRIT_REVOKED,
  GENESIS_HASH,
  isStoreFailure,
  MIGRATIONS,
  type NewWrit,
  openStore,
  toActiveWrit,
  writRow,
} from "../../src/store/index.js";
import { createTempDatabase, forEachBackend } from "./backends.js";

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

let counter = 0;
function writ(overrides: Partial<NewWrit> = {}): NewWrit {
  counter += 1;
  return {
    id: `w-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    agent: "release-bot",
    playbook: "deploy",
    environment: "prod",
    params: { service: "api", replicas: 3 },
    grants: [
      { action: "k8s:apps/deployments:patch", resource: "prod/api" },
      { action: "aws:s3:GetObject", resource: "arn:aws:s3:::releases/api/*" },
    ],
    issuedAt: at(0),
    expiresAt: at(600),
    maxUses: 5,
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

/** A stand-in for the audit module's builder: any hash function works for the store contract. */
function next(head: AuditHead, n: number): AuditRow {
  const hash = (BigInt(`0x${head.hash}`) + BigInt(n) + 1n).toString(16).padStart(64, "0").slice(-64);
  return { seq: head.seq + 1, at: new Date(), type: "test.event", data: { n }, prevHash: head.hash, hash };
}

forEachBackend("store contract", (h) => {
  beforeAll(() => h.setup());
  afterAll(() => h.teardown());

  describe("migrations", () => {
    it("applies nothing the second time and creates every table", async () => {
      expect((await h.store.migrate()).applied).toEqual([]);
      const tables = await sql<{ name: string }>`
        select table_name as name from information_schema.tables where table_schema = 'public'`.execute(
        h.store.db,
      );
      const names = tables.rows.map((r) => r.name);
      for (const t of ["writs", "audit_records", "audit_head", "audit_checkpoints"])
        expect(names).toContain(t);
    });

    it("starts the audit head at the genesis hash", async () => {
      // The suite's audit tests below append; this runs first.
      expect(await h.store.audit.head()).toEqual({ seq: 0, hash: GENESIS_HASH });
    });
  });

  describe("writs", () => {
    it("round-trips a writ", async () => {
      const w = writ({ maxUses: undefined, params: { nested: { list: [1, "two", null] } } });
      const stored = await h.store.writs.insert(w);
      expect(stored).toMatchObject({
        kind: "stored-writ",
        id: w.id,
        agent: "release-bot",
        params: { nested: { list: [1, "two", null] } },
        grants: w.grants,
        maxUses: undefined,
        uses: 0,
        status: "active",
        revokedAt: undefined,
      });
      expect(stored.issuedAt.toISOString()).toBe(w.issuedAt.toISOString());
      expect(stored.expiresAt.toISOString()).toBe(w.expiresAt.toISOString());
      expect(await h.store.writs.get(w.id)).toEqual(stored);
      expect(await h.store.writs.get("no-such-writ")).toBeUndefined();
    });

    it("refuses a taken id", async () => {
      const w = writ();
      await h.store.writs.insert(w);
      expect(await codeOf(h.store.writs.insert(w))).toBe(ERR_WRIT_EXISTS);
    });

    it.each([
      ["an empty id", { id: "" }],
      ["expiry before issue", { expiresAt: at(-1) }],
      ["zero max uses", { maxUses: 0 }],
      ["fractional max uses", { maxUses: 1.5 }],
      ["a malformed grant", { grants: [{ action: "s3:GetObject", resource: "*" }] }],
      ["an invalid date", { issuedAt: new Date(Number.NaN) }],
      ["params that are not an object", { params: [] as unknown as Record<string, unknown> }],
    ])("refuses %s with ERR_WRIT_INVALID", async (_label, overrides) => {
      expect(await codeOf(h.store.writs.insert(writ(overrides as Partial<NewWrit>)))).toBe(ERR_WRIT_INVALID);
    });

    it("lists only the agent's usable writs, converting to the core model", async () => {
      const agent = `agent-${Math.random().toString(36).slice(2)}`;
      const live = await h.store.writs.insert(writ({ agent, maxUses: 2 }));
      const unlimited = await h.store.writs.insert(writ({ agent, maxUses: undefined, issuedAt: at(1) }));
      const revoked = await h.store.writs.insert(writ({ agent }));
      await h.store.writs.revoke(revoked.id, "test");
      await h.store.writs.insert(writ({ agent, issuedAt: at(-600), expiresAt: at(-1) })); // expired
      await h.store.writs.insert(writ({ agent, issuedAt: at(60), expiresAt: at(600) })); // not yet valid
      const spent = await h.store.writs.insert(writ({ agent, maxUses: 1 }));
      await h.store.writs.spendUse(spent.id, at(5));
      await h.store.writs.insert(writ({ agent: `${agent}-other` }));

      const active = await h.store.writs.listActive(agent, at(10));
      expect(active.map((w) => w.id)).toEqual([live.id, unlimited.id]);

      const model = toActiveWrit(active[0]!);
      expect(model).toMatchObject({ kind: "writ", id: live.id, agent, usesLeft: 2, revoked: false });
      expect(model.grants).toHaveLength(2);
      expect(model.grants[0]!.rule.text).toEqual({
        action: "k8s:apps/deployments:patch",
        resource: "prod/api",
      });
      const request = parseRequestAction("aws:s3:GetObject");
      expect(ruleMatches(model.grants[1]!.rule, request, "arn:aws:s3:::releases/api/v1.tgz", "cover")).toBe(
        true,
      );
      expect(ruleMatches(model.grants[1]!.rule, request, "arn:aws:s3:::other/x", "cover")).toBe(false);
      expect(toActiveWrit(active[1]!).usesLeft).toBeUndefined();
    });

    it("revokes once and keeps the first reason", async () => {
      const w = await h.store.writs.insert(writ());
      const first = await h.store.writs.revoke(w.id, "kill switch: agent", at(30));
      expect(first.alreadyRevoked).toBe(false);
      expect(first.writ).toMatchObject({ status: "revoked", revokedReason: "kill switch: agent" });
      expect(first.writ.revokedAt?.toISOString()).toBe(at(30).toISOString());
      const again = await h.store.writs.revoke(w.id, "second reason", at(40));
      expect(again.alreadyRevoked).toBe(true);
      expect(again.writ.revokedReason).toBe("kill switch: agent");
      expect(toActiveWrit(again.writ).revoked).toBe(true);
      expect(await codeOf(h.store.writs.revoke("no-such-writ", "x"))).toBe(ERR_WRIT_NOT_FOUND);
      expect(await codeOf(h.store.writs.revoke(w.id, "  "))).toBe(ERR_WRIT_INVALID);
    });

    it("spends uses and says why it refuses", async () => {
      const w = await h.store.writs.insert(writ({ maxUses: 2 }));
      expect(await h.store.writs.spendUse(w.id, at(1))).toEqual({ uses: 1, usesLeft: 1 });
      expect(await h.store.writs.spendUse(w.id, at(2))).toEqual({ uses: 2, usesLeft: 0 });
      expect(await codeOf(h.store.writs.spendUse(w.id, at(3)))).toBe(ERR_WRIT_EXHAUSTED);
      expect((await h.store.writs.get(w.id))?.uses).toBe(2);

      const unlimited = await h.store.writs.insert(writ({ maxUses: undefined }));
      expect(await h.store.writs.spendUse(unlimited.id, at(1))).toEqual({ uses: 1, usesLeft: undefined });

      expect(await codeOf(h.store.writs.spendUse(unlimited.id, at(600)))).toBe(ERR_WRIT_EXPIRED);
      expect(await codeOf(h.store.writs.spendUse(unlimited.id, at(-1)))).toBe(ERR_WRIT_NOT_YET_VALID);
      await h.store.writs.revoke(unlimited.id, "done");
      expect(await codeOf(h.store.writs.spendUse(unlimited.id, at(1)))).toBe(ERR_WRIT_REVOKED);
      expect(await codeOf(h.store.writs.spendUse("no-such-writ", at(1)))).toBe(ERR_WRIT_NOT_FOUND);
      expect((await h.store.writs.get(unlimited.id))?.uses).toBe(1);
    });

    it("never spends below zero under concurrency: 20 spends at max 5, exactly 5 succeed", async () => {
      const w = await h.store.writs.insert(writ({ maxUses: 5 }));
      const stores = h.second ? [h.store, await h.second()] : [h.store];
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => stores[i % stores.length]!.writs.spendUse(w.id, at(1))),
      );
      const ok = results.filter((r) => r.status === "fulfilled");
      const refused = results.filter((r) => r.status === "rejected");
      expect(ok).toHaveLength(5);
      expect(refused.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(
        Array(15).fill(ERR_WRIT_EXHAUSTED),
      );
      expect(
        ok.map((r) => (r as PromiseFulfilledResult<{ usesLeft: number }>).value.usesLeft).sort(),
      ).toEqual([0, 1, 2, 3, 4]);
      expect((await h.store.writs.get(w.id))?.uses).toBe(5);
    });

    it("isolates a transaction: its writes are invisible outside until commit, gone after rollback", async () => {
      const w = writ();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => {
        inside = resolve;
      });
      const tx = h.store.db
        .transaction()
        .execute(async (trx) => {
          await trx
            .insertInto("writs")
            .values({
              id: w.id,
              agent: w.agent,
              playbook: w.playbook,
              environment: w.environment,
              params: "{}",
              grants: "[]",
              issued_at: w.issuedAt,
              expires_at: w.expiresAt,
              max_uses: null,
            })
            .execute();
          inside();
          await gate;
          throw new Error("roll back");
        })
        .catch((err: Error) => err.message);
      await entered;
      const outside = h.store.writs.get(w.id);
      release();
      expect(await tx).toBe("roll back");
      expect(await outside).toBeUndefined();
    });
  });

  describe("audit rows", () => {
    it("keeps one dense chain under concurrent appends", async () => {
      const start = await h.store.audit.head();
      const stores = h.second ? [h.store, await h.second()] : [h.store];
      const n = 40;
      await Promise.all(
        Array.from({ length: n }, (_, i) => stores[i % stores.length]!.audit.append((head) => next(head, i))),
      );
      const head = await h.store.audit.head();
      expect(head.seq).toBe(start.seq + n);
      const rows = await h.store.audit.records(start.seq, n + 10);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => start.seq + i + 1));
      let prev = start.hash;
      for (const row of rows) {
        expect(row.prevHash).toBe(prev);
        prev = row.hash;
      }
      expect(head.hash).toBe(prev);
      expect((await h.store.audit.latest(3)).map((r) => r.seq)).toEqual([
        head.seq - 2,
        head.seq - 1,
        head.seq,
      ]);
    });

    it("refuses a record that does not follow the head, writing nothing", async () => {
      const before = await h.store.audit.head();
      await expect(h.store.audit.append((head) => ({ ...next(head, 0), seq: head.seq + 2 }))).rejects.toThrow(
        TypeError,
      );
      await expect(
        h.store.audit.append((head) => ({ ...next(head, 0), prevHash: GENESIS_HASH.replace(/^0/, "1") })),
      ).rejects.toThrow(TypeError);
      expect(await h.store.audit.head()).toEqual(before);
    });

    it("appends a batch in one transaction, all or nothing", async () => {
      const before = await h.store.audit.head();
      const rows = await h.store.audit.appendBatch((head) => {
        const a = next(head, 1);
        const b = next(a, 2);
        return [a, b, next(b, 3)];
      });
      expect(rows.map((r) => r.seq)).toEqual([before.seq + 1, before.seq + 2, before.seq + 3]);
      expect(await h.store.audit.head()).toEqual({ seq: before.seq + 3, hash: rows[2]!.hash });

      const after = await h.store.audit.head();
      await expect(
        h.store.audit.appendBatch((head) => {
          const a = next(head, 1);
          return [a, { ...next(a, 2), prevHash: head.hash }];
        }),
      ).rejects.toThrow(TypeError);
      await expect(h.store.audit.appendBatch(() => [])).rejects.toThrow(TypeError);
      expect(await h.store.audit.head()).toEqual(after);
      expect(await h.store.audit.records(after.seq, 10)).toEqual([]);
    });

    it("stores writs in the same commit as their records (writ_audit_append), all or nothing", async () => {
      const a = writ({
        ticket: "CHG-1",
        sponsor: "alice@acme.example",
        jkt: "k".repeat(43),
        maxUses: undefined,
      });
      const b = writ({ audience: "https://gw.example/mcp", approvalRequest: "req-1", params: { q: "it's" } });
      // on the embedded store the writs go through the prepared call of writ_audit_append (every
      // column writRow fills is one the function stores), not the general statement
      const appendCalls = async () => {
        const { rows } = await sql<{ name: string; runs: number }>`
          select name, (generic_plans + custom_plans)::int as runs from pg_prepared_statements`.execute(
          h.store.db,
        );
        return rows.find((r) => /^writ_audit_append_\d+$/.test(r.name))?.runs ?? 0;
      };
      await h.store.audit.append((head) => next(head, 0)); // the append below builds on a known head
      const callsBefore = await appendCalls();
      const before = await h.store.audit.head();
      const rows = await h.store.audit.appendBatch(
        (head) => {
          const r1 = next(head, 1);
          return [r1, next(r1, 2)];
        },
        [writRow(a), writRow(b)],
      );
      expect(rows.map((r) => r.seq)).toEqual([before.seq + 1, before.seq + 2]);
      expect(await appendCalls()).toBe(h.store.backend === "pglite" ? callsBefore + 1 : 0);
      for (const w of [a, b]) {
        const stored = await h.store.writs.get(w.id);
        expect(stored).toMatchObject({ ...w, uses: 0, status: "active" });
      }
      // a second append repeating a writ id: the insert fails, and so does the whole commit
      const after = await h.store.audit.head();
      expect(
        await codeOf(h.store.audit.appendBatch((head) => [next(head, 3)], [writRow(writ()), writRow(a)])),
      ).toBe("ERR_STORE");
      expect(await h.store.audit.head()).toEqual(after);
      expect(await h.store.audit.records(after.seq, 10)).toEqual([]);
      // and the head this process knew is still usable
      const [r] = await h.store.audit.appendBatch((head) => [next(head, 4)], [writRow(writ())]);
      expect(r!.seq).toBe(after.seq + 1);
    });

    it("appends one record alone through its own prepared statement, and after another writer moved the head", async () => {
      // on the embedded store a lone record goes through writ_audit_append_<n>_one, no arrays
      const oneRuns = async () => {
        const { rows } = await sql<{ name: string; runs: number }>`
          select name, (generic_plans + custom_plans)::int as runs from pg_prepared_statements`.execute(
          h.store.db,
        );
        return rows.filter((r) => /^writ_audit_append_\d+_one$/.test(r.name)).reduce((n, r) => n + r.runs, 0);
      };
      await h.store.audit.append((head) => next(head, 0)); // the append below builds on a known head
      const before = await oneRuns();
      const a = await h.store.audit.append((head) => next(head, 1));
      expect(await oneRuns()).toBe(h.store.backend === "pglite" ? before + 1 : 0);
      // another writer (a repository of its own, as another process has) moves the head: the next
      // append's compare-and-set stores nothing, and the locked path chains it after the other's
      const other = auditRepository(h.store.db, { prepared: h.store.backend === "pglite" });
      const b = await other.append((head) => next(head, 2));
      expect(b).toMatchObject({ seq: a.seq + 1, prevHash: a.hash });
      const c = await h.store.audit.append((head) => next(head, 3));
      expect(c).toMatchObject({ seq: b.seq + 1, prevHash: b.hash });
      expect(await h.store.audit.head()).toEqual({ seq: c.seq, hash: c.hash });
      const stored = await h.store.audit.records(a.seq - 1, 10);
      expect(stored.map((r) => [r.seq, r.prevHash, r.hash])).toEqual(
        [a, b, c].map((r) => [r.seq, r.prevHash, r.hash]),
      );
    });

    it("round-trips record fields exactly", async () => {
      const when = new Date("2031-02-03T04:05:06.789Z");
      const data = { s: 'é \u2028 "q"', n: [0, -1.5, 1e21, 5e-324], t: true, z: null, o: {} };
      const row = await h.store.audit.append((head) => ({ ...next(head, 1), at: when, data }));
      const [back] = await h.store.audit.records(row.seq - 1, 1);
      expect(back).toEqual({ ...row, at: when, data });
    });

    it("stores quotes, backslashes and SQL in record text as written (the embedded store's literals)", async () => {
      const nasty = [
        "'",
        "''",
        "\\",
        "\\'",
        "$$",
        "'); drop table audit_records; --",
        "E'\\x41'",
        "\u00e9\ud83d\ude00",
      ];
      await h.store.audit.append((head) => next(head, 0)); // the appends below build on a known head
      const rows = await h.store.audit.appendBatch((head) => {
        let previous: AuditHead = head;
        return nasty.map((text, i) => {
          const row = { ...next(previous, i), type: `t'${i}\\`, data: { [text]: text, list: [text] } };
          previous = row;
          return row;
        });
      });
      const one = await h.store.audit.append((head) => ({ ...next(head, 9), data: { all: nasty } }));
      const back = await h.store.audit.records(rows[0]!.seq - 1, nasty.length + 1);
      expect(back.map((r) => [r.type, r.data])).toEqual([
        ...nasty.map((text, i) => [`t'${i}\\`, { [text]: text, list: [text] }]),
        [one.type, { all: nasty }],
      ]);
      expect(await h.store.audit.head()).toEqual({ seq: one.seq, hash: one.hash });
      expect((await h.store.db.selectFrom("audit_records").select("seq").execute()).length).toBe(one.seq);
      // the embedded store ran them through its prepared statement
      const prepared = await sql<{ name: string }>`select name from pg_prepared_statements`.execute(
        h.store.db,
      );
      expect(prepared.rows.some((r) => r.name.startsWith("writ_audit_append_"))).toBe(
        h.store.backend === "pglite",
      );
    });

    it("refuses to update, delete or truncate audit rows", async () => {
      const head = await h.store.audit.head();
      await expect(
        sql`update audit_records set type = 'x' where seq = ${head.seq}`.execute(h.store.db),
      ).rejects.toThrow(/append-only/);
      await expect(
        sql`delete from audit_records where seq = ${head.seq}`.execute(h.store.db),
      ).rejects.toThrow(/append-only/);
      await expect(sql`truncate audit_records`.execute(h.store.db)).rejects.toThrow(/append-only/);
      await h.store.audit.addCheckpoint({
        seq: 0,
        hash: GENESIS_HASH,
        at: new Date(),
        keyId: "k",
        signature: "s",
      });
      await expect(sql`delete from audit_checkpoints`.execute(h.store.db)).rejects.toThrow(/append-only/);
      await expect(sql`update audit_checkpoints set hash = ${head.hash}`.execute(h.store.db)).rejects.toThrow(
        /append-only/,
      );
      expect(await h.store.audit.head()).toEqual(head);
    });

    it("stores checkpoints idempotently and reads them in order", async () => {
      const head = await h.store.audit.head();
      const cp = {
        seq: head.seq,
        hash: head.hash,
        at: new Date("2031-01-01T00:00:00.000Z"),
        keyId: "k1",
        signature: "s1",
      };
      expect(await h.store.audit.addCheckpoint(cp)).toEqual(cp);
      expect(await h.store.audit.addCheckpoint({ ...cp, signature: "other" })).toEqual(cp);
      await h.store.audit.addCheckpoint({ ...cp, keyId: "k0", signature: "s0" });
      await h.store.audit.addCheckpoint({ ...cp, seq: 1, hash: GENESIS_HASH });
      expect((await h.store.audit.checkpoints(-1)).map((c) => [c.seq, c.keyId])).toEqual([
        [0, "k"],
        [1, "k1"],
        [head.seq, "k0"],
        [head.seq, "k1"],
      ]);
      expect((await h.store.audit.checkpoints(1, head.seq, 1)).map((c) => c.keyId)).toEqual(["k0"]);
      expect((await h.store.audit.latestCheckpoints(head.seq - 1, 5)).map((c) => c.seq)).toEqual([1, 0]);
    });

    it("reads a consistent snapshot", async () => {
      const seen = await h.store.audit.snapshot(async (reader) => {
        const head = await reader.head();
        const rows = await reader.records(head.seq - 1, 10);
        return { head, last: rows[rows.length - 1] };
      });
      expect(seen.last?.hash).toBe(seen.head.hash);
    });
  });

  if (h.name === "pglite") {
    describe("embedded data folder", () => {
      it("refuses a second open of the same folder while the first is open", async () => {
        expect(await codeOf(openStore({ dataDir: h.dir }))).toBe(ERR_STORE_LOCKED);
      });

      it("keeps data across a reopen", async () => {
        const w = await h.store.writs.insert(writ());
        const head = await h.store.audit.head();
        const reopened = await h.reopen!();
        expect(await reopened.writs.get(w.id)).toMatchObject({ id: w.id, grants: w.grants });
        expect(await reopened.audit.head()).toEqual(head);
        expect((await reopened.migrate()).applied).toEqual([]);
      });

      it("does not create a database when asked not to", async () => {
        expect(await codeOf(openStore({ dataDir: `${h.dir}/elsewhere`, create: false }))).toBe(
          ERR_STORE_NOT_FOUND,
        );
      });
    });
  }

  if (h.name === "postgres") {
    describe("shared PostgreSQL", () => {
      it("lets two processes migrate a fresh database at once", async () => {
        const temp = await createTempDatabase();
        const a = await openStore({ databaseUrl: temp.url });
        const b = await openStore({ databaseUrl: temp.url });
        try {
          expect(await codeOf(a.writs.get("x"))).toBe(ERR_STORE_NOT_MIGRATED);
          const [ra, rb] = await Promise.all([a.migrate(), b.migrate()]);
          expect([...ra.applied, ...rb.applied].sort()).toEqual(Object.keys(MIGRATIONS).sort());
          expect(await a.audit.head()).toEqual({ seq: 0, hash: GENESIS_HASH });
        } finally {
          await a.close();
          await b.close();
          await temp.drop();
        }
      });

      it("reports an unreachable server as ERR_STORE_UNAVAILABLE without the password", async () => {
        const err = await openStore({ databaseUrl: "postgres://writ:hunter2@127.0.0.1:1/none" }).catch(
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe(ERR_STORE_UNAVAILABLE);
        expect(isStoreFailure(err)).toBe(true);
        expect(String((err as Error).message)).not.toContain("hunter2");
      });
    });
  }
});

describe("store: data folder errors", () => {
  it("reports an unusable data folder as a coded store failure", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "writ-file-")), "a-file");
    await writeFile(file, "not a folder");
    const err = await openStore({ dataDir: join(file, "data") }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe(ERR_STORE_UNAVAILABLE);
    expect(isStoreFailure(err)).toBe(true);
  });
});
