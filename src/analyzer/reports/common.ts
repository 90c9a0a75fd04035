/** What every report shares: category names, ordering, the summary counts. */
import type { AnalysisResult, Category, EscalationEdge, Finding, Severity } from "../model.js";
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

/** A blast-radius answer as the reports show it: reachable, or unknown with why. */
export interface BlastRow {
  readonly workload: string;
  readonly question: string;
  /** The question in the workload's provider's words. */
  readonly text: string;
  readonly answer: "reachable" | "unknown";
  /** For `unknown`: the fact the input does not show that the path rests on. */
  readonly why?: string | undefined;
  readonly path: readonly EscalationEdge[];
}

/** The answer of one blast-radius question: `reachable`, `unknown` (with why) or `not reachable`. */
export function blastAnswer(a: AnalysisResult["blastRadius"][number]["answers"][number]): {
  answer: "reachable" | "unknown" | "not reachable";
  why?: string;
} {
  if (a.reachable) return { answer: "reachable" };
  if (a.path.length === 0) return { answer: "not reachable" };
  return {
    answer: "unknown",
    why: a.unknown ?? "a step of the path rests on a fact the input does not show",
  };
}

/** Every reachable or unknown blast-radius answer, reachable ones first. */
export function blastRows(r: AnalysisResult): { reachable: BlastRow[]; unknown: BlastRow[] } {
  const reachable: BlastRow[] = [];
  const unknown: BlastRow[] = [];
  for (const b of r.blastRadius)
    for (const a of b.answers) {
      const x = blastAnswer(a);
      if (x.answer === "not reachable") continue;
      const row = {
        workload: b.workload,
        question: a.question,
        text: a.text,
        answer: x.answer,
        why: x.why,
        path: a.path,
      };
      (x.answer === "reachable" ? reachable : unknown).push(row);
    }
  return { reachable, unknown };
}

export const stripProvider = (id: string): string => id.replace(/^[a-z0-9]+:/, "");

/** `a -TYPE-> b -TYPE-> c` */
export function pathText(path: readonly EscalationEdge[]): string {
  if (path.length === 0) return "";
  return `${path.map((e) => `${stripProvider(e.from)} -${e.type}->`).join(" ")} ${stripProvider(path[path.length - 1]!.to)}`;
}

/** `IDENTITY_GRANTS_UNKNOWN k8s:ServiceAccount:ns/x — 3 action(s), 120 use(s); agent a: category 2 …` */
export function unjudgedLines(r: AnalysisResult): { head: string; detail: string[] }[] {
  return (r.unjudged ?? []).map((u) => {
    const uses = u.use.reduce((n, x) => n + x.count, 0);
    return {
      head: `${u.code} ${u.identity}: ${u.use.length} action(s), ${uses} use(s)${u.denied ? `, ${u.denied} denied` : ""}; grants unknown`,
      detail: [
        `why: ${u.why}`,
        `judged: ${u.judged}`,
        `used: ${u.use
          .slice(0, 6)
          .map((x) => `${x.action} ×${x.count} (${x.resources.slice(0, 3).join(", ")})`)
          .join("; ")}${u.use.length > 6 ? "; …" : ""}`,
      ],
    };
  });
}
