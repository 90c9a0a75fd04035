/**
 * The gateway over time: a Streamable HTTP upstream (server-everything) reached with the gateway's
 * own credential and never the agent's token, a tool whose definition changes under it (quarantined
 * until `writ tools approve`), and the kill switch ending sessions and refusing calls within one
 * second, measured.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { pinStore } from "../../src/gateway/index.js";
import { type Live, startLive } from "../broker/live.js";
import { ROOT } from "../support/cli.js";
import { type Agent, agentToken, connect, EVERYTHING_BIN, refusal, text, writeFixture } from "./support.js";

const UPSTREAM_SECRET = "upstream-credential-of-the-gateway";

let dir: string;
let live: Live;
let mcpUrl: string;
let everything: ChildProcess;
let proxy: ReturnType<typeof serve>;
const seenAuthorization: string[] = [];
const seenRouting: string[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-gw-life-"));
  const port = await freePort();
  everything = spawn(process.execPath, [EVERYTHING_BIN, "streamableHttp"], {
    env: { ...process.env, PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("server-everything did not start")), 20_000);
    everything.stderr!.on("data", (d: Buffer) => {
      if (d.toString().includes("listening")) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  // a recording proxy in front of it: what reaches the upstream, header by header
  const proxyPort = await new Promise<number>((resolve) => {
    proxy = serve(
      {
        fetch: async (req) => {
          seenAuthorization.push(req.headers.get("authorization") ?? "");
          seenRouting.push(`${req.headers.get("mcp-method")} ${req.headers.get("mcp-name")}`);
          const url = new URL(req.url);
          const headers = new Headers(req.headers);
          headers.delete("host");
          return fetch(`http://127.0.0.1:${port}${url.pathname}${url.search}`, {
            method: req.method,
            headers,
            body: req.body,
            duplex: "half",
          } as RequestInit);
        },
        hostname: "127.0.0.1",
        port: 0,
      },
      (info) => resolve(info.port),
    );
  });
  process.env.WRIT_TEST_UPSTREAM_TOKEN = UPSTREAM_SECRET;
  const fx = await writeFixture(dir, {
    upstreams: `    web:
      url: http://127.0.0.1:${proxyPort}/mcp
      headers:
        Authorization: "Bearer \${env:WRIT_TEST_UPSTREAM_TOKEN}"
      tools:
        echo: { untrusted: true }
    rug:
      command: ${process.execPath}
      args: ["${join(ROOT, "test", "gateway", "fixtures", "rug-pull.mjs")}"]
      cwd: ${ROOT}
`,
  });
  // the agent may use the new upstreams
  const yaml = (await readFile(fx.config, "utf8"))
    .replace(
      'tools: ["fs:*", "everything:echo", "everything:get-sum", "everything:get-env"]',
      'tools: ["fs:*", "everything:echo", "everything:get-sum", "everything:get-env", "web:echo", "rug:weather"]',
    )
    .replace(
      '      - action: "mcp:everything:echo|get-sum|get-env"\n        standingWrite: test tools',
      '      - action: "mcp:everything:echo|get-sum|get-env"\n        standingWrite: test tools\n      - action: "mcp:web:echo"\n        standingWrite: test tools\n      - action: "mcp:rug:weather"\n        standingWrite: test tools',
    )
    .replace(
      '        - action: "mcp:everything:*"',
      '        - action: "mcp:everything:*"\n        - action: "mcp:web:*"\n        - action: "mcp:rug:*"',
    );
  await writeFile(fx.config, yaml);
  const { policy, problems } = await loadPolicy(fx.config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  live = await startLive(policy, join(dir, "data"), { stateCache: true });
  mcpUrl = `${live.base}/mcp`;
}, 90_000);

afterAll(async () => {
  await live?.stop();
  proxy?.close();
  everything?.kill();
  delete process.env.WRIT_TEST_UPSTREAM_TOKEN;
  await rm(dir, { recursive: true, force: true });
});

describe("a Streamable HTTP upstream", () => {
  it("is reached with the gateway's own credential, never the agent's token", async () => {
    const agent = await agentToken(live.base, "release-bot", mcpUrl);
    const c = await connect(mcpUrl, agent);
    const r = await c.callTool({ name: "web__echo", arguments: { message: "hello over http" } });
    expect(refusal(r)).toBeUndefined();
    expect(text(r)).toContain("hello over http");
    expect(seenAuthorization.length).toBeGreaterThan(0);
    expect(new Set(seenAuthorization)).toEqual(new Set([`Bearer ${UPSTREAM_SECRET}`]));
    expect(seenAuthorization.join("\n")).not.toContain(agent.token);
    // the routing headers (MCP 2026-07-28) go upstream, mirrored from each message
    expect(seenRouting).toContain("tools/call echo");
    expect(seenRouting).toContain("tools/list null");
    await c.close();
  });
});

describe("pinning", () => {
  it("quarantines a tool whose definition changed until an operator approves it", async () => {
    const c = await connect(mcpUrl, await agentToken(live.base, "release-bot", mcpUrl));
    expect((await c.listTools()).tools.map((t) => t.name)).toContain("rug__weather");
    const changed = new Promise<void>((resolve) => {
      c.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve());
    });
    expect(refusal(await c.callTool({ name: "rug__weather", arguments: { city: "Paris" } }))).toBeUndefined();
    await changed; // the upstream changed its description and the gateway re-read it
    expect((await c.listTools()).tools.map((t) => t.name)).not.toContain("rug__weather");
    const r = await c.callTool({ name: "rug__weather", arguments: { city: "Paris" } });
    expect(refusal(r)?.reason).toBe("tool_quarantined");
    const pins = pinStore(live.server.store);
    const pin = await pins.get("rug", "weather");
    expect(pin?.status).toBe("quarantined");
    expect(String(pin?.seenDefinition.description)).toContain("id_rsa");
    await pins.approve("rug", "weather", { by: "test", hash: pin!.seenHash });
    const again = await c.callTool({ name: "rug__weather", arguments: { city: "Paris" } });
    expect(refusal(again)).toBeUndefined();
    await c.close();
  });
});

describe("kill switch", () => {
  it("ends the agent's sessions on its own, with no call to notice it, and refuses their calls", async () => {
    const agent: Agent = await agentToken(live.base, "release-bot", mcpUrl);
    const c: Client = await connect(mcpUrl, agent);
    const args = { name: "everything__echo", arguments: { message: "still here" } };
    expect(refusal(await c.callTool(args))).toBeUndefined();
    const ended = async () =>
      (await live.server.audit.tail(2000)).filter(
        (r) =>
          r.type === "gateway.session_end" &&
          (r.data as { agent?: string }).agent === "release-bot" &&
          String((r.data as { why?: unknown }).why).startsWith("kill switch"),
      ).length;
    const before = await ended();
    await live.server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    // no call is made until the session has ended: only the gateway's own watch of the kills can end
    // it (a watch that never acts is this test's timeout); kill → refused time is bench/gateway.bench.ts's
    while ((await ended()) === before) await new Promise((r) => setTimeout(r, 20));
    // an unanswered request would be a hang: bounded, so the test says so instead of timing out
    const outcome = await c.callTool(args, undefined, { timeout: 5000 }).then(
      (r) => refusal(r)?.reason ?? "allowed",
      () => "session ended",
    );
    expect(["killed", "session ended"]).toContain(outcome);
    // a new session is refused too
    await expect(connect(mcpUrl, agent)).rejects.toThrow();
    await live.server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    await c.close().catch(() => {});
  });
});
