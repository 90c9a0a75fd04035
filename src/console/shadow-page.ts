/**
 * Shadow mode (docs/shadow.md): what rules in `mode: shadow` would have blocked, by rule, agent and
 * reason — the report `writ report shadow` prints, over a bounded read (the newest
 * `CONSOLE_SHADOW_RECORDS` audit records of the period, the largest `CONSOLE_SHADOW_GROUPS` groups).
 */
import { isWritError, parseDuration, q } from "../core/index.js";
import { readShadowReport } from "../operate/index.js";
import { consoleError, ERR_CONSOLE_INPUT } from "./errors.js";
import { h, query } from "./html.js";
import { reasonLink } from "./info-pages.js";
import { type PageContext, param, type View } from "./routes.js";

export const CONSOLE_SHADOW_RECORDS = 20_000;
export const CONSOLE_SHADOW_GROUPS = 100;
const MAX_SINCE_S = 366 * 86_400;

export async function shadowPage(p: PageContext): Promise<View> {
  const sinceText = param(p.c, "since", 20) ?? "7d";
  let seconds: number;
  try {
    seconds = parseDuration(sinceText);
  } catch (err) {
    if (!isWritError(err)) throw err;
    throw consoleError(
      ERR_CONSOLE_INPUT,
      `parameter \`since\` ${q(sinceText)}: write a duration such as 24h or 7d`,
    );
  }
  if (seconds > MAX_SINCE_S) throw consoleError(ERR_CONSOLE_INPUT, "parameter `since` is at most a year");
  const since = new Date(p.now.getTime() - seconds * 1000);
  const r = await readShadowReport(p.deps.store, {
    since,
    now: p.now,
    maxScan: CONSOLE_SHADOW_RECORDS,
    maxGroups: CONSOLE_SHADOW_GROUPS,
  });
  const body = h`<p>What rules in <code>mode: shadow</code> would have blocked: each was recorded and the request went on, unless an enforcing rule denied it too. The evidence to read before switching a rule to <code>enforce</code> (also <code>writ report shadow --since ${sinceText} --json</code>).</p>
<form method="get" class="filters" action="/console/shadow">
<label for="s-since">Since</label><input id="s-since" name="since" value="${sinceText}">
<button type="submit">Show</button></form>
<p>${r.total} would-have-denied in ${r.groups.length + r.groupsOmitted} groups since ${r.since}.${r.groupsOmitted > 0 ? ` The ${r.groupsOmitted} smallest groups are not shown.` : ""}${r.complete ? "" : ` Only the newest ${CONSOLE_SHADOW_RECORDS.toLocaleString("en-US")} audit records of the period were read.`}</p>
${
  r.groups.length === 0
    ? h`<p>Nothing: no rule in shadow mode would have denied a request in this period.</p>`
    : h`<div class="scroll"><table class="list"><caption>Would have denied</caption>
<thead><tr><th scope="col">Rule</th><th scope="col">Agent</th><th scope="col">Reason</th><th scope="col">Count</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col">Example</th></tr></thead>
<tbody>${r.groups.map(
        (g) => h`<tr><th scope="row"><code>${g.rule}</code><br><small>${g.kind}</small></th>
<td><a href="/console/audit${query({ agent: g.agent })}">${g.agent || "—"}</a></td><td>${reasonLink(g.reason)}</td><td>${g.count}</td>
<td>${g.firstSeen.slice(0, 19).replace("T", " ")}Z</td><td>${g.lastSeen.slice(0, 19).replace("T", " ")}Z</td>
<td><small>#${g.example.seq} ${g.example.type} ${g.example.action ?? g.example.tool ?? ""} ${g.example.resource ?? g.example.playbook ?? ""} — ${g.example.outcome === "allowed" ? "went on" : "denied by an enforcing rule too"}</small><br>${g.example.message}</td></tr>`,
      )}</tbody></table></div>`
}`;
  return { title: "Shadow mode", body };
}
