/**
 * Expansion: the actions a set of identity policies allows, expanded against the catalog (so
 * `iam:Get*` and `NotAction` become the concrete actions they cover), each with its access level
 * and its risks. An unconditional `Deny` on every resource removes an action; a narrower or
 * conditional one marks it as partly denied. Patterns that match no catalog action are reported.
 */
import type { AccessLevel, AwsAction, AwsCatalog } from "./catalog.js";
import { type Policy, type Statement, wildcardMatch, wildcardMatchLower } from "./evaluator/index.js";

export type Risk = "identity" | "secrets" | "compute-data" | "logging";

export interface ExpandedAction {
  /** `service:Action` as the catalog spells it. */
  readonly action: string;
  readonly accessLevel: AccessLevel;
  readonly risks: readonly Risk[];
  /** Every allowing statement has a condition. */
  readonly conditional: boolean;
  /** A Deny covers part of it (some resources, or under a condition). */
  readonly partlyDenied: boolean;
  /** Resource patterns of the allowing statements. */
  readonly resources: readonly string[];
  /** Policies with an allowing statement. */
  readonly policies: readonly string[];
}

export interface Expansion {
  readonly actions: readonly ExpandedAction[];
  /** Action patterns in Allow statements that match nothing in the catalog. */
  readonly unknown: readonly string[];
}

/** The services a catalog must hold to expand these policies, or `"all"`. */
export function servicesFor(policies: readonly Policy[]): Set<string> | "all" {
  const out = new Set<string>();
  for (const p of policies) {
    for (const st of p.statements) {
      if (st.notAction) return "all";
      for (const a of st.action ?? []) {
        const svc = a === "*" ? "*" : a.slice(0, a.indexOf(":")).toLowerCase();
        if (/[*?]/.test(svc)) return "all";
        out.add(svc);
      }
    }
  }
  return out;
}

const IDENTITY_ACTIONS = new Set(
  [
    "iam:CreateUser",
    "iam:CreateRole",
    "iam:CreateGroup",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:AddUserToGroup",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
    "iam:DeleteUserPermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:CreateOpenIDConnectProvider",
    "iam:CreateSAMLProvider",
    "iam:UploadSSHPublicKey",
    "iam:CreateServiceSpecificCredential",
    "sts:AssumeRole",
    "sts:GetFederationToken",
    "sso:CreateAccountAssignment",
    "ec2-instance-connect:SendSSHPublicKey",
    "rolesanywhere:CreateTrustAnchor",
  ].map((a) => a.toLowerCase()),
);

const SECRET_ACTIONS = new Set(
  [
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "ec2:GetPasswordData",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "ecr:GetAuthorizationToken",
    "codecommit:GitPull",
    "sts:GetSessionToken",
    "iam:CreateAccessKey",
    "glue:GetConnection",
    "glue:GetConnections",
    "rds:GenerateDbAuthToken",
    "redshift:GetClusterCredentials",
    "ec2:DescribeInstanceAttribute",
    "cloudformation:GetTemplate",
  ].map((a) => a.toLowerCase()),
);

const LOGGING_ACTIONS = new Set(
  [
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
    "cloudtrail:DeleteEventDataStore",
    "cloudtrail:StopEventDataStoreIngestion",
    "logs:DeleteLogGroup",
    "logs:DeleteLogStream",
    "logs:PutRetentionPolicy",
    "logs:DeleteSubscriptionFilter",
    "logs:DisassociateKmsKey",
    "ec2:DeleteFlowLogs",
    "config:StopConfigurationRecorder",
    "config:DeleteConfigurationRecorder",
    "config:DeleteDeliveryChannel",
    "guardduty:DeleteDetector",
    "guardduty:UpdateDetector",
    "guardduty:DisassociateFromMasterAccount",
    "securityhub:DisableSecurityHub",
    "route53resolver:DeleteResolverQueryLogConfig",
    "route53resolver:DisassociateResolverQueryLogConfig",
    "s3:PutBucketLogging",
    "organizations:LeaveOrganization",
    "access-analyzer:DeleteAnalyzer",
    "macie2:DisableMacie",
    "inspector2:Disable",
    "detective:DeleteGraph",
  ].map((a) => a.toLowerCase()),
);

const COMPUTE_DATA_SERVICES = new Set([
  "ec2",
  "lambda",
  "ecs",
  "eks",
  "batch",
  "lightsail",
  "apprunner",
  "elasticbeanstalk",
  "autoscaling",
  "sagemaker",
  "glue",
  "emr",
  "elasticmapreduce",
  "datapipeline",
  "codebuild",
  "cloudformation",
  "ssm",
  "states",
  "s3",
  "dynamodb",
  "rds",
  "redshift",
  "elasticache",
  "es",
  "aoss",
  "kinesis",
  "firehose",
  "sqs",
  "sns",
  "efs",
  "elasticfilesystem",
  "fsx",
  "backup",
  "bedrock",
  "ecr",
  "secretsmanager",
  "kms",
  "athena",
  "timestream",
  "neptune-db",
  "docdb-elastic",
]);

/** The risks of one action: identities, secrets and keys, compute and data, logging. */
export function risksOf(action: string, accessLevel: AccessLevel): Risk[] {
  const a = action.toLowerCase();
  const service = a.slice(0, a.indexOf(":"));
  const out: Risk[] = [];
  if (IDENTITY_ACTIONS.has(a) || (service === "iam" && accessLevel === "Permissions management"))
    out.push("identity");
  if (SECRET_ACTIONS.has(a)) out.push("secrets");
  if (COMPUTE_DATA_SERVICES.has(service) && accessLevel === "Write") out.push("compute-data");
  if (LOGGING_ACTIONS.has(a)) out.push("logging");
  return out;
}

/** `lowered`: the action already lower-cased. */
function matchesAction(patterns: readonly string[], lowered: string): boolean {
  return patterns.some((p) => wildcardMatchLower(p, lowered));
}

const byStatement = new WeakMap<Statement, { size: number; actions: AwsAction[]; matched: Set<string> }>();

/** The catalog actions a statement's Action or NotAction covers (cached per statement). */
function statementActions(
  st: Statement,
  catalog: AwsCatalog,
): { actions: AwsAction[]; matched: Set<string> } {
  const services = catalog.services();
  const hit = byStatement.get(st);
  if (hit && hit.size === services.length) return hit;
  const svcNames = st.notAction
    ? services
    : [
        ...new Set(
          st.action!.flatMap((a) => {
            if (a === "*") return services;
            const svc = a.slice(0, a.indexOf(":")).toLowerCase();
            return /[*?]/.test(svc) ? services.filter((s) => wildcardMatch(svc, s)) : [svc];
          }),
        ),
      ];
  const actions: AwsAction[] = [];
  const matched = new Set<string>();
  for (const svc of svcNames) {
    for (const a of catalog.actions(svc) ?? []) {
      const ok = st.action ? matchesAction(st.action, a.key) : !matchesAction(st.notAction!, a.key);
      if (!ok) continue;
      actions.push(a);
      if (st.action) for (const pat of st.action) if (wildcardMatchLower(pat, a.key)) matched.add(pat);
    }
  }
  const entry = { size: services.length, actions, matched };
  byStatement.set(st, entry);
  return entry;
}

export function expandPolicies(policies: readonly Policy[], catalog: AwsCatalog): Expansion {
  type Acc = {
    key: string;
    resources: Set<string>;
    policies: Set<string>;
    unconditional: boolean;
    partlyDenied: boolean;
  };
  const found = new Map<string, Acc & { level: AccessLevel }>();
  const unknown = new Set<string>();
  const statements = policies.flatMap((p) => p.statements.map((st) => ({ p, st })));
  for (const { p, st } of statements) {
    if (st.effect !== "Allow") continue;
    const { actions, matched } = statementActions(st, catalog);
    for (const a of actions) {
      const full = a.full;
      let acc = found.get(full);
      if (!acc) {
        acc = {
          key: a.key,
          level: a.accessLevel,
          resources: new Set(),
          policies: new Set(),
          unconditional: false,
          partlyDenied: false,
        };
        found.set(full, acc);
      }
      for (const r of st.resource ?? (st.notResource ? st.notResource.map((x) => `not ${x}`) : ["*"]))
        acc.resources.add(r);
      acc.policies.add(p.id);
      if (st.conditions.length === 0) acc.unconditional = true;
    }
    for (const pat of st.action ?? []) if (!matched.has(pat)) unknown.add(pat);
  }
  for (const { st } of statements) {
    if (st.effect !== "Deny") continue;
    for (const [full, acc] of found) {
      const hit = st.action ? matchesAction(st.action, acc.key) : !matchesAction(st.notAction!, acc.key);
      if (!hit) continue;
      const everywhere =
        st.conditions.length === 0 && !st.notResource && (st.resource ?? ["*"]).includes("*");
      if (everywhere) found.delete(full);
      else acc.partlyDenied = true;
    }
  }
  const actions = [...found.entries()]
    .map(([action, acc]) => ({
      action,
      accessLevel: acc.level,
      risks: risksOf(action, acc.level),
      conditional: !acc.unconditional,
      partlyDenied: acc.partlyDenied,
      resources: [...acc.resources].sort(),
      policies: [...acc.policies].sort(),
    }))
    .sort((a, b) => a.action.localeCompare(b.action));
  return { actions, unknown: [...unknown].sort() };
}
