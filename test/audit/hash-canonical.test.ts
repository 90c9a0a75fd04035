/**
 * The append path hashes the canonical JSON it already measured (`recordHashOfCanonical`); it must
 * give the very hash `recordHash` — the one verification recomputes — for any record.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { recordHashOfCanonical } from "../../src/audit/hash.js";
import { canonicalJson, recordHash, toJsonValue } from "../../src/audit/index.js";

describe("recordHashOfCanonical", () => {
  it("is recordHash for any data, seq, time, type and prev", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.date({ min: new Date(0), max: new Date("2999-12-31T00:00:00Z"), noInvalidDate: true }),
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        (value, seq, at, type, prevHash) => {
          const data = toJsonValue({ value });
          expect(recordHashOfCanonical({ seq, at, type, prevHash }, canonicalJson(data))).toBe(
            recordHash({ seq, at, type, data, prevHash }),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
