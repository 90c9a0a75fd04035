/**
 * Resource templates of the gateway (`resource: "jira:project/{key|split('-')[0]}"`): parsed and
 * type-checked once, at load, so a template that cannot work is a configuration error with its
 * place, never a surprise at call time.
 *
 *   template    := (text | "{" placeholder "}")*        `{{` and `}}` are literal braces
 *   placeholder := argument ["?"] ("|" filter)*
 *   argument    := name ("." name | "[" digits "]" | "[*]")*
 *   filter      := split('SEP') ["[" index "]"] | index(N) | lower | host | domain
 *                | path ["('/BASE')"] | repository
 *
 * Types flow through the filters: an argument is a value, `split` makes a list, `index` (or `[N]`
 * right after `split`) picks one item; a placeholder must end with a value. At most one `[*]` in a
 * template: it makes one resource per array item.
 */

import type { ArgumentStep, Path } from "../core/index.js";
import {
  isWritError,
  q,
  type ResourceFilter,
  type ResourceTemplate,
  type TemplatePlaceholder,
  WritError,
} from "../core/index.js";
import type { ConfigErrorCode } from "./codes.js";

export const MAX_TEMPLATE = 512;
const MAX_PLACEHOLDERS = 16;
const MAX_FILTERS = 8;
const NAME = /^[A-Za-z_$][A-Za-z0-9_$-]{0,127}/;

/** The parser's one refusal, from deep inside it: `ERR_TEMPLATE_SYNTAX`, naming the character. */
function fail(at: number, message: string): never {
  throw new WritError("ERR_TEMPLATE_SYNTAX", `at character ${at + 1}: ${message}`);
}

function parseArgument(src: string, start: number): { steps: ArgumentStep[]; end: number } {
  const steps: ArgumentStep[] = [];
  let i = start;
  const first = NAME.exec(src.slice(i));
  if (!first) fail(i, "expected an argument name");
  steps.push({ t: "key", key: first[0] });
  i += first[0].length;
  for (;;) {
    if (src[i] === ".") {
      const m = NAME.exec(src.slice(i + 1));
      if (!m) fail(i + 1, "expected a key after `.`");
      steps.push({ t: "key", key: m[0] });
      i += 1 + m[0].length;
    } else if (src.startsWith("[*]", i)) {
      steps.push({ t: "each" });
      i += 3;
    } else if (src[i] === "[") {
      const m = /^\[(\d{1,4})\]/.exec(src.slice(i));
      if (!m) fail(i, "expected `[*]` or `[N]` (N from 0 to 9999)");
      steps.push({ t: "index", index: Number(m[1]) });
      i += m[0].length;
    } else return { steps, end: i };
  }
}

function parseFilter(src: string, start: number): { filter: ResourceFilter[]; end: number } {
  const m = /^[a-z]+/.exec(src.slice(start));
  if (!m) fail(start, "expected a filter: split, index, lower, host, domain, path or repository");
  let i = start + m[0].length;
  const stringArg = (): string | undefined => {
    if (src[i] !== "(") return undefined;
    const a = /^\('([^'{}|\\]{1,64})'\)/.exec(src.slice(i));
    if (!a) fail(i, `\`${m[0]}\` takes one quoted argument, e.g. \`${m[0]}('-')\``);
    i += a[0].length;
    return a[1]!;
  };
  const filters: ResourceFilter[] = [];
  switch (m[0]) {
    case "split": {
      const sep = stringArg();
      if (sep === undefined) fail(i, "`split` needs a separator, e.g. `split('-')`");
      filters.push({ f: "split", sep });
      const idx = /^\[(-?\d{1,4})\]/.exec(src.slice(i));
      if (idx) {
        filters.push({ f: "index", index: Number(idx[1]) });
        i += idx[0].length;
      }
      break;
    }
    case "index": {
      const a = /^\((-?\d{1,4})\)/.exec(src.slice(i));
      if (!a) fail(i, "`index` needs a position, e.g. `index(0)` or `index(-1)` for the last");
      filters.push({ f: "index", index: Number(a[1]) });
      i += a[0].length;
      break;
    }
    case "path": {
      const base = stringArg();
      if (base !== undefined && !base.startsWith("/")) fail(start, `path base ${q(base)} must be absolute`);
      filters.push({ f: "path", base });
      break;
    }
    case "lower":
    case "host":
    case "domain":
    case "repository":
      filters.push({ f: m[0] });
      break;
    default:
      fail(start, `unknown filter ${q(m[0])}: split, index, lower, host, domain, path or repository`);
  }
  return { filter: filters, end: i };
}

function checkTypes(filters: readonly ResourceFilter[], at: number): void {
  let list = false;
  for (const f of filters) {
    if (f.f === "index") {
      if (!list) fail(at, "`index` picks from a list: put `split(…)` before it");
      list = false;
    } else if (list)
      fail(at, `\`${f.f}\` needs one value, not the list \`split\` made: pick one with \`[N]\``);
    else if (f.f === "split") list = true;
  }
  if (list) fail(at, "the placeholder ends with a list: pick one item with `[N]` after `split(…)`");
}

function parsePlaceholder(src: string, open: number): { p: TemplatePlaceholder; end: number } {
  let { steps, end: i } = parseArgument(src, open + 1);
  let optional = false;
  if (src[i] === "?") {
    optional = true;
    i += 1;
  }
  const filters: ResourceFilter[] = [];
  while (src[i] === "|") {
    const { filter, end } = parseFilter(src, i + 1);
    filters.push(...filter);
    i = end;
  }
  if (filters.length > MAX_FILTERS) fail(open, `at most ${MAX_FILTERS} filters in a placeholder`);
  if (src[i] !== "}") fail(i, "expected `|`, `?` or `}`");
  checkTypes(filters, open);
  return {
    p: { source: src.slice(open, i + 1), argument: steps, optional, filters },
    end: i + 1,
  };
}

/** Parses a template or throws `ERR_TEMPLATE_SYNTAX`, its message naming the character (1-based). */
export function parseTemplateText(src: string): ResourceTemplate["parts"] {
  if (src.length === 0 || src.length > MAX_TEMPLATE)
    fail(0, `a template has 1 to ${MAX_TEMPLATE} characters`);
  const parts: (string | TemplatePlaceholder)[] = [];
  let text = "";
  let each = 0;
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if ((ch === "{" || ch === "}") && src[i + 1] === ch) {
      text += ch;
      i += 2;
    } else if (ch === "}") fail(i, "unmatched `}` (write `}}` for a literal brace)");
    else if (ch === "{") {
      if (text) parts.push(text);
      text = "";
      const { p, end } = parsePlaceholder(src, i);
      each += p.argument.filter((s) => s.t === "each").length;
      if (each > 1) fail(i, "a template may expand one array (`[*]`) only");
      parts.push(p);
      i = end;
    } else if (ch.charCodeAt(0) < 0x20 || ch === "\x7f") fail(i, "control characters are not allowed");
    else {
      text += ch;
      i += 1;
    }
  }
  if (text) parts.push(text);
  if (parts.filter((p) => typeof p !== "string").length > MAX_PLACEHOLDERS) {
    fail(0, `at most ${MAX_PLACEHOLDERS} placeholders in a template`);
  }
  return parts;
}

export interface TemplateChecker {
  error(code: ConfigErrorCode, path: Path, message: string): void;
}

/** A template from writ.yaml; `ERR_CONFIG_GATEWAY_TEMPLATE` with the place of the mistake otherwise. */
export function parseResourceTemplate(
  c: TemplateChecker,
  v: string,
  path: Path,
): ResourceTemplate | undefined {
  try {
    return { kind: "resource-template", source: v, parts: parseTemplateText(v), path };
  } catch (err) {
    if (!isWritError(err, "ERR_TEMPLATE_SYNTAX")) throw err;
    c.error("ERR_CONFIG_GATEWAY_TEMPLATE", path, `template ${q(v.slice(0, 120))}, ${err.message}`);
    return undefined;
  }
}
