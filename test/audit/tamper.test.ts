/**
 * Damage done directly in the database, as someone with SQL access would, and what verify() says.
 * The log: 25 records, checkpoints every 10 (at 10 and 20).
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CompactSign, calculateJwkThumbprint } from "jose";
import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type AuditLog,
  type AuditSigner,
  CHECKPOINT_TYPE,
  canonicalJson,
  loadSigningKey,
  openAuditLog,
  type Problem,
  recordHash,
} from "../../src/audit/index.js";
import type { AuditRow } from "../../src/store/index.js";
import { asAttacker, forEachBackend, type Harness, resetAudit } from "../store/backends.js";

const RECORDS = 25;
const EVERY = 10;

interface Ctx {
  readonly h: Harness;
  readonly log: AuditLog;
  rows(): Promise<AuditRow[]>;
  /** Writes rows back as given (seq, fields, hashes), replacing the whole table, and sets the head. */
  replaceAll(rows: readonly AuditRow[], head?: { seq: number; hash: string }): Promise<void>;
}

function rehash(rows: readonly AuditRow[], from: number): AuditRow[] {
  const out: AuditRow[] = [];
  for (const row of rows) {
    if (row.seq < from) {
      out.push(row);
      continue;
    }
    const prevHash = out.length === 0 ? row.prevHash : out[out.length - 1]!.hash;
    const fixed = { ...row, prevHash };
    out.push({ ...fixed, hash: recordHash(fixed) });
  }
  return out;
}

function renumber(rows: readonly AuditRow[]): AuditRow[] {
  return rows.map((row, i) => ({ ...row, seq: i + 1 }));
}

interface Case {
  readonly name: string;
  readonly tamper: (ctx: Ctx) => Promise<void>;
  readonly problem: Problem;
  readonly seq: number;
}

const cases: Case[] = [
  {
    name: "edit a record's data",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [`update audit_records set data = '{"n": 999}'::jsonb where seq = 7`]),
    problem: "edited",
    seq: 7,
  },
  {
    name: "edit a record's time",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [`update audit_records set at = at + interval '1 millisecond' where seq = 13`]),
    problem: "edited",
    seq: 13,
  },
  {
    name: "edit a record and recompute its own hash",
    async tamper(ctx) {
      const row = (await ctx.rows()).find((r) => r.seq === 7)!;
      const forged = { ...row, data: { n: 999 } };
      const hash = recordHash(forged);
      await asAttacker(ctx.h.store.db, async (trx) => {
        await sql`update audit_records set data = ${JSON.stringify(forged.data)}::jsonb, hash = ${hash} where seq = 7`.execute(
          trx,
        );
      });
    },
    problem: "edited",
    seq: 7,
  },
  {
    name: "edit the last record and recompute its hash",
    async tamper(ctx) {
      const row = (await ctx.rows()).find((r) => r.seq === RECORDS)!;
      const hash = recordHash({ ...row, type: "forged.event" });
      await asAttacker(ctx.h.store.db, async (trx) => {
        await sql`update audit_records set type = 'forged.event', hash = ${hash} where seq = ${RECORDS}`.execute(
          trx,
        );
      });
    },
    problem: "edited",
    seq: RECORDS,
  },
  {
    name: "change only the head's hash",
    tamper: ({ h }) => asAttacker(h.store.db, [`update audit_head set hash = '${"f".repeat(64)}'`]),
    problem: "edited",
    seq: RECORDS,
  },
  {
    name: "delete a middle record",
    tamper: ({ h }) => asAttacker(h.store.db, ["delete from audit_records where seq = 12"]),
    problem: "deleted",
    seq: 12,
  },
  {
    name: "delete a middle record and renumber the rest",
    async tamper(ctx) {
      const rows = renumber((await ctx.rows()).filter((r) => r.seq !== 12));
      await ctx.replaceAll(rows, { seq: rows.length, hash: rows[rows.length - 1]!.hash });
    },
    problem: "deleted",
    seq: 12,
  },
  {
    name: "insert a forged record after the head",
    async tamper(ctx) {
      const last = (await ctx.rows()).at(-1)!;
      const forged = {
        seq: last.seq + 1,
        at: new Date(),
        type: "forged.event",
        data: { n: -1 },
        prevHash: last.hash,
      };
      await ctx.replaceAll([...(await ctx.rows()), { ...forged, hash: recordHash(forged) }]);
    },
    problem: "inserted",
    seq: RECORDS + 1,
  },
  {
    name: "insert a forged record in the middle, pushing the rest up",
    async tamper(ctx) {
      const rows = await ctx.rows();
      const before = rows.find((r) => r.seq === 7)!;
      const forged = { seq: 8, at: new Date(), type: "forged.event", data: { n: -1 }, prevHash: before.hash };
      const shifted = rows.map((r) => (r.seq >= 8 ? { ...r, seq: r.seq + 1 } : r));
      const all = [...shifted, { ...forged, hash: recordHash(forged) }].sort((a, b) => a.seq - b.seq);
      await ctx.replaceAll(all, { seq: all.length, hash: all[all.length - 1]!.hash });
    },
    problem: "inserted",
    seq: 8,
  },
  {
    name: "swap two adjacent records",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [
        "update audit_records set seq = 1000005 where seq = 5",
        "update audit_records set seq = 5 where seq = 6",
        "update audit_records set seq = 6 where seq = 1000005",
      ]),
    problem: "reordered",
    seq: 5,
  },
  {
    name: "swap two distant records",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [
        "update audit_records set seq = 1000004 where seq = 4",
        "update audit_records set seq = 4 where seq = 17",
        "update audit_records set seq = 17 where seq = 1000004",
      ]),
    problem: "reordered",
    seq: 4,
  },
  {
    name: "truncate the tail",
    tamper: ({ h }) => asAttacker(h.store.db, ["delete from audit_records where seq > 22"]),
    problem: "truncated",
    seq: 23,
  },
  {
    name: "truncate the tail and move the head back",
    async tamper(ctx) {
      const rows = (await ctx.rows()).filter((r) => r.seq <= 15);
      await ctx.replaceAll(rows, { seq: 15, hash: rows.at(-1)!.hash });
    },
    problem: "truncated",
    seq: 16,
  },
  {
    name: "forge a checkpoint signature",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [
        `update audit_checkpoints set signature = substr(signature, 1, length(signature) - 6) || 'AAAAAA' where seq = 10`,
      ]),
    problem: "bad-checkpoint",
    seq: 10,
  },
  {
    name: "edit a checkpoint's hash",
    tamper: ({ h }) =>
      asAttacker(h.store.db, [`update audit_checkpoints set hash = '${"a".repeat(64)}' where seq = 20`]),
    problem: "bad-checkpoint",
    seq: 20,
  },
  {
    name: "sign a checkpoint with another key",
    async tamper(ctx) {
      const { privateKey } = generateKeyPairSync("ed25519");
      const x = privateKey.export({ format: "jwk" }).x!;
      const kid = await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x });
      const row = (await ctx.rows()).find((r) => r.seq === 15)!;
      const at = new Date("2030-01-01T00:00:00.000Z");
      const signature = await new CompactSign(
        new TextEncoder().encode(canonicalJson({ at: at.toISOString(), hash: row.hash, seq: 15 })),
      )
        .setProtectedHeader({ alg: "EdDSA", kid, typ: CHECKPOINT_TYPE })
        .sign(privateKey);
      await ctx.h.store.audit.addCheckpoint({ seq: 15, hash: row.hash, at, keyId: kid, signature });
    },
    problem: "bad-checkpoint",
    seq: 15,
  },
  {
    name: "recompute the whole chain without the key",
    async tamper(ctx) {
      const rows = (await ctx.rows()).map((r) => (r.seq === 7 ? { ...r, data: { n: 999 } } : r));
      const all = rehash(rows, 7);
      await ctx.replaceAll(all, { seq: all.length, hash: all.at(-1)!.hash });
    },
    problem: "bad-checkpoint",
    seq: 10,
  },
  {
    name: "recompute the chain after the first checkpoint",
    async tamper(ctx) {
      const rows = (await ctx.rows()).map((r) => (r.seq === 14 ? { ...r, type: "forged.event" } : r));
      const all = rehash(rows, 14);
      await ctx.replaceAll(all, { seq: all.length, hash: all.at(-1)!.hash });
    },
    problem: "bad-checkpoint",
    seq: 20,
  },
];

forEachBackend("audit tamper detection", (h) => {
  let keyDir = "";
  let signer: AuditSigner;
  let log: AuditLog;
  let ctx: Ctx;

  beforeAll(async () => {
    await h.setup();
    keyDir = await mkdtemp(join(tmpdir(), "writ-keys-"));
    signer = await loadSigningKey(keyDir);
    log = openAuditLog({ repo: h.store.audit, signer, checkpointEvery: EVERY });
    ctx = {
      h,
      log,
      rows: () => h.store.audit.records(0, 1000),
      replaceAll: (rows, head) =>
        asAttacker(h.store.db, async (trx) => {
          await trx.deleteFrom("audit_records").execute();
          for (const r of rows) {
            await trx
              .insertInto("audit_records")
              .values({
                seq: r.seq,
                at: r.at,
                type: r.type,
                data: JSON.stringify(r.data),
                prev_hash: r.prevHash,
                hash: r.hash,
              })
              .execute();
          }
          if (head !== undefined)
            await trx.updateTable("audit_head").set({ seq: head.seq, hash: head.hash }).execute();
        }),
    };
  });
  afterAll(async () => {
    await h.teardown();
    await rm(keyDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await resetAudit(h.store.db);
    for (let i = 1; i <= RECORDS; i++) {
      await log.append("decision", { n: i, agent: "release-bot", decision: i % 3 === 0 ? "deny" : "allow" });
    }
    await log.settled();
  });

  it("reports an untouched log as intact", async () => {
    expect(await log.verify()).toEqual({
      ok: true,
      records: RECORDS,
      checkpoints: 2,
      lastSeq: RECORDS,
      lastCheckpointSeq: 20,
      unsigned: 5,
    });
  });

  it.each(cases)("$name → $problem at $seq", async ({ tamper, problem, seq }) => {
    await tamper(ctx);
    const report = await log.verify();
    expect(report.ok).toBe(false);
    expect(report.firstBad).toMatchObject({ problem, seq });
    expect(report.firstBad?.message).toMatch(/\S/);
  });

  it("reports an untrusted checkpoint key when verifying with other keys", async () => {
    const other = await loadSigningKey(join(keyDir, "other"));
    const report = await log.verify({ trustedKeys: [other.trusted] });
    expect(report.firstBad).toMatchObject({ problem: "bad-checkpoint", seq: 10 });
    expect(report.firstBad?.message).toContain("not trusted");
  });

  it("cannot see a rewrite after the last checkpoint, and says how many records are exposed", async () => {
    // The documented limit: records after the last checkpoint are protected by the chain and the
    // head only, which someone with SQL access and no key can both rewrite.
    const rows = (await ctx.rows()).map((r) => (r.seq === 23 ? { ...r, data: { n: 999 } } : r));
    const all = rehash(rows, 23);
    await ctx.replaceAll(all, { seq: all.length, hash: all.at(-1)!.hash });
    const report = await log.verify();
    expect(report).toMatchObject({ ok: true, unsigned: 5, lastCheckpointSeq: 20 });
    await log.checkpoint();
    expect(await log.verify()).toMatchObject({ ok: true, unsigned: 0, lastCheckpointSeq: RECORDS });
  });

  describe("damage done before the checkpoint over it is signed", () => {
    // The periodic checkpoint signs the hash the log computed for the records it appended, without
    // reading them back: damage done to the stored records in between is verify's to find.
    const upTo = async (from: number, to: number) => {
      for (let i = from; i <= to; i++) await log.append("decision", { n: i });
      await log.settled();
    };
    beforeEach(async () => {
      await resetAudit(h.store.db);
      await upTo(1, 7);
    });

    it("a record edited in place", async () => {
      await asAttacker(h.store.db, [`update audit_records set data = '{"n": 999}'::jsonb where seq = 6`]);
      await upTo(8, EVERY);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([EVERY]);
      expect((await log.verify()).firstBad).toMatchObject({ problem: "edited", seq: 6 });
    });

    it("records edited and rehashed, the head left alone", async () => {
      const rows = (await ctx.rows()).map((r) => (r.seq === 6 ? { ...r, data: { n: 999 } } : r));
      await ctx.replaceAll(rehash(rows, 6));
      await upTo(8, EVERY);
      expect((await h.store.audit.checkpoints(-1)).map((c) => c.seq)).toEqual([EVERY]);
      expect((await log.verify()).firstBad).toMatchObject({ problem: "edited", seq: 7 });
    });

    it("a record edited after the checkpoint over it", async () => {
      await upTo(8, EVERY + 2);
      await asAttacker(h.store.db, [`update audit_records set type = 'forged.event' where seq = ${EVERY}`]);
      expect((await log.verify()).firstBad).toMatchObject({ problem: "edited", seq: EVERY });
    });
  });

  it("verifies in small pages the same way", async () => {
    await asAttacker(h.store.db, ["delete from audit_records where seq = 12"]);
    expect((await log.verify({ pageSize: 3 })).firstBad).toMatchObject({ problem: "deleted", seq: 12 });
  });
});

describe("tamper cases", () => {
  it("cover every kind of damage", () => {
    const kinds = new Set(cases.map((c) => c.problem));
    expect([...kinds].sort()).toEqual([
      "bad-checkpoint",
      "deleted",
      "edited",
      "inserted",
      "reordered",
      "truncated",
    ]);
  });
});
