/**
 * The agent's side: an MCP server per session whose `tools/list` and `tools/call` go through the
 * gateway's checks. Only tools are offered (resources and prompts of upstreams are not proxied).
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { type Gateway, PROMPT_CONTEXT_HEADER, PROMPT_CONTEXT_META } from "./gateway.js";

function header(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v.join(",") : v;
}

/** An MCP server bound to one gateway session. */
export function sessionServer(gateway: Gateway, sessionId: string, version: string): Server {
  const server = new Server(
    { name: "writ-gateway", version },
    {
      capabilities: { tools: { listChanged: true } },
      instructions:
        "Tools behind writ: every call is checked against your writ. A refused call says why in `_meta`.",
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: await gateway.listTools(sessionId),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const meta = req.params._meta as Record<string, unknown> | undefined;
    const promptContextId =
      meta?.[PROMPT_CONTEXT_META] ?? header(extra.requestInfo?.headers, PROMPT_CONTEXT_HEADER);
    return gateway.callTool(sessionId, req.params.name, req.params.arguments, { promptContextId });
  });
  return server;
}
