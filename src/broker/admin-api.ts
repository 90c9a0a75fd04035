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

/**
 * What a request's input comes to: its value, or what is wrong with it, answered as an
 * `ERR_OPERATOR_INPUT` problem (400) by the route.
 */
type Input<T> = { readonly ok: true; readonly value: T } | Bad;
interface Bad {
  readonly ok: false;
  readonly detail: string;
}
const bad = (detail: string): Bad => ({ ok: false, detail });
const good = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });
/** The problem answering input that is not acceptable. */
const refused = (b: Bad): Response => problem({ status: 400, code: ERR_OPERATOR_INPUT, detail: b.detail });

const MAX_BODY = 64 * 1024;
const MAX_TEXT = 1000;

/** `value` when it is acceptable as `name` (free text when `multiline`), else what is wrong with it. */
function checked(name: string, value: string, multiline = false): Input<string> {
  const p = textProblem(value, { max: MAX_TEXT, multiline });
  return p ? bad(`${name} ${p.message}`) : good(value);
}

/** The member `name` of `body`: a non-empty string (free text for `reason`). */
function text(body: Record<string, unknown>, name: string): Input<string>;
function text(body: Record<string, unknown>, name: string, optional: true): Input<string | undefined>;
function text(body: Record<string, unknown>, name: string, optional = false): Input<string | undefined> {
  const v = body[name];
  if (v === undefined && optional) return good(undefined);
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_TEXT) {
    return bad(`\`${name}\` must be a non-empty string of at most ${MAX_TEXT} characters`);
  }
  return checked(`\`${name}\``, v, name === "reason");
}

function scopeOf(body: Record<string, unknown>): Input<KillScope> {
  const s = body.scope;
  if (typeof s !== "object" || s === null || Array.isArray(s)) return bad("`scope` must be an object");
  const scope = s as Record<string, unknown>;
  const named = <K extends string>(member: K, of: (v: string) => KillScope): Input<KillScope> => {
    const v = text(scope, member);
    return v.ok ? good(of(v.value)) : v;
  };
  switch (scope.kind) {
    case "agent":
      return named("agent", (agent) => ({ kind: "agent", agent }));
    case "class":
      return named("runnerClass", (runnerClass) => ({ kind: "class", runnerClass }));
    case "environment":
      return named("environment", (environment) => ({ kind: "environment", environment }));
    case "all":
      return good({ kind: "all" });
    default:
      return bad("`scope.kind` must be agent, class, environment or all");
  }
}

/** The request's body: a JSON object within the nesting and text limits. */
async function body(req: Request): Promise<Input<Record<string, unknown>>> {
  let value: unknown;
  try {
    value = await req.json();
  } catch {
    return bad("the request body is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return bad("the request body must be a JSON object");
  }
  const p = jsonProblem(value);
  if (p) return bad(`the request body${p.at === "" ? "" : ` at ${q(p.at)}`} ${p.message}`);
  return good(value as Record<string, unknown>);
}

/** The `env` query parameter, when given. */
function envParam(url: string): Input<string | undefined> {
  const env = new URL(url).searchParams.get("env");
  return env === null ? good(undefined) : checked("`env`", env);
}

/** A kill's or a lift's body: the scope, who, and (engaging) why; checked in that order. */
async function killInput(req: Request): Promise<Input<{ scope: KillScope; by: string; reason?: string }>> {
  const b = await body(req);
  if (!b.ok) return b;
  const scope = scopeOf(b.value);
  if (!scope.ok) return scope;
  const by = text(b.value, "by");
  if (!by.ok) return by;
  const reason = text(b.value, "reason", true);
  if (!reason.ok) return reason;
  return good({ scope: scope.value, by: by.value, reason: reason.value });
}

/** A rotation's body: the token lifetime, the algorithm, the environment and who; in that order. */
async function rotateInput(
  req: Request,
): Promise<Input<{ env: string; maxTokenTtlSeconds: number; by: string; alg: "EdDSA" | "ES256" }>> {
  const b = await body(req);
  if (!b.ok) return b;
  const ttl = b.value.maxTokenTtlSeconds;
  if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 0) {
    return bad("`maxTokenTtlSeconds` must be an integer ≥ 0");
  }
  const alg = b.value.alg ?? "EdDSA";
  if (alg !== "EdDSA" && alg !== "ES256") return bad("`alg` must be EdDSA or ES256");
  const env = text(b.value, "env");
  if (!env.ok) return env;
  const by = text(b.value, "by");
  if (!by.ok) return by;
  return good({ env: env.value, maxTokenTtlSeconds: ttl, by: by.value, alg });
}

/** A decision's body and the approval's id: the decision, the id, who, and why; in that order. */
async function decisionInput(
  req: Request,
  rawId: string,
): Promise<Input<{ id: string; approver: string; decision: "approve" | "deny"; reason?: string }>> {
  const b = await body(req);
  if (!b.ok) return b;
  const decision = b.value.decision;
  if (decision !== "approve" && decision !== "deny") return bad("`decision` must be approve or deny");
  const id = checked("the approval id", rawId);
  if (!id.ok) return id;
  const approver = text(b.value, "approver");
  if (!approver.ok) return approver;
  const reason = text(b.value, "reason", true);
  if (!reason.ok) return reason;
  return good({ id: id.value, approver: approver.value, decision, reason: reason.value });
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

  app.get("/admin/v1/kill", async (c) => c.json({ engaged: await ops.engagedKills() }));
  app.post("/admin/v1/kill", async (c) => {
    const k = await killInput(c.req.raw);
    if (!k.ok) return refused(k);
    return c.json(await ops.engageKill(k.value.scope, { by: k.value.by, reason: k.value.reason }));
  });
  app.post("/admin/v1/kill/lift", async (c) => {
    const k = await killInput(c.req.raw);
    if (!k.ok) return refused(k);
    return c.json(await ops.liftKill(k.value.scope, { by: k.value.by }));
  });
  app.get("/admin/v1/keys", async (c) => {
    const env = envParam(c.req.url);
    if (!env.ok) return refused(env);
    return c.json({ keys: await ops.listKeys(env.value) });
  });
  app.post("/admin/v1/keys/rotate", async (c) => {
    const r = await rotateInput(c.req.raw);
    if (!r.ok) return refused(r);
    const { env, ...opts } = r.value;
    return c.json(await ops.rotateKey(env, opts));
  });
  app.get("/admin/v1/approvals", async (c) => {
    const env = envParam(c.req.url);
    if (!env.ok) return refused(env);
    return c.json({ requests: await ops.pendingApprovals(env.value) });
  });
  app.post("/admin/v1/approvals/:id/decision", async (c) => {
    const d = await decisionInput(c.req.raw, c.req.param("id"));
    if (!d.ok) return refused(d);
    const { id, ...input } = d.value;
    return c.json(await ops.decideApproval(id, input));
  });

  // what the operation itself refuses (a kill that is not engaged, an approval already decided …)
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
