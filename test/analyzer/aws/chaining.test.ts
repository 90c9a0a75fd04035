/**
 * Inherited overreach on AWS: role chaining and instance profiles are edges of the engine's graph.
 * A role whose trust policy lets a principal assume it (decided by the evaluator: conditions,
 * boundaries and SCPs count) hands its grants on as category 3, with the chain as evidence; an
 * instance profile's role is reachable from the workload that stands for its instances.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  type AnalyzerPlugin,
  defaultPlugins,
  type GraphView,
} from "../../../src/analyzer/index.js";
import { loadOrganization } from "../../../src/analyzer/providers/aws/importers/index.js";
import { createAwsPlugin } from "../../../src/analyzer/providers/aws/plugin.js";
import { analyze } from "../corpora.js";
import { ACCOUNT, arn, FIXTURE, writeOrganization } from "./chain-fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-chain-"));
const authz = join(tmp, "authz.json");
const trail = join(tmp, "trail.json");
let result: AnalysisResult;
let graph: GraphView;

const canAssume = (g: GraphView, from: string) =>
  (g.out.get(`aws:user:${arn("user", from)}`) ?? [])
    .filter((e) => e.type === "can-assume")
    .map((e) => e.to.slice(e.to.lastIndexOf("/") + 1))
    .sort();
const findingsOf = (w: string) => result.findings.filter((f) => f.workload.id === `aws:workload:${w}`);

beforeAll(async () => {
  writeFileSync(authz, JSON.stringify(FIXTURE));
  writeFileSync(
    trail,
    JSON.stringify({
      Records: [
        {
          eventSource: "s3.amazonaws.com",
          eventName: "GetObject",
          eventTime: "2026-03-02T10:00:00Z",
          requestID: "r-1",
          requestParameters: { bucketName: "reports", key: "daily.csv" },
          userIdentity: {
            type: "AssumedRole",
            arn: `arn:aws:sts::${ACCOUNT}:assumed-role/web/i-0abc`,
            accountId: ACCOUNT,
            sessionContext: { sessionIssuer: { type: "Role", arn: arn("role", "web"), userName: "web" } },
          },
        },
      ],
    }),
  );
  ({ result, graph } = await analyze([authz, trail], { plugins: defaultPlugins }));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("role chaining as graph edges", () => {
  it("adds a can-assume edge only where the evaluator allows sts:AssumeRole", () => {
    expect(result.problems).toEqual([]);
    // the audit role's trust wants MFA: no edge; the intern's boundary allows no sts:AssumeRole
    expect(canAssume(graph, "ci")).toEqual(["deploy"]);
    expect(canAssume(graph, "intern")).toEqual([]);
    expect(canAssume(graph, "ops")).toEqual(["breakglass"]);
    // web and batch trust EC2 only
    expect(canAssume(graph, "admin")).toEqual(["breakglass", "deploy", "viewer"]);
    const e = graph.out.get(`aws:user:${arn("user", "ci")}`)!.find((x) => x.type === "can-assume")!;
    expect(e.note).toContain(`${arn("role", "deploy")}/trust`);
    expect(e.note).toContain(`${arn("user", "ci")}/inline/ci-work`);
  });

  it("reports what a principal can reach by assuming a broader role as inherited overreach, with the chain", () => {
    const f = findingsOf(arn("user", "ci")).filter((x) => x.category === "inherited-overreach");
    expect(f).toHaveLength(1);
    const [finding] = f;
    expect(finding!.severity).toBe("critical");
    expect(finding!.permission.action).toBe("aws:iam:PassRole");
    const refs = finding!.evidence.map((x) => x.ref);
    const chain = [
      `aws:workload:${arn("user", "ci")}`,
      `aws:user:${arn("user", "ci")}`,
      `aws:user:${arn("user", "ci")}→aws:role:${arn("role", "deploy")}`,
      `aws:role:${arn("role", "deploy")}`,
      `aws:binding:${arn("role", "deploy")}#${arn("role", "deploy")}/inline/deploy-work`,
    ];
    expect(refs.slice(0, 9).filter((r) => chain.includes(r))).toEqual(chain);
    expect(
      finding!.evidence.find((x) => x.kind === "edge" && x.label.startsWith("can-assume")),
    ).toBeDefined();
    expect(finding!.evidence.some((x) => x.label.startsWith("inherited: reached by assuming `deploy`"))).toBe(
      true,
    );
    expect(finding!.reduction.kind).toBe("deny-role-chaining");
    const fix = JSON.parse(finding!.reduction.files[0]!.content);
    expect(fix.Statement).toEqual([
      {
        Sid: "WritNoRoleChaining",
        Effect: "Deny",
        Action: ["sts:AssumeRole"],
        Resource: [arn("role", "deploy")],
      },
    ]);
    // its own grant is not inherited: unused, a category 1 finding of its own
    expect(
      findingsOf(arn("user", "ci")).find((x) => x.permission.action === "aws:s3:GetObject")?.category,
    ).toBe("unused-excess");
  });

  it("reports nothing for a role that adds nothing to what the principal already holds", () => {
    expect(canAssume(graph, "admin")).toContain("deploy");
    expect(findingsOf(arn("user", "admin")).filter((x) => x.category === "inherited-overreach")).toEqual([]);
  });

  it("follows role assumption in blast radius without counting it as creating identities", () => {
    const radius = (name: string) =>
      result.blastRadius.find((b) => b.workload === `aws:workload:${arn("user", name)}`)!.answers;
    // the viewer role can list buckets, nothing more
    expect(canAssume(graph, "reader")).toEqual(["viewer"]);
    expect(radius("reader").every((a) => !a.reachable)).toBe(true);
    // iam:CreateAccessKey outside the permissions boundary opens no path
    expect(radius("contractor").every((a) => !a.reachable)).toBe(true);
    const create = radius("ops").find((a) => a.question === "create-identities")!;
    expect(create.reachable).toBe(true);
    expect(create.path.map((e) => e.type)).toEqual(["IDENTITY_ASSUME", "IDENTITY_ASSUME", "ROLE_ESCALATE"]);
    expect(create.path[1]!.to).toBe(`aws:role:${arn("role", "breakglass")}`);
  });

  it("honours the organization's SCPs: a denied assumption is no edge and no finding", async () => {
    const org = join(tmp, "org");
    writeOrganization(org);
    const aws = createAwsPlugin({ organization: loadOrganization(org) });
    const plugins: AnalyzerPlugin[] = defaultPlugins.map((p) => (p.provider === "aws" ? aws : p));
    const r = await analyze([authz], { plugins });
    expect(canAssume(r.graph, "ops")).toEqual([]);
    expect(canAssume(r.graph, "ci")).toEqual(["deploy"]);
    expect(
      r.result.findings.filter(
        (f) => f.workload.id === `aws:workload:${arn("user", "ops")}` && f.category === "inherited-overreach",
      ),
    ).toEqual([]);
    const ops = r.result.blastRadius.find((b) => b.workload === `aws:workload:${arn("user", "ops")}`)!;
    expect(ops.answers.every((a) => !a.reachable)).toBe(true);
  });
});

describe("instance profiles", () => {
  it("stand for their instances: the profile is the workload, its role reachable from it", () => {
    const web = arn("instance-profile", "web");
    expect(result.workloadIds).toContain(`aws:workload:${web}`);
    expect(result.workloadIds).not.toContain(`aws:workload:${arn("role", "web")}`);
    expect(graph.out.get(`aws:instance-profile:${web}`)!.map((e) => [e.type, e.to])).toEqual([
      ["assumes", `aws:role:${arn("role", "web")}`],
    ]);
    // the role session's CloudTrail use is the instances' use
    const f = findingsOf(web);
    expect(f.map((x) => [x.category, x.permission.action])).toEqual([["unused-excess", "aws:s3:PutObject"]]);
    expect(f[0]!.evidence.map((x) => x.ref)).toContain(`aws:instance-profile:${web}`);
  });

  it("reports a role shared by two instance profiles as inherited by both", () => {
    for (const p of ["batch-a", "batch-b"]) {
      const f = findingsOf(arn("instance-profile", p));
      expect(f.map((x) => x.category)).toEqual(["inherited-overreach"]);
      expect(f[0]!.evidence.some((x) => /`batch` is shared by 2 workloads/.test(x.label))).toBe(true);
    }
  });
});
