/**
 * The AWS account the end-to-end tests and the creds bench run against the fake STS/IAM: the broker's
 * IAM user (its test-only keys), the trust policy a writ role needs to let it in with tags and a
 * source identity, and a role policy wide enough that the session policy does the scoping.
 */
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../support/cli.js";

export const ACCOUNT = "111122223333";

export const roleArn = (name: string): string => `arn:aws:iam::${ACCOUNT}:role/${name}`;

export const BROKER = {
  userArn: `arn:aws:iam::${ACCOUNT}:user/writ-broker`,
  accessKeyId: "AKIAWRITBROKER000002",
  secretAccessKey: "broker-secret-key-for-tests-only-0002",
};

export const TRUST = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { AWS: BROKER.userArn },
      Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    },
  ],
};

export const ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
};

/** The role every playbook of test/fixtures/downstream-aws/writ.yaml assumes. */
export const RELEASES_ROLE = roleArn("writ-releases");

/** `aws iam get-account-authorization-details` of this account: the releases role and its policy. */
export const AUTHORIZATION_DETAILS = {
  UserDetailList: [],
  GroupDetailList: [],
  RoleDetailList: [
    {
      Path: "/",
      RoleName: "writ-releases",
      Arn: RELEASES_ROLE,
      AssumeRolePolicyDocument: TRUST,
      RolePolicyList: [{ PolicyName: "s3", PolicyDocument: ROLE_POLICY }],
      AttachedManagedPolicies: [],
      InstanceProfileList: [],
      Tags: [],
    },
  ],
  Policies: [],
};

/**
 * test/fixtures/downstream-aws/writ.yaml in a temporary folder of its own, with the quickstart's
 * keys and authz.json beside it: the fake STS at `endpoint`, in `mode` (web-identity holds no AWS
 * keys and reads no authorization details).
 */
export async function awsConfigDir(o: {
  readonly endpoint: string;
  readonly mode?: "role-session" | "web-identity";
}): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "writ-aws-"));
  await cp(join(ROOT, "examples", "quickstart", "keys"), join(dir, "keys"), { recursive: true });
  await writeFile(join(dir, "authz.json"), JSON.stringify(AUTHORIZATION_DETAILS));
  let text = (await readFile(join(ROOT, "test", "fixtures", "downstream-aws", "writ.yaml"), "utf8")).replace(
    "endpoint: http://127.0.0.1:1/fake-sts",
    `endpoint: ${o.endpoint}`,
  );
  if (o.mode === "web-identity")
    text = text
      .replace("mode: role-session", "mode: web-identity")
      .replace(/\n\s+authorizationDetails: authz\.json\n\s+credentials: \{ from: env \}/, "");
  const file = join(dir, "writ.yaml");
  await writeFile(file, text);
  return { dir, file };
}
