/**
 * The tools behind the gateway: every upstream's connection, each tool's pin (a definition changed
 * since it was pinned, or new on an upstream already pinned, is quarantined until an operator
 * approves it), its compiled `inputSchema` and writ.yaml constraints, and which tools a session may
 * see.
 */
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import {
  actionMatches,
  type GatewayConfig,
  type GatewayTool,
  isWritError,
  type ParsedAction,
  parseRequestAction,
  q,
  type Upstream,
  type WritConfig,
} from "../core/index.js";
import type { GatewayIdentity } from "./gateway.js";
import { definitionHash, type PinStore } from "./pins.js";
import { type Check, compileCheck } from "./schema.js";
import { connectUpstream, type ResolveText, type UpstreamConnection } from "./upstreams.js";

export interface KnownTool {
  readonly server: string;
  readonly tool: Tool;
  readonly hash: string;
  quarantined: boolean;
  /** Never approved: new on an upstream already pinned. */
  fresh: boolean;
  check: Check | undefined;
  checkError: string | undefined;
  readonly constraints: readonly [string, Check][];
}

const DEFAULT_TOOL = (server: string, name: string): GatewayTool => ({
  kind: "gateway-tool",
  server,
  name,
  resources: [],
  constraints: {},
  irreversible: false,
  untrusted: false,
  privileged: false,
  whenTainted: "refuse",
  approval: undefined,
  approvalTtlSeconds: 900,
  rateLimit: undefined,
  path: [],
});

/** writ.yaml's declaration of a tool, or the defaults for a tool it does not declare. */
export function declOf(gw: GatewayConfig, server: string, name: string): GatewayTool {
  return gw.upstreams.get(server)?.tools.get(name) ?? DEFAULT_TOOL(server, name);
}

/** A tool's checks, compiled once when it is seen: its inputSchema's (or why not) and its constraints'. */
function compileTool(
  server: string,
  tool: Tool,
  decl: GatewayTool,
): Pick<KnownTool, "check" | "checkError" | "constraints"> {
  let check: Check | undefined;
  let checkError: string | undefined;
  try {
    check = compileCheck(tool.inputSchema, `tool ${q(`${server}:${tool.name}`)}: inputSchema`);
  } catch (err) {
    checkError = (err as Error).message;
  }
  const constraints: [string, Check][] = Object.entries(decl.constraints).map(([arg, schema]) => [
    arg,
    compileCheck(schema, `constraint on ${q(arg)}`),
  ]);
  return { check, checkError, constraints };
}

/** Whether a session may see a tool in its list: the agent's tools, a grant, the ceiling, no whole deny. */
export function visible(config: WritConfig, identity: GatewayIdentity, k: KnownTool): boolean {
  if (k.quarantined || k.check === undefined) return false;
  const agent = config.agents.get(identity.agent);
  const rc = agent && config.runnerClasses.get(agent.runnerClass);
  if (!agent || !rc) return false;
  let a: ParsedAction;
  try {
    a = parseRequestAction(`mcp:${k.server}:${k.tool.name}`);
  } catch {
    return false;
  }
  if (!agent.tools.some((t) => actionMatches(t, a, "cover"))) return false;
  const env = identity.environment;
  const granted =
    agent.baseline.some(
      (g) => (!g.environments || g.environments.includes(env)) && actionMatches(g.rule, a, "cover"),
    ) ||
    (identity.writ?.grants.some((g) => actionMatches(g.rule, a, "cover")) ?? false);
  if (!granted || !rc.ceiling.allow.some((c) => actionMatches(c.rule, a, "cover"))) return false;
  const whole = (d: { rule: { text: { resource: string } } }) => d.rule.text.resource === "*";
  // an agent's deny in shadow mode hides nothing: it refuses nothing
  const denies = [...rc.ceiling.deny, ...agent.deny.filter((d) => d.mode !== "shadow")];
  return !denies.some((d) => whole(d) && actionMatches(d.rule, a, "include"));
}

export interface CatalogOptions {
  readonly gw: GatewayConfig;
  readonly pins: PinStore;
  readonly now: () => Date;
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  readonly resolve: ResolveText;
  readonly version: string;
  readonly upstreamStderr?: "inherit" | "ignore" | undefined;
  readonly onUpstreamError?: ((server: string, err: unknown) => void) | undefined;
}

export class ToolCatalog {
  readonly #upstreams = new Map<string, UpstreamConnection>();
  readonly #known = new Map<string, KnownTool>(); // `${server}\0${tool}`
  readonly #listeners: Array<() => void> = [];
  readonly #o: CatalogOptions;

  constructor(o: CatalogOptions) {
    this.#o = o;
  }

  /** The shared connection to an upstream, when it is connected. */
  upstream(server: string): UpstreamConnection | undefined {
    return this.#upstreams.get(server);
  }

  tool(server: string, name: string): KnownTool | undefined {
    return this.#known.get(`${server}\0${name}`);
  }

  tools(): Iterable<KnownTool> {
    return this.#known.values();
  }

  onChanged(listener: () => void): void {
    this.#listeners.push(listener);
  }

  changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Connects every upstream (one that fails offers nothing) and pins what each lists. */
  async connectAll(): Promise<void> {
    await Promise.all([...this.#o.gw.upstreams.values()].map((u) => this.#connect(u)));
  }

  async #connect(u: Upstream): Promise<void> {
    try {
      const conn = await connectUpstream(u, {
        resolve: this.#o.resolve,
        version: this.#o.version,
        stderr: this.#o.upstreamStderr,
        onToolsChanged: (server) => {
          this.#observe(server)
            .catch((err) => {
              this.#forget(server);
              this.#o.onUpstreamError?.(server, err);
            })
            .finally(() => this.changed());
        },
      });
      this.#upstreams.set(u.id, conn);
      await this.#observe(u.id);
    } catch (err) {
      this.#o.onUpstreamError?.(u.id, err);
      await this.#o.audit("gateway.upstream_failed", {
        server: u.id,
        error: isWritError(err) ? err.code : "error",
      });
    }
  }

  #forget(server: string): void {
    for (const key of [...this.#known.keys()]) if (key.startsWith(`${server}\0`)) this.#known.delete(key);
  }

  /** Pins every tool the upstream lists now; a changed definition is quarantined. */
  async #observe(server: string): Promise<void> {
    const conn = this.#upstreams.get(server);
    this.#forget(server);
    if (!conn) return;
    const { gw, pins } = this.#o;
    // A server seen before is pinned: a tool new on it waits for an operator like a changed one,
    // unless writ.yaml trusts this upstream's new tools. A server's first sight pins them all.
    const firstSight =
      gw.upstreams.get(server)?.trustNewTools || !(await pins.known(server)) ? "pin" : "quarantine";
    for (const tool of conn.tools().values()) {
      const hash = definitionHash(tool);
      const pin = await pins.observe(server, tool, this.#o.now(), { firstSight });
      this.#known.set(`${server}\0${tool.name}`, {
        server,
        tool,
        hash,
        quarantined: pin.status === "quarantined" || pin.seenHash !== hash,
        fresh: pin.approvedHash === undefined,
        ...compileTool(server, tool, declOf(gw, server, tool.name)),
      });
      if (pin.status === "quarantined") {
        await this.#o.audit("gateway.tool_quarantined", {
          server,
          tool: tool.name,
          pinnedHash: pin.approvedHash ?? null,
          seenHash: hash,
          why: pin.approvedHash === undefined ? "new" : "changed",
        });
      }
    }
  }

  /** A quarantined tool is released once its pin approves the hash seen (`writ tools approve`). */
  async recheck(k: KnownTool): Promise<void> {
    if (!k.quarantined) return;
    const pin = await this.#o.pins.get(k.server, k.tool.name);
    if (pin && pin.approvedHash === k.hash) k.quarantined = false;
  }

  /** Re-reads the pins of quarantined tools; tells the listeners when any changed. */
  async refresh(): Promise<void> {
    let any = false;
    for (const k of this.#known.values()) {
      const was = k.quarantined;
      await this.recheck(k);
      any ||= was !== k.quarantined;
    }
    if (any) this.changed();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#upstreams.values()].map((u) => u.close()));
    this.#upstreams.clear();
  }
}
