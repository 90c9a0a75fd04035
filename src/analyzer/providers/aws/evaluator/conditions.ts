/**
 * Condition operators (IAM User Guide, "IAM JSON policy elements: Condition operators" and
 * "Single-valued vs. multivalued context keys"):
 * - several values for one key are ORed; several keys, and several operators, are ANDed;
 * - a missing key makes a positive operator false and a negated one (`…Not…`, `NotIpAddress`) true;
 *   `…IfExists` makes a missing key true; `Null` tests presence (an empty list counts as absent);
 * - `ForAnyValue`: some request value matches (false when the key is missing or empty);
 *   `ForAllValues`: every request value matches (true when the key is missing or empty);
 * - a negated operator matches a value that equals none of the policy values.
 * Policy variables are resolved in string and ARN operators of 2012-10-17 policies.
 */
import { arnMatch } from "./arn.js";
import { globMatch } from "./glob.js";
import {
  type ConditionClause,
  type ConditionOperator,
  cidrContains,
  parseCidr,
  parseDate,
} from "./policy.js";
import type { Context } from "./request.js";
import { resolvePattern, resolveText } from "./variables.js";

const NEGATED = new Set<ConditionOperator>([
  "StringNotEquals",
  "StringNotEqualsIgnoreCase",
  "StringNotLike",
  "NumericNotEquals",
  "DateNotEquals",
  "NotIpAddress",
  "ArnNotEquals",
  "ArnNotLike",
]);

const POSITIVE: Partial<Record<ConditionOperator, ConditionOperator>> = {
  StringNotEquals: "StringEquals",
  StringNotEqualsIgnoreCase: "StringEqualsIgnoreCase",
  StringNotLike: "StringLike",
  NumericNotEquals: "NumericEquals",
  DateNotEquals: "DateEquals",
  NotIpAddress: "IpAddress",
  ArnNotEquals: "ArnEquals",
  ArnNotLike: "ArnLike",
};

/** Does one request value match one (unresolved) policy value under a positive operator? */
function matchOne(
  op: ConditionOperator,
  policyValue: string,
  value: string,
  ctx: Context,
  vars: boolean,
): boolean {
  switch (op) {
    case "StringEquals": {
      const p = resolveText(policyValue, ctx, vars);
      return p !== undefined && p === value;
    }
    case "StringEqualsIgnoreCase": {
      const p = resolveText(policyValue, ctx, vars);
      return p !== undefined && p.toLowerCase() === value.toLowerCase();
    }
    case "StringLike": {
      const parts = resolvePattern(policyValue, ctx, vars);
      return parts !== undefined && globMatch(parts, value);
    }
    case "ArnEquals":
    case "ArnLike": {
      const parts = resolvePattern(policyValue, ctx, vars);
      return parts !== undefined && value.startsWith("arn:") && arnMatch(parts, value);
    }
    case "NumericEquals":
    case "NumericLessThan":
    case "NumericLessThanEquals":
    case "NumericGreaterThan":
    case "NumericGreaterThanEquals": {
      const a = numeric(value);
      const b = numeric(policyValue);
      return a !== undefined && b !== undefined && compare(op.slice("Numeric".length), a, b);
    }
    case "DateEquals":
    case "DateLessThan":
    case "DateLessThanEquals":
    case "DateGreaterThan":
    case "DateGreaterThanEquals": {
      const a = parseDate(value);
      const b = parseDate(policyValue);
      return a !== undefined && b !== undefined && compare(op.slice("Date".length), a, b);
    }
    case "Bool":
      return /^(true|false)$/i.test(value) && value.toLowerCase() === policyValue.toLowerCase();
    case "BinaryEquals":
      return binary(value) !== undefined && binary(value) === binary(policyValue);
    case "IpAddress": {
      const c = parseCidr(policyValue);
      return c !== undefined && cidrContains(c, value);
    }
    default:
      return false;
  }
}

function numeric(v: string): number | undefined {
  const s = v.trim();
  return /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : undefined;
}

function binary(v: string): string | undefined {
  const s = v.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  return Buffer.from(s, "base64").toString("hex");
}

function compare(rel: string, a: number, b: number): boolean {
  switch (rel) {
    case "Equals":
      return a === b;
    case "LessThan":
      return a < b;
    case "LessThanEquals":
      return a <= b;
    case "GreaterThan":
      return a > b;
    case "GreaterThanEquals":
      return a >= b;
    default:
      return false;
  }
}

/** Evaluates one operator/key clause against the context. */
export function evaluateClause(c: ConditionClause, ctx: Context, vars: boolean): boolean {
  const entry = ctx.get(c.keyLower);
  const values = entry?.values ?? [];
  const present = values.length > 0;
  if (c.op === "Null") {
    const wantsAbsent = c.values.some((v) => v.toLowerCase() === "true");
    const wantsPresent = c.values.some((v) => v.toLowerCase() === "false");
    return (wantsAbsent && !present) || (wantsPresent && present);
  }
  const negated = NEGATED.has(c.op);
  const positive = POSITIVE[c.op] ?? c.op;
  // A request value "matches" a negated operator when it matches none of the policy values.
  const valueMatches = (v: string) => {
    const any = c.values.some((pv) => matchOne(positive, pv, v, ctx, vars));
    return negated ? !any : any;
  };
  if (!present) {
    if (c.ifExists) return true;
    if (c.set === "ForAllValues") return true;
    if (c.set === "ForAnyValue") return false;
    return negated;
  }
  if (c.set === "ForAllValues") return values.every(valueMatches);
  if (c.set === "ForAnyValue") return values.some(valueMatches);
  // No set operator: a single-valued key. Given several values, a positive operator needs one of
  // them to match and a negated one needs none of them to match any policy value.
  return negated ? values.every(valueMatches) : values.some(valueMatches);
}

/** All clauses of a statement (AND). */
export function conditionsHold(clauses: readonly ConditionClause[], ctx: Context, vars: boolean): boolean {
  for (const c of clauses) if (!evaluateClause(c, ctx, vars)) return false;
  return true;
}
