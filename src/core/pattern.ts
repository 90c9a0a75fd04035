/**
 * Glob patterns: the one matching engine behind every action and resource pattern in writ.
 *
 * Syntax (docs/permissions.md is the user-facing version of this comment):
 * - `*` matches any run of characters, including none, including `/` and `:`;
 * - `?` matches exactly one character;
 * - `a|b` is an alternative at the top level of the pattern: `get|list`;
 * - `\*`, `\?`, `\|` and `\\` stand for the literal character. Any other `\` is an error.
 *
 * Matching never backtracks exponentially (two-pointer wildcard matching, O(n·m) at worst), so a
 * hostile resource string cannot make a decision slow.
 *
 * Besides matching, the engine answers two questions about patterns themselves, used at load time:
 * - `globContains(p, q)`: is every string matched by `p` also matched by `q`? Sound (a `true` is
 *   always right); it may say `false` for a few exotic pairs that are in fact contained, which only
 *   makes writ stricter.
 * - `globIntersects(p, q)`: is there a string both match? Exact.
 */
import { q as quote, WritError } from "./errors.js";

export type Token =
  | { readonly t: "lit"; readonly c: string }
  | { readonly t: "one" }
  | { readonly t: "star" };

/** One alternative: a sequence of tokens. */
export type Alt = readonly Token[];

export interface Glob {
  readonly kind: "glob";
  readonly source: string;
  readonly alts: readonly Alt[];
  /** True when no alternative holds `*` or `?`. */
  readonly literal: boolean;
}

const ONE: Token = { t: "one" };
const STAR: Token = { t: "star" };

export function parseGlob(source: string): Glob {
  if (typeof source !== "string") throw new TypeError("pattern must be a string");
  const alts: Token[][] = [];
  let cur: Token[] = [];
  let literal = true;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === "\\") {
      const next = source[i + 1];
      if (next === "*" || next === "?" || next === "|" || next === "\\") {
        cur.push({ t: "lit", c: next });
        i++;
        continue;
      }
      throw new WritError(
        "ERR_PATTERN_ESCAPE",
        `pattern ${quote(source)}: \`\\\` must be followed by \`*\`, \`?\`, \`|\` or \`\\\``,
      );
    }
    if (ch === "|") {
      alts.push(cur);
      cur = [];
      continue;
    }
    if (ch === "*") {
      literal = false;
      if (cur.at(-1)?.t !== "star") cur.push(STAR);
      continue;
    }
    if (ch === "?") {
      literal = false;
      cur.push(ONE);
      continue;
    }
    cur.push({ t: "lit", c: ch });
  }
  alts.push(cur);
  if (alts.some((a) => a.length === 0)) {
    throw new WritError("ERR_PATTERN_EMPTY", `pattern ${quote(source)}: empty pattern or empty alternative`);
  }
  return { kind: "glob", source, alts, literal };
}

/** Escapes a literal value so that it can be placed inside a pattern (parameter substitution). */
export function escapeGlob(value: string): string {
  return value.replace(/[\\*?|]/g, (c) => `\\${c}`);
}

function foldToken(t: Token): Token {
  return t.t === "lit" ? { t: "lit", c: t.c.toLowerCase() } : t;
}

/** The same glob with every literal lower-cased, for case-insensitive comparison. */
export function foldGlob(g: Glob): Glob {
  return { ...g, alts: g.alts.map((a) => a.map(foldToken)) };
}

function altMatches(alt: Alt, s: string): boolean {
  // Classic two-pointer wildcard matching: remember the last star and retry from there.
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    const tok = alt[p];
    if (tok !== undefined && (tok.t === "one" || (tok.t === "lit" && tok.c === s[i]))) {
      p++;
      i++;
    } else if (tok !== undefined && tok.t === "star") {
      starP = p++;
      starI = i;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  while (alt[p]?.t === "star") p++;
  return p === alt.length;
}

/**
 * Does `g` match the literal string `s`? With `fold`, `g` must already be folded (see `foldGlob`)
 * and `s` is lower-cased here.
 */
export function globMatches(g: Glob, s: string, fold = false): boolean {
  const subject = fold ? s.toLowerCase() : s;
  for (const alt of g.alts) if (altMatches(alt, subject)) return true;
  return false;
}

function altContains(p: Alt, q: Alt): boolean {
  // dp over (i, j): can the rest of q, from j, cover the rest of p, from i?
  const memo = new Map<number, boolean>();
  const width = q.length + 1;
  const go = (i: number, j: number): boolean => {
    const key = i * width + j;
    const seen = memo.get(key);
    if (seen !== undefined) return seen;
    let ok: boolean;
    const qt = q[j];
    const pt = p[i];
    if (qt === undefined) ok = pt === undefined;
    else if (qt.t === "star") ok = go(i, j + 1) || (pt !== undefined && go(i + 1, j));
    else if (pt === undefined) ok = false;
    else if (qt.t === "one") ok = pt.t !== "star" && go(i + 1, j + 1);
    else ok = pt.t === "lit" && pt.c === qt.c && go(i + 1, j + 1);
    memo.set(key, ok);
    return ok;
  };
  return go(0, 0);
}

/** Every string `p` matches is matched by `q` (sound; see the module comment). */
export function globContains(q: Glob, p: Glob): boolean {
  return p.alts.every((pa) => q.alts.some((qa) => altContains(pa, qa)));
}

function altIntersects(a: Alt, b: Alt): boolean {
  const memo = new Map<number, boolean>();
  const width = b.length + 1;
  const go = (i: number, j: number): boolean => {
    const key = i * width + j;
    const seen = memo.get(key);
    if (seen !== undefined) return seen;
    memo.set(key, false); // cycles through star/star cannot produce a new witness
    const at = a[i];
    const bt = b[j];
    let ok = false;
    if (at === undefined && bt === undefined) ok = true;
    else {
      if (at?.t === "star") ok = go(i + 1, j) || (bt !== undefined && bt.t !== "star" && go(i, j + 1));
      if (!ok && bt?.t === "star") ok = go(i, j + 1) || (at !== undefined && at.t !== "star" && go(i + 1, j));
      if (!ok && at !== undefined && bt !== undefined && at.t !== "star" && bt.t !== "star") {
        const same = at.t === "one" || bt.t === "one" || (at.t === "lit" && bt.t === "lit" && at.c === bt.c);
        ok = same && go(i + 1, j + 1);
      }
    }
    memo.set(key, ok);
    return ok;
  };
  return go(0, 0);
}

/** Is there a string that both patterns match? */
export function globIntersects(a: Glob, b: Glob): boolean {
  return a.alts.some((x) => b.alts.some((y) => altIntersects(x, y)));
}

/** Splits a pattern into its alternatives as source text (escapes kept). */
export function globAlternatives(g: Glob): string[] {
  return g.alts.map((alt) =>
    alt.map((t) => (t.t === "star" ? "*" : t.t === "one" ? "?" : escapeGlob(t.c))).join(""),
  );
}

/** The literal text before the first wildcard of an alternative. */
export function literalPrefix(alt: Alt): string {
  let out = "";
  for (const t of alt) {
    if (t.t !== "lit") break;
    out += t.c;
  }
  return out;
}
