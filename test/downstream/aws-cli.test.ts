/**
 * `writ downstream aws policy`: what it prints, its errors, and that what it prints is enough — the
 * fake IAM holds the broker to exactly the printed policy and each role to the printed trust, and
 * issue and kill still work.
 */
import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { awsIssuer } from "../../src/downstream/aws.js";
import { startFakeAws } from "../fakes/aws.js";
import { awsConfigDir, BROKER as BROKER_USER, RELEASES_ROLE } from "../fakes/aws-account.js";
import { MemoryLedger } from "../fakes/ledger-aws.js";
import { credentialOf } from "./outcome.js";

const ROLE = RELEASES_ROLE;
const BROKER = BROKER_USER.userArn;

/** test/fixtures/downstream-aws/writ.yaml, as `writ serve` would load it; `edit` changes its text. */
async function yamlFile(
  mode: "role-session" | "web-identity" = "role-session",
  edit: (text: string) => string = (t) => t,
): Promise<string> {
  const { file } = await awsConfigDir({ endpoint: "http://127.0.0.1:1/fake-sts", mode });
  await writeFile(file, edit(await readFile(file, "utf8")));
  return file;
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, {});
  return { code, out: out.join(""), err: err.join(""), errs: err };
}

describe("writ downstream aws policy", () => {
  it("prints the broker's least-privilege policy and the trust policy, as JSON too", async () => {
    const file = await yamlFile();
    const r = await run(["downstream", "aws", "policy", "--config", file, "--broker", BROKER, "--json"]);
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.environment).toBe("dev");
    expect(out.brokerPolicy.Statement).toEqual([
      expect.objectContaining({
        Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        Resource: [ROLE],
      }),
      expect.objectContaining({ Action: ["iam:PutRolePolicy", "iam:DeleteRolePolicy"], Resource: [ROLE] }),
    ]);
    expect(out.trustPolicies[ROLE].Statement[0].Principal).toEqual({ AWS: BROKER });
    const human = await run(["downstream", "aws", "policy", "--config", file]);
    expect(human.out).toContain("## Trust policy of arn:aws:iam::111122223333:role/writ-releases");
  });

  it("web-identity: an OIDC trust policy with aud, no broker policy", async () => {
    const file = await yamlFile("web-identity");
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
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.brokerPolicy).toBeUndefined();
    expect(out.trustPolicies[ROLE].Statement[0]).toMatchObject({
      Principal: { Federated: "arn:aws:iam::111122223333:oidc-provider/writ.example/env/prod" },
      Action: ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"],
      Condition: { StringEquals: { "writ.example/env/prod:aud": "sts.amazonaws.com" } },
    });
  });

  it("refuses what `writ serve` refuses, with the loader's coded problems", async () => {
    const bad = await run([
      "downstream",
      "aws",
      "policy",
      "--config",
      await yamlFile("role-session", (t) => t.replace(ROLE, "not-an-arn")),
      "--json",
    ]);
    expect(bad.code).toBe(1);
    const first = JSON.parse(bad.errs[0]!);
    expect(first.error.code).toBe("ERR_CONFIG_INVALID");
    expect(first.error.problems).toContainEqual(
      expect.objectContaining({
        code: "ERR_CONFIG_DOWNSTREAM_ARN",
        path: "downstream.dev.aws.roles.*",
      }),
    );
    // beyond the aws section too: an unknown runner class is not a server that starts
    const elsewhere = await run([
      "downstream",
      "aws",
      "policy",
      "--config",
      await yamlFile("role-session", (t) => t.replace("runnerClass: deploy", "runnerClass: nope")),
      "--json",
    ]);
    expect(elsewhere.code).toBe(1);
    expect(JSON.parse(elsewhere.errs[0]!).error.code).toBe("ERR_CONFIG_INVALID");
    const missing = await run(["downstream", "aws", "policy", "--config", "/nonexistent/writ.yaml"]);
    expect(missing.code).toBe(2);
  });

  it("chooses the environment: --env, else the only one with aws; another is a coded error", async () => {
    const file = await yamlFile();
    const none = await run(["downstream", "aws", "policy", "--config", file, "--env", "prod", "--json"]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.err).error.code).toBe("ERR_DOWNSTREAM_CONFIG");
    expect(none.err).toContain("downstream.prod.aws: not configured");
    const dev = await run(["downstream", "aws", "policy", "--config", file, "--env", "dev", "--json"]);
    expect(dev.code, dev.err).toBe(0);
    expect(JSON.parse(dev.out).environment).toBe("dev");
  });

  it("the printed policies are enough: issue and kill work under exactly them", async () => {
    const file = await yamlFile();
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
      const cred = await credentialOf(
        issuer.issue(
          {
            id: "writ_cli1",
            agent: "deploy-bot",
            playbook: "deploy",
            environment: "prod",
            params: {},
            grants: [
              {
                action: "aws:ecs:UpdateService",
                resource: "arn:aws:ecs:eu-west-1:111122223333:service/web/*",
              },
            ],
            denies: [],
            issuedAt: now,
            expiresAt: new Date(now.getTime() + 600_000),
          },
          now,
        ),
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
