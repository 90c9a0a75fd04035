/**
 * Blast radius across clouds (issue 12 item 9): a ServiceAccount joined to an IAM role by IRSA
 * reads unrelated secrets when the evaluator allows the role Secrets Manager, SSM parameter or KMS
 * decrypt reads beyond secrets its policy singles out — and not when the role's reads are scoped,
 * denied, or absent.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AnalysisResult, k8sPlugin } from "../../../src/analyzer/index.js";
import { awsCatalog, awsPlugin } from "../../../src/analyzer/providers/aws/plugin.js";
import { analyze } from "../corpora.js";

const ACCOUNT = "418295700136";
const arn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const TRUST = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: {
        Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/9D1C`,
      },
      Action: "sts:AssumeRoleWithWebIdentity",
    },
  ],
};

/** `aws iam get-account-authorization-details` for the five roles the agents run as. */
const roles: Record<string, unknown[]> = {
  // Every secret of the region.
  "support-agent-irsa": [
    {
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:*`,
    },
  ],
  // Its own secret only: no unrelated read.
  "billing-agent-irsa": [
    {
      Effect: "Allow",
      Action: "secretsmanager:GetSecretValue",
      Resource: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:billing/stripe-*`,
    },
    { Effect: "Allow", Action: ["s3:GetObject"], Resource: "arn:aws:s3:::billing-exports/*" },
  ],
  // Every parameter, SecureString included.
  "ops-agent-irsa": [
    { Effect: "Allow", Action: ["ssm:GetParametersByPath", "ssm:DescribeParameters"], Resource: "*" },
  ],
  // KMS decrypt allowed, then denied outright.
  "etl-agent-irsa": [
    { Effect: "Allow", Action: "kms:Decrypt", Resource: "*" },
    { Effect: "Deny", Action: "kms:*", Resource: "*" },
  ],
  // Decrypt with any key: reads every SecureString and secret encrypted under a customer key.
  "crypto-agent-irsa": [{ Effect: "Allow", Action: ["kms:Decrypt", "kms:DescribeKey"], Resource: "*" }],
};
const AUTHZ = {
  UserDetailList: [],
  GroupDetailList: [],
  RoleDetailList: Object.entries(roles).map(([name, statements], i) => ({
    Path: "/",
    RoleName: name,
    RoleId: `AROAWZ3Q6EXAMPLE${i}`,
    Arn: arn(name),
    CreateDate: "2026-03-02T09:14:55Z",
    AssumeRolePolicyDocument: TRUST,
    RolePolicyList: [
      { PolicyName: `${name}-inline`, PolicyDocument: { Version: "2012-10-17", Statement: statements } },
    ],
    AttachedManagedPolicies: [],
    Tags: [],
  })),
  Policies: [],
};

const agent = (name: string) => `---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${name}
  namespace: agents
  annotations:
    eks.amazonaws.com/role-arn: ${arn(`${name}-irsa`)}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: agents}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      serviceAccountName: ${name}
      containers: [{name: agent, image: "ghcr.io/example/${name}:3.1.0"}]
`;

let result: AnalysisResult;
let dir: string;
beforeAll(async () => {
  await awsCatalog().load("all");
  dir = await mkdtemp(join(tmpdir(), "writ-k8s-cloud-"));
  await writeFile(join(dir, "authorization-details.json"), JSON.stringify(AUTHZ));
  await writeFile(
    join(dir, "agents.yaml"),
    ["support-agent", "billing-agent", "ops-agent", "etl-agent", "crypto-agent"].map(agent).join(""),
  );
  ({ result } = await analyze([dir], { plugins: [k8sPlugin, awsPlugin] }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const secrets = (name: string) =>
  result.blastRadius
    .find((b) => b.workload === `k8s:Deployment:agents/${name}`)
    ?.answers.find((a) => a.question === "read-unrelated-secrets");

describe("a joined cloud role's secret-store reads", () => {
  it("count for Secrets Manager, SSM parameters and KMS decrypt, by the path through the role", () => {
    for (const [name, store, action] of [
      ["support-agent", "secretsmanager", "aws:secretsmanager:GetSecretValue"],
      ["ops-agent", "ssm", "aws:ssm:GetParametersByPath"],
      ["crypto-agent", "kms", "aws:kms:Decrypt"],
    ] as const) {
      const a = secrets(name)!;
      expect(a.reachable, name).toBe(true);
      expect(
        a.path.map((e) => `${e.type}|${e.to}`),
        name,
      ).toEqual([
        `IDENTITY_ASSUME|k8s:ServiceAccount:agents/${name}`,
        `CLOUD_ASSUME|aws:role:${arn(`${name}-irsa`)}`,
        `SECRET_READ|aws:secrets:${store}`,
      ]);
      expect(a.path.at(-1)!.via.action).toBe(action);
    }
    // The region the policy names is the one probed.
    expect(secrets("support-agent")!.path.at(-1)!.via.resource).toMatch(/^arn:aws:secretsmanager:eu-west-1:/);
  });

  it("do not count when scoped to the role's own secrets, or denied", () => {
    expect(secrets("billing-agent")).toMatchObject({ reachable: false, path: [] });
    expect(secrets("etl-agent")).toMatchObject({ reachable: false, path: [] });
    const reads = result.escalations.filter((e) => e.type === "SECRET_READ").map((e) => e.from);
    expect(reads.sort()).toEqual(
      [arn("crypto-agent-irsa"), arn("ops-agent-irsa"), arn("support-agent-irsa")].map(
        (a) => `aws:role:${a}`,
      ),
    );
  });
});
