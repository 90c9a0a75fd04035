/**
 * HTML by tagged template: every interpolated value is escaped unless it is itself `Html` (built by
 * `h`), so a page cannot carry an agent id, a parameter or a reason as markup. Arrays are joined;
 * `undefined`, `null` and `false` render as nothing. Escaping is the operate part's, shared with
 * `writ maturity --format html`.
 */
import { escapeHtml } from "../operate/index.js";

export { escapeHtml };

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (value === undefined || value === null || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

export function h(strings: TemplateStringsArray, ...values: readonly unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Compact JSON for display (escaped when interpolated). */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "";
}

/** An instant as `2026-12-07 01:02:03Z` (UTC, to the second). */
export function instant(d: Date | undefined | null): string {
  if (!d) return "";
  return `${d.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** A query string from the set values of `params` (for links that keep the filters). */
export function query(params: Readonly<Record<string, string | number | undefined>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}
