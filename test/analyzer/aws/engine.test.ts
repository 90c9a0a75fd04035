/**
 * AWS through the analysis engine and `writ scan`'s scanner: authorization details and CloudTrail
 * become nodes and events; unused grants become findings with IAM JSON fixes; escalation edges
 * from the evaluator give blast radius, joined to a Kubernetes workload through IRSA.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AnalysisResult, defaultPlugins, scanPaths, textInput } from "../../../src/analyzer/index.js";
import { parsePolicy } from "../../../src/analyzer/providers/aws/evaluator/index.js";
import { awsAuthzImporter, awsCatalog } from "../../../src/analyzer/providers/aws/plugin.js";
import { corpus } from "../corpora.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-engine-"));
let result: AnalysisResult;
const ACCOUNT = "200611803367";

beforeAll(async () => {
  await awsCatalog().load("all");
  // A pod whose service account assumes an IAM role of the account (IRSA).
  writeFileSync(
    join(tmp, "agent.yaml"),
    `apiVersion: v1
kind: ServiceAccount
metadata:
  name: sre-agent
  namespace: ops
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::${ACCOUNT}:role/privesc-sre-role
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sre-agent
  namespace: ops
spec:
  selector: { matchLabels: { app: sre-agent } }
  template:
    metadata: { labels: { app: sre-agent } }
    spec:
      serviceAccountName: sre-agent
      containers: [{ name: agent, image: agent:1 }]
`,
  );
  // A day of CloudTrail for one user, as a Records file.
  const user = `arn:aws:iam::${ACCOUNT}:user/privesc4-CreateAccessKey-user`;
  writeFileSync(
    join(tmp, "trail.json"),
    JSON.stringify({
      Records: [
        {
          eventSource: "iam.amazonaws.com",
          eventName: "CreateAccessKey",
          eventTime: "2026-01-10T10:00:00Z",
          requestID: "req-1",
          userIdentity: { type: "IAMUser", arn: user, accountId: ACCOUNT },
          requestParameters: { userName: "admin" },
        },
        {
          eventSource: "ec2.amazonaws.com",
          eventName: "RunInstances",
          eventTime: "2026-01-10T10:30:00Z",
          requestID: "req-2",
          userIdentity: {
            type: "IAMUser",
            arn: `arn:aws:iam::${ACCOUNT}:user/privesc3-CreateEC2WithExistingInstanceProfile-user`,
            accountId: ACCOUNT,
          },
        },
        {
          eventSource: "iam.amazonaws.com",
          eventName: "CreateAccessKey",
          eventTime: "2026-01-10T11:00:00Z",
          errorCode: "AccessDenied",
          userIdentity: { type: "IAMUser", arn: user, accountId: ACCOUNT },
          requestParameters: { userName: "root-like" },
        },
      ],
    }),
  );
  result = await scanPaths(
    [corpus("aws-authz-details", "example.json"), join(tmp, "agent.yaml"), join(tmp, "trail.json")],
    {
      plugins: defaultPlugins,
    },
  );
}, 180_000);
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe("AWS in the analysis engine", () => {
  it("imports without problems and counts the CloudTrail events, the denied one apart", () => {
    expect(result.problems.filter((p) => p.severity === "error")).toEqual([]);
    expect(result.coverage.events).toBe(3);
    expect(result.coverage.eventsDenied).toBe(1);
    expect(result.workloadIds).toContain(
      `aws:workload:arn:aws:iam::${ACCOUNT}:user/privesc4-CreateAccessKey-user`,
    );
  });

  it("reports the unused grants of an IAM user with activity, with a valid IAM JSON replacement of what it used", () => {
    const f = result.findings.filter((x) =>
      x.workload.id.endsWith(":user/privesc3-CreateEC2WithExistingInstanceProfile-user"),
    );
    const unused = f.find(
      (x) => x.category === "unused-excess" && x.permission.action === "aws:iam:PassRole",
    )!;
    expect(unused).toBeDefined();
    expect(unused.severity).toBe("critical");
    expect(f.some((x) => x.permission.action === "aws:ec2:RunInstances")).toBe(false);
    const file = unused.reduction.files[0]!;
    expect(file.language).toBe("json");
    const doc = JSON.parse(file.content);
    expect(parsePolicy("identity", "fix", doc).problems).toEqual([]);
    expect(doc.Statement.flatMap((st: { Action: string[] }) => st.Action)).toEqual(["ec2:RunInstances"]);
  });

  it("reports a grant inherited through an IAM group with a dedicated-identity fix", () => {
    const f = result.findings.find(
      (x) => x.workload.id.endsWith(":user/privesc-sre-user") && x.category === "inherited-overreach",
    )!;
    expect(f.permission.action).toBe("aws:iam:*");
    expect(
      f.evidence.some((e) => e.ref === `aws:group:arn:aws:iam::${ACCOUNT}:group/privesc-sre-group`),
    ).toBe(true);
    expect(f.reduction.kind).toBe("dedicated-identity");
    expect(parsePolicy("identity", "fix", JSON.parse(f.reduction.files[0]!.content)).problems).toEqual([]);
  });

  it("keeps the used action out of the unused findings and puts it in the replacement", () => {
    const f = result.findings.filter((x) => x.workload.id.endsWith(":user/privesc4-CreateAccessKey-user"));
    expect(
      f.some((x) => x.category === "unused-excess" && x.permission.action === "aws:iam:CreateAccessKey"),
    ).toBe(false);
  });

  it("does not give a trap principal (explicit deny across policies) any grant", () => {
    const f = result.findings.filter((x) =>
      x.workload.id.endsWith(":user/fp2-allow-and-deny-multiple-policies-user"),
    );
    expect(f).toEqual([]);
  });

  it("answers blast radius with the evaluator's escalation edges", () => {
    const b = result.blastRadius.find((x) => x.workload.endsWith(":user/privesc4-CreateAccessKey-user"))!;
    const create = b.answers.find((a) => a.question === "create-identities")!;
    expect(create.reachable).toBe(true);
    expect(create.path.at(-1)!.via.action).toBe("aws:iam:CreateAccessKey");
    // Worded for an IAM principal, not a Kubernetes workload.
    expect(create.text).toBe(
      "create or escalate IAM identities (assume other roles, new access keys, policies)",
    );
    expect(b.answers.find((a) => a.question === "mutate-outside-namespace")!.text).not.toMatch(/namespace/);
    const fp = result.blastRadius.find((x) => x.workload.endsWith(":user/fp1-allow-and-deny-user"))!;
    expect(fp.answers.every((a) => !a.reachable)).toBe(true);
  });

  it("joins a Kubernetes workload to its IRSA role's escalation paths", () => {
    const b = result.blastRadius.find((x) => x.workload === "k8s:Deployment:ops/sre-agent")!;
    expect(b).toBeDefined();
    const create = b.answers.find((a) => a.question === "create-identities")!;
    expect(create.reachable).toBe(true);
    expect(create.text).toMatch(/^create identities \(ServiceAccounts/);
    expect(
      create.path.some(
        (e) => e.type === "CLOUD_ASSUME" && e.to === `aws:role:arn:aws:iam::${ACCOUNT}:role/privesc-sre-role`,
      ),
    ).toBe(true);
  });

  it("reports what a role can reach through a two-hop role chain as inherited, with the chain", () => {
    const role = (n: string) => `arn:aws:iam::${ACCOUNT}:role/privesc-AssumeRole-${n}-role`;
    const f = result.findings.filter(
      (x) => x.workload.id === `aws:workload:${role("starting")}` && x.category === "inherited-overreach",
    );
    expect(f).toHaveLength(1);
    expect(f[0]!.permission.action).toBe("aws:*:*");
    const hops = f[0]!.evidence.filter((e) => e.kind === "edge" && e.label.startsWith("can-assume"));
    expect(hops.map((e) => e.ref)).toEqual([
      `aws:role:${role("starting")}→aws:role:${role("intermediate")}`,
      `aws:role:${role("intermediate")}→aws:role:${role("ending")}`,
    ]);
    expect(f[0]!.reduction.kind).toBe("deny-role-chaining");
    expect(JSON.parse(f[0]!.reduction.files[0]!.content).Statement[0].Resource).toEqual([
      role("intermediate"),
    ]);
    // the traps inherit nothing through role chaining
    for (const trap of result.findings.filter((x) => /:(user|role)\/fp\d/.test(x.workload.id)))
      expect(trap.evidence.some((e) => e.label.startsWith("can-assume"))).toBe(false);
  });

  it("analyzes a role with an instance profile through the profile's instances", () => {
    const profile = `arn:aws:iam::${ACCOUNT}:instance-profile/privesc-high-priv-service-profile`;
    expect(result.workloadIds).toContain(`aws:workload:${profile}`);
    expect(result.workloadIds).not.toContain(
      `aws:workload:arn:aws:iam::${ACCOUNT}:role/privesc-high-priv-service-role`,
    );
    const b = result.blastRadius.find((x) => x.workload === `aws:workload:${profile}`)!;
    const create = b.answers.find((a) => a.question === "create-identities")!;
    expect(create.reachable).toBe(true);
    expect(create.path[1]).toMatchObject({
      type: "IDENTITY_ASSUME",
      to: `aws:role:arn:aws:iam::${ACCOUNT}:role/privesc-high-priv-service-role`,
    });
  });

  it("names the writ agent of a principal tagged `writ.dev/agent`", async () => {
    const f = join(tmp, "tagged-authz.json");
    writeFileSync(
      f,
      JSON.stringify({
        UserDetailList: [],
        GroupDetailList: [],
        Policies: [],
        RoleDetailList: [
          {
            RoleName: "release-bot",
            Arn: "arn:aws:iam::111122223333:role/release-bot",
            Path: "/",
            Tags: [{ Key: "writ.dev/agent", Value: "release-bot" }],
            AssumeRolePolicyDocument: {
              Version: "2012-10-17",
              Statement: [
                { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
              ],
            },
            RolePolicyList: [
              {
                PolicyName: "deploy",
                PolicyDocument: {
                  Version: "2012-10-17",
                  Statement: [{ Effect: "Allow", Action: "lambda:UpdateFunctionCode", Resource: "*" }],
                },
              },
            ],
            AttachedManagedPolicies: [],
          },
        ],
      }),
    );
    const imported = await awsAuthzImporter.import(textInput(f, readFileSync(f, "utf8")));
    const workload = imported.fragment.nodes.find((n) => n.type === "workload")!;
    expect(workload.agent).toBe("release-bot");
    const r = await scanPaths([f], { plugins: defaultPlugins });
    expect(r.workloadIds).toEqual(["aws:workload:arn:aws:iam::111122223333:role/release-bot"]);
    const b = r.blastRadius.find(
      (x) => x.workload === "aws:workload:arn:aws:iam::111122223333:role/release-bot",
    )!;
    expect(b.answers.find((a) => a.question === "mutate-outside-namespace")!.reachable).toBe(true);
  });

  it("reads the Stratus logs as activity", async () => {
    const r = await scanPaths([corpus("cloudtrail", "stratus")], { plugins: defaultPlugins });
    expect(r.coverage.events).toBe(310);
    expect(r.coverage.eventsDenied).toBeGreaterThan(0);
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
  });

  it("reports a broken CloudTrail line with its file and line, and reads the rest", async () => {
    const f = join(tmp, "broken.jsonl");
    writeFileSync(
      f,
      `${JSON.stringify({ eventSource: "s3.amazonaws.com", eventName: "GetObject", eventTime: "2026-01-01T00:00:00Z", userIdentity: { type: "IAMUser", arn: "arn:aws:iam::1:user/x" } })}\n{"eventSource": oops\n`,
    );
    const r = await scanPaths([f], { plugins: defaultPlugins });
    expect(r.coverage.events).toBe(1);
    expect(r.problems).toEqual([expect.objectContaining({ code: "ERR_INPUT_CLOUDTRAIL", file: f, line: 2 })]);
    expect(readFileSync(f, "utf8")).toContain("oops");
  });
});
