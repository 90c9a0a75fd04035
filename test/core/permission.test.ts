import { describe, expect, it } from "vitest";
import {
  compileRule,
  isWritError,
  parseRequestAction,
  ruleContains,
  ruleMatches,
  ruleOverlaps,
  substitute,
  widenTemplate,
} from "../../src/core/index.js";

const rule = (action: string, resource = "*") => compileRule({ action, resource });
const req = (a: string) => parseRequestAction(a);

describe("rules", () => {
  it("alternatives live inside one segment", () => {
    try {
      compileRule({ action: "aws:s3:GetObject|aws:s3:PutObject", resource: "*" });
      expect.fail("compiled");
    } catch (e) {
      expect(isWritError(e, "ERR_PATTERN_ACTION")).toBe(true);
    }
  });

  it("a bare star is every action", () => {
    expect(ruleMatches(rule("*"), req("k8s:core/pods:get"), "ns/x", "cover")).toBe(true);
  });

  it("github levels: write covers read, a read deny includes write", () => {
    expect(ruleMatches(rule("github:contents:write"), req("github:contents:read"), "a/b", "cover")).toBe(
      true,
    );
    expect(ruleMatches(rule("github:contents:read"), req("github:contents:write"), "a/b", "cover")).toBe(
      false,
    );
    expect(ruleMatches(rule("github:contents:read"), req("github:contents:write"), "a/b", "include")).toBe(
      true,
    );
    expect(ruleMatches(rule("github:contents:write"), req("github:contents:read"), "a/b", "include")).toBe(
      false,
    );
  });

  it("containment follows the provider's case rules", () => {
    expect(ruleContains(rule("aws:s3:get*"), rule("aws:S3:GetObject"))).toBe(true);
    expect(ruleContains(rule("k8s:apps/deployments:get"), rule("k8s:apps/deployments:*"))).toBe(false);
    expect(ruleContains(rule("k8s:Apps/deployments:*"), rule("k8s:apps/deployments:get"))).toBe(false);
    expect(
      ruleContains(rule("aws:s3:*", "arn:aws:s3:::a/*"), rule("aws:s3:GetObject", "arn:aws:s3:::A/x")),
    ).toBe(false);
    expect(
      ruleContains(rule("github:contents:write", "acme/*"), rule("github:contents:read", "ACME/x")),
    ).toBe(true);
  });

  it("overlap with a deny is found through wildcards on either side", () => {
    expect(ruleOverlaps(rule("aws:iam:PassRole", "arn:aws:iam::1:role/x"), rule("aws:iam:*"))).toBe(true);
    expect(
      ruleOverlaps(rule("aws:s3:*", "arn:aws:s3:::a/*"), rule("aws:s3:GetObject", "arn:aws:s3:::a/secret/*")),
    ).toBe(true);
    expect(ruleOverlaps(rule("aws:s3:PutObject", "arn:aws:s3:::a/*"), rule("aws:s3:GetObject", "*"))).toBe(
      false,
    );
    expect(
      ruleOverlaps(rule("github:contents:write", "acme/x"), rule("github:contents:read", "acme/*")),
    ).toBe(true);
  });
});

describe("templates", () => {
  it("substitution escapes pattern characters in values", () => {
    const r = compileRule({
      action: "k8s:core/pods:delete",
      resource: substitute("shop/${name}", { name: "*" }),
    });
    expect(ruleMatches(r, req("k8s:core/pods:delete"), "shop/web", "cover")).toBe(false);
    expect(ruleMatches(r, req("k8s:core/pods:delete"), "shop/*", "cover")).toBe(true);
    expect(substitute("a/${x}", { x: "p|q" })).toBe("a/p\\|q");
  });

  it("a missing or non-scalar parameter is an error", () => {
    for (const params of [{}, { x: { nested: 1 } }, { x: ["a"] }]) {
      try {
        substitute("a/${x}", params);
        expect.fail("substituted");
      } catch (e) {
        expect(isWritError(e, "ERR_TEMPLATE_PARAM")).toBe(true);
      }
    }
  });

  it("widening uses enum, const and anchored patterns, else a star", () => {
    expect(widenTemplate("ns/${s}", { s: { enum: ["a", "b"] } })).toEqual(["ns/a", "ns/b"]);
    expect(widenTemplate("ns/${s}", { s: { const: "a" } })).toEqual(["ns/a"]);
    expect(widenTemplate("ns/${s}", { s: { pattern: "^web-[0-9]+$" } })).toEqual(["ns/web-*"]);
    expect(widenTemplate("ns/${s}", { s: { pattern: "^web$" } })).toEqual(["ns/web"]);
    expect(widenTemplate("ns/${s}", { s: { pattern: "^a|b$" } })).toEqual(["ns/*"]);
    expect(widenTemplate("ns/${s}", { s: { pattern: "^webs?-x" } })).toEqual(["ns/web*"]);
    expect(widenTemplate("ns/${s}", { s: { type: "string" } })).toEqual(["ns/*"]);
  });
});
