/**
 * Wildcard matching as IAM does it: `*` any run of characters (possibly empty), `?` exactly one.
 * A pattern is a list of parts so that literal `*` and `?` (from the `${*}` / `${?}` escapes or a
 * substituted policy variable) never act as wildcards.
 */
export type GlobPart = string | { readonly wild: "*" | "?" };

export const STAR: GlobPart = { wild: "*" };
export const QMARK: GlobPart = { wild: "?" };

/** Parts of a plain pattern string where every `*` and `?` is a wildcard. */
export function globParts(pattern: string): GlobPart[] {
  const parts: GlobPart[] = [];
  let lit = "";
  for (const ch of pattern) {
    if (ch === "*" || ch === "?") {
      if (lit) parts.push(lit);
      lit = "";
      parts.push(ch === "*" ? STAR : QMARK);
    } else lit += ch;
  }
  if (lit) parts.push(lit);
  return parts;
}

export function hasWildcard(parts: readonly GlobPart[]): boolean {
  return parts.some((p) => typeof p !== "string");
}

/** Splits parts at every literal occurrence of `sep`, keeping wildcards inside their piece. */
export function splitParts(parts: readonly GlobPart[], sep: string, max: number): GlobPart[][] {
  const out: GlobPart[][] = [[]];
  for (const p of parts) {
    if (typeof p !== "string") {
      out[out.length - 1]!.push(p);
      continue;
    }
    let rest = p;
    for (;;) {
      const i = out.length < max ? rest.indexOf(sep) : -1;
      if (i < 0) {
        if (rest) out[out.length - 1]!.push(rest);
        break;
      }
      if (i > 0) out[out.length - 1]!.push(rest.slice(0, i));
      out.push([]);
      rest = rest.slice(i + sep.length);
    }
  }
  return out;
}

/**
 * Matches `text` against the parts; `fold` compares case-insensitively. Iterative with one
 * backtrack point for the last `*` (linear for the patterns IAM allows).
 */
export function globMatch(parts: readonly GlobPart[], text: string, fold = false): boolean {
  const chars: (string | "*" | "?")[] = [];
  const wild: boolean[] = [];
  for (const p of parts) {
    if (typeof p === "string") {
      for (const ch of fold ? p.toLowerCase() : p) {
        chars.push(ch);
        wild.push(false);
      }
    } else {
      chars.push(p.wild);
      wild.push(true);
    }
  }
  const t = fold ? text.toLowerCase() : text;
  let pi = 0;
  let ti = 0;
  let starP = -1;
  let starT = 0;
  while (ti < t.length) {
    if (pi < chars.length && wild[pi] && chars[pi] === "*") {
      starP = pi++;
      starT = ti;
    } else if (pi < chars.length && ((wild[pi] && chars[pi] === "?") || (!wild[pi] && chars[pi] === t[ti]))) {
      pi++;
      ti++;
    } else if (starP >= 0) {
      pi = starP + 1;
      ti = ++starT;
    } else return false;
  }
  while (pi < chars.length && wild[pi] && chars[pi] === "*") pi++;
  return pi === chars.length;
}

interface Compiled {
  /** Pattern characters (lower-cased when folding); `\u0000*` and `\u0000?` mark wildcards. */
  readonly chars: readonly string[];
  readonly wild: Uint8Array;
}
const compiledFold = new Map<string, Compiled>();
const compiledExact = new Map<string, Compiled>();

function compile(pattern: string, fold: boolean): Compiled {
  const cache = fold ? compiledFold : compiledExact;
  let c = cache.get(pattern);
  if (!c) {
    if (cache.size > 10_000) cache.clear();
    const chars = (fold ? pattern.toLowerCase() : pattern).split("");
    const wild = new Uint8Array(chars.length);
    chars.forEach((ch, i) => {
      if (ch === "*") wild[i] = 1;
      else if (ch === "?") wild[i] = 2;
    });
    c = { chars, wild };
    cache.set(pattern, c);
  }
  return c;
}

/**
 * A plain pattern string with `*`/`?` wildcards. Patterns are compiled once (bounded cache) and
 * matched with one backtrack point, so the time stays O(pattern × text) whatever the pattern.
 */
export function wildcardMatch(pattern: string, text: string, fold = false): boolean {
  if (pattern === "*") return true;
  if (!pattern.includes("*") && !pattern.includes("?")) {
    return fold ? pattern.toLowerCase() === text.toLowerCase() : pattern === text;
  }
  return run(compile(pattern, fold), fold ? text.toLowerCase() : text);
}

/** `wildcardMatch(pattern, text, true)` for a text already lower-cased (hot loops over the catalog). */
export function wildcardMatchLower(pattern: string, lowered: string): boolean {
  if (pattern === "*") return true;
  if (!pattern.includes("*") && !pattern.includes("?")) return pattern.toLowerCase() === lowered;
  return run(compile(pattern, true), lowered);
}

function run({ chars, wild }: Compiled, t: string): boolean {
  let pi = 0;
  let ti = 0;
  let starP = -1;
  let starT = 0;
  while (ti < t.length) {
    if (pi < chars.length && wild[pi] === 1) {
      starP = pi++;
      starT = ti;
    } else if (pi < chars.length && (wild[pi] === 2 || chars[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (starP >= 0) {
      pi = starP + 1;
      ti = ++starT;
    } else return false;
  }
  while (pi < chars.length && wild[pi] === 1) pi++;
  return pi === chars.length;
}
