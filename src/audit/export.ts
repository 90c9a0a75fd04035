/**
 * The export document: the whole log as one JSON file that verifies offline.
 *
 *   {
 *     "format": "writ-audit-export", "version": 1, "exportedAt": ISO,
 *     "head": { "seq", "hash" },
 *     "records": [ { "seq", "at", "type", "data", "prevHash", "hash" } … ],   ascending seq
 *     "checkpoints": [ { "seq", "hash", "at", "keyId", "signature" } … ],
 *     "publicKeys": [ Ed25519 public JWK … ]   informational: verification trusts only keys given to it
 *   }
 *
 * Reading one back checks the frame (`ERR_AUDIT_EXPORT_INVALID`, naming the path); what a record
 * holds is left to verification, so a tampered field is reported as damage, not as bad input.
 */
import { q, WritError } from "../core/index.js";
import type { AuditHead, AuditRow, CheckpointRow } from "../store/index.js";
import type { PublicJwk } from "./keys.js";
import type { ChainReader, ChainSource } from "./verify.js";

export const ERR_AUDIT_EXPORT_INVALID = "ERR_AUDIT_EXPORT_INVALID";
export const EXPORT_FORMAT = "writ-audit-export";
export const EXPORT_VERSION = 1;

export interface ExportedRecord {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly data: unknown;
  readonly prevHash: string;
  readonly hash: string;
}

export interface ExportedCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly keyId: string;
  readonly signature: string;
}

export interface AuditExport {
  readonly format: typeof EXPORT_FORMAT;
  readonly version: typeof EXPORT_VERSION;
  readonly exportedAt: string;
  readonly head: AuditHead;
  readonly records: readonly ExportedRecord[];
  readonly checkpoints: readonly ExportedCheckpoint[];
  readonly publicKeys: readonly PublicJwk[];
}

export function exportRecord(row: AuditRow): ExportedRecord {
  return {
    seq: row.seq,
    at: row.at.toISOString(),
    type: row.type,
    data: row.data,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

export function exportCheckpoint(row: CheckpointRow): ExportedCheckpoint {
  return {
    seq: row.seq,
    hash: row.hash,
    at: row.at.toISOString(),
    keyId: row.keyId,
    signature: row.signature,
  };
}

function invalid(path: string, message: string): WritError {
  return new WritError(ERR_AUDIT_EXPORT_INVALID, `audit export: ${path}: ${message}`);
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalid(path, "expected an object");
  return value as Record<string, unknown>;
}

function integer(value: unknown, path: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw invalid(path, `expected an integer ≥ ${min}, got ${q(value)}`);
  }
  return value;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(path, "expected an array");
  return value;
}

/** A timestamp as written; one that is not exactly `toISOString` output becomes an invalid date. */
function exactDate(value: unknown): Date {
  if (typeof value !== "string") return new Date(Number.NaN);
  const date = new Date(value);
  return !Number.isNaN(date.getTime()) && date.toISOString() === value ? date : new Date(Number.NaN);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

interface ParsedExport {
  readonly head: AuditHead;
  readonly records: AuditRow[];
  readonly checkpoints: CheckpointRow[];
}

/** Checks the frame of an export document and converts it to rows. */
export function parseExport(doc: unknown): ParsedExport {
  const root = object(doc, "document");
  if (root.format !== EXPORT_FORMAT)
    throw invalid("format", `expected ${q(EXPORT_FORMAT)}, got ${q(root.format)}`);
  if (root.version !== EXPORT_VERSION)
    throw invalid("version", `expected ${EXPORT_VERSION}, got ${q(root.version)}`);
  const head = object(root.head, "head");
  const records = array(root.records, "records").map((value, i): AuditRow => {
    const r = object(value, `records[${i}]`);
    return {
      seq: integer(r.seq, `records[${i}].seq`, 1),
      at: exactDate(r.at),
      // A type that is not a string cannot be hashed as written: it shows as an edited record.
      type: typeof r.type === "string" ? r.type : (r.type as string),
      data: r.data,
      prevHash: text(r.prevHash),
      hash: text(r.hash),
    };
  });
  const checkpoints = array(root.checkpoints, "checkpoints").map((value, i): CheckpointRow => {
    const c = object(value, `checkpoints[${i}]`);
    return {
      seq: integer(c.seq, `checkpoints[${i}].seq`, 0),
      hash: text(c.hash),
      at: exactDate(c.at),
      keyId: text(c.keyId),
      signature: text(c.signature),
    };
  });
  records.sort((a, b) => a.seq - b.seq);
  checkpoints.sort((a, b) => a.seq - b.seq || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
  return {
    head: { seq: integer(head.seq, "head.seq", 0), hash: text(head.hash) },
    records,
    checkpoints,
  };
}

/**
 * A chain source over a parsed export, for `verifyChain`. A seq that occurs twice is kept once
 * (the first in file order) and returned as `duplicate`, for the caller to report.
 */
export function exportSource(parsed: ParsedExport): { source: ChainSource; duplicate: number | undefined } {
  const records: AuditRow[] = [];
  let duplicate: number | undefined;
  for (const row of parsed.records) {
    if (records.length > 0 && records[records.length - 1]!.seq === row.seq) duplicate ??= row.seq;
    else records.push(row);
  }
  const { checkpoints } = parsed;
  const firstAfter = (seq: number): number => {
    let low = 0;
    let high = records.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (records[mid]!.seq <= seq) low = mid + 1;
      else high = mid;
    }
    return low;
  };
  const reader: ChainReader = {
    head: async () => parsed.head,
    records: async (afterSeq, limit) => {
      const start = firstAfter(afterSeq);
      return records.slice(start, start + limit);
    },
    checkpoints: async (afterSeq, toSeq, limit) => {
      const hits = checkpoints.filter((c) => c.seq > afterSeq && (toSeq === undefined || c.seq <= toSeq));
      return limit === undefined ? hits : hits.slice(0, limit);
    },
  };
  return { source: { ...reader, snapshot: (fn) => fn(reader) }, duplicate };
}
