import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type AuditLog,
  type AuditLogOptions,
  type AuditSigner,
  ERR_AUDIT_DAMAGED,
  ERR_AUDIT_EXPORT_INVALID,
  ERR_AUDIT_NO_SIGNING_KEY,
  ERR_AUDIT_TOO_LARGE,
  GENESIS_HASH,
  loadSigningKey,
  openAuditLog,
  recordHash,
  verifyExport,
} from "../../src/audit/index.js";
import type { WritError } from "../../src/core/index.js";
import { type NewWrit, writRow } from "../../src/store/index.js";
import { asAttacker, forEachBackend, resetAudit } from "../store/backends.js";

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return "no error";
}

let writs = 0;
function newWrit(name: string): NewWrit {
  writs += 1;
  const now = Date.now();
  return {
    id: `writ_${name}_${writs}_${Math.random().toString(36).slice(2, 8)}`,
    agent: "release-bot",
    playbook: "deploy",
    environment: "prod",
    params: {},
    grants: [{ action: "k8s:apps/deployments:patch", resource: "prod/api" }],
    issuedAt: new Date(now),
    expiresAt: new Date(now + 600_000),
  };
}

const jwt = await new SignJWT({ sub: "agent" })
  .setProtectedHeader({ alg: "HS256" })
  .sign(new TextEncoder().encode("k".repeat(32)));

forEachBackend("audit log", (h) => {
  let keyDir = "";
  let signer: AuditSigner;
  let otherSigner: AuditSigner;

  beforeAll(async () => {
    await h.setup();
    keyDir = await mkdtemp(join(tmpdir(), "writ-audit-"));
    signer = await loadSigningKey(join(keyDir, "main"));
    otherSigner = await loadSigningKey(join(keyDir, "other"));
  });
  afterAll(async () => {
    await h.teardown();
    await rm(keyDir, { recursive: true, force: true });
  });
  // periodic checkpoints run after the append that triggers them: each test's are done before the next
  const opened: AuditLog[] = [];
  const openLog = (options: AuditLogOptions): AuditLog => {
    const log = openAuditLog(options);
    opened.push(log);
    return log;
  };
  beforeEach(async () => {
    await Promise.all(opened.splice(0).map((log) => log.settled()));
    await resetAudit(h.store.db);
  });

  describe("append", () => {
    it("chains records from the genesis hash", async () => {
      const clock = () => new Date("2030-05-06T07:08:09.123Z");
      const log = openLog({ repo: h.store.audit, clock });
      const first = await log.append("decision", { agent: "bot", allow: true });
      const second = await log.append("decision", { agent: "bot", allow: false });
      expect(first).toMatchObject({ seq: 1, prevHash: GENESIS_HASH, type: "decision" });
      expect(first.at.toISOString()).toBe("2030-05-06T07:08:09.123Z");
      expect(first.hash).toBe(recordHash(first));
      expect(second.prevHash).toBe(first.hash);
      expect(await log.head()).toEqual({ seq: 2, hash: second.hash });
      expect(await log.verify()).toMatchObject({
        ok: true,
        records: 2,
        lastSeq: 2,
        checkpoints: 0,
        unsigned: 2,
      });
    });

    it("redacts secrets before they reach the database", async () => {
      const log = openLog({ repo: h.store.audit });
      const record = await log.append("token.issued", {
        agent: "bot",
        access_token: jwt,
        response: { headers: { authorization: `DPoP ${jwt}` }, note: `issued ${jwt}` },
        client: { password: "hunter2" },
      });
      const raw = await sql<{
        text: string;
      }>`select data::text as text from audit_records where seq = ${record.seq}`.execute(h.store.db);
      const stored = raw.rows[0]!.text;
      expect(stored).not.toContain(jwt);
      expect(stored).not.toContain(jwt.split(".")[1]!);
      expect(stored).not.toContain("hunter2");
      expect(stored).toContain("[redacted:");
      expect(record.data.agent).toBe("bot");
      expect(record.data.access_token).toMatch(/^\[redacted:token sha256:[0-9a-f]{12}\]$/);
      expect(await log.verify()).toMatchObject({ ok: true });
    });

    it("keeps values PostgreSQL would refuse or change verifiable", async () => {
      const log = openLog({ repo: h.store.audit });
      await log.append("edge.values", {
        nul: "a\u0000b",
        lone: "\uD800",
        big: 2n ** 70n,
        numbers: [1e21, 5e-324, -0, 0.1 + 0.2, Number.NaN],
        nested: { "": { "z y": [true, null] } },
        when: new Date("2030-01-01T00:00:00.000Z"),
      });
      expect(await log.verify()).toMatchObject({ ok: true, records: 1 });
    });

    it("refuses a bad type, non-object data and oversized data", async () => {
      const log = openLog({ repo: h.store.audit, maxRecordBytes: 100 });
      await expect(log.append("Bad Type", {})).rejects.toThrow(TypeError);
      await expect(log.append("ok", [] as unknown as Record<string, unknown>)).rejects.toThrow(TypeError);
      expect(await codeOf(log.append("ok", { big: "x".repeat(200) }))).toBe(ERR_AUDIT_TOO_LARGE);
      expect((await log.head()).seq).toBe(0);
    });

    it("commits concurrent appends in shared transactions, each caller getting its own record", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 10 });
      const records = await Promise.all(Array.from({ length: 300 }, (_, i) => log.append("decision", { i })));
      expect(records.map((r) => r.data.i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(new Set(records.map((r) => r.seq)).size).toBe(300);
      await log.settled();
      expect(await log.verify()).toMatchObject({ ok: true, records: 300, checkpoints: 30 });
    });

    it("under concurrent appends, lets one arriving a moment after another join its transaction", async () => {
      const sizes: number[] = [];
      const repo = {
        ...h.store.audit,
        appendBatch: async (...args: Parameters<typeof h.store.audit.appendBatch>) => {
          const rows = await h.store.audit.appendBatch(...args);
          sizes.push(rows.length);
          return rows;
        },
      };
      const log = openLog({ repo });
      // one alone, then two together: appends are arriving concurrently
      await Promise.all([0, 1, 2].map((i) => log.append("decision", { i })));
      expect(sizes).toEqual([1, 2]);
      // the next append waits a moment for the one that follows it a turn of the event loop later
      const first = log.append("decision", { i: 3 });
      await new Promise<void>((resolve) => setImmediate(resolve));
      const second = log.append("decision", { i: 4 });
      const records = await Promise.all([first, second]);
      expect(sizes).toEqual([1, 2, 2]);
      expect(records.map((r) => r.data.i)).toEqual([3, 4]);
      // alone again: the transactions carry one record each, as they come
      await log.append("decision", { i: 5 });
      await log.append("decision", { i: 6 });
      expect(sizes).toEqual([1, 2, 2, 1, 1]);
      expect(await log.verify()).toMatchObject({ ok: true, records: 7 });
    });

    it("fails every append of a failed transaction and stores none of them", async () => {
      let failures = 1;
      let batches = 0;
      const repo = {
        ...h.store.audit,
        appendBatch: (build: Parameters<typeof h.store.audit.appendBatch>[0]) => {
          batches += 1;
          if (batches === 2 && failures-- > 0) return Promise.reject(new Error("disk full"));
          return h.store.audit.appendBatch(build);
        },
      };
      const log = openLog({ repo });
      // the first append runs alone; the next three queue behind it and share the second transaction
      const results = await Promise.allSettled([0, 1, 2, 3].map((i) => log.append("decision", { i })));
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "rejected"]);
      expect((await log.head()).seq).toBe(1);
      await log.append("decision", { i: 4 });
      expect(await log.verify()).toMatchObject({ ok: true, records: 2 });
    });

    it("refuses only the record whose row the database refused; the others of its batch are stored, each with its own writ", async () => {
      const taken = newWrit("taken");
      const sizes: number[] = [];
      const repo = {
        ...h.store.audit,
        appendBatch: (
          build: Parameters<typeof h.store.audit.appendBatch>[0],
          companions?: Parameters<typeof h.store.audit.appendBatch>[1],
        ) =>
          h.store.audit.appendBatch(async (head) => {
            const rows = await build(head);
            sizes.push(rows.length);
            return rows;
          }, companions),
      };
      const log = openLog({ repo });
      await log.append("broker.writ_issued", { writ: taken.id }, { with: writRow(taken) });
      const before = (await log.head()).seq;
      sizes.length = 0;
      // they share a transaction (the first may run alone), refused for the writ id taken
      const writs = [newWrit("a"), newWrit("b"), taken, newWrit("c")];
      const results = await Promise.allSettled(
        writs.map((w, i) => log.append("broker.writ_issued", { i, writ: w.id }, { with: writRow(w) })),
      );
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      expect(await codeOf(Promise.reject((results[2] as PromiseRejectedResult).reason))).toBe("ERR_STORE");
      const records = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      expect(records.map((r) => r.data.i)).toEqual([0, 1, 3]);
      expect(records.map((r) => r.seq)).toEqual([before + 1, before + 2, before + 3]);
      expect((await log.head()).seq).toBe(before + 3);
      for (const [i, w] of writs.entries()) {
        const stored = await h.store.writs.get(w.id);
        expect(stored?.id).toBe(w.id);
        // the stored record names its own writ, and the refused one left no record behind
        const named = records.filter((r) => r.data.writ === w.id);
        expect(named.map((r) => r.data.i)).toEqual(i === 2 ? [] : [i]);
      }
      expect(await log.verify()).toMatchObject({ ok: true, records: before + 3 });
    });

    it("still fails the whole batch when the store fails to run it (no retry of what may be committed)", async () => {
      let calls = 0;
      const repo = {
        ...h.store.audit,
        appendBatch: (build: Parameters<typeof h.store.audit.appendBatch>[0]) => {
          calls += 1;
          if (calls === 2) {
            const lost = Object.assign(new Error("connection terminated unexpectedly"), { code: "08006" });
            return Promise.reject(lost);
          }
          return h.store.audit.appendBatch(build);
        },
      };
      const log = openLog({ repo });
      const results = await Promise.allSettled([0, 1, 2].map((i) => log.append("decision", { i })));
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
      expect(calls).toBe(2);
      expect((await log.head()).seq).toBe(1);
    });

    describe("sending the next transaction before the answers (sendNextFirst)", () => {
      /** The store's repository, noting what the callers had heard when each transaction was sent. */
      const noting = (answered: readonly number[]) => {
        const heardAtSend: number[][] = [];
        const repo = {
          ...h.store.audit,
          appendBatch: (...args: Parameters<typeof h.store.audit.appendBatch>) => {
            heardAtSend.push([...answered]);
            return h.store.audit.appendBatch(...args);
          },
        };
        return { repo, heardAtSend };
      };

      it.each([
        [true, []],
        [false, [0]],
      ])(
        "sendNextFirst %s: the next transaction is sent after the callers heard %j",
        async (sendNextFirst, heard) => {
          const answered: number[] = [];
          const { repo, heardAtSend } = noting(answered);
          const log = openLog({ repo, signer, checkpointEvery: 2, sendNextFirst });
          const append = (i: number) =>
            log.append("decision", { i }).then((r) => {
              answered.push(r.data.i as number);
              return r;
            });
          const first = append(0);
          // these arrive while the first is on its way (the store answers no call within it)
          const next = [append(1), append(2)];
          const records = await Promise.all([first, ...next]);
          expect(heardAtSend).toEqual([[], heard]);
          // either way each caller hears once its record is committed, in the chain's order
          expect(answered).toEqual([0, 1, 2]);
          expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
          expect(records[1]!.prevHash).toBe(records[0]!.hash);
          await log.settled();
          expect(await log.verify()).toMatchObject({ ok: true, records: 3, checkpoints: 1 });
        },
      );

      it("answers every caller in the chain's order under concurrent appends", async () => {
        const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 10, sendNextFirst: true });
        const answered: number[] = [];
        // in waves, as callers come back after their answers
        const records = await Promise.all(
          Array.from({ length: 300 }, async (_, i) => {
            if (i % 3 !== 0) await new Promise<void>((resolve) => setImmediate(resolve));
            const r = await log.append("decision", { i });
            answered.push(r.seq);
            expect(r.data.i).toBe(i);
            return r;
          }),
        );
        expect(answered).toEqual([...answered].sort((a, b) => a - b));
        expect(new Set(records.map((r) => r.seq)).size).toBe(300);
        await log.settled();
        expect(await log.verify()).toMatchObject({ ok: true, records: 300, checkpoints: 30 });
      });

      it("after a transaction refused for one record's row, sends nothing before the records that go again alone", async () => {
        const taken = newWrit("taken");
        await openLog({ repo: h.store.audit }).append(
          "broker.writ_issued",
          { writ: taken.id },
          { with: writRow(taken) },
        );
        let shared!: () => void;
        const sharedSent = new Promise<void>((resolve) => {
          shared = resolve;
        });
        let release!: () => void;
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        const repo = {
          ...h.store.audit,
          appendBatch: async (
            build: Parameters<typeof h.store.audit.appendBatch>[0],
            companions?: Parameters<typeof h.store.audit.appendBatch>[1],
          ) => {
            let size = 0;
            const answer = h.store.audit.appendBatch(async (head) => {
              const rows = await build(head);
              size = rows.length;
              return rows;
            }, companions);
            await answer.catch(() => {});
            if (size > 1) {
              // the shared one: its refusal reaches the log once another append waits behind it
              shared();
              await released;
            }
            return answer;
          },
        };
        const log = openLog({ repo, sendNextFirst: true });
        const before = (await log.head()).seq;
        // the first goes alone; the next three share a transaction, refused for the writ id taken
        const writs = [newWrit("a"), newWrit("b"), taken, newWrit("c")];
        const appends = writs.map((w, i) =>
          log.append("broker.writ_issued", { i, writ: w.id }, { with: writRow(w) }),
        );
        await sharedSent;
        appends.push(log.append("decision", { i: 4 }));
        release();
        const results = await Promise.allSettled(appends);
        expect(results.map((r) => r.status)).toEqual([
          "fulfilled",
          "fulfilled",
          "rejected",
          "fulfilled",
          "fulfilled",
        ]);
        const records = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        // the refused batch's records were stored alone, before the append that waited behind them
        expect(records.map((r) => [r.seq, r.data.i])).toEqual([
          [before + 1, 0],
          [before + 2, 1],
          [before + 3, 3],
          [before + 4, 4],
        ]);
        expect(await log.verify()).toMatchObject({ ok: true, records: before + 4 });
      });
    });

    it("raises no false alarm when verifying while others append", async () => {
      const stores = h.second ? [h.store, await h.second()] : [h.store];
      const logs = stores.map((s) => openLog({ repo: s.audit, signer, checkpointEvery: 10 }));
      const writing = (async () => {
        for (let round = 0; round < 20; round++) {
          await Promise.all(
            Array.from({ length: 10 }, (_, i) => logs[i % logs.length]!.append("decision", { round, i })),
          );
        }
      })();
      const reports = [];
      for (let i = 0; i < 8; i++) reports.push(await logs[i % logs.length]!.verify({ pageSize: 16 }));
      await writing;
      for (const report of reports) expect(report.firstBad).toBeUndefined();
      expect(await logs[0]!.verify()).toMatchObject({ ok: true, records: 200 });
    });

    it("keeps one chain when two stores append at once", async () => {
      const stores = h.second ? [h.store, await h.second()] : [h.store];
      const logs = stores.map((s) => openLog({ repo: s.audit, signer, checkpointEvery: 7 }));
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => logs[i % logs.length]!.append("decision", { i })),
      );
      await Promise.all(logs.map((log) => log.settled()));
      expect(await logs[0]!.verify()).toMatchObject({
        ok: true,
        records: 30,
        checkpoints: 4,
        lastCheckpointSeq: 28,
      });
    });
  });

  describe("checkpoints", () => {
    it("signs every N records and on demand", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 5 });
      for (let i = 0; i < 12; i++) await log.append("decision", { i });
      await log.settled();
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([5, 10]);
      const cp = await log.checkpoint();
      expect(cp).toMatchObject({ seq: 12, keyId: signer.kid, hash: (await log.head()).hash });
      expect(await log.verify()).toEqual({
        ok: true,
        records: 12,
        checkpoints: 3,
        lastSeq: 12,
        lastCheckpointSeq: 12,
        unsigned: 0,
      });
    });

    it("can checkpoint an empty log", async () => {
      const log = openLog({ repo: h.store.audit, signer });
      expect(await log.checkpoint()).toMatchObject({ seq: 0, hash: GENESIS_HASH });
      expect(await log.verify()).toMatchObject({ ok: true, checkpoints: 1, lastSeq: 0 });
    });

    it("needs a signing key", async () => {
      const log = openLog({ repo: h.store.audit });
      expect(await codeOf(log.checkpoint())).toBe(ERR_AUDIT_NO_SIGNING_KEY);
    });

    it("refuses to vouch for damage", async () => {
      const failures: WritError[] = [];
      const log = openLog({
        repo: h.store.audit,
        signer,
        checkpointEvery: 5,
        onCheckpointError: (err) => failures.push(err),
      });
      for (let i = 0; i < 7; i++) await log.append("decision", { i });
      await log.settled();
      await asAttacker(h.store.db, [`update audit_records set data = '{"i": 99}'::jsonb where seq = 6`]);
      expect(await codeOf(log.checkpoint())).toBe(ERR_AUDIT_DAMAGED);
      for (let i = 0; i < 2; i++) await log.append("decision", { i });
      // the 10th record is stored and its caller answered; its periodic checkpoint is refused, and
      // the log's listener hears of it
      expect(await log.append("decision", { i: 10 })).toMatchObject({ seq: 10, data: { i: 10 } });
      await log.settled();
      expect(failures.map((e) => e.code)).toEqual([ERR_AUDIT_DAMAGED]);
      expect(failures[0]!.message).toMatch(/^record 10 was appended, but its checkpoint failed: refusing/);
      expect((await log.head()).seq).toBe(10);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([5]);
    });

    it("signs the records it appended itself without reading them back; checks them after another writer", async () => {
      const reads: string[] = [];
      const counted = (name: "records" | "latestCheckpoints" | "checkpoints" | "head" | "latest") =>
        ((...args: never[]) => {
          reads.push(name);
          return (h.store.audit[name] as (...a: never[]) => unknown)(...args);
        }) as never;
      const repo = {
        ...h.store.audit,
        records: counted("records"),
        latestCheckpoints: counted("latestCheckpoints"),
        checkpoints: counted("checkpoints"),
        head: counted("head"),
        latest: counted("latest"),
      };
      const log = openLog({ repo, signer, checkpointEvery: 5 });
      for (let i = 0; i < 10; i++) await log.append("decision", { i });
      await log.settled();
      expect(reads).toEqual([]);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([5, 10]);
      // a record this log did not write: the next checkpoint reads and checks the records first
      await openLog({ repo: h.store.audit }).append("decision", { other: true });
      for (let i = 0; i < 4; i++) await log.append("decision", { i });
      await log.settled();
      expect(reads).toContain("records");
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([5, 10, 15]);
      // checked, the run is sound again: the next one reads nothing
      reads.length = 0;
      for (let i = 0; i < 5; i++) await log.append("decision", { i });
      await log.settled();
      expect(reads).toEqual([]);
      expect(await log.verify()).toMatchObject({ ok: true, records: 20, checkpoints: 4 });
    });

    /** The store's audit repository, its lone checkpoint inserts and its checkpoint rides counted. */
    const countedCheckpoints = () => {
      const inserts: number[] = [];
      const rides: number[] = [];
      let rideOffered: () => void = () => {};
      const offered = new Promise<void>((resolve) => {
        rideOffered = resolve;
      });
      const repo = {
        ...h.store.audit,
        addCheckpoint: (cp: Parameters<typeof h.store.audit.addCheckpoint>[0]) => {
          inserts.push(cp.seq);
          return h.store.audit.addCheckpoint(cp);
        },
        rideCheckpoint: (cp: Parameters<typeof h.store.audit.addCheckpoint>[0], waitMs: number) => {
          const riding = h.store.audit.rideCheckpoint(cp, waitMs);
          if (riding !== undefined) rides.push(cp.seq);
          rideOffered();
          return riding;
        },
      };
      return { repo, inserts, rides, offered };
    };

    it("stores a periodic checkpoint in the next append's commit on the embedded store, not an insert of its own", async () => {
      const { repo, inserts, rides, offered } = countedCheckpoints();
      const log = openLog({ repo, signer, checkpointEvery: 5 });
      for (let i = 0; i < 5; i++) await log.append("decision", { i });
      await offered;
      const sixth = await log.append("decision", { i: 5 });
      expect(sixth.seq).toBe(6);
      await log.settled();
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([5]);
      // PostgreSQL has a pool, not one connection on this thread: the checkpoint goes alone
      expect({ inserts, rides }).toEqual(
        h.name === "pglite" ? { inserts: [], rides: [5] } : { inserts: [5], rides: [] },
      );
      expect(await log.verify()).toMatchObject({
        ok: true,
        records: 6,
        checkpoints: 1,
        lastCheckpointSeq: 5,
      });
    });

    it("stores a riding checkpoint alone when no append comes; settled() waits for it", async () => {
      const { repo, rides, offered } = countedCheckpoints();
      const log = openLog({ repo, signer, checkpointEvery: 3 });
      for (let i = 0; i < 3; i++) await log.append("decision", { i });
      await offered;
      // no append follows: within the wait it is stored on its own, without settled()
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([3]);
      expect(rides).toEqual(h.name === "pglite" ? [3] : []);
      // the next one is stored by the time settled() resolves, riding or not
      for (let i = 0; i < 3; i++) await log.append("decision", { i });
      await log.settled();
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([3, 6]);
      expect(await log.verify()).toMatchObject({ ok: true, records: 6, checkpoints: 2 });
    });

    it("stores a riding checkpoint alone when the append it rode with failed; the append's error is its own", async () => {
      if (h.name !== "pglite") return; // only the embedded store carries checkpoints
      const { repo, rides, offered } = countedCheckpoints();
      const log = openLog({ repo, signer, checkpointEvery: 2 });
      await log.append("decision", { i: 0 });
      await log.append("decision", { i: 1 });
      await offered;
      // an append the database refuses (its companion writ's id is taken) fails the trip the
      // checkpoint rides in: nothing of it is committed
      const taken = newWrit("taken");
      await h.store.writs.insert(taken);
      const refused = log.append("broker.writ_issued", { writ: taken.id }, { with: writRow(taken) });
      expect(await codeOf(refused)).toBe("ERR_STORE");
      await log.settled();
      expect(rides).toEqual([2]);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([2]);
      expect(await log.verify()).toMatchObject({ ok: true, records: 2, checkpoints: 1 });
    });

    it("takes an explicit checkpoint alongside a periodic one: both stored, in order", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 2 });
      const records = await Promise.all([1, 2, 3].map((i) => log.append("decision", { i })));
      expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect((await log.checkpoint()).seq).toBe(3);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([2, 3]);
      await log.settled();
      expect(await log.verify()).toMatchObject({ ok: true, checkpoints: 2, lastCheckpointSeq: 3 });
    });

    it("refuses to build on a forged checkpoint of its own key", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 0 });
      for (let i = 0; i < 3; i++) await log.append("decision", { i });
      await log.checkpoint();
      await asAttacker(h.store.db, [`update audit_checkpoints set signature = signature || 'x'`]);
      await log.append("decision", { i: 4 });
      expect(await codeOf(log.checkpoint())).toBe(ERR_AUDIT_DAMAGED);
    });

    it("trusts checkpoints of every key it is given", async () => {
      const a = openLog({ repo: h.store.audit, signer, checkpointEvery: 0 });
      const b = openLog({ repo: h.store.audit, signer: otherSigner, checkpointEvery: 0 });
      await a.append("decision", { i: 1 });
      await a.checkpoint();
      await b.append("decision", { i: 2 });
      await b.checkpoint();
      expect(await a.verify({ trustedKeys: [signer.trusted, otherSigner.trusted] })).toMatchObject({
        ok: true,
        checkpoints: 2,
      });
      expect((await a.verify()).firstBad).toMatchObject({ problem: "bad-checkpoint", seq: 2 });
    });
  });

  describe("reading", () => {
    it("tails the latest records", async () => {
      const log = openLog({ repo: h.store.audit });
      for (let i = 0; i < 5; i++) await log.append("decision", { i });
      expect((await log.tail(3)).map((r) => r.data.i)).toEqual([2, 3, 4]);
      expect(await log.tail(0)).toEqual([]);
    });

    it("follows new records until aborted", async () => {
      const log = openLog({ repo: h.store.audit });
      await log.append("decision", { i: 0 });
      const controller = new AbortController();
      const seen: number[] = [];
      const following = (async () => {
        for await (const record of log.follow({ intervalMs: 20, signal: controller.signal })) {
          seen.push(record.data.i as number);
          if (seen.length === 3) controller.abort();
        }
      })();
      for (let i = 1; i <= 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        await log.append("decision", { i });
      }
      await following;
      expect(seen).toEqual([1, 2, 3]);
    });
  });

  describe("export", () => {
    it("exports a document that verifies offline with the trusted key only", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 4 });
      for (let i = 0; i < 10; i++) await log.append("decision", { i, token: `t-${i}` });
      await log.settled();
      const doc = await log.export();
      expect(doc).toMatchObject({ format: "writ-audit-export", version: 1, head: await log.head() });
      expect(doc.records).toHaveLength(10);
      expect(doc.checkpoints.map((c) => c.seq)).toEqual([4, 8]);
      expect(doc.publicKeys).toEqual([signer.publicJwk]);

      const copy = JSON.parse(JSON.stringify(doc));
      expect(await verifyExport(copy, [signer.trusted])).toMatchObject({
        ok: true,
        records: 10,
        checkpoints: 2,
      });
      // the keys inside the document are not trusted
      expect((await verifyExport(copy, [])).firstBad).toMatchObject({ problem: "bad-checkpoint", seq: 4 });
    });

    it("streams the same document as JSON text", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 3 });
      for (let i = 0; i < 7; i++) await log.append("decision", { i });
      await log.settled();
      let text = "";
      const counts = await log.exportJson((chunk) => {
        text += chunk;
      });
      expect(counts).toEqual({ records: 7, checkpoints: 2 });
      const streamed = JSON.parse(text);
      const built = await log.export();
      expect({ ...streamed, exportedAt: "" }).toEqual({
        ...JSON.parse(JSON.stringify(built)),
        exportedAt: "",
      });
      expect(await verifyExport(streamed, [signer.trusted])).toMatchObject({ ok: true, records: 7 });
    });

    it("finds damage done to an exported file", async () => {
      const log = openLog({ repo: h.store.audit, signer, checkpointEvery: 4 });
      for (let i = 0; i < 10; i++) await log.append("decision", { i });
      await log.settled();
      const doc = JSON.parse(JSON.stringify(await log.export()));
      const damage = async (mutate: (d: typeof doc) => void) => {
        const copy = structuredClone(doc);
        mutate(copy);
        return (await verifyExport(copy, [signer.trusted])).firstBad;
      };
      expect(await damage((d) => (d.records[5].data.i = 99))).toMatchObject({ problem: "edited", seq: 6 });
      expect(await damage((d) => d.records.splice(3, 1))).toMatchObject({ problem: "deleted", seq: 4 });
      expect(await damage((d) => d.records.splice(8))).toMatchObject({ problem: "truncated", seq: 9 });
      expect(await damage((d) => d.records.push({ ...d.records[9] }))).toMatchObject({
        problem: "inserted",
        seq: 10,
      });
      expect(await damage((d) => (d.records[2].at = "2030-01-01T00:00:00Z"))).toMatchObject({
        problem: "edited",
        seq: 3,
      });
      expect(await damage((d) => (d.checkpoints[1].hash = d.records[0].hash))).toMatchObject({
        problem: "bad-checkpoint",
        seq: 8,
      });
      // order in the file does not matter: seq does
      expect(await damage((d) => d.records.reverse())).toBeUndefined();
    });

    it.each([
      ["not an object", "export"],
      ["another format", { format: "other", version: 1 }],
      [
        "a record without a seq",
        {
          format: "writ-audit-export",
          version: 1,
          head: { seq: 0, hash: "" },
          records: [{}],
          checkpoints: [],
        },
      ],
    ])("refuses %s as ERR_AUDIT_EXPORT_INVALID", async (_label, doc) => {
      expect(await codeOf(verifyExport(doc, []))).toBe(ERR_AUDIT_EXPORT_INVALID);
    });
  });
});

describe("audit log (no database)", () => {
  it("checks its options", () => {
    expect(() => openAuditLog({ repo: {} as never, checkpointEvery: -1 })).toThrow(TypeError);
  });
});
