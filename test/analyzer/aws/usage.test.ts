/**
 * Unused actions and replacement policies on the Stratus detonation logs, with real managed
 * policies (from the iam-vulnerable account's authorization details) as the original grant.
 * Every replacement is re-evaluated: it allows every observed call the original allowed, and
 * nothing the original does not allow.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type AwsCatalog, createCatalog } from "../../../src/analyzer/providers/aws/catalog.js";
import {
  evaluate,
  type Policy,
  parsePolicy,
  principalFromArn,
} from "../../../src/analyzer/providers/aws/evaluator/index.js";
import { expandPolicies } from "../../../src/analyzer/providers/aws/expand.js";
import {
  importAuthorizationDetails,
  readTrail,
  type TrailEvent,
} from "../../../src/analyzer/providers/aws/importers/index.js";
import {
  analyzeUsage,
  replacementPolicy,
  verifyReplacement,
} from "../../../src/analyzer/providers/aws/usage.js";
import { corpus } from "../corpora.js";

let catalog: AwsCatalog;
let powerUser: Policy;
let admin: Policy;
const logs = new Map<string, TrailEvent[]>();

beforeAll(async () => {
  catalog = createCatalog();
  await catalog.load("all");
  const file = corpus("aws-authz-details", "example.json");
  const details = importAuthorizationDetails(JSON.parse(readFileSync(file, "utf8")), file);
  powerUser = details.policies.get("arn:aws:iam::aws:policy/PowerUserAccess")!.document;
  admin = details.policies.get("arn:aws:iam::aws:policy/AdministratorAccess")!.document;
  const dir = corpus("cloudtrail", "stratus");
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".json"))) {
    const events: TrailEvent[] = [];
    for await (const e of readTrail(join(dir, f))) events.push(e);
    logs.set(f, events);
  }
}, 60_000);

describe("replacement policies from the Stratus logs", () => {
  it("allow every observed call the original allowed and nothing beyond it, for every principal of every log", () => {
    let principals = 0;
    let checked = 0;
    for (const [file, events] of logs) {
      for (const who of new Set(events.map((e) => e.principal))) {
        if (!who.startsWith("arn:aws:iam::")) continue;
        principals++;
        const principal = principalFromArn(who);
        for (const original of [{ identity: [powerUser] }, { identity: [admin] }]) {
          const r = replacementPolicy(principal, original, events, catalog, who);
          expect(parsePolicy("identity", "r", r.document).problems, `${file} ${who}`).toEqual([]);
          const v = verifyReplacement(principal, original, r, events, catalog, who);
          expect(v.notAllowed, `${file} ${who}`).toEqual([]);
          expect(v.beyondOriginal, `${file} ${who}`).toEqual([]);
          checked += v.checked;
        }
      }
    }
    expect(principals).toBeGreaterThanOrEqual(35);
    expect(checked).toBeGreaterThan(300);
  });

  it("leaves out the IAM calls PowerUserAccess denies, and the replacement denies them too", () => {
    const events = logs.get("aws.persistence.iam-create-admin-user.json")!;
    const who = "arn:aws:iam::229654561268:user/christophe";
    const principal = principalFromArn(who);
    const r = replacementPolicy(principal, { identity: [powerUser] }, events, catalog, who);
    expect([...new Set(r.leftOut.map((l) => l.action))].sort()).toEqual([
      "iam:AttachUserPolicy",
      "iam:CreateAccessKey",
      "iam:CreateUser",
    ]);
    expect(r.document.Statement).toEqual([]);
    const withAdmin = replacementPolicy(principal, { identity: [admin] }, events, catalog, who);
    expect(withAdmin.leftOut).toEqual([]);
    const replacement = parsePolicy("identity", "r", withAdmin.document);
    const attach = (user: string) =>
      evaluate(
        { principal, action: "iam:AttachUserPolicy", resource: `arn:aws:iam::229654561268:user/${user}` },
        { identity: [replacement] },
        { catalog },
      ).decision;
    expect(attach("malicious-iam-user")).toBe("allow");
    // Narrowed to the user that was touched.
    expect(attach("someone-else")).toBe("implicit-deny");
  });

  it("reports unused actions with their confidence, and failed calls are not use", () => {
    const events = logs.get("aws.credential-access.secretsmanager-retrieve-secrets.json")!;
    const who = "arn:aws:iam::903144391865:user/christophe";
    const granted = expandPolicies([powerUser], catalog);
    const report = analyzeUsage(who, granted, events, catalog);
    const byAction = new Map(report.actions.map((a) => [a.action, a]));
    expect(byAction.get("secretsmanager:GetSecretValue")).toMatchObject({
      used: true,
      confidence: "observed",
    });
    expect(byAction.get("secretsmanager:GetSecretValue")!.calls).toBeGreaterThan(0);
    expect(byAction.get("ec2:RunInstances")).toMatchObject({ used: false, confidence: "observed" });
    expect(byAction.get("s3:GetObject")).toMatchObject({ used: false, confidence: "implied" });
    expect(report.unused.length).toBe(report.actions.length - report.actions.filter((a) => a.used).length);
    expect(report.unused.length).toBeGreaterThan(10_000);
    const failed = logs.get("aws.credential-access.ec2-get-password-data.json")!.filter((e) => e.errorCode);
    expect(failed.length).toBeGreaterThan(0);
    const role = failed[0]!.principal;
    const r2 = analyzeUsage(
      role,
      granted,
      logs.get("aws.credential-access.ec2-get-password-data.json")!,
      catalog,
    );
    const usedNames = new Set(r2.actions.filter((a) => a.used).map((a) => a.action));
    const onlyFailed = new Set(failed.map((e) => e.action));
    for (const e of logs.get("aws.credential-access.ec2-get-password-data.json")!) {
      if (!e.errorCode && e.principal === role) onlyFailed.delete(e.action);
    }
    for (const a of onlyFailed) expect(usedNames.has(a), a).toBe(false);
  });

  it("uses a last-accessed export at service level when CloudTrail says nothing", () => {
    const granted = expandPolicies(
      [
        parsePolicy("identity", "p", {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: ["sqs:*", "sns:Publish"], Resource: "*" }],
        }),
      ],
      catalog,
    );
    const r = analyzeUsage("arn:aws:iam::111122223333:user/x", granted, [], catalog, [
      { service: "sqs", lastAccessed: "2026-01-01T00:00:00Z", actions: [] },
      { service: "sns", actions: [{ action: "sns:Publish", lastAccessed: "2026-01-02T00:00:00Z" }] },
    ]);
    const by = new Map(r.actions.map((a) => [a.action, a]));
    expect(by.get("sqs:SendMessage")).toMatchObject({ used: true, confidence: "service-level only" });
    expect(by.get("sns:Publish")).toMatchObject({ used: true, confidence: "observed" });
  });
});
