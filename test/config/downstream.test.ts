/**
 * The `downstream:` section of writ.yaml (issue 11): a valid section becomes the model the issuers
 * are built from (relative files resolved, defaults filled in), an absent one is none, and a secret
 * written into the section is refused without the problem ever repeating it. The broken shapes and
 * their positions are pinned by test/fixtures/bad-config/downstream*.yaml.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatProblem, loadConfigText } from "../../src/config/index.js";
import { ROOT } from "../support/cli.js";

const BASE = `version: 1
environments:
  dev: {}
  prod: {}
runnerClasses:
  ops:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "k8s:*:*"
        - action: "github:*:*"
agents:
  deployer:
    owner: erin@acme.example
    purpose: Deploys
    runnerClass: ops
    environments: [dev, prod]
playbooks:
  restart:
    description: Restarts a deployment
    risk: low
    ttl: 15m
    environments: [dev, prod]
    grants:
      - action: "k8s:apps/deployments:patch"
        resource: "prod/*"
`;

async function load(downstream: string) {
  return loadConfigText(`${BASE}${downstream}`, { file: "/etc/writ/writ.yaml", baseDir: "/etc/writ" });
}

describe("downstream config", () => {
  it("absent: no downstream systems", async () => {
    const r = await load("");
    expect(r.problems).toEqual([]);
    expect(r.config?.downstream).toBeUndefined();
  });

  it("builds the model for every system, with defaults and resolved files", async () => {
    const r = await load(`downstream:
  prod:
    aws:
      region: eu-west-1
      roles:
        restart: arn:aws:iam::123456789012:role/writ/restart
        "*": arn:aws-us-gov:iam::123456789012:role/writ-default
      authorizationDetails: aws/auth.json
      endpoint: http://127.0.0.1:4566/
      credentials: {from: profile, profile: writ-broker}
    github:
      appId: 12345
      installationId: 678
      privateKey: {file: keys/github-app.pem}
    kubernetes:
      server: https://k8s.acme.example:6443
      caFile: /etc/k8s/ca.pem
      token: {env: WRIT_K8S_TOKEN}
      serviceAccounts:
        "*": "agents/{agent}"
        deployer: deploy/writ-deployer
      audience: https://k8s.acme.example
  dev:
    aws:
      mode: web-identity
      region: us-east-1
      roles: {"*": "arn:aws:iam::123456789012:role/dev"}
`);
    expect(r.problems.map(formatProblem)).toEqual([]);
    const ds = r.config?.downstream;
    expect([...(ds?.environments.keys() ?? [])].sort()).toEqual(["dev", "prod"]);
    const prod = ds!.environments.get("prod")!;
    expect(prod.aws).toEqual({
      mode: "role-session",
      region: "eu-west-1",
      roles: new Map([
        ["restart", "arn:aws:iam::123456789012:role/writ/restart"],
        ["*", "arn:aws-us-gov:iam::123456789012:role/writ-default"],
      ]),
      authorizationDetails: "/etc/writ/aws/auth.json",
      endpoint: "http://127.0.0.1:4566",
      credentials: { from: "profile", profile: "writ-broker" },
    });
    expect(prod.github).toEqual({
      appId: "12345",
      installationId: 678,
      privateKey: { file: "/etc/writ/keys/github-app.pem" },
      apiUrl: "https://api.github.com",
    });
    expect(prod.kubernetes).toEqual({
      server: "https://k8s.acme.example:6443",
      caFile: "/etc/k8s/ca.pem",
      token: { env: "WRIT_K8S_TOKEN" },
      serviceAccounts: new Map([
        ["*", "agents/{agent}"],
        ["deployer", "deploy/writ-deployer"],
      ]),
      audience: "https://k8s.acme.example",
    });
    const dev = ds!.environments.get("dev")!;
    expect(dev.aws?.mode).toBe("web-identity");
    expect(dev.aws?.credentials).toEqual({ from: "env" });
    expect(dev.github).toBeUndefined();
    expect(dev.kubernetes).toBeUndefined();
  });

  const secrets: [string, string][] = [
    [
      "an AWS secret key under its own name",
      "      secretAccessKey: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n",
    ],
    ["an access key id anywhere", "      authorizationDetails: AKIAIOSFODNN7EXAMPLE\n"],
  ];
  for (const [what, line] of secrets) {
    it(`refuses ${what} and never repeats it`, async () => {
      const r = await load(`downstream:
  prod:
    aws:
      region: eu-west-1
      roles: {"*": "arn:aws:iam::123456789012:role/writ"}
${line}`);
      expect(r.config).toBeUndefined();
      expect(r.problems.map((p) => p.code)).toContain("ERR_CONFIG_DOWNSTREAM_SECRET");
      const secret = line.split(": ")[1]!.trim();
      for (const p of r.problems) expect(formatProblem(p)).not.toContain(secret);
    });
  }

  it("refuses a literal GitHub App key and a literal cluster token", async () => {
    const pem = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA\\n-----END RSA PRIVATE KEY-----";
    const r = await load(`downstream:
  prod:
    github:
      appId: 12345
      installationId: 678
      privateKey: "${pem}"
    kubernetes:
      server: https://k8s.acme.example
      token: "ghs_abcdefghijklmnopqrstuvwxyz0123456789"
      serviceAccounts: {deployer: deploy/writ}
`);
    expect(r.config).toBeUndefined();
    const found = r.problems.map((p) => [p.code, p.path]);
    expect(found).toEqual(
      expect.arrayContaining([
        ["ERR_CONFIG_DOWNSTREAM_SECRET", "downstream.prod.github.privateKey"],
        ["ERR_CONFIG_DOWNSTREAM_SECRET", "downstream.prod.kubernetes.token"],
      ]),
    );
    // one problem per secret, none repeating it
    expect(r.problems).toHaveLength(2);
    for (const p of r.problems) {
      expect(formatProblem(p)).not.toContain("MIIEowIBAAKCAQEA");
      expect(formatProblem(p)).not.toContain("ghs_abc");
    }
  });

  it("refuses a URL carrying credentials without repeating them", async () => {
    const r = await load(`downstream:
  prod:
    kubernetes:
      server: https://admin:hunter2@k8s.acme.example
      token: {file: /var/run/token}
      serviceAccounts: {deployer: deploy/writ}
`);
    expect(r.problems.map((p) => p.code)).toEqual(["ERR_CONFIG_DOWNSTREAM_URL"]);
    expect(formatProblem(r.problems[0]!)).not.toContain("hunter2");
  });

  it("refuses an environment with no system and credentials in web-identity mode", async () => {
    const r = await load(`downstream:
  dev: {}
  prod:
    aws:
      mode: web-identity
      region: eu-west-1
      roles: {"*": "arn:aws:iam::123456789012:role/writ"}
      credentials: {from: env}
`);
    expect(r.problems.map((p) => [p.code, p.path])).toEqual([
      ["ERR_CONFIG_VALUE", "downstream.dev"],
      ["ERR_CONFIG_VALUE", "downstream.prod.aws.credentials"],
    ]);
  });

  it("takes `audience` in web-identity mode only, as an IAM client id", async () => {
    const section = (env: string, mode: string, audience: string) => `
  ${env}:
    aws:
      mode: ${mode}
      region: eu-west-1
      roles: {"*": "arn:aws:iam::123456789012:role/writ"}
      audience: ${JSON.stringify(audience)}`;
    const good = await load(`downstream:${section("prod", "web-identity", "writ.example/aws")}\n`);
    expect(good.problems).toEqual([]);
    expect(good.config?.downstream?.environments.get("prod")?.aws?.audience).toBe("writ.example/aws");
    const bad = await load(
      `downstream:${section("prod", "role-session", "sts.amazonaws.com")}${section("dev", "web-identity", "has space")}\n`,
    );
    expect(bad.problems.map((p) => [p.code, p.path])).toEqual([
      ["ERR_CONFIG_DOWNSTREAM_AUDIENCE", "downstream.prod.aws.audience"],
      ["ERR_CONFIG_DOWNSTREAM_AUDIENCE", "downstream.dev.aws.audience"],
    ]);
  });

  it("the quickstart's commented example is a valid section once uncommented", async () => {
    const dir = join(ROOT, "examples", "quickstart");
    const text = await readFile(join(dir, "writ.yaml"), "utf8");
    const at = text.indexOf("\n# downstream:\n");
    expect(at).toBeGreaterThan(0);
    const head = text.slice(0, text.lastIndexOf("\n# Downstream systems", at));
    const example = text
      .slice(at + 1)
      .split("\n")
      .map((l) => l.replace(/^# ?/, ""))
      .join("\n");
    const r = await loadConfigText(`${head}\n${example}`, { file: join(dir, "writ.yaml"), baseDir: dir });
    expect(r.problems.filter((p) => p.severity === "error").map(formatProblem)).toEqual([]);
    const dev = r.config?.downstream?.environments.get("dev");
    expect(
      Object.keys(dev ?? {})
        .filter((k) => dev?.[k as keyof typeof dev] !== undefined)
        .sort(),
    ).toEqual(["aws", "github", "kubernetes"]);
  });
});
