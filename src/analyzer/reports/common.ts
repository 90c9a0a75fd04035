/** What every report shares: category names, ordering, the summary counts. */
import type { AnalysisResult, Category, Finding, Severity } from "../model.js";
import { CATEGORIES, SEVERITIES } from "../model.js";

export const CATEGORY_TITLE: Readonly<Record<Category, string>> = {
  "unused-excess": "Category 1 — unused excess",
  "unjustified-use": "Category 2 — unjustified use",
  "inherited-overreach": "Category 3 — inherited overreach",
};

export const CATEGORY_HELP: Readonly<Record<Category, string>> = {
  "unused-excess": "granted, not exercised over the observation window; fix: a replacement from observed use",
  "unjustified-use": "exercised outside the agent's declared work; fix: a gateway guardrail, the grant stays",
  "inherited-overreach":
    "the scope comes from a binding not provisioned for this workload; fix: a dedicated identity",
};

export function counts(r: AnalysisResult): {
  byCategory: Record<Category, number>;
  bySeverity: Record<Severity, number>;
} {
  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of r.findings) {
    byCategory[f.category]++;
    bySeverity[f.severity]++;
  }
  return { byCategory, bySeverity };
}

export function byCategory(findings: readonly Finding[]): [Category, Finding[]][] {
  return CATEGORIES.map((c) => [c, findings.filter((f) => f.category === c)] as [Category, Finding[]]);
}

export function windowText(r: AnalysisResult): string {
  const w = r.coverage.window;
  if (!w)
    return "no activity data (grants only; unused excess is inferred where a provider can say what is needed)";
  const days = (w.end - w.start) / 86_400_000;
  return `${new Date(w.start).toISOString()} → ${new Date(w.end).toISOString()} (${days < 1 ? `${Math.round(days * 24 * 10) / 10} h` : `${Math.round(days * 10) / 10} d`})`;
}

export function coverageText(r: AnalysisResult): string {
  const c = r.coverage;
  return `${c.files} file(s), ${c.events} event(s) (${c.eventsDenied} denied or failed, not counted as use), ${c.toolCalls} tool call(s); activity for ${c.workloadsWithActivity} of ${c.workloads} workload(s)`;
}
