/**
 * The gateway's verbs through the built CLI: `writ gateway --stdio --agent A` driven by the SDK's
 * client over stdio (the way a local agent starts it), then `writ tools list|approve` on the pins it
 * recorded.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { assertBuilt, BIN, runCli } from "../support/cli.js";
import { type Fixture, refusal, text, writeFixture } from "./support.js";

let dir: string;
let fx: Fixture;
let data: string;

beforeAll(async () => {
  assertBuilt();
  dir = await mkdtemp(join(tmpdir(), "writ-gw-cli-"));
  fx = await writeFixture(dir);
  data = join(dir, "data");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `writ gateway --stdio` started the way a local agent's MCP client starts it. */
async function stdioSession(): Promise<Client> {
  const c = new Client({ name: "local-agent", version: "1.0.0" });
  await c.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [BIN, "gateway", "--stdio", "--agent", "release-bot", "--config", fx.config, "--data", data],
      stderr: "pipe",
    }),
  );
  return c;
}

/** `writ approve ID --as alice`: the approval's status, asserting the verb succeeded. */
async function approveFromCli(id: string): Promise<string> {
  const r = await runCli([
    "approve",
    id,
    "--as",
    "alice@acme.example",
    "--config",
    fx.config,
    "--data",
    data,
    "--json",
  ]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { status: string }).status;
}

describe("writ gateway --stdio", () => {
  it("serves one agent's session over stdio with every check", async () => {
    const c = await stdioSession();
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toContain("fs__read_text_file");
    const ok = await c.callTool({
      name: "fs__read_text_file",
      arguments: { path: join(fx.root, "notes", "todo.txt") },
    });
    expect(text(ok)).toContain("buy milk");
    const escaped = await c.callTool({
      name: "fs__read_text_file",
      arguments: { path: join(fx.root, "link", "secret.txt") },
    });
    expect(refusal(escaped)?.reason).toBe("no_grant");
    await c.close();
  }, 60_000);

  it("a held call approved with `writ approve` on the store (no server running) goes through", async () => {
    const args = {
      source: join(fx.root, "notes", "todo.txt"),
      destination: join(fx.root, "notes", "held.txt"),
    };
    let c = await stdioSession();
    const held = await c.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(held)?.reason).toBe("approval_required");
    const id = refusal(held)!.approval!;
    await c.close();
    expect(await approveFromCli(id)).toBe("approved");
    c = await stdioSession();
    const done = await c.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(done)).toBeUndefined();
    await c.close();
  }, 60_000);

  it("a held call is approved from the CLI while the stdio gateway runs, and retried in the same session", async () => {
    await writeFile(join(fx.root, "notes", "live.txt"), "live\n");
    const c = await stdioSession();
    const args = {
      source: join(fx.root, "notes", "live.txt"),
      destination: join(fx.root, "notes", "live-done.txt"),
    };
    const held = await c.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(held)?.reason).toBe("approval_required");
    // the gateway holds the embedded store: the CLI reaches it through <data>/serve.json
    expect(await approveFromCli(refusal(held)!.approval!)).toBe("approved");
    const listed = await runCli(["tools", "list", "--data", data, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const done = await c.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(done)).toBeUndefined();
    await c.close();
    // gone with the process (which ends once the client closed its stdin)
    let present = true;
    for (let i = 0; i < 100 && present; i++) {
      present = await readFile(join(data, "serve.json"), "utf8").then(
        () => true,
        () => false,
      );
      if (present) await new Promise((r) => setTimeout(r, 50));
    }
    expect(present).toBe(false);
  }, 60_000);

  it("refuses usage errors with exit 2 and an unknown agent with exit 1", async () => {
    const noStdio = await runCli(["gateway", "--config", fx.config, "--data", data]);
    expect(noStdio.code).toBe(2);
    expect(noStdio.stderr).toContain("writ serve");
    const noAgent = await runCli(["gateway", "--stdio", "--config", fx.config, "--data", data]);
    expect(noAgent.code).toBe(2);
    const unknown = await runCli([
      "gateway",
      "--stdio",
      "--agent",
      "nobody",
      "--config",
      fx.config,
      "--data",
      data,
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown agent `nobody`");
  });
});

describe("writ tools", () => {
  it("lists the pins the gateway recorded and approves a quarantined definition", async () => {
    const listed = await runCli(["tools", "list", "--data", data, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const pins = (JSON.parse(listed.stdout) as { pins: { server: string; tool: string; status: string }[] })
      .pins;
    expect(pins.some((p) => p.server === "fs" && p.tool === "read_text_file" && p.status === "pinned")).toBe(
      true,
    );
    // as if an earlier definition had been pinned: the one seen now is quarantined
    const store = await openStore({ dataDir: data });
    await store.db
      .updateTable("gateway_tool_pins")
      .set({ approved_hash: "0".repeat(64) })
      .where("server", "=", "fs")
      .where("tool", "=", "read_text_file")
      .execute();
    await store.close();
    const quarantined = await runCli(["tools", "list", "--data", data]);
    expect(quarantined.code).toBe(1);
    expect(quarantined.stdout).toContain("QUARANTINED  fs:read_text_file");
    const wrong = await runCli([
      "tools",
      "approve",
      "fs:read_text_file",
      "--hash",
      "1".repeat(64),
      "--data",
      data,
      "--json",
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("ERR_PIN_NOT_FOUND");
    const ok = await runCli(["tools", "approve", "fs:read_text_file", "--data", data, "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { status: string }).status).toBe("pinned");
    const bad = await runCli(["tools", "approve", "read_text_file", "--data", data]);
    expect(bad.code).toBe(2);
  }, 60_000);
});
