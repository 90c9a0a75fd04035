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
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  type AccessTokenClaims,
  BoundTokenRefusal,
  type EnvironmentKeys,
  issuerFor,
  type ReplayCache,
  SIGNING_ALGORITHMS,
  verifyBoundToken,
} from "../broker/index.js";
import { q, type WritConfig } from "../core/index.js";
import { type Store, toActiveWrit } from "../store/index.js";
import { GatewayError } from "./errors.js";
import type { Gateway, GatewayIdentity } from "./gateway.js";
import { hasRoutingHeaders, routingMismatch } from "./headers.js";
import { sessionServer } from "./mcp.js";

const isInitialize = (body: unknown): boolean =>
  typeof body === "object" && body !== null && (body as { method?: unknown }).method === "initialize";

export const MCP_PATH = "/mcp";
/** The largest body a POST to `/mcp` may have: the MCP SDK's own limit (4 MiB). */
const MAX_BODY = 4 * 1024 * 1024;
export const RESOURCE_METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;
/** What the DPoP verifier accepts: the broker advertises the same list. */
const DPOP_ALGS = SIGNING_ALGORITHMS.join(" ");

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

class Unauthorized extends Error {
  constructor(
    readonly status: 401 | 403,
    readonly error: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The audience a token must name: writ.yaml's `gateway.resource`, else `<base>/mcp`. */
export function gatewayResource(config: WritConfig, baseUrl: string): string {
  return config.gateway?.resource ?? `${baseUrl}${MCP_PATH}`;
}

function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, "").slice(0, 300)}"`;
}

export function gatewayRoutes(opts: GatewayHttpOptions): Hono {
  const app = new Hono();
  const sessions = new Map<string, HttpSession>();
  const metadataUrl = () => `${opts.baseUrl()}${RESOURCE_METADATA_PATH}`;

  // each session's MCP server announces a changed tool list to its client
  const listChanged = new WeakMap<HttpSession, () => void>();
  opts.gateway.onToolsChanged(() => {
    for (const s of sessions.values()) listChanged.get(s)?.();
  });

  app.get(RESOURCE_METADATA_PATH, (c) => {
    const base = opts.baseUrl();
    return c.json({
      resource: gatewayResource(opts.config, base),
      authorization_servers: [...opts.config.environments.keys()].map((e) => issuerFor(base, e)),
      bearer_methods_supported: ["header"],
      dpop_bound_access_tokens_required: true,
      dpop_signing_alg_values_supported: DPOP_ALGS.split(" "),
      resource_name: "writ MCP gateway",
      resource_documentation: "https://github.com/writ-dev/writ/blob/main/docs/gateway.md",
    });
  });

  function challenge(err: Unauthorized): Response {
    const meta = `resource_metadata=${quoted(metadataUrl())}`;
    const header =
      err.error === "invalid_request" && err.reason === "token_missing"
        ? `Bearer ${meta}, DPoP algs=${quoted(DPOP_ALGS)}, ${meta}`
        : `DPoP error=${quoted(err.error)}, error_description=${quoted(err.message)}, algs=${quoted(DPOP_ALGS)}, ${meta}`;
    return new Response(
      JSON.stringify({ error: err.error, error_description: err.message, reason: err.reason }),
      {
        status: err.status,
        headers: {
          "content-type": "application/json",
          "www-authenticate": header,
          "cache-control": "no-store",
        },
      },
    );
  }

  /** The DPoP-bound token and its proof (`broker/bound-token.ts`), the environment named by its issuer. */
  async function authenticate(
    req: Request,
  ): Promise<{ claims: AccessTokenClaims; jkt: string; token: string }> {
    const base = opts.baseUrl();
    try {
      const { claims, jkt, token } = await verifyBoundToken(req.headers, {
        env: (iss) => {
          const env =
            typeof iss === "string" && iss.startsWith(`${base}/env/`)
              ? iss.slice(base.length + 5)
              : undefined;
          return env !== undefined && opts.config.environments.has(env) ? env : undefined;
        },
        issuer: (env) => issuerFor(base, env),
        audience: gatewayResource(opts.config, base),
        url: `${base}${new URL(req.url).pathname}`,
        method: req.method,
        keys: opts.keys,
        replay: opts.replay,
        clock: opts.clock,
      });
      return { claims, jkt, token };
    } catch (err) {
      if (err instanceof BoundTokenRefusal)
        throw new Unauthorized(err.status, err.error, err.reason, err.message);
      throw err;
    }
  }

  async function identityOf(claims: AccessTokenClaims, env: string): Promise<GatewayIdentity> {
    const agent = opts.config.agents.get(claims.client_id);
    if (!agent || !agent.environments.includes(env)) {
      throw new Unauthorized(
        403,
        "insufficient_scope",
        "unknown_agent",
        `agent ${q(claims.client_id)} may not use this gateway in ${q(env)}`,
      );
    }
    let writ: GatewayIdentity["writ"];
    if (claims.writ !== undefined) {
      const stored = await opts.store.writs.get(claims.writ);
      if (!stored || stored.agent !== agent.id || stored.environment !== env) {
        throw new Unauthorized(
          401,
          "invalid_token",
          "writ_not_found",
          `writ ${q(claims.writ)} is not this agent's`,
        );
      }
      if (stored.status !== "active") {
        throw new Unauthorized(401, "invalid_token", "writ_revoked", `writ ${q(claims.writ)} is revoked`);
      }
      writ = toActiveWrit(stored);
    }
    return {
      agent: agent.id,
      environment: env,
      writ,
      sponsor: claims.sub !== agent.id ? claims.sub : undefined,
      transport: "http",
    };
  }

  /**
   * A request without a session that is not `initialize`: MCP 2026-07-28 has no sessions, so it is
   * answered in a session of its own. Nothing is lost with it: taint belongs to the writ (or the
   * agent's baseline) and the prompt context, not to the session.
   */
  async function stateless(req: Request, identity: GatewayIdentity, authInfo: AuthInfo): Promise<Response> {
    let session: ReturnType<Gateway["openSession"]>;
    try {
      session = opts.gateway.openSession(identity);
    } catch (err) {
      if (err instanceof GatewayError) {
        return challenge(new Unauthorized(403, "access_denied", err.reason, err.message));
      }
      throw err;
    }
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    const server = sessionServer(opts.gateway, session.id, opts.version);
    try {
      await server.connect(transport);
      return await transport.handleRequest(req, { authInfo });
    } finally {
      opts.gateway.endSession(session.id, "stateless request answered");
      void server.close().catch(() => {});
    }
  }

  const limitBody = bodyLimit({
    maxSize: MAX_BODY,
    onError: (c) =>
      c.json(
        {
          error: "invalid_request",
          error_description: `the body is larger than ${MAX_BODY} bytes`,
          reason: "body_too_large",
        },
        413,
      ),
  });

  app.all(MCP_PATH, async (c) => {
    let req = c.req.raw;
    // a POST carries JSON-RPC: without its media type it is refused before anything else is read
    const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (req.method === "POST" && type !== "application/json") {
      return c.json(
        {
          error: "invalid_request",
          error_description: `content type ${q(type || "(none)")}: a POST to ${MCP_PATH} must be \`application/json\``,
          reason: "content_type",
        },
        415,
      );
    }
    let auth: Awaited<ReturnType<typeof authenticate>>;
    try {
      auth = await authenticate(req);
    } catch (err) {
      if (err instanceof Unauthorized) return challenge(err);
      throw err;
    }
    if (req.method === "POST") {
      // the body is read at most to the SDK's limit, chunked or not: then 413, and nothing more of it
      const tooLarge = await limitBody(c, async () => {});
      if (tooLarge) return tooLarge;
      req = c.req.raw;
    }
    const { claims, jkt, token } = auth;
    const env = new URL(claims.iss).pathname.split("/").pop()!;
    const authInfo: AuthInfo = {
      token,
      clientId: claims.client_id,
      scopes: claims.scope ? claims.scope.split(" ") : [],
      expiresAt: claims.exp,
      extra: { writ: claims.writ, environment: env },
    };
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
      return c.json(
        {
          jsonrpc: "2.0",
          error: {
            code: -32600,
            message: `header_mismatch: ${mismatch}`,
            data: { reason: "header_mismatch" },
          },
          id: null,
        },
        400,
      );
    }
    if (sid !== null) {
      const s = sessions.get(sid);
      if (!s || opts.gateway.session(sid) === undefined) {
        return c.json(
          { jsonrpc: "2.0", error: { code: -32001, message: "session not found or ended" }, id: null },
          404,
        );
      }
      if (s.agent !== claims.client_id || s.jkt !== jkt || s.writ !== claims.writ) {
        return challenge(
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
        return await s.transport.handleRequest(req, { authInfo });
      } finally {
        s.inflight -= 1;
        if (s.ended) closeWhenIdle(s);
      }
    }
    if (req.method !== "POST") {
      return c.json(
        { jsonrpc: "2.0", error: { code: -32000, message: "no session: initialize first" }, id: null },
        400,
      );
    }
    let identity: GatewayIdentity;
    try {
      identity = await identityOf(claims, env);
    } catch (err) {
      if (err instanceof Unauthorized) return challenge(err);
      throw err;
    }
    if (!isInitialize(body)) return stateless(req, identity, authInfo);
    let sessionId: string;
    let transport: WebStandardStreamableHTTPServerTransport;
    try {
      const session = opts.gateway.openSession(identity, () => {
        const entry = sessions.get(session.id);
        sessions.delete(session.id);
        if (entry !== undefined) closeWhenIdle(entry);
        else void transport?.close().catch(() => {});
      });
      sessionId = session.id;
    } catch (err) {
      if (err instanceof GatewayError) {
        return challenge(new Unauthorized(403, "access_denied", err.reason, err.message));
      }
      throw err;
    }
    transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => sessionId,
      enableJsonResponse: true,
    });
    const server = sessionServer(opts.gateway, sessionId, opts.version);
    const entry: HttpSession = {
      transport,
      agent: claims.client_id,
      jkt,
      writ: claims.writ,
      inflight: 0,
      ended: false,
    };
    sessions.set(sessionId, entry);
    listChanged.set(entry, () => void server.sendToolListChanged().catch(() => {}));
    transport.onclose = () => {
      sessions.delete(sessionId);
      opts.gateway.endSession(sessionId, "the client closed the session");
    };
    await server.connect(transport);
    const res = await transport.handleRequest(req, { authInfo });
    if (res.status >= 400) {
      // initialisation failed: nothing to keep
      sessions.delete(sessionId);
      opts.gateway.endSession(sessionId, "initialisation failed");
    }
    return res;
  });

  return app;
}
