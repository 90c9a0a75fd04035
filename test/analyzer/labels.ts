/**
 * Scoring a scan against a labels file (test/fixtures/realistic/labels.yaml's format): precision and
 * recall per category and for escalation edges, and the must-not-report entries a scan violates.
 * Matching rules are written at the top of the labels file; this is their one implementation.
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import type { AnalysisResult, Category, EscalationEdge, Finding } from "../../src/analyzer/index.js";
import { CATEGORIES } from "../../src/analyzer/index.js";
import { printScore, type Score, score } from "./corpora.js";

export interface FindingLabel {
  readonly workload: string;
  readonly action?: string;
  readonly resource?: string;
  readonly via?: string;
  readonly conversation?: string;
}

export interface EdgeLabel {
  readonly type: string;
  readonly from: string;
  readonly to?: string;
  readonly action: string;
}

export interface MustNot {
  readonly why: string;
  readonly category?: Category;
  readonly workload?: string;
  readonly workloadPrefix?: string;
  readonly action?: string;
  readonly resource?: string;
  readonly evidence?: string;
  readonly edge?: string;
  readonly to?: string;
}

export interface Labels {
  readonly "unused-excess": readonly FindingLabel[];
  readonly "unjustified-use": readonly FindingLabel[];
  readonly "inherited-overreach": readonly FindingLabel[];
  /** Absent: edges are not labelled for this input, and not scored. */
  readonly escalations?: readonly EdgeLabel[] | undefined;
  readonly "must-not-report": readonly MustNot[];
}

/** Edges that only describe the graph (a pod runs as its identity): not scored. */
export const STRUCTURAL_EDGES = new Set([
  "IDENTITY_ASSUME",
  "PERMISSION_DISCOVER",
  "TOKEN_STEAL",
  "POD_ATTACH",
  "MEMBER_OF",
  "CLOUD_ASSUME",
]);

export async function readLabels(path: string): Promise<Labels> {
  const doc = parse(await readFile(path, "utf8")) as Partial<Labels>;
  for (const k of [...CATEGORIES, "must-not-report"] as const)
    if (!Array.isArray(doc[k])) throw new Error(`${path}: \`${k}\` must be a list`);
  if (doc.escalations !== undefined && !Array.isArray(doc.escalations))
    throw new Error(`${path}: \`escalations\` must be a list`);
  return doc as Labels;
}

/** The resources a finding is about: its permission's, and those of the events it cites. */
function resourcesOf(f: Finding): Set<string> {
  const out = new Set([f.permission.resource]);
  for (const e of f.evidence)
    if (e.kind === "event") {
      // `<time> <principal>[ (<via>)] <action> <resource> (<outcome>)`
      const m = / (\S+) \((allowed|denied|error)\)$/.exec(e.label);
      if (m) out.add(m[1]!);
    }
  return out;
}

/** The bindings a finding's permissions come through (nodes of its evidence). */
function bindingsOf(f: Finding): string[] {
  return f.evidence
    .filter((e) => e.kind === "node" && /^(k8s:(Cluster)?RoleBinding:|github:permissions:|aws:)/.test(e.ref))
    .map((e) => e.ref);
}

function labelKey(c: Category, l: FindingLabel): string {
  if (c === "inherited-overreach") return `${l.workload} via ${l.via}`;
  return `${l.workload} ${l.action} ${l.resource}`;
}

/** The label keys a finding stands for in its category (several for cat 2 citing many resources). */
function findingKeys(f: Finding, labels: readonly FindingLabel[]): string[] {
  const c = f.category;
  if (c === "inherited-overreach") {
    const via = bindingsOf(f);
    const hit = labels.filter(
      (l) => l.workload === f.workload.id && l.via !== undefined && via.includes(l.via),
    );
    return hit.length > 0 ? hit.map((l) => labelKey(c, l)) : [`${f.workload.id} via ${via.at(-1) ?? "?"}`];
  }
  if (c === "unjustified-use") {
    const rs = resourcesOf(f);
    // a label naming the conversation is matched only by a finding whose evidence cites it
    const hit = labels.filter(
      (l) =>
        l.workload === f.workload.id &&
        l.action === f.permission.action &&
        rs.has(l.resource ?? "") &&
        (l.conversation === undefined || f.evidence.some((e) => e.ref === l.conversation)),
    );
    return hit.length > 0
      ? hit.map((l) => labelKey(c, l))
      : [`${f.workload.id} ${f.permission.action} ${f.permission.resource}`];
  }
  return [`${f.workload.id} ${f.permission.action} ${f.permission.resource}`];
}

function edgeKey(e: { type: string; from: string; to?: string | undefined; action: string }): string {
  const to = e.to && /^(k8s:ServiceAccount:|aws:)/.test(e.to) ? ` → ${e.to}` : "";
  return `${e.type} ${e.from}${to} via ${e.action}`;
}

function violates(m: MustNot, r: AnalysisResult): string[] {
  const out: string[] = [];
  if (m.edge !== undefined) {
    for (const e of r.escalations)
      if (e.type === m.edge && (m.to === undefined || e.to === m.to))
        out.push(`${m.why}: ${edgeKey(asEdge(e))}`);
    return out;
  }
  for (const f of r.findings) {
    if (m.category && f.category !== m.category) continue;
    if (m.workload && f.workload.id !== m.workload) continue;
    if (m.workloadPrefix && !f.workload.id.startsWith(m.workloadPrefix)) continue;
    if (m.action && f.permission.action !== m.action) continue;
    if (m.resource && !resourcesOf(f).has(m.resource)) continue;
    if (m.evidence && !f.evidence.some((e) => e.ref === m.evidence)) continue;
    out.push(
      `${m.why}: ${f.id} ${f.category} ${f.workload.id} ${f.permission.action} ${f.permission.resource}`,
    );
  }
  return out;
}

function asEdge(e: EscalationEdge) {
  return { type: e.type, from: e.from, to: e.to, action: e.via.action };
}

export interface Scorecard {
  readonly categories: Readonly<Record<Category, Score>>;
  /** Undefined when the labels have no `escalations`. */
  readonly edges?: Score | undefined;
  /** One line per finding or edge that breaks a must-not-report entry. */
  readonly violations: readonly string[];
  /** The must-not-report entries broken (each `why` once). */
  readonly violated: readonly string[];
}

export function scoreAgainst(r: AnalysisResult, labels: Labels): Scorecard {
  const categories = {} as Record<Category, Score>;
  for (const c of CATEGORIES) {
    const expected = labels[c].map((l) => labelKey(c, l));
    const actual = r.findings.filter((f) => f.category === c).flatMap((f) => findingKeys(f, labels[c]));
    categories[c] = score(expected, actual);
  }
  const edges =
    labels.escalations === undefined
      ? undefined
      : score(
          labels.escalations.map(edgeKey),
          r.escalations.filter((e) => !STRUCTURAL_EDGES.has(e.type)).map((e) => edgeKey(asEdge(e))),
        );
  const broken = labels["must-not-report"].map((m) => ({ m, hits: violates(m, r) }));
  return {
    categories,
    edges,
    violations: broken.flatMap((b) => b.hits),
    violated: broken.filter((b) => b.hits.length > 0).map((b) => b.m.why),
  };
}

export function printScorecard(name: string, s: Scorecard): void {
  for (const c of CATEGORIES) printScore(`${name} — ${c}`, s.categories[c]);
  if (s.edges) printScore(`${name} — escalation edges`, s.edges);
  console.log(
    `[must-not-report] ${name}: ${s.violated.length} entr${s.violated.length === 1 ? "y" : "ies"} violated by ${s.violations.length} finding(s)/edge(s)${s.violations.length ? `\n  ${s.violations.join("\n  ")}` : ""}`,
  );
}
