/**
 * Findings from the analyzer's queue (`writ scan --store`): grouped by workload, filtered by status,
 * category, severity and workload, 100 a page (keyset on workload and id); one finding with its
 * evidence chain, its generated fix and its history; status changes with a note, kept in history.
 */

import { q } from "../core/index.js";
import { FINDING_STATUSES, type FindingStatus } from "../store/index.js";
import { consoleError, ERR_CONSOLE_INPUT, ERR_CONSOLE_NOT_FOUND } from "./errors.js";
import { h, instant, query } from "./html.js";
import { type ActionContext, field, type PageContext, param, type View } from "./routes.js";

const PAGE = 100;
const CATEGORIES = ["unused-excess", "unjustified-use", "inherited-overreach"];
const SEVERITIES = ["critical", "high", "medium", "low", "info"];

function oneOf(name: string, value: string | undefined, allowed: readonly string[]): string | undefined {
  if (value !== undefined && !allowed.includes(value)) {
    throw consoleError(ERR_CONSOLE_INPUT, `parameter ${q(name)} must be one of ${allowed.join(", ")}`);
  }
  return value;
}

const select = (name: string, label: string, value: string | undefined, options: readonly string[]) =>
  h`<label for="f-${name}">${label}</label><select id="f-${name}" name="${name}"><option value="">all</option>${options.map((o) => h`<option${o === value ? h` selected` : ""}>${o}</option>`)}</select>`;

/** The page cursor: base64url of `[workload, id]`. */
function cursor(text: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "string"))
      return v as [string, string];
  } catch {}
  throw consoleError(ERR_CONSOLE_INPUT, "parameter `after` is not a page cursor");
}

export async function findingsPage(p: PageContext): Promise<View> {
  const status = oneOf("status", param(p.c, "status", 40), FINDING_STATUSES);
  const category = oneOf("category", param(p.c, "category", 40), CATEGORIES);
  const severity = oneOf("severity", param(p.c, "severity", 40), SEVERITIES);
  const workload = param(p.c, "workload", 500);
  const after = param(p.c, "after", 1000);
  const rows = await p.deps.store.findings.page(
    { status, category, severity, workload },
    after ? cursor(after) : undefined,
    PAGE + 1,
  );
  const shown = rows.slice(0, PAGE);
  const last = shown.at(-1);
  const keep = { status, category, severity, workload };
  const groups = new Map<string, typeof shown>();
  for (const r of shown) groups.set(r.workload, [...(groups.get(r.workload) ?? []), r]);
  const body = h`<form method="get" class="filters" action="/console/findings">
${select("status", "Status", status, FINDING_STATUSES)}
${select("category", "Category", category, CATEGORIES)}
${select("severity", "Severity", severity, SEVERITIES)}
<label for="f-workload">Workload</label><input id="f-workload" name="workload" value="${workload ?? ""}">
<button type="submit">Filter</button>
</form>
${shown.length === 0 ? h`<p>No findings${status || category || severity || workload ? " match" : " in the store (run <code>writ scan --store</code>)"}.</p>` : ""}
${[...groups].map(
  ([
    w,
    fs,
  ]) => h`<section class="card" aria-label="Workload ${w}"><h2><a href="/console/findings${query({ ...keep, workload: w })}">${w}</a></h2>
<div class="scroll"><table class="list"><thead><tr><th scope="col">Finding</th><th scope="col">Category</th><th scope="col">Severity</th><th scope="col">Permission</th><th scope="col">Status</th><th scope="col">Last seen</th></tr></thead>
<tbody>${fs.map((f) => h`<tr><td><a href="/console/findings/${encodeURIComponent(f.id)}">${f.title}</a></td><td>${f.category}</td><td>${f.severity}</td><td><code>${f.action}</code> on <code>${f.resource}</code></td><td>${f.status}</td><td>${instant(f.lastSeen)}</td></tr>`)}</tbody></table></div></section>`,
)}
<p class="pager">${after ? h`<a href="/console/findings${query(keep)}">First</a> ` : ""}${rows.length > PAGE && last ? h`<a href="/console/findings${query({ ...keep, after: Buffer.from(JSON.stringify([last.workload, last.id])).toString("base64url") })}" rel="next">Next</a>` : ""}</p>`;
  return { title: "Findings", body };
}

interface FindingDoc {
  evidence?: { kind?: string; ref?: string; label?: string }[];
  reduction?: { kind?: string; summary?: string; files?: { path?: string; content?: string }[] };
  misclassification?: string;
  confidence?: number;
}

export async function findingPage(p: PageContext): Promise<View> {
  const id = p.c.req.param("id")!;
  if (id.length > 500) throw consoleError(ERR_CONSOLE_INPUT, "finding id is longer than 500 characters");
  const got = await p.deps.store.findings.get(id).catch((err: unknown) => {
    if ((err as { code?: string }).code === "ERR_FINDING_NOT_FOUND")
      throw consoleError(ERR_CONSOLE_NOT_FOUND, `no finding ${q(id)}`);
    throw err;
  });
  const f = got.finding;
  const doc = (typeof f.finding === "object" && f.finding !== null ? f.finding : {}) as FindingDoc;
  const body = h`<dl class="facts">
<dt>Workload</dt><dd>${f.workload}</dd><dt>Permission</dt><dd><code>${f.action}</code> on <code>${f.resource}</code></dd>
<dt>Category</dt><dd>${f.category}</dd><dt>Severity</dt><dd>${f.severity}</dd><dt>Status</dt><dd>${f.status}</dd>
<dt>First seen</dt><dd>${instant(f.firstSeen)}</dd><dt>Last seen</dt><dd>${instant(f.lastSeen)}</dd>
${doc.confidence === undefined ? "" : h`<dt>Confidence</dt><dd>${doc.confidence}</dd>`}
</dl>
<h2>Evidence</h2>
<ol class="chain">${(doc.evidence ?? []).map((e) => h`<li><span class="tag">${e.kind ?? ""}</span> ${e.label ?? ""} <code>${e.ref ?? ""}</code></li>`)}</ol>
<h2>Generated fix</h2>
<p>${doc.reduction?.summary ?? "none"}</p>
${(doc.reduction?.files ?? []).map((file) => h`<h3><code>${file.path ?? ""}</code></h3><pre>${file.content ?? ""}</pre>`)}
${doc.misclassification ? h`<p class="note">If misclassified: ${doc.misclassification}</p>` : ""}
<h2>Status</h2>
<form method="post" action="/console/findings/${encodeURIComponent(f.id)}/status" class="stack">
<input type="hidden" name="csrf" value="${p.session.csrf}">
<label for="s-status">New status</label>
<select id="s-status" name="status">${FINDING_STATUSES.map((s) => h`<option${s === f.status ? h` selected` : ""}>${s}</option>`)}</select>
<label for="s-note">Note</label><textarea id="s-note" name="note" rows="2" maxlength="1000"></textarea>
<button type="submit">Change status</button>
</form>
<h2>History</h2>
<ol class="history">${got.history.map((e) => h`<li>${instant(e.at)} — ${e.kind}${e.fromStatus || e.toStatus ? h`: ${e.fromStatus ?? "—"} → ${e.toStatus ?? "—"}` : ""}${e.fromCategory !== e.toCategory && e.toCategory ? h` (category ${e.fromCategory ?? "—"} → ${e.toCategory})` : ""} by ${e.actor}${e.note ? h`: “${e.note}”` : ""}</li>`)}</ol>`;
  return { title: f.title, body };
}

export async function setFindingStatus(a: ActionContext): Promise<View> {
  const id = a.c.req.param("id")!;
  const status = field(a.form, "status");
  if (!(FINDING_STATUSES as readonly string[]).includes(status)) {
    throw consoleError(ERR_CONSOLE_INPUT, `field \`status\` must be one of ${FINDING_STATUSES.join(", ")}`);
  }
  const note = (a.form.get("note") ?? "").trim();
  await a.deps.store.findings.setStatus(id, status as FindingStatus, {
    actor: `console:${a.session.who}`,
    ...(note === "" ? {} : { note }),
    at: a.now,
  });
  return { redirect: `/console/findings/${encodeURIComponent(id)}` };
}
