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
 *   - one log line per request, and for every 5xx a second with its error and stack (log.ts);
 *   - the request's route, status and duration to the metrics, when given (`observe`);
 *   - a value the store refuses (`ERR_VALUE_UNSTORABLE`) that no part caught is a 400
 *     `value_unstorable`, not a 500.
 */
import { type Context, Hono } from "hono";
import { failureFields, type Logger, logPath, type RequestContext, type RequestFields } from "./log.js";
import { problem } from "./problem.js";

/** A request as the metrics see it: a bounded route name, never the path. */
export interface ObservedRequest {
  readonly route: string;
  readonly method: string;
  readonly status: number;
  readonly seconds: number;
}

/** Readiness: every check's state, and the first failing one's reason. */
export interface Readiness {
  readonly ready: boolean;
  /** Per check: `ok`, or why not. */
  readonly checks: Readonly<Record<string, string>>;
  /** The first failing check's reason code (`store_unreachable`, `migrations_pending`, `keys_unavailable`). */
  readonly reason?: string | undefined;
  readonly detail?: string | undefined;
}

export interface HttpParts {
  /** The decision point's AuthZEN routes. */
  readonly authzen: Hono;
  /** The broker's OAuth routes. */
  readonly broker: Hono;
  /** The MCP gateway's endpoint and its protected resource metadata, when configured. */
  readonly gateway?: Hono | undefined;
  /** The web console under `/console` (and `/` redirecting to it). */
  readonly console?: Hono | undefined;
  /** Readiness: resolves when the store answers. */
  readonly ready: () => Promise<boolean>;
  /** `/readyz`: the store reachable, the keys loaded, the migrations current (default: `ready`). */
  readonly readiness?: (() => Promise<Readiness>) | undefined;
  readonly version: string;
  /** The request and failure lines (default: none are written). */
  readonly logger?: Logger | undefined;
  /** Per-request fields the parts report (agent, writ, reason); created here when not given. */
  readonly requests?: RequestContext | undefined;
  /** Called once per request, after the answer is made: the metrics. */
  readonly observe?: ((r: ObservedRequest) => void) | undefined;
  /** `GET /metrics`, mounted as given (it guards itself). */
  readonly metrics?: Hono | undefined;
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

export function httpApp(parts: HttpParts): Hono {
  const app = new Hono();
  const logger = parts.logger;
  const requests = parts.requests;
  // one line per request, and every 5xx leaves its cause: the error a handler threw (or a part's
  // own error handler answered for), never the request's headers or body
  app.use(async (c, next) => {
    const started = performance.now();
    const fields: RequestFields = {};
    if (requests) await requests.run(fields, () => next());
    else await next();
    const status = c.res.status;
    const seconds = (performance.now() - started) / 1000;
    const path = logPath(c.req.url);
    const route = routeOf(path);
    parts.observe?.({ route, method: c.req.method, status, seconds });
    if (logger === undefined) return;
    // probes and scrapes answered as expected are routine: at debug, not one line every few seconds
    const routine = (route === "health" || route === "metrics") && status < 400;
    const level = status >= 500 ? "error" : routine ? "debug" : "info";
    // a line the logger's level drops is not built (nor the refusal's body read for its reason)
    if (!logger.isLevelEnabled(level)) return;
    if (status >= 400 && fields.reason === undefined) {
      const reason = await reasonOf(c.res);
      if (reason !== undefined) fields.reason = reason;
    }
    const requestId = c.req.header("x-request-id");
    logger[level]({
      event: "http.request",
      method: c.req.method,
      path,
      status,
      durationMs: Math.round(seconds * 100_000) / 100,
      ...fields,
      ...(requestId === undefined ? {} : { requestId: requestId.slice(0, 200) }),
    });
    if (status === 500 || (status > 500 && c.error !== undefined)) {
      logger.error(failureFields({ method: c.req.method, path, status, requestId, error: c.error }));
    }
  });
  const maxBody = parts.maxBodyBytes ?? 4 * 1024 * 1024;
  app.use(async (c, next) => {
    const chunked = c.req.header("transfer-encoding") !== undefined;
    const length = Number(c.req.header("content-length") ?? "0");
    if (length > maxBody) {
      c.res = problem({
        status: 413,
        reason: "body_too_large",
        detail: `the body is larger than ${maxBody} bytes`,
      });
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
  app.get("/livez", () =>
    Response.json({ status: "ok", version: parts.version }, { headers: { "cache-control": "no-store" } }),
  );
  app.get("/readyz", async () => {
    const r = parts.readiness
      ? await parts.readiness().catch(
          (err: unknown): Readiness => ({
            ready: false,
            checks: { store: "failed" },
            reason: "store_unreachable",
            detail: err instanceof Error ? err.message.slice(0, 300) : "the readiness check failed",
          }),
        )
      : { ready: await parts.ready().catch(() => false), checks: {} };
    const body = {
      status: r.ready ? "ok" : "unavailable",
      version: parts.version,
      checks: r.checks,
      ...(r.ready ? {} : { reason: r.reason, detail: r.detail }),
    };
    return Response.json(body, { status: r.ready ? 200 : 503, headers: { "cache-control": "no-store" } });
  });
  if (parts.metrics) app.route("/", parts.metrics);
  app.route("/", parts.authzen);
  app.route("/", parts.broker);
  if (parts.gateway) app.route("/", parts.gateway);
  if (parts.console) app.route("/", parts.console);
  app.notFound((c) =>
    problem({ status: 404, detail: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }),
  );
  app.onError((err) => {
    // the store's defence behind the parts' own checks: a value the database cannot hold is the
    // caller's input (the code is the store's ERR_VALUE_UNSTORABLE), not a failure of the server
    if ((err as { code?: unknown }).code === "ERR_VALUE_UNSTORABLE") {
      return problem({
        status: 400,
        reason: "value_unstorable",
        detail: "the request holds a value the store cannot keep",
      });
    }
    return problem({ status: 500, detail: "the request failed; the server log has the details" });
  });
  return app;
}

/** A bounded name for the metrics: which endpoint a path is, never the path itself. */
export function routeOf(path: string): string {
  if (path.startsWith("/access/v1/")) return "decision";
  if (path === "/mcp") return "gateway";
  const env = /^\/env\/[^/]+\/(token|introspect|revoke|bc-authorize|use|jwks|downstream)(?:\/|$)/.exec(path);
  if (env) return env[1] === "jwks" ? "metadata" : env[1]!;
  if (path.startsWith("/.well-known/")) return "metadata";
  if (path === "/approvals" || path.startsWith("/approvals/")) return "approvals";
  if (path.startsWith("/admin/")) return "admin";
  if (path === "/livez" || path === "/readyz" || path === "/healthz") return "health";
  if (path === "/metrics") return "metrics";
  return "other";
}

/** The refusal's reason code from a JSON error body (`reason`, else `code`); bounded, never thrown. */
async function reasonOf(res: Response): Promise<string | undefined> {
  const type = res.headers.get("content-type") ?? "";
  const length = Number(res.headers.get("content-length") ?? "0");
  if (!type.includes("json") || length > 16 * 1024 || res.body === null) return undefined;
  try {
    const body = (await res.clone().json()) as { reason?: unknown; code?: unknown; error?: unknown };
    const reason = body.reason ?? body.code ?? body.error;
    return typeof reason === "string" && /^[A-Za-z0-9_.:-]{1,100}$/.test(reason) ? reason : undefined;
  } catch {
    return undefined;
  }
}
