/**
 * Session policy generation and the proof of scoping: worked examples, then property tests over
 * generated grants, denies and role policies — every generated session policy, evaluated by writ's
 * IAM evaluator with the role's policies, allows nothing outside the writ; a widened policy is
 * refused by the proof.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluate, parsePolicy, principalFromArn } from "../../src/analyzer/providers/aws/index.js";
import {
  compileRule,
  parseRequestAction,
  type RuleText,
  ruleContains,
  ruleMatches,
} from "../../src/core/index.js";
import { SESSION_POLICY_MAX_CHARS, sessionPolicy } from "../../src/downstream/aws/policy.js";
import { proveScoping } from "../../src/downstream/aws/proof.js";

const ROLE = "arn:aws:iam::111122223333:role/writ";

describe("session policy translation", () => {
  it("expands alternatives, keeps IAM wildcards, groups statements", () => {
    const p = sessionPolicy(
      [
        { action: "aws:s3:GetObject|ListBucket", resource: "arn:aws:s3:::acme-reports/*" },
        { action: "aws:s3:Get*", resource: "arn:aws:s3:::acme-reports/*" },
        {
          action: "aws:sqs:SendMessage",
          resource: "arn:aws:sqs:eu-west-1:111122223333:jobs|arn:aws:sqs:eu-west-1:111122223333:jobs-dlq",
        },
        { action: "github:contents:read", resource: "acme/app" },
      ],
      [],
    );
    expect(p.document.Statement).toEqual([
      {
        Effect: "Allow",
        Action: ["s3:Get*", "s3:GetObject", "s3:ListBucket"],
        Resource: "arn:aws:s3:::acme-reports/*",
      },
      {
        Effect: "Allow",
        Action: "sqs:SendMessage",
        Resource: ["arn:aws:sqs:eu-west-1:111122223333:jobs", "arn:aws:sqs:eu-west-1:111122223333:jobs-dlq"],
      },
    ]);
    expect(p.translated).toHaveLength(3);
    expect(p.json).toBe(JSON.stringify(p.document));
  });

  it("writes literal *, ? and $ as IAM's escapes, never as wildcards or variables", () => {
    const p = sessionPolicy(
      [{ action: "aws:s3:GetObject", resource: "arn:aws:s3:::b/\\*/${aws:username}/\\?" }],
      [],
    );
    expect(p.document.Statement[0]!.Resource).toBe("arn:aws:s3:::b/${*}/${$}{aws:username}/${?}");
    const proof = proveScoping({ policyJson: p.json, grants: p.translated, denies: [] });
    expect(proof.ok).toBe(true);
  });

  it("`aws:*:*` is IAM's `*`; a wildcard service prefix is left out and said so", () => {
    expect(sessionPolicy([{ action: "aws:*:*", resource: "*" }], []).document.Statement[0]).toEqual({
      Effect: "Allow",
      Action: "*",
      Resource: "*",
    });
    const p = sessionPolicy(
      [
        { action: "aws:s3*:GetObject", resource: "*" },
        { action: "aws:s3:GetObject", resource: "not-an-arn" },
      ],
      [],
    );
    expect(p.translated).toEqual([]);
    expect(p.untranslatable.map((u) => u.why)).toEqual([
      expect.stringContaining("service prefix"),
      expect.stringContaining("not an ARN"),
    ]);
  });

  it("carries only the denies that overlap a grant, widened where IAM is narrower", () => {
    const p = sessionPolicy(
      [{ action: "aws:s3:*", resource: "arn:aws:s3:::acme/*" }],
      [
        { action: "aws:iam:*", resource: "*" },
        { action: "aws:s3:DeleteObject", resource: "arn:aws:*:acme/*" },
      ],
    );
    expect(p.denies).toEqual([{ action: "aws:s3:DeleteObject", resource: "arn:aws:*:acme/*" }]);
    expect(p.document.Statement[1]).toEqual({
      Effect: "Deny",
      Action: "s3:DeleteObject",
      Resource: "arn:aws:*",
    });
    const proof = proveScoping({
      policyJson: p.json,
      grants: [{ action: "aws:s3:*", resource: "arn:aws:s3:::acme/*" }],
      denies: [{ action: "aws:s3:DeleteObject", resource: "arn:aws:*:acme/*" }],
      role: {
        arn: ROLE,
        identity: [
          parsePolicy("identity", "r", {
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
          }),
        ],
      },
    });
    expect(proof.ok).toBe(true);
  });

  it("the proof refuses a policy wider than the writ, a NotAction allow and a policy variable", () => {
    const grants: RuleText[] = [{ action: "aws:s3:GetObject", resource: "arn:aws:s3:::acme/*" }];
    const wide = (st: object) => JSON.stringify({ Version: "2012-10-17", Statement: [st] });
    const check = (st: object) => proveScoping({ policyJson: wide(st), grants, denies: [] });
    expect(check({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::acme/*" }).ok).toBe(true);
    expect(check({ Effect: "Allow", Action: "s3:Get*", Resource: "arn:aws:s3:::acme/*" })).toMatchObject({
      ok: false,
      violation: expect.stringContaining("no grant of the writ covers"),
    });
    expect(check({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::acme*" }).ok).toBe(false);
    expect(check({ Effect: "Allow", NotAction: "iam:*", Resource: "*" })).toMatchObject({
      ok: false,
      violation: expect.stringContaining("NotAction"),
    });
    expect(
      check({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::acme/${aws:userid}" }),
    ).toMatchObject({
      ok: false,
      violation: expect.stringContaining("policy variable"),
    });
    expect(proveScoping({ policyJson: "{", grants, denies: [] }).ok).toBe(false);
  });

  it("notes a grant the role itself cannot honour", () => {
    const p = sessionPolicy(
      [{ action: "aws:sqs:SendMessage", resource: "arn:aws:sqs:eu-west-1:111122223333:jobs" }],
      [],
    );
    const proof = proveScoping({
      policyJson: p.json,
      grants: p.translated,
      denies: [],
      role: {
        arn: ROLE,
        identity: [
          parsePolicy("identity", "r", {
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
          }),
        ],
      },
    });
    expect(proof).toMatchObject({
      ok: true,
      notes: [expect.stringContaining("does not allow `sqs:SendMessage`")],
    });
  });
});

// ---- property tests ----

const SERVICES = ["s3", "sqs", "ec2"];
const NAMES = ["GetObject", "PutObject", "ListBucket", "DeleteObject", "SendMessage", "DescribeInstances"];
const BUCKETS = ["a", "ab", "b"];

const actionAlt = fc.oneof(
  fc.constantFrom(...NAMES),
  fc.constantFrom(...NAMES).map((n) => `${n.slice(0, 3)}*`),
  fc.constantFrom(...NAMES).map((n) => `${n.slice(0, -1)}?`),
  fc.constant("*"),
);
const actionPattern = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.constantFrom(...SERVICES), fc.array(actionAlt, { minLength: 1, maxLength: 3 }))
      .map(([s, a]) => `aws:${s}:${a.join("|")}`),
  },
  { weight: 1, arbitrary: fc.constant("aws:*:*") },
  { weight: 1, arbitrary: fc.constant("*:*:*") },
);
const resourceAlt = fc.oneof(
  fc.constantFrom(...BUCKETS).map((b) => `arn:aws:s3:::${b}/*`),
  fc.constantFrom(...BUCKETS).map((b) => `arn:aws:s3:::${b}*`),
  fc.constantFrom(...BUCKETS).map((b) => `arn:aws:s3:::${b}/x`),
  fc.constant("arn:aws:sqs:eu-west-1:111122223333:q?"),
  fc.constant("arn:aws:*:b/*"),
);
const resourcePattern = fc.oneof(
  { weight: 9, arbitrary: fc.array(resourceAlt, { minLength: 1, maxLength: 2 }).map((r) => r.join("|")) },
  { weight: 1, arbitrary: fc.constant("*") },
);
const rule = fc.record({ action: actionPattern, resource: resourcePattern });
const rolePolicy = fc.constantFrom(
  { Effect: "Allow", Action: "*", Resource: "*" },
  { Effect: "Allow", Action: "s3:*", Resource: "*" },
  { Effect: "Allow", Action: ["s3:Get*", "sqs:*"], Resource: ["arn:aws:s3:::a*", "arn:aws:sqs:*"] },
  { Effect: "Allow", NotAction: "iam:*", Resource: "*" },
);
const CONCRETE_ACTIONS = SERVICES.flatMap((s) =>
  [...NAMES, "GetObjectAcl", "Get"].map((n) => `${s}:${n}`),
).concat(["iam:CreateUser"]);
const CONCRETE_RESOURCES = [
  "arn:aws:s3:::a/x",
  "arn:aws:s3:::ab",
  "arn:aws:s3:::ab/x/y",
  "arn:aws:s3:::b/x",
  "arn:aws:s3:::c/x",
  "arn:aws:sqs:eu-west-1:111122223333:q1",
  "arn:aws:sqs:eu-west-1:111122223333:q12",
  "*",
];

describe("property: an issued session allows nothing outside the writ", () => {
  it("role ∩ session policy, evaluated, stays inside grants − denies; the proof accepts it", () => {
    const principal = principalFromArn(ROLE, { sessionName: "prop" });
    fc.assert(
      fc.property(
        fc.array(rule, { minLength: 1, maxLength: 4 }),
        fc.array(rule, { maxLength: 2 }),
        fc.array(rolePolicy, { minLength: 1, maxLength: 2 }),
        (grants, denies, roleStatements) => {
          const p = sessionPolicy(grants, denies);
          if (p.translated.length === 0 || p.json.length > SESSION_POLICY_MAX_CHARS) return;
          const identity = [
            parsePolicy("identity", "role", { Version: "2012-10-17", Statement: roleStatements }),
          ];
          const proof = proveScoping({ policyJson: p.json, grants, denies, role: { arn: ROLE, identity } });
          expect(proof.ok, proof.ok ? "" : proof.violation).toBe(true);
          const session = parsePolicy("session", "s", p.json);
          const g = grants.map(compileRule);
          const d = denies.map(compileRule);
          for (const action of CONCRETE_ACTIONS) {
            const parsed = parseRequestAction(`aws:${action}`);
            for (const resource of CONCRETE_RESOURCES) {
              const r = evaluate({ principal, action, resource }, { identity, session: [session] });
              if (r.decision !== "allow") continue;
              const covered = g.some((x) => ruleMatches(x, parsed, resource, "cover"));
              const denied = d.some((x) => ruleMatches(x, parsed, resource, "include"));
              expect({ action, resource, covered, denied }).toEqual({
                action,
                resource,
                covered: true,
                denied: false,
              });
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a session policy widened beyond the writ is refused by the proof", () => {
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 3 }), rule, (grants, extra) => {
        const p = sessionPolicy(grants, []);
        const widened = sessionPolicy([extra], []);
        if (p.translated.length === 0 || widened.translated.length === 0) return;
        // only when some part of the extra statement is not already covered by a grant
        // (in IAM only its AWS part exists: `*:*:*` reads as `aws:*:*`)
        const [, service, actions] = extra.action.split(":") as [string, string, string];
        const parts = actions
          .split("|")
          .flatMap((a) =>
            extra.resource.split("|").map((r) => compileRule({ action: `aws:${service}:${a}`, resource: r })),
          );
        const g = grants.map(compileRule);
        if (parts.every((x) => g.some((y) => ruleContains(y, x)))) return;
        const doc = { ...p.document, Statement: [...p.document.Statement, ...widened.document.Statement] };
        const proof = proveScoping({ policyJson: JSON.stringify(doc), grants, denies: [] });
        expect(proof.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
