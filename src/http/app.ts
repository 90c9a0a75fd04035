/**
 * The HTTP app `writ serve` listens with: the parts' routes mounted on one Hono app, plus health
 * and RFC 9457 problem responses for everything else. No business logic lives here; what it adds
 * to every request:
 *
 *   - a declared body over `maxBodyBytes` (4 MiB: the largest any part reads) is refused at once
 *     (413 `body_too_large`); each part refuses less on its own, and stops reading at its limit;
 *   - when a body was refused or left unread (413, or a chunked or large body a handler answered
 *     without reading), the answer carries `Connection: close`, so the server does not read the rest
 *     of it to keep the connection alive;
 *   - every 5xx writes one JSON line with its cause to the log (log.ts);
 *   - a value the store refuses (`ERR_VALUE_UNSTORABLE`) that no part caught is a 400
 *     `value_unstorable`, not a 500.
 */
import { type Context, Hono } from "hono";
import { failureLine, type LogSink, stderrSink } from "./log.js";

export interface HttpParts {
  /** The decision point's AuthZEN routes. */
  readonly authzen: Hono;
  /** The broker's OAuth routes. */
  readonly broker: Hono;
  /** The MCP gateway's endpoint and its protected resource metadata, when configured. */
  readonly gateway?: Hono | undefined;
  /** Readiness: resolves when the store answers. */
  readonly ready: () => Promise<boolean>;
  readonly version: string;
  /** Where the line for a failed request goes (default: stderr). */
  readonly log?: LogSink | undefined;
  /** Largest declared body accepted by any route, in bytes (default 4 MiB). */
  readonly maxBodyBytes?: number | undefined;
}

/** A body a handler left unread that the server may still read to keep the connection (64 KiB). */
const DRAINABLE = 64 * 1024;

/** Marks the answer as the last on its connection. */
function closeAfter(c: Context): void {
  try {
    c.res.headers.set("connection", "close");
  } catch {
    // an immutable answer (one fetched from elsewhere): copy it
    const copy = new Response(c.res.body, c.res);
    copy.headers.set("connection", "close");
    c.res = copy;
  }
}

function problem(status: number, title: string, detail: string, reason?: string): Response {
  const type = reason === undefined ? "about:blank" : `urn:writ:problem:${reason}`;
  const body = { type, title, status, detail, ...(reason === undefined ? {} : { reason }) };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

export function httpApp(parts: HttpParts): Hono {
  const app = new Hono();
  const log = parts.log ?? stderrSink;
  // every 5xx leaves its cause in the log: the error a handler threw (or a part's own error
  // handler answered for), never the request's headers or body
  app.use(async (c, next) => {
    await next();
    if (c.res.status === 500 || (c.res.status > 500 && c.error !== undefined)) {
      log(
        failureLine({
          method: c.req.method,
          path: new URL(c.req.url).pathname,
          status: c.res.status,
          requestId: c.req.header("x-request-id"),
          error: c.error,
        }),
      );
    }
  });
  const maxBody = parts.maxBodyBytes ?? 4 * 1024 * 1024;
  app.use(async (c, next) => {
    const chunked = c.req.header("transfer-encoding") !== undefined;
    const length = Number(c.req.header("content-length") ?? "0");
    if (length > maxBody) {
      c.res = problem(413, "Content Too Large", `the body is larger than ${maxBody} bytes`, "body_too_large");
    } else {
      await next();
    }
    const unread = (chunked || length > DRAINABLE) && !c.req.raw.bodyUsed;
    if (c.res.status === 413 || unread) closeAfter(c);
  });
  app.get("/healthz", async () => {
    const ok = await parts.ready().catch(() => false);
    return Response.json(
      { status: ok ? "ok" : "unavailable", version: parts.version },
      { status: ok ? 200 : 503 },
    );
  });
  app.route("/", parts.authzen);
  app.route("/", parts.broker);
  if (parts.gateway) app.route("/", parts.gateway);
  app.notFound((c) =>
    problem(404, "Not Found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
  );
  app.onError((err) => {
    // the store's defence behind the parts' own checks: a value the database cannot hold is the
    // caller's input (the code is the store's ERR_VALUE_UNSTORABLE), not a failure of the server
    if ((err as { code?: unknown }).code === "ERR_VALUE_UNSTORABLE") {
      return problem(
        400,
        "Bad Request",
        "the request holds a value the store cannot keep",
        "value_unstorable",
      );
    }
    return problem(500, "Internal Server Error", "the request failed; the server log has the details");
  });
  return app;
}
