/**
 * Proof of scoping: before writ asks STS for a role session, it shows that the session could do
 * nothing the writ does not grant. Two checks, both must pass:
 *
 * 1. Symbolic (sound). The session's effective permissions are the role's policies ∩ the session
 *    policy, minus denies, so they are inside the session policy's Allow statements. The policy is
 *    parsed back with writ's IAM parser (what STS gets, not what writ meant to send); every
 *    (Action, Resource) pair of every Allow is read as a writ rule — IAM's escapes `${*}`, `${?}`,
 *    `${$}` as literals, IAM wildcards as writ wildcards, which match at least what IAM's do — and
 *    must be contained (core `ruleContains`) in one of the writ's grants. `NotAction`,
 *    `NotResource` and policy variables in an Allow fail the proof. Every ceiling deny that overlaps
 *    an Allow must be carried as a Deny statement, as `policy.ts` widens it.
 * 2. Evaluated. The role's own policies (from `get-account-authorization-details`) and the session
 *    policy go through writ's IAM evaluator for probe requests drawn from both sides' patterns:
 *    every request it allows must be covered by a grant and hit no deny under writ's own matching.
 *    The same probes say which grants the role itself cannot honour (a note, not a refusal: AWS
 *    then refuses those calls, which is narrower, never wider).
 */
import {
  type AwsPrincipal,
  evaluate,
  type Policy,
  parsePolicy,
  principalFromArn,
} from "../../analyzer/providers/aws/index.js";
import {
  compileRule,
  isWritError,
  parseRequestAction,
  type Rule,
  type RuleText,
  ruleContains,
  ruleMatches,
  ruleOverlaps,
} from "../../core/index.js";
import { denyAtom, namesAws } from "./policy.js";

/** The role a session would be of, with its policies as the account has them. */
export interface RolePolicies {
  readonly arn: string;
  readonly identity: readonly Policy[];
  readonly boundary?: Policy | undefined;
}

export interface ProofInput {
  /** The session policy exactly as it would be sent. */
  readonly policyJson: string;
  readonly grants: readonly RuleText[];
  readonly denies: readonly RuleText[];
  readonly role?: RolePolicies | undefined;
  /** Upper bound on evaluated probes (default 4,000). */
  readonly maxProbes?: number | undefined;
}

export type ProofResult =
  | { readonly ok: true; readonly notes: readonly string[]; readonly probes: number }
  | { readonly ok: false; readonly violation: string };

const fail = (violation: string): ProofResult => ({ ok: false, violation });

/** An IAM action pattern as a writ action pattern. */
function writAction(iam: string): string {
  if (iam === "*") return "aws:*:*";
  const colon = iam.indexOf(":");
  return `aws:${iam.slice(0, colon)}:${iam.slice(colon + 1)}`;
}

/** An IAM resource pattern as a writ resource pattern, or undefined when it holds a policy variable. */
function writResource(iam: string): string | undefined {
  let out = "";
  for (let i = 0; i < iam.length; i++) {
    const ch = iam[i]!;
    if (ch === "$" && iam[i + 1] === "{") {
      const esc = iam.slice(i, i + 4);
      if (esc === "${*}") out += "\\*";
      else if (esc === "${?}") out += "\\?";
      else if (esc === "${$}") out += "$";
      else return undefined;
      i += 3;
    } else if (ch === "|" || ch === "\\") out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

function compiledAws(texts: readonly RuleText[]): Rule[] {
  return texts.map((t) => compileRule(t)).filter(namesAws);
}

/** Check 1: the session policy's allows inside the grants, overlapping denies carried. */
function symbolic(policy: Policy, grants: readonly Rule[], denies: readonly Rule[]): string | undefined {
  const denyActions = new Set<string>();
  const denyResources = new Set<string>();
  const denyPairs: { actions: readonly string[]; resources: readonly string[] }[] = [];
  for (const st of policy.statements) {
    if (st.effect !== "Deny" || st.conditions.length > 0 || !st.action || !st.resource) continue;
    denyPairs.push({ actions: st.action, resources: st.resource });
    for (const a of st.action) denyActions.add(a.toLowerCase());
    for (const r of st.resource) denyResources.add(r);
  }
  const carried = (d: Rule): boolean => {
    const atom = denyAtom(d);
    return denyPairs.some(
      (p) =>
        atom.actions.every((a) => p.actions.some((x) => x === "*" || x.toLowerCase() === a.toLowerCase())) &&
        atom.resources.every((r) => p.resources.some((x) => x === "*" || x === r)),
    );
  };
  for (const st of policy.statements) {
    if (st.effect !== "Allow") continue;
    const at = `statement ${st.index}`;
    if (!st.action) return `${at} allows by \`NotAction\`, which writ never generates`;
    if (!st.resource) return `${at} allows by \`NotResource\`, which writ never generates`;
    for (const a of st.action) {
      for (const r of st.resource) {
        const resource = writResource(r);
        if (resource === undefined) return `${at}: resource \`${r}\` holds a policy variable`;
        let atom: Rule;
        try {
          atom = compileRule({ action: writAction(a), resource });
        } catch (err) {
          if (isWritError(err)) return `${at}: \`${a}\` on \`${r}\` is not a pattern writ can read`;
          throw err;
        }
        if (!grants.some((g) => ruleContains(g, atom))) {
          return `${at} allows \`${a}\` on \`${r}\`, which no grant of the writ covers`;
        }
        const hit = denies.find((d) => ruleOverlaps(atom, d) && !carried(d));
        if (hit) {
          return `${at} allows \`${a}\` on \`${r}\`, which overlaps the ceiling deny \`${hit.text.action}\` on \`${hit.text.resource}\` not carried as a Deny`;
        }
      }
    }
  }
  return undefined;
}

/** Concrete strings a pattern stands for: its wildcards filled two ways. */
function instances(pattern: string, fills: readonly string[]): string[] {
  return fills.map((fill) => {
    let out = "";
    for (let i = 0; i < pattern.length; i++) {
      const esc = pattern.slice(i, i + 4);
      if (esc === "${*}" || esc === "${?}" || esc === "${$}") {
        out += esc[2];
        i += 3;
      } else if (pattern[i] === "*") out += fill;
      else if (pattern[i] === "?") out += "x";
      else out += pattern[i];
    }
    return out;
  });
}

const SAMPLE_ACTIONS = [
  "s3:GetObject",
  "s3:DeleteBucket",
  "iam:CreateUser",
  "sts:AssumeRole",
  "ec2:RunInstances",
];

function patternsOf(policies: readonly Policy[]): { actions: string[]; resources: string[] } {
  const actions: string[] = [];
  const resources: string[] = [];
  for (const p of policies) {
    for (const st of p.statements) {
      actions.push(...(st.action ?? []), ...(st.notAction ?? []));
      resources.push(...(st.resource ?? []), ...(st.notResource ?? []));
    }
  }
  return { actions, resources };
}

/** Check 2: the evaluator on probes; returns a violation, or the notes. */
function evaluated(
  session: Policy,
  role: RolePolicies,
  grants: readonly Rule[],
  denies: readonly Rule[],
  maxProbes: number,
): { violation?: string; notes: string[]; probes: number } {
  const principal: AwsPrincipal = principalFromArn(role.arn, { sessionName: "writ-proof" });
  const own = patternsOf([...role.identity, ...(role.boundary ? [role.boundary] : [])]);
  const mine = patternsOf([session]);
  const grantActions = grants.flatMap((g) =>
    g.service.raw.alts.flatMap((s) =>
      g.action.raw.alts.map((a) => `${altText(s)}:${altText(a)}`.replace(/^\*:/, "s3:")),
    ),
  );
  const actionSet = new Set<string>();
  for (const a of [...mine.actions, ...own.actions, ...grantActions, ...SAMPLE_ACTIONS]) {
    const pattern = a === "*" ? "s3:*" : a;
    for (const x of instances(pattern, ["", "Object"]))
      if (/^[a-z0-9-]+:[A-Za-z0-9_-]+$/i.test(x)) actionSet.add(x);
  }
  const resourceSet = new Set<string>(["*", "arn:aws:s3:::other-bucket/x"]);
  for (const r of [
    ...mine.resources,
    ...own.resources,
    ...grants.map((g) => g.text.resource.replace(/\\(.)/g, "$1")),
  ]) {
    for (const x of instances(r, ["", "x/y"])) resourceSet.add(x);
  }
  const policies = {
    identity: role.identity,
    ...(role.boundary ? { boundary: role.boundary } : {}),
    session: [session],
  };
  let probes = 0;
  for (const action of actionSet) {
    let parsed: ReturnType<typeof parseRequestAction>;
    try {
      parsed = parseRequestAction(`aws:${action}`);
    } catch {
      continue;
    }
    for (const resource of resourceSet) {
      if (probes >= maxProbes) return { notes: [], probes };
      probes++;
      const d = evaluate({ principal, action, resource }, policies);
      if (d.decision !== "allow") continue;
      const covered = grants.some((g) => ruleMatches(g, parsed, resource, "cover"));
      const denied = denies.some((x) => ruleMatches(x, parsed, resource, "include"));
      if (!covered || denied) {
        return {
          violation: `the role session could do \`${action}\` on \`${resource}\` (${d.reason}), which the writ ${denied ? "denies" : "does not grant"}`,
          notes: [],
          probes,
        };
      }
    }
  }
  const notes: string[] = [];
  for (const g of grants) {
    for (const s of g.service.raw.alts) {
      for (const a of g.action.raw.alts) {
        const act = instances(`${altText(s)}:${altText(a)}`, ["Object"])[0]!;
        const res = instances(g.text.resource.replace(/\\(.)/g, "$1"), ["x"])[0]!;
        if (!/^[a-z0-9-]+:[A-Za-z0-9_-]+$/i.test(act)) continue;
        const d = evaluate({ principal, action: act, resource: res }, policies);
        if (d.decision !== "allow" && notes.length < 5) {
          notes.push(
            `the role \`${role.arn}\` does not allow \`${act}\` on \`${res}\` (${d.reason}): AWS will refuse it`,
          );
        }
      }
    }
  }
  return { notes, probes };
}

function altText(alt: readonly { readonly t: string; readonly c?: string }[]): string {
  return alt.map((t) => (t.t === "star" ? "*" : t.t === "one" ? "?" : t.c)).join("");
}

/** Runs both checks on a session policy for a writ's grants and denies. */
export function proveScoping(input: ProofInput): ProofResult {
  const session = parsePolicy("session", "writ-session-policy", input.policyJson);
  const errors = session.problems.filter((p) => p.severity === "error");
  if (errors.length > 0)
    return fail(`the session policy is not valid IAM: ${errors[0]!.path}: ${errors[0]!.message}`);
  const grants = compiledAws(input.grants);
  const denies = compiledAws(input.denies);
  const wrong = symbolic(session, grants, denies);
  if (wrong) return fail(wrong);
  if (!input.role) return { ok: true, notes: [], probes: 0 };
  const r = evaluated(session, input.role, grants, denies, input.maxProbes ?? 4000);
  if (r.violation) return fail(r.violation);
  return { ok: true, notes: r.notes, probes: r.probes };
}
