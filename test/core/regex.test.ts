import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isWritError, linearRegex } from "../../src/core/index.js";
import type { WritErrorCode } from "../../src/error-codes.js";

/** The same answers as the native engine, for patterns both can run. */
const SAME_AS_NATIVE: readonly [string, readonly string[]][] = [
  ["^CHG-[0-9]+$", ["CHG-1", "CHG-", "chg-1", "CHG-12a", "xCHG-1"]],
  ["^(INC|CHG)-\\d{3,5}$", ["INC-123", "CHG-12345", "CHG-123456", "INC-12", "PRB-123"]],
  ["^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", ["web", "web-1", "-web", "web-", "a", ""]],
  ["^([a-z0-9]+-)*[a-z0-9]+$", ["a-b-c", "a--b", "abc", "a-"]],
  ["[A-Z]{2,}-\\d+", ["see JIRA-42 now", "J-42", "no ticket"]],
  ["\\bfoo\\b", ["a foo b", "afoo", "foo", "foo_"]],
  ["\\Bo\\B", ["foo", "o", "oo"]],
  ["^\\p{Lu}\\p{Ll}+$", ["Émile", "émile", "E"]],
  ["^.{2}$", ["ab", "a\n", "😀😀", "a"]],
  ["^[^/]+/[^/]+$", ["owner/repo", "owner/repo/x", "/repo"]],
  ["^(?<proj>[A-Z]+)-(?:\\d+)$", ["ABC-1", "ABC-"]],
  ["a|b|", ["", "c"]],
  ["^(a|ab)(c|bcd)(d*)$", ["abcd", "abcdd", "abd"]],
  ["^\\u{1F600}\\uD83D\\uDE01?$", ["😀😁", "😀", "😁"]],
  ["^x*?y+?$", ["xxy", "y", "x"]],
  ["^[\\]\\\\-]+$", ["]\\-", "a"]],
  ["^\\x41\\u0042\\cJ\\0?$", ["AB\n", "AB\n\0", "AB"]],
  ["^(a{2}){2,3}$", ["aaaa", "aaaaaa", "aaa", "aaaaaaaa"]],
  ["^(?:a?){3}a{3}$", ["aaa", "aaaaaa", "aa"]],
  ["$^", ["", "a"]],
];

describe("linearRegex", () => {
  it.each(SAME_AS_NATIVE)("%s answers as the native engine", (source, inputs) => {
    const ours = linearRegex(source);
    const native = new RegExp(source, "u");
    for (const input of inputs) expect([input, ours.test(input)]).toEqual([input, native.test(input)]);
  });

  it("agrees with the native engine on random inputs (property)", () => {
    const patterns = [
      "^(a|b)*abb$",
      "a(b|c)+a",
      "^(ab?)*c?$",
      "b{2,3}(a|c)?",
      "^[ab]*?c[^a]{1,2}$",
      "\\ba+\\b",
      "(a*b*)*c",
    ].map((s) => [linearRegex(s), new RegExp(s, "u")] as const);
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", "b", "c", " ", "é"), maxLength: 24 }), (input) => {
        for (const [ours, native] of patterns) expect(ours.test(input)).toBe(native.test(input));
      }),
      { numRuns: 400 },
    );
  });

  // Each of these takes seconds to centuries on the native engine with this input.
  const CATASTROPHIC: readonly [string, string][] = [
    ["^(a+)+$", `${"a".repeat(2000)}!`],
    ["^(a|a)*$", `${"a".repeat(2000)}!`],
    ["^(a|aa)+$", `${"a".repeat(2000)}!`],
    ["^(\\w+\\s?)*$", `${"word ".repeat(400)}!`],
    ["^(.*a){20}$", "a".repeat(2000)],
    ["^([a-z0-9]+)*\\.$", "a".repeat(2000)],
    ["(x+x+)+y", "x".repeat(2000)],
    ["^\\d*\\d*\\d*\\d*\\d*\\d*!$", "1".repeat(2000)],
  ];
  it.each(CATASTROPHIC)(
    "%s on a hostile 2,000-character value answers within bounded time",
    (source, input) => {
      // each is exponential or high-degree polynomial for a backtracking engine on this input:
      // the answer coming at all (within the test's timeout) is the check
      const re = linearRegex(source);
      expect(re.test(input)).toBe(source === "^(.*a){20}$");
    },
  );

  const REFUSED: readonly [string, string, WritErrorCode][] = [
    ["^(a+)\\1$", "^(a+)\\1$", "ERR_REGEX_UNSUPPORTED"],
    ["^(?<x>a+)\\k<x>$", "^(?<x>a+)\\k<x>$", "ERR_REGEX_UNSUPPORTED"],
    ["^(?=(a+)+b)", "^(?=(a+)+b)", "ERR_REGEX_UNSUPPORTED"],
    ["^(?!x)a", "^(?!x)a", "ERR_REGEX_UNSUPPORTED"],
    ["(?<=a)b", "(?<=a)b", "ERR_REGEX_UNSUPPORTED"],
    ["(?<!a)b", "(?<!a)b", "ERR_REGEX_UNSUPPORTED"],
    ["(a{1000}){1000}", "(a{1000}){1000}", "ERR_REGEX_TOO_LARGE"],
    ["(?:){99999}", "(?:){99999}", "ERR_REGEX_TOO_LARGE"],
    ["40 nested groups", `${"(".repeat(40)}a${")".repeat(40)}`, "ERR_REGEX_TOO_LARGE"],
    ["1,001 characters", "a".repeat(1001), "ERR_REGEX_TOO_LARGE"],
    ["^[0-9+$", "^[0-9+$", "ERR_REGEX_INVALID"],
    ["a{2,1}", "a{2,1}", "ERR_REGEX_INVALID"],
    ["\\q", "\\q", "ERR_REGEX_INVALID"],
  ];
  it.each(REFUSED)("refuses %s with %s", (_label, source, code) => {
    let caught: unknown;
    try {
      linearRegex(source);
    } catch (e) {
      caught = e;
    }
    expect(isWritError(caught, code)).toBe(true);
  });
});
