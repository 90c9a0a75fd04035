/**
 * A writ's `aws:` grants as an IAM session policy: the JSON `sts:AssumeRole` takes as `Policy`, so
 * the role session can do no more than the writ (the session's permissions are the role's policies
 * ∩ this one).
 *
 * Translation, per alternative of each pattern segment:
 * - action `aws:s3:GetObject|ListBucket` → `s3:GetObject`, `s3:ListBucket`; `*` and `?` stay IAM
 *   wildcards; `aws:*:*` → `*`. A service pattern IAM cannot express (`s3*`, or `*` with a named
 *   action) makes a grant untranslatable: it is left out (narrower, never wider) and said so;
 * - resource `arn:aws:s3:::acme-reports/*` → the same ARN pattern; a literal `*`, `?` or `$`
 *   (escaped in writ) becomes IAM's `${*}`, `${?}`, `${$}`, so nothing turns into a wildcard or a
 *   policy variable. IAM's `*` stays inside one ARN field where writ's would cross `:`, so IAM
 *   matches a subset of what writ's pattern does: never more.
 * - the ceiling's `aws:` denies that overlap a grant become Deny statements, widened where IAM cannot
 *   say them exactly (a deny may only grow). Denies disjoint from every grant are left out: the
 *   session's allows are inside the grants, so such a deny could not remove anything, and the
 *   session policy has 2,048 characters to spend.
 *
 * The result is minified JSON; STS refuses a plain-text session policy over 2,048 characters
 * (`SESSION_POLICY_MAX_CHARS`), and so does writ, before calling it.
 */
import {
  compileRule,
  type Glob,
  globMatches,
  literalOf,
  type Rule,
  type RuleText,
  ruleOverlaps,
} from "../../core/index.js";

type Alt = Glob["alts"][number];

/** STS's documented limit on the plain text of an inline session policy (AssumeRole `Policy`). */
export const SESSION_POLICY_MAX_CHARS = 2048;

export interface IamStatement {
  readonly Effect: "Allow" | "Deny";
  readonly Action: string | string[];
  readonly Resource: string | string[];
}

export interface IamPolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: IamStatement[];
}

export interface SessionPolicy {
  readonly document: IamPolicyDocument;
  /** The minified JSON sent to STS. */
  readonly json: string;
  /** Grants of the writ that name AWS and made it into the policy. */
  readonly translated: readonly RuleText[];
  /** Grants naming AWS that IAM cannot express: left out, with why. */
  readonly untranslatable: readonly { readonly grant: RuleText; readonly why: string }[];
  /** Ceiling denies carried as Deny statements. */
  readonly denies: readonly RuleText[];
}

/** Does the rule's provider segment name AWS (literally or by a wildcard)? */
export function namesAws(rule: Rule): boolean {
  return globMatches(rule.provider.raw, "aws");
}

const SERVICE = /^[a-z0-9-]+$/i;
const ACTION_CHARS = /^[A-Za-z0-9]$/;

function isStarOnly(alt: Alt): boolean {
  return alt.length === 1 && alt[0]!.t === "star";
}

/** One action-name alternative in IAM syntax, or undefined when it holds a character IAM has not. */
function actionName(alt: Alt): string | undefined {
  let out = "";
  for (const t of alt) {
    if (t.t === "star") out += "*";
    else if (t.t === "one") out += "?";
    else if (ACTION_CHARS.test(t.c)) out += t.c;
    else return undefined;
  }
  return out;
}

type Actions =
  | { readonly ok: true; readonly actions: string[] }
  | { readonly ok: false; readonly why: string };

/** IAM `Action` values for a rule: exact, or a reason it cannot be said in IAM. */
function iamActions(rule: Rule): Actions {
  const out = new Set<string>();
  for (const s of rule.service.raw.alts) {
    for (const a of rule.action.raw.alts) {
      const name = actionName(a);
      if (name === undefined) {
        return {
          ok: false,
          why: `action ${q(rule.action.raw.source)} has a character IAM actions cannot hold`,
        };
      }
      if (isStarOnly(s)) {
        if (name !== "*") {
          return { ok: false, why: `IAM cannot name action ${q(name)} in every service (\`*:${name}\`)` };
        }
        out.add("*");
        continue;
      }
      const service = literalOf(s);
      if (service === undefined || !SERVICE.test(service)) {
        return { ok: false, why: `IAM has no wildcards in a service prefix (${q(rule.service.raw.source)})` };
      }
      out.add(`${service.toLowerCase()}:${name}`);
    }
  }
  return { ok: true, actions: out.has("*") ? ["*"] : [...out] };
}

/** One resource alternative in IAM syntax (escapes for literal `*`, `?`, `$`). */
function resourceText(alt: Alt): string {
  let out = "";
  for (const t of alt) {
    if (t.t === "star") out += "*";
    else if (t.t === "one") out += "?";
    else if (t.c === "*" || t.c === "?" || t.c === "$") out += `\${${t.c}}`;
    else out += t.c;
  }
  return out;
}

type Resources =
  | { readonly ok: true; readonly resources: string[] }
  | { readonly ok: false; readonly why: string };

function iamResources(rule: Rule): Resources {
  const out = new Set<string>();
  for (const alt of rule.resource.raw.alts) {
    if (isStarOnly(alt)) return { ok: true, resources: ["*"] };
    const text = resourceText(alt);
    if (!text.startsWith("arn:")) {
      return { ok: false, why: `resource ${q(rule.resource.raw.source)} is not an ARN pattern` };
    }
    out.add(text);
  }
  return { ok: true, resources: [...out] };
}

/**
 * A deny's resources, widened where IAM would match less than writ: a wildcard inside the first five
 * ARN fields is cut to `arn:…:*` there (IAM lets a final `*` run on across the remaining fields);
 * anything not an ARN pattern becomes `*`.
 */
function denyResources(rule: Rule): string[] {
  const out = new Set<string>();
  for (const alt of rule.resource.raw.alts) {
    const text = resourceText(alt);
    if (isStarOnly(alt) || !text.startsWith("arn:")) return ["*"];
    let colons = 0;
    let cut: string | undefined;
    for (let i = 0; i < alt.length; i++) {
      const t = alt[i]!;
      if (t.t === "lit" && t.c === ":") colons++;
      if (colons >= 5) break;
      if (t.t !== "lit") {
        cut = `${resourceText(alt.slice(0, i))}*`;
        break;
      }
    }
    out.add(cut ?? text);
  }
  return [...out];
}

/** What a ceiling deny becomes in IAM: its actions (or `*`) on its widened resources. */
export function denyAtom(rule: Rule): { readonly actions: string[]; readonly resources: string[] } {
  const actions = iamActions(rule);
  return { actions: actions.ok ? actions.actions : ["*"], resources: denyResources(rule) };
}

function one(list: string[]): string | string[] {
  return list.length === 1 ? list[0]! : list;
}

interface Atom {
  readonly actions: string[];
  readonly resources: string[];
}

/** Groups atoms into few statements: same resources share one, then same actions share one. */
function statements(effect: "Allow" | "Deny", atoms: readonly Atom[]): IamStatement[] {
  const byResources = new Map<string, { actions: Set<string>; resources: string[] }>();
  for (const a of atoms) {
    const resources = [...new Set(a.resources)].sort();
    const key = JSON.stringify(resources);
    const entry = byResources.get(key) ?? { actions: new Set<string>(), resources };
    for (const x of a.actions) entry.actions.add(x);
    byResources.set(key, entry);
  }
  const byActions = new Map<string, { actions: string[]; resources: Set<string> }>();
  for (const { actions, resources } of byResources.values()) {
    const list = actions.has("*") ? ["*"] : [...actions].sort();
    const key = JSON.stringify(list);
    const entry = byActions.get(key) ?? { actions: list, resources: new Set<string>() };
    for (const r of resources) entry.resources.add(r);
    byActions.set(key, entry);
  }
  return [...byActions.values()].map(({ actions, resources }) => {
    const res = resources.has("*") ? ["*"] : [...resources].sort();
    return { Effect: effect, Action: one(actions), Resource: one(res) };
  });
}

/** The session policy for a writ's grants under its ceiling's denies. */
export function sessionPolicy(grants: readonly RuleText[], denies: readonly RuleText[]): SessionPolicy {
  const allowAtoms: Atom[] = [];
  const translated: RuleText[] = [];
  const untranslatable: { grant: RuleText; why: string }[] = [];
  const kept: Rule[] = [];
  for (const text of grants) {
    const rule = compileRule(text);
    if (!namesAws(rule)) continue;
    const actions = iamActions(rule);
    const resources = iamResources(rule);
    if (!actions.ok) untranslatable.push({ grant: text, why: actions.why });
    else if (!resources.ok) untranslatable.push({ grant: text, why: resources.why });
    else {
      allowAtoms.push({ actions: actions.actions, resources: resources.resources });
      translated.push(text);
      kept.push(rule);
    }
  }
  const denyAtoms: Atom[] = [];
  const carried: RuleText[] = [];
  for (const text of denies) {
    const rule = compileRule(text);
    if (!namesAws(rule) || !kept.some((g) => ruleOverlaps(g, rule))) continue;
    denyAtoms.push(denyAtom(rule));
    carried.push(text);
  }
  const document: IamPolicyDocument = {
    Version: "2012-10-17",
    Statement: [...statements("Allow", allowAtoms), ...statements("Deny", denyAtoms)],
  };
  return { document, json: JSON.stringify(document), translated, untranslatable, denies: carried };
}

function q(text: string): string {
  return `\`${text}\``;
}
