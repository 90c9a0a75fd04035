/**
 * Per-writ Kubernetes credentials on a stdio upstream: the gateway in process on the real store,
 * the real Kubernetes issuer (`@kubernetes/client-node`) against the fake API server, and our
 * whoami MCP server as the upstream. It must receive a KUBECONFIG file (0600, in a private 0700
 * directory) whose token the fake minted for the writ and which can do exactly the writ's grants;
 * the file goes with the process when the writ is revoked.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Upstream } from "../../src/core/index.js";
import { INJECTED_ENV, injectionFor } from "../../src/gateway/index.js";
import { type StoredWrit, toActiveWrit } from "../../src/store/index.js";
import { QUICKSTART } from "../broker/live.js";
import { type Harness, harness } from "../downstream/kubernetes-support.js";
import { credentialOf } from "../downstream/outcome.js";
import { ROOT } from "../support/cli.js";
import { type InProcess, inProcessGateway } from "./inprocess.js";
import { configHead, refusal, text } from "./support.js";

const WHOAMI = join(ROOT, "test", "gateway", "fixtures", "whoami.mjs");
let dir: string;
let h: Harness;
let gw: InProcess;

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-kube-")));
  h = await harness();
  h.fake.seed("", "serviceaccounts", { metadata: { name: "agent-release-bot", namespace: "agents" } });
  const yaml = `${configHead(`        - action: "mcp:*:*"
        - action: "k8s:*:*"
          resource: "shop/*"`)}
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Rolls out the shop through a Kubernetes MCP server
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${join(QUICKSTART, "keys", "release-bot.jwks.json")}
    tools: ["kube:*"]
    playbooks: [rollout]
playbooks:
  rollout:
    description: Patch the shop's web deployment
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:kube:whoami"
        resource: "-"
      - action: "k8s:apps/deployments:get|patch"
        resource: "shop/web"
    ttl: 10m
    ticket: none
gateway:
  upstreams:
    kube:
      command: ${process.execPath}
      args: ["${WHOAMI}"]
      cwd: ${ROOT}
      credentials: { downstream: kubernetes }
`;
  const config = join(dir, "writ.yaml");
  await writeFile(config, yaml);
  gw = await inProcessGateway(config, join(dir, "data"), {
    downstream: (env, system) => (env === "dev" && system === "kubernetes" ? h.issuer : undefined),
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await h?.fake.close();
  await rm(dir, { recursive: true, force: true });
});

async function storedWrit(): Promise<StoredWrit> {
  const now = gw.clock.now;
  return gw.store.writs.insert({
    id: `writ_${randomUUID()}`,
    agent: "release-bot",
    playbook: "rollout",
    environment: "dev",
    params: {},
    grants: [
      { action: "mcp:kube:whoami", resource: "-" },
      { action: "k8s:apps/deployments:get|patch", resource: "shop/web" },
    ],
    issuedAt: new Date(now.getTime() - 1000),
    expiresAt: new Date(now.getTime() + 10 * 60_000),
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe("a stdio upstream with per-writ Kubernetes credentials", () => {
  it("gets a private KUBECONFIG whose token can do exactly the writ's grants, removed when the writ is revoked", async () => {
    expect(INJECTED_ENV.kubernetes).toEqual(["KUBECONFIG"]);
    const w = await storedWrit();
    const s = gw.gateway.openSession({
      agent: "release-bot",
      environment: "dev",
      writ: toActiveWrit(w),
      transport: "stdio",
    });
    const r = await gw.gateway.callTool(s.id, "kube__whoami", {});
    expect(refusal(r), text(r)).toBeUndefined();
    const me = JSON.parse(text(r)) as {
      env: Record<string, string>;
      kubeconfig: { text: string; mode: number };
    };
    expect(Object.keys(me.env)).toEqual(["KUBECONFIG"]);
    const file = me.env.KUBECONFIG!;
    expect(me.kubeconfig.mode).toBe(0o600);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
    const kc = JSON.parse(me.kubeconfig.text) as {
      clusters: { cluster: { server: string; "certificate-authority-data"?: string } }[];
      users: { user: { token: string } }[];
    };
    expect(kc.clusters[0]!.cluster.server).toBe(h.fake.url);
    expect(kc.clusters[0]!.cluster["certificate-authority-data"]).toBeTruthy();
    const token = kc.users[0]!.user.token;
    // the fake API server knows the token: the writ's grant, and nothing more
    expect(h.fake.use(token, "patch", "apps", "deployments", "shop", "web")).toMatchObject({ allowed: true });
    expect(h.fake.use(token, "delete", "apps", "deployments", "shop", "web")).toMatchObject({
      allowed: false,
    });
    expect(h.fake.use(token, "get", "apps", "deployments", "shop", "api")).toMatchObject({ allowed: false });
    // the ledger holds the writ's objects, recorded by the issuer
    expect((await h.ledger.ofWrit(w.id)).length).toBeGreaterThan(0);

    await gw.store.writs.revoke(w.id, "test");
    const again = await gw.gateway.callTool(s.id, "kube__whoami", {});
    expect(refusal(again)?.reason).toBe("writ_revoked");
    const end = Date.now() + 3000;
    while ((await exists(file)) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    expect(await exists(file), "the KUBECONFIG file is removed with the writ's process").toBe(false);
  });

  it("a writ without Kubernetes grants is refused by the issuer, under its reason", async () => {
    const now = gw.clock.now;
    const w = await gw.store.writs.insert({
      id: `writ_${randomUUID()}`,
      agent: "release-bot",
      playbook: "rollout",
      environment: "dev",
      params: {},
      grants: [{ action: "mcp:kube:whoami", resource: "-" }],
      issuedAt: new Date(now.getTime() - 1000),
      expiresAt: new Date(now.getTime() + 10 * 60_000),
    });
    const s = gw.gateway.openSession({
      agent: "release-bot",
      environment: "dev",
      writ: toActiveWrit(w),
      transport: "stdio",
    });
    const r = await gw.gateway.callTool(s.id, "kube__whoami", {});
    expect(refusal(r)?.reason).toBe("downstream_no_grants");
  });

  it("a Streamable HTTP upstream gets `Authorization: Bearer <ServiceAccount token>` and nothing on disk", async () => {
    const now = new Date();
    const cred = await credentialOf(
      h.issuer.issue(
        {
          id: `writ_${randomUUID()}`,
          agent: "release-bot",
          playbook: "rollout",
          environment: "dev",
          params: {},
          grants: [{ action: "k8s:apps/deployments:get", resource: "shop/web" }],
          denies: [],
          issuedAt: now,
          expiresAt: new Date(now.getTime() + 10 * 60_000),
        },
        now,
      ),
    );
    if (cred.system !== "kubernetes") throw new Error("not a kubernetes credential");
    const http: Upstream = {
      kind: "http-upstream",
      id: "kube-http",
      url: "https://k8s-mcp.acme.example/mcp",
      headers: new Map(),
      tools: new Map(),
      resources: [],
      trustNewTools: false,
      credentials: { downstream: "kubernetes", maxWrits: 1, path: [] },
      path: [],
    };
    const { inject } = await injectionFor(http, cred);
    expect(inject).toEqual({ headers: { Authorization: `Bearer ${cred.token}` } });
    expect(h.fake.use(cred.token, "get", "apps", "deployments", "shop", "web")).toMatchObject({
      allowed: true,
    });
  });
});
