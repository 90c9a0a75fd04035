/**
 * Cedar action ids for writ's vocabulary. Every concrete action is a `Writ::Action` whose id is the
 * writ action (`aws:s3:GetObject`), member of its service group (`aws:s3`) and its provider group
 * (`aws`), so that guardrails can say `action in Writ::Action::"aws:s3"`. GitHub levels imply each
 * other as in the core: `github:contents:write` is also in `github:contents:read`, so a guardrail
 * that forbids reading also stops writing (it would include a read).
 *
 * Ids are compared the way the core compares actions: AWS and GitHub case-insensitively (GitHub
 * with `-` = `_`), everything else exactly. One spelling per action is kept — the guardrails' own
 * if they name it, else the AWS catalog's, else the first one seen — and requests are mapped onto
 * it, so `aws:s3:getobject` meets a guardrail written for `aws:s3:GetObject`.
 */
import {
  type Glob,
  isProvider,
  type ParsedAction,
  type Provider,
  parseRequestAction,
  RULES,
  type Rule,
  type Vocabulary,
} from "../core/index.js";

const GITHUB_LEVELS = ["read", "write", "admin"] as const;

function foldService(provider: Provider, service: string): string {
  if (provider === "github") return service.toLowerCase().replace(/-/g, "_");
  return RULES[provider].foldAction ? service.toLowerCase() : service;
}

/** The comparison key of an action or group id. */
export function actionKey(id: string): string {
  const provider = id.split(":", 1)[0]!.toLowerCase();
  if (provider === "github") return id.toLowerCase().replace(/-/g, "_");
  if (provider === "aws") return id.toLowerCase();
  return isProvider(provider) ? `${provider}${id.slice(provider.length)}` : id;
}

/** The preferred spelling of a concrete action: the AWS catalog's, GitHub's lower case. */
export function canonicalAction(a: ParsedAction, vocab: Vocabulary): string {
  const service = foldService(a.provider, a.service);
  if (a.provider === "github") return `github:${service}:${a.action.toLowerCase()}`;
  if (a.provider === "aws") {
    const known = vocab.aws?.actions(service)?.get(a.action.toLowerCase());
    return `aws:${service}:${known?.name ?? a.action}`;
  }
  return `${a.provider}:${service}:${a.action}`;
}

/** Group ids (and implied GitHub levels) a concrete action belongs to, in canonical spelling. */
export function actionParents(a: ParsedAction): string[] {
  const service = foldService(a.provider, a.service);
  const parents = [`${a.provider}:${service}`, a.provider];
  if (a.provider === "github") {
    const level = GITHUB_LEVELS.indexOf(a.action.toLowerCase() as (typeof GITHUB_LEVELS)[number]);
    for (let i = 0; i < level; i++) parents.push(`github:${service}:${GITHUB_LEVELS[i]}`);
  }
  return parents;
}

/** Is `id` a group id writ understands: `aws` or `aws:s3`? */
export function parseGroup(id: string): { provider: Provider; service?: string } | undefined {
  const parts = id.split(":");
  const provider = parts[0]!.toLowerCase();
  if (!isProvider(provider) || parts.length > 2) return undefined;
  if (parts.length === 1) return parts[0] === provider ? { provider } : undefined;
  const service = parts[1]!;
  return RULES[provider].serviceShape.test(service) ? { provider, service } : undefined;
}

/** Parses a concrete action id, or undefined. */
export function parseAction(id: string): ParsedAction | undefined {
  try {
    return parseRequestAction(id);
  } catch {
    return undefined;
  }
}

function literalAlternatives(g: Glob): string[] {
  const out: string[] = [];
  for (const alt of g.alts) {
    if (alt.every((t) => t.t === "lit")) out.push(alt.map((t) => (t.t === "lit" ? t.c : "")).join(""));
  }
  return out;
}

/** Every concrete action a rule names literally: `aws:s3:GetObject|ListBucket` names two. */
export function concreteActions(rule: Rule): string[] {
  const out: string[] = [];
  for (const p of literalAlternatives(rule.provider.raw)) {
    for (const s of literalAlternatives(rule.service.raw)) {
      for (const a of literalAlternatives(rule.action.raw)) out.push(`${p}:${s}:${a}`);
    }
  }
  return out;
}
