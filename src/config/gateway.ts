/**
 * The `gateway:` section of writ.yaml: the MCP gateway's upstream tool servers, what each tool
 * touches (the resource derived from its arguments), argument constraints, which tools are
 * irreversible, untrusted sources or privileged, and rate limits. Checked with the loader's
 * `Checker`, so every problem carries file, line, column, path and a stable code.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import {
  type ApprovalPolicy,
  type ApproverGroup,
  type ConfigText,
  type GatewayBounds,
  type GatewayConfig,
  type GatewayTool,
  linearRegExpEngine,
  type Path,
  q,
  type RateLimit,
  type ResourceRule,
  type ResourceTemplate,
  type Upstream,
  type UpstreamCredentials,
} from "../core/index.js";
import type { Checker } from "./load.js";
import { checkSchemaPatterns } from "./regex.js";
import { parseResourceTemplate } from "./resource-template.js";
import { SHAPES } from "./schema.js";

type Obj = Record<string, unknown>;

/** An upstream or tool name the gateway can expose as `<server>__<tool>`. */
const TOOL_NAME = /^[A-Za-z0-9_.\-/]{1,128}$/;
const ARGUMENT = /^([A-Za-z_$][A-Za-z0-9_$-]{0,127})(\[\*\])?$/;
const ENV_REF = /\$\{([^}]*)\}/g;
const ENV_NAME = /^env:([A-Za-z_][A-Za-z0-9_]{0,127})$/;
const KINDS = ["path", "url-host", "email-domain", "repository"] as const;
const DEFAULT_APPROVAL_TTL = 15 * 60;
const DEFAULT_TAINT_TTL = 24 * 60 * 60;
const DOWNSTREAM_SYSTEMS = ["aws", "github", "kubernetes"] as const;
/** Writs with a connection (a process, for stdio) of their own to one upstream at once, by default. */
const DEFAULT_MAX_WRITS = 16;
const MAX_MAX_WRITS = 1000;
/**
 * A stdio upstream with per-call credentials gets them in its environment: writ.yaml must not set
 * any variable that names (or points at) another credential for that system. The gateway injects a
 * subset of these (gateway/credentials.ts).
 */
export const CREDENTIAL_ENV: Readonly<Record<UpstreamCredentials["downstream"], RegExp>> = {
  // the region is no credential: AWS_REGION and AWS_DEFAULT_REGION may be set
  aws: /^AWS_(?!(DEFAULT_)?REGION$)/i,
  github: /^(GH_|GITHUB_)/i,
  kubernetes: /^(KUBECONFIG$|K8S_|KUBERNETES_)/i,
};

// constraint patterns are matched in linear time by the gateway (no ReDoS from an argument)
const ajv = new Ajv2020({ strict: false, allErrors: true, code: { regExp: linearRegExpEngine } });

export interface GatewayContext {
  readonly groups: ReadonlyMap<string, ApproverGroup>;
  readonly approval: (c: Checker, v: unknown, path: Path) => ApprovalPolicy | undefined;
}

/** A string with `${env:NAME}` references; anything else inside `${…}` is an error. */
function configText(c: Checker, v: unknown, path: Path): ConfigText | undefined {
  if (typeof v !== "string") {
    c.error("ERR_CONFIG_TYPE", path, `expected a string, got ${c.typeName(v)}`);
    return undefined;
  }
  const env: string[] = [];
  for (const m of v.matchAll(ENV_REF)) {
    const name = ENV_NAME.exec(m[1]!)?.[1];
    if (name === undefined) {
      c.error(
        "ERR_CONFIG_ENV_REF",
        path,
        `${q(m[0])}: only \`\${env:NAME}\` references are allowed (NAME: letters, digits, \`_\`)`,
      );
      return undefined;
    }
    env.push(name);
  }
  return { template: v, env };
}

export function parseRate(c: Checker, v: unknown, path: Path): RateLimit | undefined {
  const m = typeof v === "string" ? /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(v) : null;
  if (!m) {
    c.error("ERR_CONFIG_RATE", path, `rate ${q(v)}: expected \`COUNT/DURATION\`, e.g. \`60/1m\``);
    return undefined;
  }
  const count = Number(m[1]);
  const perSeconds = c.duration(m[2], path);
  if (perSeconds === undefined) return undefined;
  if (!Number.isSafeInteger(count) || count < 1 || perSeconds < 1) {
    c.error("ERR_CONFIG_RATE", path, `rate ${q(v)}: needs at least 1 call per at least 1 second`);
    return undefined;
  }
  return { count, perSeconds };
}

function flag(c: Checker, obj: Obj, key: string, path: Path): boolean {
  const v = obj[key];
  if (v === undefined) return false;
  if (typeof v === "boolean") return v;
  c.error("ERR_CONFIG_TYPE", [...path, key], "expected `true` or `false`");
  return false;
}

function parseResourceRule(c: Checker, v: unknown, path: Path): ResourceRule | undefined {
  const obj = c.map(v, path, "`{from: ARGUMENT, as: path|url-host|email-domain|repository}`");
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.resourceRule);
  const as = obj.as;
  if (as !== undefined && !KINDS.includes(as as (typeof KINDS)[number])) {
    c.error(
      "ERR_CONFIG_GATEWAY_RESOURCE",
      [...path, "as"],
      `${q(as)}: expected one of ${KINDS.map((k) => q(k)).join(", ")}`,
    );
    return undefined;
  }
  const names = typeof obj.from === "string" ? [obj.from] : Array.isArray(obj.from) ? obj.from : undefined;
  if (obj.from !== undefined && names === undefined) {
    c.error("ERR_CONFIG_TYPE", [...path, "from"], `expected an argument name, got ${c.typeName(obj.from)}`);
    return undefined;
  }
  if (names === undefined || as === undefined) return undefined;
  const kind = as as ResourceRule["as"];
  const wanted = kind === "repository" ? [1, 2] : [1];
  if (!wanted.includes(names.length)) {
    c.error(
      "ERR_CONFIG_GATEWAY_RESOURCE",
      [...path, "from"],
      kind === "repository"
        ? "a repository comes from one argument (`owner/name`) or two (`[owner, name]`)"
        : `a ${q(kind)} comes from one argument`,
    );
    return undefined;
  }
  let each = false;
  const from: string[] = [];
  for (const [i, n] of names.entries()) {
    const m = typeof n === "string" ? ARGUMENT.exec(n) : null;
    if (!m || (m[2] && names.length > 1)) {
      c.error(
        "ERR_CONFIG_GATEWAY_RESOURCE",
        typeof obj.from === "string" ? [...path, "from"] : [...path, "from", i],
        `argument ${q(n)}: expected a top-level argument name, or \`name[*]\` for each item of an array`,
      );
      return undefined;
    }
    from.push(m[1]!);
    if (m[2]) each = true;
  }
  let base: string | undefined;
  if (obj.base !== undefined) {
    base = c.string(obj.base, [...path, "base"]);
    if (base !== undefined && (kind !== "path" || !base.startsWith("/"))) {
      c.error(
        "ERR_CONFIG_GATEWAY_RESOURCE",
        [...path, "base"],
        kind === "path" ? `base ${q(base)} must be an absolute path` : "`base` applies to `as: path` only",
      );
      return undefined;
    }
  }
  const foldCase = flag(c, obj, "foldCase", path);
  if (foldCase && kind !== "path") {
    c.error("ERR_CONFIG_GATEWAY_RESOURCE", [...path, "foldCase"], "`foldCase` applies to `as: path` only");
    return undefined;
  }
  return { kind: "resource-rule", from, each, as: kind, base, foldCase, path };
}

/**
 * `resource:` of a tool (templates or `{from, as}` rules, one or a list) or of an upstream
 * (templates only: what every call to it touches).
 */
function parseResources(
  c: Checker,
  v: unknown,
  path: Path,
  rules: boolean,
): (ResourceRule | ResourceTemplate)[] {
  const out: (ResourceRule | ResourceTemplate)[] = [];
  if (v === undefined) return out;
  const listed = Array.isArray(v);
  (listed ? (v as unknown[]) : [v]).forEach((r, i) => {
    const p = listed ? [...path, i] : path;
    const item =
      typeof r === "string"
        ? parseResourceTemplate(c, r, p)
        : rules
          ? parseResourceRule(c, r, p)
          : void c.error("ERR_CONFIG_TYPE", p, `expected a resource template, got ${c.typeName(r)}`);
    if (item) out.push(item);
  });
  return out;
}

function parseTool(
  c: Checker,
  server: string,
  name: string,
  v: unknown,
  path: Path,
  ctx: GatewayContext,
): GatewayTool | undefined {
  const obj = v === null ? {} : c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.tool);
  const resources = parseResources(c, obj.resource, [...path, "resource"], true);
  const constraints: Record<string, Record<string, unknown>> = {};
  if (obj.constraints !== undefined) {
    const all = c.map(obj.constraints, [...path, "constraints"], "a map of argument name to JSON Schema");
    for (const [arg, schema] of Object.entries(all ?? {})) {
      const sp = [...path, "constraints", arg];
      const s = c.map(schema, sp, "a JSON Schema object");
      if (!s) continue;
      if (!checkSchemaPatterns(c, s, sp)) continue;
      try {
        ajv.compile(s);
        constraints[arg] = s;
      } catch (e) {
        c.error("ERR_CONFIG_GATEWAY_CONSTRAINT", sp, `invalid JSON Schema: ${(e as Error).message}`);
      }
    }
  }
  const irreversible = flag(c, obj, "irreversible", path);
  const untrusted = flag(c, obj, "untrusted", path);
  const privileged = flag(c, obj, "privileged", path);
  let whenTainted: GatewayTool["whenTainted"] = "refuse";
  if (obj.whenTainted !== undefined) {
    if (obj.whenTainted === "refuse" || obj.whenTainted === "hold") whenTainted = obj.whenTainted;
    else
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "whenTainted"],
        `whenTainted ${q(obj.whenTainted)}: expected \`refuse\` or \`hold\``,
      );
  }
  const approval =
    obj.approval === undefined ? undefined : ctx.approval(c, obj.approval, [...path, "approval"]);
  const holds = irreversible || (privileged && whenTainted === "hold");
  if (holds && obj.approval === undefined) {
    c.error(
      "ERR_CONFIG_GATEWAY_HOLD",
      path,
      `tool ${q(`${server}:${name}`)} holds calls for approval (${irreversible ? "`irreversible`" : "`whenTainted: hold`"}) but names no \`approval\` policy`,
    );
  }
  if (approval?.kind === "none" && holds) {
    c.error(
      "ERR_CONFIG_GATEWAY_HOLD",
      [...path, "approval"],
      "a tool whose calls are held cannot have `approval: none`",
    );
  }
  const approvalTtlSeconds =
    obj.approvalTtl === undefined
      ? DEFAULT_APPROVAL_TTL
      : (c.duration(obj.approvalTtl, [...path, "approvalTtl"]) ?? DEFAULT_APPROVAL_TTL);
  const rateLimit =
    obj.rateLimit === undefined ? undefined : parseRate(c, obj.rateLimit, [...path, "rateLimit"]);
  return {
    kind: "gateway-tool",
    server,
    name,
    resources,
    constraints,
    irreversible,
    untrusted,
    privileged,
    whenTainted,
    approval,
    approvalTtlSeconds,
    rateLimit,
    ...(c.mode(obj.mode, [...path, "mode"]) === "shadow" && { mode: "shadow" as const }),
    path,
  };
}

function parseUpstream(c: Checker, id: string, v: unknown, ctx: GatewayContext): Upstream | undefined {
  const path = ["gateway", "upstreams", id];
  const obj = c.map(v, path, "a map with `command` (stdio) or `url` (Streamable HTTP)");
  if (!obj) return undefined;
  if (id.includes("__")) {
    c.error(
      "ERR_CONFIG_ID",
      path,
      `upstream name ${q(id)} must not hold \`__\`: the gateway names tools \`<upstream>__<tool>\``,
      { key: true },
    );
  }
  const stdio = obj.command !== undefined;
  const http = obj.url !== undefined;
  if (stdio === http) {
    c.error(
      "ERR_CONFIG_GATEWAY_UPSTREAM",
      path,
      stdio
        ? "an upstream is either stdio (`command`) or Streamable HTTP (`url`), not both"
        : "an upstream needs `command` (stdio) or `url` (Streamable HTTP)",
    );
    return undefined;
  }
  c.shape(obj, path, stdio ? SHAPES.stdioUpstream : SHAPES.httpUpstream);
  const credentials =
    obj.credentials === undefined
      ? undefined
      : parseCredentials(c, obj.credentials, [...path, "credentials"], stdio);
  const resources = parseResources(c, obj.resource, [...path, "resource"], false) as ResourceTemplate[];
  const trustNewTools = flag(c, obj, "trustNewTools", path);
  const tools = new Map<string, GatewayTool>();
  if (obj.tools !== undefined) {
    const all = c.map(obj.tools, [...path, "tools"], "a map of tool name to declaration") ?? {};
    for (const [name, decl] of Object.entries(all)) {
      const tp = [...path, "tools", name];
      if (!TOOL_NAME.test(name)) {
        c.error("ERR_CONFIG_ID", tp, `tool name ${q(name)}: letters, digits, \`_\`, \`.\`, \`-\`, \`/\``, {
          key: true,
        });
        continue;
      }
      const tool = parseTool(c, id, name, decl, tp, ctx);
      if (tool) tools.set(name, tool);
    }
  }
  const texts = (v: unknown, p: Path): Map<string, ConfigText> => {
    const out = new Map<string, ConfigText>();
    if (v === undefined) return out;
    for (const [k, value] of Object.entries(c.map(v, p) ?? {})) {
      const t = configText(c, value, [...p, k]);
      if (t) out.set(k, t);
    }
    return out;
  };
  if (stdio) {
    const command = c.string(obj.command, [...path, "command"]);
    const args: ConfigText[] = [];
    if (obj.args !== undefined) {
      (c.list(obj.args, [...path, "args"]) ?? []).forEach((a, i) => {
        const t = configText(c, a, [...path, "args", i]);
        if (t) args.push(t);
      });
    }
    const env = texts(obj.env, [...path, "env"]);
    if (credentials) {
      for (const k of env.keys()) {
        if (CREDENTIAL_ENV[credentials.downstream].test(k)) {
          c.error(
            "ERR_CONFIG_GATEWAY_CREDENTIALS",
            [...path, "env", k],
            `${q(k)}: this upstream's ${credentials.downstream} credentials come from writ per writ (\`credentials\`); writ.yaml must not set another`,
            { key: true },
          );
        }
      }
    }
    const cwd = obj.cwd === undefined ? undefined : c.string(obj.cwd, [...path, "cwd"]);
    if (command === undefined) return undefined;
    return {
      kind: "stdio-upstream",
      id,
      command,
      args,
      env,
      cwd,
      tools,
      resources,
      trustNewTools,
      credentials,
      path,
    };
  }
  const url = c.string(obj.url, [...path, "url"]);
  let ok = false;
  if (url !== undefined) {
    try {
      const u = new URL(url);
      ok = (u.protocol === "http:" || u.protocol === "https:") && u.username === "" && u.password === "";
    } catch {
      ok = false;
    }
    if (!ok) {
      c.error(
        "ERR_CONFIG_GATEWAY_UPSTREAM",
        [...path, "url"],
        `url ${q(url)}: expected an absolute http(s) URL without credentials (put them in \`headers\`)`,
      );
    }
  }
  const headers = texts(obj.headers, [...path, "headers"]);
  for (const k of headers.keys()) {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) {
      c.error("ERR_CONFIG_VALUE", [...path, "headers", k], `${q(k)} is not an HTTP header name`, {
        key: true,
      });
    }
  }
  if (credentials) {
    for (const k of headers.keys()) {
      if (k.toLowerCase() === "authorization" || k.toLowerCase() === "proxy-authorization") {
        c.error(
          "ERR_CONFIG_GATEWAY_CREDENTIALS",
          [...path, "headers", k],
          `${q(k)}: this upstream's \`Authorization\` is the credential writ mints per writ (\`credentials\`); writ.yaml must not set another`,
          { key: true },
        );
      }
    }
  }
  if (url === undefined || !ok) return undefined;
  return { kind: "http-upstream", id, url, headers, tools, resources, trustNewTools, credentials, path };
}

/**
 * `credentials: { downstream: SYSTEM, maxWrits?: N }`: the upstream's credential is minted per writ
 * by that system's downstream issuer (whether the system is configured for an environment is
 * checked when the server starts). AWS over HTTP is refused: SigV4 signs each request, it is no
 * header token.
 */
function parseCredentials(
  c: Checker,
  v: unknown,
  path: Path,
  stdio: boolean,
): UpstreamCredentials | undefined {
  const obj = c.map(v, path, "`{downstream: aws|github|kubernetes, maxWrits?: N}`");
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.upstreamCredentials);
  const system = obj.downstream;
  if (system === undefined) return undefined;
  if (!DOWNSTREAM_SYSTEMS.includes(system as (typeof DOWNSTREAM_SYSTEMS)[number])) {
    c.error(
      "ERR_CONFIG_GATEWAY_CREDENTIALS",
      [...path, "downstream"],
      `downstream ${q(system)}: expected one of ${DOWNSTREAM_SYSTEMS.map((s) => q(s)).join(", ")}`,
    );
    return undefined;
  }
  const downstream = system as UpstreamCredentials["downstream"];
  if (downstream === "aws" && !stdio) {
    c.error(
      "ERR_CONFIG_GATEWAY_CREDENTIALS",
      [...path, "downstream"],
      "AWS credentials cannot be given to a Streamable HTTP upstream: AWS signs each request (SigV4), there is no header token to inject; run the tool server over stdio, where it gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
    );
    return undefined;
  }
  let maxWrits = DEFAULT_MAX_WRITS;
  if (obj.maxWrits !== undefined) {
    const n = obj.maxWrits;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > MAX_MAX_WRITS) {
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "maxWrits"],
        `maxWrits ${q(n)}: expected a whole number from 1 to ${MAX_MAX_WRITS}`,
      );
      return undefined;
    }
    maxWrits = n;
  }
  return { downstream, maxWrits, path };
}

const BOUND_GLOB = /^[^\0\n\r]{1,1024}$/;

/** `bounds:` — roots (absolute paths), hosts and domains (globs), deny (path globs). */
function parseBounds(c: Checker, v: unknown, path: Path): GatewayBounds | undefined {
  const obj = c.map(v, path, "a map with `roots`, `hosts`, `domains`, `deny`");
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.bounds);
  const list = (key: string, check: (s: string) => string | undefined): string[] | undefined => {
    if (obj[key] === undefined) return undefined;
    const out: string[] = [];
    (c.list(obj[key], [...path, key]) ?? []).forEach((item, i) => {
      const s = c.string(item, [...path, key, i]);
      if (s === undefined) return;
      const bad = BOUND_GLOB.test(s) ? check(s) : "1 to 1024 characters, no line breaks or NUL";
      if (bad) c.error("ERR_CONFIG_GATEWAY_BOUNDS", [...path, key, i], `${q(s)}: ${bad}`);
      else out.push(s);
    });
    return out;
  };
  const absolute = (s: string) =>
    !s.startsWith("/")
      ? "a root is an absolute path"
      : /[*?]/.test(s)
        ? "a root is a directory, not a glob (deny what is below it with `deny`)"
        : undefined;
  const name = (s: string) => (s.includes("/") ? "a host or domain glob has no `/`" : undefined);
  const glob = (s: string) =>
    s.startsWith("/") || s.startsWith("**") ? undefined : "a path glob starts with `/` or `**`";
  return {
    roots: list("roots", absolute),
    hosts: list("hosts", name),
    domains: list("domains", name),
    deny: list("deny", glob) ?? [],
    ...(c.mode(obj.mode, [...path, "mode"]) === "shadow" && { mode: "shadow" as const }),
  };
}

/** Parses `gateway:`; undefined when it is absent or broken (the problems say why). */
export function parseGateway(c: Checker, v: unknown, ctx: GatewayContext): GatewayConfig | undefined {
  if (v === undefined) return undefined;
  const path = ["gateway"];
  const obj = c.map(v, path);
  if (!obj) return undefined;
  c.shape(obj, path, SHAPES.gateway);
  let resource: string | undefined;
  if (obj.resource !== undefined) {
    resource = c.string(obj.resource, [...path, "resource"]);
    try {
      if (resource !== undefined && new URL(resource).hash) throw new Error("fragment");
    } catch {
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "resource"],
        `resource ${q(resource)}: expected an absolute URI without a fragment`,
      );
    }
  }
  let perAgent: RateLimit | undefined;
  let perTool: RateLimit | undefined;
  if (obj.limits !== undefined) {
    const limits = c.map(obj.limits, [...path, "limits"]);
    if (limits) {
      c.shape(limits, [...path, "limits"], SHAPES.gatewayLimits);
      if (limits.perAgent !== undefined)
        perAgent = parseRate(c, limits.perAgent, [...path, "limits", "perAgent"]);
      if (limits.perTool !== undefined)
        perTool = parseRate(c, limits.perTool, [...path, "limits", "perTool"]);
    }
  }
  const upstreams = new Map<string, Upstream>();
  for (const [id, u] of c.entries(obj.upstreams, [...path, "upstreams"], "upstream")) {
    const upstream = parseUpstream(c, id, u, ctx);
    if (upstream) upstreams.set(id, upstream);
  }
  const bounds = obj.bounds === undefined ? undefined : parseBounds(c, obj.bounds, [...path, "bounds"]);
  let taintTtlSeconds = DEFAULT_TAINT_TTL;
  if (obj.taintTtl !== undefined) {
    const ttl = c.duration(obj.taintTtl, [...path, "taintTtl"]);
    if (ttl !== undefined && ttl < 60) {
      c.error(
        "ERR_CONFIG_VALUE",
        [...path, "taintTtl"],
        "taintTtl must be at least `1m`: taint that ends at once protects nothing",
      );
    } else if (ttl !== undefined) taintTtlSeconds = ttl;
  }
  return { kind: "gateway", resource, upstreams, perAgent, perTool, bounds, taintTtlSeconds };
}
