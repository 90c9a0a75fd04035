/**
 * `writ serve`: the decision point over the AuthZEN API, on the embedded store or PostgreSQL, with
 * every decision in the audit log. Runs until SIGINT or SIGTERM, then checkpoints and closes.
 */
import type { AddressInfo } from "node:net";
import type { Command } from "commander";
import { checkPublicUrl, createServer, ERR_PUBLIC_URL } from "../app.js";
import { isWritError, q } from "../core/index.js";
import { createLogger, isLogLevel, LOG_LEVELS, lineDestination } from "../http/log.js";
import { type ConnectionLimits, DEFAULT_LIMITS, type Listening, listenHttp } from "../http/node.js";
import { isStoreFailure } from "../store/index.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, type Io } from "./output.js";
import { removeServeFile, writeServeFile } from "./serve-file.js";

export interface ServeOptions {
  readonly config: string;
  /** Default: `WRIT_HOST`, else 127.0.0.1. */
  readonly host?: string;
  /** Default: `WRIT_PORT`, else 8080. */
  readonly port?: string;
  readonly data?: string;
  readonly publicUrl?: string;
  readonly requireDpopNonce?: boolean;
  /** Durations: `10s`, `500ms`, `2m`. */
  readonly headersTimeout?: string;
  readonly requestTimeout?: string;
  readonly keepAliveTimeout?: string;
  readonly maxConnectionsPerIp?: string;
  /** Default: `WRIT_LOG_LEVEL`, else `info`. */
  readonly logLevel?: string;
  readonly json: boolean;
}

export interface ServeDefaults {
  readonly dataDir: string;
  /** `WRIT_HOST`, `WRIT_PORT`, `WRIT_PUBLIC_URL`: what the flags default to (a flag wins). */
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly publicUrl?: string | undefined;
  /** `WRIT_LOG_LEVEL`: what `--log-level` defaults to. */
  readonly logLevel?: string | undefined;
  /** `WRIT_METRICS_TOKEN`: a bearer token `/metrics` accepts besides the admin token. */
  readonly metricsToken?: string | undefined;
  /** Human-readable log lines (stderr is a terminal and the CLI writes to the process's own). */
  readonly prettyLogs?: boolean | undefined;
  /** The names (never the values) of the `WRIT_*` variables set, for the start line. */
  readonly envNames?: readonly string[] | undefined;
  readonly databaseUrl?: string | undefined;
  readonly pdpToken?: string | undefined;
  readonly version: string;
  /** Resolves when the server should stop (default: SIGINT or SIGTERM). */
  readonly stopped?: Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}

/** `500ms`, `10s`, `2m` in milliseconds; `flag` names the option in the refusal. */
function millis(flag: string, text: string): number {
  const m = /^(\d{1,9})(ms|s|m)$/.exec(text.trim());
  const n = m ? Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000) : 0;
  if (n <= 0 || n > 3_600_000) {
    throw new CliFailure(
      "ERR_USAGE",
      `${flag} ${q(text)}: expected a duration from 1ms to 60m, e.g. \`10s\``,
    );
  }
  return n;
}

/** The connection limits from the flags, each defaulting as documented (docs/cli.md). */
export function connectionLimits(o: ServeOptions): ConnectionLimits {
  const limits: ConnectionLimits = {
    headersTimeoutMs:
      o.headersTimeout === undefined
        ? DEFAULT_LIMITS.headersTimeoutMs
        : millis("--headers-timeout", o.headersTimeout),
    requestTimeoutMs:
      o.requestTimeout === undefined
        ? DEFAULT_LIMITS.requestTimeoutMs
        : millis("--request-timeout", o.requestTimeout),
    keepAliveTimeoutMs:
      o.keepAliveTimeout === undefined
        ? DEFAULT_LIMITS.keepAliveTimeoutMs
        : millis("--keep-alive-timeout", o.keepAliveTimeout),
    maxConnectionsPerAddress:
      o.maxConnectionsPerIp === undefined
        ? DEFAULT_LIMITS.maxConnectionsPerAddress
        : Number(o.maxConnectionsPerIp),
  };
  if (
    o.maxConnectionsPerIp !== undefined &&
    (!/^\d{1,6}$/.test(o.maxConnectionsPerIp) || limits.maxConnectionsPerAddress < 1)
  ) {
    throw new CliFailure(
      "ERR_USAGE",
      `--max-connections-per-ip ${q(o.maxConnectionsPerIp)}: expected a whole number from 1 to 999999`,
    );
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new CliFailure("ERR_USAGE", "--headers-timeout must not be longer than --request-timeout");
  }
  return limits;
}

/** Where this machine's CLI reaches the server: loopback when it listens on every address. */
function localUrl(info: AddressInfo): string {
  const any = info.address === "0.0.0.0" || info.address === "::";
  const host = any ? "127.0.0.1" : info.family === "IPv6" ? `[${info.address}]` : info.address;
  return `http://${host}:${info.port}`;
}

/** Each setting from its flag, else its environment variable, else its default; `from` names the source. */
function settings(o: ServeOptions, d: ServeDefaults) {
  const pick = (flag: string | undefined, env: string | undefined, name: string, variable: string) =>
    flag !== undefined
      ? { value: flag, from: name }
      : env !== undefined
        ? { value: env, from: variable }
        : undefined;
  return {
    host: pick(o.host, d.host, "--host", "WRIT_HOST") ?? { value: "127.0.0.1", from: "--host" },
    port: pick(o.port, d.port, "--port", "WRIT_PORT") ?? { value: "8080", from: "--port" },
    publicUrl: pick(o.publicUrl, d.publicUrl, "--public-url", "WRIT_PUBLIC_URL"),
    logLevel: pick(o.logLevel, d.logLevel, "--log-level", "WRIT_LOG_LEVEL") ?? {
      value: "info",
      from: "--log-level",
    },
  };
}

export async function serveCommand(given: ServeOptions, io: Io, d: ServeDefaults): Promise<number> {
  const s = settings(given, d);
  const o = { ...given, host: s.host.value, port: s.port.value, publicUrl: s.publicUrl?.value };
  const port = Number(o.port);
  if (!/^\d+$/.test(o.port) || port > 65535)
    throw new CliFailure("ERR_USAGE", `${s.port.from} ${q(o.port)}: expected 0 to 65535`);
  if (o.host.length === 0 || /[\s/]/.test(o.host))
    throw new CliFailure("ERR_USAGE", `${s.host.from} ${q(o.host)}: expected a host name or an IP address`);
  if (!LOOPBACK.test(o.host) && !d.pdpToken) {
    throw new CliFailure(
      "ERR_USAGE",
      `refusing to serve on ${q(o.host)} without WRIT_PDP_TOKEN: the decision point would answer anyone who can reach it`,
    );
  }
  if (d.pdpToken !== undefined && d.pdpToken.length < 16) {
    throw new CliFailure("ERR_USAGE", "WRIT_PDP_TOKEN must be at least 16 characters");
  }
  const limits = connectionLimits(o);
  const level = s.logLevel.value;
  if (!isLogLevel(level)) {
    throw new CliFailure(
      "ERR_USAGE",
      `${s.logLevel.from} ${q(level)}: expected one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  if (d.metricsToken !== undefined && d.metricsToken.length < 16) {
    throw new CliFailure("ERR_USAGE", "WRIT_METRICS_TOKEN must be at least 16 characters");
  }
  if (o.publicUrl === undefined && !LOOPBACK.test(o.host)) {
    throw new CliFailure(
      ERR_PUBLIC_URL,
      `serving on ${q(o.host)} needs --public-url https://…: off a loopback host, the issuers clients verify tokens against must be https`,
    );
  }
  if (o.publicUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(o.publicUrl);
    } catch {}
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash) {
      throw new CliFailure(
        "ERR_USAGE",
        `${s.publicUrl?.from} ${q(o.publicUrl)}: expected an http(s) URL without query or fragment`,
      );
    }
  }
  const policy = await requirePolicy(o.config, io, o.json);
  if (o.publicUrl !== undefined) {
    // https, or http on a loopback host: otherwise every issuer would be refused at the first token
    await checkPublicUrl(o.publicUrl, policy.config).catch((err: unknown) => {
      throw isWritError(err) ? new CliFailure(err.code, err.message) : err;
    });
  }
  const dataDir = o.data ?? d.dataDir;
  const logger = await createLogger({
    level,
    pretty: d.prettyLogs === true,
    ...(d.prettyLogs === true ? {} : { destination: lineDestination(io.err) }),
  });
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    server = await createServer({
      policy,
      dataDir,
      databaseUrl: d.databaseUrl,
      pdpToken: d.pdpToken,
      version: d.version,
      dpopNonce: o.requireDpopNonce ? "require" : "accept",
      logger,
      metricsToken: d.metricsToken,
    });
  } catch (err) {
    if (isStoreFailure(err) || isWritError(err)) {
      throw new CliFailure(err.code, err.message, EXIT.failure);
    }
    throw err;
  }
  const stopped = d.stopped ?? waitForSignal();
  let http: Listening;
  try {
    http = await listenHttp({ fetch: server.app.fetch, hostname: o.host, port, limits });
    const info = http.address;
    const url = `http://${info.family === "IPv6" ? `[${info.address}]` : info.address}:${info.port}`;
    server.setBaseUrl(o.publicUrl ?? url);
    await writeServeFile(dataDir, { url: localUrl(info), pid: process.pid, adminToken: server.adminToken });
    const head = await server.audit.head();
    logger.info({
      event: "server.start",
      msg: `writ serving ${url}`,
      listen: url,
      publicUrl: o.publicUrl ?? url,
      version: d.version,
      config: o.config,
      configDigest: policy.digest,
      store: server.store.backend,
      location: server.store.location,
      auditSeq: head.seq,
      env: [...(d.envNames ?? [])].sort(),
      logLevel: level,
    });
    if (o.json) {
      io.out(
        JSON.stringify({
          listening: url,
          config: o.config,
          store: server.store.backend,
          location: server.store.location,
          auditSeq: head.seq,
        }),
      );
    } else {
      io.out(
        `writ serving ${url} — config ${o.config}, store ${server.store.backend} (${server.store.location}), audit log at #${head.seq}`,
      );
    }
  } catch (err) {
    await server.close().catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE")
      throw new CliFailure("ERR_ADDRESS_IN_USE", `${o.host}:${o.port} is already in use`, EXIT.failure);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
      throw new CliFailure("ERR_USAGE", `cannot listen on ${q(o.host)}: no such local address`);
    }
    throw err;
  }
  await stopped;
  logger.info({ event: "server.stopping", msg: "writ stopping: draining connections" });
  await http!.close();
  await removeServeFile(dataDir);
  await server.close();
  logger.info({ event: "server.stop", msg: "writ stopped; audit log checkpointed" });
  logger.flush();
  if (!o.json) io.out("writ stopped; audit log checkpointed");
  return EXIT.ok;
}

export function registerServe(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: ServeDefaults,
): void {
  program
    .command("serve")
    .description("serve the decision point (OpenID AuthZEN 1.0) with every decision audited")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--host <host>", "address to listen on (default: WRIT_HOST or 127.0.0.1)")
    .option("--port <port>", "port to listen on, 0: any free port (default: WRIT_PORT or 8080)")
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option(
      "--public-url <url>",
      "the URL clients reach this server at: the root of every issuer and metadata document (default: WRIT_PUBLIC_URL, else the listening address)",
    )
    .option("--require-dpop-nonce", "refuse DPoP proofs without a server nonce (RFC 9449 §8)", false)
    .option("--headers-timeout <duration>", "a request's headers must arrive within this (default 10s)")
    .option(
      "--request-timeout <duration>",
      "a whole request, body included, must arrive within this (default 30s)",
    )
    .option(
      "--keep-alive-timeout <duration>",
      "an idle kept-alive connection is closed after this (default 5s)",
    )
    .option(
      "--max-connections-per-ip <n>",
      "open connections from one address; more are refused with 429 (default 64)",
    )
    .option(
      "--log-level <level>",
      `${LOG_LEVELS.join(", ")} (default: WRIT_LOG_LEVEL or info); the log goes to stderr`,
    )
    .option("--json", "print the listening line as JSON", false)
    .action(async (o: ServeOptions) => setExit(await serveCommand(o, io, d)));
}
