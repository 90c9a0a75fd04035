/**
 * Permission rules: an action pattern (`provider:service:action`, each segment a glob) on a resource
 * pattern. Rules are compiled once (at config load or writ issuance) and then matched against
 * concrete requests with the provider's case rules from vocabulary.ts. A compiled rule is never
 * changed, so the same text compiles to one shared rule (a bounded memo: every writ of a playbook
 * with the same parameters has the same grants, and issuance compiles each more than once).
 */
import { q, WritError } from "./errors.js";
import { foldGlob, type Glob, globContains, globIntersects, globMatches, parseGlob } from "./pattern.js";
import {
  coveringActions,
  includedActions,
  isProvider,
  K8S_VERBS,
  type ParsedAction,
  type Provider,
  RULES,
} from "./vocabulary.js";

/** A rule as written: what reasons quote back. */
export interface RuleText {
  readonly action: string;
  readonly resource: string;
}

interface Segment {
  readonly raw: Glob;
  readonly folded: Glob;
}

export interface Rule {
  readonly kind: "rule";
  readonly text: RuleText;
  readonly provider: Segment;
  readonly service: Segment & { readonly github: Glob };
  readonly action: Segment;
  readonly resource: Segment;
  /** The provider when the provider segment is one literal name, else undefined. */
  readonly literalProvider: Provider | undefined;
}

function segment(source: string): Segment {
  const raw = parseGlob(source);
  return { raw, folded: foldGlob(raw) };
}

/** Splits on `:` that is not escaped. */
function splitColons(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      cur += ch + text[i + 1];
      i++;
    } else if (ch === ":") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Compiled rules by their text; emptied when full. */
const compiled = new Map<string, Rule>();
const MAX_COMPILED = 4096;

export function compileRule(text: RuleText): Rule {
  if (typeof text.action !== "string" || typeof text.resource !== "string") return compile(text);
  const key = `${text.action}\u0000${text.resource}`;
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  const rule = compile(text);
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(key, rule);
  return rule;
}

function compile(text: RuleText): Rule {
  const actionText = text.action.trim() === "*" ? "*:*:*" : text.action.trim();
  const parts = splitColons(actionText);
  if (parts.length !== 3) {
    throw new WritError(
      "ERR_PATTERN_ACTION",
      `action pattern ${q(text.action)}: expected \`provider:service:action\` (alternatives go inside one segment: \`aws:s3:Get*|List*\`)`,
    );
  }
  const [p, s, a] = parts as [string, string, string];
  const provider = segment(p.toLowerCase());
  const service = segment(s);
  const literalProvider =
    provider.raw.literal && provider.raw.alts.length === 1 && isProvider(p.toLowerCase())
      ? (p.toLowerCase() as Provider)
      : undefined;
  if (
    provider.raw.literal &&
    provider.raw.alts.some((alt) => !isProvider(alt.map((t) => (t.t === "lit" ? t.c : "")).join("")))
  ) {
    throw new WritError(
      "ERR_UNKNOWN_PROVIDER",
      `action pattern ${q(text.action)}: unknown provider ${q(p)}: expected one of aws, k8s, github, mcp, gcp, agent`,
    );
  }
  const resource = segment(text.resource);
  const github = parseGlob(service.folded.source.toLowerCase().replace(/-/g, "_"));
  return {
    kind: "rule",
    text: { action: text.action, resource: text.resource },
    provider,
    service: { ...service, github },
    action: segment(a),
    resource,
    literalProvider,
  };
}

export type MatchMode = "cover" | "include";

function serviceMatches(rule: Rule, provider: Provider, service: string): boolean {
  const rules = RULES[provider];
  if (provider === "github")
    return globMatches(rule.service.github, service.toLowerCase().replace(/-/g, "_"));
  return rules.foldAction
    ? globMatches(rule.service.folded, service, true)
    : globMatches(rule.service.raw, service);
}

function actionSegmentMatches(rule: Rule, provider: Provider, action: string): boolean {
  return RULES[provider].foldAction
    ? globMatches(rule.action.folded, action, true)
    : globMatches(rule.action.raw, action);
}

/** Does the rule's action pattern apply to the request action? */
export function actionMatches(rule: Rule, a: ParsedAction, mode: MatchMode): boolean {
  if (!globMatches(rule.provider.raw, a.provider)) return false;
  if (!serviceMatches(rule, a.provider, a.service)) return false;
  // the request's own action first: for every provider but GitHub it is the only candidate
  if (actionSegmentMatches(rule, a.provider, a.action)) return true;
  if (a.provider !== "github") return false;
  const candidates =
    mode === "cover" ? coveringActions(a.provider, a.action) : includedActions(a.provider, a.action);
  for (let i = 0; i < candidates.length; i++) {
    if (actionSegmentMatches(rule, a.provider, candidates[i]!)) return true;
  }
  return false;
}

export function resourceMatches(rule: Rule, provider: Provider, resource: string): boolean {
  return RULES[provider].foldResource
    ? globMatches(rule.resource.folded, resource, true)
    : globMatches(rule.resource.raw, resource);
}

/**
 * `cover`: the rule grants (or bounds) the request — a GitHub `write` grant covers a `read` request.
 * `include`: the rule denies something the request would do — a GitHub `read` deny stops `write`.
 */
export function ruleMatches(rule: Rule, a: ParsedAction, resource: string, mode: MatchMode): boolean {
  return actionMatches(rule, a, mode) && resourceMatches(rule, a.provider, resource);
}

/** The finite action sets for providers where enumerating beats glob reasoning. */
function finiteActions(provider: Provider | undefined): readonly string[] | undefined {
  if (provider === "github") return ["read", "write", "admin"];
  if (provider === "k8s") return K8S_VERBS;
  return undefined;
}

function segmentGlobs(rule: Rule, provider: Provider | undefined) {
  const rules = provider ? RULES[provider] : undefined;
  return {
    service:
      provider === "github"
        ? rule.service.github
        : rules?.foldAction
          ? rule.service.folded
          : rule.service.raw,
    action: rules?.foldAction ? rule.action.folded : rule.action.raw,
    resource: rules?.foldResource ? rule.resource.folded : rule.resource.raw,
  };
}

/**
 * Is every request that `inner` grants also covered by `outer`? Sound: when it says yes, it is so.
 * Used to prove at load time that playbook grants stay under every ceiling that can hold them.
 */
export function ruleContains(outer: Rule, inner: Rule): boolean {
  if (!globContains(outer.provider.raw, inner.provider.raw)) return false;
  const provider = inner.literalProvider;
  const o = segmentGlobs(outer, provider);
  const i = segmentGlobs(inner, provider);
  if (!globContains(o.service, i.service) || !globContains(o.resource, i.resource)) return false;
  const finite = finiteActions(provider);
  if (finite && provider) {
    return finite
      .filter((a) => actionSegmentMatches(inner, provider, a))
      .every((a) => coveringActions(provider, a).some((c) => actionSegmentMatches(outer, provider, c)));
  }
  return globContains(o.action, i.action);
}

/** Could some request granted by `grant` be stopped by `deny`? Exact up to the case rules. */
export function ruleOverlaps(grant: Rule, deny: Rule): boolean {
  if (!globIntersects(grant.provider.raw, deny.provider.raw)) return false;
  // Compare case-insensitively unless both sides pin a case-sensitive provider: over-reporting an
  // overlap is the safe mistake here.
  const provider = grant.literalProvider ?? deny.literalProvider;
  const strict = provider !== undefined && !RULES[provider].foldAction;
  const strictRes = provider !== undefined && !RULES[provider].foldResource;
  const gs = provider === "github" ? grant.service.github : strict ? grant.service.raw : grant.service.folded;
  const ds = provider === "github" ? deny.service.github : strict ? deny.service.raw : deny.service.folded;
  if (!globIntersects(gs, ds)) return false;
  if (
    !globIntersects(
      strictRes ? grant.resource.raw : grant.resource.folded,
      strictRes ? deny.resource.raw : deny.resource.folded,
    )
  ) {
    return false;
  }
  const finite = finiteActions(provider);
  if (finite && provider) {
    return finite
      .filter((a) => actionSegmentMatches(grant, provider, a))
      .some((a) => includedActions(provider, a).some((c) => actionSegmentMatches(deny, provider, c)));
  }
  return globIntersects(
    strict ? grant.action.raw : grant.action.folded,
    strict ? deny.action.raw : deny.action.folded,
  );
}

export function ruleToString(r: RuleText): string {
  return `${r.action} on ${r.resource}`;
}
