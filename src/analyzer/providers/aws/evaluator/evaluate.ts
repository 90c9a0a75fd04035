/**
 * The decision, following the IAM User Guide's "Policy evaluation logic" pages (how the
 * enforcement code evaluates requests, single-account and cross-account evaluation):
 *
 * 1. An explicit Deny in any applicable policy — identity, resource, permissions boundary, session,
 *    SCP, RCP — decides: explicit deny.
 * 2. RCPs (resource's account, member accounts only, services that support RCPs) and SCPs
 *    (principal's account, member accounts only, not service-linked roles) must allow at every
 *    level of the organization path, root to account; a level with no Allow is an implicit deny.
 * 3. Same account: a resource-based policy that names the user, the role session (or `*`) allows
 *    on its own; one that names the role ARN (or, for a federated session, the IAM user that made
 *    it) allows only within the permissions boundary and session policy; one that names the account
 *    delegates to identity-based policies. Otherwise identity-based ∩ boundary ∩ session.
 *    Services whose resource policy is required (KMS key policies, role trust policies) allow
 *    only through that policy.
 * 4. Cross account: both the principal's side (identity ∩ boundary ∩ session) and the resource
 *    policy must allow.
 * A policy with an error is never decisive for an allow: the answer is then an implicit deny that
 * carries the errors. So is an action the catalog does not know.
 */
import { arnMatch } from "./arn.js";
import { conditionsHold } from "./conditions.js";
import { wildcardMatch } from "./glob.js";
import { type Policy, type PolicyKind, type PolicyProblem, policyErrors, type Statement } from "./policy.js";
import { type AwsPrincipal, type AwsRequest, arnAccount, buildContext, type Context } from "./request.js";
import { resolvePattern } from "./variables.js";

export type DecisionKind = "allow" | "explicit-deny" | "implicit-deny";

export interface StatementRef {
  readonly policyId: string;
  readonly policyKind: PolicyKind;
  readonly statement: number;
  readonly sid?: string;
  readonly effect: "Allow" | "Deny";
  /** For SCPs and RCPs: the organization node the policy is attached to. */
  readonly level?: string;
}

export interface EvalProblem {
  readonly code: string;
  readonly message: string;
  readonly policyId?: string;
  readonly path?: string;
}

export interface Decision {
  readonly decision: DecisionKind;
  /** The statements that decided: the denies, or every allow the decision needed. */
  readonly deciding: readonly StatementRef[];
  /** One line: why. */
  readonly reason: string;
  readonly errors: readonly EvalProblem[];
  readonly crossAccount: boolean;
}

export interface OrgNode {
  /** `r-…` root, `ou-…` unit, or a 12-digit account id. */
  readonly id: string;
  readonly parent?: string;
  /** Undefined: the policy type is not enabled. Empty: enabled with nothing attached (denies). */
  readonly scps?: readonly Policy[];
  readonly rcps?: readonly Policy[];
}

export interface Organization {
  readonly managementAccountId: string;
  readonly nodes: readonly OrgNode[];
}

export interface PolicySet {
  /** Inline and managed policies of the principal (and, for a user, of its groups). */
  readonly identity: readonly Policy[];
  readonly boundary?: Policy;
  /** Session policies (inline and managed) passed when the session was made. */
  readonly session?: readonly Policy[];
  readonly resource?: Policy;
  readonly organization?: Organization;
}

/** What the evaluator needs from the action catalog; loaded at the edge, asked synchronously. */
export interface ActionCatalog {
  /** true/false, or undefined when the service was not loaded. */
  hasAction(service: string, action: string): boolean | undefined;
  /** Services whose resources RCPs govern. */
  supportsRcp(service: string): boolean;
}

export interface EvaluateOptions {
  readonly catalog?: ActionCatalog;
  /** Force the resource policy to be required (otherwise: kms, and sts:AssumeRole* on a role). */
  readonly resourcePolicyRequired?: boolean;
}

type MatchKind = "direct" | "parent-arn" | "account";
const RANK: Record<MatchKind, number> = { direct: 3, "parent-arn": 2, account: 1 };

function actionMatches(st: Statement, action: string): boolean {
  if (st.action) return st.action.some((p) => wildcardMatch(p, action, true));
  return !st.notAction!.some((p) => wildcardMatch(p, action, true));
}

function resourceMatches(st: Statement, resource: string, ctx: Context, vars: boolean): boolean {
  const one = (p: string) => {
    const parts = resolvePattern(p, ctx, vars);
    return parts !== undefined && arnMatch(parts, resource);
  };
  if (st.resource) return st.resource.some(one);
  if (st.notResource) return !st.notResource.some(one);
  return true;
}

function accountOf(value: string): string | undefined {
  if (/^\d{12}$/.test(value)) return value;
  const m = /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(value);
  return m ? m[1] : undefined;
}

/** How a Principal element names the requester, if it does. */
function principalMatch(spec: Statement["principal"], p: AwsPrincipal): MatchKind | undefined {
  if (!spec) return undefined;
  if (spec.any) return "direct";
  let best: MatchKind | undefined;
  const take = (k: MatchKind) => {
    if (!best || RANK[k] > RANK[best]) best = k;
  };
  if (p.kind === "service") {
    if (spec.byType.get("Service")?.includes(p.arn)) take("direct");
    return best;
  }
  for (const v of spec.byType.get("AWS") ?? []) {
    if (v === "*") take("direct");
    else if (v === p.arn) take("direct");
    else if (p.kind === "role-session" && v === p.roleArn) take("parent-arn");
    else if (p.kind === "federated-user" && p.userArn && v === p.userArn) take("parent-arn");
    else if (accountOf(v) === p.account) take(p.kind === "root" ? "direct" : "account");
  }
  return best;
}

/** NotPrincipal excludes the requester only when it lists every identity in its chain. */
function excludedByNotPrincipal(
  spec: NonNullable<Statement["notPrincipal"]>,
  p: AwsPrincipal,
  boundary: boolean,
) {
  if (spec.any) return true;
  if (boundary) return false;
  if (p.kind === "service") return spec.byType.get("Service")?.includes(p.arn) ?? false;
  const listed = spec.byType.get("AWS") ?? [];
  if (listed.includes("*")) return true;
  const has = (arn: string) => listed.includes(arn);
  const hasAccount = listed.some((v) => accountOf(v) === p.account);
  switch (p.kind) {
    case "root":
      return hasAccount;
    case "user":
      return has(p.arn) && hasAccount;
    case "role-session":
      return has(p.arn) && has(p.roleArn!) && hasAccount;
    case "federated-user":
      return has(p.arn) && hasAccount;
  }
}

interface Hit {
  readonly ref: StatementRef;
  readonly match?: MatchKind;
}

interface Scope {
  readonly req: AwsRequest;
  readonly action: string;
  readonly ctx: Context;
  readonly hasBoundary: boolean;
}

/** The statements of one policy that apply to the request. */
function applicable(policy: Policy, s: Scope, level?: string): Hit[] {
  const hits: Hit[] = [];
  const vars = policy.version === "2012-10-17";
  for (const st of policy.statements) {
    let match: MatchKind | undefined;
    if (policy.kind === "resource" || policy.kind === "rcp") {
      if (st.principal) {
        match = principalMatch(st.principal, s.req.principal);
        if (!match) continue;
      } else if (st.notPrincipal) {
        if (excludedByNotPrincipal(st.notPrincipal, s.req.principal, s.hasBoundary)) continue;
        match = "direct";
      }
    }
    if (!actionMatches(st, s.action)) continue;
    if (!resourceMatches(st, s.req.resource, s.ctx, vars)) continue;
    if (!conditionsHold(st.conditions, s.ctx, vars)) continue;
    const ref: StatementRef = {
      policyId: policy.id,
      policyKind: policy.kind,
      statement: st.index,
      effect: st.effect,
      ...(st.sid !== undefined ? { sid: st.sid } : {}),
      ...(level !== undefined ? { level } : {}),
    };
    hits.push(match ? { ref, match } : { ref });
  }
  return hits;
}

const nodeIndex = new WeakMap<Organization, ReadonlyMap<string, OrgNode>>();
const errorIndex = new WeakMap<Policy, readonly PolicyProblem[]>();

function errorsOf(p: Policy): readonly PolicyProblem[] {
  let e = errorIndex.get(p);
  if (!e) {
    e = policyErrors(p);
    errorIndex.set(p, e);
  }
  return e;
}

/** Root-to-account path of an account in the organization, or undefined when it is not a member. */
export function orgPath(org: Organization, account: string): OrgNode[] | undefined {
  let byId = nodeIndex.get(org);
  if (!byId) {
    byId = new Map(org.nodes.map((n) => [n.id, n]));
    nodeIndex.set(org, byId);
  }
  const path: OrgNode[] = [];
  let node = byId.get(account);
  if (!node) return undefined;
  const seen = new Set<string>();
  while (node) {
    if (seen.has(node.id)) return undefined;
    seen.add(node.id);
    path.unshift(node);
    node = node.parent ? byId.get(node.parent) : undefined;
  }
  return path;
}

function resourcePolicyRequired(action: string, resource: string): boolean {
  const [service, name] = action.toLowerCase().split(":") as [string, string];
  if (service === "kms") return true;
  return (
    service === "sts" && name.startsWith("assumerole") && /^arn:aws[a-z-]*:iam::\d{12}:role\//.test(resource)
  );
}

/** The problems of the request and the policies: a decision with any of them is never an allow. */
function inputErrors(
  req: AwsRequest,
  policies: PolicySet,
  opts: EvaluateOptions,
  service: string,
): EvalProblem[] {
  const errors: EvalProblem[] = [];
  const all: Policy[] = [...policies.identity];
  if (policies.boundary) all.push(policies.boundary);
  if (policies.session) all.push(...policies.session);
  if (policies.resource) all.push(policies.resource);
  for (const n of policies.organization?.nodes ?? []) all.push(...(n.scps ?? []), ...(n.rcps ?? []));
  for (const p of all) {
    for (const e of errorsOf(p)) errors.push(problemOf(e));
  }
  const colon = req.action.indexOf(":");
  if (colon <= 0 || /[*?]/.test(req.action)) {
    errors.push({ code: "ERR_AWS_ACTION", message: `\`${req.action}\` is not an action (service:Action)` });
  } else if (opts.catalog) {
    const known = opts.catalog.hasAction(service, req.action.slice(colon + 1));
    if (known === false) {
      errors.push({ code: "ERR_AWS_UNKNOWN_ACTION", message: `unknown action \`${req.action}\`` });
    }
  }
  return errors;
}

/** The statements that apply to the request, per kind of policy and per organization level. */
interface Hits {
  readonly identity: Hit[];
  readonly boundary: Hit[];
  readonly session: Hit[];
  readonly resource: Hit[];
  readonly scp: { node: OrgNode; hits: Hit[] }[];
  readonly rcp: { node: OrgNode; hits: Hit[] }[];
}

/**
 * Which organization levels apply: SCPs govern the account's own IAM principals; RCPs govern its
 * resources, whoever asks (service principals included). Neither applies to service-linked roles.
 */
function hitsOf(
  policies: PolicySet,
  scope: Scope,
  resourceAccount: string,
  service: string,
  opts: EvaluateOptions,
): Hits {
  const principal = scope.req.principal;
  const org = policies.organization;
  const scpExempt = principal.kind === "service" || principal.serviceLinked === true;
  const scpPath =
    org && !scpExempt && principal.account !== org.managementAccountId
      ? orgPath(org, principal.account)
      : undefined;
  const rcpPath =
    org &&
    principal.serviceLinked !== true &&
    resourceAccount !== org.managementAccountId &&
    (opts.catalog ? opts.catalog.supportsRcp(service) : true)
      ? orgPath(org, resourceAccount)
      : undefined;
  return {
    identity: policies.identity.flatMap((p) => applicable(p, scope)),
    boundary: policies.boundary ? applicable(policies.boundary, scope) : [],
    session: (policies.session ?? []).flatMap((p) => applicable(p, scope)),
    resource: policies.resource ? applicable(policies.resource, scope) : [],
    scp: (scpPath ?? [])
      .filter((n) => n.scps !== undefined)
      .map((n) => ({ node: n, hits: n.scps!.flatMap((p) => applicable(p, scope, n.id)) })),
    rcp: (rcpPath ?? [])
      .filter((n) => n.rcps !== undefined)
      .map((n) => ({ node: n, hits: n.rcps!.flatMap((p) => applicable(p, scope, n.id)) })),
  };
}

/** A decision before its errors and cross-account flag are attached. */
type Outcome = {
  readonly decision: DecisionKind;
  readonly deciding: StatementRef[];
  readonly reason: string;
};
const outcome = (decision: DecisionKind, deciding: StatementRef[], reason: string): Outcome => ({
  decision,
  deciding,
  reason,
});
const allows = (hits: readonly Hit[]) => hits.filter((h) => h.ref.effect === "Allow");

/** 1. An explicit deny anywhere. */
function explicitDeny(h: Hits): Outcome | undefined {
  const denies = [
    ...h.identity,
    ...h.boundary,
    ...h.session,
    ...h.resource,
    ...h.scp.flatMap((l) => l.hits),
    ...h.rcp.flatMap((l) => l.hits),
  ]
    .filter((x) => x.ref.effect === "Deny")
    .map((x) => x.ref);
  return denies.length > 0
    ? outcome("explicit-deny", denies, `explicitly denied by ${describe(denies[0]!)}`)
    : undefined;
}

/** 2. RCPs then SCPs, every level: the allowing statement of each, or the level that allows nothing. */
function organizationAllows(h: Hits): StatementRef[] | Outcome {
  const needed: StatementRef[] = [];
  for (const [kind, levels] of [
    ["RCP", h.rcp],
    ["SCP", h.scp],
  ] as const) {
    for (const l of levels) {
      const a = allows(l.hits);
      if (a.length === 0)
        return outcome("implicit-deny", [], `no ${kind} attached to \`${l.node.id}\` allows it`);
      needed.push(a[0]!.ref);
    }
  }
  return needed;
}

/** 3. The principal's side (identity policies within the boundary and session policies) and the resource's. */
interface Sides {
  readonly identityAllow: Hit[];
  readonly boundaryOk: boolean;
  readonly sessionOk: boolean;
  readonly principalSide: boolean;
  readonly direct: StatementRef[];
  readonly parent: StatementRef[];
  readonly delegated: StatementRef[];
  readonly ceilings: () => StatementRef[];
  readonly sideFailure: () => string;
}

function sidesOf(policies: PolicySet, h: Hits, principal: AwsPrincipal): Sides {
  const identityAllow = allows(h.identity);
  const boundaryAllow = allows(h.boundary);
  const sessionAllow = allows(h.session);
  const boundaryOk = !policies.boundary || boundaryAllow.length > 0;
  const sessionOk = !policies.session || policies.session.length === 0 || sessionAllow.length > 0;
  const resourceAllow = allows(h.resource);
  const byKind = (k: MatchKind) => resourceAllow.filter((x) => x.match === k).map((x) => x.ref);
  return {
    identityAllow,
    boundaryOk,
    sessionOk,
    // The root user holds every permission of its own account; only SCPs limit it there.
    principalSide: principal.kind === "root" || (identityAllow.length > 0 && boundaryOk && sessionOk),
    direct: byKind("direct"),
    parent: byKind("parent-arn"),
    delegated: byKind("account"),
    ceilings: () => [
      ...(policies.boundary ? [boundaryAllow[0]!.ref] : []),
      ...(policies.session?.length ? [sessionAllow[0]!.ref] : []),
    ],
    sideFailure: () =>
      identityAllow.length === 0
        ? "no identity-based policy allows it"
        : !boundaryOk
          ? "the permissions boundary does not allow it"
          : "no session policy allows it",
  };
}

/** A request inside the principal's own account (or by a service principal, or the root user). */
function sameAccount(req: AwsRequest, opts: EvaluateOptions, needed: StatementRef[], s: Sides): Outcome {
  const principal = req.principal;
  if (principal.kind === "service") {
    if (s.direct.length > 0)
      return outcome("allow", [...needed, ...s.direct], "allowed by the resource-based policy");
    return outcome("implicit-deny", [], "no resource-based policy allows the service principal");
  }
  if (principal.kind === "root") {
    return outcome("allow", needed, "the account root user has full access to its own account's resources");
  }
  const required = opts.resourcePolicyRequired ?? resourcePolicyRequired(req.action, req.resource);
  if (s.direct.length > 0) {
    return outcome(
      "allow",
      [...needed, ...s.direct],
      "allowed by a resource-based policy that names the principal",
    );
  }
  if (s.parent.length > 0 && s.boundaryOk && s.sessionOk) {
    return outcome("allow", [...needed, ...s.parent, ...s.ceilings()], "allowed by a resource-based policy");
  }
  if (required) {
    if (s.delegated.length === 0) {
      return outcome("implicit-deny", [], "the resource-based policy (required here) does not allow it");
    }
    if (!s.principalSide) return outcome("implicit-deny", [], s.sideFailure());
    return outcome(
      "allow",
      [...needed, s.delegated[0]!, s.identityAllow[0]!.ref, ...s.ceilings()],
      "allowed by identity-based policy under the resource policy's delegation to the account",
    );
  }
  if (!s.principalSide) return outcome("implicit-deny", [], s.sideFailure());
  return outcome(
    "allow",
    [...needed, s.identityAllow[0]!.ref, ...s.ceilings()],
    "allowed by an identity-based policy",
  );
}

/** Cross account: both sides must allow it. */
function crossAccountOutcome(policies: PolicySet, needed: StatementRef[], s: Sides): Outcome {
  if (!s.principalSide) return outcome("implicit-deny", [], `cross-account: ${s.sideFailure()}`);
  const granted = [...s.direct, ...s.parent, ...s.delegated];
  if (granted.length === 0) {
    return outcome(
      "implicit-deny",
      [],
      policies.resource
        ? "cross-account: the resource-based policy does not allow it"
        : "cross-account: no resource-based policy",
    );
  }
  return outcome(
    "allow",
    [...needed, ...s.identityAllow.slice(0, 1).map((x) => x.ref), ...s.ceilings(), granted[0]!],
    "cross-account: allowed by both the principal's policies and the resource-based policy",
  );
}

/**
 * AWS's documented evaluation logic, in its order: problems of the input (never an allow), an
 * explicit deny anywhere, the organization's RCPs and SCPs at every level, then the principal's and
 * the resource's sides — within one account, or across accounts where both must allow.
 */
export function evaluate(req: AwsRequest, policies: PolicySet, opts: EvaluateOptions = {}): Decision {
  const colon = req.action.indexOf(":");
  const service = colon > 0 ? req.action.slice(0, colon).toLowerCase() : "";
  const errors = inputErrors(req, policies, opts, service);
  const principal = req.principal;
  const resourceAccount = req.resourceAccount ?? arnAccount(req.resource) ?? principal.account;
  const crossAccount = principal.kind !== "service" && resourceAccount !== principal.account;
  const ctx = buildContext(req, resourceAccount);
  const scope: Scope = { req, action: req.action, ctx, hasBoundary: policies.boundary !== undefined };
  const done = (o: Outcome): Decision => ({ ...o, errors, crossAccount });
  const h = hitsOf(policies, scope, resourceAccount, service, opts);
  const denied = explicitDeny(h);
  if (denied) return done(denied);
  if (errors.length > 0)
    return done(outcome("implicit-deny", [], `not evaluated to an allow: ${errors[0]!.message}`));
  const needed = organizationAllows(h);
  if (!Array.isArray(needed)) return done(needed);
  const sides = sidesOf(policies, h, principal);
  return done(
    crossAccount ? crossAccountOutcome(policies, needed, sides) : sameAccount(req, opts, needed, sides),
  );
}

function problemOf(p: PolicyProblem): EvalProblem {
  return {
    code: p.code,
    message: `${p.policyId}: ${p.path ? `${p.path}: ` : ""}${p.message}`,
    policyId: p.policyId,
    path: p.path,
  };
}

export function describe(r: StatementRef): string {
  const where = r.level ? ` at \`${r.level}\`` : "";
  return `${r.policyKind} policy \`${r.policyId}\` statement ${r.statement}${r.sid ? ` (${r.sid})` : ""}${where}`;
}
