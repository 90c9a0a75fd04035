/**
 * What a tool call touches, derived from its arguments as the tool's declaration says: a canonical
 * filesystem path, a URL's host, an e-mail address's domain, a repository. The decision is made on
 * these, never on the raw argument text, so `../`, a symlink, a case change or a second address
 * hidden in a string cannot slip past a rule written for the canonical form.
 *
 * The gateway must see the same filesystem as the upstream it guards (the same host or mount), or
 * path resources mean nothing; docs/gateway.md says so.
 */
import { lstat, readlink, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { domainToASCII } from "node:url";
import { q, type ResourceRule, type ResourceTemplate, type TemplatePlaceholder } from "../core/index.js";
import { GatewayError } from "./errors.js";

const MAX_PATH = 4096;
const MAX_LINKS = 40;

function bad(message: string): never {
  throw new GatewayError("resource_invalid", message);
}

/** The longest existing prefix resolved with the filesystem's own realpath, the rest appended. */
async function canonicalPath(
  raw: unknown,
  rule: Pick<ResourceRule, "base" | "foldCase">,
  arg: string,
): Promise<string> {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > MAX_PATH || raw.includes("\0")) {
    return bad(`argument ${q(arg)}: expected a path of 1 to ${MAX_PATH} characters`);
  }
  if (raw.startsWith("~")) return bad(`argument ${q(arg)}: \`~\` paths are refused: give an absolute path`);
  let path: string;
  if (isAbsolute(raw)) path = resolve(raw);
  else if (rule.base !== undefined) path = resolve(rule.base, raw);
  else return bad(`argument ${q(arg)}: relative path ${q(raw)} is refused: give an absolute path`);
  let links = 0;
  for (;;) {
    const rest: string[] = [];
    let at = path;
    let relinked = false;
    for (;;) {
      try {
        const real = await realpath(at);
        const full = rest.length === 0 ? real : join(real, ...rest.reverse());
        return rule.foldCase ? full.toLowerCase() : full;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ELOOP" || code === "ENAMETOOLONG")
          return bad(`argument ${q(arg)}: ${q(raw)} does not resolve (${code})`);
        if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
      }
      // `at` does not resolve: a dangling symlink points somewhere else; anything else is new.
      const stat = await lstat(at).catch(() => undefined);
      if (stat?.isSymbolicLink()) {
        if (++links > MAX_LINKS) return bad(`argument ${q(arg)}: too many symbolic links`);
        const target = resolve(dirname(at), await readlink(at));
        path = rest.length === 0 ? target : join(target, ...rest.reverse());
        relinked = true;
        break;
      }
      const parent = dirname(at);
      if (parent === at) return bad(`argument ${q(arg)}: ${q(raw)} does not resolve`);
      rest.push(basename(at));
      at = parent;
    }
    if (!relinked) return bad(`argument ${q(arg)}: ${q(raw)} does not resolve`);
  }
}

function urlHost(raw: unknown, arg: string): string {
  if (typeof raw !== "string" || raw.length > 8192) return bad(`argument ${q(arg)}: expected a URL`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return bad(`argument ${q(arg)}: ${q(raw.slice(0, 200))} is not an absolute URL`);
  }
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host.length === 0) return bad(`argument ${q(arg)}: the URL has no host`);
  return host;
}

// One addr-spec, nothing around it: a display name, a list or a comment is refused, so a second
// recipient cannot hide in the string.
const ADDRESS = /^[^\s@<>(),;:"[\]\\]{1,64}@([^\s@<>(),;:"[\]\\]{1,253})$/u;

function emailDomain(raw: unknown, arg: string): string {
  const m = typeof raw === "string" ? ADDRESS.exec(raw) : null;
  if (!m) return bad(`argument ${q(arg)}: expected one e-mail address \`name@domain\``);
  const domain = domainToASCII(m[1]!.replace(/\.$/, "")).toLowerCase();
  if (domain.length === 0 || !domain.includes(".")) {
    return bad(`argument ${q(arg)}: ${q(m[1])} is not a valid mail domain`);
  }
  return domain;
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

function repository(owner: unknown, name: unknown, arg: string): string {
  if (typeof owner !== "string" || typeof name !== "string" || !OWNER.test(owner) || !NAME.test(name)) {
    return bad(`argument ${q(arg)}: expected a repository \`owner/name\``);
  }
  if (name === "." || name === "..") return bad(`argument ${q(arg)}: ${q(name)} is not a repository name`);
  return `${owner}/${name}`.toLowerCase();
}

/** What a derived value is, for the gateway's bounds: a canonical path, a host, a mail domain. */
export type ValueKind = "path" | "host" | "domain";
/** Checks a derived value against the gateway's bounds; throws `outside_bounds`. */
export type BoundsCheck = (kind: ValueKind, value: string, arg: string) => void;
const NO_BOUNDS: BoundsCheck = () => {};

async function one(
  rule: ResourceRule,
  value: unknown,
  args: Record<string, unknown>,
  bounds: BoundsCheck,
): Promise<string> {
  const arg = rule.from[0]!;
  switch (rule.as) {
    case "path": {
      const path = await canonicalPath(value, rule, arg);
      bounds("path", path, arg);
      return path;
    }
    case "url-host": {
      const host = urlHost(value, arg);
      bounds("host", host, arg);
      return host;
    }
    case "email-domain": {
      const domain = emailDomain(value, arg);
      bounds("domain", domain, arg);
      return domain;
    }
    case "repository": {
      if (rule.from.length === 2) return repository(value, args[rule.from[1]!], rule.from.join("/"));
      return repositoryOf(value, arg);
    }
  }
}

function repositoryOf(value: unknown, arg: string): string {
  const parts = typeof value === "string" ? value.split("/") : [];
  return parts.length === 2
    ? repository(parts[0], parts[1], arg)
    : bad(`argument ${q(arg)}: expected \`owner/name\``);
}

// --- templates ------------------------------------------------------------------------------------

const MAX_ITEMS = 1000;
const MAX_VALUE = 1024;
/** The longest argument value a template reads at all (before `split`, `host` …). */
const MAX_RAW = 65_536;
const MAX_RESOURCE = 8192;
/** Characters a placeholder's value may not carry into a resource as they are. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are encoded too
const RESERVED = /[%/*?|\\{}:\s\x00-\x1f\x7f]/gu;

/**
 * A value placed in a resource: every separator, wildcard and escape character percent-encoded, so
 * `{namespace}` = `*` or `a/b` stays inside its segment (`%2A`, `a%2Fb`) and no value can widen the
 * grant it is matched against. Empty values and `.`/`..` are refused: they name no thing.
 */
function escapeValue(value: string, arg: string): string {
  if (value.length === 0 || value === "." || value === "..") {
    return bad(`argument ${q(arg)}: ${q(value)} cannot name a resource`);
  }
  return value.replace(RESERVED, (ch) =>
    [...Buffer.from(ch, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
}

const ABSENT = Symbol("absent");

/** The values an argument path selects: one, or each item of the array `[*]` walks. */
function select(args: Record<string, unknown>, p: TemplatePlaceholder): unknown[] | typeof ABSENT {
  let values: unknown[] = [args];
  const name = p.source;
  for (const step of p.argument) {
    const next: unknown[] = [];
    for (const v of values) {
      if (step.t === "key") {
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
          return bad(`${q(name)}: expected an object where \`${step.key}\` is read`);
        }
        if (!Object.hasOwn(v, step.key)) return ABSENT;
        next.push((v as Record<string, unknown>)[step.key]);
      } else {
        if (!Array.isArray(v)) return bad(`${q(name)}: expected an array`);
        if (step.t === "each") {
          if (v.length > MAX_ITEMS) return bad(`${q(name)}: more than ${MAX_ITEMS} items`);
          next.push(...v);
        } else {
          if (step.index >= v.length) return ABSENT;
          next.push(v[step.index]);
        }
      }
    }
    values = next;
  }
  if (values.some((v) => v === undefined || v === null)) return ABSENT;
  return values;
}

async function applyFilters(
  raw: unknown,
  p: TemplatePlaceholder,
  bounds: BoundsCheck,
): Promise<{ value: string; structured: boolean }> {
  const arg = p.source;
  if (typeof raw === "number" ? !Number.isFinite(raw) : typeof raw !== "string" && typeof raw !== "boolean") {
    return bad(`${q(arg)}: a ${Array.isArray(raw) ? "list" : typeof raw} cannot be placed in a resource`);
  }
  if (typeof raw === "string" && raw.length > MAX_RAW) {
    return bad(`${q(arg)}: a value over ${MAX_RAW} characters cannot be mapped`);
  }
  let value: string | string[] = String(raw);
  let structured = false;
  for (const f of p.filters) {
    const v: string = typeof value === "string" ? value : "";
    switch (f.f) {
      case "split":
        value = v.split(f.sep);
        continue;
      case "index": {
        const list = value as string[];
        const item = list[f.index < 0 ? list.length + f.index : f.index];
        if (item === undefined) return bad(`${q(arg)}: ${q(v)} has no item ${f.index} after splitting`);
        value = item;
        structured = false;
        continue;
      }
      case "lower":
        value = v.toLowerCase();
        continue;
      case "host":
        value = urlHost(v, arg);
        bounds("host", value, arg);
        break;
      case "domain":
        value = emailDomain(v, arg);
        bounds("domain", value, arg);
        break;
      case "path":
        value = await canonicalPath(v, { base: f.base, foldCase: false }, arg);
        bounds("path", value, arg);
        break;
      case "repository":
        value = repositoryOf(v, arg);
        break;
    }
    structured = f.f === "path" || f.f === "repository";
  }
  const out = value as string;
  if (out.length > MAX_VALUE * 4) return bad(`${q(arg)}: the value is too long for a resource`);
  if (structured) return { value: out, structured };
  if (out.length > MAX_VALUE) return bad(`${q(arg)}: the value is too long for a resource`);
  return { value: out, structured };
}

/**
 * The resources one template yields: one, or one per item of its `[*]` array; none when an
 * optional (`?`) argument is absent or the array is empty. A required argument that is absent, or
 * a value that cannot be mapped, refuses the call (`resource_invalid`).
 */
async function expand(
  t: ResourceTemplate,
  args: Record<string, unknown>,
  bounds: BoundsCheck,
): Promise<string[]> {
  let out = [""];
  for (const part of t.parts) {
    if (typeof part === "string") {
      out = out.map((o) => o + part);
      continue;
    }
    const raw = select(args, part);
    if (raw === ABSENT) {
      if (part.optional) return [];
      return bad(`template ${q(t.source)}: argument ${q(part.source)} is missing`);
    }
    const values: string[] = [];
    for (const r of raw) {
      const { value, structured } = await applyFilters(r, part, bounds);
      values.push(structured ? value : escapeValue(value, part.source));
    }
    // at most one placeholder of a template expands (checked at load): `out` or `values` has one
    out = out.flatMap((o) => values.map((v) => o + v));
  }
  for (const o of out) if (o.length > MAX_RESOURCE) bad(`template ${q(t.source)}: the resource is too long`);
  return out;
}

/**
 * Every resource the call touches, in declaration order, without repeats. For `{from, as}` rules
 * a declared argument that is absent contributes nothing (the schema says whether it may be
 * absent); one present in any other shape than declared is refused with `resource_invalid`.
 * Templates refuse an absent argument unless it is marked optional (`{name?}`).
 */
export async function deriveResources(
  rules: readonly (ResourceRule | ResourceTemplate)[],
  args: Record<string, unknown>,
  bounds: BoundsCheck = NO_BOUNDS,
): Promise<string[]> {
  const out: string[] = [];
  for (const rule of rules) {
    if (rule.kind === "resource-template") {
      out.push(...(await expand(rule, args, bounds)));
      continue;
    }
    const value = args[rule.from[0]!];
    if (value === undefined) continue;
    if (rule.each) {
      if (!Array.isArray(value) || value.length > MAX_ITEMS) {
        bad(`argument ${q(rule.from[0])}: expected a list of at most ${MAX_ITEMS} items`);
      }
      for (const item of value as unknown[]) out.push(await one(rule, item, args, bounds));
    } else out.push(await one(rule, value, args, bounds));
  }
  return [...new Set(out)];
}
