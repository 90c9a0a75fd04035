/**
 * The gateway's bounds (`gateway.bounds` in writ.yaml): limits on what a derived value may be,
 * checked before the decision point, whatever the grants say.
 *
 * - `roots`: a canonical path must be a root or lie below one (`/srv/reports` admits
 *   `/srv/reports` and `/srv/reports/a`, not `/srv/reportsX`);
 * - `deny`: a canonical path matching any of these path globs is refused;
 * - `hosts`, `domains`: a URL host (mail domain) must match one of these globs.
 *
 * Path globs, written down once here: `?` matches one character other than `/`; `*` matches any
 * run of characters without `/` (so `/srv/*.pem` does not reach `/srv/a/b.pem`); `**` matches any
 * run including `/`, and `**` followed by `/` matches zero or more whole directories
 * (`/srv/**` + `/x` admits `/srv/x` and `/srv/a/b/x`). `\` makes the next character literal.
 * Hosts and domains hold no `/`, so there `*` matches any run of characters, dots included:
 * `*.acme.example` admits every subdomain at any depth but not `acme.example` itself. Matching is
 * dynamic programming over pattern × value (linear in each, never exponential), and exact: no case
 * folding (canonical paths keep the filesystem's case; hosts and domains are already lower case).
 *
 * core's pattern engine (src/core/pattern.ts) is not used here: its `*` crosses `/`, which is right
 * for grants and wrong for filesystem bounds.
 */
import { realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { type GatewayBounds, q } from "../core/index.js";
import { GatewayError } from "./errors.js";
import type { BoundsCheck } from "./resource.js";

type Token =
  | { readonly t: "lit"; readonly c: string }
  | { readonly t: "one" }
  | { readonly t: "star" }
  | { readonly t: "globstar" }
  /** `**` + `/`: empty, or any run that ends with `/`. */
  | { readonly t: "dirs" };

export interface PathGlob {
  readonly source: string;
  readonly tokens: readonly Token[];
}

export function parsePathGlob(source: string, crossSlash = false): PathGlob {
  const tokens: Token[] = [];
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === "\\" && i + 1 < source.length) {
      tokens.push({ t: "lit", c: source[++i]! });
    } else if (ch === "*" && source[i + 1] === "*") {
      while (source[i + 1] === "*") i++;
      if (source[i + 1] === "/") {
        tokens.push({ t: "dirs" });
        i++;
      } else tokens.push({ t: "globstar" });
    } else if (ch === "*") tokens.push(crossSlash ? { t: "globstar" } : { t: "star" });
    else if (ch === "?") tokens.push({ t: "one" });
    else tokens.push({ t: "lit", c: ch });
  }
  return { source, tokens };
}

/** Does `value` match the glob? O(|pattern| · |value|) time, O(|pattern|) space. */
export function pathGlobMatches(g: PathGlob, value: string): boolean {
  const m = g.tokens.length;
  // cur[j]: the first j tokens match the value read so far
  let cur = new Array<boolean>(m + 1).fill(false);
  // open[j] (for `dirs` at j): the first j tokens matched some earlier prefix
  const open = new Array<boolean>(m + 1).fill(false);
  const close = (row: boolean[], at: string | undefined) => {
    // empty matches of star-like tokens carry a match forward within one position
    for (let j = 0; j < m; j++) {
      const tok = g.tokens[j]!;
      if (row[j] && (tok.t === "star" || tok.t === "globstar" || tok.t === "dirs")) row[j + 1] = true;
      if (tok.t === "dirs" && row[j]) open[j] = true;
    }
    void at;
  };
  cur[0] = true;
  close(cur, undefined);
  for (const ch of value) {
    const next = new Array<boolean>(m + 1).fill(false);
    for (let j = 0; j < m; j++) {
      const tok = g.tokens[j]!;
      switch (tok.t) {
        case "lit":
          if (cur[j] && tok.c === ch) next[j + 1] = true;
          break;
        case "one":
          if (cur[j] && ch !== "/") next[j + 1] = true;
          break;
        case "star":
          if (cur[j + 1] && ch !== "/") next[j + 1] = true;
          if (cur[j] && ch !== "/") next[j + 1] = true;
          break;
        case "globstar":
          if (cur[j + 1] || cur[j]) next[j + 1] = true;
          break;
        case "dirs":
          if ((open[j] || cur[j]) && ch === "/") next[j + 1] = true;
          break;
      }
    }
    cur = next;
    close(cur, ch);
  }
  return cur[m] === true;
}

function outside(message: string): never {
  throw new GatewayError("outside_bounds", message);
}

/** Roots resolved to canonical form (symlinks followed), so they compare with canonical paths. */
async function canonicalRoots(roots: readonly string[]): Promise<string[]> {
  return Promise.all(roots.map((r) => realpath(r).catch(() => resolve(r))));
}

/** The check the gateway applies to every derived value; a no-op without bounds. */
export async function boundsCheck(bounds: GatewayBounds | undefined): Promise<BoundsCheck> {
  if (bounds === undefined) return () => {};
  const roots = bounds.roots === undefined ? undefined : await canonicalRoots(bounds.roots);
  const deny = bounds.deny.map((d) => parsePathGlob(d));
  const hosts = bounds.hosts?.map((h) => parsePathGlob(h, true));
  const domains = bounds.domains?.map((d) => parsePathGlob(d, true));
  return (kind, value, arg) => {
    if (kind === "path") {
      if (
        roots !== undefined &&
        !roots.some((r) => value === r || value.startsWith(r === "/" ? r : `${r}/`))
      ) {
        outside(`${q(arg)}: ${q(value)} lies outside the gateway's roots`);
      }
      const hit = deny.find((d) => pathGlobMatches(d, value));
      if (hit) outside(`${q(arg)}: ${q(value)} matches the gateway's denied glob ${q(hit.source)}`);
    } else {
      const allowed = kind === "host" ? hosts : domains;
      if (allowed !== undefined && !allowed.some((g) => pathGlobMatches(g, value))) {
        outside(`${q(arg)}: ${kind} ${q(value)} is not among the gateway's allowed ${kind}s`);
      }
    }
  };
}
