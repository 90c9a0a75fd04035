/**
 * The gateway under test: a writ.yaml with the real reference MCP servers as upstreams
 * (`@modelcontextprotocol/server-filesystem` and `@modelcontextprotocol/server-everything` over
 * stdio), a filesystem tree with a root, a secret outside it and a symlink escaping it, and an MCP
 * client (the SDK's) that presents a DPoP-bound writ token on every request.
 */
import { mkdir, realpath, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { generateProof, type KeyPair } from "dpop";
import * as client from "openid-client";
import { agentClient, QUICKSTART, requestWrit } from "../broker/live.js";
import { ROOT } from "../support/cli.js";

export const FS_BIN = join(
  ROOT,
  "node_modules",
  "@modelcontextprotocol",
  "server-filesystem",
  "dist",
  "index.js",
);
export const EVERYTHING_BIN = join(
  ROOT,
  "node_modules",
  "@modelcontextprotocol",
  "server-everything",
  "dist",
  "index.js",
);

/** The first lines of a test writ.yaml: one environment, one runner class allowing `allow`. */
export function configHead(allow: string): string {
  return `version: 1
environments:
  dev: { audiences: ["https://k8s.acme.example"] }  # the gateway is allowed without listing it
runnerClasses:
  assist:
    ceiling:
      maxTtl: 1h
      allow:
${allow}`;
}

export interface Fixture {
  readonly config: string;
  /** The filesystem server's allowed directory (canonical). */
  readonly root: string;
  /** Outside the root: holds `secret.txt`. */
  readonly outside: string;
}

export interface FixtureOptions {
  /** Extra YAML under `gateway.upstreams` (indented by 4). */
  readonly upstreams?: string;
  readonly limits?: string;
}

/** Writes the tree and writ.yaml into `dir`. */
export async function writeFixture(dir: string, opts: FixtureOptions = {}): Promise<Fixture> {
  const base = await realpath(dir);
  const root = join(base, "root");
  const outside = join(base, "outside");
  await mkdir(join(root, "notes"), { recursive: true });
  await mkdir(join(root, "private"), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(root, "notes", "todo.txt"), "buy milk\n");
  await writeFile(join(root, "private", "keys.txt"), "not for agents\n");
  await writeFile(join(outside, "secret.txt"), "AWS_SECRET=outside-the-root\n");
  await symlink(outside, join(root, "link"));
  const keys = (name: string) => join(QUICKSTART, "keys", `${name}.jwks.json`);
  const node = process.execPath;
  const yaml = `${configHead(`        - action: "mcp:fs:*"
          resource: "${root}|${root}/*|-"
        - action: "mcp:everything:*"`)}
      deny:
        - action: "mcp:fs:*"
          resource: "${root}/private/*"
approverGroups:
  sre:
    members: [alice@acme.example, bob@acme.example]
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Keeps notes for the team
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${keys("release-bot")}
    baseline:
      - action: "mcp:fs:read_text_file|list_directory|read_multiple_files|get_file_info|list_allowed_directories"
        resource: "${root}|${root}/*|-"
      - action: "mcp:fs:write_file|move_file"
        resource: "${root}/notes/*"
        standingWrite: the agent keeps the team's notes
      - action: "mcp:everything:echo|get-sum|get-env"
        standingWrite: test tools
    tools: ["fs:*", "everything:echo", "everything:get-sum", "everything:get-env"]
    playbooks: [make-folders]
  cost-analyst:
    owner: erin@acme.example
    purpose: Has no tools at all
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${keys("cost-analyst")}
playbooks:
  make-folders:
    description: Create folders under notes
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:fs:create_directory"
        resource: "${root}/notes/*"
    ttl: 10m
    maxUses: 2
    ticket: none
gateway:
${opts.limits ?? ""}  upstreams:
    fs:
      command: ${node}
      args: ["${FS_BIN}", "${root}"]
      tools:
        read_text_file: { resource: { from: path, as: path } }
        list_directory: { resource: { from: path, as: path } }
        get_file_info: { resource: { from: path, as: path } }
        read_multiple_files: { resource: { from: "paths[*]", as: path } }
        create_directory: { resource: { from: path, as: path } }
        write_file:
          resource: { from: path, as: path }
          privileged: true
          constraints:
            content: { type: string, maxLength: 200 }
        move_file:
          resource:
            - { from: source, as: path }
            - { from: destination, as: path }
          irreversible: true
          approval: sre
          approvalTtl: 10m
    everything:
      command: ${node}
      args: ["${EVERYTHING_BIN}", "stdio"]
      tools:
        echo: { untrusted: true }
        get-env: { privileged: true }
        get-sum: { rateLimit: 3/1m }
${opts.upstreams ?? ""}`;
  const config = join(base, "writ.yaml");
  await writeFile(config, yaml);
  return { config, root, outside };
}

export interface Agent {
  readonly token: string;
  readonly keys: KeyPair;
  readonly writ?: string | undefined;
}

/** A DPoP-bound token for `resource`: a baseline token, or a writ for `playbook`. */
export async function agentToken(
  base: string,
  agent: string,
  resource: string,
  playbook?: { playbook: string; parameters?: Record<string, unknown> },
): Promise<Agent> {
  const c = await agentClient(base, "dev", agent);
  if (playbook === undefined) {
    const r = await client.clientCredentialsGrant(c.config, { resource }, { DPoP: c.DPoP });
    return { token: r.access_token, keys: c.dpopKeys as unknown as KeyPair };
  }
  const r = await requestWrit(c, { parameters: {}, ...playbook }, resource);
  return { token: r.access_token, keys: c.dpopKeys as unknown as KeyPair, writ: r.writ_id as string };
}

/** A fetch that sends `Authorization: DPoP` and a fresh proof (with `ath`) on every request. */
export function dpopFetch(agent: Agent): typeof fetch {
  return async (input, init) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    const method = init?.method ?? "GET";
    const proof = await generateProof(
      agent.keys,
      `${url.origin}${url.pathname}`,
      method,
      undefined,
      agent.token,
    );
    const headers = new Headers(init?.headers);
    headers.set("authorization", `DPoP ${agent.token}`);
    headers.set("dpop", proof);
    return fetch(input, { ...init, headers });
  };
}

export async function connect(mcpUrl: string, agent: Agent): Promise<Client> {
  const c = new Client({ name: "test-agent", version: "1.0.0" });
  await c.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: dpopFetch(agent) }));
  return c;
}

export function refusal(r: unknown): { reason: string; approval?: string; message: string } | undefined {
  const res = r as CallToolResult;
  return (
    (res._meta?.["writ.dev/refusal"] as { reason: string; approval?: string; message: string }) ?? undefined
  );
}

export function text(r: unknown): string {
  const res = r as CallToolResult;
  return res.content.map((c) => (c.type === "text" ? c.text : "")).join("");
}
