/**
 * SARIF 2.1.0 as GitHub code scanning reads it: one rule per category, each result with a physical
 * location (file and start line), a `security-severity` so code scanning ranks it, and a stable
 * partial fingerprint (the finding id) so alerts track across scans. A finding whose grant the input
 * does not show is placed at its workload's definition, else the log record of its use; the records
 * where its uses were seen are its related locations.
 *
 * Locations are relative URIs against `uriBaseId: "%SRCROOT%"` (the scan root, given in the run's
 * `originalUriBaseIds` when the scan had one): code scanning resolves them against the repository
 * checkout. A source outside the root (an absolute path) is an absolute `file://` URI instead,
 * never an absolute path passed off as a relative one.
 */
import type { AnalysisResult, Category, Finding, Severity, SourceRef } from "../model.js";
import { CATEGORIES } from "../model.js";
import { blastRows, CATEGORY_HELP, CATEGORY_TITLE } from "./common.js";

const LEVEL: Readonly<Record<Severity, "error" | "warning" | "note">> = {
  critical: "error",
  high: "error",
  medium: "warning",
  low: "note",
};
const SECURITY_SEVERITY: Readonly<Record<Severity, string>> = {
  critical: "9.5",
  high: "8.0",
  medium: "5.5",
  low: "2.0",
};

const SRCROOT = "%SRCROOT%";

/** Percent-encodes each segment of a `/`-separated path (RFC 3986: spaces, `#`, `%`, `?` …). */
function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

function isAbsolutePath(file: string): boolean {
  return file.startsWith("/") || /^[A-Za-z]:\//.test(file);
}

/** A SARIF artifactLocation for a source file name. */
export function artifactLocation(file: string): { uri: string; uriBaseId?: string } {
  const f = file.replace(/\\/g, "/");
  if (isAbsolutePath(f)) return { uri: `file://${f.startsWith("/") ? "" : "/"}${encodePath(f)}` };
  return { uri: encodePath(f.replace(/^(\.\/)+/, "")), uriBaseId: SRCROOT };
}

const physical = (loc: SourceRef) => ({
  artifactLocation: artifactLocation(loc.file),
  region: { startLine: Math.max(1, loc.line ?? 1) },
});

/** At most this many related locations per result: where the uses it cites were seen. */
const RELATED = 5;

function result(f: Finding): Record<string, unknown> | undefined {
  const known = (s: SourceRef | undefined): s is SourceRef => s !== undefined && s.file !== "";
  const loc = known(f.location) ? f.location : f.evidence.map((e) => e.source).find(known);
  if (!loc) return undefined;
  const chain = f.evidence.map((e) => e.label).join(" → ");
  // Where the uses were seen (the log record, the tool call's span), beside the primary location.
  const seen = f.evidence
    .filter((e) => (e.kind === "event" || e.kind === "tool-call") && known(e.source))
    .filter((e) => e.source!.file !== loc.file || e.source!.line !== loc.line)
    .slice(0, RELATED);
  return {
    ruleId: `writ/${f.category}`,
    level: LEVEL[f.severity],
    message: { text: `${f.title}. Fix: ${f.reduction.summary}. Evidence: ${chain}` },
    locations: [{ physicalLocation: physical(loc) }],
    ...(seen.length > 0
      ? {
          relatedLocations: seen.map((e, i) => ({
            id: i + 1,
            physicalLocation: physical(e.source!),
            message: { text: e.label },
          })),
        }
      : {}),
    partialFingerprints: { "writFindingId/v1": f.id },
    properties: {
      severity: f.severity,
      confidence: f.confidence,
      workload: f.workload.id,
      permission: f.permission,
    },
  };
}

export function sarifReport(r: AnalysisResult, version = "0.1.0"): string {
  const rules = CATEGORIES.map((c: Category) => ({
    id: `writ/${c}`,
    name: c.replace(/-(.)/g, (_, x: string) => x.toUpperCase()).replace(/^./, (x) => x.toUpperCase()),
    shortDescription: { text: CATEGORY_TITLE[c] },
    fullDescription: { text: CATEGORY_HELP[c] },
    help: { text: CATEGORY_HELP[c], markdown: `**${CATEGORY_TITLE[c]}**: ${CATEGORY_HELP[c]}` },
    defaultConfiguration: { level: "warning" },
    properties: { tags: ["security", "least-privilege"], precision: "medium", "security-severity": "7.0" },
  }));
  const results = r.findings
    .map((f) => {
      const out = result(f);
      if (out)
        (out.properties as Record<string, unknown>)["security-severity"] = SECURITY_SEVERITY[f.severity];
      return out;
    })
    .filter((x): x is Record<string, unknown> => x !== undefined);
  return JSON.stringify(
    {
      $schema: "https://json.schemastore.org/sarif-2.1.0.json",
      version: "2.1.0",
      runs: [
        {
          tool: {
            driver: {
              name: "writ",
              informationUri: "https://github.com/writ-dev/writ",
              semanticVersion: version,
              rules,
            },
          },
          ...(r.root
            ? {
                originalUriBaseIds: {
                  [SRCROOT]: { uri: artifactLocation(r.root.endsWith("/") ? r.root : `${r.root}/`).uri },
                },
              }
            : {}),
          results,
          // Blast-radius questions the input cannot settle: not results (no file to point at), but
          // notes of the run that say what is unknown and why.
          invocations: [
            {
              executionSuccessful: true,
              toolExecutionNotifications: [
                ...(r.unjudged ?? []).map((u) => ({
                  descriptor: { id: "identity-grants-unknown" },
                  level: "warning",
                  message: { text: `${u.identity} acted but its grants are unknown: ${u.why}; ${u.judged}` },
                  properties: { identity: u.identity, code: u.code, id: u.id, answer: u.answer },
                })),
                ...blastRows(r).unknown.map((u) => ({
                  descriptor: { id: "blast-radius-unknown" },
                  level: "note",
                  message: {
                    text: `blast radius of ${u.workload}: whether a leaked credential can ${u.text} is unknown: ${u.why}`,
                  },
                  properties: {
                    workload: u.workload,
                    question: u.question,
                    answer: "unknown",
                    why: u.why,
                    path: u.path.map((e) => `${e.from} -${e.type}-> ${e.to}`),
                  },
                })),
              ],
            },
          ],
        },
      ],
    },
    null,
    2,
  );
}
