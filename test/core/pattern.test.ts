import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isWritError } from "../../src/core/index.js";
import {
  escapeGlob,
  globContains,
  globIntersects,
  globMatches,
  MAX_PATTERN_LENGTH,
  parseGlob,
} from "../../src/core/pattern.js";

describe("glob matching", () => {
  it.each([
    ["*", "", true],
    ["*", "a/b:c", true],
    ["a*", "abc", true],
    ["a*", "ba", false],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["get|list", "list", true],
    ["get|list", "watch", false],
    ["arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y", true],
    ["a\\*", "a*", true],
    ["a\\*", "ab", false],
    ["a\\|b", "a|b", true],
    ["a\\|b", "a", false],
    ["*a*a*a*a*a*b", "a".repeat(5000), false],
  ])("%s on %s is %s", (pattern, subject, want) => {
    expect(globMatches(parseGlob(pattern), subject)).toBe(want);
  });

  it("rejects a dangling escape and empty alternatives with codes", () => {
    for (const [p, code] of [
      ["a\\d", "ERR_PATTERN_ESCAPE"],
      ["a||b", "ERR_PATTERN_EMPTY"],
      ["", "ERR_PATTERN_EMPTY"],
    ] as const) {
      try {
        parseGlob(p);
        expect.fail(`${p} parsed`);
      } catch (e) {
        expect(isWritError(e, code)).toBe(true);
      }
    }
  });

  it("escaping makes any value literal", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", "*", "?", "|", "\\", "/"), minLength: 1 }), (s) => {
        const g = parseGlob(escapeGlob(s));
        expect(g.literal).toBe(true);
        expect(globMatches(g, s)).toBe(true);
        expect(globMatches(g, `${s}x`)).toBe(false);
      }),
    );
  });

  it("stays fast on hostile input", () => {
    const g = parseGlob(`${"*a".repeat(20)}*b`);
    // backtracking over 21 stars would take ~20,000^20 steps: the answer coming at all is the check
    expect(globMatches(g, "a".repeat(20_000))).toBe(false);
  });
});

// Small alphabet so that random patterns and strings actually interact.
const atom = fc.constantFrom("a", "b", "*", "?");
const pattern = fc.array(atom, { minLength: 1, maxLength: 5 }).map((xs) => xs.join(""));
const word = fc.array(fc.constantFrom("a", "b"), { maxLength: 10 }).map((xs) => xs.join(""));

function allWords(max: number): string[] {
  const out = [""];
  for (let len = 1; len <= max; len++) {
    const prev = out.filter((w) => w.length === len - 1);
    for (const w of prev) out.push(`${w}a`, `${w}b`);
  }
  return out;
}
const WORDS = allWords(10);

describe("containment and overlap", () => {
  it("containment is sound: whatever p matches, q matches", () => {
    fc.assert(
      fc.property(pattern, pattern, word, (p, q, w) => {
        const P = parseGlob(p);
        const Q = parseGlob(q);
        if (globContains(Q, P) && globMatches(P, w)) expect(globMatches(Q, w)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("containment is complete on these shapes: when no short word separates them, it says so", () => {
    fc.assert(
      fc.property(pattern, pattern, (p, q) => {
        const P = parseGlob(p);
        const Q = parseGlob(q);
        const separated = WORDS.some((w) => globMatches(P, w) && !globMatches(Q, w));
        if (separated) expect(globContains(Q, P)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it("overlap is exact: it says yes exactly when a word matches both", () => {
    fc.assert(
      fc.property(pattern, pattern, (p, q) => {
        const P = parseGlob(p);
        const Q = parseGlob(q);
        const witness = WORDS.some((w) => globMatches(P, w) && globMatches(Q, w));
        // a shortest common word needs at most |p| + |q| letters: 10 here
        expect(globIntersects(P, Q)).toBe(witness);
      }),
      { numRuns: 1500 },
    );
  });

  it("handles alternatives on both sides", () => {
    expect(globContains(parseGlob("a*|b*"), parseGlob("ab|ba"))).toBe(true);
    expect(globContains(parseGlob("a*"), parseGlob("ab|ba"))).toBe(false);
    expect(globIntersects(parseGlob("x|a*"), parseGlob("b|ab"))).toBe(true);
  });
});

describe("patterns at the length limit (issue 10)", () => {
  const longest = (unit: string) => unit.repeat(MAX_PATTERN_LENGTH / unit.length);

  it("compares two of the longest patterns without running out of stack", () => {
    // every step of the comparison moves one position forward: 8,192 steps deep, done in a loop
    const p = parseGlob(longest("a"));
    const q = parseGlob(longest("?"));
    expect(globContains(q, p)).toBe(true);
    expect(globContains(p, q)).toBe(false);
    expect(globIntersects(p, q)).toBe(true);
    const stars = parseGlob(longest("*a"));
    expect(globContains(stars, p)).toBe(true);
    expect(globIntersects(stars, parseGlob(longest("b")))).toBe(false);
  });

  it("refuses a pattern longer than the limit with a code", () => {
    expect(() => parseGlob("a".repeat(MAX_PATTERN_LENGTH + 1))).toThrowError(
      expect.objectContaining({ code: "ERR_PATTERN_TOO_LONG" }),
    );
    expect(() => parseGlob("a|".repeat(5000).slice(0, -1))).toThrowError(
      expect.objectContaining({ code: "ERR_PATTERN_TOO_LONG" }),
    );
  });
});
