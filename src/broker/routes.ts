/**
 * The broker on HTTP. Each environment is its own issuer (`/env/<env>`):
 *
 *   GET  /.well-known/oauth-authorization-server/env/<env>   RFC 8414 metadata
 *   GET  /env/<env>/jwks                                     its signing keys (RFC 7517)
 *   POST /env/<env>/token                                    client_credentials, token exchange
 *   POST /env/<env>/introspect                               RFC 7662
 *   POST /env/<env>/revoke                                   RFC 7009
 *   POST /env/<env>/bc-authorize                             CIBA (poll mode), for approvals
 *   POST /env/<env>/use                                      a resource server spends one use
 *
 * Bodies are `application/x-www-form-urlencoded`, at most 64 KiB.
 */
import { Hono } from "hono";
import type { EnvironmentKeys } from "./keys.js";
import { authorizationServerMetadata, issuerFor } from "./metadata.js";
import type { BrokerService, OAuthRequest, OAuthResponse } from "./service.js";

const MAX_BODY = 64 * 1024;

export interface BrokerRouteOptions {
  readonly service: BrokerService;
  readonly keys: Pick<EnvironmentKeys, "jwks" | "activeKey">;
  readonly baseUrl: () => string;
}

function respond(r: OAuthResponse): Response {
  return new Response(JSON.stringify(r.body), {
    status: r.status,
    headers: { "content-type": "application/json", ...r.headers },
  });
}

function problem(status: number, title: string, detail: string): Response {
  return new Response(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });
}

async function readForm(req: Request): Promise<URLSearchParams | Response> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    return respond({
      status: 400,
      body: {
        error: "invalid_request",
        error_description: "the body must be application/x-www-form-urlencoded",
        reason: "content_type",
      },
    });
  }
  const length = Number(req.headers.get("content-length") ?? "0");
  if (length > MAX_BODY) {
    return respond({
      status: 413,
      body: {
        error: "invalid_request",
        error_description: "the body is too large",
        reason: "body_too_large",
      },
    });
  }
  const text = await req.text();
  if (text.length > MAX_BODY) {
    return respond({
      status: 413,
      body: {
        error: "invalid_request",
        error_description: "the body is too large",
        reason: "body_too_large",
      },
    });
  }
  const form = new URLSearchParams(text);
  for (const name of new Set(form.keys())) {
    if (form.getAll(name).length > 1) {
      return respond({
        status: 400,
        body: {
          error: "invalid_request",
          error_description: `parameter \`${name}\` is repeated`,
          reason: "repeated_parameter",
        },
      });
    }
  }
  return form;
}

function headersOf(req: Request): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  req.headers.forEach((value, name) => {
    out[name.toLowerCase()] = value;
  });
  return out;
}

export function brokerRoutes(opts: BrokerRouteOptions): Hono {
  const app = new Hono();
  const { service } = opts;
  const unknown = (env: string) => problem(404, "Not Found", `no environment \`${env}\` is declared`);

  app.get("/.well-known/oauth-authorization-server/env/:env", (c) => {
    const env = c.req.param("env");
    if (!service.knownEnv(env)) return unknown(env);
    const meta: Record<string, unknown> = { ...authorizationServerMetadata(issuerFor(opts.baseUrl(), env)) };
    if (!service.cibaEnabled()) {
      // without approvals there is no CIBA: advertise only what this server answers
      delete meta.backchannel_authentication_endpoint;
      delete meta.backchannel_token_delivery_modes_supported;
      delete meta.backchannel_user_code_parameter_supported;
      meta.grant_types_supported = (meta.grant_types_supported as string[]).filter(
        (g) => !g.includes("ciba"),
      );
    }
    return c.json(meta, 200, { "cache-control": "max-age=300" });
  });

  app.get("/env/:env/jwks", async (c) => {
    const env = c.req.param("env");
    if (!service.knownEnv(env)) return unknown(env);
    await opts.keys.activeKey(env); // an environment always publishes the key it will sign with
    return c.json(await opts.keys.jwks(env), 200, { "cache-control": "max-age=60" });
  });

  for (const [path, handler] of [
    ["token", service.token],
    ["introspect", service.introspect],
    ["revoke", service.revoke],
    ["bc-authorize", service.bcAuthorize],
    ["use", service.use],
  ] as const) {
    app.post(`/env/:env/${path}`, async (c) => {
      const env = c.req.param("env");
      if (!service.knownEnv(env)) return unknown(env);
      const form = await readForm(c.req.raw);
      if (form instanceof Response) return form;
      const req: OAuthRequest = { form, headers: headersOf(c.req.raw) };
      return respond(await handler(env, req));
    });
  }
  return app;
}
