/**
 * The AWS analyzer, in one run:
 *
 *   Evaluator decisions per second, beside a floor:
 *     (a) a user with its identity policies (iam-vulnerable account, group and managed policies);
 *     (b) the same plus a permissions boundary, three SCP levels, a resource policy and conditions;
 *     (c) the floor: only matching the request's action against every statement's Action patterns
 *         of the same policies — what any evaluator must do at least, without resources,
 *         principals, conditions or the decision logic.
 *   CloudTrail on a generated 1,000,000-event JSON-lines log (in a temp folder, deleted after):
 *     events analyzed per second (read, normalise to IAM actions, attribute, aggregate per
 *     principal, then used/unused against each principal's grant) beside the time to only parse
 *     the same file (read lines and JSON.parse).
 */

import { once } from "node:events";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createCatalog } from "../src/analyzer/providers/aws/catalog.js";
import {
  evaluate,
  type PolicySet,
  parsePolicy,
  principalFromArn,
  wildcardMatch,
} from "../src/analyzer/providers/aws/evaluator/index.js";
import { expandPolicies } from "../src/analyzer/providers/aws/expand.js";
import {
  findPrincipal,
  importAuthorizationDetails,
  policiesFor,
  readTrail,
  type TrailEvent,
} from "../src/analyzer/providers/aws/importers/index.js";
import { analyzeUsage } from "../src/analyzer/providers/aws/usage.js";
import { type Measurement, measure, table } from "./harness.js";

const CORPORA = join(import.meta.dirname, "..", "..", "shared", "corpora");
const EVENTS = 1_000_000;

async function evaluator(): Promise<void> {
  const file = join(CORPORA, "aws-authz-details", "example.json");
  const details = importAuthorizationDetails(JSON.parse(readFileSync(file, "utf8")), file);
  const user = findPrincipal(details, "arn:aws:iam::200611803367:user/privesc-sre-user")!;
  const identity = policiesFor(details, user).identity;
  const principal = principalFromArn(user.arn);
  const catalog = createCatalog();
  await catalog.load(["s3", "ec2", "iam", "kms"]);
  const allowAll = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] };
  const full: PolicySet = {
    identity,
    boundary: parsePolicy("boundary", "boundary", {
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: ["s3:*", "ec2:*", "iam:Get*", "iam:List*"], Resource: "*" },
        {
          Effect: "Deny",
          Action: "s3:DeleteBucket",
          Resource: "*",
          Condition: { StringNotEquals: { "aws:PrincipalTag/role": "admin" } },
        },
      ],
    }),
    resource: parsePolicy("resource", "bucket", {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Deny",
          Principal: "*",
          Action: "s3:*",
          Resource: "*",
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        },
        {
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::200611803367:root" },
          Action: "s3:GetObject",
          Resource: "arn:aws:s3:::reports/*",
        },
      ],
    }),
    organization: {
      managementAccountId: "999988887777",
      nodes: [
        {
          id: "r-root",
          scps: [
            parsePolicy("scp", "full", allowAll),
            parsePolicy("scp", "region", {
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Deny",
                  NotAction: ["iam:*", "sts:*"],
                  Resource: "*",
                  Condition: { StringNotEquals: { "aws:RequestedRegion": ["us-east-1", "eu-west-1"] } },
                },
              ],
            }),
          ],
        },
        { id: "ou-prod", parent: "r-root", scps: [parsePolicy("scp", "full", allowAll)] },
        { id: "200611803367", parent: "ou-prod", scps: [parsePolicy("scp", "full", allowAll)] },
      ],
    },
  };
  const requests = [
    ["s3:GetObject", "arn:aws:s3:::reports/q1.csv"],
    ["ec2:RunInstances", "arn:aws:ec2:us-east-1:200611803367:instance/*"],
    ["iam:CreateUser", "arn:aws:iam::200611803367:user/x"],
    ["kms:Decrypt", "arn:aws:kms:us-east-1:200611803367:key/k"],
  ] as const;
  const context = {
    "aws:SecureTransport": "true",
    "aws:RequestedRegion": "us-east-1",
    "aws:SourceIp": "10.0.0.1",
  };
  const identityOnly: PolicySet = { identity };
  const allStatements = [
    ...identity,
    full.boundary!,
    full.resource!,
    ...full.organization!.nodes.flatMap((n) => n.scps ?? []),
  ].flatMap((p) => p.statements);
  let sink = 0;
  const rows = await measure(
    [
      {
        name: "(a) identity policies",
        op: (i) => {
          const [action, resource] = requests[i % requests.length]!;
          sink += evaluate({ principal, action, resource, context }, identityOnly, { catalog }).deciding
            .length;
        },
      },
      {
        name: "(b) + boundary, 3 SCP levels, resource policy, conditions",
        op: (i) => {
          const [action, resource] = requests[i % requests.length]!;
          sink += evaluate({ principal, action, resource, context }, full, { catalog }).deciding.length;
        },
      },
      {
        name: "(c) floor: action patterns of the same statements",
        op: (i) => {
          const [action] = requests[i % requests.length]!;
          for (const st of allStatements)
            if ((st.action ?? st.notAction ?? []).some((p) => wildcardMatch(p, action, true))) sink++;
        },
      },
    ],
    { budgetMs: 3000 },
  );
  console.log(table("AWS evaluator: decisions per second", rows, rows[2]!));
  if (sink < 0) console.log(sink);
}

const PRINCIPALS = 50;
const ACTIONS = [
  ["s3.amazonaws.com", "GetObject"],
  ["s3.amazonaws.com", "ListObjectsV2"],
  ["ec2.amazonaws.com", "DescribeInstances"],
  ["sts.amazonaws.com", "AssumeRole"],
  ["kms.amazonaws.com", "Decrypt"],
  ["secretsmanager.amazonaws.com", "GetSecretValue"],
  ["lambda.amazonaws.com", "Invoke"],
  ["dynamodb.amazonaws.com", "PutItem"],
  ["iam.amazonaws.com", "GetRole"],
  ["logs.amazonaws.com", "PutLogEvents"],
] as const;

async function generate(path: string): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (let i = 0; i < EVENTS; i++) {
    const p = i % PRINCIPALS;
    const [source, name] = ACTIONS[(i * 7) % ACTIONS.length]!;
    const role = p % 2 === 0;
    const identity = role
      ? `{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app-${p}/i-${i % 97}","accountId":"111122223333","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/app-${p}"}}}`
      : `{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/dev-${p}","accountId":"111122223333","userName":"dev-${p}"}`;
    const t = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString().replace(".000", "");
    const err = i % 50 === 0 ? `,"errorCode":"AccessDenied"` : "";
    const line = `{"eventVersion":"1.09","userIdentity":${identity},"eventTime":"${t}","eventSource":"${source}","eventName":"${name}","awsRegion":"us-east-1","sourceIPAddress":"10.0.${p}.${i % 250}","requestParameters":{"bucketName":"data-${p % 5}","key":"k/${i % 1000}"}${err}}\n`;
    bytes += line.length;
    if (!out.write(line)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return bytes;
}

async function trail(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "writ-bench-trail-"));
  try {
    const path = join(dir, "trail.jsonl");
    const t0 = performance.now();
    await generate(path);
    const genMs = performance.now() - t0;
    const size = statSync(path).size;

    const p0 = performance.now();
    let parsed = 0;
    for await (const line of createInterface({
      input: createReadStream(path),
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      if (line) {
        JSON.parse(line);
        parsed++;
      }
    }
    const parseMs = performance.now() - p0;

    const catalog = createCatalog();
    await catalog.load(["s3", "ec2", "sts", "kms", "secretsmanager", "lambda", "dynamodb", "iam", "logs"]);
    const grant = expandPolicies(
      [
        parsePolicy("identity", "grant", {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: [
                "s3:*",
                "ec2:Describe*",
                "kms:*",
                "secretsmanager:*",
                "lambda:*",
                "dynamodb:*",
                "logs:*",
              ],
              Resource: "*",
            },
          ],
        }),
      ],
      catalog,
    );
    const a0 = performance.now();
    let analyzed = 0;
    const byPrincipal = new Map<string, TrailEvent[]>();
    for await (const e of readTrail(path)) {
      analyzed++;
      let list = byPrincipal.get(e.principal);
      if (!list) {
        list = [];
        byPrincipal.set(e.principal, list);
      }
      list.push(e);
    }
    let unused = 0;
    for (const [who, events] of byPrincipal)
      unused += analyzeUsage(who, grant, events, catalog).unused.length;
    const analyzeMs = performance.now() - a0;
    const row = (name: string, n: number, ms: number): Measurement => ({
      name,
      iterations: n,
      opsPerSecond: n / (ms / 1000),
      p50: (ms * 1000) / n,
      p99: (ms * 1000) / n,
    });
    const parse = row("parse only (read lines + JSON.parse)", parsed, parseMs);
    const analyze = row("analyze (normalise, attribute, aggregate, used/unused)", analyzed, analyzeMs);
    console.log(
      table(
        `CloudTrail: ${EVENTS.toLocaleString("en-US")} events, ${(size / 1e6).toFixed(0)} MB JSON lines (generated in ${(genMs / 1000).toFixed(1)} s); µs columns are the mean per event`,
        [analyze, parse],
        parse,
        "events/s",
      ),
    );
    console.log(
      `\nparse only ${(parseMs / 1000).toFixed(2)} s, analyze ${(analyzeMs / 1000).toFixed(2)} s (${byPrincipal.size} principals, ${unused} unused actions in all)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  await evaluator();
  console.log();
  await trail();
}
