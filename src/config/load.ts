/**
 * Loading writ.yaml: parse once, check everything, report every problem at once with file, line,
 * column, path and a stable code (docs/config-errors.md), then build the readonly domain model.
 */
import { createHash } from "node:crypto";
import { dirname, resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { importJWK } from "jose";
import { isMap, isScalar, isSeq, LineCounter, type Node, type Pair, parseDocument, type YAMLMap } from "yaml";
import {
  type Agent,
  type ApprovalPolicy,
  type Approver,
  type ApproverGroup,
  type Ceiling,
  type CeilingRule,
  type ChangeWindow,
  type CoreErrorCode,
  checkContainment,
  compileRule,
  type Environment,
  formatDuration,
  type Grant,
  type GrantTemplate,
  isParamName,
  isTimeZone,
  isWritError,
  linearRegExpEngine,
  linearRegex,
  MAX_PATTERN_LENGTH,
  type Path,
  type Playbook,
  parseClock,
  parseDuration,
  q,
  type Risk,
  type Rule,
  type RuleMode,
  type RunnerClass,
  type RunnerClassDelegation,
  type RunnerClassLimits,
  type SponsorRule,
  type TicketRequirement,
  templateParams,
  type Vocabulary,
  WEEKDAYS,
  type Weekday,
  type WritConfig,
} from "../core/index.js";
import { parseRuns, parseTools } from "./agent-runs.js";
import { createAwsCatalog, type LoadableAwsCatalog } from "./catalog.js";
import type { ConfigErrorCode } from "./codes.js";
import { parseDownstream } from "./downstream.js";
import { parseGateway } from "./gateway.js";
import { parseHooks } from "./hooks.js";
import { type ConfigProblem, formatPath } from "./problem.js";
import { type FileKind, type FileRead, forbiddenCharacter, MAX_FILE_BYTES, readTextFile } from "./read.js";
import { checkSchemaPatterns } from "./regex.js";
import { SHAPES, type Shape } from "./schema.js";

export interface LoadOptions {
  /** The name problems carry; also the base for relative `file:` references unless `baseDir` is given. */
  readonly file: string;
  readonly baseDir?: string;
  readonly catalog?: LoadableAwsCatalog;
}

export interface GuardrailSource {
  readonly file: string;
  readonly text: string;
  /** Where the text starts in `file` (1-based), so Cedar positions map back to the operator's file. */
  readonly line: number;
  readonly column: number;
  /** Columns a YAML block scalar strips from every line of `text` (0 for files). */
  readonly indent: number;
  readonly path: Path;
  /** The source's `mode`: every policy in it enforces, or is in shadow. */
  readonly mode: RuleMode;
}

export interface LoadResult {
  /** Present when there are no errors (warnings allowed). */
  readonly config?: WritConfig | undefined;
  readonly guardrailSources: readonly GuardrailSource[];
  readonly problems: readonly ConfigProblem[];
  readonly vocab: Vocabulary;
  /** The AWS catalog behind `vocab`: load a service before deciding on its actions. */
  readonly catalog: LoadableAwsCatalog;
  /** `sha256:<hex>` of the text that was loaded, when it came from a file. */
  readonly digest?: string | undefined;
  /** Where a model path (`Grant.path`, `["agents", id]`) sits in the file, for evidence; absent on early failures. */
  readonly locate?: ((path: Path) => { line?: number; column?: number }) | undefined;
}

type Json = unknown;
type Obj = Record<string, Json>;

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The longest duration writ.yaml may give (a ttl, a window of a rate): a year. */
const MAX_DURATION_SECONDS = 365 * 86400;
/** Keys in one JWK set: more than any rotation needs, few enough that importing them stays cheap. */
const MAX_KEYS = 100;
/** All guardrail text together, files and inline: a few times what one file may hold. */
const MAX_GUARDRAIL_BYTES = 4 * MAX_FILE_BYTES.guardrails;
/** `maxUses` is counted in a 32-bit column. */
const MAX_USES = 2 ** 31 - 1;
const APPROVER_ID = /^[^\s\p{Cc}]{1,254}$/u;
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** Past this many names, no suggestion: comparing with each would make a large config slow to check. */
const MAX_SUGGESTION_OPTIONS = 1000;

function suggest(word: string, options: Iterable<string>): string {
  const names = [...options];
  if (names.length > MAX_SUGGESTION_OPTIONS) return "";
  const most = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const o of names) {
    if (Math.abs(o.length - word.length) > most) continue;
    const d = levenshtein(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return best !== undefined && bestD <= most ? `; did you mean ${q(best)}?` : "";
}

/** What a problem of writ.yaml can be coded: the loader's codes, and the core's for containment and patterns. */
export type ProblemCode = ConfigErrorCode | CoreErrorCode;

export class Checker {
  readonly problems: ConfigProblem[] = [];
  /** Files read during this load, by absolute path: agents sharing one key set read it once. */
  readonly #files = new Map<string, Promise<FileRead>>();

  readOnce(path: string, kind: FileKind): Promise<FileRead> {
    const key = `${kind}:${path}`;
    let read = this.#files.get(key);
    if (!read) {
      read = readTextFile(path, kind);
      this.#files.set(key, read);
    }
    return read;
  }

  constructor(
    private readonly file: string,
    private readonly root: Node | null,
    private readonly lines: LineCounter,
  ) {}

  /** Each map's pairs by key, built on first use: a problem's position is found in time linear in its path. */
  readonly #index = new WeakMap<YAMLMap, Map<string, Pair>>();

  private pairs(map: YAMLMap): Map<string, Pair> {
    let index = this.#index.get(map);
    if (!index) {
      index = new Map();
      for (const p of map.items) {
        const k = isScalar(p.key) ? String(p.key.value) : undefined;
        if (k !== undefined && !index.has(k)) index.set(k, p);
      }
      this.#index.set(map, index);
    }
    return index;
  }

  /** Where `path` sits in writ.yaml (its key when `key`), as far down the path as the document goes. */
  locate(path: Path, key = false): { line?: number; column?: number } {
    let node: Node | null = this.root;
    let found: Node | null = node;
    for (let i = 0; i < path.length && node; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = this.pairs(node).get(String(seg));
        if (!pair) break;
        if (last && key && pair.key) {
          found = pair.key as Node;
          break;
        }
        node = (pair.value as Node | null) ?? (pair.key as Node);
      } else if (isSeq(node) && typeof seg === "number") {
        node = (node.items[seg] as Node | undefined) ?? null;
      } else break;
      if (node) found = node;
    }
    const offset = found?.range?.[0];
    if (offset === undefined) return {};
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  error(code: ProblemCode, path: Path, message: string, opts: { key?: boolean } = {}): void {
    this.problems.push({
      code,
      severity: "error",
      file: this.file,
      ...this.locate(path, opts.key ?? false),
      path: formatPath(path),
      message,
    });
  }

  warn(code: ProblemCode, path: Path, message: string): void {
    this.problems.push({
      code,
      severity: "warning",
      file: this.file,
      ...this.locate(path, false),
      path: formatPath(path),
      message,
    });
  }

  typeName(v: Json): string {
    if (v === null) return "null";
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object") return "a map";
    return `a ${typeof v}`;
  }

  map(v: Json, path: Path, what = "a map"): Obj | undefined {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Obj;
    this.error("ERR_CONFIG_TYPE", path, `expected ${what}, got ${this.typeName(v)}`);
    return undefined;
  }

  list(v: Json, path: Path): Json[] | undefined {
    if (Array.isArray(v)) return v;
    this.error("ERR_CONFIG_TYPE", path, `expected a list, got ${this.typeName(v)}`);
    return undefined;
  }

  string(v: Json, path: Path): string | undefined {
    if (typeof v === "string" && v.trim().length > 0) return v;
    if (typeof v === "string") this.error("ERR_CONFIG_VALUE", path, "must not be empty");
    else this.error("ERR_CONFIG_TYPE", path, `expected a string, got ${this.typeName(v)}`);
    return undefined;
  }

  strings(v: Json, path: Path): string[] {
    const items = this.list(v, path) ?? [];
    const out: string[] = [];
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const s = this.string(item, [...path, i]);
      if (s === undefined) return;
      if (seen.has(s)) this.error("ERR_CONFIG_DUPLICATE", [...path, i], `${q(s)} is listed twice`);
      seen.add(s);
      out.push(s);
    });
    return out;
  }

  /** Checks the keys of a map: required ones present, no unknown ones (through `shape`). */
  private keys(obj: Obj, path: Path, required: readonly string[], optional: readonly string[]): void {
    const known = [...required, ...optional];
    for (const k of Object.keys(obj)) {
      if (!known.includes(k)) {
        this.error("ERR_CONFIG_UNKNOWN_KEY", [...path, k], `unknown key ${q(k)}${suggest(k, known)}`, {
          key: true,
        });
      }
    }
    for (const k of required) {
      if (!(k in obj) || obj[k] === null || obj[k] === undefined) {
        this.error("ERR_CONFIG_REQUIRED", path, `missing required key ${q(k)}`);
      }
    }
  }

  /**
   * Checks a map's keys against its shape in `schema.ts` (or against one of several it may take):
   * what every one requires present, nothing none of them knows.
   */
  shape(obj: Obj, path: Path, first: Shape, ...others: readonly Shape[]): void {
    const all = [first, ...others];
    const required = first.required.filter((k) => all.every((s) => s.required.includes(k)));
    const known = [...new Set(all.flatMap((s) => Object.keys(s.properties)))];
    this.keys(
      obj,
      path,
      required,
      known.filter((k) => !required.includes(k)),
    );
  }

  /** Iterates a map of named entries, checking each name. */
  entries(v: Json, path: Path, what: string): [string, Json][] {
    if (v === undefined || v === null) return [];
    const obj = this.map(v, path);
    if (!obj) return [];
    const out: [string, Json][] = [];
    for (const [name, value] of Object.entries(obj)) {
      if (!ID.test(name)) {
        this.error(
          "ERR_CONFIG_ID",
          [...path, name],
          `${what} name ${q(name)} must be lower-case letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or digit`,
          { key: true },
        );
        continue;
      }
      out.push([name, value]);
    }
    return out;
  }

  ref(
    name: string,
    path: Path,
    what: string,
    known: ReadonlyMap<string, unknown> | ReadonlySet<string>,
  ): boolean {
    if (known.has(name)) return true;
    this.error("ERR_CONFIG_UNKNOWN_REF", path, `unknown ${what} ${q(name)}${suggest(name, known.keys())}`);
    return false;
  }

  refs(
    names: readonly string[],
    path: Path,
    what: string,
    known: ReadonlyMap<string, unknown> | ReadonlySet<string>,
  ): void {
    for (const [i, name] of names.entries()) this.ref(name, [...path, i], what, known);
  }

  /** `mode: enforce | shadow` (docs/shadow.md); absent: `enforce`. */
  mode(v: Json, path: Path): RuleMode {
    if (v === undefined || v === "enforce") return "enforce";
    if (v === "shadow") return "shadow";
    this.error("ERR_CONFIG_VALUE", path, `mode ${q(v)}: expected \`enforce\` or \`shadow\``);
    return "enforce";
  }

  duration(v: Json, path: Path): number | undefined {
    if (typeof v !== "string" && typeof v !== "number") {
      this.error("ERR_CONFIG_TYPE", path, `expected a duration such as \`15m\`, got ${this.typeName(v)}`);
      return undefined;
    }
    if (typeof v === "number") {
      this.error(
        "ERR_CONFIG_DURATION",
        path,
        `duration ${q(v)} needs a unit: \`${v}s\`, \`${v}m\`, \`${v}h\` or \`${v}d\``,
      );
      return undefined;
    }
    try {
      const seconds = parseDuration(v);
      if (seconds > MAX_DURATION_SECONDS) {
        this.error(
          "ERR_CONFIG_DURATION",
          path,
          `duration ${q(v)}: at most ${formatDuration(MAX_DURATION_SECONDS)}`,
        );
        return undefined;
      }
      return seconds;
    } catch (e) {
      if (!isWritError(e)) throw e;
      this.error("ERR_CONFIG_DURATION", path, e.message);
      return undefined;
    }
  }

  rule(v: Json, path: Path, shape: Shape = SHAPES.rule): { rule: Rule; obj: Obj } | undefined {
    const obj = this.map(v, path, "a map with `action` and `resource`");
    if (!obj) return undefined;
    this.shape(obj, path, shape);
    const action = this.string(obj.action, [...path, "action"]);
    const resource = obj.resource === undefined ? "*" : this.string(obj.resource, [...path, "resource"]);
    if (action === undefined || resource === undefined) return undefined;
    try {
      return { rule: compileRule({ action, resource }), obj };
    } catch (e) {
      if (!isWritError(e)) throw e;
      const field =
        e.code === "ERR_PATTERN_TOO_LONG"
          ? resource.length > MAX_PATTERN_LENGTH
            ? "resource"
            : "action"
          : e.code === "ERR_PATTERN_ESCAPE" || e.code === "ERR_PATTERN_EMPTY"
            ? undefined
            : "action";
      this.error(
        e.code === "ERR_UNKNOWN_PROVIDER" ? "ERR_CONFIG_UNKNOWN_PROVIDER" : "ERR_CONFIG_PATTERN",
        field ? [...path, field] : path,
        e.message,
      );
      return undefined;
    }
  }
}

function parseDays(c: Checker, v: Json, path: Path): Weekday[] {
  const names: string[] = [];
  if (typeof v === "string") names.push(...v.split(",").map((s) => s.trim()));
  else names.push(...c.strings(v, path));
  const days = new Set<Weekday>();
  for (const n of names) {
    const range = /^([a-z]{3})-([a-z]{3})$/i.exec(n);
    const idx = (d: string) => WEEKDAYS.indexOf(d.toLowerCase() as (typeof WEEKDAYS)[number]);
    if (range) {
      const from = idx(range[1]!);
      const to = idx(range[2]!);
      if (from < 0 || to < 0) {
        c.error("ERR_CONFIG_WINDOW", path, `day range ${q(n)}: use three-letter days, e.g. \`mon-fri\``);
        continue;
      }
      for (let d = from; ; d = (d + 1) % 7) {
        days.add(d as Weekday);
        if (d === to) break;
      }
    } else if (idx(n) >= 0) days.add(idx(n) as Weekday);
    else
      c.error(
        "ERR_CONFIG_WINDOW",
        path,
        `unknown day ${q(n)}: expected one of ${WEEKDAYS.join(", ")} or a range like \`mon-fri\``,
      );
  }
  if (names.length === 0) c.error("ERR_CONFIG_WINDOW", path, "a change window needs at least one day");
  return [...days].sort();
}

function parseWindow(c: Checker, v: Json, path: Path): ChangeWindow | undefined {
  const obj = c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.changeWindow);
  const days = obj.days === undefined ? [] : parseDays(c, obj.days, [...path, "days"]);
  const hours = obj.hours === undefined ? undefined : c.string(obj.hours, [...path, "hours"]);
  const tz = obj.timezone === undefined ? undefined : c.string(obj.timezone, [...path, "timezone"]);
  let start: number | undefined;
  let end: number | undefined;
  if (hours !== undefined) {
    const m = /^\s*(\S+)\s*-\s*(\S+)\s*$/.exec(hours);
    try {
      if (!m) throw new Error();
      start = parseClock(m[1]!);
      end = parseClock(m[2]!);
      if (start === end) {
        c.error("ERR_CONFIG_WINDOW", [...path, "hours"], `hours ${q(hours)}: the window is empty`);
        start = undefined;
      }
    } catch {
      c.error(
        "ERR_CONFIG_WINDOW",
        [...path, "hours"],
        `hours ${q(hours)}: expected \`HH:MM-HH:MM\`, e.g. \`09:00-17:00\``,
      );
      start = undefined;
    }
  }
  if (tz !== undefined && !isTimeZone(tz)) {
    c.error(
      "ERR_CONFIG_TIMEZONE",
      [...path, "timezone"],
      `unknown time zone ${q(tz)}: use an IANA name such as \`Europe/London\``,
    );
    return undefined;
  }
  if (start === undefined || end === undefined || tz === undefined || days.length === 0) return undefined;
  return { kind: "change-window", days, start, end, timezone: tz };
}

function parseEnvironment(c: Checker, id: string, v: Json): Environment | undefined {
  const path = ["environments", id];
  const obj = v === null ? {} : c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.environment);
  let ticket: Environment["ticket"];
  if (obj.ticket !== undefined) {
    const t = c.map(obj.ticket, [...path, "ticket"]);
    if (t) {
      c.shape(t, [...path, "ticket"], SHAPES.ticketPattern);
      const src = t.pattern === undefined ? undefined : c.string(t.pattern, [...path, "ticket", "pattern"]);
      if (src !== undefined) {
        try {
          ticket = { pattern: linearRegex(src), source: src };
        } catch (e) {
          if (!isWritError(e)) throw e;
          c.error("ERR_CONFIG_REGEX", [...path, "ticket", "pattern"], e.message);
        }
      }
    }
  }
  const windows: ChangeWindow[] = [];
  if (obj.changeWindows !== undefined) {
    (c.list(obj.changeWindows, [...path, "changeWindows"]) ?? []).forEach((w, i) => {
      const win = parseWindow(c, w, [...path, "changeWindows", i]);
      if (win) windows.push(win);
    });
  }
  const description = typeof obj.description === "string" ? obj.description : undefined;
  const audiences = parseAudiences(c, obj.audiences, [...path, "audiences"]);
  return { kind: "environment", id, description, ticket, changeWindows: windows, audiences };
}

/**
 * A list of audiences (RFC 8707 `resource` values): absolute URIs without a fragment, at most
 * 2,000 characters, no spaces or control characters, compared exactly as written.
 */
function parseAudiences(c: Checker, v: Json, path: Path): string[] | undefined {
  if (v === undefined) return undefined;
  const list = c.strings(v, path);
  if (Array.isArray(v) && v.length === 0) {
    c.error("ERR_CONFIG_AUDIENCE", path, "list at least one audience, or leave `audiences` out");
  }
  const out: string[] = [];
  list.forEach((a, i) => {
    const why = audienceProblem(a);
    if (why === undefined) out.push(a);
    else c.error("ERR_CONFIG_AUDIENCE", [...path, i], `audience ${q(a)}: ${why}`);
  });
  return out;
}

function audienceProblem(a: string): string | undefined {
  if (a.length > 2000) return "longer than 2000 characters";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(a)) return "contains spaces or control characters";
  let url: URL;
  try {
    url = new URL(a);
  } catch {
    return "not an absolute URI (RFC 8707 wants one, such as `https://k8s.acme.example`)";
  }
  if (url.hash !== "" || a.includes("#")) return "must have no fragment (RFC 8707)";
  return undefined;
}

function parseCeilingRules(c: Checker, v: Json, path: Path): CeilingRule[] {
  const out: CeilingRule[] = [];
  if (v === undefined) return out;
  (c.list(v, path) ?? []).forEach((item, i) => {
    const r = c.rule(item, [...path, i]);
    if (r) out.push({ kind: "ceiling-rule", rule: r.rule, path: [...path, i] });
  });
  return out;
}

/** An agent's own denies, each with its `mode` (docs/shadow.md); absent: `enforce`. */
function parseAgentDenies(c: Checker, v: Json, path: Path): CeilingRule[] {
  const out: CeilingRule[] = [];
  if (v === undefined) return out;
  (c.list(v, path) ?? []).forEach((item, i) => {
    const r = c.rule(item, [...path, i], SHAPES.agentDeny);
    if (!r) return;
    const mode = c.mode(r.obj.mode, [...path, i, "mode"]);
    out.push({ kind: "ceiling-rule", rule: r.rule, path: [...path, i], ...(mode === "shadow" && { mode }) });
  });
  return out;
}

/** Per agent, when a runner class says nothing (docs/config.md). */
export const DEFAULT_LIMITS: RunnerClassLimits = { activeWrits: 100, issuancePerMinute: 60 };
const MAX_LIMIT = 1_000_000;

function parseLimits(c: Checker, v: Json, path: Path): RunnerClassLimits {
  const obj = v === undefined ? {} : c.map(v, path);
  if (!obj) return DEFAULT_LIMITS;
  c.shape(obj, path, SHAPES.limits);
  const limit = (key: keyof RunnerClassLimits): number => {
    const n = obj[key];
    if (n === undefined) return DEFAULT_LIMITS[key];
    if (typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_LIMIT) return n;
    c.error(
      "ERR_CONFIG_LIMIT",
      [...path, key],
      `${key} must be a whole number from 1 to ${MAX_LIMIT}, got ${q(n)}`,
    );
    return DEFAULT_LIMITS[key];
  };
  return { activeWrits: limit("activeWrits"), issuancePerMinute: limit("issuancePerMinute") };
}

/** When a runner class says nothing: no sub-agents, and chains at most two deep once allowed. */
export const DEFAULT_DELEGATION: RunnerClassDelegation = { actors: [], maxDepth: 2 };
const MAX_DELEGATION_DEPTH = 8;

/** `delegation`: its `actors` are checked against the runner classes once all are known. */
function parseDelegation(c: Checker, v: Json, path: Path): RunnerClassDelegation {
  const obj = v === undefined ? {} : c.map(v, path);
  if (!obj) return DEFAULT_DELEGATION;
  c.shape(obj, path, SHAPES.delegation);
  let maxDepth = DEFAULT_DELEGATION.maxDepth;
  const n = obj.maxDepth;
  if (n !== undefined) {
    if (typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_DELEGATION_DEPTH) maxDepth = n;
    else {
      c.error(
        "ERR_CONFIG_LIMIT",
        [...path, "maxDepth"],
        `maxDepth must be a whole number from 1 to ${MAX_DELEGATION_DEPTH}, got ${q(n)}`,
      );
    }
  }
  const actors: string[] = [];
  if (obj.actors !== undefined) {
    (c.list(obj.actors, [...path, "actors"]) ?? []).forEach((a, i) => {
      const name = c.string(a, [...path, "actors", i]);
      if (name !== undefined) actors.push(name);
    });
  }
  return { actors, maxDepth };
}

function parseRunnerClass(c: Checker, id: string, v: Json): RunnerClass | undefined {
  const path = ["runnerClasses", id];
  const obj = c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.runnerClass);
  const limits = parseLimits(c, obj.limits, [...path, "limits"]);
  const delegation = parseDelegation(c, obj.delegation, [...path, "delegation"]);
  const ceil = obj.ceiling === undefined ? undefined : c.map(obj.ceiling, [...path, "ceiling"]);
  if (!ceil) return undefined;
  const cp = [...path, "ceiling"];
  c.shape(ceil, cp, SHAPES.ceiling);
  const maxTtlSeconds = ceil.maxTtl === undefined ? undefined : c.duration(ceil.maxTtl, [...cp, "maxTtl"]);
  const allow = parseCeilingRules(c, ceil.allow, [...cp, "allow"]);
  const denyRules = parseCeilingRules(c, ceil.deny, [...cp, "deny"]);
  if (maxTtlSeconds === undefined) return undefined;
  const ceiling: Ceiling = {
    maxTtlSeconds,
    allow,
    deny: denyRules,
  };
  const description = typeof obj.description === "string" ? obj.description : undefined;
  const mode = c.mode(obj.mode, [...path, "mode"]);
  return {
    kind: "runner-class",
    id,
    description,
    ceiling,
    limits,
    delegation,
    ...(mode === "shadow" && { mode }),
  };
}

function parseApproval(
  c: Checker,
  v: Json,
  path: Path,
  groups: ReadonlyMap<string, ApproverGroup>,
): ApprovalPolicy | undefined {
  if (v === "none") return { kind: "none" };
  if (typeof v === "string") {
    return c.ref(v, path, "approver group", groups) ? { kind: "group", group: v, count: 1 } : undefined;
  }
  const obj = c.map(v, path, "`none`, a group name, `{group, count}`, `{allOf: [...]}` or `{anyOf: [...]}`");
  if (!obj) return undefined;
  if ("allOf" in obj || "anyOf" in obj) {
    const op = "allOf" in obj ? "allOf" : "anyOf";
    c.shape(obj, path, op === "allOf" ? SHAPES.approvalAllOf : SHAPES.approvalAnyOf);
    const items = c.list(obj[op], [...path, op]) ?? [];
    if (items.length === 0)
      c.error("ERR_CONFIG_APPROVAL", [...path, op], `\`${op}\` needs at least one policy`);
    const of = items.map((item, i) => parseApproval(c, item, [...path, op, i], groups));
    if (of.some((p) => p === undefined)) return undefined;
    return { kind: op === "allOf" ? "all" : "any", of: of as ApprovalPolicy[] };
  }
  c.shape(obj, path, SHAPES.approvalGroup);
  const group = obj.group === undefined ? undefined : c.string(obj.group, [...path, "group"]);
  const count = obj.count === undefined ? 1 : obj.count;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1) {
    c.error(
      "ERR_CONFIG_APPROVAL",
      [...path, "count"],
      `count must be a whole number of at least 1, got ${q(count)}`,
    );
    return undefined;
  }
  if (group === undefined || !c.ref(group, [...path, "group"], "approver group", groups)) return undefined;
  const size = groups.get(group)?.members.length ?? 0;
  if (count > size) {
    c.error(
      "ERR_CONFIG_APPROVAL",
      [...path, "count"],
      `needs ${count} approvals from ${q(group)}, which has ${size} member(s)`,
    );
  }
  return { kind: "group", group, count };
}

// patterns matched in linear time (no ReDoS from a parameter value), as in the broker
const ajv = new Ajv2020({ strict: true, allErrors: true, code: { regExp: linearRegExpEngine } });

interface PlaybookFields {
  description: string;
  risk: Json;
  environments: string[];
  ttlSeconds: number | undefined;
  maxUses: number | undefined;
  ticket: TicketRequirement;
  audiences: string[] | undefined;
  sponsor: SponsorRule;
  allowSelfApproval: boolean;
}

/** A playbook's scalar fields, each checked where it stands. */
function parsePlaybookFields(
  c: Checker,
  obj: Obj,
  path: Path,
  envs: ReadonlyMap<string, Environment>,
): PlaybookFields {
  const description =
    obj.description === undefined ? "" : (c.string(obj.description, [...path, "description"]) ?? "");
  const risk = obj.risk;
  if (risk !== undefined && risk !== "low" && risk !== "medium" && risk !== "high") {
    c.error(
      "ERR_CONFIG_VALUE",
      [...path, "risk"],
      `risk ${q(risk)}: expected \`low\`, \`medium\` or \`high\``,
    );
  }
  const environments =
    obj.environments === undefined ? [] : c.strings(obj.environments, [...path, "environments"]);
  c.refs(environments, [...path, "environments"], "environment", envs);
  const ttlSeconds = obj.ttl === undefined ? undefined : c.duration(obj.ttl, [...path, "ttl"]);
  let maxUses: number | undefined;
  if (obj.maxUses !== undefined) {
    if (
      typeof obj.maxUses === "number" &&
      Number.isInteger(obj.maxUses) &&
      obj.maxUses >= 1 &&
      obj.maxUses <= MAX_USES
    )
      maxUses = obj.maxUses;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "maxUses"],
        `maxUses must be a whole number from 1 to ${MAX_USES}, got ${q(obj.maxUses)}`,
      );
  }
  let ticket: TicketRequirement = "optional";
  if (obj.ticket !== undefined) {
    if (obj.ticket === "required" || obj.ticket === "optional" || obj.ticket === "none") ticket = obj.ticket;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "ticket"],
        `ticket ${q(obj.ticket)}: expected \`required\`, \`optional\` or \`none\``,
      );
  }
  const audiences = parseAudiences(c, obj.audiences, [...path, "audiences"]);
  let sponsor: SponsorRule = "optional";
  if (obj.sponsor !== undefined) {
    if (obj.sponsor === "optional" || obj.sponsor === "required" || obj.sponsor === "approver")
      sponsor = obj.sponsor;
    else
      c.error(
        "ERR_CONFIG_SPONSOR",
        [...path, "sponsor"],
        `sponsor ${q(obj.sponsor)}: expected \`optional\`, \`required\` or \`approver\``,
      );
  }
  let allowSelfApproval = false;
  if (obj.allowSelfApproval !== undefined) {
    if (typeof obj.allowSelfApproval === "boolean") allowSelfApproval = obj.allowSelfApproval;
    else c.error("ERR_CONFIG_TYPE", [...path, "allowSelfApproval"], "expected `true` or `false`");
  }
  return {
    description,
    risk,
    environments,
    ttlSeconds,
    maxUses,
    ticket,
    audiences,
    sponsor,
    allowSelfApproval,
  };
}

/** A playbook's `parameters`: a JSON Schema for an object, and the parameter names it declares. */
function parsePlaybookParameters(
  c: Checker,
  v: Json,
  path: Path,
): { parameters: Record<string, unknown>; declared: Set<string> } {
  let parameters: Record<string, unknown> = { type: "object", properties: {}, additionalProperties: false };
  const declared = new Set<string>();
  if (v === undefined) return { parameters, declared };
  const schema = c.map(v, path, "a JSON Schema object");
  if (!schema) return { parameters, declared };
  parameters = schema;
  if (schema.type !== "object") {
    c.error("ERR_CONFIG_PARAM_SCHEMA", path, "the parameters schema must have `type: object`");
  }
  try {
    if (checkSchemaPatterns(c, schema, path)) ajv.compile(schema);
  } catch (e) {
    c.error("ERR_CONFIG_PARAM_SCHEMA", path, `invalid JSON Schema: ${(e as Error).message}`);
  }
  const props = schema.properties;
  if (props && typeof props === "object") for (const k of Object.keys(props)) declared.add(k);
  return { parameters, declared };
}

/** One grant template; its `${…}` references must name declared parameters. */
function parseGrantTemplate(
  c: Checker,
  id: string,
  g: Json,
  gp: Path,
  declared: ReadonlySet<string>,
): GrantTemplate | undefined {
  const o = c.map(g, gp, "a map with `action` and `resource`");
  if (!o) return undefined;
  c.shape(o, gp, SHAPES.grantTemplate);
  const action = o.action === undefined ? undefined : c.string(o.action, [...gp, "action"]);
  const resource = o.resource === undefined ? "*" : c.string(o.resource, [...gp, "resource"]);
  const reviewed =
    o.reviewedException === undefined
      ? undefined
      : c.string(o.reviewedException, [...gp, "reviewedException"]);
  if (action === undefined || resource === undefined) return undefined;
  let ok = true;
  for (const [field, text] of [
    ["action", action],
    ["resource", resource],
  ] as const) {
    for (const name of templateParams(text)) {
      if (!isParamName(name)) {
        c.error(
          "ERR_CONFIG_TEMPLATE",
          [...gp, field],
          `\`\${${name}}\` is not a parameter reference: names are letters, digits and \`_\``,
        );
        ok = false;
      } else if (!declared.has(name)) {
        c.error(
          "ERR_CONFIG_UNKNOWN_PARAM",
          [...gp, field],
          `\`\${${name}}\` names no parameter of playbook ${q(id)}${suggest(name, declared)}`,
        );
        ok = false;
      }
    }
  }
  return ok ? { kind: "grant-template", action, resource, reviewedException: reviewed, path: gp } : undefined;
}

function parseGrantTemplates(
  c: Checker,
  id: string,
  v: Json,
  path: Path,
  declared: ReadonlySet<string>,
): GrantTemplate[] {
  const grantList = v === undefined ? [] : (c.list(v, path) ?? []);
  if (v !== undefined && grantList.length === 0)
    c.error("ERR_CONFIG_VALUE", path, "a playbook needs at least one grant");
  const grants: GrantTemplate[] = [];
  grantList.forEach((g, i) => {
    const t = parseGrantTemplate(c, id, g, [...path, i], declared);
    if (t) grants.push(t);
  });
  return grants;
}

/** A playbook's approval policy per environment; only environments it runs in. */
function parsePlaybookApproval(
  c: Checker,
  v: Json,
  path: Path,
  environments: readonly string[],
  envs: ReadonlyMap<string, Environment>,
  groups: ReadonlyMap<string, ApproverGroup>,
): Map<string, ApprovalPolicy> {
  const approval = new Map<string, ApprovalPolicy>();
  if (v === undefined) return approval;
  for (const [env, policy] of c.entries(v, path, "environment")) {
    const ap = [...path, env];
    if (!envs.has(env)) {
      c.error("ERR_CONFIG_UNKNOWN_REF", ap, `unknown environment ${q(env)}${suggest(env, envs.keys())}`, {
        key: true,
      });
      continue;
    }
    if (!environments.includes(env)) {
      c.error("ERR_CONFIG_APPROVAL", ap, `approval for ${q(env)}, where the playbook does not run`, {
        key: true,
      });
    }
    const p = parseApproval(c, policy, ap, groups);
    if (p) approval.set(env, p);
  }
  return approval;
}

/** A playbook's audiences must meet those of every environment it runs in that declares some. */
function checkPlaybookAudiences(
  c: Checker,
  id: string,
  fields: PlaybookFields,
  path: Path,
  envs: ReadonlyMap<string, Environment>,
): void {
  const { audiences } = fields;
  if (audiences === undefined) return;
  for (const env of fields.environments) {
    const allowed = envs.get(env)?.audiences;
    if (allowed !== undefined && !audiences.some((a) => allowed.includes(a))) {
      c.error(
        "ERR_CONFIG_AUDIENCE",
        [...path, "audiences"],
        `no audience of playbook ${q(id)} is allowed in environment ${q(env)}: its writs could never be issued there`,
      );
    }
  }
}

/** `sponsor: approver` needs approver groups to govern the playbook somewhere. */
function checkApproverSponsor(
  c: Checker,
  id: string,
  fields: PlaybookFields,
  approval: ReadonlyMap<string, ApprovalPolicy>,
  path: Path,
): void {
  if (fields.sponsor !== "approver") return;
  const governed = fields.environments.filter((e) => {
    const policy = approval.get(e);
    return policy !== undefined && policy.kind !== "none";
  });
  if (governed.length === 0) {
    c.error(
      "ERR_CONFIG_SPONSOR",
      [...path, "sponsor"],
      `\`sponsor: approver\` needs an approval policy naming approver groups in some environment of playbook ${q(id)}`,
    );
  }
}

function parsePlaybook(
  c: Checker,
  id: string,
  v: Json,
  envs: ReadonlyMap<string, Environment>,
  groups: ReadonlyMap<string, ApproverGroup>,
): Playbook | undefined {
  const path = ["playbooks", id];
  const obj = c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.playbook);
  const fields = parsePlaybookFields(c, obj, path, envs);
  const { parameters, declared } = parsePlaybookParameters(c, obj.parameters, [...path, "parameters"]);
  const grants = parseGrantTemplates(c, id, obj.grants, [...path, "grants"], declared);
  const approval = parsePlaybookApproval(
    c,
    obj.approval,
    [...path, "approval"],
    fields.environments,
    envs,
    groups,
  );
  checkPlaybookAudiences(c, id, fields, path, envs);
  checkApproverSponsor(c, id, fields, approval, path);
  const { ttlSeconds, risk } = fields;
  if (ttlSeconds === undefined || (risk !== "low" && risk !== "medium" && risk !== "high")) return undefined;
  return {
    kind: "playbook",
    id,
    description: fields.description,
    parameters,
    grants,
    ttlSeconds,
    maxUses: fields.maxUses,
    risk: risk as Risk,
    environments: fields.environments,
    ticket: fields.ticket,
    approval,
    allowSelfApproval: fields.allowSelfApproval,
    audiences: fields.audiences,
    sponsor: fields.sponsor,
    ...(c.mode(obj.mode, [...path, "mode"]) === "shadow" && { mode: "shadow" as const }),
  };
}

async function parseKeys(
  c: Checker,
  v: Json,
  path: Path,
  baseDir: string,
): Promise<Record<string, unknown>[]> {
  if (v === undefined) return [];
  const obj = c.map(v, path, "`{file: path}` or `{jwks: {keys: [...]}}`");
  if (!obj) return [];
  c.shape(obj, path, SHAPES.keysFile, SHAPES.keysInline);
  let jwks: Json;
  let where = path;
  if (obj.file !== undefined) {
    const f = c.string(obj.file, [...path, "file"]);
    if (f === undefined) return [];
    where = [...path, "file"];
    const read = await c.readOnce(resolve(baseDir, f), "keys");
    if (!read.ok) {
      // a key set that is not there is a key problem; one that is not a file writ may read, a file one
      const code = read.code === "ERR_CONFIG_FILE" ? "ERR_CONFIG_KEYS" : read.code;
      c.error(code, where, `cannot read key set ${q(f)}: ${read.reason}`);
      return [];
    }
    try {
      jwks = JSON.parse(read.text);
    } catch (e) {
      c.error("ERR_CONFIG_KEYS", where, `key set ${q(f)} is not JSON: ${(e as Error).message}`);
      return [];
    }
  } else if (obj.jwks !== undefined) {
    jwks = obj.jwks;
    where = [...path, "jwks"];
  } else {
    c.error("ERR_CONFIG_REQUIRED", path, "give the agent's public keys as `file:` or `jwks:`");
    return [];
  }
  const keys = (jwks as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    c.error("ERR_CONFIG_KEYS", where, "a JWK set needs a non-empty `keys` list");
    return [];
  }
  if (keys.length > MAX_KEYS) {
    c.error("ERR_CONFIG_KEYS", where, `a JWK set holds at most ${MAX_KEYS} keys, this one ${keys.length}`);
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const [i, k] of keys.entries()) {
    if (!k || typeof k !== "object" || Array.isArray(k)) {
      c.error("ERR_CONFIG_KEYS", where, `key ${i}: expected a JWK object`);
      continue;
    }
    const jwk = k as Record<string, unknown>;
    const priv = PRIVATE_JWK_MEMBERS.filter((m) => m in jwk);
    if (priv.length > 0) {
      c.error(
        "ERR_CONFIG_PRIVATE_KEY",
        where,
        `key ${i} holds private key material (${priv.map((m) => q(m)).join(", ")}): register only the public key`,
      );
      continue;
    }
    if (!["OKP", "EC", "RSA"].includes(String(jwk.kty))) {
      c.error(
        "ERR_CONFIG_KEYS",
        where,
        `key ${i}: unsupported key type ${q(jwk.kty)}: use OKP (Ed25519), EC or RSA`,
      );
      continue;
    }
    try {
      const alg =
        typeof jwk.alg === "string"
          ? jwk.alg
          : jwk.kty === "OKP"
            ? "EdDSA"
            : jwk.kty === "EC"
              ? jwk.crv === "P-384"
                ? "ES384"
                : "ES256"
              : "RS256";
      await importJWK(jwk as Parameters<typeof importJWK>[0], alg);
      out.push(jwk);
    } catch (e) {
      c.error("ERR_CONFIG_KEYS", where, `key ${i} is not a valid public JWK: ${(e as Error).message}`);
    }
  }
  return out;
}

async function parseAgent(
  c: Checker,
  id: string,
  v: Json,
  ctx: {
    envs: ReadonlyMap<string, Environment>;
    classes: ReadonlyMap<string, unknown>;
    playbooks: ReadonlySet<string>;
    baseDir: string;
  },
): Promise<Agent | undefined> {
  const path = ["agents", id];
  const obj = c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.agent);
  const owner = obj.owner === undefined ? undefined : c.string(obj.owner, [...path, "owner"]);
  const purpose = obj.purpose === undefined ? undefined : c.string(obj.purpose, [...path, "purpose"]);
  const runnerClass =
    obj.runnerClass === undefined ? undefined : c.string(obj.runnerClass, [...path, "runnerClass"]);
  if (runnerClass !== undefined) c.ref(runnerClass, [...path, "runnerClass"], "runner class", ctx.classes);
  const environments =
    obj.environments === undefined ? [] : c.strings(obj.environments, [...path, "environments"]);
  c.refs(environments, [...path, "environments"], "environment", ctx.envs);
  const playbooks = obj.playbooks === undefined ? [] : c.strings(obj.playbooks, [...path, "playbooks"]);
  c.refs(playbooks, [...path, "playbooks"], "playbook", ctx.playbooks);

  const baseline: Grant[] = [];
  if (obj.baseline !== undefined) {
    (c.list(obj.baseline, [...path, "baseline"]) ?? []).forEach((g, i) => {
      const gp = [...path, "baseline", i];
      const r = c.rule(g, gp, SHAPES.baselineGrant);
      if (!r) return;
      let envsOf: string[] | undefined;
      if (r.obj.environments !== undefined) {
        envsOf = c.strings(r.obj.environments, [...gp, "environments"]);
        envsOf.forEach((e, j) => {
          if (c.ref(e, [...gp, "environments", j], "environment", ctx.envs) && !environments.includes(e)) {
            c.error(
              "ERR_CONFIG_UNKNOWN_REF",
              [...gp, "environments", j],
              `agent ${q(id)} is not registered in environment ${q(e)}`,
            );
          }
        });
      }
      const standingWrite =
        r.obj.standingWrite === undefined
          ? undefined
          : c.string(r.obj.standingWrite, [...gp, "standingWrite"]);
      baseline.push({ kind: "grant", rule: r.rule, environments: envsOf, standingWrite, path: gp });
    });
  }
  const deny = parseAgentDenies(c, obj.deny, [...path, "deny"]);
  const { tools, needs } =
    obj.tools === undefined
      ? { tools: [] as Rule[], needs: [] }
      : parseTools(c, obj.tools, [...path, "tools"], (t, tp) => {
          const parts = t.split(":");
          if (parts.length !== 2 || !parts[0] || !parts[1]) {
            c.error(
              "ERR_CONFIG_PATTERN",
              tp,
              `tool ${q(t)}: expected \`server:tool\` (wildcards allowed: \`filesystem:read_*\`)`,
            );
            return undefined;
          }
          try {
            return compileRule({ action: `mcp:${t}`, resource: "*" });
          } catch (e) {
            if (!isWritError(e)) throw e;
            c.error("ERR_CONFIG_PATTERN", tp, e.message);
            return undefined;
          }
        });
  const runs = parseRuns(c, obj, path, needs);
  const keys = await parseKeys(c, obj.keys, [...path, "keys"], ctx.baseDir);
  if (owner === undefined || purpose === undefined || runnerClass === undefined) return undefined;
  return {
    kind: "agent",
    id,
    owner,
    purpose,
    runnerClass,
    environments,
    keys,
    baseline,
    deny,
    playbooks,
    tools,
    ...(runs ? { runs } : {}),
  };
}

async function parseGuardrails(
  source: string,
  c: Checker,
  v: Json,
  baseDir: string,
  file: string,
  lines: LineCounter,
  root: Node | null,
): Promise<GuardrailSource[]> {
  const out: GuardrailSource[] = [];
  if (v === undefined) return out;
  const items = c.list(v, ["guardrails"]) ?? [];
  let total = 0;
  /** Keeps a source unless the guardrails together grow past their cap. */
  const keep = (source: GuardrailSource, at: Path): void => {
    total += Buffer.byteLength(source.text);
    if (total <= MAX_GUARDRAIL_BYTES) out.push(source);
    else
      c.error(
        "ERR_CONFIG_TOO_LARGE",
        at,
        `the guardrails together are larger than ${MAX_GUARDRAIL_BYTES / 1024} KiB, the most writ reads`,
      );
  };
  for (const [i, item] of items.entries()) {
    const path = ["guardrails", i];
    const obj = c.map(item, path, "`{file: path}` or `{inline: text}`");
    if (!obj) continue;
    c.shape(obj, path, SHAPES.guardrailFile, SHAPES.guardrailInline);
    const mode = c.mode(obj.mode, [...path, "mode"]);
    if (typeof obj.file === "string") {
      const full = resolve(baseDir, obj.file);
      const read = await readTextFile(full, "guardrails");
      const bad = read.ok ? forbiddenCharacter(read.text) : undefined;
      if (!read.ok) {
        c.error(read.code, [...path, "file"], `cannot read guardrail file ${q(obj.file)}: ${read.reason}`);
      } else if (bad) {
        c.error(
          "ERR_CONFIG_ENCODING",
          [...path, "file"],
          `guardrail file ${q(obj.file)}: control character ${bad.name} at line ${bad.line}, column ${bad.column}`,
        );
      } else
        keep({ file: full, text: read.text, line: 1, column: 1, indent: 0, path, mode }, [...path, "file"]);
    } else if (typeof obj.inline === "string") {
      // position of the inline text: the line after a block scalar's indicator
      let node: Node | null = root;
      for (const seg of ["guardrails", i, "inline"]) {
        if (isMap(node))
          node = (node.items.find((p) => isScalar(p.key) && p.key.value === seg)?.value as Node) ?? null;
        else if (isSeq(node)) node = (node.items[seg as number] as Node) ?? null;
      }
      const start = node?.range?.[0] ?? 0;
      const pos = lines.linePos(start);
      const block = isScalar(node) && (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED");
      let indent = 0;
      if (block) {
        // the first non-blank line after the indicator's, found without splitting the whole file
        for (let at = source.indexOf("\n", start); at >= 0; at = source.indexOf("\n", at + 1)) {
          const end = source.indexOf("\n", at + 1);
          const line = source.slice(at + 1, end < 0 ? undefined : end);
          if (line.trim().length === 0) continue;
          indent = line.length - line.trimStart().length;
          break;
        }
      }
      keep(
        {
          file,
          text: obj.inline,
          line: block ? pos.line + 1 : pos.line,
          column: block ? 1 : pos.col,
          indent,
          path: [...path, "inline"],
          mode,
        },
        [...path, "inline"],
      );
    } else {
      c.error("ERR_CONFIG_REQUIRED", path, "a guardrail needs `file:` or `inline:` Cedar text");
    }
  }
  return out;
}

export function collectAwsServices(text: string): Set<string> {
  // every `aws:<service>:` in the file, literal services only
  const out = new Set<string>();
  for (const m of text.matchAll(/\baws:([A-Za-z0-9-]+):/gi)) out.add(m[1]!.toLowerCase());
  return out;
}

/** How deep writ.yaml may nest maps and lists: the quickstart needs 7. */
export const MAX_NESTING = 64;

const STACK_EXHAUSTED = /maximum call stack size exceeded/i;

/**
 * Refuses what would make the checks after it fail or recurse without end: a document nested more
 * than `MAX_NESTING` deep (an alias that holds itself nests without end) and a control character in
 * a key or a string (written as an escape such as `"\0"`). Walks with its own stack; stops at the
 * first such problem.
 */
function checkShape(c: Checker, raw: Json): boolean {
  const todo: [Json, Path][] = [[raw, []]];
  while (todo.length > 0) {
    const [v, path] = todo.pop()!;
    const bad = typeof v === "string" ? forbiddenCharacter(v) : undefined;
    if (bad) {
      c.error("ERR_CONFIG_VALUE", path, `control character ${bad.name} in a string: not allowed`);
      return false;
    }
    if (v === null || typeof v !== "object") continue;
    if (path.length >= MAX_NESTING) {
      c.error(
        "ERR_CONFIG_TOO_DEEP",
        path,
        `nested more than ${MAX_NESTING} levels deep (or an alias that contains itself)`,
      );
      return false;
    }
    for (const [k, item] of Object.entries(v)) {
      const key = forbiddenCharacter(k);
      if (key) {
        c.error("ERR_CONFIG_VALUE", [...path, k], `control character ${key.name} in a key: not allowed`, {
          key: true,
        });
        return false;
      }
      todo.push([item, [...path, Array.isArray(v) ? Number(k) : k]]);
    }
  }
  return true;
}

/** Where a map repeats a key (a scalar equal in type and value to an earlier one), in text order. */
function duplicateKeys(root: unknown): number[] {
  const out: number[] = [];
  const todo: unknown[] = [root];
  while (todo.length > 0) {
    const node = todo.pop();
    if (isSeq(node)) for (const item of node.items) todo.push(item);
    if (!isMap(node)) continue;
    const seen = new Set<string>();
    for (const pair of node.items) {
      todo.push(pair.key, pair.value);
      if (!isScalar(pair.key)) continue;
      const key = `${typeof pair.key.value}:${String(pair.key.value)}`;
      if (seen.has(key)) out.push(pair.key.range?.[0] ?? 0);
      seen.add(key);
    }
  }
  return out.sort((a, b) => a - b);
}

/** The result of a load that stopped before the model: only problems. */
function earlyResult(problems: ConfigProblem[], catalog: LoadableAwsCatalog): LoadResult {
  return { problems, vocab: { aws: catalog }, catalog, guardrailSources: [] };
}

function fatalProblem(
  file: string,
  code: ConfigErrorCode,
  message: string,
  at: { line?: number; column?: number } = {},
): ConfigProblem[] {
  return [{ code, severity: "error", file, ...at, path: "", message }];
}

/** Refuses text writ does not read at all: too large, or not text. */
function refuseText(text: string, file: string): ConfigProblem[] | undefined {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES.config) {
    return fatalProblem(
      file,
      "ERR_CONFIG_TOO_LARGE",
      `larger than ${MAX_FILE_BYTES.config / 1024} KiB, the most writ reads`,
    );
  }
  const bad = forbiddenCharacter(text);
  if (bad) {
    return fatalProblem(file, "ERR_CONFIG_ENCODING", `control character ${bad.name}: not a text file`, {
      line: bad.line,
      column: bad.column,
    });
  }
  return undefined;
}

const TOO_DEEP = `nested too deep: writ.yaml may nest at most ${MAX_NESTING} levels`;

type ParsedYaml =
  | { ok: true; doc: ReturnType<typeof parseDocument>; raw: Json }
  | { ok: false; problems: ConfigProblem[] };

/** Parses the YAML: syntax errors, repeated keys and runaway aliases are problems, not throws. */
function parseYaml(text: string, file: string, lines: LineCounter): ParsedYaml {
  let doc: ReturnType<typeof parseDocument>;
  try {
    // duplicate keys are found by `duplicateKeys`: the parser's own check is quadratic in a map's size
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: false });
  } catch (e) {
    if (e instanceof RangeError)
      return { ok: false, problems: fatalProblem(file, "ERR_CONFIG_TOO_DEEP", TOO_DEEP) };
    throw e;
  }
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const deep = STACK_EXHAUSTED.test(e.message);
      return {
        code: deep ? ("ERR_CONFIG_TOO_DEEP" as const) : ("ERR_CONFIG_YAML" as const),
        severity: "error" as const,
        file,
        line: pos?.line,
        column: pos?.col,
        path: "",
        message: deep
          ? TOO_DEEP
          : e.message
              .split("\n")[0]!
              .replace(/ at line \d+, column \d+:?$/, "")
              .toLowerCase(),
      };
    });
    return { ok: false, problems };
  }
  const duplicates = duplicateKeys(doc.contents);
  if (duplicates.length > 0) {
    const problems = duplicates.map((offset) => {
      const pos = lines.linePos(offset);
      const at = { line: pos.line, column: pos.col };
      return {
        code: "ERR_CONFIG_YAML" as const,
        severity: "error" as const,
        file,
        ...at,
        path: "",
        message: "map keys must be unique",
      };
    });
    return { ok: false, problems };
  }
  try {
    return { ok: true, doc, raw: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    if (e instanceof RangeError)
      return { ok: false, problems: fatalProblem(file, "ERR_CONFIG_TOO_DEEP", TOO_DEEP) };
    return { ok: false, problems: fatalProblem(file, "ERR_CONFIG_YAML", (e as Error).message.toLowerCase()) };
  }
}

function checkVersion(c: Checker, top: Obj): void {
  if (top.version !== undefined && top.version !== 1) {
    c.error(
      "ERR_CONFIG_VERSION",
      ["version"],
      `unsupported version ${q(top.version)}: this writ reads version 1`,
    );
  }
}

function parseEnvironments(c: Checker, v: Json): Map<string, Environment> {
  const environments = new Map<string, Environment>();
  for (const [id, item] of c.entries(v, ["environments"], "environment")) {
    const env = parseEnvironment(c, id, item);
    if (env) environments.set(id, env);
  }
  return environments;
}

/** Runner classes, and every declared class name (agents may name one whose body has problems). */
function parseRunnerClasses(
  c: Checker,
  v: Json,
): { runnerClasses: Map<string, RunnerClass>; classNames: Map<string, unknown> } {
  const runnerClasses = new Map<string, RunnerClass>();
  const classNames = new Map<string, unknown>();
  for (const [id, item] of c.entries(v, ["runnerClasses"], "runner class")) {
    classNames.set(id, true);
    const rc = parseRunnerClass(c, id, item);
    if (rc) runnerClasses.set(id, rc);
  }
  // a class's delegation actors must name runner classes, known only once all are read
  for (const rc of runnerClasses.values()) {
    (rc.delegation?.actors ?? []).forEach((a, i) => {
      c.ref(a, ["runnerClasses", rc.id, "delegation", "actors", i], "runner class", classNames);
    });
  }
  return { runnerClasses, classNames };
}

function parseApproverGroups(c: Checker, v: Json): Map<string, ApproverGroup> {
  const approverGroups = new Map<string, ApproverGroup>();
  for (const [id, item] of c.entries(v, ["approverGroups"], "approver group")) {
    const obj = c.map(item, ["approverGroups", id]);
    if (!obj) continue;
    c.shape(obj, ["approverGroups", id], SHAPES.approverGroup);
    const members =
      obj.members === undefined ? [] : c.strings(obj.members, ["approverGroups", id, "members"]);
    if (obj.members !== undefined && members.length === 0) {
      c.error(
        "ERR_CONFIG_VALUE",
        ["approverGroups", id, "members"],
        "an approver group needs at least one member",
      );
    }
    approverGroups.set(id, { kind: "approver-group", id, members });
  }
  return approverGroups;
}

/** `approvers`, each with the keys their console sign-ins verify against; warns of group members without one. */
async function parseApprovers(
  c: Checker,
  v: Json,
  approverGroups: ReadonlyMap<string, ApproverGroup>,
  baseDir: string,
): Promise<Map<string, Approver>> {
  const approvers = new Map<string, Approver>();
  if (v === undefined) return approvers;
  const all = c.map(v, ["approvers"]) ?? {};
  for (const [id, item] of Object.entries(all)) {
    const path = ["approvers", id];
    if (!APPROVER_ID.test(id)) {
      c.error("ERR_CONFIG_ID", path, `approver ${q(id)} must be 1 to 254 characters without spaces`, {
        key: true,
      });
      continue;
    }
    const obj = c.map(item, path);
    if (!obj) continue;
    c.shape(obj, path, SHAPES.approver);
    const keys = await parseKeys(c, obj.keys, [...path, "keys"], baseDir);
    approvers.set(id, { kind: "approver", id, keys });
  }
  for (const group of approverGroups.values()) {
    group.members.forEach((m, i) => {
      if (!approvers.has(m)) {
        c.warn(
          "WARN_CONFIG_APPROVER_NO_KEYS",
          ["approverGroups", group.id, "members", i],
          `member ${q(m)} has no entry under \`approvers\`: they can approve through the CLI only`,
        );
      }
    });
  }
  return approvers;
}

function parsePlaybooks(
  c: Checker,
  v: Json,
  environments: ReadonlyMap<string, Environment>,
  approverGroups: ReadonlyMap<string, ApproverGroup>,
): Map<string, Playbook> {
  const playbooks = new Map<string, Playbook>();
  for (const [id, item] of c.entries(v, ["playbooks"], "playbook")) {
    const pb = parsePlaybook(c, id, item, environments, approverGroups);
    if (pb) playbooks.set(id, pb);
  }
  return playbooks;
}

async function parseAgents(
  c: Checker,
  v: Json,
  refs: Parameters<typeof parseAgent>[3],
): Promise<Map<string, Agent>> {
  const agents = new Map<string, Agent>();
  for (const [id, item] of c.entries(v, ["agents"], "agent")) {
    const agent = await parseAgent(c, id, item, refs);
    if (agent) agents.set(id, agent);
  }
  return agents;
}

/** An agent listing a playbook that runs in none of its environments can never use it. */
function checkAgentPlaybooks(
  c: Checker,
  agents: ReadonlyMap<string, Agent>,
  playbooks: ReadonlyMap<string, Playbook>,
): void {
  for (const agent of agents.values()) {
    agent.playbooks.forEach((p, i) => {
      const pb = playbooks.get(p);
      if (pb && !pb.environments.some((e) => agent.environments.includes(e))) {
        c.error(
          "ERR_CONFIG_UNKNOWN_REF",
          ["agents", agent.id, "playbooks", i],
          `playbook ${q(p)} runs in none of agent ${q(agent.id)}'s environments`,
        );
      }
    });
  }
}

/** The guardrails of the model: every source's text joined, with per-source modes when any is in shadow. */
function guardrailsOf(sources: readonly GuardrailSource[]): WritConfig["guardrails"] {
  if (sources.length === 0) return undefined;
  return {
    kind: "guardrails",
    text: sources.map((g) => g.text).join("\n"),
    files: sources.map((g) => g.file),
    ...(sources.some((g) => g.mode === "shadow") && {
      sources: sources.map((g) => ({ file: g.file, text: g.text, mode: g.mode })),
    }),
  };
}

export async function loadConfigText(text: string, opts: LoadOptions): Promise<LoadResult> {
  const file = opts.file;
  const baseDir = opts.baseDir ?? dirname(resolve(file));
  const catalog = opts.catalog ?? createAwsCatalog();
  const refused = refuseText(text, file);
  if (refused) return earlyResult(refused, catalog);
  await catalog.load(collectAwsServices(text));
  const vocab: Vocabulary = { aws: catalog };
  const lines = new LineCounter();
  const parsed = parseYaml(text, file, lines);
  if (!parsed.ok) return earlyResult(parsed.problems, catalog);
  const { doc, raw } = parsed;
  const c = new Checker(file, doc.contents as Node | null, lines);
  if (!checkShape(c, raw)) return earlyResult(c.problems, catalog);
  const top = c.map(raw ?? null, [], "a map at the top of writ.yaml");
  if (!top) return { problems: c.problems, vocab, catalog, guardrailSources: [] };
  c.shape(top, [], SHAPES.config);
  checkVersion(c, top);

  const environments = parseEnvironments(c, top.environments);
  const { runnerClasses, classNames } = parseRunnerClasses(c, top.runnerClasses);
  const approverGroups = parseApproverGroups(c, top.approverGroups);
  const approvers = await parseApprovers(c, top.approvers, approverGroups, baseDir);
  const playbookNames = new Set(c.entries(top.playbooks, ["playbooks"], "playbook").map(([id]) => id));
  const playbooks = parsePlaybooks(c, top.playbooks, environments, approverGroups);
  const agents = await parseAgents(c, top.agents, {
    envs: environments,
    classes: classNames,
    playbooks: playbookNames,
    baseDir,
  });
  checkAgentPlaybooks(c, agents, playbooks);
  const gateway = parseGateway(c, top.gateway, {
    groups: approverGroups,
    approval: (ch, v, p) => parseApproval(ch, v, p, approverGroups),
  });
  const downstream = parseDownstream(c, top.downstream, {
    environments: new Set(environments.keys()),
    playbooks: playbookNames,
    agents: new Map([...agents.values()].map((a) => [a.id, a.environments])),
    baseDir,
  });
  const guardrailSources = await parseGuardrails(
    text,
    c,
    top.guardrails,
    baseDir,
    file,
    lines,
    doc.contents as Node | null,
  );
  // guardrails may name AWS actions the rest of the file does not
  await catalog.load(collectAwsServices(guardrailSources.map((g) => g.text).join("\n")));
  const config: WritConfig = {
    kind: "config",
    file,
    environments,
    runnerClasses,
    agents,
    approverGroups,
    approvers: approvers.size > 0 ? approvers : undefined,
    playbooks,
    guardrails: guardrailsOf(guardrailSources),
    gateway,
    downstream,
    hooks: parseHooks(c, top.hooks),
  };
  for (const p of checkContainment(config, vocab)) {
    if (p.severity === "error") c.error(p.code, p.path, p.message);
    else c.warn(p.code, p.path, p.message);
  }
  const problems = c.problems;
  const failed = problems.some((p) => p.severity === "error");
  return {
    config: failed ? undefined : config,
    problems,
    vocab,
    catalog,
    guardrailSources,
    locate: (path) => c.locate(path),
  };
}

export async function loadConfigFile(
  path: string,
  opts: Omit<LoadOptions, "file"> = {},
): Promise<LoadResult> {
  const read = await readTextFile(path, "config");
  if (!read.ok) {
    return {
      problems: [
        {
          code: read.code,
          severity: "error",
          file: path,
          path: "",
          message: `cannot read ${q(path)}: ${read.reason}`,
        },
      ],
      vocab: {},
      catalog: opts.catalog ?? createAwsCatalog(),
      guardrailSources: [],
    };
  }
  const digest = `sha256:${createHash("sha256").update(read.text).digest("hex")}`;
  return { ...(await loadConfigText(read.text, { ...opts, file: path })), digest };
}
