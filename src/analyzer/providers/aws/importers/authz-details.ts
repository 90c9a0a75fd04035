/**
 * `aws iam get-account-authorization-details` output → the account's users, groups, roles and
 * managed policies, with every document parsed by the evaluator's parser. `policiesFor` gives the
 * identity policies of a principal (its inline and attached policies, and for a user its groups'),
 * its permissions boundary, and for a role its trust policy.
 */
import { type Policy, parsePolicy } from "../evaluator/index.js";
import { importError, isRecord, policyDocument } from "./errors.js";

export interface IamPolicyRef {
  readonly name: string;
  readonly arn: string;
}

interface IamEntityBase {
  readonly arn: string;
  readonly name: string;
  readonly path: string;
  readonly inline: readonly Policy[];
  readonly attached: readonly IamPolicyRef[];
  readonly tags: Readonly<Record<string, string>>;
  readonly boundaryArn?: string;
}
export interface IamUser extends IamEntityBase {
  readonly kind: "user";
  readonly groups: readonly string[];
}
export interface IamGroup extends IamEntityBase {
  readonly kind: "group";
}
export interface IamRole extends IamEntityBase {
  readonly kind: "role";
  readonly trust: Policy;
  readonly instanceProfiles: readonly string[];
}
export interface ManagedPolicy {
  readonly arn: string;
  readonly name: string;
  /** The default version, parsed. */
  readonly document: Policy;
  /** Raw default-version document (for rewriting and expansion). */
  readonly raw: unknown;
  readonly versions: readonly string[];
  readonly awsManaged: boolean;
}

export interface AuthorizationDetails {
  readonly source: string;
  readonly account: string;
  readonly users: readonly IamUser[];
  readonly groups: readonly IamGroup[];
  readonly roles: readonly IamRole[];
  readonly policies: ReadonlyMap<string, ManagedPolicy>;
}

export interface PrincipalPolicies {
  readonly identity: readonly Policy[];
  readonly boundary?: Policy;
  /** Attached managed policies the file does not contain (reported, not guessed). */
  readonly missing: readonly string[];
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function tagsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of list(v)) if (isRecord(t)) out[str(t.Key)] = str(t.Value);
  return out;
}

function attachedOf(v: unknown): IamPolicyRef[] {
  return list(v)
    .filter(isRecord)
    .map((p) => ({ name: str(p.PolicyName), arn: str(p.PolicyArn) }));
}

export function importAuthorizationDetails(json: unknown, source: string): AuthorizationDetails {
  if (
    !isRecord(json) ||
    !["UserDetailList", "RoleDetailList", "GroupDetailList", "Policies"].some((k) => k in json)
  ) {
    throw importError(
      "ERR_AWS_IMPORT_FORMAT",
      source,
      "not `get-account-authorization-details` output (UserDetailList, GroupDetailList, RoleDetailList, Policies)",
    );
  }
  const inline = (owner: string, items: unknown, where: string): Policy[] =>
    list(items)
      .filter(isRecord)
      .map((p, i) =>
        parsePolicy(
          "identity",
          `${owner}/inline/${str(p.PolicyName)}`,
          policyDocument(p.PolicyDocument, `${source}: ${where}[${i}]`),
        ),
      );
  const accounts = new Set<string>();
  const boundary = (e: Record<string, unknown>) =>
    isRecord(e.PermissionsBoundary) && typeof e.PermissionsBoundary.PermissionsBoundaryArn === "string"
      ? { boundaryArn: e.PermissionsBoundary.PermissionsBoundaryArn }
      : {};
  const users: IamUser[] = list(json.UserDetailList)
    .filter(isRecord)
    .map((u, i) => {
      const arn = str(u.Arn);
      if (!arn) throw importError("ERR_AWS_IMPORT_FORMAT", source, `UserDetailList[${i}]: no \`Arn\``);
      accounts.add(arn.split(":")[4] ?? "");
      return {
        kind: "user",
        arn,
        name: str(u.UserName),
        path: str(u.Path) || "/",
        groups: list(u.GroupList).map(str),
        inline: inline(arn, u.UserPolicyList, `UserDetailList[${i}].UserPolicyList`),
        attached: attachedOf(u.AttachedManagedPolicies),
        tags: tagsOf(u.Tags),
        ...boundary(u),
      };
    });
  const groups: IamGroup[] = list(json.GroupDetailList)
    .filter(isRecord)
    .map((g, i) => ({
      kind: "group",
      arn: str(g.Arn),
      name: str(g.GroupName),
      path: str(g.Path) || "/",
      inline: inline(str(g.Arn), g.GroupPolicyList, `GroupDetailList[${i}].GroupPolicyList`),
      attached: attachedOf(g.AttachedManagedPolicies),
      tags: {},
    }));
  const roles: IamRole[] = list(json.RoleDetailList)
    .filter(isRecord)
    .map((r, i) => {
      const arn = str(r.Arn);
      if (!arn) throw importError("ERR_AWS_IMPORT_FORMAT", source, `RoleDetailList[${i}]: no \`Arn\``);
      accounts.add(arn.split(":")[4] ?? "");
      return {
        kind: "role",
        arn,
        name: str(r.RoleName),
        path: str(r.Path) || "/",
        trust: parsePolicy(
          "resource",
          `${arn}/trust`,
          policyDocument(
            r.AssumeRolePolicyDocument,
            `${source}: RoleDetailList[${i}].AssumeRolePolicyDocument`,
          ),
        ),
        instanceProfiles: list(r.InstanceProfileList)
          .filter(isRecord)
          .map((p) => str(p.Arn)),
        inline: inline(arn, r.RolePolicyList, `RoleDetailList[${i}].RolePolicyList`),
        attached: attachedOf(r.AttachedManagedPolicies),
        tags: tagsOf(r.Tags),
        ...boundary(r),
      };
    });
  const policies = new Map<string, ManagedPolicy>();
  list(json.Policies)
    .filter(isRecord)
    .forEach((p, i) => {
      const arn = str(p.Arn);
      const versions = list(p.PolicyVersionList).filter(isRecord);
      const def = versions.find((v) => v.IsDefaultVersion === true) ?? versions[0];
      if (!def)
        throw importError("ERR_AWS_IMPORT_FORMAT", source, `Policies[${i}] (${arn}): no policy version`);
      const raw = policyDocument(def.Document, `${source}: Policies[${i}].PolicyVersionList`);
      policies.set(arn, {
        arn,
        name: str(p.PolicyName),
        document: parsePolicy("identity", arn, raw),
        raw,
        versions: versions.map((v) => str(v.VersionId)),
        awsManaged: arn.startsWith("arn:aws:iam::aws:policy/"),
      });
    });
  accounts.delete("");
  return { source, account: [...accounts][0] ?? "", users, groups, roles, policies };
}

/** Finds a user or role by ARN (a role session's role ARN works too). */
export function findPrincipal(details: AuthorizationDetails, arn: string): IamUser | IamRole | undefined {
  return details.users.find((u) => u.arn === arn) ?? details.roles.find((r) => r.arn === arn);
}

export function policiesFor(details: AuthorizationDetails, entity: IamUser | IamRole): PrincipalPolicies {
  const identity: Policy[] = [...entity.inline];
  const missing: string[] = [];
  const attach = (refs: readonly IamPolicyRef[]) => {
    for (const ref of refs) {
      const p = details.policies.get(ref.arn);
      if (p) identity.push(p.document);
      else missing.push(ref.arn);
    }
  };
  attach(entity.attached);
  if (entity.kind === "user") {
    for (const name of entity.groups) {
      const g = details.groups.find((x) => x.name === name);
      if (!g) continue;
      identity.push(...g.inline);
      attach(g.attached);
    }
  }
  let boundary: Policy | undefined;
  if (entity.boundaryArn) {
    const b = details.policies.get(entity.boundaryArn);
    if (b) boundary = parsePolicy("boundary", b.arn, b.raw);
    else missing.push(entity.boundaryArn);
  }
  return { identity, ...(boundary ? { boundary } : {}), missing };
}
