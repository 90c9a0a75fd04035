/**
 * A small AWS account for role chaining and instance profiles: chains that open, and ones that a
 * trust condition, a permissions boundary or an SCP closes (test/analyzer/aws/chaining.test.ts,
 * scan-cli.test.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ACCOUNT = "111122223333";
export const arn = (kind: string, name: string) => `arn:aws:iam::${ACCOUNT}:${kind}/${name}`;
const doc = (...Statement: unknown[]) => ({ Version: "2012-10-17", Statement });
const inline = (name: string, ...statements: unknown[]) => ({
  PolicyName: name,
  PolicyDocument: doc(...statements),
});
const trustAccount = (condition?: unknown) =>
  doc({
    Effect: "Allow",
    Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
    Action: "sts:AssumeRole",
    ...(condition ? { Condition: condition } : {}),
  });
const trustEc2 = doc({
  Effect: "Allow",
  Principal: { Service: "ec2.amazonaws.com" },
  Action: "sts:AssumeRole",
});
const user = (name: string, policies: unknown[], extra: Record<string, unknown> = {}) => ({
  UserName: name,
  Arn: arn("user", name),
  Path: "/",
  GroupList: [],
  UserPolicyList: policies,
  AttachedManagedPolicies: [],
  ...extra,
});
const role = (name: string, trust: unknown, policies: unknown[], profiles: string[] = []) => ({
  RoleName: name,
  Arn: arn("role", name),
  Path: "/",
  AssumeRolePolicyDocument: trust,
  RolePolicyList: policies,
  AttachedManagedPolicies: [],
  InstanceProfileList: profiles.map((p) => ({ InstanceProfileName: p, Arn: arn("instance-profile", p) })),
});
const allow = (Action: string | string[], Resource: string | string[] = "*") => ({
  Effect: "Allow",
  Action,
  Resource,
});

/** A small account: role chains that open, and ones that conditions, boundaries and SCPs close. */
export const FIXTURE = {
  UserDetailList: [
    user("ci", [
      inline(
        "ci-work",
        allow("s3:GetObject", "arn:aws:s3:::reports/*"),
        allow("sts:AssumeRole", [arn("role", "deploy"), arn("role", "audit")]),
      ),
    ]),
    user("admin", [inline("all", allow(["s3:*", "ec2:*", "iam:*", "sts:*", "cloudtrail:*", "dynamodb:*"]))]),
    user("intern", [inline("assume", allow("sts:AssumeRole"))], {
      PermissionsBoundary: {
        PermissionsBoundaryType: "Policy",
        PermissionsBoundaryArn: arn("policy", "intern-boundary"),
      },
    }),
    user("contractor", [inline("keys", allow("iam:CreateAccessKey"))], {
      PermissionsBoundary: {
        PermissionsBoundaryType: "Policy",
        PermissionsBoundaryArn: arn("policy", "intern-boundary"),
      },
    }),
    user("ops", [inline("breakglass", allow("sts:AssumeRole", arn("role", "breakglass")))]),
    user("reader", [inline("viewer", allow("sts:AssumeRole", arn("role", "viewer")))]),
  ],
  GroupDetailList: [],
  RoleDetailList: [
    role("deploy", trustAccount(), [
      inline("deploy-work", allow(["ec2:RunInstances", "ec2:TerminateInstances", "iam:PassRole"])),
    ]),
    role("audit", trustAccount({ Bool: { "aws:MultiFactorAuthPresent": "true" } }), [
      inline("audit-work", allow("cloudtrail:StopLogging")),
    ]),
    role("breakglass", trustAccount(), [inline("break", allow("iam:*"))]),
    role("viewer", trustAccount(), [inline("view", allow("s3:ListAllMyBuckets"))]),
    role(
      "web",
      trustEc2,
      [inline("web-work", allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::reports/*"))],
      ["web"],
    ),
    role("batch", trustEc2, [inline("batch-work", allow("dynamodb:PutItem"))], ["batch-a", "batch-b"]),
  ],
  Policies: [
    {
      PolicyName: "intern-boundary",
      Arn: arn("policy", "intern-boundary"),
      PolicyVersionList: [{ VersionId: "v1", IsDefaultVersion: true, Document: doc(allow("s3:Get*")) }],
    },
  ],
};

/** An organization whose SCP on the account denies assuming the break-glass role. */
export function writeOrganization(dir: string): void {
  const full = JSON.stringify(doc(allow("*")));
  mkdirSync(join(dir, "r-ab12", ACCOUNT, "scps"), { recursive: true });
  mkdirSync(join(dir, "r-ab12", "scps"), { recursive: true });
  writeFileSync(
    join(dir, "organization.json"),
    JSON.stringify({ managementAccountId: "999988887777", policyTypes: ["SCP"] }),
  );
  writeFileSync(join(dir, "r-ab12", "scps", "FullAWSAccess.json"), full);
  writeFileSync(join(dir, "r-ab12", ACCOUNT, "scps", "FullAWSAccess.json"), full);
  writeFileSync(
    join(dir, "r-ab12", ACCOUNT, "scps", "no-breakglass.json"),
    JSON.stringify(doc({ Effect: "Deny", Action: "sts:AssumeRole", Resource: arn("role", "breakglass") })),
  );
}
