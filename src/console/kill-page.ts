/**
 * The kill switch: what is engaged (lift it), and engaging one for an agent, a runner class, an
 * environment or everything — after a confirmation page naming the writs it will revoke.
 */
import type { KillScope } from "../broker/index.js";
import { describeScope } from "../broker/index.js";
import { q } from "../core/index.js";
import { consoleError, ERR_CONSOLE_INPUT } from "./errors.js";
import { h, instant } from "./html.js";
import { type ActionContext, type Form, field, type PageContext, type View } from "./routes.js";

const SHOWN = 100;

function scopeOf(form: Form, p: PageContext): KillScope {
  const kind = field(form, "kind");
  if (kind === "all") return { kind: "all" };
  const target = (form.get(`target_${kind}`) ?? form.get("target") ?? "").trim();
  if (target === "")
    throw consoleError(ERR_CONSOLE_INPUT, `field ${q(`target_${kind}`)} is required for a ${kind} kill`);
  const config = p.deps.config;
  switch (kind) {
    case "agent":
      if (!config.agents.has(target)) throw consoleError(ERR_CONSOLE_INPUT, `unknown agent ${q(target)}`);
      return { kind, agent: target };
    case "class":
      if (!config.runnerClasses.has(target))
        throw consoleError(ERR_CONSOLE_INPUT, `unknown runner class ${q(target)}`);
      return { kind, runnerClass: target };
    case "environment":
      if (!config.environments.has(target))
        throw consoleError(ERR_CONSOLE_INPUT, `unknown environment ${q(target)}`);
      return { kind, environment: target };
    default:
      throw consoleError(ERR_CONSOLE_INPUT, "field `kind` must be agent, class, environment or all");
  }
}

function targetOf(scope: KillScope): string {
  return scope.kind === "agent"
    ? scope.agent
    : scope.kind === "class"
      ? scope.runnerClass
      : scope.kind === "environment"
        ? scope.environment
        : "";
}

/** The live writs a kill of `scope` would revoke: the first `SHOWN`, and how many in all. */
async function inScope(p: PageContext, scope: KillScope) {
  const agents =
    scope.kind === "class"
      ? [...p.deps.config.agents.values()].filter((a) => a.runnerClass === scope.runnerClass).map((a) => a.id)
      : undefined;
  return p.deps.store.liveWrits.inReach(
    {
      agent: scope.kind === "agent" ? scope.agent : undefined,
      environment: scope.kind === "environment" ? scope.environment : undefined,
      agents,
    },
    p.now,
    SHOWN,
  );
}

function scopeFields(scope: KillScope) {
  return h`<input type="hidden" name="kind" value="${scope.kind}"><input type="hidden" name="target" value="${targetOf(scope)}">`;
}

export async function killPage(p: PageContext): Promise<View> {
  const engaged = await p.deps.operator.engagedKills();
  const c = p.deps.config;
  const flash = p.c.req.query("done");
  const body = h`${flash ? h`<p class="flash" role="status">${flash.slice(0, 300)}</p>` : ""}
<h2>Engaged</h2>
${
  engaged.length === 0
    ? h`<p>No kill is engaged.</p>`
    : h`<ul class="kills">${engaged.map(
        (
          k,
        ) => h`<li><strong>${describeScope(k.scope)}</strong> since ${instant(k.engagedAt)} by ${k.engagedBy}${k.reason ? h`: “${k.reason}”` : ""}
<form method="post" action="/console/kill/lift" class="inline">
<input type="hidden" name="csrf" value="${p.session.csrf}">${scopeFields(k.scope)}
<button type="submit" aria-label="Lift the kill on ${describeScope(k.scope)}">Lift</button></form></li>`,
      )}</ul>`
}
<h2>Engage</h2>
<p>Stops issuance and revokes every live writ in scope (and what downstream systems hold for them). You confirm on the next page, which lists what will be revoked.</p>
<form method="post" action="/console/kill/confirm" class="kill">
<input type="hidden" name="csrf" value="${p.session.csrf}">
<fieldset><legend>Scope</legend>
<div class="choice"><input type="radio" id="k-agent" name="kind" value="agent" checked><label for="k-agent">Agent</label>
<label for="t-agent" class="sr">Agent</label><select id="t-agent" name="target_agent">${[...c.agents.keys()].map((a) => h`<option>${a}</option>`)}</select></div>
<div class="choice"><input type="radio" id="k-class" name="kind" value="class"><label for="k-class">Runner class</label>
<label for="t-class" class="sr">Runner class</label><select id="t-class" name="target_class">${[...c.runnerClasses.keys()].map((a) => h`<option>${a}</option>`)}</select></div>
<div class="choice"><input type="radio" id="k-env" name="kind" value="environment"><label for="k-env">Environment</label>
<label for="t-env" class="sr">Environment</label><select id="t-env" name="target_environment">${[...c.environments.keys()].map((a) => h`<option>${a}</option>`)}</select></div>
<div class="choice"><input type="radio" id="k-all" name="kind" value="all"><label for="k-all">Everything</label></div>
</fieldset>
<label for="k-reason">Reason</label>
<textarea id="k-reason" name="reason" rows="2" maxlength="1000"></textarea>
<button type="submit" class="danger">Review what this revokes</button>
</form>`;
  return { title: "Kill switch", body };
}

export async function killConfirm(a: ActionContext): Promise<View> {
  const scope = scopeOf(a.form, a);
  const reason = (a.form.get("reason") ?? "").trim();
  const { rows, count } = await inScope(a, scope);
  const body = h`<p role="alert" class="warn">Engaging a kill on <strong>${describeScope(scope)}</strong> stops all issuance in that scope and revokes <strong>${count}</strong> live writ${count === 1 ? "" : "s"}${count > SHOWN ? ` (the newest ${SHOWN} listed)` : ""}.</p>
${
  rows.length === 0
    ? ""
    : h`<div class="scroll"><table class="list"><caption>Writs that will be revoked</caption>
<thead><tr><th scope="col">Writ</th><th scope="col">Agent</th><th scope="col">Playbook</th><th scope="col">Env</th><th scope="col">Expires</th></tr></thead>
<tbody>${rows.map((w) => h`<tr><td><code class="id">${w.id}</code></td><td>${w.agent}</td><td>${w.playbook}</td><td>${w.environment}</td><td>${instant(w.expiresAt)}</td></tr>`)}</tbody></table></div>`
}
<form method="post" action="/console/kill/engage">
<input type="hidden" name="csrf" value="${a.session.csrf}">${scopeFields(scope)}
<input type="hidden" name="reason" value="${reason}">
<button type="submit" class="danger">Engage the kill on ${describeScope(scope)}</button>
<a href="/console/kill">Cancel</a>
</form>`;
  return { title: "Confirm the kill", body };
}

export async function killEngage(a: ActionContext): Promise<View> {
  const scope = scopeOf(a.form, a);
  const reason = (a.form.get("reason") ?? "").trim() || undefined;
  const r = await a.deps.operator.engageKill(scope, { by: `console:${a.session.who}`, reason });
  const done = `Kill engaged on ${describeScope(scope)}: ${r.revoked.length} writ${r.revoked.length === 1 ? "" : "s"} revoked.`;
  return { redirect: `/console/kill?done=${encodeURIComponent(done)}` };
}

export async function killLift(a: ActionContext): Promise<View> {
  const scope = scopeOf(a.form, a);
  const r = await a.deps.operator.liftKill(scope, { by: `console:${a.session.who}` });
  const done = `Kill on ${describeScope(scope)} lifted (${r.lifted.length}).`;
  return { redirect: `/console/kill?done=${encodeURIComponent(done)}` };
}
