/**
 * ARN matching (IAM User Guide, "IAM JSON policy elements: Resource" and the ARN condition
 * operators): an ARN has six colon-separated fields and the last one (the resource) keeps any
 * further colons. A wildcard inside one of the first five fields stays inside it; in the resource
 * field `*` spans `/` and `:`. A pattern with fewer than six fields whose last field ends in `*`
 * lets that `*` run on across the remaining fields. Matching is case-sensitive.
 */
import { type GlobPart, globMatch, splitParts } from "./glob.js";

function arnFields(arn: string): string[] | undefined {
  const out: string[] = [];
  let rest = arn;
  for (let i = 0; i < 5; i++) {
    const j = rest.indexOf(":");
    if (j < 0) return undefined;
    out.push(rest.slice(0, j));
    rest = rest.slice(j + 1);
  }
  out.push(rest);
  return out[0] === "arn" ? out : undefined;
}

/** Matches a resolved pattern (see variables.ts) against a request ARN or `*`. */
export function arnMatch(pattern: readonly GlobPart[], arn: string): boolean {
  if (pattern.length === 1 && typeof pattern[0] !== "string" && pattern[0]!.wild === "*") return true;
  const fields = arnFields(arn);
  if (!fields) {
    // Not an ARN (a wildcard-only action's `*`): only an exact literal or full-glob match.
    return globMatch(pattern, arn);
  }
  const pf = splitParts(pattern, ":", 6);
  for (let i = 0; i < pf.length; i++) {
    const parts = pf[i]!;
    const isLast = i === pf.length - 1;
    if (isLast && i < 5) {
      const last = parts[parts.length - 1];
      if (!last || typeof last === "string" || last.wild !== "*") return false;
      return globMatch(parts, fields.slice(i).join(":"));
    }
    if (!globMatch(parts, fields[i]!)) return false;
  }
  return pf.length === 6;
}
