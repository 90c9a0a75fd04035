/**
 * A self-contained HTML report (no scripts, no external assets): findings grouped by category,
 * each evidence chain drawn as an inline SVG of boxes and arrows, generated fixes beside them.
 */
import { formatInputProblem, formatSource } from "../input.js";
import type { AnalysisResult, EvidenceStep, Finding } from "../model.js";
import {
  blastRows,
  byCategory,
  CATEGORY_HELP,
  CATEGORY_TITLE,
  counts,
  coverageText,
  pathText,
  unjudgedLines,
  windowText,
} from "./common.js";

const esc = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");

const COLORS: Readonly<Record<EvidenceStep["kind"], string>> = {
  node: "#e8f0fe",
  edge: "#ffffff",
  event: "#fde7e9",
  "tool-call": "#fff4ce",
  context: "#f3e5f5",
  note: "#eeeeee",
};

/** The chain as a vertical SVG: one box per node/event/call/context, arrows labelled by the edges. */
export function chainSvg(steps: readonly EvidenceStep[]): string {
  const boxes = steps.filter((s) => s.kind !== "edge");
  const edgeBefore = (i: number) => {
    const idx = steps.indexOf(boxes[i]!);
    const prev = steps[idx - 1];
    return prev?.kind === "edge" ? prev.label : "";
  };
  const w = 760;
  const bh = 30;
  const gap = 26;
  const h = boxes.length * (bh + gap);
  const parts: string[] = [];
  boxes.forEach((b, i) => {
    const y = i * (bh + gap);
    const text = b.label.length > 110 ? `${b.label.slice(0, 107)}...` : b.label;
    parts.push(
      `<rect x="1" y="${y + 1}" width="${w - 2}" height="${bh}" rx="5" fill="${COLORS[b.kind]}" stroke="#5f6368"/>`,
      `<text x="10" y="${y + 20}" font-size="12" font-family="monospace">${esc(`${b.kind}: ${text}`)}</text>`,
    );
    if (i > 0) {
      const y0 = y - gap + 1;
      parts.push(
        `<line x1="30" y1="${y0}" x2="30" y2="${y - 2}" stroke="#5f6368" marker-end="url(#arrow)"/>`,
        `<text x="40" y="${y0 + 16}" font-size="11" fill="#5f6368" font-family="sans-serif">${esc(edgeBefore(i).slice(0, 110))}</text>`,
      );
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="evidence chain" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>${parts.join("")}</svg>`;
}

function finding(f: Finding): string {
  const files = f.reduction.files
    .map((x) => `<p class="file">${esc(x.path)}</p><pre>${esc(x.content)}</pre>`)
    .join("");
  return `<details class="finding sev-${f.severity}" id="${esc(f.id)}"><summary><span class="sev">${f.severity}</span> ${esc(f.title)}</summary>
<p class="meta"><code>${esc(f.id)}</code> · ${esc(formatSource(f.location) || "—")} · confidence ${f.confidence}</p>
<div class="chain">${chainSvg(f.evidence)}</div>
<p><b>Fix</b> (${esc(f.reduction.kind)}, generated, not applied): ${esc(f.reduction.summary)}</p>${files}
<p class="mis"><b>If misclassified:</b> ${esc(f.misclassification)}</p></details>`;
}

export function htmlReport(r: AnalysisResult): string {
  const { byCategory: cat, bySeverity: sev } = counts(r);
  const sections = byCategory(r.findings)
    .map(
      ([c, list]) =>
        `<section id="${c}"><h2>${esc(CATEGORY_TITLE[c])} <small>(${cat[c]})</small></h2><p class="help">${esc(CATEGORY_HELP[c])}</p>${list.map(finding).join("\n") || "<p>none</p>"}</section>`,
    )
    .join("\n");
  const risky = r.blastRadius.filter((b) => b.answers.some((a) => a.reachable));
  const blast = risky.length
    ? `<section id="blast-radius"><h2>Blast radius</h2>${risky
        .map(
          (b) =>
            `<h3>${esc(b.workload)}</h3>${b.answers
              .filter((a) => a.reachable)
              .map(
                (a) =>
                  `<p>${esc(a.text)}</p><div class="chain">${chainSvg(
                    a.path.flatMap((e, i) => [
                      ...(i === 0 ? [{ kind: "node" as const, ref: e.from, label: e.from }] : []),
                      {
                        kind: "edge" as const,
                        ref: e.type,
                        label: `${e.type}${e.via.action ? ` via ${e.via.action} on ${e.via.resource}` : ""}`,
                      },
                      { kind: "node" as const, ref: e.to, label: e.to },
                    ]),
                  )}</div>`,
              )
              .join("")}`,
        )
        .join("")}</section>`
    : "";
  const { unknown } = blastRows(r);
  const blastUnknown = unknown.length
    ? `<section id="blast-radius-unknown"><h2>Blast radius: unknown</h2><p class="help">questions the input cannot settle, and the fact that is missing</p><ul>${unknown
        .map(
          (u) =>
            `<li><code>${esc(u.workload)}</code> ${esc(u.text)}: unknown — ${esc(u.why ?? "")}<br><small>if it holds: ${esc(pathText(u.path))}</small></li>`,
        )
        .join("")}</ul></section>`
    : "";
  const unjudged = unjudgedLines(r);
  const unjudgedHtml = unjudged.length
    ? `<section id="unjudged"><h2>Identities writ cannot see the grants of</h2><ul>${unjudged
        .map(
          (u) =>
            `<li><b>${esc(u.head)}</b><ul>${u.detail.map((d) => `<li>${esc(d)}</li>`).join("")}</ul></li>`,
        )
        .join("")}</ul></section>`
    : "";
  const problems = r.problems.length
    ? `<section id="problems"><h2>Input problems</h2><ul>${r.problems.map((p) => `<li><code>${esc(formatInputProblem(p))}</code></li>`).join("")}</ul></section>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>writ scan</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#202124}
h1{margin-bottom:.2em} .summary{background:#f8f9fa;padding:.6em 1em;border-radius:6px}
details.finding{border:1px solid #dadce0;border-radius:6px;margin:.5em 0;padding:.3em .8em}
summary{cursor:pointer} .sev{display:inline-block;min-width:5em;font-weight:600;text-transform:uppercase;font-size:11px}
.sev-critical .sev{color:#a50e0e}.sev-high .sev{color:#d93025}.sev-medium .sev{color:#e37400}.sev-low .sev{color:#1a73e8}
pre{background:#f8f9fa;padding:.6em;overflow:auto;font-size:12px} .file{font-family:monospace;margin-bottom:0}
.meta,.help,.mis{color:#5f6368} .chain{overflow-x:auto}
</style></head><body>
<h1>writ scan</h1>
<div class="summary"><p><b>${r.findings.length}</b> finding(s): critical ${sev.critical}, high ${sev.high}, medium ${sev.medium}, low ${sev.low}</p>
<p>window: ${esc(windowText(r))}</p><p>coverage: ${esc(coverageText(r))}</p></div>
${sections}
${blast}
${blastUnknown}
${unjudgedHtml}
${problems}
</body></html>
`;
}
