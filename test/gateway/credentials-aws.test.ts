/**
 * Per-writ AWS credentials on a stdio upstream: the gateway in process on the real store, the real
 * AWS issuer (`@aws-sdk/client-sts`) against the fake STS/IAM, and our whoami MCP server as the
 * upstream. Its environment must hold the role session STS issued for this writ — whose session
 * policy allows the writ's grants and nothing else — and no other AWS variable.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsIssuer } from "../../src/downstream/aws.js";
import type { DownstreamIssuer } from "../../src/downstream/types.js";
import { INJECTED_ENV } from "../../src/gateway/index.js";
import { toActiveWrit } from "../../src/store/index.js";
import { QUICKSTART } from "../broker/live.js";
import { type FakeAws, startFakeAws } from "../fakes/aws.js";
import { BROKER, ROLE_POLICY, roleArn, TRUST } from "../fakes/aws-account.js";
import { MemoryLedger } from "../fakes/ledger-aws.js";
import { ROOT } from "../support/cli.js";
import { type InProcess, inProcessGateway } from "./inprocess.js";
import { configHead, refusal, text } from "./support.js";

const WHOAMI = join(ROOT, "test", "gateway", "fixtures", "whoami.mjs");
const ROLE = roleArn("writ-reports");
const GRANT = { action: "aws:s3:GetObject", resource: "arn:aws:s3:::acme-reports/*" };

let dir: string;
let fake: FakeAws;
let issuer: DownstreamIssuer;
let gw: InProcess;

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-aws-")));
  fake = await startFakeAws({
    broker: BROKER,
    roles: [{ arn: ROLE, trust: TRUST, policies: [ROLE_POLICY], maxSessionDuration: 3600 }],
  });
  const authz = join(dir, "authz.json");
  await writeFile(
    authz,
    JSON.stringify({
      UserDetailList: [],
      GroupDetailList: [],
      RoleDetailList: [
        {
          Path: "/",
          RoleName: "writ-reports",
          Arn: ROLE,
          AssumeRolePolicyDocument: TRUST,
          RolePolicyList: [{ PolicyName: "s3", PolicyDocument: ROLE_POLICY }],
          AttachedManagedPolicies: [],
          InstanceProfileList: [],
          Tags: [],
        },
      ],
      Policies: [],
    }),
  );
  issuer = await awsIssuer(
    {
      mode: "role-session",
      region: "eu-west-1",
      roles: new Map([["*", ROLE]]),
      endpoint: fake.endpoint,
      credentials: { from: "env" },
      authorizationDetails: authz,
    },
    {
      ledger: new MemoryLedger(),
      audit: async () => {},
      env: { AWS_ACCESS_KEY_ID: BROKER.accessKeyId, AWS_SECRET_ACCESS_KEY: BROKER.secretAccessKey },
    },
  );
  const yaml = `${configHead(`        - action: "mcp:*:*"
        - action: "aws:s3:*"
          resource: "arn:aws:s3:::acme-reports/*"`)}
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Reads reports through an AWS MCP server
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${join(QUICKSTART, "keys", "release-bot.jwks.json")}
    tools: ["s3:*"]
    playbooks: [read-reports]
playbooks:
  read-reports:
    description: Read the reports bucket
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:s3:whoami"
        resource: "-"
      - action: "${GRANT.action}"
        resource: "${GRANT.resource}"
    ttl: 30m
    ticket: none
gateway:
  upstreams:
    s3:
      command: ${process.execPath}
      args: ["${WHOAMI}"]
      cwd: ${ROOT}
      credentials: { downstream: aws }
`;
  const config = join(dir, "writ.yaml");
  await writeFile(config, yaml);
  gw = await inProcessGateway(config, join(dir, "data"), {
    downstream: (env, system) => (env === "dev" && system === "aws" ? issuer : undefined),
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await fake?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a stdio upstream with per-writ AWS credentials", () => {
  it("gets the writ's role session in its environment, scoped to the writ's grants", async () => {
    const now = gw.clock.now;
    const w = await gw.store.writs.insert({
      id: `writ_${randomUUID()}`,
      agent: "release-bot",
      playbook: "read-reports",
      environment: "dev",
      params: {},
      grants: [{ action: "mcp:s3:whoami", resource: "-" }, GRANT],
      issuedAt: new Date(now.getTime() - 1000),
      expiresAt: new Date(now.getTime() + 20 * 60_000),
    });
    const s = gw.gateway.openSession({
      agent: "release-bot",
      environment: "dev",
      writ: toActiveWrit(w),
      transport: "stdio",
    });
    const r = await gw.gateway.callTool(s.id, "s3__whoami", {});
    expect(refusal(r), text(r)).toBeUndefined();
    const me = JSON.parse(text(r)) as { env: Record<string, string> };
    const session = fake.sessions.find((x) => x.accessKeyId === me.env.AWS_ACCESS_KEY_ID);
    expect(session, "a session the fake STS issued").toBeDefined();
    expect(me.env.AWS_SECRET_ACCESS_KEY).toBe(session!.secretAccessKey);
    expect(me.env.AWS_SESSION_TOKEN).toBe(session!.sessionToken);
    expect(session!.tags["writ:id"]).toBe(w.id);
    expect(new Date(me.env.AWS_CREDENTIAL_EXPIRATION!).getTime()).toBe(session!.expiresAt.getTime());
    // only the injected variables: no broker key, no profile, nothing else of the AWS family
    expect(Object.keys(me.env).sort()).toEqual([...INJECTED_ENV.aws].sort());
    expect(JSON.stringify(me)).not.toContain(BROKER.secretAccessKey);
    // the session can do the writ's grant, and nothing else the role could
    expect(fake.use(session!.accessKeyId, "s3:GetObject", "arn:aws:s3:::acme-reports/q3.csv").allowed).toBe(
      true,
    );
    expect(fake.use(session!.accessKeyId, "s3:PutObject", "arn:aws:s3:::acme-reports/q3.csv").allowed).toBe(
      false,
    );
    expect(fake.use(session!.accessKeyId, "s3:GetObject", "arn:aws:s3:::other/x").allowed).toBe(false);
  });
});
