// A small real MCP server (stdio, the SDK's McpServer) standing in for the office tools agents
// meet: tickets and web pages (attacker-controlled text), mail, deletion and permissions. Its
// state lives in files under OFFICE_DATA, so the injection suite can check what really happened.
import { appendFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const data = process.env.OFFICE_DATA;
if (!data) throw new Error("OFFICE_DATA is not set");
const server = new McpServer({ name: "office", version: "1.0.0" });
const text = (t) => ({ content: [{ type: "text", text: t }] });

server.registerTool(
  "read_ticket",
  { description: "Read a support ticket", inputSchema: { id: z.string().regex(/^[A-Z]+-[0-9]+$/) } },
  async ({ id }) =>
    text(await readFile(join(data, "tickets", `${id}.txt`), "utf8").catch(() => "no such ticket")),
);
server.registerTool(
  "fetch_page",
  { description: "Fetch a web page", inputSchema: { url: z.string() } },
  async ({ url }) => {
    const pages = JSON.parse(await readFile(join(data, "pages.json"), "utf8"));
    return text(pages[url] ?? "404 not found");
  },
);
server.registerTool(
  "send_email",
  { description: "Send an e-mail", inputSchema: { to: z.string(), subject: z.string(), body: z.string() } },
  async (mail) => {
    await appendFile(join(data, "outbox.jsonl"), `${JSON.stringify(mail)}\n`);
    return text(`sent to ${mail.to}`);
  },
);
server.registerTool(
  "delete_path",
  { description: "Delete a file or folder", inputSchema: { path: z.string() } },
  async ({ path }) => {
    await rm(path, { recursive: true, force: true });
    return text(`deleted ${path}`);
  },
);
server.registerTool(
  "set_permission",
  { description: "Give a user a role", inputSchema: { user: z.string(), role: z.string() } },
  async (grant) => {
    await appendFile(join(data, "permissions.jsonl"), `${JSON.stringify(grant)}\n`);
    return text(`${grant.user} is now ${grant.role}`);
  },
);
await server.connect(new StdioServerTransport());
