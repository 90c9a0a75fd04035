/**
 * `writ downstream aws policy`: what it prints, its errors, and that what it prints is enough — the
 * fake IAM holds the broker to exactly the printed policy and each role to the printed trust, and
 * issue and kill still work.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { awsIssuer } from "../../src/downstream/aws.js";
import { startFakeAws } from "../fakes/aws.js";
import { MemoryLedger } from "../fakes/ledger-aws.js";

const ROLE = "arn:aws:iam::111122223333:role/writ-deploy";
const BROKER = "arn:aws:iam::111122223333:user/writ-broker";

function yamlFile(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "writ-dsaws-"));
  const file = join(dir, "writ.yaml");
  writeFileSync(file, body);
  return file;
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, {});
  return { code, out: out.join(""), err: err.join("") };
}

const CONFIG = `downstream:\n  prod:\n    aws:\n      mode: role-session\n      region: eu-west-1\n      roles:\n        "*": ${ROLE}\n`;

describe("writ downstream aws policy", () => {
  it("prints the broker's least-privilege policy and the trust policy, as JSON too", async () => {
    const file = yamlFile(CONFIG);
    const r = await run(["downstream", "aws", "policy", "--config", file, "--broker", BROKER, "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.environment).toBe("prod");
    expect(out.brokerPolicy.Statement).toEqual([
      expect.objectContaining({
        Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        Resource: [ROLE],
      }),
      expect.objectContaining({ Action: ["iam:PutRolePolicy", "iam:DeleteRolePolicy"], Resource: [ROLE] }),
    ]);
    expect(out.trustPolicies[ROLE].Statement[0].Principal).toEqual({ AWS: BROKER });
    const human = await run(["downstream", "aws", "policy", "--config", file]);
    expect(human.out).toContain("## Trust policy of arn:aws:iam::111122223333:role/writ-deploy");
  });

  it("web-identity: an OIDC trust policy with aud, no broker policy", async () => {
    const file = yamlFile(CONFIG.replace("role-session", "web-identity"));
    const r = await run([
      "downstream",
      "aws",
      "policy",
      "--config",
      file,
      "--issuer",
      "https://writ.example/env/prod",
      "--json",
    ]);
    const out = JSON.parse(r.out);
    expect(out.brokerPolicy).toBeUndefined();
    expect(out.trustPolicies[ROLE].Statement[0]).toMatchObject({
      Principal: { Federated: "arn:aws:iam::111122223333:oidc-provider/writ.example/env/prod" },
      Action: ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"],
      Condition: { StringEquals: { "writ.example/env/prod:aud": "sts.amazonaws.com" } },
    });
  });

  it("says what is wrong with the section", async () => {
    const bad = await run([
      "downstream",
      "aws",
      "policy",
      "--config",
      yamlFile(CONFIG.replace(ROLE, "not-an-arn")),
      "--json",
    ]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.err).error.code).toBe("ERR_DOWNSTREAM_CONFIG");
    expect(bad.err).toContain("downstream.prod.aws.roles.*");
    const missing = await run(["downstream", "aws", "policy", "--config", "/nonexistent/writ.yaml"]);
    expect(missing.code).toBe(2);
  });

  it("the printed policies are enough: issue and kill work under exactly them", async () => {
    const file = yamlFile(CONFIG);
    const out = JSON.parse(
      (await run(["downstream", "aws", "policy", "--config", file, "--broker", BROKER, "--json"])).out,
    );
    const key = { userArn: BROKER, accessKeyId: "AKIACLITEST000000001", secretAccessKey: "cli-test-secret" };
    const fake = await startFakeAws({
      broker: key,
      brokerPolicies: [out.brokerPolicy],
      roles: [
        {
          arn: ROLE,
          trust: out.trustPolicies[ROLE],
          policies: [{ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] }],
        },
      ],
    });
    try {
      const issuer = await awsIssuer(
        {
          mode: "role-session",
          region: "eu-west-1",
          roles: new Map([["*", ROLE]]),
          endpoint: fake.endpoint,
          credentials: { from: "env" },
        },
        {
          ledger: new MemoryLedger(),
          audit: async () => {},
          env: { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey },
        },
      );
      const now = new Date();
      const cred = await issuer.issue(
        {
          id: "writ_cli1",
          agent: "deploy-bot",
          playbook: "deploy",
          environment: "prod",
          params: {},
          grants: [
            { action: "aws:ecs:UpdateService", resource: "arn:aws:ecs:eu-west-1:111122223333:service/web/*" },
          ],
          denies: [],
          issuedAt: now,
          expiresAt: new Date(now.getTime() + 600_000),
        },
        now,
      );
      if (cred.system !== "aws") throw new Error("not aws");
      expect(
        fake.use(cred.accessKeyId, "ecs:UpdateService", "arn:aws:ecs:eu-west-1:111122223333:service/web/api")
          .allowed,
      ).toBe(true);
      await issuer.kill({}, new Date());
      expect(fake.inlinePolicies(ROLE).has("writ-deny-all")).toBe(true);
      expect(
        fake.use(cred.accessKeyId, "ecs:UpdateService", "arn:aws:ecs:eu-west-1:111122223333:service/web/api")
          .allowed,
      ).toBe(false);
    } finally {
      await fake.stop();
    }
  });
});
