import { describe, expect, it } from "vitest";
import { compileCheck } from "../../src/gateway/schema.js";

describe("argument schemas: patterns in linear time", () => {
  it("a nested quantifier in a tool's inputSchema cannot be made to backtrack by an argument", () => {
    const check = compileCheck(
      { type: "object", properties: { path: { type: "string", pattern: "^(/[a-z]+)+$" } } },
      "fs__read",
    );
    expect(check({ path: "/a/b" })).toBeUndefined();
    // a backtracking engine would take ~2^1000 steps here: the answer coming at all is the check
    expect(check({ path: `${"/a".repeat(1000)}/!` })).toMatch(/must match pattern/);
  });

  it("patternProperties keys are matched the same way", () => {
    const check = compileCheck(
      { type: "object", patternProperties: { "^(x+x+)+y$": { type: "number" } } },
      "t__t",
    );
    expect(check({ xxy: "no" })).toMatch(/must be number/);
    expect(check({ [`${"x".repeat(2000)}`]: "free" })).toBeUndefined();
  });

  it("a tool's own lookahead keeps the native engine instead of making the tool unusable", () => {
    const check = compileCheck(
      { type: "object", properties: { email: { type: "string", pattern: "^(?!\\.)[a-z.]+@x$" } } },
      "mail__send",
    );
    expect(check({ email: "a.b@x" })).toBeUndefined();
    expect(check({ email: ".a@x" })).toMatch(/must match pattern/);
  });
});
