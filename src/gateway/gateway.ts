/**
 * The gateway's core, transport-agnostic: sessions (`sessions.ts`), the kill switch as polled
 * (`kill.ts`), the tools behind it with their pins and compiled checks (`catalog.ts`), and the checks
 * every `tools/call` passes before it reaches an upstream (`checks/`, one file each, composed in
 * order by `checks/index.ts`; the first refusal wins):
 *
 *   1. the session is alive and no kill switch stops its agent;
 *   2. the tool exists upstream and its definition is pinned (a changed one, or one new on an
 *      upstream already pinned, is quarantined);
 *   3. the prompt-context id and the arguments are well formed;
 *   4. rate limits (per agent, per agent and tool);
 *   5. the arguments match the tool's inputSchema and writ.yaml's constraints;
 *   6. the resources the call touches are derived from the arguments (templates or rules) and
 *      checked against the gateway's bounds;
 *   7. taint: a privileged tool after an untrusted source read by the same writ (or agent) in the
 *      same prompt context is refused (or held) — taint outlives sessions;
 *   8. the decision point decides `mcp:<server>:<tool>` on each resource, with the session's writ;
 *   9. irreversible (or tainted-held) calls need an approval bound to their exact arguments;
 *  10. an upstream with per-writ credentials (`credentials: { downstream: … }`) gets the session's
 *      writ's own connection, its credential minted by the downstream issuer (credentials.ts);
 *  11. a call only a writ allows spends one of its uses;
 *  12. the session is still alive (a kill engaged meanwhile stops the call).
 *
 * Every call is audited — allowed, refused or held — with the agent, writ, session, tool, derived
 * resources, the arguments' digest (never the arguments) and the prompt-context id. Any error is a
 * refusal (fail closed).
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { ApprovalService, KillSwitch } from "../broker/index.js";
import type { ActiveWrit, GatewayConfig, WritConfig } from "../core/index.js";
import type { DecisionPoint } from "../pdp/index.js";
import type { Store } from "../store/index.js";
import { boundsCheck } from "./bounds.js";
import { ToolCatalog, visible } from "./catalog.js";
import { type CallEnv, callTool } from "./checks/index.js";
import { type DownstreamIssuers, type ScopedUpstreams, scopedUpstreams } from "./credentials.js";
import { KillWatch } from "./kill.js";
import { TOOL_SEPARATOR } from "./names.js";
import { type PinStore, pinStore } from "./pins.js";
import { rateLimiter } from "./rate.js";
import { Sessions } from "./sessions.js";
import { taints } from "./taint.js";
import type { ResolveText } from "./upstreams.js";

export {
  NO_RESOURCE,
  PROMPT_CONTEXT_HEADER,
  PROMPT_CONTEXT_META,
  REFUSAL_META,
  TOOL_SEPARATOR,
} from "./names.js";

export interface GatewayIdentity {
  readonly agent: string;
  readonly environment: string;
  /** The writ the token carries, as stored when the session began. */
  readonly writ?: ActiveWrit | undefined;
  /** The human the agent acts for (the token's `sub`), when not the agent or its delegators. */
  readonly sponsor?: string | undefined;
  /**
   * A delegated writ's chain (docs/broker.md#delegation), from the token's nested `act`: the
   * sub-agent first, then each delegator up to the root; with the parent writ's id.
   */
  readonly delegation?:
    | { readonly chain: readonly string[]; readonly parent: string | undefined }
    | undefined;
  readonly transport: "http" | "stdio";
}

export interface GatewaySession {
  readonly id: string;
  readonly identity: GatewayIdentity;
  readonly startedAt: Date;
  /** Why the session ended; undefined while it is alive. */
  readonly ended: string | undefined;
}

/** Spends one use of a writ; throws the store's `ERR_WRIT_*` refusals. */
export type SpendUse = (writId: string, by: string) => Promise<{ readonly usesLeft: number | undefined }>;

export interface GatewayDeps {
  readonly config: WritConfig;
  readonly pdp: Pick<DecisionPoint, "decideWith">;
  readonly store: Pick<Store, "writs" | "pins" | "taints" | "holds">;
  /** The audit log. Never given arguments or tokens, only digests. */
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  readonly approvals: ApprovalService;
  readonly kill: Pick<KillSwitch, "engaged">;
  /** `sha256:<hex>` of a value's canonical JSON. */
  readonly digest: (value: unknown) => string;
  readonly spendUse: SpendUse;
  readonly resolve: ResolveText;
  readonly version: string;
  /**
   * The downstream issuer of an environment and system, for upstreams with per-writ credentials;
   * undefined (or answering undefined) refuses their calls with `downstream_not_configured`.
   */
  readonly downstream?: DownstreamIssuers | undefined;
  readonly pins?: PinStore | undefined;
  /** Every time the gateway reads: rate windows, taint expiry, approvals, pins (default: now). */
  readonly clock?: (() => Date) | undefined;
  /** How often engaged kills are read (ms, default 200): a kill takes effect within this. */
  readonly killPollMs?: number | undefined;
  /** Upstream call timeout (ms, default 60000). */
  readonly callTimeoutMs?: number | undefined;
  readonly upstreamStderr?: "inherit" | "ignore" | undefined;
  /** Upstream connection failures (the upstream then offers nothing). */
  readonly onUpstreamError?: ((server: string, err: unknown) => void) | undefined;
}

export interface CallContext {
  readonly promptContextId?: unknown;
}

export interface Gateway {
  /** Starts a session; `killed` when a kill switch stops the agent. */
  openSession(identity: GatewayIdentity, onEnd?: (why: string) => void): GatewaySession;
  session(id: string): GatewaySession | undefined;
  endSession(id: string, why: string): void;
  /** The tools this session may call, named `<upstream>__<tool>`. */
  listTools(sessionId: string): Promise<Tool[]>;
  callTool(sessionId: string, name: string, args: unknown, ctx?: CallContext): Promise<CallToolResult>;
  /** Called when the set of tools changed (an upstream's list, a pin approved or quarantined). */
  onToolsChanged(listener: () => void): void;
  /** Re-reads the pins of quarantined tools now (after `writ tools approve`). */
  refreshPins(): Promise<void>;
  /** The untrusted tool that tainted this identity (in this prompt context), if any. */
  taintedBy(identity: GatewayIdentity, promptContextId?: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/** How often writs with an upstream connection of their own are read again (ms). */
const WRIT_SWEEP_MS = 1000;

/**
 * Writs with an upstream connection of their own are read again about once a second: one revoked,
 * expired or used up loses its processes without waiting for its next call. A store that cannot be
 * read changes nothing here (every call through such a connection reads the writ itself).
 */
async function sweepWrits(scoped: ScopedUpstreams, store: GatewayDeps["store"], at: number): Promise<void> {
  for (const id of scoped.writs()) {
    let w: Awaited<ReturnType<typeof store.writs.get>>;
    try {
      w = await store.writs.get(id);
    } catch {
      return;
    }
    const why = !w
      ? "not found"
      : w.status !== "active"
        ? "revoked"
        : w.expiresAt.getTime() <= at
          ? "expired"
          : w.maxUses !== undefined && w.uses >= w.maxUses
            ? "exhausted"
            : undefined;
    if (why !== undefined) scoped.closeWhere((x) => x.writ === id, why);
  }
}

/** The gateway's parts, wired: what the checks read, and the kill switch's watch over them. */
function parts(
  deps: GatewayDeps,
  gw: GatewayConfig,
  bounds: CallEnv["bounds"],
): CallEnv & { kills: KillWatch } {
  const now = deps.clock ?? (() => new Date());
  const scoped = scopedUpstreams({
    issuers: deps.downstream,
    connect: { resolve: deps.resolve, version: deps.version, stderr: deps.upstreamStderr },
    audit: deps.audit,
  });
  let sweepAt = 0;
  const kills: KillWatch = new KillWatch({
    kill: deps.kill,
    agentOf: (id) => deps.config.agents.get(id),
    pollMs: deps.killPollMs ?? 200,
    afterPoll: async () => {
      sessions.endKilled();
      // a killed agent's writs lose their upstream processes (and the credentials inside) at once
      scoped.closeWhere((s) => kills.killedWhy(s) !== undefined, "killed");
      if (Date.now() < sweepAt) return;
      sweepAt = Date.now() + WRIT_SWEEP_MS;
      await sweepWrits(scoped, deps.store, now().getTime());
    },
  });
  const sessions = new Sessions({ audit: deps.audit, now, killedWhy: (id) => kills.killedWhy(id) });
  const catalog = new ToolCatalog({
    gw,
    pins: deps.pins ?? pinStore(deps.store),
    now,
    audit: deps.audit,
    resolve: deps.resolve,
    version: deps.version,
    upstreamStderr: deps.upstreamStderr,
    onUpstreamError: deps.onUpstreamError,
  });
  const taint = taints(deps.store);
  return { deps, gw, bounds, now, sessions, catalog, rate: rateLimiter(), taint, scoped, kills };
}

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const gw: GatewayConfig = deps.config.gateway ?? {
    kind: "gateway",
    upstreams: new Map(),
    taintTtlSeconds: 86_400,
  };
  const env = parts(deps, gw, await boundsCheck(gw.bounds));
  const { sessions, catalog, kills, scoped, taint, now } = env;
  await kills.start();
  await catalog.connectAll();
  return {
    openSession: (identity, onEnd) => sessions.open(identity, onEnd),
    session: (id) => sessions.get(id),
    endSession(id, why) {
      const s = sessions.get(id);
      if (s) sessions.end(s, why);
    },
    async listTools(sessionId) {
      const s = sessions.alive(sessionId);
      const out: Tool[] = [];
      for (const k of catalog.tools()) {
        await catalog.recheck(k);
        if (visible(deps.config, s.identity, k)) {
          out.push({ ...k.tool, name: `${k.server}${TOOL_SEPARATOR}${k.tool.name}` });
        }
      }
      return out;
    },
    callTool: (sessionId, name, args, ctx = {}) => callTool(env, sessionId, name, args, ctx),
    taintedBy: (identity, promptContextId) => taint.lookup(identity, promptContextId, now()),
    onToolsChanged: (listener) => catalog.onChanged(listener),
    refreshPins: () => catalog.refresh(),
    async close() {
      kills.stop();
      sessions.endAll("the gateway is shutting down");
      await scoped.close();
      await catalog.close();
    },
  };
}
