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

/** Fast path: a plain pattern string with `*`/`?` wildcards. */
export function wildcardMatch(pattern: string, text: string, fold = false): boolean {
  if (pattern === "*") return true;
  if (!pattern.includes("*") && !pattern.includes("?")) {
    return fold ? pattern.toLowerCase() === text.toLowerCase() : pattern === text;
  }
  return globMatch(globParts(pattern), text, fold);
}
