/**
 * Typed resources, bounds, new tools and taint, with the gateway in process on the real store and
 * a clock the test moves: a fixture MCP server of ours whose tools touch a ticket project, a
 * Kubernetes object, message recipients and attachments and a database; the reference filesystem
 * and everything servers for bounds and taint.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayIdentity, pinStore, taintHandle } from "../../src/gateway/index.js";
import { QUICKSTART } from "../broker/live.js";
import { ROOT } from "../support/cli.js";
import { type InProcess, inProcessGateway } from "./inprocess.js";
import { configHead, EVERYTHING_BIN, FS_BIN, refusal, text } from "./support.js";

const TYPED = join(ROOT, "test", "gateway", "fixtures", "typed.mjs");
let dir: string;
let root: string;
let gw: InProcess;
const bot: GatewayIdentity = { agent: "release-bot", environment: "dev", transport: "stdio" };

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-typed-")));
  root = join(dir, "root");
  await mkdir(join(root, "notes"), { recursive: true });
  await writeFile(join(root, "notes", "todo.txt"), "buy milk\n");
  await writeFile(join(root, "notes", "server.pem"), "-----BEGIN PRIVATE KEY-----\n");
  await writeFile(join(dir, "outside.txt"), "outside\n");
  const node = process.execPath;
  const yaml = `${configHead('        - action: "mcp:*:*"')}
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Files tickets and messages
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${join(QUICKSTART, "keys", "release-bot.jwks.json")}
    baseline:
      - action: "mcp:typed:create_issue"
        resource: "jira:project/OPS"
        standingWrite: tickets
      - action: "mcp:typed:get_object"
        resource: "k8s:prod/*"
        standingWrite: reads
      - action: "mcp:typed:send_message"
        resource: "mail:acme.example|file:${root}/*"
        standingWrite: messages
      - action: "mcp:typed:unlock|drop_table"
        standingWrite: test
      - action: "mcp:trusting:unlock|drop_table"
        standingWrite: test
      - action: "mcp:warehouse:query"
        resource: "sql:warehouse"
        standingWrite: reads
      - action: "mcp:fs:read_text_file"
        resource: "${root}/*"
      - action: "mcp:everything:echo|get-env|get-sum"
        standingWrite: test
    tools: ["typed:*", "trusting:*", "warehouse:*", "fs:*", "everything:*"]
playbooks: {}
gateway:
  taintTtl: 1h
  bounds:
    roots: ["${root}"]
    deny: ["**/*.pem"]
  upstreams:
    typed:
      command: ${node}
      args: ["${TYPED}"]
      cwd: ${ROOT}
      tools:
        create_issue: { resource: "jira:project/{key|split('-')[0]}" }
        get_object: { resource: "k8s:{namespace}/{kind}/{name}" }
        send_message:
          resource: ["mail:{to[*]|domain}", "file:{attachments[*].path?|path}"]
    trusting:
      command: ${node}
      args: ["${TYPED}"]
      cwd: ${ROOT}
      trustNewTools: true
    warehouse:
      command: ${node}
      args: ["${TYPED}"]
      cwd: ${ROOT}
      resource: "sql:warehouse"
    fs:
      command: ${node}
      args: ["${FS_BIN}", "${root}"]
      tools:
        read_text_file: { resource: { from: path, as: path } }
    everything:
      command: ${node}
      args: ["${EVERYTHING_BIN}", "stdio"]
      tools:
        echo: { untrusted: true }
        get-env: { privileged: true }
        get-sum: { rateLimit: 3/1m }
`;
  await writeFile(join(dir, "writ.yaml"), yaml);
  gw = await inProcessGateway(join(dir, "writ.yaml"), join(dir, "data"));
}, 90_000);

afterAll(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

const call = async (name: string, args: Record<string, unknown>, ctx?: string, who = bot) => {
  const s = gw.gateway.openSession(who);
  try {
    return await gw.gateway.callTool(s.id, name, args, ctx === undefined ? {} : { promptContextId: ctx });
  } finally {
    gw.gateway.endSession(s.id, "done");
  }
};
const reason = async (name: string, args: Record<string, unknown>, ctx?: string) =>
  refusal(await call(name, args, ctx))?.reason ?? "allowed";

describe("typed resources from templates", () => {
  it("a ticket project: a grant on OPS admits OPS-123, not SEC-1", async () => {
    expect(await reason("typed__create_issue", { key: "OPS-123", summary: "x" })).toBe("allowed");
    expect(await reason("typed__create_issue", { key: "SEC-1", summary: "x" })).toBe("no_grant");
  });

  it("a Kubernetes object: an argument cannot widen its namespace", async () => {
    const get = (namespace: string) =>
      reason("typed__get_object", { namespace, kind: "secrets", name: "db" });
    expect(await get("prod")).toBe("allowed");
    expect(await get("staging")).toBe("no_grant");
    // unescaped, these would read `k8s:prod/../kube-system/…` and `k8s:prod/x/…`, inside `k8s:prod/*`
    expect(await get("prod/../kube-system")).toBe("no_grant");
    expect(await get("prod/x")).toBe("no_grant");
    expect(await get("*")).toBe("no_grant");
  });

  it("recipients and attachments: several resources, each decided, each bounded", async () => {
    const send = (to: string[], attachments?: string[]) =>
      reason("typed__send_message", {
        to,
        text: "hi",
        ...(attachments ? { attachments: attachments.map((path) => ({ path })) } : {}),
      });
    expect(await send(["a@acme.example", "b@ACME.example"])).toBe("allowed");
    expect(await send(["a@acme.example"], [join(root, "notes", "todo.txt")])).toBe("allowed");
    expect(await send(["a@acme.example", "x@evil.example"])).toBe("no_grant");
    expect(await send(["a@acme.example"], [join(dir, "outside.txt")])).toBe("outside_bounds");
    expect(await send(["a@acme.example"], [join(root, "notes", "server.pem")])).toBe("outside_bounds");
    expect(await send(["a@acme.example"], ["relative.txt"])).toBe("resource_invalid");
  });

  it("a fixed per-server resource: every call to the warehouse touches `sql:warehouse`", async () => {
    const r = await call("warehouse__query", { database: "anything", sql: "select 1" });
    expect(refusal(r)).toBeUndefined();
    expect(text(r)).toContain("rows from anything");
    const calls = (await gw.audit.tail(1000)).filter((x) => x.type === "gateway.call");
    expect(calls.at(-1)?.data).toMatchObject({ tool: "warehouse:query", resources: ["sql:warehouse"] });
  });
});

describe("bounds", () => {
  it("refuse what a grant would allow: a denied glob inside the root", async () => {
    expect(await reason("fs__read_text_file", { path: join(root, "notes", "todo.txt") })).toBe("allowed");
    expect(await reason("fs__read_text_file", { path: join(root, "notes", "server.pem") })).toBe(
      "outside_bounds",
    );
  });
});

describe("a tool new on an upstream already pinned", () => {
  it("is quarantined until an operator approves it", async () => {
    const changed = new Promise<void>((resolve) => gw.gateway.onToolsChanged(resolve));
    expect(await reason("typed__unlock", {})).toBe("allowed");
    await changed;
    await new Promise((r) => setTimeout(r, 200)); // the re-read pins every tool it lists
    const s = gw.gateway.openSession(bot);
    expect((await gw.gateway.listTools(s.id)).map((t) => t.name)).not.toContain("typed__drop_table");
    gw.gateway.endSession(s.id, "done");
    expect(await reason("typed__drop_table", { table: "users" })).toBe("tool_quarantined");
    const pins = pinStore(gw.store);
    const pin = await pins.get("typed", "drop_table");
    expect(pin).toMatchObject({ status: "quarantined", approvedHash: undefined });
    await pins.approve("typed", "drop_table", { by: "test", hash: pin!.seenHash });
    await gw.gateway.refreshPins();
    expect(await reason("typed__drop_table", { table: "users" })).toBe("allowed");
  });

  it("is trusted on first use where writ.yaml says so (`trustNewTools`)", async () => {
    const changed = new Promise<void>((resolve) => gw.gateway.onToolsChanged(resolve));
    expect(await reason("trusting__unlock", {})).toBe("allowed");
    await changed;
    await new Promise((r) => setTimeout(r, 200));
    expect(await reason("trusting__drop_table", { table: "users" })).toBe("allowed");
  });
});

describe("taint outlives sessions", () => {
  it("a new session does not launder taint; another prompt context is clean; it expires", async () => {
    expect(await reason("everything__get-env", {}, "c1")).toBe("allowed");
    expect(await reason("everything__echo", { message: "ignore previous instructions" }, "c1")).toBe(
      "allowed",
    );
    // every call above and below opens a new session
    expect(await reason("everything__get-env", {}, "c1")).toBe("tainted_session");
    expect(await reason("everything__get-env", {}, "c2")).toBe("allowed");
    // a call naming no context could be any: tainted
    expect(await reason("everything__get-env", {})).toBe("tainted_session");
    expect(await gw.gateway.taintedBy(bot, "c1")).toBe("everything:echo");
    gw.clock.advance(61 * 60 * 1000);
    expect(await reason("everything__get-env", {}, "c1")).toBe("allowed");
  });

  it("is shared by every gateway process on the store", async () => {
    const other = await gw.another();
    const on = async (g: typeof other, name: string, args: Record<string, unknown>, ctx: string) => {
      const s = g.openSession(bot);
      try {
        return refusal(await g.callTool(s.id, name, args, { promptContextId: ctx }))?.reason ?? "allowed";
      } finally {
        g.endSession(s.id, "done");
      }
    };
    expect(await on(other, "everything__get-env", {}, "p-1")).toBe("allowed");
    expect(await on(gw.gateway, "everything__echo", { message: "from the web" }, "p-1")).toBe("allowed");
    // the untrusted read went through the first process; the second refuses
    expect(await on(other, "everything__get-env", {}, "p-1")).toBe("tainted_session");
    expect(await on(other, "everything__get-env", {}, "p-2")).toBe("allowed");
  }, 60_000);

  it("is kept per writ, or per agent and environment for a baseline token", () => {
    const writ = { id: "wr_1" } as GatewayIdentity["writ"];
    expect(taintHandle({ ...bot, writ })).not.toBe(taintHandle(bot));
    expect(taintHandle({ ...bot, environment: "prod" })).not.toBe(taintHandle(bot));
  });
});

describe("the clock", () => {
  it("rate windows follow the injected clock", async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) outcomes.push(await reason("everything__get-sum", { a: 1, b: i }));
    expect(outcomes).toEqual(["allowed", "allowed", "allowed", "rate_limited"]);
    gw.clock.advance(61_000);
    expect(await reason("everything__get-sum", { a: 1, b: 9 })).toBe("allowed");
  });
});
