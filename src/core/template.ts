/**
 * Grant templates: `arn:aws:s3:::${bucket}/*`. At issuance the parameters are substituted, escaped,
 * so a value can never smuggle a wildcard or an alternative into a grant. At load time each
 * placeholder is replaced by the widest pattern its JSON Schema allows, so that containment can be
 * proved before any request arrives.
 */
import { q, WritError } from "./errors.js";
import { escapeGlob } from "./pattern.js";

const PLACEHOLDER = /\$\{([^}]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function templateParams(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) names.push(m[1]!);
  return names;
}

export function isParamName(name: string): boolean {
  return NAME.test(name);
}

/** Substitutes scalar parameters, escaping pattern metacharacters in their values. */
export function substitute(template: string, params: Readonly<Record<string, unknown>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    if (!Object.hasOwn(params, name)) {
      throw new WritError("ERR_TEMPLATE_PARAM", `template ${q(template)}: parameter ${q(name)} has no value`);
    }
    const value = params[name];
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new WritError(
        "ERR_TEMPLATE_PARAM",
        `template ${q(template)}: parameter ${q(name)} must be a string, number or boolean to be placed in a grant`,
      );
    }
    return escapeGlob(String(value));
  });
}

type Schema = Readonly<Record<string, unknown>>;

const MAX_EXPANSION = 256;

/** The widest glob a value valid against `schema` can produce, as a list of alternatives. */
export function widestPatterns(schema: Schema | undefined): string[] {
  if (!schema || typeof schema !== "object") return ["*"];
  if ("const" in schema && isScalar(schema.const)) return [escapeGlob(String(schema.const))];
  if (Array.isArray(schema.enum) && schema.enum.length > 0 && schema.enum.every(isScalar)) {
    return schema.enum.map((v) => escapeGlob(String(v)));
  }
  if (typeof schema.pattern === "string") {
    const fixed = anchoredPrefix(schema.pattern);
    if (fixed) return [fixed.exact ? escapeGlob(fixed.prefix) : `${escapeGlob(fixed.prefix)}*`];
  }
  return ["*"];
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

/**
 * The literal prefix every match of an anchored regex must start with: `^reports-[a-z]+$` →
 * `reports-`. Undefined when the regex is not anchored, has a top-level alternation, or begins with
 * a metacharacter.
 */
export function anchoredPrefix(regex: string): { prefix: string; exact: boolean } | undefined {
  if (!regex.startsWith("^") || regex.includes("|")) return undefined;
  let prefix = "";
  let i = 1;
  for (; i < regex.length; i++) {
    const ch = regex[i]!;
    if (ch === "\\") {
      const next = regex[i + 1];
      if (next !== undefined && /[.\-/\\:_@]/.test(next)) {
        prefix += next;
        i++;
        continue;
      }
      break;
    }
    if ("[](){}*+?.^$".includes(ch)) break;
    prefix += ch;
  }
  // a quantifier right after the last literal makes that literal optional or repeated
  if (/[*+?{]/.test(regex[i] ?? "")) prefix = prefix.slice(0, -1);
  const exact = regex.slice(i) === "$";
  if (prefix.length === 0) return undefined;
  return { prefix, exact };
}

/**
 * Every pattern the template can become, with placeholders replaced by their widest patterns.
 * When the enumeration grows past 256, placeholders widen to `*` (still sound, just coarser).
 */
export function widenTemplate(
  template: string,
  schemas: Readonly<Record<string, Schema | undefined>>,
): string[] {
  const parts: string[][] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    parts.push([template.slice(last, m.index)]);
    parts.push(widestPatterns(schemas[m[1]!]));
    last = m.index + m[0].length;
  }
  parts.push([template.slice(last)]);
  const size = parts.reduce((n, p) => n * p.length, 1);
  const choices = size > MAX_EXPANSION ? parts.map((p) => (p.length > 1 ? ["*"] : p)) : parts;
  let out = [""];
  for (const options of choices) out = out.flatMap((prefix) => options.map((o) => prefix + o));
  return out;
}
