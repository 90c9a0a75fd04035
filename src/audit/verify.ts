/**
 * Verification: walk the whole chain in pages and name the first damage.
 *
 * For each record, in seq order, with `expected` the next seq and `prev` the hash of the record
 * before:
 *
 *   - seq > expected                       → `deleted` at `expected` (a gap)
 *   - seq < expected (a second copy)       → `inserted`
 *   - hash ok and prev_hash = prev         → fine
 *   - hash ok, prev_hash ≠ prev            → the record before was changed after this one was
 *                                             written (`edited` at seq − 1), unless the record that
 *                                             was written at this seq sits further on (`inserted`)
 *   - hash does not match the record       → was it written at another seq k? (searched ±256)
 *       k < seq                            → records were inserted at k, the rest pushed up (`inserted`)
 *       k > seq, the original of seq later → `reordered`
 *       k > seq, otherwise                 → `deleted` (records removed and the rest renumbered)
 *       nowhere, the original of seq later → `inserted`
 *       nowhere                            → `edited`
 *
 * Checkpoints are checked as their seq is reached: the signature must verify with a trusted key
 * and cover the row, and the signed hash must be the chain's hash at that seq (`bad-checkpoint`
 * otherwise — which is how a chain recomputed without the key is caught). At the end, inside one
 * read-only snapshot, the head must name the last record (`truncated` if it is beyond, `inserted`
 * if records lie beyond it, `edited` if its hash differs), and no valid checkpoint may lie beyond
 * the last record (`truncated`).
 *
 * What it cannot see: records appended after the last checkpoint by someone who also moves the
 * head (only a later checkpoint or an export held elsewhere covers them), and deleted checkpoints.
 */
import type { AuditHead, AuditReader, AuditRow, CheckpointRow } from "../store/index.js";
import { checkpointProblem, keyring } from "./checkpoint.js";
import { GENESIS_HASH, hashAt } from "./hash.js";
import type { TrustedKey } from "./keys.js";

export type Problem = "edited" | "deleted" | "inserted" | "reordered" | "truncated" | "bad-checkpoint";

export interface Damage {
  /** The first bad record: see the module comment for which seq each problem names. */
  readonly seq: number;
  readonly problem: Problem;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Records checked (up to the first damage). */
  readonly records: number;
  /** Checkpoints whose signature and hash were confirmed. */
  readonly checkpoints: number;
  /** The seq of the last record checked. */
  readonly lastSeq: number;
  /** The highest confirmed checkpoint, if any. */
  readonly lastCheckpointSeq: number | undefined;
  /** Records after the last confirmed checkpoint: protected by the chain and the head only. */
  readonly unsigned: number;
  readonly firstBad?: Damage;
}

/** What verification reads: the store's audit repository, or an export document in memory. */
export type ChainReader = Pick<AuditReader, "head" | "records" | "checkpoints">;
export interface ChainSource extends ChainReader {
  /** Runs `fn` on one consistent snapshot. */
  snapshot<T>(fn: (reader: ChainReader) => Promise<T>): Promise<T>;
}

export interface VerifyOptions {
  /** Public keys checkpoints may be signed with; nothing else is trusted. */
  readonly trustedKeys: readonly TrustedKey[];
  /** Records read per query (default 1000). */
  readonly pageSize?: number | undefined;
}

/** How far from its seq a moved record is looked for. */
const WINDOW = 256;

function findOrigin(row: AuditRow): number | undefined {
  const low = Math.max(1, row.seq - WINDOW);
  for (let k = low; k <= row.seq + WINDOW; k++) {
    if (k !== row.seq && hashAt(row, k) === row.hash) return k;
  }
  return undefined;
}

/** The record further on that was written at `seq`, if any. */
async function originalOf(reader: ChainReader, seq: number): Promise<AuditRow | undefined> {
  const later = await reader.records(seq, WINDOW);
  return later.find((row) => hashAt(row, seq) === row.hash);
}

/** The damage a record shows at its place in the walk, or undefined when it is sound. */
export async function classify(
  reader: ChainReader,
  row: AuditRow,
  expected: number,
  prevHash: string,
): Promise<Damage | undefined> {
  if (row.seq > expected) {
    const missing =
      row.seq === expected + 1 ? `record ${expected} is` : `records ${expected}..${row.seq - 1} are`;
    return {
      seq: expected,
      problem: "deleted",
      message: `${missing} missing: the next record is ${row.seq}`,
    };
  }
  if (row.seq < expected) {
    return { seq: row.seq, problem: "inserted", message: `a second record with seq ${row.seq}` };
  }
  const selfOk = hashAt(row, row.seq) === row.hash;
  const linked = row.prevHash === prevHash;
  if (selfOk && linked) return undefined;

  if (selfOk) {
    const original = await originalOf(reader, row.seq);
    if (original !== undefined) {
      return {
        seq: row.seq,
        problem: "inserted",
        message: `record ${row.seq} was not appended by the log: the record written as ${row.seq} now sits at ${original.seq}`,
      };
    }
    if (row.seq === 1) {
      return {
        seq: 1,
        problem: "edited",
        message: "record 1 does not start the chain: its prev_hash is not the genesis hash",
      };
    }
    return {
      seq: row.seq - 1,
      problem: "edited",
      message: `record ${row.seq - 1} was changed after record ${row.seq} was written: its hash is not the prev_hash record ${row.seq} holds`,
    };
  }

  const origin = findOrigin(row);
  if (origin !== undefined && origin < row.seq) {
    const n = row.seq - origin;
    return {
      seq: origin,
      problem: "inserted",
      message: `record ${row.seq} was written as ${origin}: ${n === 1 ? "a record was" : `${n} records were`} inserted at ${origin}`,
    };
  }
  const original = await originalOf(reader, row.seq);
  if (origin !== undefined) {
    if (original !== undefined) {
      return {
        seq: row.seq,
        problem: "reordered",
        message: `record ${row.seq} holds the record written as ${origin}, and the one written as ${row.seq} sits at ${original.seq}`,
      };
    }
    const range = origin - 1 === row.seq ? `record ${row.seq} was` : `records ${row.seq}..${origin - 1} were`;
    return {
      seq: row.seq,
      problem: "deleted",
      message: `${range} deleted and the later records renumbered: record ${row.seq} was written as ${origin}`,
    };
  }
  if (original !== undefined) {
    return {
      seq: row.seq,
      problem: "inserted",
      message: `record ${row.seq} was not appended by the log: the record written as ${row.seq} now sits at ${original.seq}`,
    };
  }
  return {
    seq: row.seq,
    problem: "edited",
    message: `record ${row.seq} does not match its hash: its content was changed`,
  };
}

/** Walks the whole log. Never throws for damage; throws only when the source fails. */
export async function verifyChain(source: ChainSource, options: VerifyOptions): Promise<VerifyReport> {
  const keys = keyring(options.trustedKeys);
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new TypeError("pageSize must be a positive integer");

  let expected = 1;
  let prevHash = GENESIS_HASH;
  let records = 0;
  let checkpoints = 0;
  let lastCheckpointSeq: number | undefined;

  const report = (damage: Damage | undefined): VerifyReport => {
    const lastSeq = expected - 1;
    return {
      ok: damage === undefined,
      records,
      checkpoints,
      lastSeq,
      lastCheckpointSeq,
      unsigned: lastSeq - (lastCheckpointSeq ?? 0),
      ...(damage === undefined ? {} : { firstBad: damage }),
    };
  };

  const checkCheckpoint = async (
    checkpoint: CheckpointRow,
    chainHash: string,
  ): Promise<Damage | undefined> => {
    const problem = await checkpointProblem(checkpoint, keys);
    if (problem !== undefined) return { seq: checkpoint.seq, problem: "bad-checkpoint", message: problem };
    if (checkpoint.hash !== chainHash) {
      return {
        seq: checkpoint.seq,
        problem: "bad-checkpoint",
        message: `checkpoint ${checkpoint.seq} (key \`${checkpoint.keyId}\`) signed another hash than the chain has at ${checkpoint.seq}: the log up to ${checkpoint.seq} was rewritten`,
      };
    }
    checkpoints += 1;
    lastCheckpointSeq = Math.max(lastCheckpointSeq ?? 0, checkpoint.seq);
    return undefined;
  };

  const walk = async (reader: ChainReader): Promise<Damage | undefined> => {
    for (;;) {
      const after = expected - 1;
      const rows = await reader.records(after, pageSize);
      if (rows.length === 0) return undefined;
      const pagePoints = await reader.checkpoints(after, rows[rows.length - 1]!.seq);
      let next = 0;
      for (const row of rows) {
        const damage = await classify(reader, row, expected, prevHash);
        if (damage !== undefined) return damage;
        records += 1;
        expected = row.seq + 1;
        prevHash = row.hash;
        for (; next < pagePoints.length && pagePoints[next]!.seq <= row.seq; next++) {
          const checkpoint = pagePoints[next]!;
          const bad =
            checkpoint.seq === row.seq
              ? await checkCheckpoint(checkpoint, row.hash)
              : {
                  seq: checkpoint.seq,
                  problem: "bad-checkpoint" as const,
                  message: `checkpoint ${checkpoint.seq} names a record that does not exist`,
                };
          if (bad !== undefined) return bad;
        }
      }
      if (rows.length < pageSize) return undefined;
    }
  };

  for (const checkpoint of await source.checkpoints(-1, 0)) {
    const bad = await checkCheckpoint(checkpoint, GENESIS_HASH);
    if (bad !== undefined) return report(bad);
  }
  const early = await walk(source);
  if (early !== undefined) return report(early);

  const late = await source.snapshot(async (reader): Promise<Damage | undefined> => {
    const more = await walk(reader);
    if (more !== undefined) return more;
    const head = await reader.head();
    const lastSeq = expected - 1;
    if (lastSeq > head.seq) {
      const beyond =
        lastSeq === head.seq + 1 ? `record ${lastSeq} lies` : `records ${head.seq + 1}..${lastSeq} lie`;
      return {
        seq: head.seq + 1,
        problem: "inserted",
        message: `${beyond} beyond the head (seq ${head.seq}): not appended by the log`,
      };
    }
    if (lastSeq < head.seq) {
      return {
        seq: lastSeq + 1,
        problem: "truncated",
        message: `the head names seq ${head.seq} but the last record is ${lastSeq}: records ${lastSeq + 1}..${head.seq} are gone`,
      };
    }
    if (head.hash !== prevHash) {
      return {
        seq: lastSeq,
        problem: "edited",
        message:
          lastSeq === 0
            ? "the head of an empty log is not the genesis hash"
            : `record ${lastSeq} (or the head) was changed after it was appended: the head holds another hash`,
      };
    }
    let forged: Damage | undefined;
    for (const checkpoint of await reader.checkpoints(lastSeq, undefined, 100)) {
      const problem = await checkpointProblem(checkpoint, keys);
      if (problem === undefined) {
        return {
          seq: lastSeq + 1,
          problem: "truncated",
          message: `checkpoint ${checkpoint.seq} (key \`${checkpoint.keyId}\`) was signed when the log reached seq ${checkpoint.seq}, but the last record is ${lastSeq}`,
        };
      }
      forged ??= { seq: checkpoint.seq, problem: "bad-checkpoint", message: problem };
    }
    return forged;
  });
  return report(late);
}

/**
 * Checks the records between two known points (exclusive `from`, inclusive `to`): used before
 * signing a checkpoint, so a checkpoint never vouches for damage.
 */
export async function verifySegment(
  reader: ChainReader,
  from: AuditHead,
  to: AuditHead,
  pageSize = 1000,
): Promise<Damage | undefined> {
  let expected = from.seq + 1;
  let prevHash = from.hash;
  while (expected <= to.seq) {
    const rows = await reader.records(expected - 1, Math.min(pageSize, to.seq - expected + 1));
    if (rows.length === 0) {
      return { seq: expected, problem: "truncated", message: `record ${expected} is missing` };
    }
    for (const row of rows) {
      const damage = await classify(reader, row, expected, prevHash);
      if (damage !== undefined) return damage;
      expected = row.seq + 1;
      prevHash = row.hash;
    }
  }
  if (prevHash !== to.hash) {
    return {
      seq: to.seq,
      problem: "edited",
      message: `record ${to.seq} does not have the hash the head holds`,
    };
  }
  return undefined;
}
