/**
 * The gateway over stdio, for a local agent that starts `writ gateway --stdio --agent A` as its MCP
 * server. The operator who configured the command vouches for the agent's identity (there is no
 * token on stdio); everything else — decisions, taint, holds, pins, limits, kill, audit — is the
 * same as over HTTP. A kill ends the session and closes the transport.
 */
import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { Gateway, GatewayIdentity } from "./gateway.js";
import { sessionServer } from "./mcp.js";

export interface StdioSession {
  readonly sessionId: string;
  /** Resolves with why the session ended (a kill, the client closing stdin…). */
  readonly ended: Promise<string>;
  close(): Promise<void>;
}

export async function serveStdio(
  gateway: Gateway,
  identity: Omit<GatewayIdentity, "transport">,
  io: { stdin?: Readable; stdout?: Writable; version: string },
): Promise<StdioSession> {
  let resolveEnd!: (why: string) => void;
  const ended = new Promise<string>((r) => {
    resolveEnd = r;
  });
  const transport = new StdioServerTransport(io.stdin, io.stdout);
  const session = gateway.openSession({ ...identity, transport: "stdio" }, (why) => {
    resolveEnd(why);
    void transport.close().catch(() => {});
  });
  const server = sessionServer(gateway, session.id, io.version);
  gateway.onToolsChanged(() => void server.sendToolListChanged().catch(() => {}));
  transport.onclose = () => {
    gateway.endSession(session.id, "the client closed stdin");
    resolveEnd("the client closed stdin");
  };
  await server.connect(transport);
  return {
    sessionId: session.id,
    ended,
    async close() {
      gateway.endSession(session.id, "closed");
      await server.close();
    },
  };
}
