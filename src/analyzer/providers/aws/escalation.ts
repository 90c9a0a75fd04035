/**
 * The privilege-escalation graph. Edges come from the path catalogue (pathfinding.cloud's
 * `permissions.required` per path) and from role assumption; every permission is decided by the
 * evaluator, against concrete targets from the account, so boundaries, SCPs, conditions, resource
 * constraints and explicit denies are honoured:
 *
 * - a path is open for a principal when each required action is allowed on at least one candidate
 *   target: IAM users, roles, groups and customer-managed policies of the account for IAM actions
 *   (AWS-managed policies cannot be changed), roles that the path's service can assume for
 *   `iam:PassRole` (decided with `iam:PassedToService` set to that service), roles (with their
 *   trust policy as the resource policy) for `sts:AssumeRole`, and a resource of the action's
 *   resource type otherwise;
 * - a path that rewrites a role's trust policy (`iam:UpdateAssumeRolePolicy`) then assumes the role
 *   with the trust policy it wrote;
 * - the attacker chooses the credential: an IAM user's long-term keys, or a session from
 *   `sts:GetSessionToken` (which carries `aws:TokenIssueTime`);
 * - role assumption edges join principals; a principal escalates when it, or a role it can reach,
 *   has an open path. The chain and the deciding statements are the evidence.
 */
import type { AwsCatalog } from "./catalog.js";
import {
  type AwsPrincipal,
  type ContextValue,
  evaluate,
  type Organization,
  type Policy,
  type PolicySet,
  parsePolicy,
  principalFromArn,
  type StatementRef,
  wildcardMatch,
} from "./evaluator/index.js";
import { type AuthorizationDetails, type IamRole, type IamUser, policiesFor } from "./importers/index.js";
import { isAssumeOnly, type PrivescPath } from "./paths.js";

export interface Step {
  readonly action: string;
  readonly resource: string;
  readonly deciding: readonly StatementRef[];
}

export interface OpenPath {
  readonly path: string;
  readonly category: string;
  readonly steps: readonly Step[];
}

export interface PrincipalEscalation {
  readonly principal: string;
  readonly kind: "user" | "role";
  /** Paths open to the principal itself. */
  readonly paths: readonly OpenPath[];
  /** Roles it can assume directly. */
  readonly assumes: readonly string[];
  /** The shortest chain of role assumptions to a principal with an open path (itself: empty). */
  readonly chain?: readonly string[];
  readonly escalates: boolean;
}

export interface EscalationReport {
  readonly principals: readonly PrincipalEscalation[];
  /** Paths not evaluated because the catalog does not know one of their actions. */
  readonly unevaluable: readonly { readonly path: string; readonly action: string }[];
}

export interface EscalationOptions {
  readonly now: Date;
  readonly organization?: Organization;
}

type Entity = IamUser | IamRole;

function fillArn(format: string, account: string): string {
  return format
    .replaceAll("${Partition}", "aws")
    .replaceAll("${Region}", "us-east-1")
    .replaceAll("${Account}", account)
    .replace(/\$\{[A-Za-z]+\}/g, "writ-probe");
}

/** The service principals a role's trust policy lets assume it (`ec2.amazonaws.com`). */
function trustedServices(role: IamRole): string[] {
  const out = new Set<string>();
  for (const s of role.trust.statements)
    if (s.effect === "Allow") for (const svc of s.principal?.byType.get("Service") ?? []) out.add(svc);
  return [...out];
}

type Allowed = (
  e: Entity,
  action: string,
  resource: string,
  resourcePolicy?: Policy,
  extra?: Readonly<Record<string, ContextValue>>,
) => Step | undefined;

/**
 * Decides requests of the principals of one or more accounts' authorization details, each with its
 * own identity policies, boundary and the organization's SCPs, under the credential the attacker
 * picks (long-term keys or a session); answers are cached per request.
 */
function principalEvaluator(
  sets: readonly AuthorizationDetails[],
  catalog: AwsCatalog,
  opts: EscalationOptions,
): { entities: Entity[]; allowed: Allowed } {
  const now = opts.now.toISOString();
  const epoch = String(Math.floor(opts.now.getTime() / 1000));
  const entities: Entity[] = [];
  const policySets = new Map<string, PolicySet>();
  const principals = new Map<string, AwsPrincipal>();
  for (const details of sets) {
    for (const e of [...details.users, ...details.roles]) {
      if (policySets.has(e.arn)) continue;
      entities.push(e);
      const found = policiesFor(details, e);
      policySets.set(e.arn, {
        identity: found.identity,
        ...(found.boundary ? { boundary: found.boundary } : {}),
        ...(opts.organization ? { organization: opts.organization } : {}),
      });
      principals.set(e.arn, principalFromArn(e.arn, { tags: { ...e.tags } }));
    }
  }
  const contexts = (e: Entity): Record<string, ContextValue>[] => {
    const base = { "aws:CurrentTime": now, "aws:EpochTime": epoch };
    const session = { ...base, "aws:TokenIssueTime": now };
    return e.kind === "role" ? [session] : [base, session];
  };

  // Without a resource policy in play, an action no identity Allow statement names cannot be allowed.
  const named = new Map<string, boolean>();
  const mayAllow = (e: Entity, action: string): boolean => {
    const key = `${e.arn}|${action}`;
    let v = named.get(key);
    if (v === undefined) {
      v = policySets
        .get(e.arn)!
        .identity.some((p) =>
          p.statements.some(
            (st) =>
              st.effect === "Allow" &&
              (st.action
                ? st.action.some((a) => wildcardMatch(a, action, true))
                : !st.notAction!.some((a) => wildcardMatch(a, action, true))),
          ),
        );
      named.set(key, v);
    }
    return v;
  };
  const cache = new Map<string, Step | null>();
  const allowed: Allowed = (e, action, resource, resourcePolicy, extra) => {
    const key = `${e.arn}|${action}|${resource}|${resourcePolicy ? resourcePolicy.id : ""}|${extra ? JSON.stringify(extra) : ""}`;
    if (!resourcePolicy && !mayAllow(e, action)) return undefined;
    const hit = cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    let step: Step | null = null;
    const set = policySets.get(e.arn)!;
    for (const context of contexts(e)) {
      const d = evaluate(
        {
          principal: principals.get(e.arn)!,
          action,
          resource,
          context: extra ? { ...context, ...extra } : context,
        },
        resourcePolicy ? { ...set, resource: resourcePolicy } : set,
        { catalog },
      );
      if (d.decision === "allow") {
        step = { action, resource, deciding: d.deciding };
        break;
      }
    }
    cache.set(key, step);
    return step ?? undefined;
  };
  return { entities, allowed };
}

/** One principal allowed to assume one role: the identity side and the role's trust policy agree. */
export interface RoleAssumption {
  readonly principal: string;
  readonly role: string;
  /** The statements that decided: identity (when needed), trust policy, and none denying. */
  readonly deciding: readonly StatementRef[];
}

function assumptions(
  entities: readonly Entity[],
  roles: readonly IamRole[],
  allowed: Allowed,
): RoleAssumption[] {
  const out: RoleAssumption[] = [];
  for (const e of entities)
    for (const r of roles) {
      if (r.arn === e.arn) continue;
      const step = allowed(e, "sts:AssumeRole", r.arn, r.trust);
      if (step) out.push({ principal: e.arn, role: r.arn, deciding: step.deciding });
    }
  return out;
}

/**
 * Which principal may assume which role (`sts:AssumeRole`), decided by the evaluator with each
 * principal's policies, boundary and SCPs and each role's trust policy, across every given account
 * (a role of one account can trust a principal of another).
 */
export function roleAssumptions(
  sets: readonly AuthorizationDetails[],
  catalog: AwsCatalog,
  opts: EscalationOptions,
): RoleAssumption[] {
  const { entities, allowed } = principalEvaluator(sets, catalog, opts);
  const roles = new Map<string, IamRole>();
  for (const d of sets) for (const r of d.roles) if (!roles.has(r.arn)) roles.set(r.arn, r);
  return assumptions(entities, [...roles.values()], allowed);
}

export function analyzeEscalation(
  details: AuthorizationDetails,
  paths: readonly PrivescPath[],
  catalog: AwsCatalog,
  opts: EscalationOptions,
): EscalationReport {
  const account = details.account;
  const customerPolicies = [...details.policies.values()].filter((p) => !p.awsManaged).map((p) => p.arn);
  const { entities, allowed } = principalEvaluator([details], catalog, opts);
  const unevaluable: { path: string; action: string }[] = [];
  const evaluable = paths.filter((p) => {
    if (isAssumeOnly(p)) return false;
    for (const a of p.required) {
      const [svc, name] = a.split(":") as [string, string];
      if (catalog.hasAction(svc, name) !== true) {
        unevaluable.push({ path: p.id, action: a });
        return false;
      }
    }
    return true;
  });

  const candidates = (action: string, self: Entity): string[] => {
    const [svc, name] = action.split(":") as [string, string];
    const spec = catalog.action(svc, name);
    const selfOnly = /^iam:(CreateAccessKey|CreateLoginProfile|UpdateLoginProfile|DeleteAccessKey)$/.test(
      action,
    );
    if (svc === "iam" || action.startsWith("sts:AssumeRole")) {
      const types = new Set((spec?.resourceTypes ?? []).map((r) => r.name));
      const out: string[] = [];
      if (types.has("user")) out.push(...details.users.map((u) => u.arn));
      if (types.has("role")) out.push(...details.roles.map((r) => r.arn));
      if (types.has("group")) out.push(...details.groups.map((g) => g.arn));
      if (types.has("policy")) out.push(...customerPolicies);
      return out.filter((arn) => !(arn === self.arn && (selfOnly || action.startsWith("sts:"))));
    }
    const type = spec?.resourceTypes.find((r) => r.required) ?? spec?.resourceTypes[0];
    const format = type ? catalog.resourceArn(svc, type.name) : undefined;
    return [format ? fillArn(format, account) : "*"];
  };

  const roleByArn = new Map(details.roles.map((r) => [r.arn, r]));

  /**
   * `iam:PassRole` of a role that a service of the path can assume (the catalogue's `passedTo`;
   * any service when it names none), decided with `iam:PassedToService` set to that service.
   */
  const passRole = (e: Entity, p: PrivescPath): Step | undefined => {
    for (const role of details.roles) {
      for (const service of trustedServices(role)) {
        if (p.passedTo.length > 0 && !p.passedTo.includes(service)) continue;
        const step = allowed(e, "iam:PassRole", role.arn, undefined, { "iam:PassedToService": service });
        if (step) return step;
      }
    }
    return undefined;
  };

  const openPaths = (e: Entity): OpenPath[] => {
    const out: OpenPath[] = [];
    for (const p of evaluable) {
      const rewritesTrust = p.required.includes("iam:UpdateAssumeRolePolicy");
      const steps: Step[] = [];
      for (const action of p.required) {
        let step: Step | undefined;
        if (action === "iam:PassRole") {
          step = passRole(e, p);
          if (!step) break;
          steps.push(step);
          continue;
        }
        for (const target of candidates(action, e)) {
          let rp: Policy | undefined;
          if (action.startsWith("sts:AssumeRole")) {
            const role = roleByArn.get(target);
            if (rewritesTrust) {
              if (!allowed(e, "iam:UpdateAssumeRolePolicy", target)) continue;
              rp = parsePolicy("resource", `${target}/trust (rewritten)`, {
                Version: "2012-10-17",
                Statement: [{ Effect: "Allow", Principal: { AWS: e.arn }, Action: "sts:AssumeRole" }],
              });
            } else rp = role?.trust;
          }
          step = allowed(e, action, target, rp);
          if (step) break;
        }
        if (!step) break;
        steps.push(step);
      }
      if (steps.length === p.required.length) out.push({ path: p.id, category: p.category, steps });
    }
    return out;
  };

  const direct = new Map<string, OpenPath[]>();
  const assumes = new Map<string, string[]>();
  for (const e of entities) direct.set(e.arn, openPaths(e));
  for (const a of assumptions(entities, details.roles, allowed))
    (assumes.get(a.principal) ?? assumes.set(a.principal, []).get(a.principal)!).push(a.role);
  const report: PrincipalEscalation[] = entities.map((e) => {
    // Breadth-first over role assumption to the nearest principal with an open path.
    const prev = new Map<string, string | null>([[e.arn, null]]);
    const queue = [e.arn];
    let found: string | undefined;
    while (queue.length > 0) {
      const cur = queue.shift()!;
      if ((direct.get(cur)?.length ?? 0) > 0) {
        found = cur;
        break;
      }
      for (const next of assumes.get(cur) ?? []) {
        if (!prev.has(next)) {
          prev.set(next, cur);
          queue.push(next);
        }
      }
    }
    let chain: string[] | undefined;
    if (found) {
      chain = [];
      for (let n: string | null | undefined = found; n && n !== e.arn; n = prev.get(n)) chain.unshift(n);
    }
    return {
      principal: e.arn,
      kind: e.kind,
      paths: direct.get(e.arn)!,
      assumes: assumes.get(e.arn) ?? [],
      ...(chain ? { chain } : {}),
      escalates: found !== undefined,
    };
  });
  return { principals: report, unevaluable };
}

/**
 * Secret-store reads that reach secrets a policy does not single out: for each principal, the first
 * of each store's read actions the evaluator allows on a secret of a name no policy was written for
 * (`writ-probe`, in the principal's account). A grant scoped to the workload's own secrets
 * (`secret:checkout/*`) does not reach it; `*`, `secret:*` or `parameter/*` do. SSM SecureString
 * values are decrypted with the account's `aws/ssm` key by `GetParameter*` itself; a customer key
 * also needs `kms:Decrypt`, counted on its own (key policies are not in the input: the default key
 * policy, which lets the account's IAM policies decide, is assumed).
 */
export const SECRET_STORE_READS: readonly { store: string; actions: readonly string[]; arn: string }[] = [
  {
    store: "secretsmanager",
    actions: ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"],
    arn: "arn:{partition}:secretsmanager:us-east-1:{account}:secret:writ-probe-Ab12Cd",
  },
  {
    store: "ssm",
    actions: ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
    arn: "arn:{partition}:ssm:us-east-1:{account}:parameter/writ-probe",
  },
  { store: "kms", actions: ["kms:Decrypt"], arn: "arn:{partition}:kms:us-east-1:{account}:key/writ-probe" },
];

export function secretStoreReads(
  details: AuthorizationDetails,
  catalog: AwsCatalog,
  opts: EscalationOptions,
): { principal: string; kind: "user" | "role"; store: string; step: Step }[] {
  const { entities, allowed } = principalEvaluator([details], catalog, opts);
  const out: { principal: string; kind: "user" | "role"; store: string; step: Step }[] = [];
  // The probe is tried in every region a policy names for the store (and us-east-1): a grant on
  // `arn:aws:secretsmanager:eu-west-1:…:secret:*` reads every secret of that region.
  const text = JSON.stringify([
    [...details.policies.values()].map((p) => p.raw),
    entities.map((e) => e.inline.map((p) => p.statements)),
  ]);
  const regions = (store: string) => {
    const found = new Set(["us-east-1"]);
    for (const m of text.matchAll(new RegExp(`arn:[a-z-]+:${store}:([a-z0-9-]+):`, "g"))) found.add(m[1]!);
    return [...found];
  };
  for (const e of entities) {
    const [, partition = "aws", , , account = details.account] = e.arn.split(":");
    for (const s of SECRET_STORE_READS) {
      const probes = regions(s.store).map((region) =>
        s.arn.replace("{partition}", partition).replace("{account}", account).replace("us-east-1", region),
      );
      // A KMS key is used only as its key policy allows: not in the input, so the default one
      // (the account may delegate to IAM) is assumed.
      const keyPolicy =
        s.store === "kms"
          ? parsePolicy("resource", `${partition}:${account}:default key policy`, {
              Version: "2012-10-17",
              Statement: [
                {
                  Sid: "Enable IAM User Permissions",
                  Effect: "Allow",
                  Principal: { AWS: `arn:${partition}:iam::${account}:root` },
                  Action: "kms:*",
                  Resource: "*",
                },
              ],
            })
          : undefined;
      const step = s.actions
        .flatMap((action) => probes.map((arn) => [action, arn] as const))
        .map(([action, arn]) => allowed(e, action, arn, keyPolicy))
        .find((x) => x !== undefined);
      if (step) out.push({ principal: e.arn, kind: e.kind, store: s.store, step });
    }
  }
  return out;
}
