/** The Markdown report: summary, then each category with its findings, evidence chains and fixes. */
import { formatInputProblem, formatSource } from "../input.js";
import type { AnalysisResult } from "../model.js";
import {
  blastRows,
  byCategory,
  CATEGORY_HELP,
  CATEGORY_TITLE,
  counts,
  coverageText,
  unjudgedLines,
  windowText,
} from "./common.js";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function markdownReport(r: AnalysisResult): string {
  const { byCategory: cat, bySeverity: sev } = counts(r);
  const out: string[] = ["# writ scan", ""];
  out.push(
    `- **findings**: ${r.findings.length} (critical ${sev.critical}, high ${sev.high}, medium ${sev.medium}, low ${sev.low})`,
  );
  out.push(`- **window**: ${windowText(r)}`);
  out.push(`- **coverage**: ${coverageText(r)}`, "");
  for (const [c, list] of byCategory(r.findings)) {
    out.push(`## ${CATEGORY_TITLE[c]} (${cat[c]})`, "", `_${CATEGORY_HELP[c]}_`, "");
    for (const f of list) {
      out.push(`### ${f.severity.toUpperCase()}: ${f.title}`, "");
      out.push(`\`${f.id}\` · ${formatSource(f.location) || "—"} · confidence ${f.confidence}`, "");
      out.push("Evidence:", "");
      for (const e of f.evidence)
        out.push(`1. ${e.kind}: ${cell(e.label)}${e.source ? ` (${formatSource(e.source)})` : ""}`);
      out.push("", `Fix (${f.reduction.kind}): ${f.reduction.summary}`, "");
      for (const file of f.reduction.files)
        out.push(`\`${file.path}\`:`, "", `\`\`\`${file.language}`, file.content.trimEnd(), "```", "");
      out.push(`If misclassified: ${f.misclassification}`, "");
    }
  }
  const { reachable, unknown } = blastRows(r);
  if (reachable.length + unknown.length > 0) {
    out.push(
      "## Blast radius",
      "",
      "_If the workload's credential leaked: what it reaches, and what the input cannot settle (unknown, with the missing fact)._",
      "",
      "| workload | question | answer | why | path |",
      "|---|---|---|---|---|",
    );
    for (const a of [...reachable, ...unknown])
      out.push(
        `| ${cell(a.workload)} | ${cell(a.text)} | ${a.answer} | ${cell(a.why ?? "")} | ${cell(a.path.map((e) => `${e.from} —${e.type}→ ${e.to}`).join(" ; "))} |`,
      );
    out.push("");
  }
  const unjudged = unjudgedLines(r);
  if (unjudged.length > 0) {
    out.push("## Identities writ cannot see the grants of", "");
    for (const u of unjudged) out.push(`- **${cell(u.head)}**`, ...u.detail.map((d) => `  - ${cell(d)}`));
    out.push("");
  }
  if (r.problems.length > 0) {
    out.push("## Input problems", "", ...r.problems.map((p) => `- ${cell(formatInputProblem(p))}`), "");
  }
  return out.join("\n");
}
