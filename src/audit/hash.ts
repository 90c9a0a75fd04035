/**
 * The chain. Each record's hash is
 *
 *   hash = hex(sha256(canonicalJson({ seq, at, type, data, prev })))
 *
 * with `at` as an ISO 8601 UTC string with milliseconds (`Date#toISOString`) and `prev` the hash of
 * the record before (64 zeros for the first). Changing any field, or moving a record to another
 * seq, changes its hash; changing a hash breaks the `prev` of the record after it.
 */
import { hash } from "node:crypto";
import { GENESIS_HASH } from "../store/index.js";
import { canonicalJson } from "./canonical.js";

export { GENESIS_HASH };

export interface HashInput {
  readonly seq: number;
  readonly at: Date;
  readonly type: string;
  readonly data: unknown;
  readonly prevHash: string;
}

export function sha256Hex(text: string): string {
  // one call, no Hash object: a third of createHash's time for a record's few hundred bytes
  return hash("sha256", text, "hex");
}

/** The hash of a record. Throws (TypeError/RangeError) when a field cannot be hashed. */
export function recordHash(record: HashInput): string {
  return sha256Hex(
    canonicalJson({
      seq: record.seq,
      at: record.at.toISOString(),
      type: record.type,
      data: record.data,
      prev: record.prevHash,
    }),
  );
}

/**
 * `recordHash` for a record whose data is already canonical JSON text (`canonicalJson(data)`): the
 * same bytes — the members in their sorted order, at, data, prev, seq, type — without walking the
 * data a second time.
 */
export function recordHashOfCanonical(record: Omit<HashInput, "data">, canonicalData: string): string {
  return sha256Hex(
    `{"at":${JSON.stringify(record.at.toISOString())},"data":${canonicalData},"prev":${JSON.stringify(record.prevHash)},"seq":${canonicalJson(record.seq)},"type":${JSON.stringify(record.type)}}`,
  );
}

/** The hash a record would have at another seq, or undefined when the record cannot be hashed. */
export function hashAt(record: HashInput, seq: number): string | undefined {
  try {
    return recordHash({ ...record, seq });
  } catch {
    return undefined;
  }
}
