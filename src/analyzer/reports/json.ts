/** The JSON report: every finding, escalation, blast-radius answer and problem, with the coverage. */
import type { AnalysisResult } from "../model.js";
import { blastAnswer, counts } from "./common.js";

/** Each blast-radius answer says `answer: reachable | unknown | not reachable`, and why when unknown. */
export function jsonReport(r: AnalysisResult): string {
  const blastRadius = r.blastRadius.map((b) => ({
    ...b,
    answers: b.answers.map((a) => ({ ...a, ...blastAnswer(a) })),
  }));
  return JSON.stringify({ version: 1, summary: counts(r), ...r, blastRadius }, null, 2);
}
