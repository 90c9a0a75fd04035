/**
 * IAM policy documents: parsed once, checked at the edge, readonly afterwards. Every problem names
 * the policy and the JSON path (`Statement[1].Condition.StringEquals`); a policy with an error is
 * never silently decisive (the evaluator refuses to allow while one is in play).
 */
export type PolicyKind = "identity" | "resource" | "boundary" | "session" | "scp" | "rcp";

export type PolicyVersion = "2012-10-17" | "2008-10-17";

export interface PrincipalSpec {
  /** `true` for the bare `"*"` form. */
  readonly any: boolean;
  /** Values per principal type: AWS, Service, Federated, CanonicalUser. */
  readonly byType: ReadonlyMap<string, readonly string[]>;
}

export interface ConditionClause {
  /** The operator as written, e.g. `ForAllValues:StringLikeIfExists`. */
  readonly raw: string;
  readonly set: "ForAllValues" | "ForAnyValue" | null;
  readonly op: ConditionOperator;
  readonly ifExists: boolean;
  readonly key: string;
  /** The key lower-cased (condition key names are case-insensitive). */
  readonly keyLower: string;
  readonly values: readonly string[];
}

export interface Statement {
  readonly index: number;
  readonly sid?: string;
  readonly effect: "Allow" | "Deny";
  readonly action?: readonly string[];
  readonly notAction?: readonly string[];
  readonly resource?: readonly string[];
  readonly notResource?: readonly string[];
  readonly principal?: PrincipalSpec;
  readonly notPrincipal?: PrincipalSpec;
  readonly conditions: readonly ConditionClause[];
}

export interface Policy {
  readonly kind: PolicyKind;
  /** A stable name for reasons: a managed policy ARN, `user/alice/inline/name`, a file path. */
  readonly id: string;
  readonly version: PolicyVersion;
  readonly statements: readonly Statement[];
  readonly problems: readonly PolicyProblem[];
}

export interface PolicyProblem {
  readonly code: "ERR_AWS_POLICY_MALFORMED";
  readonly severity: "error" | "warning";
  readonly policyId: string;
  readonly path: string;
  readonly message: string;
}

export const CONDITION_OPERATORS = [
  "StringEquals",
  "StringNotEquals",
  "StringEqualsIgnoreCase",
  "StringNotEqualsIgnoreCase",
  "StringLike",
  "StringNotLike",
  "NumericEquals",
  "NumericNotEquals",
  "NumericLessThan",
  "NumericLessThanEquals",
  "NumericGreaterThan",
  "NumericGreaterThanEquals",
  "DateEquals",
  "DateNotEquals",
  "DateLessThan",
  "DateLessThanEquals",
  "DateGreaterThan",
  "DateGreaterThanEquals",
  "Bool",
  "BinaryEquals",
  "IpAddress",
  "NotIpAddress",
  "ArnEquals",
  "ArnLike",
  "ArnNotEquals",
  "ArnNotLike",
  "Null",
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];
const OPERATOR_BY_LOWER = new Map(CONDITION_OPERATORS.map((o) => [o.toLowerCase(), o]));

const STATEMENT_KEYS = new Set([
  "Sid",
  "Effect",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Principal",
  "NotPrincipal",
  "Condition",
]);
const ACTION_RE = /^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?_-]+)$/;

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses a policy document (an object or JSON text). Problems are collected, never thrown. */
export function parsePolicy(kind: PolicyKind, id: string, doc: Json): Policy {
  const problems: PolicyProblem[] = [];
  const bad = (path: string, message: string) =>
    problems.push({ code: "ERR_AWS_POLICY_MALFORMED", severity: "error", policyId: id, path, message });
  let value = doc;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (err) {
      bad("", `not JSON: ${(err as Error).message}`);
      return { kind, id, version: "2012-10-17", statements: [], problems };
    }
  }
  if (!isObject(value)) {
    bad("", "a policy document must be a JSON object");
    return { kind, id, version: "2012-10-17", statements: [], problems };
  }
  for (const k of Object.keys(value)) {
    if (k !== "Version" && k !== "Statement" && k !== "Id") bad(k, `unknown policy element \`${k}\``);
  }
  let version: PolicyVersion = "2008-10-17";
  if (value.Version !== undefined) {
    if (value.Version === "2012-10-17" || value.Version === "2008-10-17") version = value.Version;
    else bad("Version", `unsupported version \`${String(value.Version)}\` (2012-10-17 or 2008-10-17)`);
  }
  const raw = value.Statement;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (raw === undefined) bad("Statement", "missing `Statement`");
  const statements: Statement[] = [];
  list.forEach((s, index) => {
    const st = parseStatement(kind, s, index, bad);
    if (st) statements.push(st);
  });
  return { kind, id, version, statements, problems };
}

function stringList(v: Json, path: string, bad: (p: string, m: string) => void): string[] | undefined {
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string")) return v as string[];
  bad(path, "must be a string or a non-empty list of strings");
  return undefined;
}

function parseStatement(
  kind: PolicyKind,
  s: Json,
  index: number,
  bad: (p: string, m: string) => void,
): Statement | undefined {
  const at = `Statement[${index}]`;
  if (!isObject(s)) {
    bad(at, "a statement must be an object");
    return undefined;
  }
  for (const k of Object.keys(s))
    if (!STATEMENT_KEYS.has(k)) bad(`${at}.${k}`, `unknown statement element \`${k}\``);
  if (s.Effect !== "Allow" && s.Effect !== "Deny") {
    bad(`${at}.Effect`, `\`Effect\` must be \`Allow\` or \`Deny\`, not \`${String(s.Effect)}\``);
  }
  if (s.Sid !== undefined && typeof s.Sid !== "string") bad(`${at}.Sid`, "`Sid` must be a string");
  const pair = (a: string, b: string, required: boolean) => {
    if (s[a] !== undefined && s[b] !== undefined) bad(at, `\`${a}\` and \`${b}\` cannot both be present`);
    if (required && s[a] === undefined && s[b] === undefined)
      bad(at, `one of \`${a}\` or \`${b}\` is required`);
  };
  pair("Action", "NotAction", true);
  // Trust policies and some resource policies omit Resource: it is then the resource they are on.
  pair("Resource", "NotResource", kind !== "resource");
  const takesPrincipal = kind === "resource" || kind === "rcp";
  if (takesPrincipal) pair("Principal", "NotPrincipal", true);
  else if (s.Principal !== undefined || s.NotPrincipal !== undefined) {
    bad(at, `a ${kind} policy cannot name a \`Principal\` or \`NotPrincipal\``);
  }
  const actions = (key: "Action" | "NotAction") => {
    if (s[key] === undefined) return undefined;
    const list = stringList(s[key], `${at}.${key}`, bad);
    list?.forEach((a, i) => {
      if (!ACTION_RE.test(a)) bad(`${at}.${key}[${i}]`, `malformed action \`${a}\` (service:Action)`);
    });
    return list;
  };
  const resources = (key: "Resource" | "NotResource") => {
    if (s[key] === undefined) return undefined;
    const list = stringList(s[key], `${at}.${key}`, bad);
    list?.forEach((r, i) => {
      if (r === "*") return;
      const segs = r.split(":");
      const ok = segs[0] === "arn" && (segs.length >= 6 || (segs.length >= 2 && r.endsWith("*")));
      if (!ok) bad(`${at}.${key}[${i}]`, `malformed resource \`${r}\` (an ARN or \`*\`)`);
    });
    return list;
  };
  const principal = (key: "Principal" | "NotPrincipal") =>
    s[key] === undefined ? undefined : parsePrincipal(s[key], `${at}.${key}`, bad);
  const conditions: ConditionClause[] = [];
  if (s.Condition !== undefined) {
    if (!isObject(s.Condition)) bad(`${at}.Condition`, "`Condition` must be an object");
    else parseConditions(s.Condition, `${at}.Condition`, conditions, bad);
  }
  const effect = s.Effect === "Deny" ? "Deny" : "Allow";
  const out: {
    -readonly [K in keyof Statement]: Statement[K];
  } = { index, effect, conditions };
  if (typeof s.Sid === "string") out.sid = s.Sid;
  const a = actions("Action");
  const na = actions("NotAction");
  const r = resources("Resource");
  const nr = resources("NotResource");
  const p = principal("Principal");
  const np = principal("NotPrincipal");
  if (a) out.action = a;
  if (na) out.notAction = na;
  if (r) out.resource = r;
  if (nr) out.notResource = nr;
  if (p) out.principal = p;
  if (np) out.notPrincipal = np;
  return out;
}

const PRINCIPAL_TYPES = new Set(["AWS", "Service", "Federated", "CanonicalUser"]);

function parsePrincipal(
  v: Json,
  path: string,
  bad: (p: string, m: string) => void,
): PrincipalSpec | undefined {
  if (v === "*") return { any: true, byType: new Map() };
  if (!isObject(v)) {
    bad(path, "must be `*` or an object of principal types (AWS, Service, Federated, CanonicalUser)");
    return undefined;
  }
  const byType = new Map<string, string[]>();
  for (const [type, raw] of Object.entries(v)) {
    if (!PRINCIPAL_TYPES.has(type)) {
      bad(`${path}.${type}`, `unknown principal type \`${type}\``);
      continue;
    }
    const list = stringList(raw, `${path}.${type}`, bad);
    if (!list) continue;
    list.forEach((p, i) => {
      // Wildcards are only allowed as the whole value: no partial principal patterns.
      if (p !== "*" && (p.includes("*") || p.includes("?")) && type === "AWS") {
        bad(`${path}.${type}[${i}]`, `a principal cannot use a partial wildcard: \`${p}\``);
      }
      if (type === "AWS" && p !== "*" && !/^\d{12}$/.test(p) && !p.startsWith("arn:")) {
        bad(`${path}.${type}[${i}]`, `an AWS principal must be an account id, an ARN or \`*\`: \`${p}\``);
      }
    });
    byType.set(type, list);
  }
  return { any: false, byType };
}

function parseConditions(
  cond: Record<string, Json>,
  path: string,
  out: ConditionClause[],
  bad: (p: string, m: string) => void,
): void {
  for (const [raw, block] of Object.entries(cond)) {
    let rest = raw;
    let set: ConditionClause["set"] = null;
    const colon = rest.indexOf(":");
    if (colon >= 0) {
      const qual = rest.slice(0, colon);
      if (qual === "ForAllValues" || qual === "ForAnyValue") set = qual;
      else {
        bad(`${path}.${raw}`, `unknown set operator \`${qual}\` (ForAllValues or ForAnyValue)`);
        continue;
      }
      rest = rest.slice(colon + 1);
    }
    let ifExists = false;
    if (rest.endsWith("IfExists")) {
      ifExists = true;
      rest = rest.slice(0, -"IfExists".length);
    }
    const op = OPERATOR_BY_LOWER.get(rest.toLowerCase());
    if (!op || op !== rest) {
      bad(`${path}.${raw}`, `unknown condition operator \`${raw}\``);
      continue;
    }
    if (op === "Null" && (ifExists || set)) {
      bad(`${path}.${raw}`, "`Null` takes neither `IfExists` nor a set operator");
      continue;
    }
    if (!isObject(block)) {
      bad(`${path}.${raw}`, "an operator's value must be an object of condition keys");
      continue;
    }
    for (const [key, rawValues] of Object.entries(block)) {
      const list = Array.isArray(rawValues) ? rawValues : [rawValues];
      const values: string[] = [];
      let ok = list.length > 0;
      for (const x of list) {
        if (typeof x === "string") values.push(x);
        else if (typeof x === "number" || typeof x === "boolean") values.push(String(x));
        else ok = false;
      }
      if (!ok) {
        bad(`${path}.${raw}.${key}`, "condition values must be strings, numbers or booleans");
        continue;
      }
      const problem = checkValues(op, values);
      if (problem) {
        bad(`${path}.${raw}.${key}`, problem);
        continue;
      }
      out.push({ raw, set, op, ifExists, key, keyLower: key.toLowerCase(), values });
    }
  }
}

function checkValues(op: ConditionOperator, values: readonly string[]): string | undefined {
  for (const v of values) {
    if (op.startsWith("Numeric") && !/^-?\d+(\.\d+)?$/.test(v.trim())) return `\`${v}\` is not a number`;
    if (op.startsWith("Date") && parseDate(v) === undefined && !v.includes("${"))
      return `\`${v}\` is not a date`;
    if ((op === "Bool" || op === "Null") && !/^(true|false)$/i.test(v)) return `\`${v}\` is not a boolean`;
    if ((op === "IpAddress" || op === "NotIpAddress") && parseCidr(v) === undefined) {
      return `\`${v}\` is not an IP address or CIDR block`;
    }
  }
  return undefined;
}

/** ISO 8601 (date, date-time) or epoch seconds → milliseconds. */
export function parseDate(v: string): number | undefined {
  const s = v.trim();
  if (/^-?\d+$/.test(s)) return Number(s) * 1000;
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(s))
    return undefined;
  const withZone = /T|\s/.test(s) && !/(Z|[+-]\d{2}:?\d{2})$/.test(s) ? `${s}Z` : s;
  const t = Date.parse(withZone);
  return Number.isNaN(t) ? undefined : t;
}

export interface Cidr {
  readonly v6: boolean;
  readonly addr: bigint;
  readonly bits: number;
}

/** An IPv4/IPv6 address or CIDR block; a bare address is a /32 or /128. */
export function parseCidr(v: string): Cidr | undefined {
  const [ip, len, extra] = v.trim().split("/");
  if (extra !== undefined || !ip) return undefined;
  const addr = parseIp(ip);
  if (!addr) return undefined;
  const max = addr.v6 ? 128 : 32;
  const bits = len === undefined ? max : /^\d+$/.test(len) ? Number(len) : Number.NaN;
  if (!(bits >= 0 && bits <= max)) return undefined;
  return { v6: addr.v6, addr: addr.value, bits };
}

export function parseIp(ip: string): { v6: boolean; value: bigint } | undefined {
  if (ip.includes(":")) return parseIpv6(ip);
  const parts = ip.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    value = (value << 8n) | BigInt(Number(p));
  }
  return { v6: false, value };
}

function parseIpv6(ip: string): { v6: boolean; value: bigint } | undefined {
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    // An embedded IPv4 tail (`::ffff:10.0.0.1`) is two 16-bit groups.
    const v4 = parseIp(last);
    if (!v4 || v4.v6) return undefined;
    const hi = (v4.value >> 16n).toString(16);
    const lo = (v4.value & 0xffffn).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const total = head.length + back.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...Array<string>(8 - total).fill("0"), ...back];
  let value = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return { v6: true, value };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const a = parseIp(ip.trim());
  if (!a || a.v6 !== c.v6) return false;
  const width = c.v6 ? 128n : 32n;
  const shift = width - BigInt(c.bits);
  return a.value >> shift === c.addr >> shift;
}

/** The problems with severity `error`. */
export function policyErrors(p: Policy): readonly PolicyProblem[] {
  return p.problems.filter((x) => x.severity === "error");
}
