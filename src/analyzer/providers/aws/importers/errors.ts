/** Import failures: one coded error naming the file (and the JSON path) that is wrong. */
import { WritError } from "../../../../core/index.js";
import type { AnalyzerErrorCode } from "../../../codes.js";

export class AwsImportError extends WritError {}

export function importError(code: AnalyzerErrorCode, where: string, message: string): AwsImportError {
  return new AwsImportError(code, `${where}: ${message}`);
}

/** Reads a JSON text, reporting the file on a syntax error. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw importError("ERR_AWS_IMPORT_JSON", where, `not JSON: ${(err as Error).message}`);
  }
}

/**
 * A policy document as the IAM API may return it: an object, a JSON string, or (raw API output)
 * a URL-encoded JSON string.
 */
export function policyDocument(raw: unknown, where: string): unknown {
  if (typeof raw !== "string") return raw;
  const text = raw.trimStart().startsWith("{") ? raw : decodeURIComponent(raw);
  return parseJson(text, where);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
