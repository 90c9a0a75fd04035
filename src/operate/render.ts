/**
 * Renderings of the inventory and the maturity report: a terminal table and text, and one
 * self-contained HTML page (no script, no external asset; every value escaped).
 */
import type { Inventory } from "./inventory.js";
import type { AnswerStatus, MaturityReport } from "./maturity.js";
import { formatRef } from "./surface.js";

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text as HTML element content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] ?? ch);
}

/** Control characters (a name from the audit log can hold any) shown, not obeyed, by a terminal. */
function plain(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? `\\u${c.toString(16).padStart(4, "0")}` : ch;
  }
  return out;
}

/** Rows as text columns, each as wide as its widest cell, two spaces apart, no trailing blanks. */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function inventoryText(inv: Inventory): string {
  if (inv.agents.length === 0) return "no agents";
  const rows: string[][] = [
    ["AGENT", "OWNER", "CLASS", "WRITS", "DOWNSTREAM", "LAST ACTIVITY", "FINDINGS", "FLAGS"],
  ];
  for (const a of inv.agents) {
    rows.push([
      plain(a.id),
      a.owner ?? "—",
      a.runnerClass ?? "—",
      String(a.credentials.filter((c) => c.kind === "writ").length),
      String(a.credentials.filter((c) => c.kind === "downstream").length),
      a.lastActivity
        ? a.lastActivity.at.toISOString().slice(0, 16).replace("T", " ")
        : a.activityOlderThan
          ? `before ${a.activityOlderThan.toISOString().slice(0, 16).replace("T", " ")}`
          : "never",
      String(a.openFindings.length),
      [...new Set(a.flags.map((f) => f.code))].join(",") || "—",
    ]);
  }
  const notes = inv.agents.flatMap((a) =>
    a.flags.map((f) => `  ${plain(a.id)}: ${f.code}: ${plain(f.message)}`),
  );
  return [textTable(rows), ...(notes.length > 0 ? ["", "flags:", ...notes] : [])].join("\n");
}

export function agentText(inv: Inventory, id: string): string {
  const a = inv.agents.find((x) => x.id === id);
  if (!a) return "";
  const lines = [
    `${plain(a.id)}${a.declared ? "" : "  (not declared in writ.yaml)"}`,
    `  owner: ${a.owner ?? "—"}`,
    `  purpose: ${a.purpose ?? "—"}`,
    `  runner class: ${a.runnerClass ?? "—"}${a.ceiling ? `  (ceiling maxTtl ${a.ceiling.maxTtl})` : ""}`,
  ];
  if (a.ceiling) {
    lines.push("  ceiling allow:", ...a.ceiling.allow.map((r) => `    ${r.action} on ${r.resource}`));
    if (a.ceiling.deny.length > 0)
      lines.push("  ceiling deny:", ...a.ceiling.deny.map((r) => `    ${r.action} on ${r.resource}`));
  }
  lines.push(
    "  baseline:",
    ...(a.baseline.length === 0
      ? ["    none"]
      : a.baseline.map(
          (g) => `    ${g.action} on ${g.resource}${g.standingWrite ? "  (standing write)" : ""}`,
        )),
    `  playbooks: ${a.playbooks.join(", ") || "none"}`,
    `  tools: ${a.tools.join(", ") || "none"}`,
    "  credentials:",
  );
  if (a.credentials.length === 0) lines.push("    none");
  for (const c of a.credentials) {
    if (c.kind === "writ")
      lines.push(
        `    writ ${c.id}  ${c.playbook}@${c.environment}  expires ${c.expiresAt.toISOString()}  uses left ${c.usesLeft ?? "∞"}  last used ${c.lastUsedAt?.toISOString() ?? "never"}`,
      );
    else if (c.kind === "downstream")
      lines.push(
        `    ${c.system} ${c.credentialKind} ${c.id}  writ ${c.writ} (${c.writStatus})  expires ${c.expiresAt.toISOString()}`,
      );
    else lines.push(`    ${c.type} ${plain(c.name)}: ${c.detail}  [${formatRef(c.source)}]`);
  }
  lines.push(
    `  last activity: ${a.lastActivity ? `${a.lastActivity.type} at ${a.lastActivity.at.toISOString()}` : a.activityOlderThan ? `before ${a.activityOlderThan.toISOString()} (older records not read)` : "never"}`,
    "  open findings:",
    ...(a.openFindings.length === 0
      ? ["    none"]
      : a.openFindings.map(
          (f) => `    ${f.id}  ${f.status}  ${f.category}  ${f.severity}  ${plain(f.title)}`,
        )),
    "  flags:",
    ...(a.flags.length === 0 ? ["    none"] : a.flags.map((f) => `    ${f.code}: ${plain(f.message)}`)),
  );
  return lines.join("\n");
}

const MARK: Readonly<Record<AnswerStatus, string>> = { pass: "PASS", fail: "FAIL", unknown: "????" };

export function maturityText(r: MaturityReport): string {
  if (r.agents.length === 0) return "no agents in writ.yaml";
  const out: string[] = [];
  for (const a of r.agents) {
    out.push(
      `${a.agent} (${a.owner}): ${a.score}%  ${a.passed} pass, ${a.failed} fail, ${a.unknown} unknown`,
    );
    for (const x of a.answers) {
      out.push(`  ${MARK[x.status]}  ${x.title}: ${plain(x.summary)}`);
      if (x.status === "pass") continue;
      for (const e of x.evidence.slice(0, 5)) out.push(`        ${formatRef(e.source)}: ${plain(e.note)}`);
      if (x.evidence.length > 5) out.push(`        … and ${x.evidence.length - 5} more (--json for all)`);
      if (x.fix) out.push(`        → ${x.fix}`);
    }
    out.push("");
  }
  return out.join("\n").trimEnd();
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;max-width:72rem;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #d0d7de}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.unknown{color:#9a6700;font-weight:600}
code,.ev{font-family:ui-monospace,monospace;font-size:12px}.ev{color:#57606a;margin:.15rem 0}
.fix{margin:.25rem 0 0}@media (max-width:600px){td:first-child{white-space:nowrap}}`;

export function maturityHtml(r: MaturityReport): string {
  const e = escapeHtml;
  const sections = r.agents.map((a) => {
    const rows = a.answers
      .map(
        (x) =>
          `<tr><td class="${x.status}">${x.status}</td><td><strong>${e(x.title)}</strong><br>${e(x.summary)}${x.evidence
            .map((ev) => `<div class="ev">${e(formatRef(ev.source))}: ${e(ev.note)}</div>`)
            .join("")}${x.fix ? `<p class="fix">What to change: ${e(x.fix)}</p>` : ""}</td></tr>`,
      )
      .join("\n");
    return `<section id="agent-${e(a.agent)}"><h2>${e(a.agent)} <small>${e(a.owner)}</small> — ${a.score}%</h2>
<p>${a.passed} pass, ${a.failed} fail, ${a.unknown} unknown</p>
<table><thead><tr><th scope="col">answer</th><th scope="col">practice, evidence, what to change</th></tr></thead><tbody>
${rows}
</tbody></table></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>writ maturity — ${e(r.file)}</title><style>${STYLE}</style></head>
<body><h1>writ maturity check</h1><p>${e(r.file)} at ${e(r.at.toISOString())}: ${r.agents.length} agent${r.agents.length === 1 ? "" : "s"}</p>
${sections.join("\n")}
</body></html>
`;
}
