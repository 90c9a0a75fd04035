/**
 * Expansion against the catalog, cross-checked with iam-dataset's expansion of 60 AWS managed
 * policies (an independent expansion of an older catalog, so ours may hold newer actions: we
 * measure how much of theirs we cover, and how often our access levels agree).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type AwsCatalog, createCatalog } from "../../../src/analyzer/providers/aws/catalog.js";
import { parsePolicy } from "../../../src/analyzer/providers/aws/evaluator/index.js";
import { expandPolicies, risksOf, servicesFor } from "../../../src/analyzer/providers/aws/expand.js";
import { corpus } from "../corpora.js";

let catalog: AwsCatalog;
beforeAll(async () => {
  catalog = createCatalog();
  await catalog.load("all");
});

interface Dataset {
  name: string;
  document: unknown;
  effective_actions: { effective_action: string; access_level: string }[];
}

describe("expansion", () => {
  it("covers iam-dataset's expansion of 60 managed policies, with matching access levels", () => {
    const dir = corpus("aws-managed-policies");
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(files).toHaveLength(60);
    let covered = 0;
    let total = 0;
    let sameLevel = 0;
    let compared = 0;
    for (const f of files) {
      const d = JSON.parse(readFileSync(join(dir, f), "utf8")) as Dataset;
      const exp = expandPolicies([parsePolicy("identity", d.name, d.document)], catalog);
      const mine = new Map(exp.actions.map((a) => [a.action.toLowerCase(), a.accessLevel]));
      let policyCovered = 0;
      for (const a of d.effective_actions) {
        const level = mine.get(a.effective_action.toLowerCase());
        if (level !== undefined) {
          policyCovered++;
          compared++;
          if (level === a.access_level) sameLevel++;
        }
      }
      expect(policyCovered / Math.max(1, d.effective_actions.length), f).toBeGreaterThanOrEqual(0.97);
      covered += policyCovered;
      total += d.effective_actions.length;
    }
    expect(covered / total).toBeGreaterThanOrEqual(0.99);
    expect(sameLevel / compared).toBeGreaterThanOrEqual(0.95);
  });

  it("expands NotAction against every service (iam-vulnerable fn4)", () => {
    const p = parsePolicy("identity", "fn4", {
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", NotAction: ["iam:Update*", "iam:Create*", "iam:Attach*"], Resource: "*" },
      ],
    });
    expect(servicesFor([p])).toBe("all");
    const names = new Set(expandPolicies([p], catalog).actions.map((a) => a.action));
    for (const a of [
      "iam:PutUserPolicy",
      "iam:PassRole",
      "iam:AddUserToGroup",
      "ssm:SendCommand",
      "ec2:RunInstances",
    ]) {
      expect(names.has(a), a).toBe(true);
    }
    for (const a of ["iam:CreateUser", "iam:UpdateAssumeRolePolicy", "iam:AttachUserPolicy"])
      expect(names.has(a), a).toBe(false);
  });

  it("an unconditional deny removes actions, a narrower one marks them", () => {
    const p = parsePolicy("identity", "p", {
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: "s3:*", Resource: "*" },
        { Effect: "Deny", Action: "s3:Delete*", Resource: "*" },
        { Effect: "Deny", Action: "s3:PutObject", Resource: "arn:aws:s3:::prod/*" },
      ],
    });
    const exp = expandPolicies([p], catalog);
    const byName = new Map(exp.actions.map((a) => [a.action, a]));
    expect(byName.has("s3:DeleteObject")).toBe(false);
    expect(byName.get("s3:PutObject")?.partlyDenied).toBe(true);
    expect(byName.get("s3:GetObject")?.partlyDenied).toBe(false);
  });

  it("reports patterns that match nothing", () => {
    const p = parsePolicy("identity", "p", {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: ["s3:GetObjekt", "s3:Get*"], Resource: "*" }],
    });
    expect(expandPolicies([p], catalog).unknown).toEqual(["s3:GetObjekt"]);
  });

  it("classifies access levels and risks", () => {
    const exp = expandPolicies(
      [
        parsePolicy("identity", "p", {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: [
                "iam:AttachUserPolicy",
                "secretsmanager:GetSecretValue",
                "ec2:RunInstances",
                "cloudtrail:StopLogging",
                "s3:ListAllMyBuckets",
                "ec2:CreateTags",
              ],
              Resource: "*",
            },
          ],
        }),
      ],
      catalog,
    );
    const got = Object.fromEntries(exp.actions.map((a) => [a.action, [a.accessLevel, a.risks]]));
    expect(got).toEqual({
      "cloudtrail:StopLogging": ["Write", ["logging"]],
      "ec2:CreateTags": ["Tagging", []],
      "ec2:RunInstances": ["Write", ["compute-data"]],
      "iam:AttachUserPolicy": ["Permissions management", ["identity"]],
      "s3:ListAllMyBuckets": ["List", []],
      "secretsmanager:GetSecretValue": ["Read", ["secrets"]],
    });
    expect(risksOf("kms:Decrypt", "Write")).toEqual(["secrets", "compute-data"]);
  });
});
