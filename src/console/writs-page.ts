/**
 * Live writs: active, unexpired writs, newest first, 50 a page (keyset on issue time and id), with
 * their grants, expiry, uses left and the downstream credentials made for them; revoke one.
 */
import { consoleError, ERR_CONSOLE_INPUT } from "./errors.js";
import { h, instant, query } from "./html.js";
import { type ActionContext, type PageContext, param, type View } from "./routes.js";

const PAGE = 50;

/** `<issued ms>.<id>`: where the next page starts. */
function cursorOf(text: string | undefined): { at: Date; id: string } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,15})\.(.{1,200})$/.exec(text);
  if (!m) throw consoleError(ERR_CONSOLE_INPUT, "parameter `before` is not a page cursor");
  return { at: new Date(Number(m[1])), id: m[2]! };
}

export async function writsPage(p: PageContext): Promise<View> {
  const agent = param(p.c, "agent", 200);
  const env = param(p.c, "env", 200);
  const before = cursorOf(param(p.c, "before", 300));
  const rows = await p.deps.store.liveWrits.page({ agent, environment: env }, before, p.now, PAGE + 1);
  const more = rows.length > PAGE;
  const shown = rows.slice(0, PAGE);
  const creds = await p.deps.store.liveWrits.credentials(shown.map((r) => r.id));
  const credsOf = new Map<string, typeof creds>();
  for (const c of creds) credsOf.set(c.writ, [...(credsOf.get(c.writ) ?? []), c]);
  const last = shown.at(-1);
  const next =
    more && last ? query({ agent, env, before: `${last.issuedAt.getTime()}.${last.id}` }) : undefined;
  const envs = [...p.deps.config.environments.keys()];
  const revoked = param(p.c, "revoked", 300);
  const body = h`${revoked ? h`<p class="flash" role="status">Writ <code>${revoked}</code> revoked.</p>` : ""}
<form method="get" class="filters" action="/console/writs">
<label for="f-agent">Agent</label><input id="f-agent" name="agent" value="${agent ?? ""}" list="agent-ids">
<datalist id="agent-ids">${[...p.deps.config.agents.keys()].map((a) => h`<option value="${a}">`)}</datalist>
<label for="f-env">Environment</label>
<select id="f-env" name="env"><option value="">all</option>${envs.map((e) => h`<option${e === env ? h` selected` : ""}>${e}</option>`)}</select>
<button type="submit">Filter</button>
</form>
${
  shown.length === 0
    ? h`<p>No live writs${agent || env ? " match" : ""}.</p>`
    : h`<div class="scroll"><table class="list">
<caption>Active writs, newest first</caption>
<thead><tr><th scope="col">Writ</th><th scope="col">Agent</th><th scope="col">Playbook</th><th scope="col">Env</th><th scope="col">Resources</th><th scope="col">Expires</th><th scope="col">Uses left</th><th scope="col">Downstream</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
<tbody>${shown.map((w) => {
        const grants = Array.isArray(w.grants)
          ? (w.grants as { action?: unknown; resource?: unknown }[])
          : [];
        const left = w.maxUses === null ? "unlimited" : String(Math.max(0, w.maxUses - w.uses));
        const ds = credsOf.get(w.id) ?? [];
        return h`<tr>
<td><code class="id">${w.id}</code>${w.ticket ? h`<br><small>ticket ${w.ticket}</small>` : ""}${w.sponsor ? h`<br><small>for ${w.sponsor}</small>` : ""}</td>
<td>${w.agent}</td><td>${w.playbook}</td><td>${w.environment}</td>
<td><ul class="grants">${grants.map((g) => h`<li><code>${String(g.action)}</code> on <code>${String(g.resource)}</code></li>`)}</ul></td>
<td>${instant(w.expiresAt)}</td><td>${left}</td>
<td>${ds.length === 0 ? "none" : h`<ul>${ds.map((d) => h`<li>${d.system} ${d.kind} (${d.state}, until ${instant(d.expiresAt)})</li>`)}</ul>`}</td>
<td><form method="post" action="/console/writs/${w.id}/revoke">
<input type="hidden" name="csrf" value="${p.session.csrf}">
<button type="submit" class="danger" aria-label="Revoke writ ${w.id}">Revoke</button>
</form></td>
</tr>`;
      })}</tbody></table></div>`
}
<p class="pager">${before ? h`<a href="/console/writs${query({ agent, env })}">Newest</a> ` : ""}${next ? h`<a href="/console/writs${next}" rel="next">Older</a>` : ""}</p>`;
  return { title: "Live writs", body };
}

export async function revokeWrit(a: ActionContext): Promise<View> {
  const id = a.c.req.param("id")!;
  if (id.length > 200) throw consoleError(ERR_CONSOLE_INPUT, "writ id is longer than 200 characters");
  const r = await a.deps.revokeWrit(id, `console:${a.session.who}`);
  return { redirect: `/console/writs?revoked=${encodeURIComponent(r.writ.id)}` };
}
