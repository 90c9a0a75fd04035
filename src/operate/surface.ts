/**
 * What one agent can reach through writ.yaml, for the inventory and the maturity check: the gateway
 * tools it may call (declared, or only pinned from an upstream's own list), the upstreams behind
 * them, the standing credentials writ knows of, and its identities (client keys, what it runs as).
 */
import { createHash } from "node:crypto";
import { formatPath } from "../config/index.js";
import {
  type Agent,
  actionMatches,
  type GatewayTool,
  globMatches,
  type Path,
  parseRequestAction,
  type Upstream,
  type WritConfig,
} from "../core/index.js";
import type { ToolPinSummary } from "./state.js";

/** Where evidence sits: writ.yaml and a line when known, or a store record. */
export interface SourceRef {
  readonly file?: string | undefined;
  readonly line?: number | undefined;
  /** `agents.release-bot.baseline[0]`, or a store record: `writs/w-123`. */
  readonly path: string;
}

export type Locate = (path: Path) => { line?: number; column?: number };

export function configRef(config: WritConfig, locate: Locate | undefined, path: Path): SourceRef {
  const at = locate?.(path);
  return { file: config.file, ...(at?.line === undefined ? {} : { line: at.line }), path: formatPath(path) };
}

/** `writ.yaml:12 agents.x.baseline[0]`, or `store writs/w-1`. */
export function formatRef(r: SourceRef): string {
  if (r.file === undefined) return `store ${r.path}`;
  return `${r.file}${r.line === undefined ? "" : `:${r.line}`} ${r.path}`;
}

export interface AgentTool {
  readonly server: string;
  readonly tool: string;
  /** What writ.yaml declares of it; undefined for a tool only seen (pinned) on the upstream. */
  readonly declared: GatewayTool | undefined;
  /** The MCP annotations of its pinned definition, when the gateway has seen it. */
  readonly annotations: Readonly<Record<string, unknown>> | undefined;
}

function mayCall(agent: Agent, server: string, tool: string): boolean {
  try {
    const a = parseRequestAction(`mcp:${server}:${tool}`);
    return agent.tools.some((t) => actionMatches(t, a, "cover"));
  } catch {
    return false;
  }
}

/** The gateway tools the agent's `tools` patterns let it call, declared or pinned, by server and name. */
export function agentTools(config: WritConfig, agent: Agent, pins: readonly ToolPinSummary[]): AgentTool[] {
  const out = new Map<string, AgentTool>();
  const upstreams = config.gateway?.upstreams;
  for (const [server, up] of upstreams ?? []) {
    for (const [name, decl] of up.tools) {
      if (mayCall(agent, server, name))
        out.set(`${server}:${name}`, { server, tool: name, declared: decl, annotations: undefined });
    }
  }
  for (const p of pins) {
    if (!upstreams?.has(p.server) || !mayCall(agent, p.server, p.tool)) continue;
    const key = `${p.server}:${p.tool}`;
    const known = out.get(key);
    out.set(key, {
      server: p.server,
      tool: p.tool,
      declared: known?.declared,
      annotations: p.annotations,
    });
  }
  return [...out.values()].sort((a, b) =>
    a.server === b.server ? a.tool.localeCompare(b.tool) : a.server.localeCompare(b.server),
  );
}

/** Upstreams some `tools` pattern of the agent reaches (whatever their tools turn out to be). */
export function reachableUpstreams(config: WritConfig, agent: Agent): Upstream[] {
  return [...(config.gateway?.upstreams.values() ?? [])].filter((up) =>
    agent.tools.some((t) => globMatches(t.provider.raw, "mcp") && globMatches(t.service.raw, up.id)),
  );
}

/** A credential writ.yaml shows the agent holding beyond its writs: never a value, only names. */
export interface StandingCredential {
  readonly kind: "standing";
  /**
   * `upstream-secret`: a static credential the gateway sends an upstream on behalf of every agent
   * calling it (headers, environment); `runtime-identity`: a service account or cloud identity the
   * agent runs as (its lifetime is outside writ); `client-key`: a public key the agent signs in
   * with (not a secret writ holds).
   */
  readonly type: "upstream-secret" | "runtime-identity" | "client-key";
  readonly name: string;
  readonly detail: string;
  /** Whether writ knows it as a secret that lives until someone rotates it. */
  readonly secret: boolean;
  readonly source: SourceRef;
}

function upstreamSecrets(up: Upstream): string[] {
  if (up.credentials) return [];
  if (up.kind === "http-upstream") {
    return [...up.headers.entries()].map(
      ([name, v]) =>
        `header \`${name}\`${v.env.length > 0 ? ` (from ${v.env.map((e) => `\${env:${e}}`).join(", ")})` : ""}`,
    );
  }
  const names = [...up.env.entries()]
    .filter(([, v]) => v.env.length > 0)
    .map(([name, v]) => `environment \`${name}\` (from ${v.env.map((e) => `\${env:${e}}`).join(", ")})`);
  const args = up.args.flatMap((a) => a.env).map((e) => `argument from \${env:${e}}`);
  return [...names, ...args];
}

export function standingCredentials(
  config: WritConfig,
  agent: Agent,
  locate: Locate | undefined,
): StandingCredential[] {
  const out: StandingCredential[] = [];
  agent.keys.forEach((k, i) => {
    out.push({
      kind: "standing",
      type: "client-key",
      name: typeof k.kid === "string" ? k.kid : keyFingerprint(k).slice(0, 16),
      detail: `${String(k.kty ?? "?")}${typeof k.crv === "string" ? ` ${k.crv}` : ""} public key for private_key_jwt`,
      secret: false,
      source: configRef(config, locate, ["agents", agent.id, "keys", i]),
    });
  });
  for (const up of reachableUpstreams(config, agent)) {
    for (const what of upstreamSecrets(up)) {
      out.push({
        kind: "standing",
        type: "upstream-secret",
        name: up.id,
        detail: `the gateway's static ${what} for upstream \`${up.id}\`, shared by every agent calling it`,
        secret: true,
        source: configRef(config, locate, up.path),
      });
    }
  }
  const runs = agent.runs;
  runs?.serviceAccounts.forEach((sa, i) => {
    out.push({
      kind: "standing",
      type: "runtime-identity",
      name: `${sa.namespace}/${sa.name}`,
      detail: "Kubernetes service account the agent runs as",
      secret: false,
      source: configRef(config, locate, ["agents", agent.id, "serviceAccounts", i]),
    });
  });
  runs?.cloudIdentities.forEach((id, i) => {
    out.push({
      kind: "standing",
      type: "runtime-identity",
      name: id,
      detail: "cloud identity the agent's workloads assume",
      secret: false,
      source: configRef(config, locate, ["agents", agent.id, "cloudIdentities", i]),
    });
  });
  return out;
}

/** SHA-256 of a public JWK's defining members (RFC 7638's members, not its exact encoding). */
export function keyFingerprint(jwk: Readonly<Record<string, unknown>>): string {
  const members = ["crv", "e", "k", "kty", "n", "x", "y"].filter((m) => jwk[m] !== undefined);
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash("sha256").update(canonical).digest("hex");
}

/** Items by a key (items whose key is undefined are left out). */
export function groupBy<T>(items: readonly T[], key: (t: T) => string | undefined): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    if (k === undefined) continue;
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return out;
}
