/**
 * OpenID AuthZEN Authorization API 1.0 in front of the decision point, as a Hono sub-app:
 *
 *   GET  /.well-known/authzen-configuration   PDP metadata (§9)
 *   POST /access/v1/evaluation                one decision (§6)
 *   POST /access/v1/evaluations               several, with defaults and a semantic (§7)
 *
 * Mapping: `subject {type: "agent", id}`, `action {name: "aws:s3:GetObject"}`, `resource {type, id}`
 * (the id is the resource string; the type is not used), `context {environment, ticket, writ_id,
 * tainted, arguments, prompt_context_id}`. The time is the server's clock, never the caller's. The
 * response is `{decision, context: {reason_code, message, reasons, shadow?}}` (`shadow`: what rules in
 * shadow mode would have denied); the spec leaves the decision context's shape to the PDP.
 *
 * A body that is not the JSON the spec describes gets a 400 `application/problem+json` (RFC 9457)
 * naming what is wrong. Before anything reaches the decision point or the store: the body is nested
 * at most 32 levels and holds no NUL or lone surrogate anywhere (`nesting_too_deep`,
 * `value_invalid`), and each identifier (`subject.id`, `action.name`, `resource.id`, the context's
 * strings) has no control character and a length limit (`value_invalid`, `value_too_long`). A subject that is not an agent is a well-formed request writ cannot allow:
 * `decision: false`. Every decision is handed to `onDecision` before it is returned; if that fails
 * the caller gets a 500, never an unrecorded decision.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  type Decision,
  isWritError,
  jsonProblem,
  q,
  type TextRules,
  textProblem,
  WritError,
} from "../core/index.js";
import { challenge, problemBody, problemHeaders } from "../http/problem.js";
import type { PdpErrorCode } from "./codes.js";
import type { PdpContext, PdpRequest } from "./request.js";

/** The smallest thing the routes need: something that decides. */
export interface Decider {
  decide(req: PdpRequest): Promise<Decision>;
}

export interface AuthzenRecord {
  readonly kind: "pdp-decision";
  readonly source: "authzen";
  /** The caller's `X-Request-ID`, when it sent one. */
  readonly requestId?: string | undefined;
  readonly request: PdpRequest;
  readonly decision: Decision;
}

export interface AuthzenOptions {
  /** When set, callers must send `Authorization: Bearer <token>`. */
  readonly token?: string | undefined;
  /**
   * The PDP identifier published in the metadata (an https URL), or a function giving it (a URL set
   * once the server listens). Required: the metadata never reflects the request's `Host` header,
   * which any client sets.
   */
  readonly baseUrl: string | (() => string);
  /** The server clock; default `new Date()`. */
  readonly clock?: (() => Date) | undefined;
  /** Called with every decision before it is returned (the audit log). */
  readonly onDecision?: ((record: AuthzenRecord) => void | Promise<void>) | undefined;
  /** Largest request body accepted, in bytes; default 1 MiB. */
  readonly maxBodyBytes?: number | undefined;
  /** Most evaluations in one batch; default 256. */
  readonly maxEvaluations?: number | undefined;
}

export const EVALUATION_PATH = "/access/v1/evaluation";
export const EVALUATIONS_PATH = "/access/v1/evaluations";
export const METADATA_PATH = "/.well-known/authzen-configuration";

const SEMANTICS = ["execute_all", "deny_on_first_deny", "permit_on_first_permit"] as const;
type Semantic = (typeof SEMANTICS)[number];

const TITLES: Record<string, string> = {
  invalid_json: "Request body is not JSON",
  invalid_request: "Request does not follow the Authorization API",
  unsupported_media_type: "Request body must be application/json",
  payload_too_large: "Request body is too large",
  value_invalid: "Request holds a character writ does not accept",
  value_too_long: "Request holds a value longer than its limit",
  nesting_too_deep: "Request body is nested too deeply",
  value_unstorable: "Request holds a value the store cannot keep",
  unauthorized: "Caller is not authenticated",
  internal_error: "Decision point failed",
};

/**
 * An RFC 9457 problem (http/problem.ts) whose `reason` is the AuthZEN refusal; through the context,
 * so the headers set before (`x-request-id`) stay on it.
 */
function problem(
  c: Context,
  status: ContentfulStatusCode,
  reason: string,
  detail: string,
  headers: Record<string, string> = {},
  code?: PdpErrorCode,
) {
  const p = { status, code, reason, title: TITLES[reason], detail, headers };
  return c.body(JSON.stringify(problemBody(p)), status, problemHeaders(p));
}

/** The parser's refusals, thrown from deep in the body (`ERR_AUTHZEN_*`), and their wire reasons. */
const REQUEST_REASON: Readonly<Partial<Record<PdpErrorCode, string>>> = {
  ERR_AUTHZEN_REQUEST: "invalid_request",
  ERR_AUTHZEN_VALUE_INVALID: "value_invalid",
  ERR_AUTHZEN_VALUE_TOO_LONG: "value_too_long",
};

const badRequest = (message: string) => new WritError("ERR_AUTHZEN_REQUEST", message);

/** What each string of the request may hold (identifiers: no control characters). */
const ID: TextRules = { max: 256 };
const RULES: Readonly<Record<string, TextRules>> = {
  "subject.type": ID,
  "subject.id": ID,
  "action.name": { max: 512 },
  "resource.type": ID,
  "resource.id": { max: 4096 },
  "context.environment": ID,
  "context.ticket": { max: 2000 },
  "context.writ_id": ID,
  "context.prompt_context_id": ID,
};

type Json = unknown;
type Obj = Record<string, Json>;

function isObject(v: Json): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, at: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined) {
    if (required) throw badRequest(`${q(`${at}.${key}`)} is required`);
    return undefined;
  }
  if (typeof v !== "string") throw badRequest(`${q(`${at}.${key}`)} must be a string`);
  // the rule is the member's, wherever the evaluation sits (`evaluations[2].subject.id`)
  const rules = RULES[`${at.replace(/^.*\./, "")}.${key}`] ?? ID;
  const p = textProblem(v, rules);
  if (p) {
    throw new WritError(
      p.kind === "too_long" ? "ERR_AUTHZEN_VALUE_TOO_LONG" : "ERR_AUTHZEN_VALUE_INVALID",
      `${q(`${at}.${key}`)} ${p.message}`,
    );
  }
  return v;
}

function obj(v: Json, at: string): Obj {
  if (!isObject(v)) throw badRequest(`${q(at)} must be an object`);
  return v;
}

interface Item {
  readonly subject?: Json;
  readonly action?: Json;
  readonly resource?: Json;
  readonly context?: Json;
}

/** A request to decide, or a decision already made (a subject writ does not decide for). */
type Parsed = { readonly req: PdpRequest; readonly early?: Decision };

function parseItem(item: Item, at: string, now: Date): Parsed {
  const where = (key: string) => (at ? `${at}.${key}` : key);
  const need = (v: Json, key: string) => {
    if (v === undefined) {
      throw badRequest(`${q(where(key))} is required${at ? " (in the evaluation or at the top level)" : ""}`);
    }
    return obj(v, where(key));
  };
  const subject = need(item.subject, "subject");
  const subjectType = str(subject, "type", where("subject"), true)!;
  const agent = str(subject, "id", where("subject"), true)!;
  const action = str(need(item.action, "action"), "name", where("action"), true)!;
  const resourceObj = need(item.resource, "resource");
  str(resourceObj, "type", where("resource"), true);
  const resource = str(resourceObj, "id", where("resource"), true)!;
  const ctx = item.context === undefined ? {} : obj(item.context, where("context"));
  const cat = where("context");
  const environment = str(ctx, "environment", cat, true)!;
  const tainted = ctx.tainted;
  if (tainted !== undefined && typeof tainted !== "boolean") {
    throw badRequest(`${q(`${cat}.tainted`)} must be a boolean`);
  }
  const args = ctx.arguments === undefined ? undefined : obj(ctx.arguments, `${cat}.arguments`);
  const context: PdpContext = {
    ticket: str(ctx, "ticket", cat, false),
    writId: str(ctx, "writ_id", cat, false),
    tainted,
    arguments: args,
    promptContextId: str(ctx, "prompt_context_id", cat, false),
  };
  const req: PdpRequest = { agent, action, resource, environment, now, context };
  if (subjectType !== "agent") {
    return {
      req,
      early: {
        kind: "decision",
        allowed: false,
        code: "unknown_agent",
        message: `subject type ${q(subjectType)} is not \`agent\`: writ decides for agents only`,
        reasons: [],
      },
    };
  }
  return { req };
}

function wire(d: Decision) {
  const context = { reason_code: d.code, message: d.message, reasons: d.reasons };
  // what rules in shadow mode would have denied (docs/shadow.md): the decision above is the outcome
  return {
    decision: d.allowed,
    context: d.shadow === undefined ? context : { ...context, shadow: d.shadow },
  };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Authentication: a bearer token matching `expected` (its digest), when one is configured. */
function bearerGate(expected: Buffer | undefined): MiddlewareHandler {
  return async (c, next) => {
    const requestId = c.req.header("x-request-id");
    if (requestId !== undefined) c.header("x-request-id", requestId);
    if (expected) {
      const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(c.req.header("authorization") ?? "");
      const ok = m !== null && timingSafeEqual(digest(m[1]!), expected);
      if (!ok) {
        const header = challenge("Bearer", {
          realm: "writ",
          error: m === null ? undefined : "invalid_token",
        });
        const detail = m === null ? "send `Authorization: Bearer <token>`" : "the bearer token is not valid";
        return problem(c, 401, "unauthorized", detail, { "www-authenticate": header });
      }
    }
    await next();
  };
}

/** Size: a body of at most `maxBody` bytes. */
function sizeGate(maxBody: number): MiddlewareHandler {
  const streamedLimit = bodyLimit({
    maxSize: maxBody,
    onError: (c) => problem(c, 413, "payload_too_large", `the body is larger than ${maxBody} bytes`),
  });
  return async (c, next) => {
    // A declared length is all bodyLimit would check (Node's parser holds the body to it), and
    // checking it here leaves the request's body unwrapped: bodyLimit asks for the body stream,
    // which builds a full fetch Request per request (a tenth of a decision's CPU). A body without
    // a declared length (chunked) goes through bodyLimit, which counts as it reads.
    const declared = c.req.header("content-length");
    if (declared === undefined || c.req.header("transfer-encoding") !== undefined) {
      return streamedLimit(c, next);
    }
    if (Number.parseInt(declared, 10) > maxBody) {
      return problem(c, 413, "payload_too_large", `the body is larger than ${maxBody} bytes`);
    }
    await next();
  };
}

/** Media type, then JSON, then the body's shape: the body as an object, or the problem refusing it. */
async function readBody(c: Context): Promise<Obj | Response> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    return problem(
      c,
      415,
      "unsupported_media_type",
      `content type ${q(type || "(none)")}: expected \`application/json\``,
    );
  }
  let body: Json;
  try {
    body = JSON.parse(await c.req.text());
  } catch (err) {
    return problem(
      c,
      400,
      "invalid_json",
      `the body is not valid JSON: ${(err as Error).message.toLowerCase()}`,
    );
  }
  if (!isObject(body)) return problem(c, 400, "invalid_request", "the body must be a JSON object");
  const bad = jsonProblem(body);
  if (bad) {
    const where = bad.at === "" ? "the body" : q(bad.at);
    return problem(
      c,
      400,
      bad.kind === "too_deep" ? "nesting_too_deep" : "value_invalid",
      `${where} ${bad.message}`,
    );
  }
  return body;
}

/** Decides one parsed evaluation (or takes its early refusal) and records it. */
async function run(c: Context, pdp: Decider, opts: AuthzenOptions, parsed: Parsed): Promise<Decision> {
  const decision = parsed.early ?? (await pdp.decide(parsed.req));
  await opts.onDecision?.({
    kind: "pdp-decision",
    source: "authzen",
    requestId: c.req.header("x-request-id"),
    request: parsed.req,
    decision,
  });
  return decision;
}

/** Runs `work`, turning its errors into problems: a coded request error is a 400, anything else a 500 without internals. */
async function guarded(c: Context, work: () => Promise<Response>): Promise<Response> {
  try {
    return await work();
  } catch (err) {
    const reason = isWritError(err) ? REQUEST_REASON[err.code as PdpErrorCode] : undefined;
    if (reason !== undefined) {
      const { code, message } = err as WritError;
      return problem(c, 400, reason, message, {}, code as PdpErrorCode);
    }
    if ((err as { code?: unknown }).code === "ERR_VALUE_UNSTORABLE") {
      return problem(c, 400, "value_unstorable", "the request holds a value the store cannot keep");
    }
    // no stack, no internals to the caller; the server logs the error it keeps here
    c.error = err instanceof Error ? err : new Error(String(err));
    return problem(c, 500, "internal_error", "the decision could not be made or recorded");
  }
}

/** A batch's semantic and every item, all checked before any is decided: a malformed batch is refused whole. */
function parseBatch(
  body: Obj,
  evaluations: Json[],
  maxEvaluations: number,
  now: Date,
): { semantic: Semantic; items: Parsed[] } {
  if (evaluations.length > maxEvaluations) {
    throw badRequest(`\`evaluations\` holds ${evaluations.length} items: at most ${maxEvaluations}`);
  }
  const options = body.options === undefined ? {} : obj(body.options, "options");
  const semantic = (options.evaluations_semantic ?? "execute_all") as Semantic;
  if (!SEMANTICS.includes(semantic)) {
    throw badRequest(
      `\`options.evaluations_semantic\` ${q(options.evaluations_semantic)}: expected one of ${SEMANTICS.join(", ")}`,
    );
  }
  // check every item before deciding any: a malformed batch is refused whole
  const items = evaluations.map((e: Json, i: number) => {
    const at = `evaluations[${i}]`;
    const o = obj(e, at);
    const pick = (key: keyof Item) => (o[key] !== undefined ? o[key] : body[key]);
    return parseItem(
      {
        subject: pick("subject"),
        action: pick("action"),
        resource: pick("resource"),
        context: pick("context"),
      },
      at,
      now,
    );
  });
  return { semantic, items };
}

export function authzenRoutes(pdp: Decider, opts: AuthzenOptions): Hono {
  const app = new Hono();
  const clock = opts.clock ?? (() => new Date());
  const maxEvaluations = opts.maxEvaluations ?? 256;
  if (opts.token !== undefined && opts.token.length === 0) {
    throw new TypeError("authzen token must not be empty");
  }
  const expected = opts.token === undefined ? undefined : digest(opts.token);

  app.get(METADATA_PATH, (c) => {
    const base = (typeof opts.baseUrl === "function" ? opts.baseUrl() : opts.baseUrl).replace(/\/+$/, "");
    return c.json({
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}${EVALUATION_PATH}`,
      access_evaluations_endpoint: `${base}${EVALUATIONS_PATH}`,
    });
  });

  // authentication, then size, then media type, then JSON: the cheapest refusal first
  app.use("/access/v1/*", bearerGate(expected));
  app.use("/access/v1/*", sizeGate(opts.maxBodyBytes ?? 1024 * 1024));

  app.post(EVALUATION_PATH, async (c) => {
    const body = await readBody(c);
    if (body instanceof Response) return body;
    return guarded(c, async () => {
      const parsed = parseItem(body, "", clock());
      return c.json(wire(await run(c, pdp, opts, parsed)));
    });
  });

  app.post(EVALUATIONS_PATH, async (c) => {
    const body = await readBody(c);
    if (body instanceof Response) return body;
    return guarded(c, async () => {
      const now = clock();
      if (body.evaluations === undefined) {
        // without `evaluations` the request is a single evaluation (§7.1)
        return c.json(wire(await run(c, pdp, opts, parseItem(body, "", now))));
      }
      if (!Array.isArray(body.evaluations)) throw badRequest("`evaluations` must be an array");
      const { semantic, items } = parseBatch(body, body.evaluations, maxEvaluations, now);
      const evaluations: ReturnType<typeof wire>[] = [];
      for (const parsed of items) {
        const d = await run(c, pdp, opts, parsed);
        evaluations.push(wire(d));
        if (semantic === "deny_on_first_deny" && !d.allowed) break;
        if (semantic === "permit_on_first_permit" && d.allowed) break;
      }
      return c.json({ evaluations });
    });
  });

  return app;
}
