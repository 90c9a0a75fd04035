/**
 * The gateway over Streamable HTTP, on Hono: `/mcp` (the MCP endpoint) and its RFC 9728 protected
 * resource metadata. Every request carries a writ access token whose audience is this gateway,
 * bound by DPoP (RFC 9449): `Authorization: DPoP <token>` and a fresh `DPoP` proof with `ath`.
 * Anything else is answered 401 with `WWW-Authenticate` pointing at the metadata.
 *
 * An MCP session belongs to the token's agent, DPoP key and writ: a request for a session with
 * another identity is refused. A kill ends the session (its transport is closed) and the next
 * request for it gets 404.
 */
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  type AccessTokenClaims,
  type EnvironmentKeys,
  issuerFor,
  type ReplayCache,
} from "../broker/index.js";
import { q, type WritConfig } from "../core/index.js";
import { jsonRpcErrorBody, oauthError } from "../http/problem.js";
import type { Store } from "../store/index.js";
import { GatewayError } from "./errors.js";
import type { Gateway, GatewayIdentity } from "./gateway.js";
import { hasRoutingHeaders, routingMismatch } from "./headers.js";
import { authenticate, challenge, DPOP_ALGS, identityOf, Unauthorized } from "./http-auth.js";
import { sessionServer } from "./mcp.js";

const isInitialize = (body: unknown): boolean =>
  typeof body === "object" && body !== null && (body as { method?: unknown }).method === "initialize";

export const MCP_PATH = "/mcp";
/** The largest body a POST to `/mcp` may have: the MCP SDK's own limit (4 MiB). */
const MAX_BODY = 4 * 1024 * 1024;
export const RESOURCE_METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;

export interface GatewayHttpOptions {
  readonly gateway: Gateway;
  readonly config: WritConfig;
  readonly keys: Pick<EnvironmentKeys, "verificationKey">;
  readonly replay: ReplayCache;
  readonly store: Pick<Store, "writs">;
  /** The public base URL of the server (issuers are `<base>/env/<env>`). */
  readonly baseUrl: () => string;
  readonly version: string;
  readonly clock?: (() => Date) | undefined;
}

interface HttpSession {
  readonly transport: WebStandardStreamableHTTPServerTransport;
  readonly agent: string;
  readonly jkt: string;
  readonly writ: string | undefined;
  /** Requests being answered; an ended session's transport closes when this reaches 0. */
  inflight: number;
  ended: boolean;
}

/**
 * Ends a session's transport once nothing is in flight: closing it under a request would leave
 * that request unanswered (the client would wait for ever). New requests already get 404.
 */
function closeWhenIdle(entry: HttpSession): void {
  entry.ended = true;
  if (entry.inflight === 0) void entry.transport.close().catch(() => {});
}

/** The audience a token must name: writ.yaml's `gateway.resource`, else `<base>/mcp`. */
export function gatewayResource(config: WritConfig, baseUrl: string): string {
  return config.gateway?.resource ?? `${baseUrl}${MCP_PATH}`;
}

const jsonRpcError = (code: number, message: string, data?: Record<string, unknown>) =>
  jsonRpcErrorBody({ code, message, data });

/** An authenticated request to `/mcp`: its token's claims, DPoP key, environment and auth info. */
interface Authenticated {
  readonly claims: AccessTokenClaims;
  readonly jkt: string;
  readonly env: string;
  readonly authInfo: AuthInfo;
}

/** `/mcp`: the MCP sessions over Streamable HTTP, each bound to its token's agent, key and writ. */
class McpEndpoint {
  readonly #sessions = new Map<string, HttpSession>();
  // each session's MCP server announces a changed tool list to its client
  readonly #listChanged = new WeakMap<HttpSession, () => void>();
  readonly #o: GatewayHttpOptions;
  readonly #limitBody = bodyLimit({
    maxSize: MAX_BODY,
    onError: () =>
      oauthError({
        status: 413,
        error: "invalid_request",
        description: `the body is larger than ${MAX_BODY} bytes`,
        reason: "body_too_large",
      }),
  });

  constructor(o: GatewayHttpOptions) {
    this.#o = o;
    o.gateway.onToolsChanged(() => {
      for (const s of this.#sessions.values()) this.#listChanged.get(s)?.();
    });
  }

  metadata(): Record<string, unknown> {
    const base = this.#o.baseUrl();
    return {
      resource: gatewayResource(this.#o.config, base),
      authorization_servers: [...this.#o.config.environments.keys()].map((e) => issuerFor(base, e)),
      bearer_methods_supported: ["header"],
      dpop_bound_access_tokens_required: true,
      dpop_signing_alg_values_supported: DPOP_ALGS.split(" "),
      resource_name: "writ MCP gateway",
      resource_documentation: "https://github.com/writ-dev/writ/blob/main/docs/gateway.md",
    };
  }

  #challenge(err: Unauthorized): Response {
    return challenge(err, `${this.#o.baseUrl()}${RESOURCE_METADATA_PATH}`);
  }

  /** A refusal to open a session (a kill) as a 403 challenge. */
  #refusedSession(err: unknown): Response {
    if (err instanceof GatewayError) {
      return this.#challenge(new Unauthorized(403, "access_denied", err.reason, err.message));
    }
    throw err;
  }

  async handle(c: Context): Promise<Response> {
    let req = c.req.raw;
    // a POST carries JSON-RPC: without its media type it is refused before anything else is read
    const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (req.method === "POST" && type !== "application/json") {
      return oauthError({
        status: 415,
        error: "invalid_request",
        description: `content type ${q(type || "(none)")}: a POST to ${MCP_PATH} must be \`application/json\``,
        reason: "content_type",
      });
    }
    const auth = await this.#authenticate(req);
    if (auth instanceof Unauthorized) return this.#challenge(auth);
    if (req.method === "POST") {
      // the body is read at most to the SDK's limit, chunked or not: then 413, and nothing more of it
      const tooLarge = await this.#limitBody(c, async () => {});
      if (tooLarge) return tooLarge;
      req = c.req.raw;
    }
    const sid = req.headers.get("mcp-session-id");
    // the body is read here only when routing headers must agree with it, or there is no session
    const body =
      req.method === "POST" && (sid === null || hasRoutingHeaders(req.headers))
        ? await req
            .clone()
            .json()
            .catch(() => undefined)
        : undefined;
    const mismatch = routingMismatch(req.headers, body);
    if (mismatch !== undefined) {
      return c.json(jsonRpcError(-32600, `header_mismatch: ${mismatch}`, { reason: "header_mismatch" }), 400);
    }
    if (sid !== null) return this.#inSession(c, req, sid, auth);
    if (req.method !== "POST") return c.json(jsonRpcError(-32000, "no session: initialize first"), 400);
    const identity = await identityOf(this.#o, auth.claims, auth.env);
    if (identity instanceof Unauthorized) return this.#challenge(identity);
    if (!isInitialize(body)) return this.#stateless(req, identity, auth.authInfo);
    return this.#initialize(req, identity, auth);
  }

  async #authenticate(req: Request): Promise<Authenticated | Unauthorized> {
    const audience = gatewayResource(this.#o.config, this.#o.baseUrl());
    const bound = await authenticate(this.#o, audience, req);
    if (bound instanceof Unauthorized) return bound;
    const { claims, jkt, token } = bound;
    const env = new URL(claims.iss).pathname.split("/").pop()!;
    const authInfo: AuthInfo = {
      token,
      clientId: claims.client_id,
      scopes: claims.scope ? claims.scope.split(" ") : [],
      expiresAt: claims.exp,
      extra: { writ: claims.writ, environment: env },
    };
    return { claims, jkt, env, authInfo };
  }

  /** A request in a session: only the token's own agent, key and writ may use it. */
  async #inSession(c: Context, req: Request, sid: string, auth: Authenticated): Promise<Response> {
    const s = this.#sessions.get(sid);
    if (!s || this.#o.gateway.session(sid) === undefined) {
      return c.json(jsonRpcError(-32001, "session not found or ended"), 404);
    }
    if (s.agent !== auth.claims.client_id || s.jkt !== auth.jkt || s.writ !== auth.claims.writ) {
      return this.#challenge(
        new Unauthorized(
          403,
          "invalid_token",
          "session_mismatch",
          "this session belongs to another agent, key or writ",
        ),
      );
    }
    s.inflight += 1;
    try {
      return await s.transport.handleRequest(req, { authInfo: auth.authInfo });
    } finally {
      s.inflight -= 1;
      if (s.ended) closeWhenIdle(s);
    }
  }

  /**
   * A request without a session that is not `initialize`: MCP 2026-07-28 has no sessions, so it is
   * answered in a session of its own. Nothing is lost with it: taint belongs to the writ (or the
   * agent's baseline) and the prompt context, not to the session.
   */
  async #stateless(req: Request, identity: GatewayIdentity, authInfo: AuthInfo): Promise<Response> {
    const gateway = this.#o.gateway;
    let session: ReturnType<Gateway["openSession"]>;
    try {
      session = gateway.openSession(identity);
    } catch (err) {
      return this.#refusedSession(err);
    }
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    const server = sessionServer(gateway, session.id, this.#o.version);
    try {
      await server.connect(transport);
      return await transport.handleRequest(req, { authInfo });
    } finally {
      gateway.endSession(session.id, "stateless request answered");
      void server.close().catch(() => {});
    }
  }

  /** `initialize` without a session: a new session, kept until the client, a kill or the gateway ends it. */
  async #initialize(req: Request, identity: GatewayIdentity, auth: Authenticated): Promise<Response> {
    const gateway = this.#o.gateway;
    let sessionId: string;
    let transport: WebStandardStreamableHTTPServerTransport | undefined;
    try {
      const session = gateway.openSession(identity, () => {
        const entry = this.#sessions.get(session.id);
        this.#sessions.delete(session.id);
        if (entry !== undefined) closeWhenIdle(entry);
        else void transport?.close().catch(() => {});
      });
      sessionId = session.id;
    } catch (err) {
      return this.#refusedSession(err);
    }
    transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => sessionId,
      enableJsonResponse: true,
    });
    const server = sessionServer(gateway, sessionId, this.#o.version);
    const entry: HttpSession = {
      transport,
      agent: auth.claims.client_id,
      jkt: auth.jkt,
      writ: auth.claims.writ,
      inflight: 0,
      ended: false,
    };
    this.#sessions.set(sessionId, entry);
    this.#listChanged.set(entry, () => void server.sendToolListChanged().catch(() => {}));
    transport.onclose = () => {
      this.#sessions.delete(sessionId);
      gateway.endSession(sessionId, "the client closed the session");
    };
    await server.connect(transport);
    const res = await transport.handleRequest(req, { authInfo: auth.authInfo });
    if (res.status >= 400) {
      // initialisation failed: nothing to keep
      this.#sessions.delete(sessionId);
      gateway.endSession(sessionId, "initialisation failed");
    }
    return res;
  }
}

export function gatewayRoutes(opts: GatewayHttpOptions): Hono {
  const endpoint = new McpEndpoint(opts);
  const app = new Hono();
  app.get(RESOURCE_METADATA_PATH, (c) => c.json(endpoint.metadata()));
  app.all(MCP_PATH, (c) => endpoint.handle(c));
  return app;
}
