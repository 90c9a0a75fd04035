/**
 * The operator's channel to a running `writ serve`: the `Operator` calls over HTTP, under
 * `/admin/v1`, for the CLI to use when it cannot open the store itself (the server holds the
 * embedded store's lock). Authenticated by the admin token, a random secret `writ serve` writes to
 * `<data>/serve.json` (mode 0600) — so whoever can read the data folder, and nobody else, is an
 * operator, exactly as with direct store access. Compared in constant time; never logged.
 *
 *   GET  /admin/v1/kill                    engaged kills
 *   POST /admin/v1/kill                    { scope, by, reason? }       → EngageResult
 *   POST /admin/v1/kill/lift               { scope, by }                → { lifted }
 *   GET  /admin/v1/keys[?env=E]            key list
 *   POST /admin/v1/keys/rotate             { env, maxTokenTtlSeconds, by, alg? } → RotationReport
 *   GET  /admin/v1/approvals[?env=E]       pending requests
 *   POST /admin/v1/approvals/:id/decision  { approver, decision, reason? } → DecideResult
 *
 * Refusals are RFC 9457 problems carrying the library's error `code`; the remote client turns
 * them back into the same `WritError`s a local call throws. What the caller sends is checked before
 * it reaches the store: ids and names without control characters and at most 1000 characters (a
 * `reason` may hold line breaks), JSON nested at most 32 levels, a body of at most 64 KiB (reading
 * stops there: 413); anything else is `ERR_OPERATOR_INPUT` (400).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { isWritError, jsonProblem, q, textProblem, WritError } from "../core/index.js";
import type { WritErrorCode } from "../error-codes.js";
import { challenge, problem } from "../http/problem.js";
import type { KillScope } from "./kill.js";
import { ERR_OPERATOR_INPUT, type Operator } from "./operator.js";

export const ERR_ADMIN_UNREACHABLE = "ERR_ADMIN_UNREACHABLE";
export const ERR_ADMIN_REFUSED = "ERR_ADMIN_REFUSED";

/** Refusals a caller can act on, by code prefix or code, and their HTTP status. */
function statusOf(code: string): number {
  if (
    code === ERR_OPERATOR_INPUT ||
    code === "ERR_KILL_SCOPE" ||
    code === "ERR_APPROVAL_INVALID" ||
    code === "ERR_VALUE_UNSTORABLE"
  )
    return 400;
  if (code === "ERR_APPROVAL_NOT_FOUND") return 404;
  if (code.startsWith("ERR_KILL") || code.startsWith("ERR_APPROVAL")) return 409;
  return 500;
}

const bad = (detail: string) => new WritError(ERR_OPERATOR_INPUT, detail);
const MAX_BODY = 64 * 1024;
const MAX_TEXT = 1000;

/** `value` when it is acceptable as `name` (free text when `multiline`), else a coded refusal. */
function checked(name: string, value: string, multiline = false): string {
  const p = textProblem(value, { max: MAX_TEXT, multiline });
  if (p) throw bad(`${name} ${p.message}`);
  return value;
}

function text(body: Record<string, unknown>, name: string, optional = false): string | undefined {
  const v = body[name];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_TEXT) {
    throw bad(`\`${name}\` must be a non-empty string of at most ${MAX_TEXT} characters`);
  }
  return checked(`\`${name}\``, v, name === "reason");
}

function scopeOf(body: Record<string, unknown>): KillScope {
  const s = body.scope;
  if (typeof s !== "object" || s === null || Array.isArray(s)) throw bad("`scope` must be an object");
  const scope = s as Record<string, unknown>;
  switch (scope.kind) {
    case "agent":
      return { kind: "agent", agent: text(scope, "agent")! };
    case "class":
      return { kind: "class", runnerClass: text(scope, "runnerClass")! };
    case "environment":
      return { kind: "environment", environment: text(scope, "environment")! };
    case "all":
      return { kind: "all" };
    default:
      throw bad("`scope.kind` must be agent, class, environment or all");
  }
}

export function adminApi(ops: Operator, token: string): Hono {
  if (token.length < 32) throw new TypeError("the admin token must be at least 32 characters");
  const digest = (s: string) => createHash("sha256").update(s).digest();
  const expected = digest(token);
  const app = new Hono();

  app.use("/admin/*", async (c, next) => {
    const given = /^Bearer ([\x21-\x7e]+)$/.exec(c.req.header("authorization") ?? "")?.[1];
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      return problem({
        status: 401,
        code: "ERR_ADMIN_TOKEN",
        detail: "the admin API needs the admin token of this server",
        headers: { "www-authenticate": challenge("Bearer", { realm: "writ-admin" }) },
      });
    }
    await next();
  });
  // reading stops at the limit: a chunked body is not read to its end before it is refused
  app.use(
    "/admin/*",
    bodyLimit({
      maxSize: MAX_BODY,
      onError: () =>
        problem({
          status: 413,
          code: ERR_OPERATOR_INPUT,
          detail: `the body is larger than ${MAX_BODY} bytes`,
        }),
    }),
  );

  const body = async (req: Request): Promise<Record<string, unknown>> => {
    let value: unknown;
    try {
      value = await req.json();
    } catch {
      throw bad("the request body is not JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw bad("the request body must be a JSON object");
    }
    const p = jsonProblem(value);
    if (p) throw bad(`the request body${p.at === "" ? "" : ` at ${q(p.at)}`} ${p.message}`);
    return value as Record<string, unknown>;
  };
  const envParam = (url: string): string | undefined => {
    const env = new URL(url).searchParams.get("env");
    return env === null ? undefined : checked("`env`", env);
  };

  app.get("/admin/v1/kill", async (c) => c.json({ engaged: await ops.engagedKills() }));
  app.post("/admin/v1/kill", async (c) => {
    const b = await body(c.req.raw);
    return c.json(await ops.engageKill(scopeOf(b), { by: text(b, "by")!, reason: text(b, "reason", true) }));
  });
  app.post("/admin/v1/kill/lift", async (c) => {
    const b = await body(c.req.raw);
    return c.json(await ops.liftKill(scopeOf(b), { by: text(b, "by")! }));
  });
  app.get("/admin/v1/keys", async (c) => c.json({ keys: await ops.listKeys(envParam(c.req.url)) }));
  app.post("/admin/v1/keys/rotate", async (c) => {
    const b = await body(c.req.raw);
    const ttl = b.maxTokenTtlSeconds;
    if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 0) {
      throw bad("`maxTokenTtlSeconds` must be an integer ≥ 0");
    }
    const alg = b.alg ?? "EdDSA";
    if (alg !== "EdDSA" && alg !== "ES256") throw bad("`alg` must be EdDSA or ES256");
    return c.json(await ops.rotateKey(text(b, "env")!, { maxTokenTtlSeconds: ttl, by: text(b, "by")!, alg }));
  });
  app.get("/admin/v1/approvals", async (c) =>
    c.json({ requests: await ops.pendingApprovals(envParam(c.req.url)) }),
  );
  app.post("/admin/v1/approvals/:id/decision", async (c) => {
    const b = await body(c.req.raw);
    const decision = b.decision;
    if (decision !== "approve" && decision !== "deny") throw bad("`decision` must be approve or deny");
    return c.json(
      await ops.decideApproval(checked("the approval id", c.req.param("id")), {
        approver: text(b, "approver")!,
        decision,
        reason: text(b, "reason", true),
      }),
    );
  });

  app.onError((err) => {
    if (isWritError(err)) {
      const status = statusOf(err.code);
      if (status < 500) return problem({ status, code: err.code, detail: err.message });
    }
    return problem({
      status: 500,
      code: "ERR_ADMIN_FAILED",
      detail: "the operation failed; the server log has the details",
    });
  });
  return app;
}

/** Names of the JSON members that hold instants; revived as `Date`s. */
const INSTANTS = new Set([
  "engagedAt",
  "expiresAt",
  "createdAt",
  "signUntil",
  "publishUntil",
  "retiredAt",
  "at",
  "liftedAt",
]);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function revive(key: string, value: unknown): unknown {
  return INSTANTS.has(key) && typeof value === "string" && ISO.test(value) ? new Date(value) : value;
}

/** An `Operator` that calls a running server's admin API. */
export function remoteOperator(baseUrl: string, token: string, fetchImpl: typeof fetch = fetch): Operator {
  const call = async <T>(method: "GET" | "POST", path: string, payload?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetchImpl(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new WritError(
        ERR_ADMIN_UNREACHABLE,
        `the running writ serve at ${baseUrl} did not answer (${err instanceof Error ? err.message : String(err)})`,
        { cause: err },
      );
    }
    const raw = await res.text();
    let value: unknown;
    try {
      value = JSON.parse(raw, revive);
    } catch {
      throw new WritError(
        ERR_ADMIN_REFUSED,
        `${baseUrl}${path} answered ${res.status} with something that is not JSON`,
      );
    }
    if (!res.ok) {
      const p = (value ?? {}) as { code?: unknown; detail?: unknown };
      // a code the running writ serve answered: one of the same union, as the CLI is the same writ
      const code =
        typeof p.code === "string" && /^ERR_[A-Z0-9_]+$/.test(p.code)
          ? (p.code as WritErrorCode)
          : ERR_ADMIN_REFUSED;
      const detail = typeof p.detail === "string" ? p.detail : `answered ${res.status}`;
      throw new WritError(code, detail);
    }
    return value as T;
  };
  const query = (env: string | undefined) => (env === undefined ? "" : `?env=${encodeURIComponent(env)}`);
  return {
    engageKill: (scope, opts) => call("POST", "/admin/v1/kill", { scope, by: opts.by, reason: opts.reason }),
    liftKill: (scope, opts) => call("POST", "/admin/v1/kill/lift", { scope, by: opts.by }),
    engagedKills: async () => (await call<{ engaged: never[] }>("GET", "/admin/v1/kill")).engaged,
    rotateKey: (env, opts) =>
      call("POST", "/admin/v1/keys/rotate", {
        env,
        maxTokenTtlSeconds: opts.maxTokenTtlSeconds,
        by: opts.by,
        ...(opts.alg !== undefined ? { alg: opts.alg } : {}),
      }),
    listKeys: async (env) => (await call<{ keys: never[] }>("GET", `/admin/v1/keys${query(env)}`)).keys,
    decideApproval: (id, input) =>
      call("POST", `/admin/v1/approvals/${encodeURIComponent(id)}/decision`, {
        approver: input.approver,
        decision: input.decision,
        reason: input.reason,
      }),
    pendingApprovals: async (env) =>
      (await call<{ requests: never[] }>("GET", `/admin/v1/approvals${query(env)}`)).requests,
  };
}
