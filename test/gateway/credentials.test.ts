/**
 * Per-writ credentials on the gateway's upstreams (issue 11 §3), end to end: `writ serve` in
 * process with the real GitHub issuer (`@octokit/auth-app`) built from writ.yaml's `downstream:`
 * against the fake GitHub, agents getting
 * writs by token exchange and calling through `/mcp` with DPoP, and a real MCP server of ours
 * (test/gateway/fixtures/whoami.mjs) as the upstream over stdio and over Streamable HTTP, telling
 * which credential reached it. The token it sees must be one the fake minted for that writ's scope,
 * another writ's another (another process), never the agent's own; revocation and the kill switch
 * stop the writ's process; an issuer's refusal is the call's, audited, and nothing is forwarded.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { isWritError } from "../../src/core/index.js";
import { INJECTED_ENV } from "../../src/gateway/index.js";
import { QUICKSTART } from "../broker/live.js";
import { APP_ID, INSTALLATION, KEY_FILE, type Rig, rig } from "../downstream/github-fixture.js";
import { ROOT } from "../support/cli.js";
import { type Agent, agentToken, configHead, connect, refusal, text } from "./support.js";

const WHOAMI = join(ROOT, "test", "gateway", "fixtures", "whoami.mjs");

let dir: string;
let gh: Rig;
let server: Server;
let http: ReturnType<typeof serve>;
let base: string;
let mcpUrl: string;
let httpUpstream: ChildProcess;
let authLog: string;
const clients: Client[] = [];

/** writ.yaml; `github` configures the GitHub issuer for `dev` against the fake (writ.yaml's `downstream:`). */
function yaml(upstreamPort: number, apiUrl: string, github: boolean): string {
  const keys = join(QUICKSTART, "keys", "release-bot.jwks.json");
  return `${configHead(`        - action: "mcp:*:*"
        - action: "github:*:*"
          resource: "acme/*"`)}
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Reads repositories through a GitHub MCP server
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${keys}
    baseline:
      - action: "mcp:ghs:whoami"
        standingWrite: test tool, read only
    tools: ["ghs:*", "ghh:*", "ghb:*"]
    playbooks: [read-checkout, read-pages]
playbooks:
  read-checkout:
    description: Read the checkout repository through the GitHub MCP servers
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:ghs:whoami|repo"
        resource: "-"
      - action: "mcp:ghh|ghb:whoami"
        resource: "-"
      - action: "github:contents:read"
        resource: "acme/checkout"
    ttl: 10m
    ticket: none
  read-pages:
    description: Asks for a permission the App installation lacks
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:ghs:whoami"
        resource: "-"
      - action: "github:pages:read"
        resource: "acme/checkout"
    ttl: 10m
    ticket: none
gateway:
  upstreams:
    ghs:
      command: ${process.execPath}
      args: ["${WHOAMI}"]
      cwd: ${ROOT}
      env: { API_URL: "${apiUrl}" }
      credentials: { downstream: github }
    ghb:
      command: ${process.execPath}
      args: ["${WHOAMI}"]
      cwd: ${ROOT}
      credentials: { downstream: github, maxWrits: 2 }
    ghh:
      url: http://127.0.0.1:${upstreamPort}/mcp
      headers: { X-Gateway: "writ" }
      credentials: { downstream: github }
${
  github
    ? `downstream:
  dev:
    github:
      appId: ${APP_ID}
      installationId: ${INSTALLATION}
      privateKey: { file: "${KEY_FILE}" }
      apiUrl: "${apiUrl}"
`
    : ""
}`;
}

async function startServer(config: string) {
  const { policy, problems } = await loadPolicy(config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  return createServer({ policy, dataDir: dir, version: "test" });
}

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-creds-")));
  authLog = join(dir, "auth.log");
  await writeFile(authLog, "");
  gh = await rig();
  httpUpstream = spawn(process.execPath, [WHOAMI, "http"], {
    cwd: ROOT,
    env: { ...process.env, AUTH_LOG: authLog },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("whoami http did not start")), 20_000);
    httpUpstream.stdout!.once("data", (d: Buffer) => {
      clearTimeout(t);
      resolve(Number(d.toString().trim()));
    });
  });
  const config = join(dir, "writ.yaml");
  await writeFile(config, yaml(port, gh.fake.url, true));
  // the issuer is the one writ.yaml configures: the server's registry builds it
  server = await startServer(config);
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  mcpUrl = `${base}/mcp`;
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  if (http) await new Promise<void>((resolve) => http.close(() => resolve()));
  await server?.close();
  httpUpstream?.kill();
  await gh?.close();
  await rm(dir, { recursive: true, force: true });
});

async function session(playbook?: string): Promise<{ agent: Agent; c: Client }> {
  const agent = await agentToken(base, "release-bot", mcpUrl, playbook ? { playbook } : undefined);
  const c = await connect(mcpUrl, agent);
  clients.push(c);
  return { agent, c };
}

interface Whoami {
  pid: number;
  env: Record<string, string>;
  authorization: string | null;
}

async function whoami(c: Client, tool = "ghs__whoami"): Promise<Whoami> {
  const r = await c.callTool({ name: tool, arguments: {} });
  expect(refusal(r), text(r)).toBeUndefined();
  return JSON.parse(text(r)) as Whoami;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits, with no call made meanwhile, until `what` holds: a mechanism that never acts is this test's timeout. */
async function until(what: () => boolean): Promise<true> {
  while (!what()) await new Promise((r) => setTimeout(r, 20));
  return true;
}

async function auditOf(type: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const r of await server.audit.tail(2000))
    if (r.type === type) out.push(r.data as Record<string, unknown>);
  return out;
}

describe("gateway upstreams with per-writ GitHub credentials", () => {
  it("a stdio upstream gets a token the fake minted for exactly the writ's scope, never the agent's", async () => {
    const { agent, c } = await session("read-checkout");
    const cold = performance.now();
    const me = await whoami(c);
    const coldMs = performance.now() - cold;
    const token = me.env.GH_TOKEN!;
    expect(token).toMatch(/^ghs_/);
    expect(me.env.GITHUB_TOKEN).toBe(token);
    expect(me.env.GITHUB_PERSONAL_ACCESS_TOKEN).toBe(token);
    expect(Object.keys(me.env).sort()).toEqual([...INJECTED_ENV.github].sort());
    const minted = gh.fake.tokens.get(token);
    expect(minted, "a token the fake minted").toBeDefined();
    expect([...minted!.repositories]).toEqual(["checkout"]);
    expect(minted!.permissions).toEqual({ contents: "read", metadata: "read" });
    expect(JSON.stringify(me)).not.toContain(agent.token);
    // the upstream uses it on GitHub: within the writ's repository only
    const inScope = await c.callTool({ name: "ghs__repo", arguments: { repo: "acme/checkout" } });
    expect(JSON.parse(text(inScope))).toEqual({ status: 200 });
    const outOfScope = await c.callTool({ name: "ghs__repo", arguments: { repo: "acme/payments" } });
    expect(JSON.parse(text(outOfScope))).toEqual({ status: 404 });
    // cached for the writ: the same process and token on the next call, nothing minted again
    const minted0 = gh.fake.liveTokens().length;
    const warm = performance.now();
    const again = await whoami(c);
    const warmMs = performance.now() - warm;
    console.log(
      `[gateway] per-writ GitHub credential, stdio upstream: first call (mint + process start) ${coldMs.toFixed(0)} ms, next call ${warmMs.toFixed(0)} ms`,
    );
    expect(again.pid).toBe(me.pid);
    expect(again.env.GH_TOKEN).toBe(token);
    expect(gh.fake.liveTokens().length).toBe(minted0);
    const start = (await auditOf("gateway.writ_upstream_start")).filter((r) => r.writ === agent.writ);
    expect(start).toHaveLength(1);
    expect(JSON.stringify(start)).not.toContain(token);
    const calls = (await auditOf("gateway.call")).filter((r) => r.writ === agent.writ);
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(calls)).not.toContain(token);
    expect((calls[0]!.downstream as { system: string }).system).toBe("github");
  });

  it("a second writ gets its own token and its own process", async () => {
    const a = await session("read-checkout");
    const b = await session("read-checkout");
    const ma = await whoami(a.c);
    const mb = await whoami(b.c);
    expect(ma.env.GH_TOKEN).not.toBe(mb.env.GH_TOKEN);
    expect(ma.pid).not.toBe(mb.pid);
    expect(gh.fake.tokens.get(mb.env.GH_TOKEN!)).toBeDefined();
  });

  it("a Streamable HTTP upstream gets `Authorization: Bearer <minted token>`, never the agent's token", async () => {
    const before = (await readFile(authLog, "utf8")).split("\n").filter(Boolean).length;
    const { agent, c } = await session("read-checkout");
    const me = await whoami(c, "ghh__whoami");
    expect(me.authorization).toMatch(/^Bearer ghs_/);
    const token = me.authorization!.slice("Bearer ".length);
    expect([...gh.fake.tokens.get(token)!.repositories]).toEqual(["checkout"]);
    const seen = (await readFile(authLog, "utf8")).split("\n").filter(Boolean).slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const h of seen) {
      expect(h).toBe(`Bearer ${token}`);
      expect(h).not.toContain(agent.token);
    }
  });

  it("a session without a writ is refused, never forwarded on a credential-less connection", async () => {
    const { c } = await session();
    const r = await c.callTool({ name: "ghs__whoami", arguments: {} });
    expect(refusal(r)?.reason).toBe("downstream_no_grants");
  });

  it("an issuer's refusal is the call's, under its reason, audited, and the upstream never runs for the writ", async () => {
    const { agent, c } = await session("read-pages");
    const r = await c.callTool({ name: "ghs__whoami", arguments: {} });
    expect(refusal(r)?.reason).toBe("downstream_permission_missing");
    expect(refusal(r)?.message).toContain("pages:read");
    const audited = (await auditOf("gateway.call")).filter((x) => x.writ === agent.writ);
    expect(audited.map((x) => (x.decision as { code: string }).code)).toEqual([
      "downstream_permission_missing",
    ]);
    const started = (await auditOf("gateway.writ_upstream_start")).filter((x) => x.writ === agent.writ);
    expect(started).toHaveLength(0);
  });

  it("revocation stops the writ's process without waiting for a call, and refuses its next call", async () => {
    const { agent, c } = await session("read-checkout");
    const me = await whoami(c);
    expect(alive(me.pid)).toBe(true);
    await server.store.writs.revoke(agent.writ!, "test");
    // no call is made until the process is gone: only the gateway's own reading of the writ can end it
    await until(() => !alive(me.pid));
    const r = await c.callTool({ name: "ghs__whoami", arguments: {} });
    expect(refusal(r)?.reason).toBe("writ_revoked");
    const stops = (await auditOf("gateway.writ_upstream_stop")).filter((x) => x.writ === agent.writ);
    expect(stops.map((x) => x.why)).toEqual(["revoked"]);
  });

  it("at most maxWrits writs have a process at once; past it a call is refused clearly", async () => {
    // `ghb` runs for 2 writs at most
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await session("read-checkout"));
    const outcomes: string[] = [];
    for (const s of sessions) {
      const r = await s.c.callTool({ name: "ghb__whoami", arguments: {} });
      outcomes.push(refusal(r)?.reason ?? "allowed");
      if (refusal(r)) expect(refusal(r)!.message).toContain("maxWrits");
    }
    expect(outcomes).toEqual(["allowed", "allowed", "upstream_busy"]);
    // one writ ends (revoked, seen on its next call): the fourth writ's call now runs
    await server.store.writs.revoke(sessions[0]!.agent.writ!, "test");
    const r0 = await sessions[0]!.c.callTool({ name: "ghb__whoami", arguments: {} });
    expect(refusal(r0)?.reason).toBe("writ_revoked");
    const r3 = await sessions[2]!.c.callTool({ name: "ghb__whoami", arguments: {} });
    expect(refusal(r3), text(r3)).toBeUndefined();
  });
  it("the kill switch stops the agent's writ processes and refuses its calls", async () => {
    const { agent, c } = await session("read-checkout");
    const me = await whoami(c);
    await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    // no call is made until the process is gone; the kill also revokes the writ, so the stop's
    // reason says which path ended it: the kill watch ("killed"), not the slower writ sweep ("revoked")
    await until(() => !alive(me.pid));
    const stops = (await auditOf("gateway.writ_upstream_stop")).filter((x) => x.writ === agent.writ);
    expect(stops.map((x) => x.why)).toEqual(["killed"]);
    // and the token that process held is dead at GitHub (the kill reaches the issuer)
    expect(gh.fake.use(me.env.GH_TOKEN!, "contents", "read", "acme/checkout")).toBe(401);
    const outcome = await c
      .callTool({ name: "ghs__whoami", arguments: {} }, undefined, { timeout: 5000 })
      .then(
        (r) => refusal(r)?.reason ?? "allowed",
        () => "session ended",
      );
    expect(["killed", "session ended"]).toContain(outcome);
  });
});

describe("start-up", () => {
  it("refuses to start when no issuer is configured for the upstream's system", async () => {
    const other = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-creds-noissuer-")));
    try {
      const config = join(other, "writ.yaml");
      await writeFile(config, yaml(1, "http://127.0.0.1:1", false));
      const { policy, problems } = await loadPolicy(config);
      if (!policy) throw new Error(JSON.stringify(problems));
      const err = await createServer({ policy, dataDir: other, version: "test" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWritError(err, "ERR_DOWNSTREAM_CONFIG")).toBe(true);
      expect((err as Error).message).toContain(
        "`ghs` (github) in environment `dev`, `ghb` (github) in environment `dev`, `ghh` (github) in environment `dev`",
      );
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
