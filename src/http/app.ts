/**
 * The HTTP app `writ serve` listens with: the parts' routes mounted on one Hono app, plus health
 * and RFC 9457 problem responses for everything else. No business logic lives here.
 */
import { Hono } from "hono";

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
}

function problem(status: number, title: string, detail: string): Response {
  return new Response(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

export function httpApp(parts: HttpParts): Hono {
  const app = new Hono();
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
  app.onError(() =>
    problem(500, "Internal Server Error", "the request failed; the server log has the details"),
  );
  return app;
}
