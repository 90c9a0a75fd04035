/**
 * The reason registry of docs/reasons.md, parsed: the broker's OAuth reasons (one row per concrete
 * reason, `prefix_*` expanded by the suffixes in its row), and the approvals and admin APIs' codes.
 * reasons.test.ts checks it against the source and provokes every row; attacks.test.ts checks that
 * every attack is answered with a row of it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/cli.js";

export interface Row {
  readonly reason: string;
  readonly error: string;
  readonly status: number;
  /** 1-based line of docs/reasons.md. */
  readonly line: number;
}

export const REASONS_MD = join(ROOT, "docs", "reasons.md");
export const NAME = /^[a-z][a-z0-9_]*$/;
export const ticks = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** The rows of the markdown table under `heading` (cells trimmed), after its `header` row. */
function tableRows(
  md: string,
  heading: string,
  header: string,
): { cells: string[]; where: string; line: number }[] {
  const lines = md.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`docs/reasons.md: no \`${heading}\` section`);
  const rows: { cells: string[]; where: string; line: number }[] = [];
  let seenHeader = false;
  for (let i = start + 1; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text.startsWith("## ")) break;
    if (!text.startsWith("|")) continue;
    const where = `docs/reasons.md:${i + 1}`;
    const cells = text
      .slice(1, text.endsWith("|") ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (!seenHeader) {
      if (cells.join(",") !== header) throw new Error(`${where}: expected the header ${header}`);
      seenHeader = true;
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    if (cells.length !== header.split(",").length)
      throw new Error(`${where}: expected ${header.split(",").length} cells, found ${cells.length}`);
    rows.push({ cells, where, line: i + 1 });
  }
  return rows;
}

/** The status cell of a row: an HTTP error status. */
function statusOf(cell: string, where: string): number {
  const status = Number(cell);
  if (!Number.isInteger(status) || status < 400 || status > 599)
    throw new Error(`${where}: status ${cell} is not an HTTP error status`);
  return status;
}

/**
 * The names in a row's first cell: `a`, `b` are two; `prefix_*` is one per suffix in backticks
 * inside the first parentheses of the meaning. Each must match `shape`.
 */
function namesOf(cell: string, meaning: string, where: string, shape: RegExp): string[] {
  const names = ticks(cell);
  if (names.length === 0) throw new Error(`${where}: no name in backticks`);
  return names.flatMap((name) => {
    let concrete = [name];
    if (name.endsWith("_*")) {
      const inParens = /\(([^)]*)\)/.exec(meaning)?.[1];
      const suffixes = inParens === undefined ? [] : ticks(inParens);
      if (suffixes.length === 0)
        throw new Error(`${where}: \`${name}\` needs its suffixes in backticks inside parentheses`);
      concrete = suffixes.map((s) => name.slice(0, -1) + s);
    }
    for (const n of concrete) if (!shape.test(n)) throw new Error(`${where}: \`${n}\` is not a name here`);
    return concrete;
  });
}

/** The "Broker reasons" table, one row per concrete reason. */
function parseBrokerReasons(md: string): Row[] {
  return tableRows(md, "## Broker reasons", "reason,error,status,meaning").flatMap(
    ({ cells, where, line }) => {
      const [reasonCell, errorCell, statusCell, meaning] = cells as [string, string, string, string];
      const errors = ticks(errorCell);
      if (errors.length !== 1) throw new Error(`${where}: expected one \`error\`, found ${errorCell}`);
      const status = statusOf(statusCell, where);
      return namesOf(reasonCell, meaning, where, NAME).map((reason) => ({
        reason,
        error: errors[0]!,
        status,
        line,
      }));
    },
  );
}

const REASONS_TEXT = readFileSync(REASONS_MD, "utf8");
export const REGISTRY = parseBrokerReasons(REASONS_TEXT);
export const keyOf = (r: { reason: string; error: string }) => `${r.reason} (${r.error})`;

export interface CodeRow {
  readonly code: string;
  readonly status: number;
  readonly line: number;
}

const CODE = /^ERR_[A-Z0-9_]+$/;

/** A `| code | status | meaning |` table under `heading`, one row per concrete code. */
function parseCodeTable(md: string, heading: string): CodeRow[] {
  return tableRows(md, heading, "code,status,meaning").flatMap(({ cells, where, line }) => {
    const [codeCell, statusCell, meaning] = cells as [string, string, string];
    const status = statusOf(statusCell, where);
    return namesOf(codeCell, meaning, where, CODE).map((code) => ({ code, status, line }));
  });
}

export const APPROVALS_CODES = parseCodeTable(REASONS_TEXT, "## Approvals API codes");
export const ADMIN_CODES = parseCodeTable(REASONS_TEXT, "## Admin API codes");
