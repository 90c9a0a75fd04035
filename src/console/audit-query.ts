/**
 * Bounded searches of the audit log: each page looks at a window of at most `WINDOW` records below
 * a sequence number (newest first), so its cost does not grow with the log; a page with fewer hits
 * than it shows links to the next window down.
 */
import type { AuditFilter, AuditHit } from "../store/index.js";
import { consoleError, ERR_CONSOLE_INPUT } from "./errors.js";
import type { PageContext } from "./routes.js";
import { param } from "./routes.js";

export const WINDOW = 20_000;
export const HITS = 50;

export type { AuditFilter, AuditHit };

/** `2026-12-07T01:00` (a datetime-local field, read as UTC) or a full ISO instant. */
export function timeParam(p: PageContext, name: string): Date | undefined {
  const v = param(p.c, name, 40);
  if (v === undefined) return undefined;
  const m = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z?$/.exec(v);
  const d = m ? new Date(v.endsWith("Z") ? v : `${v}Z`) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) {
    throw consoleError(ERR_CONSOLE_INPUT, `parameter \`${name}\` must be a time like 2026-12-07T09:30 (UTC)`);
  }
  return d;
}

/** The `before` parameter: a sequence number (default: past the head). */
export function seqParam(p: PageContext, name: string): number | undefined {
  const v = param(p.c, name, 20);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v))
    throw consoleError(ERR_CONSOLE_INPUT, `parameter \`${name}\` must be a record number`);
  return Number(v);
}

/**
 * Matching records with seq below `before` (default: all), newest first, looking at one window of
 * records; `next` is where the following page starts (undefined at the start of the log).
 */
export async function searchAudit(
  p: PageContext,
  f: AuditFilter,
  before: number | undefined,
  limit = HITS,
): Promise<{ hits: AuditHit[]; next: number | undefined; head: number }> {
  const head = (await p.deps.audit.head()).seq;
  const top = Math.min(before ?? head + 1, head + 1);
  const floor = Math.max(0, top - WINDOW);
  const rows = await p.deps.store.auditSearch.find(f, { top, floor }, limit + 1);
  const hits = rows.slice(0, limit);
  const next = rows.length > limit ? hits.at(-1)!.seq : floor > 0 ? floor : undefined;
  return { hits, next, head };
}

export function reasonCode(data: Record<string, unknown>): string | undefined {
  const d = data.decision as { code?: unknown } | undefined;
  if (d && typeof d.code === "string") return d.code;
  return typeof data.reason === "string" ? data.reason : undefined;
}
