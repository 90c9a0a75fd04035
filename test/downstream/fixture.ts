/**
 * A live `writ serve` app with downstream systems configured and the test system standing in for
 * them (test-issuer.ts): the app of `createServer`, listening on loopback, its writ.yaml beside a
 * copy of the quickstart's keys. Also the writ.yaml itself, for tests that spawn a server process.
 */
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { ROOT } from "../support/cli.js";
import { TestDownstream } from "./test-issuer.js";

export const QUICKSTART_KEYS = join(ROOT, "examples", "quickstart", "keys");

export const DOWNSTREAM_YAML = `version: 1
environments:
  dev:
    audiences: ["https://k8s.acme.example"]
  prod: {}
runnerClasses:
  deploy:
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get|patch"
          resource: "checkout/*"
        - action: "github:contents:read|write"
          resource: "acme/checkout"
        - action: "aws:s3:GetObject"
          resource: "arn:aws:s3:::acme-releases/*"
      deny:
        - action: "k8s:core/secrets:*"
approverGroups:
  sre: { members: [bob@acme.example] }
approvers:
  bob@acme.example: { keys: { file: keys/approver-bob.jwks.json } }
agents:
  release-bot:
    owner: alice@acme.example
    purpose: deploys checkout
    runnerClass: deploy
    environments: [dev, prod]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [restart, push, fetch, once, guarded]
  ops-assistant:
    owner: bob@acme.example
    purpose: a second agent, for kills of one agent
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/ops-assistant.jwks.json }
    playbooks: [restart]
playbooks:
  restart:
    description: patch the checkout deployment
    risk: low
    environments: [dev, prod]
    ttl: 10m
    grants:
      - action: "k8s:apps/deployments:get|patch"
        resource: "checkout/checkout"
  push:
    description: write to the checkout repository
    risk: low
    environments: [dev]
    ttl: 10m
    grants:
      - action: "github:contents:write"
        resource: "acme/checkout"
  fetch:
    description: read one release artifact
    risk: low
    environments: [dev]
    ttl: 10m
    parameters:
      type: object
      properties: { version: { type: string, pattern: "^v[0-9.]+$" } }
      required: [version]
      additionalProperties: false
    grants:
      - action: "aws:s3:GetObject"
        resource: "arn:aws:s3:::acme-releases/\${version}/*"
  once:
    description: one redemption only
    risk: low
    environments: [dev]
    ttl: 10m
    maxUses: 1
    grants:
      - action: "k8s:apps/deployments:get"
        resource: "checkout/checkout"
  guarded:
    description: needs an approval
    risk: high
    environments: [dev]
    ttl: 10m
    approval: { dev: sre }
    grants:
      - action: "k8s:apps/deployments:patch"
        resource: "checkout/checkout"
downstream:
  dev:
    kubernetes:
      server: https://k8s.acme.example:6443
      token: { env: WRIT_TEST_K8S_TOKEN }
      serviceAccounts: { "*": "agents/{agent}" }
    github:
      appId: 12345
      installationId: 678
      privateKey: { file: keys/github-app.pem }
    aws:
      region: eu-west-1
      roles: { "*": "arn:aws:iam::123456789012:role/writ-agents" }
`;

/** A folder with writ.yaml and the quickstart's keys. */
export async function configDir(yaml = DOWNSTREAM_YAML): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "writ-downstream-"));
  await cp(QUICKSTART_KEYS, join(dir, "config", "keys"), { recursive: true });
  const file = join(dir, "config", "writ.yaml");
  await writeFile(file, yaml);
  return { dir, file };
}

export interface DownstreamLive {
  readonly server: Server;
  readonly base: string;
  readonly system: TestDownstream;
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startDownstreamLive(
  opts: { reaperPeriodMs?: number; dpopNonce?: "accept" | "require" } = {},
): Promise<DownstreamLive> {
  const { dir, file } = await configDir();
  const loaded = await loadPolicy(file);
  if (!loaded.policy) throw new Error(JSON.stringify(loaded.problems));
  const system = new TestDownstream();
  const server = await createServer({
    policy: loaded.policy,
    dataDir: join(dir, "data"),
    version: "test",
    stateCache: false,
    ...(opts.dpopNonce === undefined ? {} : { dpopNonce: opts.dpopNonce }),
    downstream: { factories: system.factories(), reaperPeriodMs: opts.reaperPeriodMs ?? 3_600_000 },
  });
  let http: ReturnType<typeof serve> | undefined;
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  const base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  return {
    server,
    base,
    system,
    dir,
    async stop() {
      await new Promise<void>((resolve) => http!.close(() => resolve()));
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
