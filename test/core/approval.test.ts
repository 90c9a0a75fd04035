/**
 * Approval policies, evaluated: each rule by example, then properties against a brute-force oracle.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ApprovalContext,
  type ApprovalPolicy,
  type ApprovalVote,
  type ApproverGroup,
  approvalGroups,
  ERR_APPROVAL_POLICY_TOO_LARGE,
  evaluateApproval,
  isWritError,
} from "../../src/core/index.js";

const group = (id: string, members: string[]): [string, ApproverGroup] => [
  id,
  { kind: "approver-group", id, members },
];

const GROUPS = new Map([
  group("sre", ["alice@acme.example", "bob@acme.example", "sam@acme.example"]),
  group("managers", ["carol@acme.example", "dan@acme.example", "sam@acme.example"]),
  group("security", ["eve@acme.example", "frank@acme.example"]),
]);

const ctx = (over: Partial<ApprovalContext> = {}): ApprovalContext => ({
  groups: GROUPS,
  requester: "rita@acme.example",
  owner: "olga@acme.example",
  allowSelfApproval: false,
  ...over,
});

let tick = 0;
const approve = (approver: string): ApprovalVote => ({
  approver,
  decision: "approve",
  at: new Date(Date.UTC(2030, 0, 1, 0, 0, tick++)),
});
const deny = (approver: string): ApprovalVote => ({ ...approve(approver), decision: "deny" });

const g = (name: string, count = 1): ApprovalPolicy => ({ kind: "group", group: name, count });
const all = (...of: ApprovalPolicy[]): ApprovalPolicy => ({ kind: "all", of });
const any = (...of: ApprovalPolicy[]): ApprovalPolicy => ({ kind: "any", of });
const NONE: ApprovalPolicy = { kind: "none" };

const SRE_AND_MANAGERS = all(g("sre"), g("managers"));

describe("approval policies", () => {
  it("none is approved at once", () => {
    expect(evaluateApproval(NONE, [], ctx())).toMatchObject({ state: "approved", counted: [] });
  });

  it("a group: pending until one member approves", () => {
    expect(evaluateApproval(g("sre"), [], ctx())).toMatchObject({
      state: "pending",
      missing: "1 more from `sre`",
      needs: [[{ group: "sre", count: 1 }]],
    });
    expect(evaluateApproval(g("sre"), [approve("alice@acme.example")], ctx())).toMatchObject({
      state: "approved",
      counted: [{ approver: "alice@acme.example", group: "sre" }],
    });
  });

  describe("AND of groups (sre AND managers)", () => {
    it("one of each: approved", () => {
      const e = evaluateApproval(
        SRE_AND_MANAGERS,
        [approve("alice@acme.example"), approve("carol@acme.example")],
        ctx(),
      );
      expect(e.state).toBe("approved");
      expect(e.counted).toEqual([
        { approver: "alice@acme.example", group: "sre" },
        { approver: "carol@acme.example", group: "managers" },
      ]);
    });

    it("two SREs: pending, 1 more from managers", () => {
      const e = evaluateApproval(
        SRE_AND_MANAGERS,
        [approve("alice@acme.example"), approve("bob@acme.example")],
        ctx(),
      );
      expect(e).toMatchObject({ state: "pending", missing: "1 more from `managers`" });
      expect(e.counted).toHaveLength(1);
    });

    it("one person in both groups counts once: pending", () => {
      const e = evaluateApproval(SRE_AND_MANAGERS, [approve("sam@acme.example")], ctx());
      expect(e).toMatchObject({ state: "pending", missing: "1 more from `managers`" });
      expect(e.counted).toEqual([{ approver: "sam@acme.example", group: "sre" }]);
    });

    it("the person in both groups and one other: matched so that both seats fill", () => {
      // sam is taken for sre first; alice (sre only) arrives: sam moves to managers.
      const e = evaluateApproval(
        SRE_AND_MANAGERS,
        [approve("sam@acme.example"), approve("alice@acme.example")],
        ctx(),
      );
      expect(e.state).toBe("approved");
      expect(new Set(e.counted.map((c) => `${c.approver}:${c.group}`))).toEqual(
        new Set(["alice@acme.example:sre", "sam@acme.example:managers"]),
      );
    });

    it("the same group twice under AND needs two different people", () => {
      const p = all(g("sre"), g("sre"));
      expect(evaluateApproval(p, [approve("alice@acme.example")], ctx()).state).toBe("pending");
      expect(
        evaluateApproval(p, [approve("alice@acme.example"), approve("bob@acme.example")], ctx()).state,
      ).toBe("approved");
    });
  });

  describe("OR of groups", () => {
    it("either group is enough; nothing yet names both alternatives", () => {
      const p = any(g("sre"), g("managers"));
      expect(evaluateApproval(p, [], ctx()).missing).toBe("1 more from `sre` or 1 more from `managers`");
      expect(evaluateApproval(p, [approve("carol@acme.example")], ctx()).state).toBe("approved");
      expect(evaluateApproval(p, [approve("bob@acme.example")], ctx()).state).toBe("approved");
    });

    it("nests: security OR (sre AND managers)", () => {
      const p = any(g("security"), SRE_AND_MANAGERS);
      expect(evaluateApproval(p, [approve("eve@acme.example")], ctx()).state).toBe("approved");
      expect(evaluateApproval(p, [approve("alice@acme.example")], ctx())).toMatchObject({
        state: "pending",
        missing: "1 more from `security` or 1 more from `managers`",
      });
      expect(
        evaluateApproval(p, [approve("alice@acme.example"), approve("dan@acme.example")], ctx()).state,
      ).toBe("approved");
    });
  });

  describe("counts", () => {
    it("needs that many distinct members", () => {
      const p = g("sre", 2);
      expect(evaluateApproval(p, [approve("alice@acme.example")], ctx())).toMatchObject({
        state: "pending",
        missing: "1 more from `sre`",
      });
      // The same person twice (even with another spelling) is one person.
      const twice = evaluateApproval(
        p,
        [approve("alice@acme.example"), approve(" Alice@ACME.example ")],
        ctx(),
      );
      expect(twice.state).toBe("pending");
      expect(twice.ignored).toEqual([
        { approver: "alice@acme.example", decision: "approve", reason: "repeated" },
      ]);
      expect(
        evaluateApproval(p, [approve("alice@acme.example"), approve("bob@acme.example")], ctx()).state,
      ).toBe("approved");
    });

    it("a count above what the group can give stays pending, naming the shortfall", () => {
      const e = evaluateApproval(
        g("security", 3),
        [approve("eve@acme.example"), approve("frank@acme.example")],
        ctx(),
      );
      expect(e).toMatchObject({ state: "pending", missing: "1 more from `security`" });
    });

    it("2 sre AND 1 manager: the member of both cannot be both", () => {
      const p = all(g("sre", 2), g("managers"));
      const e = evaluateApproval(p, [approve("alice@acme.example"), approve("sam@acme.example")], ctx());
      expect(e).toMatchObject({ state: "pending", missing: "1 more from `managers`" });
      const done = evaluateApproval(
        p,
        [approve("alice@acme.example"), approve("sam@acme.example"), approve("bob@acme.example")],
        ctx(),
      );
      expect(done.state).toBe("approved");
    });
  });

  describe("self-approval", () => {
    it("the requester does not count", () => {
      const e = evaluateApproval(
        g("sre"),
        [approve("alice@acme.example")],
        ctx({ requester: "alice@acme.example" }),
      );
      expect(e).toMatchObject({ state: "pending", missing: "1 more from `sre`" });
      expect(e.ignored).toEqual([{ approver: "alice@acme.example", decision: "approve", reason: "self" }]);
    });

    it("the agent's owner does not count, whatever the spelling", () => {
      const e = evaluateApproval(
        g("sre"),
        [approve("ALICE@acme.example")],
        ctx({ owner: "alice@acme.example" }),
      );
      expect(e.state).toBe("pending");
      expect(e.ignored[0]?.reason).toBe("self");
    });

    it("counts when the playbook allows self-approval", () => {
      const e = evaluateApproval(
        g("sre"),
        [approve("alice@acme.example")],
        ctx({ requester: "alice@acme.example", owner: "alice@acme.example", allowSelfApproval: true }),
      );
      expect(e.state).toBe("approved");
    });
  });

  describe("deny", () => {
    it("a member's deny wins over enough approvals", () => {
      const e = evaluateApproval(
        SRE_AND_MANAGERS,
        [approve("alice@acme.example"), approve("carol@acme.example"), deny("bob@acme.example")],
        ctx(),
      );
      expect(e).toMatchObject({ state: "denied", deniedBy: ["bob@acme.example"] });
    });

    it("a member of any named group can deny, even of a branch already satisfied elsewhere", () => {
      const p = any(g("security"), SRE_AND_MANAGERS);
      expect(evaluateApproval(p, [deny("eve@acme.example")], ctx()).state).toBe("denied");
    });

    it("a deny from someone in no named group is ignored", () => {
      const e = evaluateApproval(g("sre"), [deny("mallory@evil.example")], ctx());
      expect(e.state).toBe("pending");
      expect(e.ignored).toEqual([
        { approver: "mallory@evil.example", decision: "deny", reason: "not-an-approver" },
      ]);
    });

    it("the requester's own deny counts: refusing is never an escalation", () => {
      const e = evaluateApproval(
        g("sre"),
        [deny("alice@acme.example")],
        ctx({ requester: "alice@acme.example" }),
      );
      expect(e.state).toBe("denied");
    });
  });

  it("approvals from people in no named group do not count", () => {
    const e = evaluateApproval(g("sre"), [approve("carol@acme.example"), approve("nobody@x.example")], ctx());
    expect(e.state).toBe("pending");
    expect(e.ignored.map((i) => i.reason)).toEqual(["not-an-approver", "not-an-approver"]);
  });

  it("a group the config does not define can never be satisfied", () => {
    expect(evaluateApproval(g("ghosts"), [approve("alice@acme.example")], ctx()).state).toBe("pending");
  });

  it("refuses malformed policies with a TypeError", () => {
    expect(() => evaluateApproval(g("sre", 0), [], ctx())).toThrow(TypeError);
    expect(() => evaluateApproval({ kind: "any", of: [] }, [], ctx())).toThrow(TypeError);
    expect(() => evaluateApproval({ kind: "xor" } as unknown as ApprovalPolicy, [], ctx())).toThrow(
      TypeError,
    );
  });

  it("refuses a policy with too many alternatives (a coded error: callers deny)", () => {
    const names = Array.from({ length: 14 }, (_, i) => [`a${i}`, `b${i}`] as const);
    const groups = new Map(names.flatMap(([a, b]) => [group(a, [`${a}@x`]), group(b, [`${b}@x`])]));
    const p = all(...names.map(([a, b]) => any(g(a), g(b))));
    try {
      evaluateApproval(p, [], ctx({ groups }));
      expect.fail("evaluated");
    } catch (err) {
      expect(isWritError(err, ERR_APPROVAL_POLICY_TOO_LARGE)).toBe(true);
    }
  });

  it("approvalGroups lists each named group once", () => {
    expect(approvalGroups(any(g("security"), all(g("sre"), g("managers"), g("sre"))))).toEqual([
      "security",
      "sre",
      "managers",
    ]);
  });
});

// ---- properties --------------------------------------------------------------------------------

const PEOPLE = ["p0", "p1", "p2", "p3", "p4"];
const PROP_GROUPS = new Map([
  group("g0", ["p0", "p1", "p2"]),
  group("g1", ["p2", "p3"]),
  group("g2", ["p1", "p3", "p4"]),
]);
const propCtx = (requester: string, owner: string, allowSelfApproval: boolean): ApprovalContext => ({
  groups: PROP_GROUPS,
  requester,
  owner,
  allowSelfApproval,
});

const policyArb: fc.Arbitrary<ApprovalPolicy> = fc.letrec<{ policy: ApprovalPolicy }>((tie) => ({
  policy: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({
      kind: fc.constant("group" as const),
      group: fc.constantFrom("g0", "g1", "g2"),
      count: fc.integer({ min: 1, max: 2 }),
    }),
    fc.record({
      kind: fc.constant("all" as const),
      of: fc.array(tie("policy"), { minLength: 1, maxLength: 3 }),
    }),
    fc.record({
      kind: fc.constant("any" as const),
      of: fc.array(tie("policy"), { minLength: 1, maxLength: 3 }),
    }),
  ),
})).policy;

const approversArb = fc.subarray(PEOPLE);
const selfArb = fc.record({
  requester: fc.constantFrom(...PEOPLE, "outsider"),
  owner: fc.constantFrom(...PEOPLE, "outsider"),
  allowSelfApproval: fc.boolean(),
});

/** Leaves of the policy tree, in order. */
function leaves(p: ApprovalPolicy): Extract<ApprovalPolicy, { kind: "group" }>[] {
  if (p.kind === "group") return [p];
  if (p.kind === "all" || p.kind === "any") return p.of.flatMap(leaves);
  return [];
}

/**
 * The oracle: approved iff some assignment of each counting approver to at most one leaf (of a
 * group they belong to) satisfies the tree, a leaf being satisfied by `count` people assigned to it.
 */
function oracle(policy: ApprovalPolicy, approvers: readonly string[], c: ApprovalContext): boolean {
  const ls = leaves(policy);
  const counting = approvers.filter((a) => c.allowSelfApproval || (a !== c.requester && a !== c.owner));
  const assigned = new Map<object, number>();
  const holds = (p: ApprovalPolicy): boolean => {
    if (p.kind === "none") return true;
    if (p.kind === "group") return (assigned.get(p) ?? 0) >= p.count;
    return p.kind === "all" ? p.of.every(holds) : p.of.some(holds);
  };
  const walk = (i: number): boolean => {
    if (i === counting.length) return holds(policy);
    if (walk(i + 1)) return true; // this person fills no seat
    for (const leaf of ls) {
      if (!PROP_GROUPS.get(leaf.group)!.members.includes(counting[i]!)) continue;
      assigned.set(leaf, (assigned.get(leaf) ?? 0) + 1);
      const ok = walk(i + 1);
      assigned.set(leaf, assigned.get(leaf)! - 1);
      if (ok) return true;
    }
    return false;
  };
  return walk(0);
}

describe("approval properties", () => {
  it("agrees with a brute-force assignment oracle", () => {
    fc.assert(
      fc.property(policyArb, approversArb, selfArb, (policy, approvers, self) => {
        const c = propCtx(self.requester, self.owner, self.allowSelfApproval);
        const e = evaluateApproval(policy, approvers.map(approve), c);
        expect(e.state === "approved").toBe(oracle(policy, approvers, c));
        expect(e.state).not.toBe("denied");
      }),
      { numRuns: 500 },
    );
  });

  it("the counted approvals are distinct people, each a member of the group they fill", () => {
    fc.assert(
      fc.property(policyArb, approversArb, selfArb, (policy, approvers, self) => {
        const c = propCtx(self.requester, self.owner, self.allowSelfApproval);
        const e = evaluateApproval(policy, approvers.map(approve), c);
        const people = e.counted.map((x) => x.approver);
        expect(new Set(people).size).toBe(people.length);
        for (const x of e.counted) expect(PROP_GROUPS.get(x.group)!.members).toContain(x.approver);
        if (!self.allowSelfApproval) {
          expect(people).not.toContain(self.requester);
          expect(people).not.toContain(self.owner);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("adding an approval never turns approved into pending", () => {
    fc.assert(
      fc.property(
        policyArb,
        approversArb,
        fc.constantFrom(...PEOPLE),
        selfArb,
        (policy, approvers, extra, self) => {
          const c = propCtx(self.requester, self.owner, self.allowSelfApproval);
          const before = evaluateApproval(policy, approvers.map(approve), c);
          const after = evaluateApproval(policy, [...approvers, extra].map(approve), c);
          if (before.state === "approved") expect(after.state).toBe("approved");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the order of decisions does not matter", () => {
    fc.assert(
      fc.property(policyArb, approversArb, selfArb, (policy, approvers, self) => {
        const c = propCtx(self.requester, self.owner, self.allowSelfApproval);
        const votes = approvers.map(approve);
        const reversed = votes.map((v, i) => ({ ...v, at: votes[votes.length - 1 - i]!.at }));
        expect(evaluateApproval(policy, reversed, c).state).toBe(evaluateApproval(policy, votes, c).state);
      }),
      { numRuns: 200 },
    );
  });

  it("a single approver never satisfies an AND of two groups of count 1", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("g0", "g1", "g2"),
        fc.constantFrom("g0", "g1", "g2"),
        fc.constantFrom(...PEOPLE),
        (a, b, person) => {
          const e = evaluateApproval(all(g(a), g(b)), [approve(person)], propCtx("x", "y", true));
          expect(e.state).toBe("pending");
        },
      ),
    );
  });

  it("a deny by any member of a named group denies, whatever the approvals", () => {
    fc.assert(
      fc.property(
        policyArb,
        approversArb,
        fc.constantFrom(...PEOPLE),
        selfArb,
        (policy, approvers, denier, self) => {
          const c = propCtx(self.requester, self.owner, self.allowSelfApproval);
          const votes = [...approvers.filter((a) => a !== denier).map(approve), deny(denier)];
          const e = evaluateApproval(policy, votes, c);
          const named = approvalGroups(policy).some((grp) => PROP_GROUPS.get(grp)!.members.includes(denier));
          expect(e.state === "denied").toBe(named);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("pending always says what is missing", () => {
    fc.assert(
      fc.property(policyArb, approversArb, selfArb, (policy, approvers, self) => {
        const e = evaluateApproval(
          policy,
          approvers.map(approve),
          propCtx(self.requester, self.owner, self.allowSelfApproval),
        );
        if (e.state === "pending") {
          expect(e.missing).toMatch(/^\d+ more from `g\d`/);
          expect(e.needs?.length).toBeGreaterThan(0);
        } else expect(e.missing).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
