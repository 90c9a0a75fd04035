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
 * Bodies are `application/x-www-form-urlencoded`, at most 64 KiB: a larger declared length is
 * refused before reading, and a chunked body is read no further than the limit (413). Every
 * parameter the broker reads is checked here, at the edge, before anything reaches the store: no
 * control characters, at most its length (docs/broker.md#limits); `authorization_details` is JSON
 * nested at most 32 levels, without NUL or lone surrogates, and its `ticket` at most 2,000
 * characters (what the store keeps).
 */
import { Hono } from "hono";
import { jsonProblem, q, type TextRules, textProblem } from "../core/index.js";
import { oauthError, problem } from "../http/problem.js";
import type { EnvironmentKeys } from "./keys.js";
import { authorizationServerMetadata, issuerFor } from "./metadata.js";
import type { BrokerService, OAuthRequest, OAuthResponse } from "./service.js";

const MAX_BODY = 64 * 1024;

/** The longest ticket and audience (`resource`) a writ can carry: what the store keeps. */
const MAX_TICKET_LENGTH = 2000;
const MAX_RESOURCE_LENGTH = 2000;
const TOKEN: TextRules = { max: 32 * 1024 };
const NAME: TextRules = { max: 256 };

/** The parameters the broker reads, and what each may hold. Others are ignored (RFC 6749 §3.1). */
const FORM_PARAMETERS: Readonly<Record<string, TextRules>> = {
  grant_type: NAME,
  client_id: NAME,
  client_secret: NAME,
  client_assertion_type: NAME,
  client_assertion: TOKEN,
  subject_token_type: NAME,
  subject_token: TOKEN,
  actor_token_type: NAME,
  actor_token: TOKEN,
  token: TOKEN,
  token_type_hint: NAME,
  resource: { max: MAX_RESOURCE_LENGTH },
  authorization_details: { max: 32 * 1024, multiline: true },
  login_hint: { max: 1000 },
  auth_req_id: NAME,
};

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

const tooLarge = () =>
  oauthError({
    status: 413,
    error: "invalid_request",
    description: `the body is larger than ${MAX_BODY} bytes`,
    reason: "body_too_large",
  });

/**
 * The body as text, at most `MAX_BODY` bytes; undefined when it is larger. A body of declared
 * length is read at once (the Node server's direct path, no web stream in between); a chunked one
 * is read until it passes the limit, and no further.
 */
async function readBody(req: Request): Promise<string | undefined> {
  const length = req.headers.get("content-length");
  if (length !== null && !req.headers.has("transfer-encoding")) {
    if (!/^\d+$/.test(length) || Number(length) > MAX_BODY) return undefined;
    return req.text();
  }
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function readForm(req: Request): Promise<URLSearchParams | Response> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    return oauthError({
      status: 400,
      error: "invalid_request",
      description: "the body must be application/x-www-form-urlencoded",
      reason: "content_type",
    });
  }
  const text = await readBody(req);
  if (text === undefined) return tooLarge();
  const form = new URLSearchParams(text);
  for (const name of new Set(form.keys())) {
    if (form.getAll(name).length > 1) {
      return oauthError({
        status: 400,
        error: "invalid_request",
        description: `parameter \`${name}\` is repeated`,
        reason: "repeated_parameter",
      });
    }
  }
  const bad = formProblem(form);
  if (bad) {
    return oauthError({
      status: 400,
      error: "invalid_request",
      description: bad.message,
      reason: bad.reason,
    });
  }
  return form;
}

/** The first parameter that breaks its rules, with the reason to answer. */
function formProblem(
  form: URLSearchParams,
): { reason: "parameter_invalid" | "parameter_too_long"; message: string } | undefined {
  for (const [name, value] of form) {
    const rules = FORM_PARAMETERS[name];
    if (rules === undefined) continue;
    const p = textProblem(value, rules);
    if (p)
      return {
        reason: p.kind === "too_long" ? "parameter_too_long" : "parameter_invalid",
        message: `\`${name}\` ${p.message}`,
      };
  }
  const details = form.get("authorization_details");
  if (details === null) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(details);
  } catch {
    return undefined; // not JSON: the intent checks answer `intent_malformed`
  }
  const p = jsonProblem(parsed);
  if (p) {
    return {
      reason: "parameter_invalid",
      message: `\`authorization_details\`${p.at === "" ? "" : ` at ${q(p.at)}`} ${p.message}`,
    };
  }
  const intent = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
  for (const [field, rules] of [
    ["ticket", { max: MAX_TICKET_LENGTH }],
    ["playbook", NAME],
    ["environment", NAME],
  ] as const) {
    const v = typeof intent === "object" && intent !== null ? intent[field] : undefined;
    const bad = typeof v === "string" ? textProblem(v, rules) : undefined;
    if (bad) {
      return {
        reason: bad.kind === "too_long" ? "parameter_too_long" : "parameter_invalid",
        message: `the intent's \`${field}\` ${bad.message}`,
      };
    }
  }
  return undefined;
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
  const unknown = (env: string) => problem({ status: 404, detail: `no environment ${q(env)} is declared` });

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
      // a body declared too large is refused before anything else is looked at
      const declared = c.req.raw.headers.get("content-length");
      if (declared !== null && Number(declared) > MAX_BODY) return tooLarge();
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
