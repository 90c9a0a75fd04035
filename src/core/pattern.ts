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
 * hostile resource string cannot make a decision slow. A pattern is at most `MAX_PATTERN_LENGTH`
 * characters (`ERR_PATTERN_TOO_LONG`), and nothing here recurses: the questions about patterns
 * themselves are answered by dynamic programming over two rows, so their time is bounded by the
 * product of the two lengths and their memory by one of them, whatever the input.
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

/**
 * The longest pattern writ accepts, in characters: twice the longest ARN AWS allows (2,048), so any
 * real resource fits, while comparing two patterns (a product of their lengths) stays cheap.
 */
export const MAX_PATTERN_LENGTH = 4096;

const ONE: Token = { t: "one" };
const STAR: Token = { t: "star" };

export function parseGlob(source: string): Glob {
  if (typeof source !== "string") throw new TypeError("pattern must be a string");
  if (source.length > MAX_PATTERN_LENGTH) {
    throw new WritError(
      "ERR_PATTERN_TOO_LONG",
      `pattern ${quote(`${source.slice(0, 32)}…`)} is ${source.length} characters long: at most ${MAX_PATTERN_LENGTH} are allowed`,
    );
  }
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

/**
 * `ok(i, j)` for every pair of positions, filled from the ends of both alternatives back to their
 * starts, one row of `j` per `i`: every step moves `i` or `j` forward, so row `i` needs only row
 * `i + 1` and itself. `step` gets the tokens at `i` and `j` and the answers one step further on — in
 * both alternatives, in `a` only, in `b` only — and says whether the rest of `a` and the rest of `b`
 * stand in the relation it describes.
 */
function backwards(
  a: Alt,
  b: Alt,
  step: (at: Token | undefined, bt: Token | undefined, both: boolean, inA: boolean, inB: boolean) => boolean,
): boolean {
  let below = new Uint8Array(b.length + 2);
  let row = new Uint8Array(b.length + 2);
  for (let i = a.length; i >= 0; i--) {
    row[b.length + 1] = 0;
    for (let j = b.length; j >= 0; j--) {
      row[j] = step(a[i], b[j], below[j + 1] === 1, below[j] === 1, row[j + 1] === 1) ? 1 : 0;
    }
    [below, row] = [row, below];
  }
  return below[0] === 1;
}

/** Can the rest of `q` cover the rest of `p`? */
function altContains(p: Alt, q: Alt): boolean {
  return backwards(p, q, (pt, qt, both, inP, inQ) => {
    if (qt === undefined) return pt === undefined;
    if (qt.t === "star") return inQ || (pt !== undefined && inP);
    if (pt === undefined) return false;
    if (qt.t === "one") return pt.t !== "star" && both;
    return pt.t === "lit" && pt.c === qt.c && both;
  });
}

/** Every string `p` matches is matched by `q` (sound; see the module comment). */
export function globContains(q: Glob, p: Glob): boolean {
  return p.alts.every((pa) => q.alts.some((qa) => altContains(pa, qa)));
}

/** Is there a string that the rest of `a` and the rest of `b` both match? */
function altIntersects(a: Alt, b: Alt): boolean {
  return backwards(a, b, (at, bt, both, inA, inB) => {
    if (at === undefined && bt === undefined) return true;
    if (at?.t === "star" && (inA || (bt !== undefined && bt.t !== "star" && inB))) return true;
    if (bt?.t === "star" && (inB || (at !== undefined && at.t !== "star" && inA))) return true;
    if (at === undefined || bt === undefined || at.t === "star" || bt.t === "star") return false;
    const same = at.t === "one" || bt.t === "one" || (at.t === "lit" && bt.t === "lit" && at.c === bt.c);
    return same && both;
  });
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

/** An alternative's text when it has no wildcard, else undefined. */
export function literalOf(alt: Alt): string | undefined {
  let out = "";
  for (const t of alt) {
    if (t.t !== "lit") return undefined;
    out += t.c;
  }
  return out;
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
