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
import { q, type ResourceRule } from "../core/index.js";
import { GatewayError } from "./errors.js";

const MAX_PATH = 4096;
const MAX_LINKS = 40;

function bad(message: string): never {
  throw new GatewayError("resource_invalid", message);
}

/** The longest existing prefix resolved with the filesystem's own realpath, the rest appended. */
async function canonicalPath(raw: unknown, rule: ResourceRule, arg: string): Promise<string> {
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

async function one(rule: ResourceRule, value: unknown, args: Record<string, unknown>): Promise<string> {
  const arg = rule.from[0]!;
  switch (rule.as) {
    case "path":
      return canonicalPath(value, rule, arg);
    case "url-host":
      return urlHost(value, arg);
    case "email-domain":
      return emailDomain(value, arg);
    case "repository": {
      if (rule.from.length === 2) return repository(value, args[rule.from[1]!], rule.from.join("/"));
      const parts = typeof value === "string" ? value.split("/") : [];
      return parts.length === 2
        ? repository(parts[0], parts[1], arg)
        : bad(`argument ${q(arg)}: expected \`owner/name\``);
    }
  }
}

/**
 * Every resource the call touches, in declaration order, without repeats. A declared argument that
 * is absent contributes nothing (the schema says whether it may be absent); one present in any
 * other shape than declared is refused with `resource_invalid`.
 */
export async function deriveResources(
  rules: readonly ResourceRule[],
  args: Record<string, unknown>,
): Promise<string[]> {
  const out: string[] = [];
  for (const rule of rules) {
    const value = args[rule.from[0]!];
    if (value === undefined) continue;
    if (rule.each) {
      if (!Array.isArray(value) || value.length > 1000) {
        bad(`argument ${q(rule.from[0])}: expected a list of at most 1000 items`);
      }
      for (const item of value as unknown[]) out.push(await one(rule, item, args));
    } else out.push(await one(rule, value, args));
  }
  return [...new Set(out)];
}
