/**
 * `writ serve`: the decision point over the AuthZEN API, on the embedded store or PostgreSQL, with
 * every decision in the audit log. Runs until SIGINT or SIGTERM, then checkpoints and closes.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import { createServer } from "../app.js";
import { isWritError, q } from "../core/index.js";
import { isStoreFailure } from "../store/index.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, type Io } from "./output.js";
import { removeServeFile, writeServeFile } from "./serve-file.js";

export interface ServeOptions {
  readonly config: string;
  readonly host: string;
  readonly port: string;
  readonly data?: string;
  readonly publicUrl?: string;
  readonly requireDpopNonce?: boolean;
  readonly json: boolean;
}

export interface ServeDefaults {
  readonly dataDir: string;
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

/** Where this machine's CLI reaches the server: loopback when it listens on every address. */
function localUrl(info: AddressInfo): string {
  const any = info.address === "0.0.0.0" || info.address === "::";
  const host = any ? "127.0.0.1" : info.family === "IPv6" ? `[${info.address}]` : info.address;
  return `http://${host}:${info.port}`;
}

export async function serveCommand(o: ServeOptions, io: Io, d: ServeDefaults): Promise<number> {
  const port = Number(o.port);
  if (!/^\d+$/.test(o.port) || port > 65535)
    throw new CliFailure("ERR_USAGE", `--port ${q(o.port)}: expected 0 to 65535`);
  if (!LOOPBACK.test(o.host) && !d.pdpToken) {
    throw new CliFailure(
      "ERR_USAGE",
      `refusing to serve on ${q(o.host)} without WRIT_PDP_TOKEN: the decision point would answer anyone who can reach it`,
    );
  }
  if (d.pdpToken !== undefined && d.pdpToken.length < 16) {
    throw new CliFailure("ERR_USAGE", "WRIT_PDP_TOKEN must be at least 16 characters");
  }
  if (o.publicUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(o.publicUrl);
    } catch {}
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash) {
      throw new CliFailure(
        "ERR_USAGE",
        `--public-url ${q(o.publicUrl)}: expected an http(s) URL without query or fragment`,
      );
    }
  }
  const policy = await requirePolicy(o.config, io, o.json);
  const dataDir = o.data ?? d.dataDir;
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    server = await createServer({
      policy,
      dataDir,
      databaseUrl: d.databaseUrl,
      pdpToken: d.pdpToken,
      version: d.version,
      dpopNonce: o.requireDpopNonce ? "require" : "accept",
    });
  } catch (err) {
    if (isStoreFailure(err) || isWritError(err)) {
      throw new CliFailure((err as { code: string }).code, (err as Error).message, EXIT.failure);
    }
    throw err;
  }
  const stopped = d.stopped ?? waitForSignal();
  let http: ReturnType<typeof serve>;
  try {
    const info = await new Promise<AddressInfo>((resolve, reject) => {
      http = serve({ fetch: server.app.fetch, hostname: o.host, port }, (addr) => resolve(addr));
      http.once("error", reject);
    });
    const url = `http://${info.family === "IPv6" ? `[${info.address}]` : info.address}:${info.port}`;
    server.setBaseUrl(o.publicUrl ?? url);
    await writeServeFile(dataDir, { url: localUrl(info), pid: process.pid, adminToken: server.adminToken });
    const head = await server.audit.head();
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
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await removeServeFile(dataDir);
  await server.close();
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
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0: any free port)", "8080")
    .option("--data <dir>", `data folder (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option(
      "--public-url <url>",
      "the URL clients reach this server at: the root of every issuer (default: the listening address)",
    )
    .option("--require-dpop-nonce", "refuse DPoP proofs without a server nonce (RFC 9449 §8)", false)
    .option("--json", "print the listening line as JSON", false)
    .action(async (o: ServeOptions) => setExit(await serveCommand(o, io, d)));
}
