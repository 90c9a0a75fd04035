/** The terminal summary: counts by category and severity, the window and coverage, the top findings. */
import { formatInputProblem, formatSource } from "../input.js";
import type { AnalysisResult } from "../model.js";
import {
  blastRows,
  byCategory,
  CATEGORY_TITLE,
  counts,
  coverageText,
  pathText,
  stripProvider,
  unjudgedLines,
  windowText,
} from "./common.js";

export function terminalReport(r: AnalysisResult, opts: { limit?: number; problems?: boolean } = {}): string {
  const limit = opts.limit ?? 10;
  const { byCategory: cat, bySeverity: sev } = counts(r);
  const lines: string[] = [];
  lines.push(
    `writ scan: ${r.findings.length} finding(s) — critical ${sev.critical}, high ${sev.high}, medium ${sev.medium}, low ${sev.low}`,
  );
  lines.push(`  window:   ${windowText(r)}`);
  lines.push(`  coverage: ${coverageText(r)}`);
  // file names below are relative to it
  if (r.root) lines.push(`  root:     ${r.root}`);
  for (const [c, list] of byCategory(r.findings)) {
    lines.push("");
    lines.push(`${CATEGORY_TITLE[c]}: ${cat[c]}`);
    for (const f of list.slice(0, limit)) {
      lines.push(`  [${f.severity}] ${f.title}`);
      lines.push(`      ${f.id}  ${formatSource(f.location)}  fix: ${f.reduction.summary}`);
    }
    if (list.length > limit)
      lines.push(`  … ${list.length - limit} more (--format json|markdown|html for all)`);
  }
  const risky = r.blastRadius.filter((b) => b.answers.some((a) => a.reachable));
  if (risky.length > 0) {
    lines.push("");
    lines.push(`Blast radius: ${risky.length} workload(s) whose leaked credential reaches beyond them`);
    for (const b of risky.slice(0, limit)) {
      const yes = b.answers.filter((a) => a.reachable);
      lines.push(`  ${stripProvider(b.workload)}: ${yes.map((a) => a.text).join("; ")}`);
      const a = yes[0]!;
      lines.push(`      ${a.text}: ${pathText(a.path)}`);
    }
  }
  // Questions the input cannot settle: shown as unknown, with the fact that is missing.
  const { unknown } = blastRows(r);
  if (unknown.length > 0) {
    lines.push("");
    lines.push(`Blast radius unknown: ${unknown.length} answer(s) the input cannot settle`);
    for (const u of unknown.slice(0, limit)) {
      lines.push(`  ${stripProvider(u.workload)}: ${u.text} — unknown: ${u.why}`);
      lines.push(`      if it holds: ${pathText(u.path)}`);
    }
    if (unknown.length > limit)
      lines.push(`  … ${unknown.length - limit} more (--format json|markdown for all)`);
  }
  const unjudged = unjudgedLines(r);
  if (unjudged.length > 0) {
    lines.push("");
    lines.push(`Identities writ cannot see the grants of: ${unjudged.length}`);
    for (const u of unjudged.slice(0, limit)) {
      lines.push(`  ${u.head}`);
      for (const d of u.detail) lines.push(`      ${d}`);
    }
    if (unjudged.length > limit) lines.push(`  … ${unjudged.length - limit} more (--format json for all)`);
  }
  if (opts.problems !== false && r.problems.length > 0) {
    lines.push("");
    lines.push(`Input problems (${r.problems.length}; the rest was analyzed):`);
    for (const p of r.problems.slice(0, 20)) lines.push(`  ${formatInputProblem(p)}`);
  }
  return lines.join("\n");
}
