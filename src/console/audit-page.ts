/**
 * Audit: search the hash-chained log by agent, writ, reason, type and time (newest first, one
 * window of records a page: audit-query.ts); verify the whole chain and its signed checkpoints
 * from the page; export the matching records (NDJSON, at most 10,000) or the whole log as the
 * verifiable document `writ audit verify --file` reads.
 */
import { type AuditFilter, reasonCode, searchAudit, seqParam, timeParam, WINDOW } from "./audit-query.js";
import { h, instant, json, query } from "./html.js";
import { reasonLink } from "./info-pages.js";
import { type ActionContext, type PageContext, param, type View } from "./routes.js";

const EXPORT_MAX = 10_000;

function filterOf(p: PageContext): { f: AuditFilter; keep: Record<string, string | undefined> } {
  const f: AuditFilter = {
    agent: param(p.c, "agent", 200),
    writ: param(p.c, "writ", 200),
    reason: param(p.c, "reason", 200),
    type: param(p.c, "type", 200),
    from: timeParam(p, "from"),
    to: timeParam(p, "to"),
  };
  const keep = {
    agent: f.agent,
    writ: f.writ,
    reason: f.reason,
    type: f.type,
    from: param(p.c, "from", 40),
    to: param(p.c, "to", 40),
  };
  return { f, keep };
}

export async function auditPage(p: PageContext): Promise<View> {
  const { f, keep } = filterOf(p);
  const before = seqParam(p, "before");
  const { hits, next, head } = await searchAudit(p, f, before);
  const top = Math.min(before ?? head + 1, head + 1);
  const body = h`<form method="get" class="filters" action="/console/audit">
<label for="a-agent">Agent</label><input id="a-agent" name="agent" value="${keep.agent ?? ""}">
<label for="a-writ">Writ</label><input id="a-writ" name="writ" value="${keep.writ ?? ""}">
<label for="a-reason">Reason</label><input id="a-reason" name="reason" value="${keep.reason ?? ""}">
<label for="a-type">Type</label><input id="a-type" name="type" value="${keep.type ?? ""}" placeholder="broker.writ_issued">
<label for="a-from">From (UTC)</label><input id="a-from" name="from" type="datetime-local" value="${keep.from ?? ""}">
<label for="a-to">To (UTC)</label><input id="a-to" name="to" type="datetime-local" value="${keep.to ?? ""}">
<button type="submit">Search</button>
</form>
<div class="toolbar">
<form method="post" action="/console/audit/verify" class="inline"><input type="hidden" name="csrf" value="${p.session.csrf}"><button type="submit">Verify the chain</button></form>
<a class="button" href="/console/audit/export${query({ ...keep, format: "ndjson" })}" download>Export matching records</a>
<a class="button" href="/console/audit/export${query({ format: "document" })}" download>Export the whole log (verifiable)</a>
</div>
<p>The log holds ${head} records. Records ${Math.max(1, top - WINDOW)}–${top - 1} searched${hits.length === 50 ? " (first 50 hits shown)" : ""}.</p>
${
  hits.length === 0
    ? h`<p>No matching records in this stretch of the log.</p>`
    : h`<div class="scroll"><table class="list audit"><caption>Audit records, newest first</caption>
<thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Type</th><th scope="col">Agent</th><th scope="col">Reason</th><th scope="col">Record</th></tr></thead>
<tbody>${hits.map(
        (r) =>
          h`<tr><td>${r.seq}</td><td>${instant(r.at)}</td><td>${r.type}</td><td>${String(r.data.agent ?? "")}</td><td>${reasonLink(reasonCode(r.data))}</td><td><details><summary>data</summary><pre>${json(r.data)}</pre></details></td></tr>`,
      )}</tbody></table></div>`
}
<p class="pager">${before ? h`<a href="/console/audit${query(keep)}">Newest</a> ` : ""}${next ? h`<a href="/console/audit${query({ ...keep, before: next })}" rel="next">Older</a>` : ""}</p>`;
  return { title: "Audit", body };
}

export async function auditVerify(a: ActionContext): Promise<View> {
  const started = Date.now();
  const r = await a.deps.audit.verify();
  const ms = Date.now() - started;
  const body = h`<p role="status" class="${r.ok ? "ok" : "warn"}"><strong>${r.ok ? "The chain is intact." : "The chain is damaged."}</strong></p>
<dl class="facts">
<dt>Records</dt><dd>${r.records} (last #${r.lastSeq})</dd>
<dt>Signed checkpoints</dt><dd>${r.checkpoints}${r.lastCheckpointSeq === undefined ? "" : ` (last at #${r.lastCheckpointSeq})`}</dd>
<dt>After the last checkpoint</dt><dd>${r.unsigned} record${r.unsigned === 1 ? "" : "s"}</dd>
${r.firstBad ? h`<dt>First damage</dt><dd>#${r.firstBad.seq}: ${r.firstBad.problem} — ${r.firstBad.message}</dd>` : ""}
<dt>Took</dt><dd>${ms} ms</dd>
</dl>
<p><a href="/console/audit">Back to the log</a></p>`;
  return { title: "Audit verification", body };
}

export async function auditExport(p: PageContext): Promise<Response> {
  const format = param(p.c, "format", 20) ?? "ndjson";
  const stamp = p.now.toISOString().replace(/[:.]/g, "-");
  if (format === "document") {
    // streamed with back-pressure: the log is never held whole in memory
    const enc = new TextEncoder();
    let resume: (() => void) | undefined;
    const body = new ReadableStream<Uint8Array>(
      {
        start(ctrl) {
          void p.deps.audit
            .exportJson(async (chunk) => {
              ctrl.enqueue(enc.encode(chunk));
              if ((ctrl.desiredSize ?? 1) <= 0)
                await new Promise<void>((r) => {
                  resume = r;
                });
            })
            .then(
              () => ctrl.close(),
              (err: unknown) => ctrl.error(err),
            );
        },
        pull() {
          resume?.();
          resume = undefined;
        },
      },
      { highWaterMark: 16 },
    );
    return new Response(body, {
      headers: {
        "content-type": "application/json",
        "content-disposition": `attachment; filename="writ-audit-${stamp}.json"`,
        "cache-control": "no-store",
      },
    });
  }
  const { f } = filterOf(p);
  const lines: string[] = [];
  let before: number | undefined;
  for (;;) {
    const { hits, next } = await searchAudit(p, f, before, Math.min(1000, EXPORT_MAX - lines.length));
    for (const r of hits)
      lines.push(JSON.stringify({ seq: r.seq, at: r.at.toISOString(), type: r.type, data: r.data }));
    if (next === undefined || lines.length >= EXPORT_MAX) break;
    before = next;
  }
  return new Response(lines.length === 0 ? "" : `${lines.join("\n")}\n`, {
    headers: {
      "content-type": "application/x-ndjson",
      "content-disposition": `attachment; filename="writ-audit-${stamp}.ndjson"`,
      "cache-control": "no-store",
    },
  });
}
