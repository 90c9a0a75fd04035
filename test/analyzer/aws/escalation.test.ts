/**
 * The escalation graph on real data: the pathfinding.cloud catalogue evaluated against the
 * deployed iam-vulnerable account (cloudsplaining's authorization details), scored against the
 * hand-written labels of aws-iam-vulnerable: precision and recall, no trap flagged.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { type AwsCatalog, createCatalog } from "../../../src/analyzer/providers/aws/catalog.js";
import { analyzeEscalation, type EscalationReport } from "../../../src/analyzer/providers/aws/escalation.js";
import { importAuthorizationDetails } from "../../../src/analyzer/providers/aws/importers/index.js";
import {
  isAssumeOnly,
  loadPrivescPaths,
  type PrivescPath,
  SUPPLEMENT_PATHS,
} from "../../../src/analyzer/providers/aws/paths.js";
import { corpus, printScore, score } from "../corpora.js";

const NOW = new Date("2026-01-15T12:00:00Z");
let catalog: AwsCatalog;
let paths: PrivescPath[];
let report: EscalationReport;

/** labels.md rows: `file.tf` | label. */
function labels(): { file: string; dir: string; label: "fn" | "fp" }[] {
  const text = readFileSync(corpus("aws-iam-vulnerable", "labels.md"), "utf8");
  const out: { file: string; dir: string; label: "fn" | "fp" }[] = [];
  let dir = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("## tool-testing")) dir = "tool-testing";
    if (line.startsWith("## privesc-paths")) dir = "privesc-paths";
    const m = /^\| `([^`]+\.tf)` \| \*{0,2}(fn|fp)\*{0,2} \|/.exec(line);
    if (m && dir) out.push({ file: m[1]!, dir, label: m[2] as "fn" | "fp" });
  }
  return out;
}

/** The users and roles a Terraform file creates (`name = "…-user"` / `"…-role"`). */
function principalsOf(dir: string, file: string): string[] {
  const tf = readFileSync(corpus("aws-iam-vulnerable", dir, file), "utf8");
  return [...tf.matchAll(/name\s*=\s*"([^"]+-(?:user|role))"/g)].map((m) => m[1]!);
}

beforeAll(async () => {
  const file = corpus("aws-authz-details", "example.json");
  const details = importAuthorizationDetails(JSON.parse(readFileSync(file, "utf8")), file);
  paths = loadPrivescPaths(corpus("aws-privesc-paths", "paths"));
  catalog = createCatalog();
  await catalog.load(
    new Set(paths.flatMap((p) => p.required.map((a) => a.split(":")[0]!)).concat(["iam", "sts"])),
  );
  report = analyzeEscalation(details, [...paths, ...SUPPLEMENT_PATHS], catalog, { now: NOW });
}, 120_000);

describe("escalation graph", () => {
  it("loads the whole path catalogue", () => {
    expect(paths).toHaveLength(65);
    expect(new Set(paths.map((p) => p.category))).toEqual(
      new Set(["self-escalation", "principal-access", "new-passrole", "existing-passrole"]),
    );
  });

  it("finds every iam-vulnerable true path and flags no trap (precision and recall)", () => {
    const rows = labels();
    expect(rows.filter((r) => r.label === "fn")).toHaveLength(36);
    expect(rows.filter((r) => r.label === "fp")).toHaveLength(5);
    const byName = new Map(report.principals.map((p) => [p.principal.split("/").pop()!, p]));
    const flagged: string[] = [];
    for (const r of rows) {
      const names = principalsOf(r.dir, r.file);
      expect(names.length, r.file).toBeGreaterThan(0);
      if (names.some((n) => byName.get(n)?.escalates === true)) flagged.push(r.file);
    }
    const s = score(
      rows.filter((r) => r.label === "fn").map((r) => r.file),
      flagged,
    );
    printScore("iam-vulnerable account (aws-authz-details): principals that escalate", s);
    expect(s.extra).toEqual([]); // no trap flagged
    expect(s.missing).toEqual([]);
    expect(s.precision).toBe(1);
    expect(s.recall).toBe(1);
  });

  it("gives the evidence: the path, its steps and their deciding statements", () => {
    const p = report.principals.find((x) => x.principal.endsWith(":user/privesc4-CreateAccessKey-user"))!;
    const path = p.paths.find((x) => x.steps[0]!.action === "iam:CreateAccessKey")!;
    expect(path.category).toBe("principal-access");
    expect(path.steps[0]!.deciding[0]!.policyId).toBe(
      "arn:aws:iam::200611803367:policy/privesc4-CreateAccessKey",
    );
    expect(path.steps[0]!.resource).not.toBe(p.principal);
  });

  it("follows a two-hop role chain to an admin role", () => {
    const start = report.principals.find((x) =>
      x.principal.endsWith(":role/privesc-AssumeRole-starting-role"),
    )!;
    expect(start.paths).toEqual([]);
    expect(start.escalates).toBe(true);
    expect(start.chain).toEqual([
      "arn:aws:iam::200611803367:role/privesc-AssumeRole-intermediate-role",
      "arn:aws:iam::200611803367:role/privesc-AssumeRole-ending-role",
    ]);
  });

  it("a resource constraint on a customer policy is exploitable, on the AWS-managed namespace it is not", () => {
    const fn2 = report.principals.find((x) =>
      x.principal.endsWith(":user/fn2-exploitableResourceConstraint-user"),
    )!;
    const step = fn2.paths.flatMap((p) => p.steps).find((s) => s.action === "iam:CreatePolicyVersion")!;
    expect(step.resource).toBe("arn:aws:iam::200611803367:policy/fn2-exploitableResourceConstraint");
    const fp4 = report.principals.find((x) =>
      x.principal.endsWith(":user/fp4-nonExploitableResourceConstraint-user"),
    )!;
    expect(fp4.escalates).toBe(false);
  });

  it("a principal with no permissions does not escalate", () => {
    const trust = report.principals.find((x) => x.principal.endsWith(":role/privesc-permissive-role-trust"))!;
    expect(trust.escalates).toBe(false);
  });
});

describe("the path catalogue is minimal", () => {
  it("each path opens with exactly its required permissions and closes without any one of them", async () => {
    const account = "123456789012";
    const target = `arn:aws:iam::${account}:role/target`;
    const details = (actions: string[]) =>
      importAuthorizationDetails(
        {
          UserDetailList: [
            {
              UserName: "probe",
              Arn: `arn:aws:iam::${account}:user/probe`,
              GroupList: ["probes"],
              AttachedManagedPolicies: [
                { PolicyName: "probe", PolicyArn: `arn:aws:iam::${account}:policy/probe` },
              ],
            },
            {
              UserName: "victim",
              Arn: `arn:aws:iam::${account}:user/victim`,
              GroupList: [],
              AttachedManagedPolicies: [],
            },
          ],
          GroupDetailList: [
            { GroupName: "probes", Arn: `arn:aws:iam::${account}:group/probes`, AttachedManagedPolicies: [] },
          ],
          RoleDetailList: [
            {
              RoleName: "target",
              Arn: target,
              AssumeRolePolicyDocument: {
                Version: "2012-10-17",
                Statement: [
                  {
                    Effect: "Allow",
                    // every service a path passes a role to
                    Principal: { Service: [...new Set(paths.flatMap((p) => p.passedTo))] },
                    Action: "sts:AssumeRole",
                  },
                ],
              },
              RolePolicyList: [
                {
                  PolicyName: "admin",
                  PolicyDocument: {
                    Version: "2012-10-17",
                    Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
                  },
                },
              ],
              AttachedManagedPolicies: [],
            },
            {
              RoleName: "assumable",
              Arn: `arn:aws:iam::${account}:role/assumable`,
              AssumeRolePolicyDocument: {
                Version: "2012-10-17",
                Statement: [
                  {
                    Effect: "Allow",
                    Principal: { AWS: `arn:aws:iam::${account}:root` },
                    Action: "sts:AssumeRole",
                  },
                ],
              },
              AttachedManagedPolicies: [],
            },
          ],
          Policies: [
            {
              PolicyName: "probe",
              Arn: `arn:aws:iam::${account}:policy/probe`,
              PolicyVersionList: [
                {
                  VersionId: "v1",
                  IsDefaultVersion: true,
                  Document: {
                    Version: "2012-10-17",
                    Statement: actions.length
                      ? [{ Effect: "Allow", Action: actions, Resource: "*" }]
                      : [{ Effect: "Deny", Action: "none:None", Resource: "*" }],
                  },
                },
              ],
            },
          ],
        },
        "synthetic",
      );
    const probe = (r: EscalationReport) => r.principals.find((p) => p.principal.endsWith(":user/probe"))!;
    const failures: string[] = [];
    const checked: string[] = [];
    for (const p of [...paths, ...SUPPLEMENT_PATHS]) {
      // sts:AssumeRole alone is an edge of the graph, checked by the role-chain test above.
      if (isAssumeOnly(p)) continue;
      if (p.required.some((a) => catalog.hasAction(a.split(":")[0]!, a.split(":")[1]!) !== true)) continue;
      checked.push(p.id);
      const full = probe(analyzeEscalation(details([...p.required]), [p], catalog, { now: NOW }));
      if (!full.paths.some((x) => x.path === p.id))
        failures.push(`${p.id}: not open with its own permissions`);
      for (const drop of p.required) {
        const rest = p.required.filter((a) => a !== drop);
        const r = probe(analyzeEscalation(details(rest), [p], catalog, { now: NOW }));
        if (r.paths.some((x) => x.path === p.id)) failures.push(`${p.id}: still open without ${drop}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked.length).toBeGreaterThanOrEqual(60);
  }, 120_000);
});

describe("iam:PassRole", () => {
  const account = "123456789012";
  const role = (name: string, service: string) => ({
    RoleName: name,
    Arn: `arn:aws:iam::${account}:role/${name}`,
    AssumeRolePolicyDocument: {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
    },
    AttachedManagedPolicies: [],
  });
  const open = (statements: unknown[], roles: unknown[]) => {
    const details = importAuthorizationDetails(
      {
        UserDetailList: [
          {
            UserName: "dev",
            Arn: `arn:aws:iam::${account}:user/dev`,
            UserPolicyList: [
              { PolicyName: "p", PolicyDocument: { Version: "2012-10-17", Statement: statements } },
            ],
          },
        ],
        RoleDetailList: roles,
      },
      "synthetic",
    );
    const picked = paths.filter((p) => p.id === "ec2-001" || p.id === "lambda-001");
    const r = analyzeEscalation(details, picked, catalog, { now: NOW });
    return r.principals.find((p) => p.principal.endsWith(":user/dev"))!.paths.map((p) => p.path);
  };
  const compute = {
    Effect: "Allow",
    Action: ["ec2:RunInstances", "lambda:CreateFunction", "lambda:InvokeFunction"],
    Resource: "*",
  };

  it("needs a role that the path's service can assume", () => {
    const passAll = { Effect: "Allow", Action: "iam:PassRole", Resource: "*" };
    expect(open([compute, passAll], [role("ec2-only", "ec2.amazonaws.com")])).toEqual(["ec2-001"]);
    expect(open([compute, passAll], [role("fn", "lambda.amazonaws.com")])).toEqual(["lambda-001"]);
    expect(open([compute, passAll], [role("builds", "codebuild.amazonaws.com")])).toEqual([]);
  });

  it("honours an iam:PassedToService condition", () => {
    const passToLambda = {
      Effect: "Allow",
      Action: "iam:PassRole",
      Resource: "*",
      Condition: { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } },
    };
    const roles = [role("ec2-role", "ec2.amazonaws.com"), role("fn", "lambda.amazonaws.com")];
    expect(open([compute, passToLambda], roles)).toEqual(["lambda-001"]);
    const denyEc2 = {
      Effect: "Deny",
      Action: "iam:PassRole",
      Resource: "*",
      Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
    };
    const passAll = { Effect: "Allow", Action: "iam:PassRole", Resource: "*" };
    expect(open([compute, passAll, denyEc2], roles)).toEqual(["lambda-001"]);
  });
});
