/**
 * The approvals API: how an approver who holds no access to the store approves or denies a
 * pending writ request while `writ serve` runs (operators use `writ approve`, which reaches a running
 * server through the admin API: operator.ts). Documented in docs/approvals.md.
 *
 *   GET  /approvals                  pending requests
 *   GET  /approvals/<id>             one request, with what is still missing
 *   POST /approvals/<id>/approve     { "reason"?: "…" }
 *   POST /approvals/<id>/deny        { "reason": "…" }
 *
 * An approver proves who they are with `Authorization: Bearer <JWT>`: a short-lived JWT signed by
 * one of the keys registered for them under `approvers` in writ.yaml — `iss` = `sub` = their id,
 * `aud` = `<base>/approvals`, `exp` at most five minutes ahead, a `jti` used once. It is checked by
 * the same code as an agent's private_key_jwt assertion. No shared secrets.
 *
 * Refusals are RFC 9457 problems with the approval code: 401 not authenticated, 403 self-approval
 * or not an approver of this request, 404 unknown, 409 closed or already decided, 410 expired, 400
 * (`ERR_APPROVAL_INVALID`) for an id, `env` or body writ does not accept (a control character, over
 * its length, JSON nested too deep) and 413 for a body over 4 KiB (reading stops there) — every
 * code listed in docs/reasons.md ("Approvals API codes"), which reasons.test.ts checks.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  type Agent,
  isWritError,
  jsonProblem,
  q,
  type TextRules,
  textProblem,
  type WritConfig,
} from "../core/index.js";
import type { WritErrorCode } from "../error-codes.js";
import { challenge, problem } from "../http/problem.js";
import { type ApprovalRequest, type ApprovalService, evaluateRequest } from "./approvals.js";
import { ClientRefused, checkClient, JWT_BEARER_ASSERTION_TYPE } from "./client-auth.js";
import type { ReplayCache } from "./replay.js";

export interface ApprovalsApiOptions {
  readonly config: WritConfig;
  readonly approvals: ApprovalService;
  readonly replay: ReplayCache;
  readonly baseUrl: () => string;
  readonly clock?: (() => Date) | undefined;
}

const STATUS: Readonly<Partial<Record<WritErrorCode, number>>> = {
  ERR_APPROVAL_NOT_FOUND: 404,
  ERR_APPROVAL_EXPIRED: 410,
  ERR_APPROVAL_CLOSED: 409,
  ERR_APPROVAL_DUPLICATE: 409,
  ERR_APPROVAL_SELF: 403,
  ERR_APPROVAL_NOT_APPROVER: 403,
  ERR_APPROVAL_NO_POLICY: 409,
  ERR_APPROVAL_INVALID: 400,
};

const MAX_BODY = 4096;
/** An approval id (`ar_…`, 46 characters) or an environment id. */
const ID: TextRules = { max: 256 };
const REASON: TextRules = { max: 1000, multiline: true };

/** A refusal of what the caller sent, or undefined when `value` is acceptable. */
function invalid(name: string, value: string | undefined, rules: TextRules): Response | undefined {
  const p = value === undefined ? undefined : textProblem(value, rules);
  return p && refused(400, "ERR_APPROVAL_INVALID", `${name} ${q(value!.slice(0, 80))} ${p.message}`);
}

/** A refusal of the approvals API: a problem whose `code` (and title) is the approval code. */
function refused(
  status: number,
  code: WritErrorCode,
  detail: string,
  headers: Record<string, string> = {},
): Response {
  return problem({ status, code, title: code, detail, headers });
}

/** Approvers as the assertion checker sees principals: an id and its registered public keys. */
export function approverPrincipals(config: WritConfig): Pick<WritConfig, "agents"> {
  const agents = new Map<string, Agent>();
  for (const a of config.approvers?.values() ?? []) {
    agents.set(a.id, {
      kind: "agent",
      id: a.id,
      owner: a.id,
      purpose: "approver",
      runnerClass: "",
      environments: [],
      keys: a.keys,
      baseline: [],
      deny: [],
      playbooks: [],
      tools: [],
    });
  }
  return { agents };
}

function view(config: WritConfig, r: ApprovalRequest) {
  const evaluation = r.status === "pending" ? evaluateRequest(config, r) : undefined;
  return {
    id: r.id,
    status: r.status,
    environment: r.environment,
    agent: r.agent,
    playbook: r.playbook,
    parameters: r.params,
    ticket: r.ticket,
    audience: r.audience,
    requester: r.requester,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    decisions: r.decisions.map((d) => ({ ...d, at: d.at.toISOString() })),
    ...(evaluation?.missing ? { missing: evaluation.missing } : {}),
  };
}

export function approvalsApi(opts: ApprovalsApiOptions): Hono {
  const app = new Hono();
  const principals = approverPrincipals(opts.config);

  const authenticate = async (req: Request): Promise<string | Response> => {
    const m = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(req.headers.get("authorization") ?? "");
    if (!m) {
      return refused(
        401,
        "ERR_APPROVER_UNAUTHENTICATED",
        "send `Authorization: Bearer <JWT signed by your registered key>`",
        { "www-authenticate": challenge("Bearer", { realm: "writ-approvals" }) },
      );
    }
    // a store that cannot answer (the replay cache) is no refusal: it is thrown on, and the server
    // answers it as it answers the token endpoint's (a 500 problem, its cause in the server log)
    const who = await checkClient(
      { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: m[1]! },
      {
        config: principals,
        audiences: [`${opts.baseUrl()}/approvals`],
        replay: opts.replay,
        clock: opts.clock,
      },
    );
    if (!(who instanceof ClientRefused)) return who.agent.id;
    return refused(401, who.code, who.message, {
      "www-authenticate": challenge("Bearer", { realm: "writ-approvals", error: "invalid_token" }),
    });
  };

  app.get("/approvals", async (c) => {
    const who = await authenticate(c.req.raw);
    if (who instanceof Response) return who;
    const env = c.req.query("env");
    const bad = invalid("`env`", env, ID);
    if (bad) return bad;
    const pending = await opts.approvals.listPending({ environment: env, now: opts.clock?.() });
    return c.json({ approvals: pending.map((r) => view(opts.config, r)) }, 200, {
      "cache-control": "no-store",
    });
  });

  app.get("/approvals/:id", async (c) => {
    const who = await authenticate(c.req.raw);
    if (who instanceof Response) return who;
    const bad = invalid("approval id", c.req.param("id"), ID);
    if (bad) return bad;
    const r = await opts.approvals.get(c.req.param("id"));
    if (!r) return refused(404, "ERR_APPROVAL_NOT_FOUND", "no such approval request");
    return c.json(view(opts.config, r), 200, { "cache-control": "no-store" });
  });

  // reading stops at the limit: a chunked body is not read to its end before it is refused
  app.use(
    "/approvals/*",
    bodyLimit({
      maxSize: MAX_BODY,
      onError: () => refused(413, "ERR_APPROVAL_INVALID", `the body is larger than ${MAX_BODY} bytes`),
    }),
  );

  for (const decision of ["approve", "deny"] as const) {
    app.post(`/approvals/:id/${decision}`, async (c) => {
      const who = await authenticate(c.req.raw);
      if (who instanceof Response) return who;
      const badId = invalid("approval id", c.req.param("id"), ID);
      if (badId) return badId;
      let reason: string | undefined;
      const text = await c.req.text();
      if (text.trim().length > 0) {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          return refused(400, "ERR_APPROVAL_INVALID", 'the body must be JSON: `{"reason": "…"}`');
        }
        const deep = jsonProblem(body);
        if (deep) {
          const where = deep.at === "" ? "" : ` at ${q(deep.at)}`;
          return refused(400, "ERR_APPROVAL_INVALID", `the body${where} ${deep.message}`);
        }
        const r = (body as { reason?: unknown } | null)?.reason;
        if (r !== undefined && typeof r !== "string")
          return refused(400, "ERR_APPROVAL_INVALID", "`reason` must be a string");
        const badReason = invalid("`reason`", r, REASON);
        if (badReason) return badReason;
        reason = r;
      }
      try {
        const result = await opts.approvals.decide(
          c.req.param("id"),
          { approver: who, decision, reason },
          { config: opts.config, now: opts.clock?.() },
        );
        return c.json(view(opts.config, result.request), 200, { "cache-control": "no-store" });
      } catch (err) {
        if (!isWritError(err) || STATUS[err.code] === undefined) throw err;
        return refused(STATUS[err.code]!, err.code, err.message);
      }
    });
  }
  return app;
}
