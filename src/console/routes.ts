/**
 * The web console (docs/console.md): server-rendered pages under `/console`, `/` redirecting there.
 *
 * Every answer carries a strict Content-Security-Policy (no inline script or style: the one script
 * and the one style sheet are files under `/console/static/`), `nosniff`, `Referrer-Policy: same-origin`,
 * `no-store`. Nothing but the sign-in page and the assets is readable without a session; a session
 * is a random id in an HttpOnly, SameSite=Strict cookie (Secure unless the public URL is loopback
 * http), kept server-side (session.ts). Every POST carries the session's CSRF token and, when the
 * browser sends one, an `Origin` of this server. Approvers' decisions are JWTs their browser signs
 * with their registered key (approvals.ts); the server never holds that key.
 */
import { readFile } from "node:fs/promises";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { isWritError, q, textProblem } from "../core/index.js";
import { problem } from "../http/problem.js";
import { approvalsPage, decideApproval } from "./approvals.js";
import { auditExport, auditPage, auditVerify } from "./audit-page.js";
import type { ConsoleDeps } from "./deps.js";
import {
  CONSOLE_STATUS,
  consoleError,
  ERR_CONSOLE_AUTH,
  ERR_CONSOLE_CSRF,
  ERR_CONSOLE_FORBIDDEN,
  ERR_CONSOLE_INPUT,
} from "./errors.js";
import { findingPage, findingsPage, setFindingStatus } from "./findings-page.js";
import { type Html, h } from "./html.js";
import { denialsPage, reasonsPage } from "./info-pages.js";
import { killConfirm, killEngage, killLift, killPage } from "./kill-page.js";
import { page } from "./layout.js";
import { loginApprover, loginOperator, loginPage } from "./login.js";
import { metricsPage } from "./metrics-page.js";
import { operationalCache } from "./operate-cache.js";
import { agentsPage, consoleOperationalState, maturityPage, OPERATE_MAX_AGE_S } from "./operate-pages.js";
import { COOKIE, type Role, SESSION_SECONDS, type Session, Sessions, sameSecret } from "./session.js";
import { shadowPage } from "./shadow-page.js";
import { revokeWrit, writsPage } from "./writs-page.js";

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const MAX_FORM = 64 * 1024;

/** The assets: files beside the package (`data/console/`), read once. */
const ASSETS: Readonly<Record<string, string>> = {
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

async function loadAssets(): Promise<Map<string, string>> {
  const dir = new URL("../../data/console/", import.meta.url);
  const out = new Map<string, string>();
  for (const name of Object.keys(ASSETS)) out.set(name, await readFile(new URL(name, dir), "utf8"));
  return out;
}

/** The request's form fields (first value of each), each checked as text. */
export type Form = ReadonlyMap<string, string>;

async function readForm(c: Context): Promise<Form> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw consoleError(ERR_CONSOLE_INPUT, "the form must be sent as application/x-www-form-urlencoded");
  }
  const params = new URLSearchParams(await c.req.text());
  const out = new Map<string, string>();
  for (const [k, v] of params) {
    if (out.has(k)) throw consoleError(ERR_CONSOLE_INPUT, `field ${q(k)} is given more than once`);
    const multiline = k === "reason" || k === "note" || k === "jwk";
    const p = textProblem(v, { max: k === "jwk" || k === "assertion" ? 16_000 : 2000, multiline });
    if (p) throw consoleError(ERR_CONSOLE_INPUT, `field ${q(k)} ${p.message}`);
    out.set(k, v);
  }
  return out;
}

/** A query parameter, checked as one line of text (undefined when absent or empty). */
export function param(c: Context, name: string, max = 500): string | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === "") return undefined;
  const p = textProblem(v, { max });
  if (p) throw consoleError(ERR_CONSOLE_INPUT, `parameter ${q(name)} ${p.message}`);
  return v;
}

/** A required form field. */
export function field(form: Form, name: string): string {
  const v = form.get(name);
  if (v === undefined || v.trim() === "")
    throw consoleError(ERR_CONSOLE_INPUT, `field ${q(name)} is required`);
  return v;
}

export interface PageContext {
  readonly c: Context;
  readonly deps: ConsoleDeps;
  readonly session: Session;
  readonly now: Date;
}

export interface ActionContext extends PageContext {
  readonly form: Form;
}

/** A page's answer: its title and body, or a redirect after an action. */
export type View = { readonly title: string; readonly body: Html } | { readonly redirect: string };

function loopback(base: string): boolean {
  try {
    const u = new URL(base);
    return u.protocol === "http:" && /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(u.hostname);
  } catch {
    return false;
  }
}

/** What every console handler shares: its dependencies, the sessions, the clock. */
interface ConsoleState {
  readonly deps: ConsoleDeps;
  readonly sessions: Sessions;
  readonly now: () => Date;
}

/** The headers of every console answer. */
async function securityHeaders(c: Context, next: () => Promise<void>): Promise<void> {
  await next();
  const hs = c.res.headers;
  hs.set("content-security-policy", CSP);
  hs.set("x-content-type-options", "nosniff");
  // same-origin, not no-referrer: with no-referrer a form POST carries `Origin: null`
  hs.set("referrer-policy", "same-origin");
  hs.set("x-frame-options", "DENY");
  hs.set("cross-origin-opener-policy", "same-origin");
  if (!hs.has("cache-control")) hs.set("cache-control", "no-store");
}

function sessionOf(k: ConsoleState, c: Context): Session | undefined {
  return k.sessions.get(getCookie(c, COOKIE));
}

function startSession(k: ConsoleState, c: Context, role: Role, who: string): Session {
  const s = k.sessions.create(role, who);
  setCookie(c, COOKIE, s.id, {
    httpOnly: true,
    sameSite: "Strict",
    secure: !loopback(k.deps.baseUrl()),
    path: "/console",
    maxAge: SESSION_SECONDS,
  });
  return s;
}

/** The request's Origin, when sent, must be this server's (behind its public URL or not). */
function sameOrigin(deps: ConsoleDeps, c: Context): boolean {
  const origin = c.req.header("origin");
  if (origin === undefined) return true;
  const own = new URL(c.req.url).origin;
  let pub: string | undefined;
  try {
    pub = new URL(deps.baseUrl()).origin;
  } catch {}
  return origin === own || origin === pub;
}

function guard(k: ConsoleState, c: Context, roles: readonly Role[]): Session {
  const s = sessionOf(k, c);
  if (s === undefined) throw consoleError(ERR_CONSOLE_AUTH, "sign in first");
  if (!roles.includes(s.role))
    throw consoleError(ERR_CONSOLE_FORBIDDEN, `an ${s.role} may not use this page`);
  return s;
}

/** A page for a signed-in user of one of `roles`; without a session, the sign-in page. */
function viewHandler(k: ConsoleState, roles: readonly Role[], render: (p: PageContext) => Promise<View>) {
  return async (c: Context) => {
    try {
      const session = guard(k, c, roles);
      const v = await render({ c, deps: k.deps, session, now: k.now() });
      if ("redirect" in v) return c.redirect(v.redirect, 303);
      const current = `/console/${new URL(c.req.url).pathname.split("/")[2] ?? ""}`;
      return c.html(page({ title: v.title, session, current, body: v.body }).text);
    } catch (err) {
      if (isWritError(err, ERR_CONSOLE_AUTH)) return c.redirect("/console/login", 303);
      return refusal(c, err, sessionOf(k, c));
    }
  };
}

/**
 * What a form post does: a signed-in user's action (an approval, a revocation, a kill…), proven by
 * the session's CSRF token, or a sign-in, proven by a challenge this server issued (used once).
 */
type FormPost =
  | {
      readonly kind: "action";
      readonly roles: readonly Role[];
      readonly run: (a: ActionContext) => Promise<View>;
    }
  | { readonly kind: "sign-in"; readonly role: Role; readonly login: typeof loginOperator };

/** Every form post: who may post, the form, its proof, the work, the answer; a coded refusal as a page. */
function formHandler(k: ConsoleState, post: FormPost) {
  return async (c: Context) => {
    try {
      if (post.kind === "sign-in") {
        if (!sameOrigin(k.deps, c))
          throw consoleError(ERR_CONSOLE_CSRF, "the form was sent from another origin");
        const form = await readForm(c);
        if (!k.sessions.spend(form.get("challenge") ?? "")) {
          throw consoleError(ERR_CONSOLE_AUTH, "the sign-in form has expired: load the page again");
        }
        startSession(k, c, post.role, await post.login(form, k.deps));
        return c.redirect("/console/approvals", 303);
      }
      const session = guard(k, c, post.roles);
      const form = await readForm(c);
      if (!sameOrigin(k.deps, c) || !sameSecret(form.get("csrf") ?? "", session.csrf)) {
        throw consoleError(ERR_CONSOLE_CSRF, "the form does not carry this session's token");
      }
      const v = await post.run({ c, deps: k.deps, session, now: k.now(), form });
      if ("redirect" in v) return c.redirect(v.redirect, 303);
      return c.html(page({ title: v.title, session, body: v.body }).text);
    } catch (err) {
      return refusal(c, err, post.kind === "sign-in" ? undefined : sessionOf(k, c));
    }
  };
}

async function logout(k: ConsoleState, c: Context): Promise<Response> {
  const s = sessionOf(k, c);
  if (s !== undefined) {
    const form = await readForm(c).catch(() => new Map<string, string>());
    if (!sameSecret(form.get("csrf") ?? "", s.csrf) || !sameOrigin(k.deps, c)) {
      return errorPage(c, 403, ERR_CONSOLE_CSRF, "the form does not carry this session's token");
    }
    k.sessions.end(s.id);
  }
  deleteCookie(c, COOKIE, { path: "/console" });
  return c.redirect("/console/login", 303);
}

/** Redirects, assets and sign-in: what needs no session. */
function publicRoutes(app: Hono, k: ConsoleState): void {
  const assets = loadAssets();
  app.get("/", (c) => c.redirect("/console/", 303));
  app.get("/console", (c) => c.redirect("/console/", 303));
  app.get("/console/", (c) =>
    c.redirect(sessionOf(k, c) === undefined ? "/console/login" : "/console/approvals", 303),
  );

  app.get("/console/static/:name", async (c) => {
    const name = c.req.param("name");
    const type = ASSETS[name];
    const body = type === undefined ? undefined : (await assets).get(name);
    if (type === undefined || body === undefined)
      return problem({ status: 404, detail: `no asset ${q(name)}` });
    return c.body(body, 200, { "content-type": type, "cache-control": "no-cache" });
  });

  // sign-in: no session needed; the challenge in the form is this server's, used once
  app.get("/console/login", (c) => {
    const body = loginPage(k.sessions.challenge(), k.deps);
    return c.html(
      page({ title: "Sign in", body, data: { audience: `${k.deps.baseUrl()}/console/login` } }).text,
    );
  });
  app.post(
    "/console/login/operator",
    formHandler(k, { kind: "sign-in", role: "operator", login: loginOperator }),
  );
  app.post(
    "/console/login/approver",
    formHandler(k, { kind: "sign-in", role: "approver", login: loginApprover }),
  );
  app.post("/console/logout", (c) => logout(k, c));
}

/** The pages and actions, each for the roles that may use it. */
function signedInRoutes(app: Hono, k: ConsoleState): void {
  const view = (path: string, roles: readonly Role[], render: (p: PageContext) => Promise<View>) =>
    app.get(path, viewHandler(k, roles, render));
  const action = (path: string, roles: readonly Role[], run: (a: ActionContext) => Promise<View>) =>
    app.post(path, formHandler(k, { kind: "action", roles, run }));
  const both: readonly Role[] = ["operator", "approver"];
  const ops: readonly Role[] = ["operator"];
  view("/console/approvals", both, approvalsPage);
  action("/console/approvals/:id/decide", ["approver"], decideApproval);
  view("/console/writs", ops, writsPage);
  action("/console/writs/:id/revoke", ops, revokeWrit);
  view("/console/kill", ops, killPage);
  action("/console/kill/confirm", ops, killConfirm);
  action("/console/kill/engage", ops, killEngage);
  action("/console/kill/lift", ops, killLift);
  view("/console/denials", ops, denialsPage);
  view("/console/reasons", both, reasonsPage);
  view("/console/findings", ops, findingsPage);
  view("/console/findings/:id", ops, findingPage);
  action("/console/findings/:id/status", ops, setFindingStatus);
  view("/console/audit", ops, auditPage);
  action("/console/audit/verify", ops, auditVerify);
  app.get("/console/audit/export", async (c) => {
    try {
      const session = guard(k, c, ops);
      return await auditExport({ c, deps: k.deps, session, now: k.now() });
    } catch (err) {
      return refusal(c, err, sessionOf(k, c));
    }
  });
  view("/console/metrics", ops, metricsPage);
  const operational = operationalCache(
    (at) => consoleOperationalState(k.deps, at),
    k.deps.operateMaxAgeMs ?? OPERATE_MAX_AGE_S * 1000,
  );
  view("/console/agents", ops, (p) => agentsPage(p, operational));
  view("/console/maturity", ops, (p) => maturityPage(p, operational));
  view("/console/shadow", ops, shadowPage);
}

export function consoleRoutes(deps: ConsoleDeps): Hono {
  const app = new Hono();
  const k: ConsoleState = {
    deps,
    sessions: new Sessions(deps.clock),
    now: () => deps.clock?.() ?? new Date(),
  };
  app.use("/console/*", securityHeaders);
  app.use(
    "/console/*",
    bodyLimit({
      maxSize: MAX_FORM,
      onError: (c) => errorPage(c, 413, ERR_CONSOLE_INPUT, `the form is larger than ${MAX_FORM} bytes`),
    }),
  );
  publicRoutes(app, k);
  signedInRoutes(app, k);
  app.all("/console/*", (c) =>
    errorPage(
      c,
      404,
      "ERR_CONSOLE_NOT_FOUND",
      `no console page at ${new URL(c.req.url).pathname}`,
      sessionOf(k, c),
    ),
  );
  return app;
}

function errorPage(c: Context, status: number, code: string, message: string, session?: Session): Response {
  const body = h`<div class="error" role="alert"><p><code>${code}</code></p><p>${message}</p></div>
<p><a href="${session ? "/console/approvals" : "/console/login"}">Back</a></p>`;
  return c.html(
    page({ title: status === 401 ? "Not signed in" : "Refused", session, body }).text,
    status as 400,
  );
}

/** A coded refusal as a page with its status; anything else is the server's failure (rethrown: 500). */
function refusal(c: Context, err: unknown, session?: Session): Response {
  if (isWritError(err)) {
    const status = CONSOLE_STATUS[err.code] ?? statusOfOther(err.code);
    if (status !== undefined) return errorPage(c, status, err.code, err.message, session);
  }
  throw err;
}

/** The library's codes a console action can meet, and their status. */
function statusOfOther(code: string): number | undefined {
  if (code === "ERR_OPERATOR_INPUT" || code === "ERR_KILL_SCOPE" || code === "ERR_APPROVAL_INVALID")
    return 400;
  if (code === "ERR_APPROVAL_NOT_FOUND" || code === "ERR_WRIT_NOT_FOUND" || code === "ERR_FINDING_NOT_FOUND")
    return 404;
  if (code === "ERR_APPROVAL_SELF" || code === "ERR_APPROVAL_NOT_APPROVER") return 403;
  if (code === "ERR_APPROVAL_EXPIRED") return 410;
  if (code.startsWith("ERR_APPROVAL") || code.startsWith("ERR_KILL") || code === "ERR_FINDING_STATUS")
    return 409;
  if (code.startsWith("ERR_CLIENT_ASSERTION")) return 401;
  return undefined;
}
