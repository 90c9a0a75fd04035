/**
 * `POST /hook/v1/<kind>`: a hook call judged by a running `writ serve`, so that each hook process
 * only forwards its input and prints the answer (cli/hook-fast.ts). The body is
 * `{agent, environment, input}` (`input`: the hook's JSON as the agent sent it); the answer is
 * `{decision, code, reason}`. Authenticated like the AuthZEN routes (the PDP token, when set): the
 * subject is the caller's assertion, as there. A body writ cannot read is a 400 problem naming what
 * is wrong; a failure to judge or to audit is a `deny`, never an unrecorded allow.
 *
 * `POST /hook/v1/<kind>/answer?agent=<id>&env=<env>[&allow_skips_prompt=1]`: the same call for a
 * client that is not Node (bin/writ-hook.sh: bash on /dev/tcp, or curl): the body is the hook's
 * JSON verbatim, and the answer (200, with its Content-Length) is exactly what `writ hook` prints
 * on stdout, so the client only copies it.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { isWritError } from "../core/index.js";
import { type Logger, type RequestContext, stackOf, summarizeError } from "../http/log.js";
import { problem } from "../http/problem.js";
import type { HookEngine, HookIdentity, Verdict } from "./engine.js";
import { type HookInput, type HookKind, isHookKind, parseHookInput, renderAnswer } from "./protocol.js";

export const HOOK_PATH = "/hook/v1";
const MAX_BODY = 1024 * 1024 + 4096;
const ID = /^[^\s\p{Cc}]{1,256}$/u;

function sha(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export interface HookRoutesOptions {
  readonly engine: HookEngine;
  /** When set, callers must send `Authorization: Bearer <token>`. */
  readonly token?: string | undefined;
  /** Where a call that could not be judged or audited leaves its cause (http/log.ts). */
  readonly logger?: Logger | undefined;
  /** The request's log line: names the agent and the `hook_error` reason. */
  readonly requests?: RequestContext | undefined;
}

type Refuse = (status: 400 | 401 | 404 | 413 | 415, reason: string, detail: string) => Response;

/** The checks both routes make first: the token, the agent kind, the media type. */
function gate(c: Context, opts: HookRoutesOptions, refuse: Refuse): HookKind | Response {
  if (opts.token !== undefined) {
    const auth = c.req.header("authorization") ?? "";
    const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!timingSafeEqual(sha(given), sha(opts.token))) {
      return refuse(401, "unauthorized", "a bearer token (the PDP token) is required");
    }
  }
  const kind = c.req.param("kind") ?? "";
  if (!isHookKind(kind))
    return refuse(404, "unknown_agent_kind", `no hook protocol for ${JSON.stringify(kind)}`);
  if (!(c.req.header("content-type") ?? "").startsWith("application/json")) {
    return refuse(415, "unsupported_media_type", "the body must be application/json");
  }
  return kind;
}

/** The verdict, or a deny saying the decision could not be recorded: never an unrecorded allow. */
async function judged(
  opts: HookRoutesOptions,
  kind: HookKind,
  identity: HookIdentity,
  input: HookInput,
): Promise<Verdict> {
  try {
    return await opts.engine.judge(identity, input);
  } catch (err) {
    // the audit failed: refuse, say so, and leave the cause in the log (never the input)
    opts.requests?.annotate({ agent: identity.agent, reason: "hook_error" });
    const stack = stackOf(err);
    opts.logger?.error({
      event: "hook.audit_failed",
      kind,
      agent: identity.agent,
      environment: identity.environment,
      error: summarizeError(err),
      ...(stack === undefined ? {} : { stack }),
    });
    return {
      decision: "deny",
      code: "hook_error",
      reason: `writ could not record this decision: ${(err as Error).message}`.slice(0, 500),
    };
  }
}

export function hookRoutes(opts: HookRoutesOptions): Hono {
  const app = new Hono();
  // the one wire edge (http/problem.ts): the reasons are listed in docs/reasons.md
  const refuse: Refuse = (status, reason, detail) => problem({ status, reason, detail });
  const limit = bodyLimit({
    maxSize: MAX_BODY,
    onError: () => refuse(413, "payload_too_large", "the body is too large"),
  });
  const badId = (key: string) =>
    refuse(400, "invalid_request", `${key}: expected an identifier of 1 to 256 characters`);
  app.post(`${HOOK_PATH}/:kind`, limit, async (c) => {
    const kind = gate(c, opts, refuse);
    if (kind instanceof Response) return kind;
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return refuse(400, "invalid_json", "the body is not JSON");
    }
    const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
    for (const key of ["agent", "environment"] as const) {
      const v = b[key];
      if (typeof v !== "string" || !ID.test(v)) return badId(key);
    }
    let input: HookInput;
    try {
      input = parseHookInput(kind, JSON.stringify(b.input ?? null));
    } catch (err) {
      if (isWritError(err)) return refuse(400, "invalid_request", err.message);
      throw err;
    }
    const identity = { agent: b.agent as string, environment: b.environment as string };
    return c.json(await judged(opts, kind, identity, input));
  });
  // the thin client's route (bin/writ-hook.sh): the hook's JSON as the body, verbatim; the answer is
  // what `writ hook` prints, in the agent's own format
  app.post(`${HOOK_PATH}/:kind/answer`, limit, async (c) => {
    const kind = gate(c, opts, refuse);
    if (kind instanceof Response) return kind;
    const agent = c.req.query("agent") ?? "";
    const environment = c.req.query("env") ?? "";
    if (!ID.test(agent)) return badId("agent");
    if (!ID.test(environment)) return badId("env");
    const skips = c.req.query("allow_skips_prompt");
    if (skips !== undefined && skips !== "1") {
      return refuse(400, "invalid_request", "allow_skips_prompt: expected 1 or nothing");
    }
    let input: HookInput;
    try {
      input = parseHookInput(kind, await c.req.text());
    } catch (err) {
      if (isWritError(err)) return refuse(400, "invalid_request", err.message);
      throw err;
    }
    const v = await judged(opts, kind, { agent, environment }, input);
    const out = renderAnswer(kind, input.phase, v.decision, v.reason, skips === "1", input.event);
    return c.body(out.stdout, 200, { "content-type": "application/json; charset=utf-8" });
  });
  return app;
}
