/**
 * Policy variables (IAM User Guide, "IAM policy elements: Variables and tags"): `${key}` is
 * replaced by the single value of that context key, `${key, 'default'}` falls back to the quoted
 * default (`''` is a quote inside it), and `${*}`, `${?}`, `${$}` are the literal characters.
 * Only version 2012-10-17 policies have variables; a multivalued key cannot be one. One pass only:
 * a substituted value is never read again as a variable or a wildcard.
 */
import { type GlobPart, globParts } from "./glob.js";
import type { Context } from "./request.js";

/** Parts of the pattern with variables resolved, or `undefined` when a variable has no value. */
export function resolvePattern(text: string, ctx: Context, variables: boolean): GlobPart[] | undefined {
  if (!variables || !text.includes("${")) return globParts(text);
  const out: GlobPart[] = [];
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf("${", i);
    if (start < 0) {
      out.push(...globParts(text.slice(i)));
      break;
    }
    if (start > i) out.push(...globParts(text.slice(i, start)));
    const end = findClose(text, start + 2);
    if (end < 0) {
      // No closing brace: the rest is literal text, wildcards included.
      out.push(...globParts(text.slice(start)));
      break;
    }
    const body = text.slice(start + 2, end);
    const value = resolveBody(body, ctx);
    if (value === undefined) return undefined;
    out.push(...value);
    i = end + 1;
  }
  return out;
}

/** The resolved text of a condition value, wildcards kept as written (used by non-`Like` operators). */
export function resolveText(text: string, ctx: Context, variables: boolean): string | undefined {
  if (!variables || !text.includes("${")) return text;
  const parts = resolvePattern(text, ctx, variables);
  if (!parts) return undefined;
  return parts.map((p) => (typeof p === "string" ? p : p.wild)).join("");
}

function findClose(text: string, from: number): number {
  let inQuote = false;
  for (let j = from; j < text.length; j++) {
    const ch = text[j];
    if (ch === "'") {
      if (inQuote && text[j + 1] === "'") {
        j++;
        continue;
      }
      inQuote = !inQuote;
    } else if (ch === "}" && !inQuote) return j;
  }
  return -1;
}

function resolveBody(body: string, ctx: Context): GlobPart[] | undefined {
  const trimmed = body.trim();
  if (trimmed === "*") return ["*"];
  if (trimmed === "?") return ["?"];
  if (trimmed === "$") return ["$"];
  let key = trimmed;
  let fallback: string | undefined;
  const comma = trimmed.indexOf(",");
  if (comma >= 0) {
    key = trimmed.slice(0, comma).trim();
    const d = trimmed.slice(comma + 1).trim();
    if (d.length < 2 || !d.startsWith("'") || !d.endsWith("'")) return undefined;
    fallback = d.slice(1, -1).replaceAll("''", "'");
  }
  const entry = ctx.get(key.toLowerCase());
  if (entry && !entry.multi && entry.values.length === 1) return [entry.values[0]!];
  if (fallback !== undefined) return [fallback];
  return undefined;
}
