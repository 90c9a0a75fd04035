/** The JSON report: every finding, escalation, blast-radius answer and problem, with the coverage. */
import type { AnalysisResult } from "../model.js";
import { counts } from "./common.js";

export function jsonReport(r: AnalysisResult): string {
  return JSON.stringify({ version: 1, summary: counts(r), ...r }, null, 2);
}
