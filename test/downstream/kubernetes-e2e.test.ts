/**
 * The whole path with the real Kubernetes issuer: `writ serve`'s composition (default factories)
 * against the fake API server, the store's own ledger, and Debian's `kubectl` using `writ creds
 * kubectl` as its exec credential plugin: what the writ grants works, what it does not is
 * Forbidden, and after the kill switch the next call is Unauthorized.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { type FakeKubernetes, startFakeKubernetes } from "../fakes/kubernetes.js";
import { assertBuilt, BIN } from "../support/cli.js";
import { QUICKSTART_KEYS } from "./fixture.js";

let fake: FakeKubernetes;
let server: Server;
let http: ReturnType<typeof serve>;
let dir: string;
let base: string;

const yaml = (apiServer: string, caFile: string) => `version: 1
environments:
  dev: {}
runnerClasses:
  ops:
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:core/pods:get|list"
          resource: "shop/*|prod/*"
agents:
  release-bot:
    owner: alice@acme.example
    purpose: looks at the shop's pods
    runnerClass: ops
    environments: [dev]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [look]
playbooks:
  look:
    description: list the shop's pods
    risk: low
    environments: [dev]
    ttl: 10m
    grants:
      - action: "k8s:core/pods:get|list"
        resource: "shop/*"
downstream:
  dev:
    kubernetes:
      server: ${apiServer}
      caFile: ${caFile}
      token: { env: WRIT_TEST_K8S_BROKER_TOKEN }
      serviceAccounts: { "*": "agents/{agent}" }
`;

function kubectl(
  kubeconfig: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "kubectl",
      ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "kcache"), "--request-timeout", "10s", ...args],
      { encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  assertBuilt();
  fake = await startFakeKubernetes();
  for (const ns of ["agents", "shop", "prod"]) fake.seed("", "namespaces", { metadata: { name: ns } });
  fake.seed("", "serviceaccounts", { metadata: { name: "release-bot", namespace: "agents" } });
  fake.seed("", "pods", { metadata: { name: "web", namespace: "shop" } });
  fake.seed("", "pods", { metadata: { name: "db", namespace: "prod" } });
  dir = await mkdtemp(join(tmpdir(), "writ-k8s-e2e-"));
  await cp(QUICKSTART_KEYS, join(dir, "keys"), { recursive: true });
  await writeFile(join(dir, "writ.yaml"), yaml(fake.url, fake.caFile));
  const loaded = await loadPolicy(join(dir, "writ.yaml"));
  expect(loaded.problems).toEqual([]);
  server = await createServer({
    policy: loaded.policy!,
    dataDir: join(dir, "data"),
    version: "test",
    stateCache: false,
    env: { WRIT_TEST_K8S_BROKER_TOKEN: fake.adminToken },
  });
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
}, 60_000);

afterAll(async () => {
  if (http) await new Promise<void>((r) => http.close(() => r()));
  await server?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Kubernetes, end to end with kubectl", () => {
  it("kubectl gets its token from writ creds: the writ's pods work, others are Forbidden; after a kill, Unauthorized", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "fake", cluster: { server: fake.url, "certificate-authority": fake.caFile } }],
        users: [
          {
            name: "writ",
            user: {
              exec: {
                // v1beta1: read by every kubectl (Debian's is 1.20, before v1); writ answers the version asked
                apiVersion: "client.authentication.k8s.io/v1beta1",
                command: process.execPath,
                args: [
                  BIN,
                  "creds",
                  "kubectl",
                  "--playbook",
                  "look",
                  "--env",
                  "dev",
                  "--server",
                  base,
                  "--agent",
                  "release-bot",
                  "--key",
                  join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"),
                ],
                env: [{ name: "WRIT_CACHE_DIR", value: join(dir, "creds") }],
                interactiveMode: "Never",
              },
            },
          },
        ],
        contexts: [{ name: "x", context: { cluster: "fake", user: "writ" } }],
        "current-context": "x",
      }),
    );
    const get = await kubectl(kubeconfig, "get", "pods", "-n", "shop", "-o", "name");
    expect(get, get.stderr).toMatchObject({ code: 0, stdout: "pod/web\n" });
    const other = await kubectl(kubeconfig, "get", "pods", "-n", "prod");
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("Forbidden");

    await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    const after = await kubectl(kubeconfig, "get", "pods", "-n", "shop");
    expect(after.code).not.toBe(0);
    // the cached token is presented and refused by the API server
    expect(after.stderr).toMatch(/Unauthorized/);
  }, 90_000);
});
