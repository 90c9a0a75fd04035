/**
 * The agents inventory and the maturity check (src/operate, docs/maturity.md) as console pages:
 * the same pure functions `writ agents` and `writ maturity` run, over one read of the store. The
 * maturity page does not verify the audit log on every load (a walk of the whole chain): its
 * tamper-resistance answer says so, and the Audit page verifies on demand.
 */
import {
  type AgentEntry,
  type AuditEvidence,
  assessMaturity,
  buildInventory,
  formatRef,
  type Inventory,
  type InventoryCredential,
  type MaturityReport,
  type OperationalState,
  readOperationalState,
} from "../operate/index.js";
import type { ConsoleDeps } from "./deps.js";
import { h, instant, query } from "./html.js";
import type { OperationalCache } from "./operate-cache.js";
import type { PageContext, View } from "./routes.js";

/**
 * The most audit records a page load reads for agents' last activity: the walk back from the
 * newest record stops earlier when every declared agent is found. An agent not found is shown as
 * active before the oldest record read (and flagged dormant only when that is past the limit).
 */
export const CONSOLE_ACTIVITY_RECORDS = 20_000;

/** The most seconds the pages' state is served before a background read replaces it. */
export const OPERATE_MAX_AGE_S = 10;

/** The store read for the Agents and Maturity pages, bounded as `CONSOLE_ACTIVITY_RECORDS` says. */
export function consoleOperationalState(deps: ConsoleDeps, now: Date): Promise<OperationalState> {
  return readOperationalState(deps.store, {
    now,
    activity: { agents: [...deps.config.agents.keys()], maxRecords: CONSOLE_ACTIVITY_RECORDS },
  });
}

// What the pages judge from one cached read, judged once per read (pure functions of it and the config).
const inventories = new WeakMap<OperationalState, Inventory>();
const reports = new WeakMap<OperationalState, MaturityReport>();
function derived<T>(memo: WeakMap<OperationalState, T>, state: OperationalState, make: () => T): T {
  let v = memo.get(state);
  if (v === undefined) {
    v = make();
    memo.set(state, v);
  }
  return v;
}

/** How old the shown state is, and how far back the audit log was read for last activity. */
function asOf(state: OperationalState, now: Date) {
  const age = Math.max(0, Math.round((now.getTime() - state.at.getTime()) / 1000));
  const scan = state.activityScan;
  return h`<p class="asof"><small>Read from the store at ${instant(state.at)} (${age} s ago; refreshed in the background at most every ${OPERATE_MAX_AGE_S} s). Last activity from ${scan.complete ? "the whole audit log" : `the newest ${scan.records.toLocaleString("en-US")} audit records`}${scan.since && !scan.complete ? h` (since ${instant(scan.since)})` : ""}.</small></p>`;
}

function credential(c: InventoryCredential) {
  switch (c.kind) {
    case "writ":
      return h`writ <code class="id">${c.id}</code> (${c.playbook} in ${c.environment}, until ${instant(c.expiresAt)}${c.usesLeft === undefined ? "" : `, ${c.usesLeft} uses left`}${c.lastUsedAt ? `, last used ${instant(c.lastUsedAt)}` : ", unused"})`;
    case "downstream":
      return h`${c.system} ${c.credentialKind} for writ <code class="id">${c.writ}</code> (until ${instant(c.expiresAt)}, writ ${c.writStatus})`;
    default:
      return h`${c.type}: ${c.name} — ${c.detail}`;
  }
}

/** Credentials and flags listed per agent, and evidence per maturity answer; the rest are counted and on the Live writs page (and in `writ agents show`). */
export const ROWS_SHOWN = 10;

function more(total: number, agent: string) {
  return total <= ROWS_SHOWN
    ? ""
    : h`<li>… and ${total - ROWS_SHOWN} more (${total} in all: <a href="/console/writs${query({ agent })}">live writs</a>, <code>writ agents show ${agent}</code>)</li>`;
}

function agentRow(a: AgentEntry) {
  return h`<tr${a.flags.length > 0 ? h` class="flagged"` : ""}>
<th scope="row"><a href="/console/writs${query({ agent: a.id })}">${a.id}</a>${a.declared ? "" : h` <span class="tag">undeclared</span>`}</th>
<td>${a.owner ?? "—"}</td><td>${a.purpose ?? "—"}</td><td>${a.runnerClass ?? "—"}${a.ceiling ? h`<br><small>ceiling max TTL ${a.ceiling.maxTtl}</small>` : ""}</td>
<td><ul class="grants">${a.baseline.map((g) => h`<li><code>${g.action}</code> on <code>${g.resource}</code></li>`)}</ul></td>
<td>${a.credentials.length === 0 ? "none" : h`<ul>${a.credentials.slice(0, ROWS_SHOWN).map((c) => h`<li>${credential(c)}</li>`)}${more(a.credentials.length, a.id)}</ul>`}</td>
<td>${a.lastActivity ? h`${instant(a.lastActivity.at)}<br><small>${a.lastActivity.type}</small>` : a.activityOlderThan ? h`before ${instant(a.activityOlderThan)}<br><small>not in the newest audit records read</small>` : "never"}</td>
<td>${a.openFindings.length}</td>
<td>${a.flags.length === 0 ? "—" : h`<ul>${a.flags.slice(0, ROWS_SHOWN).map((f) => h`<li><strong>${f.code}</strong>: ${f.message}</li>`)}${more(a.flags.length, a.id)}</ul>`}</td>
</tr>`;
}

export async function agentsPage(p: PageContext, cache: OperationalCache): Promise<View> {
  const state = await cache.get(p.now);
  const inv = derived(inventories, state, () =>
    buildInventory(p.deps.config, state, { now: state.at, locate: p.deps.locate }),
  );
  const flagged = inv.agents.filter((a) => a.flags.length > 0).length;
  const body = h`<p>${inv.agents.length} agents; ${flagged} flagged (dormant after ${inv.dormantDays} days without activity, credentials that outlive their use, agents the store knows but writ.yaml does not declare). ${inv.unattributedFindings} unresolved findings tied to no agent. Also <code>writ agents list|show --json</code>.</p>
${asOf(state, p.now)}
<div class="scroll"><table class="list"><caption>Agents inventory</caption>
<thead><tr><th scope="col">Agent</th><th scope="col">Owner</th><th scope="col">Purpose</th><th scope="col">Runner class</th><th scope="col">Baseline</th><th scope="col">Credentials</th><th scope="col">Last activity</th><th scope="col">Open findings</th><th scope="col">Flags</th></tr></thead>
<tbody>${inv.agents.map(agentRow)}</tbody></table></div>`;
  return { title: "Agents", body };
}

export async function maturityPage(p: PageContext, cache: OperationalCache): Promise<View> {
  const state = await cache.get(p.now);
  const audit: AuditEvidence = {
    kind: "not-checked",
    reason: "the console does not walk the whole chain on every load: verify it on the Audit page",
  };
  const report = derived(reports, state, () =>
    assessMaturity(p.deps.config, state, audit, { now: state.at, locate: p.deps.locate }),
  );
  const body = h`<p>Each agent against the practices writ is built on, with the evidence for each answer and what to change (<code>writ maturity</code>, docs/maturity.md).</p>
${asOf(state, p.now)}
${report.agents.map(
  (
    a,
  ) => h`<section class="card" aria-labelledby="m-${a.agent}"><h2 id="m-${a.agent}">${a.agent} — ${a.score}%</h2>
<p>${a.passed} passed, ${a.failed} failed, ${a.unknown} unknown; owner ${a.owner}.</p>
<div class="scroll"><table class="list"><thead><tr><th scope="col">Practice</th><th scope="col">Answer</th><th scope="col">Why</th><th scope="col">Evidence</th><th scope="col">What to change</th></tr></thead>
<tbody>${a.answers.map(
    (
      x,
    ) => h`<tr><th scope="row">${x.title}</th><td class="${x.status === "pass" ? "ok" : x.status === "fail" ? "warn" : ""}">${x.status}</td><td>${x.summary}</td>
<td><ul>${x.evidence.slice(0, ROWS_SHOWN).map((e) => h`<li><code>${formatRef(e.source)}</code>: ${e.note}</li>`)}${x.evidence.length > ROWS_SHOWN ? h`<li>… and ${x.evidence.length - ROWS_SHOWN} more (<code>writ maturity --json</code>)</li>` : ""}</ul></td><td>${x.fix ?? ""}</td></tr>`,
  )}</tbody></table></div></section>`,
)}`;
  return { title: "Maturity", body };
}
