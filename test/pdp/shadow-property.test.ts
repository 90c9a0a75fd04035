/**
 * Shadow mode never weakens enforcement (docs/shadow.md), as properties over random rule sets,
 * random requests and random enforce/shadow assignments. The rules with a mode here are each runner
 * class's ceiling (its allow and deny lists), each of the agents' own denies and each Cedar
 * guardrail; baseline grants and writs are random too and always count.
 *
 *   P1 the outcome under any assignment is the all-enforce decision of the config with the shadow
 *      rules deleted: never allow where the enforcing rules alone deny;
 *   P2 the all-enforce decision denies exactly when the outcome denies or some shadow rule recorded
 *      a would-have-denied (`wouldDeny` = what the full decision denies that the enforced lacks);
 *   P3 every record names a rule that is in shadow mode;
 *   P4 switching one more rule to shadow never turns a deny caused by another enforcing rule into
 *      an allow.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ActiveWrit,
  type Agent,
  type CeilingRule,
  compileRule,
  type Decision,
  type Grant,
  type RuleMode,
  type RunnerClass,
  type WritConfig,
} from "../../src/core/index.js";
import { type CompiledGuardrails, compileGuardrails, DecisionPoint } from "../../src/pdp/index.js";

const ACTIONS = ["mcp:fs:read", "mcp:fs:write", "mcp:web:fetch", "mcp:db:drop"];
const RESOURCES = ["/a/x", "/a/y", "/b/x", "h.example"];
const ACTION_PATTERNS = ["mcp:fs:*", "mcp:fs:read", "mcp:fs:write", "mcp:web:fetch", "mcp:db:*", "mcp:*:*"];
const RESOURCE_PATTERNS = ["*", "/a/*", "/b/*", "/a/x", "h.example"];
const CLASSES = ["c1", "c2"];
const AGENTS = ["ag1", "ag2"];
const ENV = "dev";
const NOW = new Date("2026-03-02T10:00:00Z");

/** The guardrails' pool: each is its own source, so each has its own mode. */
const GUARDRAILS: readonly { id: string; text: string }[] = [
  { id: "no-b", text: '@id("no-b")\nforbid(principal, action, resource) when { resource.id like "/b/*" };' },
  {
    id: "no-host",
    text: '@id("no-host")\nforbid(principal, action, resource) when { resource.id == "h.example" };',
  },
  {
    id: "no-drop",
    text: '@id("no-drop")\nforbid(principal, action == Writ::Action::"mcp:db:drop", resource);',
  },
  {
    id: "no-ag2-write",
    text: '@id("no-ag2-write")\nforbid(principal == Writ::Agent::"ag2", action == Writ::Action::"mcp:fs:write", resource);',
  },
];

interface RuleText {
  action: string;
  resource: string;
}

interface World {
  ceilings: { allow: RuleText[]; deny: RuleText[] }[];
  agentDeny: RuleText[][];
  baseline: RuleText[][];
  writs: { agent: number; grants: RuleText[]; expired: boolean }[];
}

/** Which rules are in shadow mode: the classes' ceilings, each agent's denies and the guardrails, by index. */
interface Assignment {
  ceilings: RuleMode[];
  /** Per agent, per deny entry (an entry the world lacks ignores its mode). */
  agentDeny: RuleMode[][];
  guardrails: RuleMode[];
}

/** Deny entries per agent at most: the world's lists and the assignment's modes. */
const MAX_DENY = 2;

const rule = fc.record({
  action: fc.constantFrom(...ACTION_PATTERNS),
  resource: fc.constantFrom(...RESOURCE_PATTERNS),
});
const rules = (max: number) => fc.array(rule, { maxLength: max });
const world: fc.Arbitrary<World> = fc.record({
  ceilings: fc.array(fc.record({ allow: rules(3), deny: rules(2) }), {
    minLength: CLASSES.length,
    maxLength: CLASSES.length,
  }),
  agentDeny: fc.array(rules(MAX_DENY), { minLength: AGENTS.length, maxLength: AGENTS.length }),
  baseline: fc.array(rules(3), { minLength: AGENTS.length, maxLength: AGENTS.length }),
  writs: fc.array(fc.record({ agent: fc.nat(AGENTS.length - 1), grants: rules(2), expired: fc.boolean() }), {
    maxLength: 3,
  }),
});
const mode = fc.constantFrom<RuleMode>("enforce", "shadow");
const assignment: fc.Arbitrary<Assignment> = fc.record({
  ceilings: fc.array(mode, { minLength: CLASSES.length, maxLength: CLASSES.length }),
  agentDeny: fc.array(fc.array(mode, { minLength: MAX_DENY, maxLength: MAX_DENY }), {
    minLength: AGENTS.length,
    maxLength: AGENTS.length,
  }),
  guardrails: fc.array(mode, { minLength: GUARDRAILS.length, maxLength: GUARDRAILS.length }),
});
const request = fc.record({
  agent: fc.constantFrom(...AGENTS),
  action: fc.constantFrom(...ACTIONS),
  resource: fc.constantFrom(...RESOURCES),
});

interface Req {
  agent: string;
  action: string;
  resource: string;
}

const ceilingRules = (rs: readonly RuleText[]): CeilingRule[] =>
  rs.map((r) => ({ kind: "ceiling-rule", rule: compileRule(r), path: [] }));
const grants = (rs: readonly RuleText[]): Grant[] =>
  rs.map((r) => ({ kind: "grant", rule: compileRule(r), path: [], standingWrite: "test" }));
/** A ceiling removed: nothing above the grants. */
const NO_CEILING = { allow: [{ action: "mcp:*:*", resource: "*" }], deny: [] };

/**
 * The config of a world under an assignment. `removeShadow`: the shadow rules are deleted and every
 * rule left enforces (the all-enforce decision restricted to the enforcing rules).
 */
function configOf(w: World, a: Assignment, removeShadow: boolean): WritConfig {
  const runnerClasses = new Map<string, RunnerClass>();
  CLASSES.forEach((id, i) => {
    const shadow = a.ceilings[i] === "shadow";
    const c = removeShadow && shadow ? NO_CEILING : w.ceilings[i]!;
    runnerClasses.set(id, {
      kind: "runner-class",
      id,
      ceiling: { maxTtlSeconds: 3600, allow: ceilingRules(c.allow), deny: ceilingRules(c.deny) },
      limits: { activeWrits: 10, issuancePerMinute: 10 },
      mode: removeShadow ? "enforce" : a.ceilings[i],
    });
  });
  const agents = new Map<string, Agent>();
  AGENTS.forEach((id, i) => {
    agents.set(id, {
      kind: "agent",
      id,
      owner: "o@acme.example",
      purpose: "tests",
      runnerClass: CLASSES[i]!,
      environments: [ENV],
      keys: [],
      baseline: grants(w.baseline[i]!),
      deny: ceilingRules(w.agentDeny[i]!).flatMap((d, k) => {
        const m = a.agentDeny[i]![k]!;
        if (m === "enforce") return [d];
        return removeShadow ? [] : [{ ...d, mode: m }];
      }),
      playbooks: [],
      tools: [compileRule({ action: "mcp:*:*", resource: "*" })],
    });
  });
  return {
    kind: "config",
    file: "/virtual/writ.yaml",
    environments: new Map([[ENV, { kind: "environment", id: ENV, changeWindows: [] }]]),
    runnerClasses,
    agents,
    approverGroups: new Map(),
    playbooks: new Map(),
  };
}

function writsOf(w: World): ActiveWrit[] {
  return w.writs.map((x, i) => ({
    kind: "writ",
    id: `w${i}`,
    agent: AGENTS[x.agent]!,
    playbook: "p",
    environment: ENV,
    grants: grants(x.grants),
    issuedAt: new Date(NOW.getTime() - 60_000),
    expiresAt: new Date(NOW.getTime() + (x.expired ? -1000 : 600_000)),
  }));
}

// the guardrails depend on the config only through its agents and actions, the same in every world:
// compiled once per assignment of modes (and per "only the enforcing ones")
const compiledGuardrails = new Map<string, CompiledGuardrails | undefined>();
function guardrailsOf(config: WritConfig, modes: readonly RuleMode[], removeShadow: boolean) {
  const key = `${modes.join(",")}|${removeShadow}`;
  if (compiledGuardrails.has(key)) return compiledGuardrails.get(key);
  const sources = GUARDRAILS.flatMap((g, i) =>
    removeShadow && modes[i] === "shadow"
      ? []
      : [
          {
            file: `${g.id}.cedar`,
            text: g.text,
            line: 1,
            column: 1,
            mode: removeShadow ? "enforce" : modes[i]!,
          },
        ],
  );
  const { problems, guardrails } = compileGuardrails(config, { sources });
  const errors = problems.filter((p) => p.severity === "error");
  if (errors.length > 0) throw new Error(errors.map((p) => p.message).join("; "));
  compiledGuardrails.set(key, guardrails);
  return guardrails;
}

function decideIn(w: World, a: Assignment, removeShadow: boolean, req: Req): Decision {
  const config = configOf(w, a, removeShadow);
  const dp = new DecisionPoint(config, { guardrails: guardrailsOf(config, a.guardrails, removeShadow) });
  return dp.decideWith({ ...req, environment: ENV, now: NOW, context: { tainted: false } }, writsOf(w));
}

const ALL_ENFORCE: Assignment = {
  ceilings: CLASSES.map(() => "enforce"),
  agentDeny: AGENTS.map(() => Array.from({ length: MAX_DENY }, () => "enforce")),
  guardrails: GUARDRAILS.map(() => "enforce"),
};

/** The rule ids in shadow mode in a world under an assignment. */
function shadowIds(w: World, a: Assignment): Set<string> {
  const out = new Set<string>();
  a.ceilings.forEach((m, i) => {
    if (m === "shadow") out.add(`ceiling:${CLASSES[i]}`);
  });
  AGENTS.forEach((id, i) => {
    if (w.agentDeny[i]!.some((_, k) => a.agentDeny[i]![k] === "shadow")) out.add(`deny:${id}`);
  });
  a.guardrails.forEach((m, i) => {
    if (m === "shadow") out.add(`guardrail:${GUARDRAILS[i]!.id}`);
  });
  return out;
}

const RUNS = { numRuns: 400 };

describe("shadow mode never weakens enforcement (property)", () => {
  it("P1: the outcome is the decision with the shadow rules deleted; P2: the full decision denies exactly when the outcome denies or a shadow rule would; P3: records name shadow rules only", () => {
    let sawShadowDeny = 0;
    let sawEnforcedDenyWithShadow = 0;
    let sawAgentDenyRecord = 0;
    fc.assert(
      fc.property(world, assignment, request, (w, a, req) => {
        const outcome = decideIn(w, a, false, req);
        const restricted = decideIn(w, a, true, req);
        expect(outcome.allowed).toBe(restricted.allowed);
        expect(outcome.code).toBe(restricted.code);

        const full = decideIn(w, ALL_ENFORCE, false, req);
        const would = outcome.shadow ?? [];
        expect(full.allowed).toBe(outcome.allowed && would.length === 0);
        if (!full.allowed && outcome.allowed) sawShadowDeny++;
        if (!outcome.allowed && would.length > 0) sawEnforcedDenyWithShadow++;
        // every record's rule is in shadow mode, with a kind and reason code
        const shadows = shadowIds(w, a);
        for (const r of would) {
          expect(shadows.has(r.rule)).toBe(true);
          expect(["ceiling", "deny", "guardrail"]).toContain(r.kind);
          if (r.kind === "deny") sawAgentDenyRecord++;
          expect(r.reason).toMatch(/^[a-z_]+$/);
        }
        // no shadow rule at all: no records, and the same decision as all-enforce
        if (shadows.size === 0) {
          expect(outcome.shadow).toBeUndefined();
          expect(outcome.code).toBe(full.code);
        }
      }),
      RUNS,
    );
    // the generators reach both interesting cases, or the properties above prove little
    expect(sawShadowDeny).toBeGreaterThan(10);
    expect(sawEnforcedDenyWithShadow).toBeGreaterThan(10);
    expect(sawAgentDenyRecord).toBeGreaterThan(10);
  });

  it("P4: switching one more rule from enforce to shadow never turns a deny by another enforcing rule into an allow", () => {
    let checked = 0;
    fc.assert(
      fc.property(
        world,
        assignment,
        request,
        fc.nat(CLASSES.length + AGENTS.length * MAX_DENY + GUARDRAILS.length - 1),
        (w, a, req, pick) => {
          const switched: Assignment = {
            ceilings: [...a.ceilings],
            agentDeny: a.agentDeny.map((ms) => [...ms]),
            guardrails: [...a.guardrails],
          };
          const denies = AGENTS.length * MAX_DENY;
          if (pick < CLASSES.length) switched.ceilings[pick] = "shadow";
          else if (pick < CLASSES.length + denies) {
            const k = pick - CLASSES.length;
            switched.agentDeny[Math.floor(k / MAX_DENY)]![k % MAX_DENY] = "shadow";
          } else switched.guardrails[pick - CLASSES.length - denies] = "shadow";
          const before = decideIn(w, a, false, req);
          // the deny is another enforcing rule's when it stands with the switched rule deleted too
          const byOthers = !decideIn(w, switched, true, req).allowed;
          const after = decideIn(w, switched, false, req);
          if (!before.allowed && byOthers) {
            checked++;
            expect(after.allowed).toBe(false);
          }
          // and switching never turns an allow into a deny either
          if (before.allowed) expect(after.allowed).toBe(true);
        },
      ),
      RUNS,
    );
    expect(checked).toBeGreaterThan(50);
  });
});
