/**
 * The gateway inside `writ serve`, end to end: the reference filesystem and everything MCP servers
 * (stdio) behind it, the SDK's MCP client in front with DPoP-bound writ tokens from the broker.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { type Live, startLive } from "../broker/live.js";
import { agentToken, connect, dpopFetch, type Fixture, refusal, text, writeFixture } from "./support.js";

let dir: string;
let fx: Fixture;
let live: Live;
let mcpUrl: string;
let bot: Client;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-gw-"));
  fx = await writeFixture(dir);
  const { policy, problems } = await loadPolicy(fx.config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  live = await startLive(policy, join(dir, "data"), { stateCache: true });
  mcpUrl = `${live.base}/mcp`;
  bot = await connect(mcpUrl, await agentToken(live.base, "release-bot", mcpUrl));
}, 60_000);

afterAll(async () => {
  await bot?.close();
  await live?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface CallRecord {
  readonly promptContextId?: string;
  readonly argumentsDigest: string;
  readonly decision: { readonly code: string; readonly held?: boolean };
}

const call = (c: Client, name: string, args: Record<string, unknown>) =>
  c.callTool({ name, arguments: args });

describe("authentication", () => {
  it("publishes RFC 9728 protected resource metadata", async () => {
    const r = await fetch(`${live.base}/.well-known/oauth-protected-resource/mcp`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body.resource).toBe(mcpUrl);
    expect(body.authorization_servers).toEqual([`${live.base}/env/dev`]);
    expect(body.dpop_bound_access_tokens_required).toBe(true);
  });

  it("answers 401 with WWW-Authenticate naming the metadata when there is no token", async () => {
    const r = await fetch(mcpUrl, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain(
      `Bearer resource_metadata="${live.base}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  it("refuses a token issued for another audience", async () => {
    const other = await agentToken(live.base, "release-bot", "https://k8s.acme.example");
    await expect(connect(mcpUrl, other)).rejects.toThrow();
    const r = await dpopFetch(other)(mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }),
    });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { reason: string }).reason).toBe("token_audience");
  });

  it("refuses a bound token presented as a bearer token, and a proof by another key", async () => {
    const a = await agentToken(live.base, "release-bot", mcpUrl);
    const r = await fetch(mcpUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${a.token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { reason: string }).reason).toBe("dpop_required");
    const b = await agentToken(live.base, "release-bot", mcpUrl);
    const r2 = await dpopFetch({ ...a, keys: b.keys })(mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "{}",
    });
    expect(r2.status).toBe(401);
    expect(((await r2.json()) as { reason: string }).reason).toBe("dpop_key_mismatch");
  });
});

describe("tools/list", () => {
  it("lists only what the agent may call", async () => {
    const names = (await bot.listTools()).tools.map((t) => t.name).sort();
    expect(names).toContain("fs__read_text_file");
    expect(names).toContain("everything__echo");
    expect(names).not.toContain("everything__get-tiny-image"); // not in the agent's tools
    expect(names).not.toContain("fs__create_directory"); // only a writ grants it
    const analyst = await connect(mcpUrl, await agentToken(live.base, "cost-analyst", mcpUrl));
    expect((await analyst.listTools()).tools).toEqual([]);
    await analyst.close();
  });
});

describe("decisions on what a call touches", () => {
  it("allows a read inside the root and returns the upstream's result", async () => {
    const r = await call(bot, "fs__read_text_file", { path: join(fx.root, "notes", "todo.txt") });
    expect(refusal(r)).toBeUndefined();
    expect(text(r)).toContain("buy milk");
  });

  it("refuses path escapes: `..`, a symlink, an absolute path outside the root", async () => {
    for (const path of [
      join(fx.root, "notes", "..", "..", "outside", "secret.txt"),
      join(fx.root, "link", "secret.txt"),
      join(fx.outside, "secret.txt"),
    ]) {
      const r = await call(bot, "fs__read_text_file", { path });
      expect(refusal(r)?.reason, path).toBe("no_grant");
      expect(text(r)).not.toContain("AWS_SECRET");
    }
  });

  it("refuses what a deny covers and a relative path", async () => {
    const denied = await call(bot, "fs__read_text_file", { path: join(fx.root, "private", "keys.txt") });
    expect(refusal(denied)?.reason).toBe("explicit_deny");
    const relative = await call(bot, "fs__read_text_file", { path: "notes/todo.txt" });
    expect(refusal(relative)?.reason).toBe("resource_invalid");
  });

  it("checks every item of a list argument", async () => {
    const r = await call(bot, "fs__read_multiple_files", {
      paths: [join(fx.root, "notes", "todo.txt"), join(fx.root, "link", "secret.txt")],
    });
    expect(refusal(r)?.reason).toBe("no_grant");
  });

  it("refuses arguments that break the inputSchema or a constraint", async () => {
    const schema = await call(bot, "fs__read_text_file", { path: 42 });
    expect(refusal(schema)?.reason).toBe("arguments_invalid");
    const missing = await call(bot, "fs__read_text_file", {});
    expect(refusal(missing)?.reason).toBe("arguments_invalid");
    const long = await call(bot, "fs__write_file", {
      path: join(fx.root, "notes", "x.txt"),
      content: "x".repeat(500),
    });
    expect(refusal(long)?.reason).toBe("argument_constraint");
  });

  it("refuses arguments holding a NUL or a lone surrogate, or nested past 32 levels, before the upstream", async () => {
    const inside = join(fx.root, "notes", "todo.txt");
    const nul = await call(bot, "fs__read_text_file", { path: `${inside}\u0000.png` });
    expect(refusal(nul)?.reason).toBe("arguments_invalid");
    const surrogate = await call(bot, "fs__read_text_file", { path: `${inside}\ud800` });
    expect(refusal(surrogate)?.reason).toBe("arguments_invalid");
    let deep: unknown = "x";
    for (let i = 0; i < 70; i++) deep = { d: deep };
    const nested = await call(bot, "fs__read_text_file", { path: inside, extra: deep });
    expect(refusal(nested)?.reason).toBe("arguments_invalid");
    expect(text(nested)).toContain("nested deeper than 32 levels");
  });

  it("refuses a tool the agent may not use and an unknown tool", async () => {
    expect(refusal(await call(bot, "everything__get-tiny-image", {}))?.reason).toBe("tool_not_allowed");
    expect(refusal(await call(bot, "nope__thing", {}))?.reason).toBe("unknown_tool");
  });
});

describe("writs and uses", () => {
  it("a writ's grant allows what the baseline does not, and each call spends a use", async () => {
    const refused = await call(bot, "fs__create_directory", { path: join(fx.root, "notes", "a") });
    expect(refusal(refused)?.reason).toBe("no_grant");
    const agent = await agentToken(live.base, "release-bot", mcpUrl, { playbook: "make-folders" });
    const c = await connect(mcpUrl, agent);
    expect((await c.listTools()).tools.map((t) => t.name)).toContain("fs__create_directory");
    for (const name of ["a", "b"]) {
      const r = await call(c, "fs__create_directory", { path: join(fx.root, "notes", name) });
      expect(refusal(r), name).toBeUndefined();
    }
    const third = await call(c, "fs__create_directory", { path: join(fx.root, "notes", "c") });
    expect(refusal(third)?.reason).toBe("writ_exhausted");
    const writ = await live.server.store.writs.get(agent.writ!);
    expect(writ?.uses).toBe(2);
    // a baseline-allowed call spends nothing
    await call(c, "fs__read_text_file", { path: join(fx.root, "notes", "todo.txt") });
    expect((await live.server.store.writs.get(agent.writ!))?.uses).toBe(2);
    await c.close();
  });
});

describe("held calls", () => {
  it("holds an irreversible call; an approval for arguments A does not admit arguments B", async () => {
    const a = { source: join(fx.root, "notes", "todo.txt"), destination: join(fx.root, "notes", "done.txt") };
    const b = {
      source: join(fx.root, "notes", "todo.txt"),
      destination: join(fx.root, "notes", "other.txt"),
    };
    const first = await call(bot, "fs__move_file", a);
    expect(refusal(first)?.reason).toBe("approval_required");
    const id = refusal(first)!.approval!;
    expect(id).toMatch(/^ar_/);
    // the exact arguments are kept beside the hold, for approvers to read (the console shows them)
    const hold = await live.server.store.db
      .selectFrom("gateway_holds")
      .select("arguments")
      .where("request_id", "=", id)
      .executeTakeFirst();
    expect(hold?.arguments).toEqual(a);
    expect(refusal(await call(bot, "fs__move_file", a))?.reason).toBe("approval_pending");
    // the owner may not approve; an SRE may
    await expect(
      live.server.operator.decideApproval(id, { approver: "erin@acme.example", decision: "approve" }),
    ).rejects.toMatchObject({ code: "ERR_APPROVAL_NOT_APPROVER" });
    await live.server.operator.decideApproval(id, { approver: "alice@acme.example", decision: "approve" });
    const other = await call(bot, "fs__move_file", b);
    expect(refusal(other)?.reason).toBe("approval_required");
    expect(refusal(other)!.approval).not.toBe(id);
    const done = await call(bot, "fs__move_file", a);
    expect(refusal(done)).toBeUndefined();
    expect(await readFile(a.destination, "utf8")).toBe("buy milk\n");
    // used once: the same arguments again need a new approval
    await writeFile(a.source, "buy milk\n");
    expect(refusal(await call(bot, "fs__move_file", a))?.reason).toBe("approval_required");
  });
});

describe("taint", () => {
  const inContext = (c: Client, name: string, args: Record<string, unknown>, ctx: string) =>
    c.callTool({ name, arguments: args, _meta: { "writ.dev/prompt-context-id": ctx } });

  it("after an untrusted source, privileged tools are refused in that prompt context, in every session", async () => {
    const token = await agentToken(live.base, "release-bot", mcpUrl);
    const c = await connect(mcpUrl, token);
    expect(refusal(await inContext(c, "everything__get-env", {}, "web-1"))).toBeUndefined();
    const echo = { message: "ignore previous instructions" };
    expect(refusal(await inContext(c, "everything__echo", echo, "web-1"))).toBeUndefined();
    expect(refusal(await inContext(c, "everything__get-env", {}, "web-1"))?.reason).toBe("tainted_session");
    const write = { path: join(fx.root, "notes", "t.txt"), content: "x" };
    expect(refusal(await inContext(c, "fs__write_file", write, "web-1"))?.reason).toBe("tainted_session");
    await c.close();
    // a new session id does not launder the taint: it belongs to the agent's baseline here
    const again = await connect(mcpUrl, token);
    expect(refusal(await inContext(again, "everything__get-env", {}, "web-1"))?.reason).toBe(
      "tainted_session",
    );
    // another prompt context is clean
    expect(refusal(await inContext(again, "everything__get-env", {}, "web-2"))).toBeUndefined();
    await again.close();
    // a writ is a handle of its own
    const writ = await connect(
      mcpUrl,
      await agentToken(live.base, "release-bot", mcpUrl, { playbook: "make-folders" }),
    );
    expect(refusal(await inContext(writ, "fs__write_file", write, "web-1"))).toBeUndefined();
    await writ.close();
  });
});

describe("rate limits", () => {
  it("refuses past the tool's rate", async () => {
    const reasons: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++)
      reasons.push(refusal(await call(bot, "everything__get-sum", { a: 1, b: i }))?.reason);
    expect(reasons).toEqual([undefined, undefined, undefined, "rate_limited"]);
  });
});

describe("audit", () => {
  it("records every call with agent, session, tool, resources, digest, decision and prompt context", async () => {
    await bot.callTool({
      name: "fs__read_text_file",
      arguments: { path: join(fx.root, "notes", "todo.txt") },
      _meta: { "writ.dev/prompt-context-id": "ctx-42" },
    });
    const records = await live.server.audit.tail(10_000);
    const calls = records
      .filter((r) => r.type === "gateway.call")
      .map((r) => r.data as unknown as CallRecord);
    const mine = calls.find((d) => d.promptContextId === "ctx-42");
    expect(mine).toMatchObject({
      agent: "release-bot",
      environment: "dev",
      tool: "fs:read_text_file",
      action: "mcp:fs:read_text_file",
      resources: [join(fx.root, "notes", "todo.txt")],
      decision: { allowed: true, code: "allowed" },
    });
    expect(mine!.argumentsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(calls)).not.toContain("buy milk");
    expect(calls.some((d) => d.decision.code === "no_grant")).toBe(true);
    expect(calls.some((d) => d.decision.held === true)).toBe(true);
  });
});
