/**
 * The gateway's side towards its tool servers: one MCP client per upstream, over stdio (a child
 * process with the configured command, arguments and environment) or Streamable HTTP (the URL with
 * the gateway's own headers). The agent's token never reaches these transports: they are built from
 * the configuration alone, plus, for an upstream with per-call credentials, the credential a
 * downstream issuer minted for one writ (`inject`, gateway/credentials.ts).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  CallToolResultSchema,
  type Tool,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { type ConfigText, q, type Upstream, WritError } from "../core/index.js";
import { withRoutingHeaders } from "./headers.js";

export const ERR_GATEWAY_UPSTREAM = "ERR_GATEWAY_UPSTREAM";
export const ERR_GATEWAY_ENV = "ERR_GATEWAY_ENV";

/** Turns a configuration string's `${env:NAME}` references into text. */
export type ResolveText = (text: ConfigText, where: string) => string;

/** `${env:NAME}` from `env` (the composition root passes process.env); a missing one is an error. */
export function envResolver(env: Readonly<Record<string, string | undefined>>): ResolveText {
  return (text, where) =>
    text.template.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const value = env[name];
      if (value === undefined) {
        throw new WritError(ERR_GATEWAY_ENV, `${where}: environment variable ${q(name)} is not set`);
      }
      return value;
    });
}

export interface UpstreamConnection {
  readonly id: string;
  /** The tools the upstream lists now, by name. */
  tools(): ReadonlyMap<string, Tool>;
  call(
    name: string,
    args: Record<string, unknown>,
    opts: { timeoutMs: number; signal?: AbortSignal | undefined },
  ): Promise<CallToolResult>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly resolve: ResolveText;
  /** Called after the upstream's tool list changed and was read again (or failed to be). */
  readonly onToolsChanged: (server: string) => void;
  /** Where an upstream's stderr goes (default: discarded). */
  readonly stderr?: "inherit" | "ignore" | undefined;
  readonly version: string;
  /** A writ's downstream credential: added to a stdio upstream's environment, an HTTP one's headers. */
  readonly inject?:
    | { readonly env?: Readonly<Record<string, string>>; readonly headers?: Readonly<Record<string, string>> }
    | undefined;
}

function transportFor(u: Upstream, opts: ConnectOptions): Transport {
  const where = `gateway.upstreams.${u.id}`;
  if (u.kind === "stdio-upstream") {
    const env: Record<string, string> = { ...getDefaultEnvironment() };
    for (const [k, v] of u.env) env[k] = opts.resolve(v, `${where}.env.${k}`);
    Object.assign(env, opts.inject?.env);
    return new StdioClientTransport({
      command: u.command,
      args: u.args.map((a, i) => opts.resolve(a, `${where}.args[${i}]`)),
      env,
      ...(u.cwd === undefined ? {} : { cwd: u.cwd }),
      stderr: opts.stderr ?? "ignore",
    });
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of u.headers) headers[k] = opts.resolve(v, `${where}.headers.${k}`);
  Object.assign(headers, opts.inject?.headers);
  return new StreamableHTTPClientTransport(new URL(u.url), {
    requestInit: { headers },
    fetch: withRoutingHeaders(),
  });
}

async function listAll(client: Client): Promise<Map<string, Tool>> {
  const out = new Map<string, Tool>();
  let cursor: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r = await client.listTools(cursor === undefined ? {} : { cursor });
    for (const t of r.tools) {
      if (out.has(t.name)) throw new WritError(ERR_GATEWAY_UPSTREAM, `tool ${q(t.name)} is listed twice`);
      out.set(t.name, t);
    }
    cursor = r.nextCursor;
    if (cursor === undefined) return out;
  }
  throw new WritError(ERR_GATEWAY_UPSTREAM, "the tool list has more than 100 pages");
}

/** Connects, initialises and reads the tool list; throws `ERR_GATEWAY_UPSTREAM` when it cannot. */
export async function connectUpstream(u: Upstream, opts: ConnectOptions): Promise<UpstreamConnection> {
  const client = new Client({ name: "writ-gateway", version: opts.version }, { capabilities: {} });
  let tools = new Map<string, Tool>();
  let closed = false;
  try {
    await client.connect(transportFor(u, opts));
    tools = await listAll(client);
  } catch (err) {
    await client.close().catch(() => {});
    if (err instanceof WritError) throw err;
    throw new WritError(
      ERR_GATEWAY_UPSTREAM,
      `upstream ${q(u.id)}: cannot connect: ${(err as Error).message}`,
      { cause: err },
    );
  }
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    try {
      tools = await listAll(client);
    } catch {
      // fail closed: an upstream whose list cannot be read offers nothing
      tools = new Map();
    }
    opts.onToolsChanged(u.id);
  });
  client.onclose = () => {
    if (!closed) {
      tools = new Map();
      opts.onToolsChanged(u.id);
    }
  };
  return {
    id: u.id,
    tools: () => tools,
    async call(name, args, callOpts) {
      const result = await client.callTool({ name, arguments: args }, CallToolResultSchema, {
        timeout: callOpts.timeoutMs,
        ...(callOpts.signal ? { signal: callOpts.signal } : {}),
      });
      return result as CallToolResult;
    },
    async close() {
      closed = true;
      await client.close();
    },
  };
}
