/**
 * The HTTP app on a Node server, with the limits that keep slow or greedy clients from holding it:
 *
 *   headersTimeout   a request's headers must arrive within this (default 10 s; then 408 and close)
 *   requestTimeout   the whole request, body included, within this (default 30 s; then 408)
 *   keepAliveTimeout an idle kept-alive connection is closed after this (default 5 s)
 *   maxConnectionsPerAddress   open connections from one remote address (default 64); the next one
 *                    is answered 429 `too_many_connections` and closed, before any of it is read
 *
 * Node checks the two request timeouts every `checkInterval` (default 1 s, at most half the
 * headers timeout), so a connection is cut at most that late.
 */
import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { serve } from "@hono/node-server";
import { problemBody, problemHeaders } from "./problem.js";

export interface ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnectionsPerAddress: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnectionsPerAddress: 64,
};

export interface ListenOptions {
  readonly fetch: (request: Request) => Response | Promise<Response>;
  readonly hostname: string;
  readonly port: number;
  readonly limits?: Partial<ConnectionLimits> | undefined;
}

export interface Listening {
  readonly server: Server;
  readonly address: AddressInfo;
  /** Stops accepting, ends idle connections and resolves when every connection is closed. */
  close(): Promise<void>;
}

/** The answer to a connection over the per-address limit: written raw, nothing of it read. */
function tooMany(max: number): string {
  const body = JSON.stringify(
    problemBody({
      status: 429,
      reason: "too_many_connections",
      detail: `more than ${max} open connections from this address`,
      retryAfter: 1,
    }),
  );
  const headers = Object.entries(problemHeaders({ retryAfter: 1 })).map(([k, v]) => `${k}: ${v}`);
  return [
    "HTTP/1.1 429 Too Many Requests",
    ...headers,
    "connection: close",
    `content-length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one address. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

/**
 * Counts open connections per remote address in front of the HTTP server's own connection
 * handling: a connection over the limit never reaches the HTTP parser.
 */
export function limitConnectionsPerAddress(server: Server, max: number): void {
  const handlers = server.listeners("connection") as ((socket: Socket) => void)[];
  server.removeAllListeners("connection");
  const open = new Map<string, number>();
  const refusal = tooMany(max);
  server.on("connection", (socket: Socket) => {
    const address = addressOf(socket);
    const count = open.get(address) ?? 0;
    if (count >= max) {
      socket.on("error", () => {});
      socket.on("end", () => socket.destroy());
      socket.setTimeout(2_000, () => socket.destroy());
      socket.resume(); // what the client sends is discarded, so closing does not reset the answer
      socket.end(refusal);
      return;
    }
    open.set(address, count + 1);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
    for (const handle of handlers) handle.call(server, socket);
  });
}

/** Listens with `limits` (each defaulting as DEFAULT_LIMITS); rejects with the listen error. */
export function listenHttp(opts: ListenOptions): Promise<Listening> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const checkInterval = Math.max(10, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2)));
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: opts.fetch,
        hostname: opts.hostname,
        port: opts.port,
        serverOptions: {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: checkInterval,
        },
      },
      (address) =>
        resolve({
          server: server as Server,
          address,
          close: () =>
            new Promise<void>((done) => {
              (server as Server).close(() => done());
              (server as Server).closeIdleConnections();
            }),
        }),
    ) as Server;
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    limitConnectionsPerAddress(server, limits.maxConnectionsPerAddress);
    server.once("error", reject);
  });
}
