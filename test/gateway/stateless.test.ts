/**
 * The gateway over HTTP without sessions (MCP 2026-07-28): a request with no `Mcp-Session-Id`
 * is answered on its own, taint follows the writ (or the agent's baseline) and the prompt context
 * across such requests, and the `Mcp-Method`/`Mcp-Name` routing headers must agree with the body.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { encodeHeaderValue } from "../../src/gateway/headers.js";
import { type Live, startLive } from "../broker/live.js";
import { type Agent, agentToken, dpopFetch, type Fixture, writeFixture } from "./support.js";

let dir: string;
let fx: Fixture;
let live: Live;
let mcpUrl: string;
let agent: Agent;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-gw-stateless-"));
  fx = await writeFixture(dir);
  const { policy, problems } = await loadPolicy(fx.config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  live = await startLive(policy, join(dir, "data"), { stateCache: true });
  mcpUrl = `${live.base}/mcp`;
  agent = await agentToken(live.base, "release-bot", mcpUrl);
}, 60_000);

afterAll(async () => {
  await live?.stop();
  await rm(dir, { recursive: true, force: true });
});

let ids = 0;
async function rpc(
  method: string,
  params: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await dpopFetch(agent)(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++ids, method, params }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const toolCall = (name: string, args: Record<string, unknown>, ctx?: string) => ({
  name,
  arguments: args,
  ...(ctx === undefined ? {} : { _meta: { "writ.dev/prompt-context-id": ctx } }),
});
const reasonOf = (body: Record<string, unknown>) => {
  const result = body.result as { _meta?: Record<string, { reason: string }> } | undefined;
  return result?._meta?.["writ.dev/refusal"]?.reason ?? (result ? "allowed" : "error");
};

describe("requests without a session", () => {
  it("are answered on their own", async () => {
    const r = await rpc(
      "tools/call",
      toolCall("fs__read_text_file", { path: join(fx.root, "notes", "todo.txt") }),
    );
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).toContain("buy milk");
    const list = await rpc("tools/list", {});
    expect((list.body.result as { tools: { name: string }[] }).tools.map((t) => t.name)).toContain(
      "fs__read_text_file",
    );
  });

  it("carry taint from one request to the next through the prompt context", async () => {
    expect(reasonOf((await rpc("tools/call", toolCall("everything__get-env", {}, "s-1"))).body)).toBe(
      "allowed",
    );
    expect(
      reasonOf((await rpc("tools/call", toolCall("everything__echo", { message: "x" }, "s-1"))).body),
    ).toBe("allowed");
    expect(reasonOf((await rpc("tools/call", toolCall("everything__get-env", {}, "s-1"))).body)).toBe(
      "tainted_session",
    );
    expect(reasonOf((await rpc("tools/call", toolCall("everything__get-env", {}, "s-2"))).body)).toBe(
      "allowed",
    );
  });
});

describe("Mcp-Method and Mcp-Name", () => {
  let read: ReturnType<typeof toolCall>;
  beforeAll(() => {
    read = toolCall("fs__read_text_file", { path: join(fx.root, "notes", "todo.txt") });
  });
  const mismatch = (r: { status: number; body: Record<string, unknown> }) => {
    expect(r.status).toBe(400);
    expect((r.body.error as { data: { reason: string } }).data.reason).toBe("header_mismatch");
  };

  it("are accepted when they agree with the body, plain or base64", async () => {
    const plain = await rpc("tools/call", read, {
      "mcp-method": "tools/call",
      "mcp-name": "fs__read_text_file",
    });
    expect(reasonOf(plain.body)).toBe("allowed");
    const b64 = `=?base64?${Buffer.from("fs__read_text_file").toString("base64")}?=`;
    expect(
      reasonOf((await rpc("tools/call", read, { "mcp-method": "tools/call", "mcp-name": b64 })).body),
    ).toBe("allowed");
    expect((await rpc("tools/list", {}, { "mcp-method": "tools/list" })).status).toBe(200);
  });

  it("are refused when they disagree with the body", async () => {
    mismatch(await rpc("tools/call", read, { "mcp-method": "tools/list" }));
    mismatch(await rpc("tools/call", read, { "mcp-method": "tools/call", "mcp-name": "fs__write_file" }));
    mismatch(await rpc("tools/call", read, { "mcp-method": "tools/call" }));
    mismatch(await rpc("tools/call", read, { "mcp-name": "fs__read_text_file" }));
    mismatch(await rpc("tools/list", {}, { "mcp-method": "tools/list", "mcp-name": "fs__read_text_file" }));
    mismatch(await rpc("tools/call", read, { "mcp-method": "tools/call", "mcp-name": "=?base64?//79?=" }));
  });

  it("encode what is not printable ASCII, so no value can split a header", () => {
    expect(encodeHeaderValue("tools/call")).toBe("tools/call");
    expect(encodeHeaderValue("café")).toBe(`=?base64?${Buffer.from("café").toString("base64")}?=`);
    expect(encodeHeaderValue("a\r\nx-evil: 1")).toMatch(/^=\?base64\?[A-Za-z0-9+/=]+\?=$/);
    expect(encodeHeaderValue(" padded")).toMatch(/^=\?base64\?/);
  });

  it("are checked inside a session too", async () => {
    const init = await dpopFetch(agent)(mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    const sid = init.headers.get("mcp-session-id");
    expect(sid).toMatch(/^gws_/);
    mismatch(
      await rpc("tools/call", read, {
        "mcp-session-id": sid!,
        "mcp-method": "tools/call",
        "mcp-name": "fs__x",
      }),
    );
  });
});
