/** Denials feed and the reason codes' documentation. */
import { readFile } from "node:fs/promises";
import { q } from "../core/index.js";
import { reasonCode, searchAudit, seqParam, timeParam } from "./audit-query.js";
import { consoleError, ERR_CONSOLE_INPUT } from "./errors.js";
import { type Html, h, instant, query } from "./html.js";
import { type PageContext, param, type View } from "./routes.js";

/** The anchor of a reason code on the reasons page. */
export const reasonAnchor = (code: string) => `r-${code.replace(/[^A-Za-z0-9_-]/g, "-")}`;

export function reasonLink(code: string | undefined): Html {
  if (code === undefined) return h`—`;
  return h`<a href="/console/reasons#${reasonAnchor(code)}"><code>${code}</code></a>`;
}

export async function denialsPage(p: PageContext): Promise<View> {
  const agent = param(p.c, "agent", 200);
  const cls = param(p.c, "class", 200);
  const reason = param(p.c, "reason", 200);
  const from = timeParam(p, "from");
  const to = timeParam(p, "to");
  const before = seqParam(p, "before");
  const config = p.deps.config;
  if (cls !== undefined && !config.runnerClasses.has(cls)) {
    throw consoleError(ERR_CONSOLE_INPUT, `unknown runner class ${q(cls)}`);
  }
  const agents =
    cls === undefined
      ? undefined
      : [...config.agents.values()].filter((a) => a.runnerClass === cls).map((a) => a.id);
  const { hits, next } = await searchAudit(p, { denials: true, agent, agents, reason, from, to }, before);
  const keep = { agent, class: cls, reason, from: param(p.c, "from", 40), to: param(p.c, "to", 40) };
  const body = h`<form method="get" class="filters" action="/console/denials">
<label for="d-agent">Agent</label><input id="d-agent" name="agent" value="${agent ?? ""}" list="agent-ids">
<datalist id="agent-ids">${[...config.agents.keys()].map((a) => h`<option value="${a}">`)}</datalist>
<label for="d-class">Runner class</label><select id="d-class" name="class"><option value="">all</option>${[...config.runnerClasses.keys()].map((c) => h`<option${c === cls ? h` selected` : ""}>${c}</option>`)}</select>
<label for="d-reason">Reason</label><input id="d-reason" name="reason" value="${reason ?? ""}">
<label for="d-from">From (UTC)</label><input id="d-from" name="from" type="datetime-local" value="${keep.from ?? ""}">
<label for="d-to">To (UTC)</label><input id="d-to" name="to" type="datetime-local" value="${keep.to ?? ""}">
<button type="submit">Filter</button>
</form>
${
  hits.length === 0
    ? h`<p>No denials in this stretch of the log.</p>`
    : h`<div class="scroll"><table class="list"><caption>Denials, newest first</caption>
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Source</th><th scope="col">Agent</th><th scope="col">Env</th><th scope="col">What</th><th scope="col">Reason</th></tr></thead>
<tbody>${hits.map((r) => {
        const d = r.data;
        const what =
          r.type === "pdp.decision"
            ? `${String(d.action ?? "")} on ${String(d.resource ?? "")}`
            : r.type === "gateway.call"
              ? `tool ${String(d.tool ?? "")}`
              : String(d.playbook ?? d.grant ?? "");
        return h`<tr><td><a href="/console/audit${query({ before: r.seq + 1 })}">${r.seq}</a></td><td>${instant(r.at)}</td><td>${r.type}</td><td>${String(d.agent ?? "")}</td><td>${String(d.environment ?? "")}</td><td>${what}</td><td>${reasonLink(reasonCode(d))}</td></tr>`;
      })}</tbody></table></div>`
}
<p class="pager">${before ? h`<a href="/console/denials${query(keep)}">Newest</a> ` : ""}${next ? h`<a href="/console/denials${query({ ...keep, before: next })}" rel="next">Older</a>` : ""}</p>`;
  return { title: "Denials", body };
}

let reasonsDoc: Promise<string> | undefined;

/** One line of markdown's inline marks: code, bold, links (as their text). */
function inline(text: string): Html[] {
  const out: Html[] = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)]+)\)/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push(h`${text.slice(last, m.index)}`);
    if (m[1] !== undefined) out.push(h`<code>${m[1]}</code>`);
    else if (m[2] !== undefined) out.push(h`<strong>${m[2]}</strong>`);
    else out.push(h`${m[3]}`);
    last = m.index + m[0].length;
  }
  out.push(h`${text.slice(last)}`);
  return out;
}

const cells = (line: string) =>
  line
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, "|"));

/** docs/reasons.md as a page, every code in a table's first column an anchor. */
export function renderReasons(md: string): Html {
  const out: Html[] = [];
  const lines = md.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      const block: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) block.push(lines[i]!);
      out.push(h`<pre>${block.join("\n")}</pre>`);
    } else if (/^#{1,3} /.test(line)) {
      const level = line.startsWith("### ") ? 3 : 2;
      const text = line.replace(/^#+ /, "");
      if (!line.startsWith("# "))
        out.push(level === 3 ? h`<h3>${inline(text)}</h3>` : h`<h2>${inline(text)}</h2>`);
    } else if (line.startsWith("|")) {
      const head = cells(line);
      const rows: Html[] = [];
      for (i += 2; i < lines.length && lines[i]!.startsWith("|"); i++) {
        const cs = cells(lines[i]!);
        const codes = [...(cs[0] ?? "").matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
        const ids = codes.map((c) => reasonAnchor(c));
        rows.push(
          h`<tr${ids[0] ? h` id="${ids[0]}"` : ""}>${cs.map((c, j) => (j === 0 ? h`<th scope="row">${ids.slice(1).map((id) => h`<span id="${id}"></span>`)}${inline(c)}</th>` : h`<td>${inline(c)}</td>`))}</tr>`,
        );
      }
      i--;
      out.push(
        h`<div class="scroll"><table class="list"><thead><tr>${head.map((c) => h`<th scope="col">${inline(c)}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`,
      );
    } else if (line.trim() !== "") {
      const para = [line];
      while (i + 1 < lines.length && lines[i + 1]!.trim() !== "" && !/^(#|\||```)/.test(lines[i + 1]!))
        para.push(lines[++i]!);
      out.push(h`<p>${inline(para.join(" "))}</p>`);
    }
  }
  return h`${out}`;
}

export async function reasonsPage(_p: PageContext): Promise<View> {
  reasonsDoc ??= readFile(new URL("../../docs/reasons.md", import.meta.url), "utf8");
  return { title: "Reason codes", body: renderReasons(await reasonsDoc) };
}
