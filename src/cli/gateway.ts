/**
 * `writ gateway --stdio --agent A`: the MCP gateway on stdin/stdout, for a local agent that starts
 * it as its MCP server. The operator who wrote the agent's MCP configuration vouches for `--agent`
 * (stdio carries no token); `--writ ID` adds a stored writ of that agent. Every call is decided,
 * audited and can be killed as over HTTP. Logs go to stderr: stdout is the MCP channel.
 *
 *   writ gateway --stdio --agent A [--env E] [--writ ID] [--config FILE] [--data DIR]
 *
 * Over HTTP the gateway is part of `writ serve` (its `/mcp` endpoint). The embedded store is held
 * by one process: beside a running `writ serve`, use PostgreSQL or another data folder. While it
 * holds the embedded store, the operator verbs (`writ approve`, `writ tools approve`, `writ kill`)
 * reach it through its admin API on a loopback port, announced in `<data>/serve.json` as
 * `writ serve` does, so a held call can be approved while the session runs.
 *
 * Exit codes: 0 the session ended (the client closed stdin), 1 refused (unknown agent, a kill,
 * a writ that is not the agent's or not active), 2 usage, 3 store or upstream failure.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import { createStdioGateway } from "../app.js";
import { isWritError, q } from "../core/index.js";
import { isGatewayError, serveStdio } from "../gateway/index.js";
import { isStoreFailure, toActiveWrit } from "../store/index.js";
import { gatewayRefusalCode } from "./codes.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, type Io } from "./output.js";
import { removeServeFile, writeServeFile } from "./serve-file.js";

export interface GatewayCliOptions {
  readonly stdio: boolean;
  readonly agent?: string;
  readonly env?: string;
  readonly writ?: string;
  readonly config: string;
  readonly data?: string;
  readonly verbose: boolean;
}

export interface GatewayDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly version: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export async function gatewayCommand(o: GatewayCliOptions, io: Io, d: GatewayDefaults): Promise<number> {
  if (!o.stdio) {
    throw new CliFailure(
      "ERR_USAGE",
      "the HTTP gateway is part of `writ serve` (its `/mcp` endpoint); `writ gateway` runs it on stdio: add `--stdio --agent A`",
    );
  }
  if (o.agent === undefined)
    throw new CliFailure("ERR_USAGE", "--stdio needs --agent: the agent this session acts as");
  // stdout is the MCP channel: problems go to stderr
  const policy = await requirePolicy(o.config, { out: io.err, err: io.err }, false);
  const agent = policy.config.agents.get(o.agent);
  if (!agent)
    throw new CliFailure(
      "ERR_GATEWAY_AGENT",
      `unknown agent ${q(o.agent)}: writ.yaml does not declare it`,
      EXIT.no,
    );
  if (!policy.config.gateway) throw new CliFailure("ERR_USAGE", `${o.config} has no \`gateway\` section`);
  const env = o.env ?? (agent.environments.length === 1 ? agent.environments[0] : undefined);
  if (env === undefined) {
    throw new CliFailure(
      "ERR_USAGE",
      `agent ${q(agent.id)} is in several environments: choose one with --env`,
    );
  }
  if (!agent.environments.includes(env)) {
    throw new CliFailure("ERR_GATEWAY_AGENT", `agent ${q(agent.id)} is not registered in ${q(env)}`, EXIT.no);
  }
  let opened: Awaited<ReturnType<typeof createStdioGateway>>;
  try {
    opened = await createStdioGateway({
      policy,
      dataDir: o.data ?? d.dataDir,
      databaseUrl: d.databaseUrl,
      version: d.version,
      env: d.env,
      upstreamStderr: o.verbose ? "inherit" : "ignore",
    });
  } catch (err) {
    if (isStoreFailure(err) || isWritError(err)) {
      throw new CliFailure(err.code, err.message, EXIT.failure);
    }
    throw err;
  }
  const dataDir = o.data ?? d.dataDir;
  // the embedded store is this process's alone: `writ approve`, `writ tools approve` and `writ kill`
  // reach it here, as they reach a running `writ serve` (<data>/serve.json, loopback, admin token)
  let channel: { close(): Promise<void> } | undefined;
  try {
    if (opened.store.backend === "pglite") channel = await operatorChannel(opened, dataDir);
    let writ: ReturnType<typeof toActiveWrit> | undefined;
    if (o.writ !== undefined) {
      const stored = await opened.store.writs.get(o.writ);
      if (!stored || stored.agent !== agent.id || stored.environment !== env || stored.status !== "active") {
        throw new CliFailure(
          "ERR_GATEWAY_WRIT",
          `writ ${q(o.writ)} is not an active writ of ${q(agent.id)} in ${q(env)}`,
          EXIT.no,
        );
      }
      writ = toActiveWrit(stored);
    }
    let session: Awaited<ReturnType<typeof serveStdio>>;
    try {
      session = await serveStdio(
        opened.gateway,
        { agent: agent.id, environment: env, writ },
        { version: d.version },
      );
    } catch (err) {
      if (isGatewayError(err)) throw new CliFailure(gatewayRefusalCode(err.reason), err.message, EXIT.no);
      throw err;
    }
    // a client that stops its server with a signal gets the same orderly end as closing stdin
    const stop = () => void session.close().catch(() => {});
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    const why = await session.ended.finally(() => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
    });
    io.err(`writ gateway: session ended: ${why}`);
    return why.startsWith("kill switch") ? EXIT.no : EXIT.ok;
  } finally {
    await channel?.close();
    await opened.close();
  }
}

/** The admin API on a loopback port, announced in `<data>/serve.json` while this process runs. */
async function operatorChannel(
  opened: { admin: { fetch: (req: Request) => Response | Promise<Response> }; adminToken: string },
  dataDir: string,
): Promise<{ close(): Promise<void> }> {
  const http = serve({ fetch: opened.admin.fetch, hostname: "127.0.0.1", port: 0 });
  const info = await new Promise<AddressInfo>((resolve, reject) => {
    http.once("listening", () => resolve(http.address() as AddressInfo));
    http.once("error", reject);
  });
  await writeServeFile(dataDir, {
    url: `http://127.0.0.1:${info.port}`,
    pid: process.pid,
    adminToken: opened.adminToken,
  });
  return {
    async close() {
      await removeServeFile(dataDir);
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

export function registerGateway(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: GatewayDefaults,
): void {
  program
    .command("gateway")
    .description("the MCP gateway on stdio for one local agent (over HTTP it is part of `writ serve`)")
    .option("--stdio", "serve MCP on stdin/stdout", false)
    .option("--agent <id>", "the agent this session acts as")
    .option("--env <environment>", "the environment (default: the agent's only one)")
    .option("--writ <id>", "a stored, active writ of the agent to decide with")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option("--verbose", "pass the upstreams' stderr through", false)
    .action(async (o: GatewayCliOptions) => setExit(await gatewayCommand(o, io, d)));
}
