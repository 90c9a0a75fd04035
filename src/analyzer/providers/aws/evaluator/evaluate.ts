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

export function evaluate(req: AwsRequest, policies: PolicySet, opts: EvaluateOptions = {}): Decision {
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
  const service = colon > 0 ? req.action.slice(0, colon).toLowerCase() : "";
  if (colon <= 0 || /[*?]/.test(req.action)) {
    errors.push({ code: "ERR_AWS_ACTION", message: `\`${req.action}\` is not an action (service:Action)` });
  } else if (opts.catalog) {
    const known = opts.catalog.hasAction(service, req.action.slice(colon + 1));
    if (known === false) {
      errors.push({ code: "ERR_AWS_UNKNOWN_ACTION", message: `unknown action \`${req.action}\`` });
    }
  }
  const principal = req.principal;
  const resourceAccount = req.resourceAccount ?? arnAccount(req.resource) ?? principal.account;
  const crossAccount = principal.kind !== "service" && resourceAccount !== principal.account;
  const ctx = buildContext(req, resourceAccount);
  const scope: Scope = { req, action: req.action, ctx, hasBoundary: policies.boundary !== undefined };
  const done = (decision: DecisionKind, deciding: StatementRef[], reason: string): Decision => ({
    decision,
    deciding,
    reason,
    errors,
    crossAccount,
  });

  // Which organization levels apply.
  const org = policies.organization;
  // SCPs govern the account's own IAM principals; RCPs govern its resources, whoever asks (service
  // principals included). Neither applies to service-linked roles.
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

  const identityHits = policies.identity.flatMap((p) => applicable(p, scope));
  const boundaryHits = policies.boundary ? applicable(policies.boundary, scope) : [];
  const sessionHits = (policies.session ?? []).flatMap((p) => applicable(p, scope));
  const resourceHits = policies.resource ? applicable(policies.resource, scope) : [];
  const scpLevels = (scpPath ?? [])
    .filter((n) => n.scps !== undefined)
    .map((n) => ({ node: n, hits: n.scps!.flatMap((p) => applicable(p, scope, n.id)) }));
  const rcpLevels = (rcpPath ?? [])
    .filter((n) => n.rcps !== undefined)
    .map((n) => ({ node: n, hits: n.rcps!.flatMap((p) => applicable(p, scope, n.id)) }));

  // 1. Explicit deny anywhere.
  const denies = [
    ...identityHits,
    ...boundaryHits,
    ...sessionHits,
    ...resourceHits,
    ...scpLevels.flatMap((l) => l.hits),
    ...rcpLevels.flatMap((l) => l.hits),
  ]
    .filter((h) => h.ref.effect === "Deny")
    .map((h) => h.ref);
  if (denies.length > 0) return done("explicit-deny", denies, `explicitly denied by ${describe(denies[0]!)}`);
  if (errors.length > 0) return done("implicit-deny", [], `not evaluated to an allow: ${errors[0]!.message}`);

  const allows = (hits: Hit[]) => hits.filter((h) => h.ref.effect === "Allow");
  const needed: StatementRef[] = [];
  // 2. RCPs then SCPs, every level.
  for (const [kind, levels] of [
    ["RCP", rcpLevels],
    ["SCP", scpLevels],
  ] as const) {
    for (const l of levels) {
      const a = allows(l.hits);
      if (a.length === 0)
        return done("implicit-deny", [], `no ${kind} attached to \`${l.node.id}\` allows it`);
      needed.push(a[0]!.ref);
    }
  }

  const identityAllow = allows(identityHits);
  const boundaryAllow = allows(boundaryHits);
  const sessionAllow = allows(sessionHits);
  const boundaryOk = !policies.boundary || boundaryAllow.length > 0;
  const sessionOk = !policies.session || policies.session.length === 0 || sessionAllow.length > 0;
  const resourceAllow = allows(resourceHits);
  const byKind = (k: MatchKind) => resourceAllow.filter((h) => h.match === k).map((h) => h.ref);
  const direct = byKind("direct");
  const parent = byKind("parent-arn");
  const delegated = byKind("account");
  const ceilings = () => [
    ...(policies.boundary ? [boundaryAllow[0]!.ref] : []),
    ...(policies.session?.length ? [sessionAllow[0]!.ref] : []),
  ];
  const sideFailure = (): string =>
    identityAllow.length === 0
      ? "no identity-based policy allows it"
      : !boundaryOk
        ? "the permissions boundary does not allow it"
        : "no session policy allows it";
  // The root user holds every permission of its own account; only SCPs limit it there.
  const principalSide = principal.kind === "root" || (identityAllow.length > 0 && boundaryOk && sessionOk);

  if (principal.kind === "service") {
    if (direct.length > 0)
      return done("allow", [...needed, ...direct], "allowed by the resource-based policy");
    return done("implicit-deny", [], "no resource-based policy allows the service principal");
  }
  if (principal.kind === "root" && !crossAccount) {
    return done("allow", needed, "the account root user has full access to its own account's resources");
  }

  if (!crossAccount) {
    const required = opts.resourcePolicyRequired ?? resourcePolicyRequired(req.action, req.resource);
    if (direct.length > 0) {
      return done(
        "allow",
        [...needed, ...direct],
        "allowed by a resource-based policy that names the principal",
      );
    }
    if (parent.length > 0 && boundaryOk && sessionOk) {
      return done("allow", [...needed, ...parent, ...ceilings()], "allowed by a resource-based policy");
    }
    if (required) {
      if (delegated.length === 0) {
        return done("implicit-deny", [], "the resource-based policy (required here) does not allow it");
      }
      if (!principalSide) return done("implicit-deny", [], sideFailure());
      return done(
        "allow",
        [...needed, delegated[0]!, identityAllow[0]!.ref, ...ceilings()],
        "allowed by identity-based policy under the resource policy's delegation to the account",
      );
    }
    if (!principalSide) return done("implicit-deny", [], sideFailure());
    return done(
      "allow",
      [...needed, identityAllow[0]!.ref, ...ceilings()],
      "allowed by an identity-based policy",
    );
  }

  // Cross account: both sides.
  if (!principalSide) return done("implicit-deny", [], `cross-account: ${sideFailure()}`);
  const granted = [...direct, ...parent, ...delegated];
  if (granted.length === 0) {
    return done(
      "implicit-deny",
      [],
      policies.resource
        ? "cross-account: the resource-based policy does not allow it"
        : "cross-account: no resource-based policy",
    );
  }
  return done(
    "allow",
    [...needed, ...identityAllow.slice(0, 1).map((h) => h.ref), ...ceilings(), granted[0]!],
    "cross-account: allowed by both the principal's policies and the resource-based policy",
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
