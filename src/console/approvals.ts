/**
 * The approvals inbox: every pending request with what it binds to (agent, playbook, parameters
 * and the grants they render to, ticket, environment, audience; for a held tool call, its exact
 * arguments, checked against the digest the approval binds), who has decided so far and what is
 * still needed. Approvers decide here: their browser signs a JWT (`aud` = `<base>/console/approvals`)
 * naming the request, its binding, the decision and the reason, with their registered key; the
 * server checks it like the approvals API's JWT, and that it covers exactly what the form says.
 */
import {
  type ApprovalRequest,
  approverPrincipals,
  ClientRefused,
  checkClient,
  evaluateRequest,
  JWT_BEARER_ASSERTION_TYPE,
} from "../broker/index.js";
import { isWritError, q, substitute } from "../core/index.js";
import { consoleError, ERR_CONSOLE_AUTH, ERR_CONSOLE_INPUT, ERR_CONSOLE_SIGNATURE } from "./errors.js";
import { type Html, h, instant, json } from "./html.js";
import { type ActionContext, field, type PageContext, param, type View } from "./routes.js";

/** At most this many requests on the page (oldest first); the rest are counted. */
const PAGE = 100;

/** The exact arguments of held calls, by approval request, when the gateway kept them. */
async function heldArguments(p: PageContext, ids: readonly string[]): Promise<Map<string, unknown>> {
  return p.deps.store.holds.argumentsOf(ids);
}

function paramsTable(params: Readonly<Record<string, unknown>>) {
  const entries = Object.entries(params);
  if (entries.length === 0) return h`<p>No parameters.</p>`;
  return h`<table class="kv"><tbody>${entries.map(
    ([k, v]) =>
      h`<tr><th scope="row">${k}</th><td><code>${typeof v === "string" ? v : JSON.stringify(v)}</code></td></tr>`,
  )}</tbody></table>`;
}

function requestCard(p: PageContext, r: ApprovalRequest, args: Map<string, unknown>) {
  const config = p.deps.config;
  // a request the config no longer asks approval for still shows (deciding it is refused)
  let evaluation: ReturnType<typeof evaluateRequest> | undefined;
  let stale: string | undefined;
  try {
    evaluation = evaluateRequest(config, r);
  } catch (err) {
    if (!isWritError(err)) throw err;
    stale = `${err.code}: ${err.message}`;
  }
  const held = r.playbook.startsWith("mcp:");
  const playbook = config.playbooks.get(r.playbook);
  let subject: Html;
  if (held) {
    const digest = r.params.arguments;
    const stored = args.get(r.id);
    const verified = stored !== undefined && p.deps.digest(stored) === digest;
    subject = h`<h3>Held tool call</h3>
<p>Tool <code>${r.playbook.slice(4)}</code>, held because it is ${r.params.why === "tainted" ? "privileged in a tainted session" : "irreversible"}.</p>
<p>Resources: ${(Array.isArray(r.params.resources) ? r.params.resources : []).map((x) => h`<code>${String(x)}</code> `)}</p>
<h4>Exact arguments</h4>
${
  verified
    ? h`<pre class="args">${json(stored)}</pre><p class="ok">These arguments hash to the digest the approval binds: <code>${String(digest)}</code>.</p>`
    : h`<p class="warn">The exact arguments are not available (or do not match the digest); the approval binds digest <code>${String(digest)}</code>.</p>`
}`;
  } else {
    subject = h`<h3>Parameters</h3>${paramsTable(r.params)}
${
  playbook
    ? h`<h4>Grants these parameters render to</h4><ul class="grants">${playbook.grants.map(
        (g) =>
          h`<li><code>${substitute(g.action, r.params)}</code> on <code>${substitute(g.resource, r.params)}</code></li>`,
      )}</ul>`
    : h`<p class="warn">writ.yaml no longer defines playbook ${q(r.playbook)}.</p>`
}`;
  }
  const decided = r.decisions.map(
    (d) =>
      h`<li><strong>${d.approver}</strong> ${d.decision === "approve" ? "approved" : "denied"} at ${instant(d.at)}${d.reason ? h`: “${d.reason}”` : ""}</li>`,
  );
  const canDecide = p.session.role === "approver";
  const mine = r.decisions.some((d) => d.approver === p.session.who.trim().toLowerCase());
  const forms = !canDecide
    ? h`<p class="note">Approvers decide with their own key; operators can use <code>writ approve</code>.</p>`
    : mine
      ? h`<p class="note">You have decided this request.</p>`
      : (["approve", "deny"] as const).map(
          (decision) => h`<form method="post" action="/console/approvals/${r.id}/decide" class="decide"
 data-sign="decision" data-audience="${p.deps.baseUrl()}/console/approvals" data-approval="${r.id}" data-binding="${r.binding}" data-decision="${decision}">
<input type="hidden" name="csrf" value="${p.session.csrf}">
<input type="hidden" name="decision" value="${decision}">
<input type="hidden" name="binding" value="${r.binding}">
<input type="hidden" name="assertion" value="">
<label for="reason-${decision}-${r.id}">Reason${decision === "deny" ? " (required)" : " (optional)"}</label>
<textarea id="reason-${decision}-${r.id}" name="reason" rows="2" maxlength="1000"${decision === "deny" ? " required" : ""}></textarea>
<p class="status" role="status" aria-live="polite"></p>
<button type="submit" class="${decision}">${decision === "approve" ? "Approve" : "Deny"} (signed with your key)</button>
</form>`,
        );
  return h`<article class="card request" id="req-${r.id}" aria-labelledby="t-${r.id}">
<h2 id="t-${r.id}">${r.agent}: ${held ? "held call" : r.playbook} in ${r.environment}</h2>
<dl class="facts">
<dt>Request</dt><dd><code>${r.id}</code></dd>
<dt>Agent</dt><dd>${r.agent}</dd>
<dt>Playbook</dt><dd>${r.playbook}</dd>
<dt>Environment</dt><dd>${r.environment}</dd>
<dt>Ticket</dt><dd>${r.ticket ?? "none"}</dd>
<dt>Audience</dt><dd>${r.audience ?? "the gateway"}</dd>
<dt>Requested by</dt><dd>${r.requester}</dd>
<dt>Expires</dt><dd>${instant(r.expiresAt)}</dd>
</dl>
${subject}
<h3>Decisions so far</h3>
${decided.length === 0 ? h`<p>None yet.</p>` : h`<ul>${decided}</ul>`}
<p><strong>Still needed:</strong> ${stale ?? evaluation?.missing ?? (evaluation?.state === "approved" ? "nothing" : "—")}</p>
<div class="actions">${forms}</div>
</article>`;
}

export async function approvalsPage(p: PageContext): Promise<View> {
  const env = param(p.c, "env", 200);
  const pending = await p.deps.approvals.listPending({ environment: env, now: p.now });
  const shown = pending.slice(0, PAGE);
  const args = await heldArguments(
    p,
    shown.filter((r) => r.playbook.startsWith("mcp:")).map((r) => r.id),
  );
  const done = param(p.c, "decided", 256);
  const doneStatus = param(p.c, "status", 20);
  const envs = [...p.deps.config.environments.keys()];
  const body = h`${done ? h`<p class="flash" role="status">Your decision on <code>${done}</code> was recorded; the request is now <strong>${doneStatus ?? ""}</strong>.</p>` : ""}
<form method="get" class="filters" action="/console/approvals">
<label for="f-env">Environment</label>
<select id="f-env" name="env"><option value="">all</option>${envs.map((e) => h`<option${e === env ? h` selected` : ""}>${e}</option>`)}</select>
<button type="submit">Filter</button>
</form>
<p>${pending.length} pending request${pending.length === 1 ? "" : "s"}${pending.length > PAGE ? ` (the oldest ${PAGE} shown)` : ""}.</p>
${shown.map((r) => requestCard(p, r, args))}
<p><a href="/console/approvals${env ? `?env=${encodeURIComponent(env)}` : ""}">Refresh</a></p>`;
  return { title: "Approvals", body };
}

function payloadOf(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1] ?? "";
  try {
    const v = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw consoleError(ERR_CONSOLE_SIGNATURE, "the signed decision is not a JWT");
}

export async function decideApproval(a: ActionContext): Promise<View> {
  const id = a.c.req.param("id")!;
  const decision = field(a.form, "decision");
  if (decision !== "approve" && decision !== "deny") {
    throw consoleError(ERR_CONSOLE_INPUT, "field `decision` must be approve or deny");
  }
  // a form sends a textarea's line breaks as CRLF; the page signed them as LF
  const reason = (a.form.get("reason") ?? "").replace(/\r\n/g, "\n").trim() || undefined;
  const assertion = a.form.get("assertion") ?? "";
  if (assertion === "") {
    throw consoleError(
      ERR_CONSOLE_SIGNATURE,
      "the decision is not signed: the page signs it with your key (sign in again to import it)",
    );
  }
  // a failing replay cache is thrown on: the server's failure, not a refused signature
  const auth = await checkClient(
    { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion },
    {
      config: approverPrincipals(a.deps.config),
      audiences: [`${a.deps.baseUrl()}/console/approvals`],
      replay: a.deps.replay,
      clock: a.deps.clock,
    },
  );
  if (auth instanceof ClientRefused) {
    throw consoleError(
      ERR_CONSOLE_SIGNATURE,
      `the signed decision was refused (${auth.code}): ${auth.message}`,
    );
  }
  const who = auth.agent.id;
  if (who !== a.session.who) {
    throw consoleError(
      ERR_CONSOLE_AUTH,
      `the decision is signed by ${q(who)}, not by ${q(a.session.who)} who is signed in`,
    );
  }
  const claims = payloadOf(assertion);
  const request = await a.deps.approvals.get(id);
  if (request === undefined) throw consoleError("ERR_CONSOLE_NOT_FOUND", `no approval request ${q(id)}`);
  const signedReason =
    typeof claims.reason === "string" && claims.reason.trim() !== "" ? claims.reason.trim() : undefined;
  if (
    claims.approval !== id ||
    claims.decision !== decision ||
    claims.binding !== request.binding ||
    signedReason !== reason
  ) {
    throw consoleError(
      ERR_CONSOLE_SIGNATURE,
      "the signature does not cover this decision: the request, its binding, the decision and the reason must be the ones signed",
    );
  }
  const result = await a.deps.approvals.decide(
    id,
    { approver: who, decision, reason },
    { config: a.deps.config, now: a.now },
  );
  return {
    redirect: `/console/approvals?decided=${encodeURIComponent(id)}&status=${result.request.status}`,
  };
}
