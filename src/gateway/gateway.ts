/**
 * The gateway's core, transport-agnostic: sessions, the filtered tool list, and the checks every
 * `tools/call` passes before it reaches an upstream. In order, the first refusal wins:
 *
 *   1. the session is alive and no kill switch stops its agent;
 *   2. the tool exists upstream and its definition is pinned (a changed one, or one new on an
 *      upstream already pinned, is quarantined);
 *   3. rate limits (per agent, per agent and tool);
 *   4. the arguments match the tool's inputSchema and writ.yaml's constraints;
 *   5. the resources the call touches are derived from the arguments (templates or rules) and
 *      checked against the gateway's bounds;
 *   6. taint: a privileged tool after an untrusted source read by the same writ (or agent) in the
 *      same prompt context is refused (or held) — taint outlives sessions;
 *   7. the decision point decides `mcp:<server>:<tool>` on each resource, with the session's writ;
 *   8. irreversible (or tainted-held) calls need an approval bound to their exact arguments;
 *   9. an upstream with per-writ credentials (`credentials: { downstream: … }`) gets the session's
 *      writ's own connection, its credential minted by the downstream issuer (credentials.ts);
 *  10. a call only a writ allows spends one of its uses.
 *
 * Every call is audited — allowed, refused or held — with the agent, writ, session, tool, derived
 * resources, the arguments' digest (never the arguments) and the prompt-context id. Any error is a
 * refusal (fail closed).
 */
import { randomBytes } from "node:crypto";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { ApprovalService, KillSwitch } from "../broker/index.js";
import {
  type ActiveWrit,
  actionMatches,
  type Decision,
  type GatewayConfig,
  type GatewayTool,
  isWritError,
  jsonProblem,
  type ParsedAction,
  parseRequestAction,
  q,
  type RateLimit,
  shadowRuleId,
  type WritConfig,
} from "../core/index.js";
import { writForIssuer } from "../downstream/index.js";
import type { DecisionPoint } from "../pdp/index.js";
import type { Store } from "../store/index.js";
import { boundsCheck } from "./bounds.js";
import { type DownstreamIssuers, scopedUpstreams } from "./credentials.js";
import { GatewayError, type GatewayReason } from "./errors.js";
import { admitHeld } from "./holds.js";
import { definitionHash, type PinStore, pinStore } from "./pins.js";
import { rateLimiter } from "./rate.js";
import { deriveResources } from "./resource.js";
import { type Check, compileCheck } from "./schema.js";
import { ShadowSink, shadowedBounds } from "./shadow.js";
import { taints } from "./taint.js";
import { connectUpstream, type ResolveText, type UpstreamConnection } from "./upstreams.js";

/** The `_meta` key (and, over HTTP, the header) a client names its prompt context with. */
export const PROMPT_CONTEXT_META = "writ.dev/prompt-context-id";
export const PROMPT_CONTEXT_HEADER = "writ-prompt-context-id";
/** The `_meta` key of a refused call's result: `{ reason, code, approval?, … }`. */
export const REFUSAL_META = "writ.dev/refusal";
/** Exposed tool names: `<upstream>__<tool>`. */
export const TOOL_SEPARATOR = "__";
/** The resource of a tool that declares none. */
export const NO_RESOURCE = "-";

export interface GatewayIdentity {
  readonly agent: string;
  readonly environment: string;
  /** The writ the token carries, as stored when the session began. */
  readonly writ?: ActiveWrit | undefined;
  /** The human the agent acts for (the token's `sub`), when not the agent. */
  readonly sponsor?: string | undefined;
  readonly transport: "http" | "stdio";
}

export interface GatewaySession {
  readonly id: string;
  readonly identity: GatewayIdentity;
  readonly startedAt: Date;
  /** Why the session ended; undefined while it is alive. */
  readonly ended: string | undefined;
}

interface SessionState {
  id: string;
  identity: GatewayIdentity;
  startedAt: Date;
  ended: string | undefined;
  onEnd: Array<(why: string) => void>;
}

/** Spends one use of a writ; throws the store's `ERR_WRIT_*` refusals. */
export type SpendUse = (writId: string, by: string) => Promise<{ readonly usesLeft: number | undefined }>;

export interface GatewayDeps {
  readonly config: WritConfig;
  readonly pdp: Pick<DecisionPoint, "decideWith">;
  readonly store: Pick<Store, "db" | "writs">;
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

interface KnownTool {
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

const PROMPT_CONTEXT = /^[\x21-\x7e]{1,200}$/;
/** How often writs with an upstream connection of their own are read again (ms). */
const WRIT_SWEEP_MS = 1000;
const USE_REFUSALS: Readonly<Record<string, GatewayReason>> = {
  ERR_WRIT_EXHAUSTED: "writ_exhausted",
  ERR_WRIT_REVOKED: "writ_revoked",
  ERR_WRIT_EXPIRED: "writ_expired",
  ERR_WRIT_NOT_FOUND: "writ_not_found",
  ERR_WRIT_NOT_YET_VALID: "writ_not_yet_valid",
};

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

function refusalResult(
  reason: GatewayReason,
  message: string,
  detail: Record<string, unknown>,
): CallToolResult {
  return {
    isError: true,
    content: [{ type: "text", text: `writ refused this call [${reason}]: ${message}` }],
    _meta: { [REFUSAL_META]: { reason, message, ...detail } },
  };
}

function blocks(
  kill: Awaited<ReturnType<KillSwitch["engaged"]>>[number],
  agent: { id: string; runnerClass: string },
  env: string,
): boolean {
  const s = kill.scope;
  return (
    s.kind === "all" ||
    (s.kind === "agent" && s.agent === agent.id) ||
    (s.kind === "class" && s.runnerClass === agent.runnerClass) ||
    (s.kind === "environment" && s.environment === env)
  );
}

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const gw: GatewayConfig = deps.config.gateway ?? {
    kind: "gateway",
    upstreams: new Map(),
    taintTtlSeconds: 86_400,
  };
  const bounds = await boundsCheck(gw.bounds);
  const now = () => (deps.clock ? deps.clock() : new Date());
  const pins = deps.pins ?? pinStore(deps.store.db);
  const sessions = new Map<string, SessionState>();
  const listeners: Array<() => void> = [];
  const rate = rateLimiter();
  const upstreams = new Map<string, UpstreamConnection>();
  const known = new Map<string, KnownTool>(); // `${server}\0${tool}`
  const taint = taints(deps.store.db);
  const scoped = scopedUpstreams({
    issuers: deps.downstream,
    connect: { resolve: deps.resolve, version: deps.version, stderr: deps.upstreamStderr },
    audit: deps.audit,
  });
  let kills: Awaited<ReturnType<KillSwitch["engaged"]>> = [];
  let killError = false;

  const changed = () => {
    for (const l of listeners) {
      try {
        l();
      } catch {
        // a listener's failure is its own
      }
    }
  };

  const declOf = (server: string, name: string): GatewayTool =>
    gw.upstreams.get(server)?.tools.get(name) ?? DEFAULT_TOOL(server, name);

  /** Pins every tool the upstream lists now; a changed definition is quarantined. */
  async function observe(server: string): Promise<void> {
    const conn = upstreams.get(server);
    for (const key of [...known.keys()]) if (key.startsWith(`${server}\0`)) known.delete(key);
    if (!conn) return;
    // A server seen before is pinned: a tool new on it waits for an operator like a changed one,
    // unless writ.yaml trusts this upstream's new tools. A server's first sight pins them all.
    const firstSight =
      gw.upstreams.get(server)?.trustNewTools || !(await pins.known(server)) ? "pin" : "quarantine";
    for (const tool of conn.tools().values()) {
      const hash = definitionHash(tool);
      const pin = await pins.observe(server, tool, now(), { firstSight });
      const decl = declOf(server, tool.name);
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
      known.set(`${server}\0${tool.name}`, {
        server,
        tool,
        hash,
        quarantined: pin.status === "quarantined" || pin.seenHash !== hash,
        fresh: pin.approvedHash === undefined,
        check,
        checkError,
        constraints,
      });
      if (pin.status === "quarantined") {
        await deps.audit("gateway.tool_quarantined", {
          server,
          tool: tool.name,
          pinnedHash: pin.approvedHash ?? null,
          seenHash: hash,
          why: pin.approvedHash === undefined ? "new" : "changed",
        });
      }
    }
  }

  async function connectAll(): Promise<void> {
    await Promise.all(
      [...gw.upstreams.values()].map(async (u) => {
        try {
          const conn = await connectUpstream(u, {
            resolve: deps.resolve,
            version: deps.version,
            stderr: deps.upstreamStderr,
            onToolsChanged: (server) => {
              observe(server)
                .catch((err) => {
                  for (const key of [...known.keys()]) if (key.startsWith(`${server}\0`)) known.delete(key);
                  deps.onUpstreamError?.(server, err);
                })
                .finally(changed);
            },
          });
          upstreams.set(u.id, conn);
          await observe(u.id);
        } catch (err) {
          deps.onUpstreamError?.(u.id, err);
          await deps.audit("gateway.upstream_failed", {
            server: u.id,
            error: isWritError(err) ? err.code : "error",
          });
        }
      }),
    );
  }

  // --- the kill switch: polled, so a kill on any process reaches this one within killPollMs ----
  const agentOf = (id: string) => deps.config.agents.get(id);
  async function pollKills(): Promise<void> {
    try {
      kills = await deps.kill.engaged();
      killError = false;
    } catch {
      killError = true; // fail closed: no call passes while the kill switch cannot be read
    }
    for (const s of sessions.values()) {
      const why = killedWhy(s.identity);
      if (why !== undefined) end(s, why);
    }
    // a killed agent's writs lose their upstream processes (and the credentials inside) at once
    scoped.closeWhere((s) => killedWhy(s) !== undefined, "killed");
    if (Date.now() >= sweepAt) {
      sweepAt = Date.now() + WRIT_SWEEP_MS;
      await sweepWrits();
    }
  }
  /**
   * Writs with an upstream connection of their own are read again about once a second: one revoked,
   * expired or used up loses its processes without waiting for its next call. A store that cannot be
   * read changes nothing here (every call through such a connection reads the writ itself).
   */
  let sweepAt = 0;
  async function sweepWrits(): Promise<void> {
    const at = now().getTime();
    for (const id of scoped.writs()) {
      let w: Awaited<ReturnType<typeof deps.store.writs.get>>;
      try {
        w = await deps.store.writs.get(id);
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
  function killedWhy(id: Pick<GatewayIdentity, "agent" | "environment">): string | undefined {
    if (killError) return "the kill switch cannot be read";
    const agent = agentOf(id.agent);
    if (!agent) return `agent ${q(id.agent)} is no longer declared`;
    const k = kills.find((kill) => blocks(kill, agent, id.environment));
    return k ? `kill switch ${q(k.id)} is engaged` : undefined;
  }
  await pollKills();
  const pollMs = deps.killPollMs ?? 200;
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    pollKills().finally(() => {
      polling = false;
    });
  }, pollMs);
  timer.unref();

  function end(s: SessionState, why: string): void {
    if (s.ended !== undefined) return;
    s.ended = why;
    sessions.delete(s.id);
    deps.audit("gateway.session_end", { session: s.id, agent: s.identity.agent, why }).catch(() => {});
    for (const f of s.onEnd) {
      try {
        f(why);
      } catch {
        // the transport's own failure
      }
    }
  }

  // --- what an agent may see --------------------------------------------------------------------
  function visible(s: SessionState, k: KnownTool): boolean {
    if (k.quarantined || k.check === undefined) return false;
    const agent = agentOf(s.identity.agent);
    const rc = agent && deps.config.runnerClasses.get(agent.runnerClass);
    if (!agent || !rc) return false;
    let a: ParsedAction;
    try {
      a = parseRequestAction(`mcp:${k.server}:${k.tool.name}`);
    } catch {
      return false;
    }
    if (!agent.tools.some((t) => actionMatches(t, a, "cover"))) return false;
    const env = s.identity.environment;
    const granted =
      agent.baseline.some(
        (g) => (!g.environments || g.environments.includes(env)) && actionMatches(g.rule, a, "cover"),
      ) ||
      (s.identity.writ?.grants.some((g) => actionMatches(g.rule, a, "cover")) ?? false);
    if (!granted || !rc.ceiling.allow.some((c) => actionMatches(c.rule, a, "cover"))) return false;
    const whole = (d: { rule: { text: { resource: string } } }) => d.rule.text.resource === "*";
    return ![...rc.ceiling.deny, ...agent.deny].some((d) => whole(d) && actionMatches(d.rule, a, "include"));
  }

  async function recheckQuarantined(k: KnownTool): Promise<void> {
    if (!k.quarantined) return;
    const pin = await pins.get(k.server, k.tool.name);
    if (pin && pin.approvedHash === k.hash) k.quarantined = false;
  }

  const alive = (id: string): SessionState => {
    const s = sessions.get(id);
    if (!s) throw new GatewayError("session_ended", `session ${q(id)} has ended`);
    const why = killedWhy(s.identity);
    if (why !== undefined) {
      end(s, why);
      throw new GatewayError("killed", why);
    }
    return s;
  };

  // --- a call -------------------------------------------------------------------------------------
  async function judge(
    s: SessionState,
    name: string,
    args: unknown,
    ctx: CallContext,
    record: Record<string, unknown>,
  ): Promise<{ k: KnownTool; decl: GatewayTool; args: Record<string, unknown>; spend: boolean }> {
    const sep = name.indexOf(TOOL_SEPARATOR);
    const server = sep > 0 ? name.slice(0, sep) : "";
    const toolName = sep > 0 ? name.slice(sep + TOOL_SEPARATOR.length) : "";
    const k = known.get(`${server}\0${toolName}`);
    if (!k) throw new GatewayError("unknown_tool", `no tool ${q(name)} behind this gateway`);
    const id = s.identity;
    const action = `mcp:${server}:${toolName}`;
    record.tool = `${server}:${toolName}`;
    record.action = action;
    await recheckQuarantined(k);
    if (k.quarantined) {
      throw new GatewayError(
        "tool_quarantined",
        `${q(`${server}:${toolName}`)} ${k.fresh ? "is new on an upstream already pinned" : "changed since it was pinned"}: quarantined until an operator approves it (\`writ tools approve ${server}:${toolName}\`)`,
        { hash: k.hash },
      );
    }
    if (ctx.promptContextId !== undefined) {
      if (typeof ctx.promptContextId !== "string" || !PROMPT_CONTEXT.test(ctx.promptContextId)) {
        throw new GatewayError(
          "prompt_context_invalid",
          "the prompt-context id must be 1 to 200 printable ASCII characters",
        );
      }
      record.promptContextId = ctx.promptContextId;
    }
    const a = args === undefined ? {} : args;
    if (typeof a !== "object" || a === null || Array.isArray(a)) {
      throw new GatewayError("arguments_invalid", "the arguments must be an object");
    }
    const argv = a as Record<string, unknown>;
    // before anything reads them: a NUL or a lone surrogate would reach the upstream other than it
    // was decided (a C string cut short, a U+FFFD), and nesting past the limit cannot be audited
    const odd = jsonProblem(argv);
    if (odd)
      throw new GatewayError(
        "arguments_invalid",
        `the arguments${odd.at ? ` at ${odd.at}` : ""} ${odd.message}`,
      );
    record.argumentsDigest = deps.digest(argv);
    const decl = declOf(server, toolName);
    const shadow = new ShadowSink(record);
    const toolRule = shadowRuleId.tool(server, toolName);

    const limits: [string, RateLimit][] = [];
    if (gw.perAgent) limits.push([`a\0${id.agent}`, gw.perAgent]);
    const perTool = decl.rateLimit ?? gw.perTool;
    if (perTool) limits.push([`t\0${id.agent}\0${action}`, perTool]);
    if (limits.length > 0) {
      const r = rate.take(limits, now().getTime());
      if (!r.ok) {
        throw new GatewayError(
          "rate_limited",
          `rate limit of ${r.key.startsWith("a") ? `agent ${q(id.agent)}` : q(`${server}:${toolName}`)} reached: retry after ${r.retryAfter} s`,
          { retryAfter: r.retryAfter },
        );
      }
    }

    if (k.check === undefined) throw new GatewayError("gateway_error", k.checkError ?? "no schema");
    const wrong = k.check(argv);
    if (wrong !== undefined) {
      throw new GatewayError(
        "arguments_invalid",
        `the arguments do not match the tool's inputSchema: ${wrong}`,
      );
    }
    for (const [arg, check] of k.constraints) {
      if (argv[arg] === undefined) continue;
      const bad = check(argv[arg]);
      if (bad !== undefined) {
        shadow.refuseOr(
          decl.mode,
          toolRule,
          "tool",
          new GatewayError(
            "argument_constraint",
            `argument ${q(arg)} breaks a constraint in writ.yaml: ${bad}`,
          ),
        );
      }
    }

    const upstreamResources = gw.upstreams.get(server)?.resources ?? [];
    const derived = await deriveResources(
      [...upstreamResources, ...decl.resources],
      argv,
      shadowedBounds(bounds, gw.bounds?.mode, shadow),
    );
    const resources = derived.length > 0 ? derived : [NO_RESOURCE];
    record.resources = resources;

    const context = typeof ctx.promptContextId === "string" ? ctx.promptContextId : undefined;
    // where taint decides, the store is asked too: another process may have seen the untrusted read
    const taintedWith = decl.privileged
      ? await taint.lookup(id, context, now())
      : taint.known(id, context, now());
    const tainted = taintedWith !== undefined;
    record.tainted = tainted;
    let held: "irreversible" | "tainted" | undefined = decl.irreversible ? "irreversible" : undefined;
    if (tainted && decl.privileged) {
      const why = `${q(`${server}:${toolName}`)} is privileged and this ${id.writ ? "writ" : "agent"} read from untrusted source ${q(taintedWith)}${context === undefined ? "" : ` in prompt context ${q(context)}`}`;
      if (decl.whenTainted === "refuse" || decl.mode === "shadow") {
        shadow.refuseOr(
          decl.mode,
          toolRule,
          "tool",
          new GatewayError(
            "tainted_session",
            decl.whenTainted === "refuse" ? why : `${why}: the call would be held for approval`,
            { taintedBy: taintedWith },
          ),
        );
      } else held ??= "tainted";
    }

    const writs = id.writ ? [id.writ] : [];
    const at = now();
    let viaWritOnly = false;
    const reasons: unknown[] = [];
    for (const resource of resources) {
      const d = deps.pdp.decideWith(
        {
          agent: id.agent,
          action,
          resource,
          environment: id.environment,
          now: at,
          context: {
            writId: id.writ?.id,
            tainted,
            arguments: argv,
            promptContextId: context,
          },
        },
        writs,
      );
      reasons.push(...d.reasons);
      shadow.add(...(d.shadow ?? []));
      if (!d.allowed) {
        record.reasons = d.reasons;
        throw new GatewayError(d.code as Exclude<Decision["code"], "allowed">, d.message, {
          code: d.code,
          resource,
        });
      }
      const baseline = d.reasons.some((r) => r.kind === "grant" && r.source === "baseline");
      if (!baseline) viaWritOnly = true;
    }
    record.reasons = reasons;
    if (held !== undefined) {
      record.approval = await admitHeld(
        deps.store.db,
        deps.approvals,
        {
          agent: id.agent,
          environment: id.environment,
          server,
          tool: toolName,
          argumentsDigest: record.argumentsDigest as string,
          arguments: argv,
          resources,
          requester: id.sponsor ?? id.agent,
          ttlSeconds: decl.approvalTtlSeconds,
          why: held,
        },
        at,
      );
    }
    return { k, decl, args: argv, spend: viaWritOnly && id.writ !== undefined };
  }

  /**
   * The session's writ's own connection to an upstream with per-writ credentials. The writ is read
   * again first: a revoked or expired one stops its connections and is refused.
   */
  async function writConnection(
    s: SessionState,
    u: NonNullable<ReturnType<typeof gw.upstreams.get>>,
    k: KnownTool,
    record: Record<string, unknown>,
  ): Promise<UpstreamConnection> {
    const system = u.credentials!.downstream;
    record.downstream = { system };
    const id = s.identity.writ?.id;
    if (id === undefined) {
      throw new GatewayError(
        "downstream_no_grants",
        `upstream ${q(u.id)} gets ${system} credentials minted per writ, and this session has no writ`,
        { system },
      );
    }
    const stored = await deps.store.writs.get(id);
    const at = now();
    if (!stored || stored.agent !== s.identity.agent || stored.environment !== s.identity.environment) {
      throw new GatewayError("writ_not_found", `writ ${q(id)} is not found`);
    }
    if (stored.maxUses !== undefined && stored.uses >= stored.maxUses) {
      scoped.closeWhere((x) => x.writ === id, "exhausted");
      throw new GatewayError("writ_exhausted", `writ ${q(id)} has no uses left`);
    }
    if (stored.status !== "active" || stored.expiresAt.getTime() <= at.getTime()) {
      const revoked = stored.status !== "active";
      scoped.closeWhere((x) => x.writ === id, revoked ? "revoked" : "expired");
      throw revoked
        ? new GatewayError("writ_revoked", `writ ${q(id)} is revoked`)
        : new GatewayError("writ_expired", `writ ${q(id)} has expired`);
    }
    const { conn, credentialExpiresAt } = await scoped.acquire(u, writForIssuer(deps.config, stored), at);
    record.downstream = { system, credentialExpiresAt: credentialExpiresAt.toISOString() };
    // the writ's process must offer the very definition that was pinned and checked
    const tool = conn.tools().get(k.tool.name);
    if (!tool || definitionHash(tool) !== k.hash) {
      throw new GatewayError(
        "tool_quarantined",
        `${q(`${k.server}:${k.tool.name}`)} is ${tool ? "defined otherwise" : "missing"} on this writ's connection to the upstream`,
        { hash: tool ? definitionHash(tool) : null },
      );
    }
    return conn;
  }

  async function callTool(
    sessionId: string,
    name: string,
    args: unknown,
    ctx: CallContext = {},
  ): Promise<CallToolResult> {
    const s = sessions.get(sessionId);
    const record: Record<string, unknown> = {
      session: sessionId,
      agent: s?.identity.agent,
      environment: s?.identity.environment,
      writ: s?.identity.writ?.id,
      sponsor: s?.identity.sponsor,
      tool: name,
      tainted:
        s === undefined
          ? undefined
          : taint.known(
              s.identity,
              typeof ctx.promptContextId === "string" ? ctx.promptContextId : undefined,
              now(),
            ) !== undefined,
    };
    try {
      const live = alive(sessionId);
      const { k, decl, args: argv, spend } = await judge(live, name, args, ctx, record);
      const upstream = gw.upstreams.get(k.server);
      // before a use is spent: a credential the issuer refuses costs the writ nothing
      const writConn = upstream?.credentials ? await writConnection(live, upstream, k, record) : undefined;
      if (spend) {
        try {
          const used = await deps.spendUse(live.identity.writ!.id, "gateway");
          record.usesLeft = used.usesLeft;
        } catch (err) {
          const reason = isWritError(err) ? USE_REFUSALS[err.code] : undefined;
          if (reason === undefined) throw err;
          throw new GatewayError(reason, (err as Error).message);
        }
      }
      // A kill engaged while the checks ran still stops the call.
      alive(sessionId);
      const conn = writConn ?? (upstream?.credentials ? undefined : upstreams.get(k.server));
      if (!conn) throw new GatewayError("upstream_unavailable", `upstream ${q(k.server)} is not connected`);
      if (decl.untrusted) {
        // tainted before the result is read: a privileged call racing this one is already refused
        const context = typeof ctx.promptContextId === "string" ? ctx.promptContextId : undefined;
        await taint.mark(live.identity, context, `${k.server}:${k.tool.name}`, now(), gw.taintTtlSeconds);
        record.taints = true;
      }
      const audited = deps.audit("gateway.call", { ...record, decision: { allowed: true, code: "allowed" } });
      const forwarded = conn.call(k.tool.name, argv, { timeoutMs: deps.callTimeoutMs ?? 60_000 });
      const [auditResult, callResult] = await Promise.allSettled([audited, forwarded]);
      if (auditResult.status === "rejected") {
        // fail closed: a call that cannot be audited does not return its result
        return refusalResult("gateway_error", "the call could not be audited", {});
      }
      if (callResult.status === "rejected") {
        await deps.audit("gateway.call_failed", {
          session: sessionId,
          tool: record.tool,
          error: (callResult.reason as Error)?.message?.slice(0, 300) ?? "error",
        });
        return refusalResult(
          "upstream_error",
          `the upstream call failed: ${(callResult.reason as Error)?.message ?? ""}`.slice(0, 500),
          {},
        );
      }
      return callResult.value;
    } catch (err) {
      const refusal =
        err instanceof GatewayError
          ? err
          : new GatewayError("gateway_error", "the call could not be evaluated; it is refused", {
              error: isWritError(err) ? err.code : "error",
            });
      const held = refusal.reason === "approval_required" || refusal.reason === "approval_pending";
      const detail = { ...refusal.detail };
      delete (detail as Record<string, unknown>).binding;
      try {
        await deps.audit("gateway.call", {
          ...record,
          decision: {
            allowed: false,
            held,
            code: refusal.reason,
            message: refusal.message,
            ...(detail.approval ? { approval: detail.approval } : {}),
          },
        });
      } catch {
        // still refused; the audit failure is the server's to report
      }
      return refusalResult(refusal.reason, refusal.message, detail);
    }
  }

  await connectAll();

  return {
    openSession(identity, onEnd) {
      const why = killedWhy(identity);
      if (why !== undefined) throw new GatewayError("killed", why);
      const s: SessionState = {
        id: `gws_${randomBytes(16).toString("base64url")}`,
        identity,
        startedAt: now(),
        ended: undefined,
        onEnd: onEnd ? [onEnd] : [],
      };
      sessions.set(s.id, s);
      deps
        .audit("gateway.session_start", {
          session: s.id,
          agent: identity.agent,
          environment: identity.environment,
          writ: identity.writ?.id,
          sponsor: identity.sponsor,
          transport: identity.transport,
        })
        .catch(() => {});
      return s;
    },
    session: (id) => sessions.get(id),
    endSession(id, why) {
      const s = sessions.get(id);
      if (s) end(s, why);
    },
    async listTools(sessionId) {
      const s = alive(sessionId);
      const out: Tool[] = [];
      for (const k of known.values()) {
        await recheckQuarantined(k);
        if (visible(s, k)) out.push({ ...k.tool, name: `${k.server}${TOOL_SEPARATOR}${k.tool.name}` });
      }
      return out;
    },
    callTool,
    taintedBy: (identity, promptContextId) => taint.lookup(identity, promptContextId, now()),
    onToolsChanged(listener) {
      listeners.push(listener);
    },
    async refreshPins() {
      let any = false;
      for (const k of known.values()) {
        const was = k.quarantined;
        await recheckQuarantined(k);
        any ||= was !== k.quarantined;
      }
      if (any) changed();
    },
    async close() {
      clearInterval(timer);
      for (const s of [...sessions.values()]) end(s, "the gateway is shutting down");
      await scoped.close();
      await Promise.allSettled([...upstreams.values()].map((u) => u.close()));
      upstreams.clear();
    },
  };
}
