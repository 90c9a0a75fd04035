/**
 * Unjustified use on AWS: CloudTrail events of an agent's IAM role joined to the agent's OTLP
 * GenAI tool-call spans — exactly by request id (`aws.request_id`), else by the agent's identity
 * and time — and judged against the agent's declared work in writ.yaml. Each use outside it is a
 * category-2 finding with the chain event → tool call → prompt context.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AnalysisResult,
  declaredWork,
  defaultPlugins,
  type Finding,
  scanPaths,
} from "../../../src/analyzer/index.js";
import { loadPolicy } from "../../../src/app.js";
import { assertBuilt, runCli } from "../../support/cli.js";

const ACCOUNT = "444455556666";
const AGENT_ROLE = `arn:aws:iam::${ACCOUNT}:role/ops-agent`;
const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const T0 = Date.parse("2026-04-01T09:00:00Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const nanos = (s: number) => `${BigInt(T0 + s * 1000) * 1_000_000n}`;

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-unjustified-"));
const files = {
  authz: join(tmp, "authz.json"),
  trail: join(tmp, "cloudtrail.json"),
  traces: join(tmp, "traces.json"),
  config: join(tmp, "writ.yaml"),
};

const work = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:DeleteObject"],
      Resource: "arn:aws:s3:::reports/*",
    },
    { Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: "*" },
  ],
};
const AUTHZ = {
  UserDetailList: [
    {
      UserName: "alice",
      Arn: ALICE,
      Path: "/",
      GroupList: [],
      UserPolicyList: [{ PolicyName: "work", PolicyDocument: work }],
      AttachedManagedPolicies: [],
    },
  ],
  GroupDetailList: [],
  RoleDetailList: [
    {
      RoleName: "ops-agent",
      Arn: AGENT_ROLE,
      Path: "/",
      Tags: [{ Key: "writ.dev/agent", Value: "ops-agent" }],
      AssumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" },
        ],
      },
      RolePolicyList: [{ PolicyName: "work", PolicyDocument: work }],
      AttachedManagedPolicies: [],
    },
  ],
  Policies: [],
};

const session = {
  type: "AssumedRole",
  arn: `arn:aws:sts::${ACCOUNT}:assumed-role/ops-agent/task-1`,
  accountId: ACCOUNT,
  sessionContext: { sessionIssuer: { type: "Role", arn: AGENT_ROLE, userName: "ops-agent" } },
};
const record = (
  second: number,
  source: string,
  name: string,
  requestID: string,
  params: Record<string, unknown>,
  identity: unknown = session,
) => ({
  eventVersion: "1.08",
  eventTime: at(second),
  eventSource: `${source}.amazonaws.com`,
  eventName: name,
  awsRegion: "us-east-1",
  requestID,
  userIdentity: identity,
  requestParameters: params,
});
const TRAIL = {
  Records: [
    // within the baseline, through a declared tool
    record(10, "s3", "GetObject", "req-get-1", { bucketName: "reports", key: "daily.csv" }),
    // a secret read, joined to its tool call by request id; the conversation read a web page first
    record(62, "secretsmanager", "GetSecretValue", "req-secret-1", {
      secretId: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:db-admin`,
    }),
    // a delete with no request id in any span: joined by the agent and the time
    record(121, "s3", "DeleteObject", "req-del-1", { bucketName: "reports", key: "daily.csv" }),
    // the same delete by a person at the same moment: no agent, nothing to judge
    record(
      121,
      "s3",
      "DeleteObject",
      "req-del-2",
      { bucketName: "reports", key: "old.csv" },
      {
        type: "IAMUser",
        arn: ALICE,
        accountId: ACCOUNT,
      },
    ),
  ],
};

const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const span = (
  id: string,
  agent: string,
  tool: string,
  from: number,
  to: number,
  conversation: string,
  extra: object[] = [],
) => ({
  traceId: "7c1d4e2a9b3f4c5d8e6f7a8b9c0d1e2f",
  spanId: id,
  name: `execute_tool ${tool}`,
  kind: 1,
  startTimeUnixNano: nanos(from),
  endTimeUnixNano: nanos(to),
  attributes: [
    str("gen_ai.operation.name", "execute_tool"),
    str("gen_ai.tool.name", tool),
    str("gen_ai.agent.name", agent),
    str("gen_ai.conversation.id", conversation),
    ...extra,
  ],
});
const TRACES = {
  resourceSpans: [
    {
      resource: { attributes: [str("service.name", "ops-agent")] },
      scopeSpans: [
        {
          scope: { name: "ops-agent.agent" },
          spans: [
            span("b000000000000001", "ops-agent", "aws:s3_get_object", 9, 11, "conv-1"),
            span("b000000000000002", "ops-agent", "web:fetch", 40, 42, "conv-2", [
              str("gen_ai.tool.call.arguments", '{"url":"https://paste.example/notes"}'),
            ]),
            // a second before the delete: within the correlation slack
            span("b000000000000003", "ops-agent", "aws:s3_delete_object", 118, 120, "conv-3"),
            // the secret read carries its request id; its time matches nothing
            span("b000000000000004", "ops-agent", "aws:get_secret", 300, 301, "conv-2", [
              str("aws.request_id", "req-secret-1"),
              str("gen_ai.tool.call.arguments", '{"secret":"db-admin"}'),
            ]),
          ],
        },
      ],
    },
    {
      // another agent's call that spans the delete exactly: not the ops agent's, never joined to it
      resource: { attributes: [str("service.name", "report-agent")] },
      scopeSpans: [
        { spans: [span("c000000000000001", "report-agent", "aws:s3_get_object", 120, 123, "conv-9")] },
      ],
    },
  ],
};

const CONFIG = `version: 1
environments:
  prod:
    description: Production account ${ACCOUNT}
runnerClasses:
  ops:
    description: Operations agents
    ceiling:
      maxTtl: 1h
      allow:
        - action: "aws:*:*"
          resource: "*"
        - action: "mcp:*:*"
agents:
  ops-agent:
    owner: ops@acme.example
    purpose: Reads the daily reports
    runnerClass: ops
    environments: [prod]
    baseline:
      - action: "aws:s3:GetObject"
        resource: "arn:aws:s3:::reports/*"
    tools: ["aws:s3_get_object", "aws:get_secret", "web:fetch"]
  report-agent:
    owner: ops@acme.example
    purpose: Writes the reports
    runnerClass: ops
    environments: [prod]
    baseline:
      - action: "aws:s3:GetObject"
        resource: "arn:aws:s3:::reports/*"
    tools: ["aws:s3_get_object"]
`;

let result: AnalysisResult;
const unjustified = (action: string): Finding | undefined =>
  result.findings.find((f) => f.category === "unjustified-use" && f.permission.action === action);

beforeAll(async () => {
  writeFileSync(files.authz, JSON.stringify(AUTHZ));
  writeFileSync(files.trail, JSON.stringify(TRAIL));
  writeFileSync(files.traces, JSON.stringify(TRACES));
  writeFileSync(files.config, CONFIG);
  const loaded = await loadPolicy(files.config);
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  result = await scanPaths([files.authz, files.trail, files.traces], {
    plugins: defaultPlugins,
    declared: declaredWork(loaded.policy!.config),
  });
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("unjustified use by an AWS principal", () => {
  it("reads the role's CloudTrail events and the agent's tool calls", () => {
    expect(result.problems).toEqual([]);
    expect(result.coverage.events).toBe(4);
    expect(result.coverage.toolCalls).toBe(5);
  });

  it("joins a secret read to its tool call by request id, with the tainted prompt context", () => {
    const f = unjustified("aws:secretsmanager:GetSecretValue")!;
    expect(f).toBeDefined();
    expect(f.workload).toEqual({
      id: `aws:workload:${AGENT_ROLE}`,
      label: "IAMRole ops-agent",
      agent: "ops-agent",
    });
    expect(f.evidence.slice(0, 3).map((e) => [e.kind, e.ref])).toEqual([
      ["event", "req-secret-1"],
      ["tool-call", "b000000000000004"],
      ["context", "conv-2"],
    ]);
    expect(f.evidence[0]!.label).toContain(`aws:role:${AGENT_ROLE} aws:secretsmanager:GetSecretValue`);
    expect(f.evidence[1]!.label).toContain("tool call `aws:get_secret` by `ops-agent`");
    expect(f.evidence[2]!.label).toContain("tainted by `web:fetch`");
    const reasons = f.evidence.filter((e) => e.ref === "reason").map((e) => e.label);
    expect(reasons).toEqual([
      expect.stringContaining("in neither the baseline nor a playbook of `ops-agent`"),
      expect.stringContaining("prompt context `conv-2` read untrusted input earlier (tool `web:fetch`)"),
    ]);
    expect(f.severity).toBe("high");
    expect(f.reduction.kind).toBe("gateway-guardrail");
    expect(f.evidence.some((e) => e.ref === `aws:binding:${AGENT_ROLE}#${AGENT_ROLE}/inline/work`)).toBe(
      true,
    );
  });

  it("joins a delete to the agent's own tool call by time, not to another agent's call", () => {
    const f = unjustified("aws:s3:DeleteObject")!;
    expect(f.workload.id).toBe(`aws:workload:${AGENT_ROLE}`);
    expect(f.evidence.slice(0, 3).map((e) => [e.kind, e.ref])).toEqual([
      ["event", "req-del-1"],
      ["tool-call", "b000000000000003"],
      ["context", "conv-3"],
    ]);
    expect(f.evidence.filter((e) => e.ref === "reason").map((e) => e.label)).toEqual([
      expect.stringContaining("`aws:s3:DeleteObject` on `arn:aws:s3:::reports/daily.csv` is in neither"),
      "tool `aws:s3_delete_object` is not among the agent's declared tools",
    ]);
  });

  it("leaves declared use and a person's use alone", () => {
    expect(unjustified("aws:s3:GetObject")).toBeUndefined();
    expect(result.findings.filter((f) => f.category === "unjustified-use")).toHaveLength(2);
    expect(
      result.findings.filter((f) => f.workload.id === `aws:workload:${ALICE}`).map((f) => f.category),
    ).not.toContain("unjustified-use");
  });

  it("says the same through writ scan --config (built CLI)", async () => {
    assertBuilt();
    const r = await runCli(
      ["scan", files.authz, files.trail, files.traces, "--config", files.config, "--json"],
      {
        timeoutMs: 60_000,
      },
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as AnalysisResult & {
      summary: { byCategory: Record<string, number> };
    };
    expect(report.summary.byCategory["unjustified-use"]).toBe(2);
    const f = report.findings.find((x) => x.permission.action === "aws:secretsmanager:GetSecretValue")!;
    expect(f.evidence.slice(0, 3).map((e) => e.kind)).toEqual(["event", "tool-call", "context"]);
  }, 60_000);
});
