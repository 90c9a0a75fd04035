/**
 * What the rules say of a *region*: every resource a glob can name, for a call that reaches a set
 * of resources writ does not list one by one — a file pattern (a coding agent's `Glob`), a folder
 * too large to walk, a git pathspec (docs/hooks.md). Pure, like `decide`.
 *
 * A region is not decided here: the caller weighs the answer (an overlap with a deny may be a path
 * that does not exist; a grant that covers the region does not cover a link leading out of it).
 * The answer:
 *   - `denies`: every enforced deny alternative (the ceiling's, the agent's own) whose resources
 *     meet the region's, with whether it holds the whole region and whether it is one literal path;
 *   - `granted`: a baseline grant or an active writ's grant holds the whole region, and so does the
 *     ceiling's allow (unless the ceiling is in shadow mode). Sound: `true` only when it is so.
 * A request the core would refuse before its rules (unknown agent, environment, action) meets no
 * deny and is granted nothing: its concrete requests say why.
 */
import { isWritError } from "./errors.js";
import type { ActiveWrit, WritConfig } from "./model.js";
import { type Glob, globContains, globIntersects, literalOf, parseGlob } from "./pattern.js";
import { actionMatches, type Rule, type RuleText } from "./permission.js";
import { isShadow } from "./shadow.js";
import {
  type ParsedAction,
  parseRequestAction,
  RULES,
  unknownActionProblem,
  type Vocabulary,
} from "./vocabulary.js";
import { inactiveWhy, WritSet } from "./writ-set.js";

export interface RegionRequest {
  readonly agent: string;
  readonly action: string;
  /** A resource glob (core syntax: `*` crosses `/`) holding every resource the call may reach. */
  readonly region: string;
  readonly environment: string;
  readonly now: Date;
}

export interface RegionDeny {
  readonly source: "ceiling" | "agent";
  readonly owner: string;
  readonly rule: RuleText;
  /** The deny's alternative that meets the region. */
  readonly alternative: string;
  /** The alternative holds every resource of the region. */
  readonly whole: boolean;
  /** The alternative is one literal resource (no wildcard): `alternative` is that resource. */
  readonly literal: boolean;
}

export interface RegionView {
  readonly denies: readonly RegionDeny[];
  readonly granted: boolean;
}

const NOTHING: RegionView = { denies: [], granted: false };

function resourceGlob(rule: Rule, a: ParsedAction): Glob {
  return RULES[a.provider].foldResource ? rule.resource.folded : rule.resource.raw;
}

function deniesOf(
  source: "ceiling" | "agent",
  owner: string,
  rule: Rule,
  a: ParsedAction,
  region: Glob,
  out: RegionDeny[],
): void {
  if (!actionMatches(rule, a, "include")) return;
  for (const alt of resourceGlob(rule, a).alts) {
    const one: Glob = { kind: "glob", source: "", alts: [alt], literal: literalOf(alt) !== undefined };
    if (!globIntersects(one, region)) continue;
    const literal = literalOf(alt);
    out.push({
      source,
      owner,
      rule: rule.text,
      alternative: literal ?? rule.text.resource,
      whole: globContains(one, region),
      literal: literal !== undefined,
    });
  }
}

function writsOf(writs: readonly ActiveWrit[] | WritSet): readonly ActiveWrit[] {
  return writs instanceof WritSet ? writs.writs() : writs;
}

export function regionView(
  config: WritConfig,
  writs: readonly ActiveWrit[] | WritSet,
  req: RegionRequest,
  vocab: Vocabulary = {},
): RegionView {
  let a: ParsedAction;
  let region: Glob;
  try {
    a = parseRequestAction(req.action);
    region = parseGlob(req.region);
  } catch (err) {
    if (isWritError(err)) return NOTHING;
    throw err;
  }
  if (RULES[a.provider].foldResource) region = parseGlob(req.region.toLowerCase());
  if (unknownActionProblem(a, vocab)) return NOTHING;
  const agent = config.agents.get(req.agent);
  const rc = agent === undefined ? undefined : config.runnerClasses.get(agent.runnerClass);
  if (agent === undefined || rc === undefined || !config.environments.has(req.environment)) return NOTHING;
  if (!agent.environments.includes(req.environment)) return NOTHING;
  const ceiling = isShadow(rc.mode) ? undefined : rc.ceiling;

  const denies: RegionDeny[] = [];
  for (const d of ceiling?.deny ?? []) deniesOf("ceiling", rc.id, d.rule, a, region, denies);
  for (const d of agent.deny) deniesOf("agent", agent.id, d.rule, a, region, denies);

  const holds = (rule: Rule) =>
    actionMatches(rule, a, "cover") && globContains(resourceGlob(rule, a), region);
  const now = req.now.getTime();
  const granted =
    agent.baseline.some(
      (g) => (g.environments === undefined || g.environments.includes(req.environment)) && holds(g.rule),
    ) ||
    writsOf(writs).some(
      (w) =>
        w.agent === agent.id &&
        inactiveWhy(w, req.environment, now) === undefined &&
        w.grants.some((g) => holds(g.rule)),
    );
  const bounded = ceiling === undefined || ceiling.allow.some((c) => holds(c.rule));
  return { denies, granted: granted && bounded };
}
