/**
 * Metrics over time, from the store (not a scrape): the last 14 days by UTC day — writs issued and
 * their median issued TTL, approval requests and the mean time to decide them, denials (by day and
 * by reason, from the audit log's latest records) — and the findings queue by category and status.
 * Charts are SVG drawn here (no script), each with its numbers in a table beside it.
 */
import { type Html, h } from "./html.js";
import type { PageContext, View } from "./routes.js";

const DAYS = 14;
/** Denials are counted over at most this many of the latest audit records (one search window). */
const AUDIT_WINDOW = 20_000;

interface Series {
  readonly label: string;
  readonly unit: string;
  readonly points: readonly { readonly x: string; readonly y: number }[];
  /** Points are named, not days: labels are the names, cut to fit. */
  readonly named?: boolean | undefined;
}

/** A bar chart: one bar a point, the value above it, and the same numbers as a table. */
export function barChart(s: Series): Html {
  const w = 560;
  const hgt = 160;
  const max = Math.max(1, ...s.points.map((p) => p.y));
  const bw = w / Math.max(1, s.points.length);
  const bars = s.points.map((p, i) => {
    const bh = Math.round((p.y / max) * (hgt - 30));
    const x = Math.round(i * bw + 2);
    return h`<rect x="${x}" y="${hgt - 15 - bh}" width="${Math.max(1, Math.round(bw - 4))}" height="${bh}" class="bar"><title>${p.x}: ${p.y} ${s.unit}</title></rect>
<text x="${x + Math.round(bw / 2) - 2}" y="${hgt - 18 - bh}" class="val" text-anchor="middle">${p.y > 0 ? Math.round(p.y * 10) / 10 : ""}</text>
<text x="${x + Math.round(bw / 2) - 2}" y="${hgt - 2}" class="lbl" text-anchor="middle">${s.named ? (p.x.length > 12 ? `${p.x.slice(0, 11)}…` : p.x) : p.x.slice(5)}</text>`;
  });
  return h`<figure class="chart">
<figcaption>${s.label}</figcaption>
<svg viewBox="0 0 ${w} ${hgt}" role="img" aria-label="${s.label}" preserveAspectRatio="none">${bars}</svg>
<details><summary>Numbers</summary><table class="list"><thead><tr><th scope="col">When</th><th scope="col">${s.unit}</th></tr></thead>
<tbody>${s.points.map((p) => h`<tr><td>${p.x}</td><td>${Math.round(p.y * 100) / 100}</td></tr>`)}</tbody></table></details>
</figure>`;
}

const dayOf = (n: number) => new Date(n * 86_400_000).toISOString().slice(0, 10);

function daily(rows: readonly { day: unknown; v: unknown }[], first: number): { x: string; y: number }[] {
  const by = new Map(rows.map((r) => [Number(r.day), Number(r.v ?? 0)]));
  return Array.from({ length: DAYS }, (_, i) => ({ x: dayOf(first + i), y: by.get(first + i) ?? 0 }));
}

export async function metricsPage(p: PageContext): Promise<View> {
  const today = Math.floor(p.now.getTime() / 86_400_000);
  const first = today - DAYS + 1;
  const since = new Date(first * 86_400_000);
  const head = (await p.deps.audit.head()).seq;
  const [writs, approvals, denied, findings] = await Promise.all([
    p.deps.store.history.writsByDay(since),
    p.deps.store.history.approvalsByDay(since),
    p.deps.store.auditSearch.denialsByDay(Math.max(0, head - AUDIT_WINDOW), since),
    p.deps.store.history.findingsByStatus(),
  ]);
  const byDay = new Map<number, number>();
  const byCode = new Map<string, number>();
  for (const r of denied) {
    byDay.set(r.day, (byDay.get(r.day) ?? 0) + r.count);
    byCode.set(r.code ?? "unknown", (byCode.get(r.code ?? "unknown") ?? 0) + r.count);
  }
  const denials = [...byDay].map(([d, v]) => ({ day: d, v }));
  const reasons = [...byCode]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([code, v]) => ({ code, v }));
  const statuses = [...new Set(findings.map((f) => f.status))].sort();
  const categories = [...new Set(findings.map((f) => f.category))].sort();
  const count = (c: string, s: string) =>
    findings.find((f) => f.category === c && f.status === s)?.count ?? 0;
  const body = h`<p>The last ${DAYS} days by UTC day, read from the store. Denials from the latest ${AUDIT_WINDOW.toLocaleString("en")} audit records.</p>
<div class="charts">
${barChart({
  label: "Writs issued per day",
  unit: "writs",
  points: daily(
    writs.map((w) => ({ day: w.day, v: w.count })),
    first,
  ),
})}
${barChart({
  label: "Median issued writ lifetime (minutes)",
  unit: "minutes",
  points: daily(
    writs.map((w) => ({ day: w.day, v: w.value })),
    first,
  ),
})}
${barChart({
  label: "Approval requests per day",
  unit: "requests",
  points: daily(
    approvals.map((a) => ({ day: a.day, v: a.count })),
    first,
  ),
})}
${barChart({
  label: "Mean time to decide an approval (minutes)",
  unit: "minutes",
  points: daily(
    approvals.map((a) => ({ day: a.day, v: a.value })),
    first,
  ),
})}
${barChart({ label: "Denials per day", unit: "denials", points: daily(denials, first) })}
${barChart({ label: "Denials by reason (14 days)", unit: "denials", named: true, points: reasons.map((r) => ({ x: String(r.code ?? "unknown"), y: Number(r.v) })) })}
</div>
<h2>Findings by category and status</h2>
${
  findings.length === 0
    ? h`<p>No findings in the store.</p>`
    : h`<div class="scroll"><table class="list"><thead><tr><th scope="col">Category</th>${statuses.map((s) => h`<th scope="col">${s}</th>`)}</tr></thead>
<tbody>${categories.map((c) => h`<tr><th scope="row"><a href="/console/findings?category=${c}">${c}</a></th>${statuses.map((s) => h`<td>${count(c, s)}</td>`)}</tr>`)}</tbody></table></div>`
}`;
  return { title: "Metrics", body };
}
