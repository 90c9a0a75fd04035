/** AWS importers on the real corpora, and each input format on small files written here. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { evaluate, principalFromArn } from "../../../src/analyzer/providers/aws/evaluator/index.js";
import {
  findPrincipal,
  importAuthorizationDetails,
  importLastAccessed,
  importResourcePolicy,
  loadOrganization,
  loadPolicyFolder,
  policiesFor,
  readTrail,
  type TrailEvent,
} from "../../../src/analyzer/providers/aws/importers/index.js";
import { isWritError } from "../../../src/core/index.js";
import { corpus } from "../corpora.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-import-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function all(path: string): Promise<TrailEvent[]> {
  const out: TrailEvent[] = [];
  for await (const e of readTrail(path)) out.push(e);
  return out;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isWritError(err) ? err.code : "not-a-writ-error";
  }
  return undefined;
}

describe("get-account-authorization-details", () => {
  const file = corpus("aws-authz-details", "example.json");
  const details = importAuthorizationDetails(JSON.parse(readFileSync(file, "utf8")), file);

  it("reads every user, group, role and managed policy of the iam-vulnerable account", () => {
    expect(details.users).toHaveLength(44);
    expect(details.roles).toHaveLength(78);
    expect(details.groups).toHaveLength(5);
    expect(details.policies.size).toBe(84);
    expect([...details.policies.values()].filter((p) => p.awsManaged)).toHaveLength(38);
    expect(details.account).toBe("200611803367");
    const problems = [...details.policies.values()].flatMap((p) =>
      p.document.problems.filter((x) => x.severity === "error"),
    );
    expect(problems).toEqual([]);
  });

  it("merges a user's attached, inline and group policies (fn1 splits privesc3 across two policies)", () => {
    const user = findPrincipal(details, "arn:aws:iam::200611803367:user/fn1-privesc3-partial-user")!;
    const set = policiesFor(details, user);
    expect(set.identity.map((p) => p.id).sort()).toEqual([
      "arn:aws:iam::200611803367:policy/fn1-passrole-star",
      "arn:aws:iam::200611803367:policy/fn1-privesc3-partial",
    ]);
    const principal = principalFromArn(user.arn);
    const run = evaluate(
      { principal, action: "ec2:RunInstances", resource: "arn:aws:ec2:us-east-1:200611803367:instance/*" },
      { identity: set.identity },
    );
    const pass = evaluate(
      {
        principal,
        action: "iam:PassRole",
        resource: "arn:aws:iam::200611803367:role/privesc-high-priv-service-role",
      },
      { identity: set.identity },
    );
    expect([run.decision, pass.decision]).toEqual(["allow", "allow"]);
    expect(new Set([run.deciding[0]!.policyId, pass.deciding[0]!.policyId]).size).toBe(2);
  });

  it("gives a group member its group's managed policy (privesc8)", () => {
    const user = findPrincipal(details, "arn:aws:iam::200611803367:user/privesc8-AttachGroupPolicy-user")!;
    expect(user.kind).toBe("user");
    expect(policiesFor(details, user).identity.map((p) => p.id)).toContain(
      "arn:aws:iam::200611803367:policy/privesc8-AttachGroupPolicy",
    );
  });

  it("keeps a role's trust policy as a resource policy", () => {
    const role = details.roles.find((r) => r.name === "privesc-AssumeRole-ending-role")!;
    expect(role.trust.kind).toBe("resource");
    expect(role.trust.statements.length).toBeGreaterThan(0);
  });

  it("rejects what is not authorization details, naming the file", () => {
    expect(code(() => importAuthorizationDetails({ Users: [] }, "x.json"))).toBe("ERR_AWS_IMPORT_FORMAT");
  });
});

describe("resource policies of S3, KMS, Secrets Manager, SQS, SNS and Lambda", () => {
  const doc = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "*" }],
  };
  it.each([
    ["s3 get-bucket-policy", { Policy: JSON.stringify(doc) }, "s3-kms-lambda", undefined],
    [
      "kms get-key-policy",
      { Policy: JSON.stringify(doc), PolicyName: "default" },
      "s3-kms-lambda",
      undefined,
    ],
    ["lambda get-policy", { Policy: JSON.stringify(doc), RevisionId: "r1" }, "s3-kms-lambda", undefined],
    [
      "secretsmanager get-resource-policy",
      {
        ARN: "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCd",
        Name: "db",
        ResourcePolicy: JSON.stringify(doc),
      },
      "secretsmanager",
      "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCd",
    ],
    [
      "sqs get-queue-attributes",
      { Attributes: { Policy: JSON.stringify(doc), QueueArn: "arn:aws:sqs:us-east-1:111122223333:q" } },
      "sqs-sns",
      "arn:aws:sqs:us-east-1:111122223333:q",
    ],
    [
      "sns get-topic-attributes",
      { Attributes: { Policy: JSON.stringify(doc), TopicArn: "arn:aws:sns:us-east-1:111122223333:t" } },
      "sqs-sns",
      "arn:aws:sns:us-east-1:111122223333:t",
    ],
    ["a bare document", doc, "document", undefined],
  ])("%s", (_name, json, format, arn) => {
    const r = importResourcePolicy(json, "in.json");
    expect(r.format).toBe(format);
    expect(r.resourceArn).toBe(arn);
    expect(r.policy.statements).toHaveLength(1);
    expect(r.policy.problems).toEqual([]);
  });
  it("rejects anything else", () => {
    expect(code(() => importResourcePolicy({ Foo: 1 }, "in.json"))).toBe("ERR_AWS_IMPORT_FORMAT");
  });
});

describe("policy folders and organization trees", () => {
  const write = (path: string, value: unknown) => {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  };
  const allowAll = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] };
  const dir = join(tmp, "pol");
  write(join(dir, "identity", "a.json"), allowAll);
  write(join(dir, "boundary.json"), {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
  });
  write(join(dir, "organization", "organization.json"), {
    managementAccountId: "999988887777",
    policyTypes: ["SCP"],
  });
  write(join(dir, "organization", "r-ab12", "scps", "full.json"), allowAll);
  write(join(dir, "organization", "r-ab12", "ou-ab12-prod", "scps", "full.json"), allowAll);
  write(join(dir, "organization", "r-ab12", "ou-ab12-prod", "scps", "deny-iam.json"), {
    Version: "2012-10-17",
    Statement: [{ Effect: "Deny", Action: "iam:*", Resource: "*" }],
  });
  write(join(dir, "organization", "r-ab12", "ou-ab12-prod", "111122223333", "scps", "full.json"), allowAll);

  it("reads identity, boundary and the organization path", () => {
    const set = loadPolicyFolder(dir);
    expect(set.identity).toHaveLength(1);
    expect(set.boundary?.kind).toBe("boundary");
    expect(set.organization?.nodes.map((n) => [n.id, n.parent, n.scps?.length])).toEqual([
      ["r-ab12", undefined, 1],
      ["ou-ab12-prod", "r-ab12", 2],
      ["111122223333", "ou-ab12-prod", 1],
    ]);
    const principal = principalFromArn("arn:aws:iam::111122223333:user/alice");
    expect(evaluate({ principal, action: "iam:CreateUser", resource: "*" }, set).decision).toBe(
      "explicit-deny",
    );
    expect(evaluate({ principal, action: "s3:GetObject", resource: "arn:aws:s3:::b/k" }, set).decision).toBe(
      "allow",
    );
    expect(evaluate({ principal, action: "ec2:RunInstances", resource: "*" }, set).decision).toBe(
      "implicit-deny",
    );
  });

  it("rejects a folder that is not an OU or account, and a missing management account", () => {
    const bad = join(tmp, "org-bad");
    write(join(bad, "organization.json"), { managementAccountId: "999988887777", policyTypes: ["SCP"] });
    write(join(bad, "r-x1", "prod", "scps", "a.json"), allowAll);
    expect(code(() => loadOrganization(bad))).toBe("ERR_AWS_IMPORT_FORMAT");
    const bad2 = join(tmp, "org-bad2");
    write(join(bad2, "organization.json"), { policyTypes: ["SCP"] });
    expect(code(() => loadOrganization(bad2))).toBe("ERR_AWS_IMPORT_FORMAT");
  });
});

describe("CloudTrail", () => {
  const stratus = corpus("cloudtrail", "stratus");

  it("parses every Stratus detonation log and attributes each event to its principal", async () => {
    const files = readdirSync(stratus).filter((f) => f.endsWith(".json"));
    expect(files).toHaveLength(35);
    let total = 0;
    for (const f of files) {
      const raw = JSON.parse(readFileSync(join(stratus, f), "utf8")) as {
        userIdentity: { type: string; arn?: string; sessionContext?: { sessionIssuer: { arn: string } } };
      }[];
      const events = await all(join(stratus, f));
      expect(events).toHaveLength(raw.length);
      total += events.length;
      events.forEach((e, i) => {
        const id = raw[i]!.userIdentity;
        const expected = id.type === "AssumedRole" ? id.sessionContext!.sessionIssuer.arn : id.arn;
        expect(e.principal, `${f}[${i}]`).toBe(expected);
        expect(e.action).toMatch(/^[a-z0-9-]+:[A-Za-z0-9]+$/);
      });
    }
    expect(total).toBe(310);
    const errors = (await all(stratus)).filter((e) => e.errorCode);
    expect(errors).toHaveLength(52);
  });

  it("maps the admin-user persistence technique to the IAM actions it used", async () => {
    const events = await all(join(stratus, "aws.persistence.iam-create-admin-user.json"));
    expect(events.map((e) => e.action).sort()).toEqual([
      "iam:AttachUserPolicy",
      "iam:CreateAccessKey",
      "iam:CreateUser",
    ]);
    expect(new Set(events.map((e) => e.principal))).toEqual(
      new Set(["arn:aws:iam::229654561268:user/christophe"]),
    );
    expect(events.find((e) => e.action === "iam:AttachUserPolicy")!.resources).toContain(
      "arn:aws:iam::229654561268:user/malicious-iam-user",
    );
  });

  it("reads Records files, JSON lines, gzip and lookup-events output alike", async () => {
    const rec = {
      eventSource: "s3.amazonaws.com",
      eventName: "ListObjectsV2",
      eventTime: "2024-01-01T00:00:00Z",
      userIdentity: {
        type: "AssumedRole",
        arn: "arn:aws:sts::111122223333:assumed-role/app/i-1",
        accountId: "111122223333",
        sessionContext: { sessionIssuer: { arn: "arn:aws:iam::111122223333:role/app" } },
      },
      requestParameters: { bucketName: "data" },
    };
    const d = join(tmp, "trail");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "a.json"), JSON.stringify({ Records: [rec, rec] }));
    writeFileSync(join(d, "b.json.gz"), gzipSync(JSON.stringify({ Records: [rec] })));
    writeFileSync(join(d, "c.jsonl"), `${JSON.stringify(rec)}\n\n${JSON.stringify(rec)}\n`);
    writeFileSync(join(d, "d.jsonl.gz"), gzipSync(`${JSON.stringify(rec)}\n`));
    writeFileSync(
      join(d, "e.json"),
      JSON.stringify({ Events: [{ EventName: "ListObjectsV2", CloudTrailEvent: JSON.stringify(rec) }] }),
    );
    const events = await all(d);
    expect(events).toHaveLength(7);
    for (const e of events) {
      expect(e.action).toBe("s3:ListBucket");
      expect(e.actionFrom).toBe("mapped");
      expect(e.principal).toBe("arn:aws:iam::111122223333:role/app");
      expect(e.resources).toEqual(["arn:aws:s3:::data"]);
    }
  });

  it("reads the plaso lookup-events sample (embedded CloudTrailEvent strings, no final newline)", async () => {
    const events = await all(corpus("cloud-audit-misc", "aws_cloudtrail.jsonl"));
    expect(events).toHaveLength(6);
    expect(events.every((e) => e.action.startsWith("ec2:"))).toBe(true);
  });

  it("names the file and line of a broken record", async () => {
    const f = join(tmp, "broken.jsonl");
    writeFileSync(f, '{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}\n{"not": "an event"}\n');
    await expect(all(f)).rejects.toThrow(/broken\.jsonl:2: not a CloudTrail record/);
    const g = join(tmp, "broken2.jsonl");
    writeFileSync(g, '{"eventSource": \n');
    await expect(all(g)).rejects.toMatchObject({ code: "ERR_AWS_IMPORT_JSON" });
  });
});

describe("last-accessed exports", () => {
  it("reads service and action granularity", () => {
    const r = importLastAccessed(
      {
        JobStatus: "COMPLETED",
        ServicesLastAccessed: [
          {
            ServiceName: "Amazon S3",
            ServiceNamespace: "s3",
            LastAuthenticated: "2024-05-01T00:00:00Z",
            TotalAuthenticatedEntities: 1,
            TrackedActionsLastAccessed: [
              { ActionName: "GetObject", LastAccessedTime: "2024-05-01T00:00:00Z" },
              { ActionName: "PutObject" },
            ],
          },
          { ServiceName: "AWS IAM", ServiceNamespace: "iam", TotalAuthenticatedEntities: 0 },
        ],
      },
      "la.json",
    );
    expect(r).toEqual([
      {
        service: "s3",
        lastAccessed: "2024-05-01T00:00:00Z",
        actions: [
          { action: "s3:GetObject", lastAccessed: "2024-05-01T00:00:00Z" },
          { action: "s3:PutObject" },
        ],
      },
      { service: "iam", actions: [] },
    ]);
    expect(code(() => importLastAccessed({}, "la.json"))).toBe("ERR_AWS_IMPORT_FORMAT");
  });
});
