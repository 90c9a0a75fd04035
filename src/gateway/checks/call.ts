/**
 * One `tools/call` as the checks see it: what the agent sent, and what each check learnt for the
 * ones after it. A check is a function of the call and the gateway's state; it sets what it found
 * on the call (and on the audit record), returns its refusal (a `GatewayError`) to refuse, and
 * returns a promise only when it must wait (so a call whose checks need no I/O waits for nothing
 * but the upstream). What it throws is a failure, not a refusal: the call is refused fail-closed.
 */
import type { GatewayConfig, GatewayTool } from "../../core/index.js";
import type { KnownTool, ToolCatalog } from "../catalog.js";
import type { ScopedUpstreams } from "../credentials.js";
import type { GatewayError } from "../errors.js";
import type { CallContext, GatewayDeps } from "../gateway.js";
import type { RateLimiter } from "../rate.js";
import type { BoundsCheck } from "../resource.js";
import type { SessionState, Sessions } from "../sessions.js";
import { ShadowSink } from "../shadow.js";
import type { Taints } from "../taint.js";
import type { UpstreamConnection } from "../upstreams.js";

export interface Call {
  readonly sessionId: string;
  /** The exposed name, `<upstream>__<tool>`. */
  readonly name: string;
  /** The arguments as sent. */
  readonly input: unknown;
  readonly ctx: CallContext;
  /** The audit record, filled as the checks go. */
  readonly record: Record<string, unknown>;
  /** Set by `session`. */
  session: SessionState;
  /** What rules in shadow mode would have refused (docs/shadow.md), on the record as `shadow`. */
  readonly shadow: ShadowSink;
  /** Set by `pins`: the upstream, the tool there, its action `mcp:<server>:<tool>`. */
  server: string;
  toolName: string;
  action: string;
  tool: KnownTool;
  decl: GatewayTool;
  /** Set by `promptContext`: the prompt-context id, when the call names one. */
  context: string | undefined;
  /** Set by `argumentsShape`. */
  args: Record<string, unknown>;
  /** Set by `resources`. */
  resources: string[];
  /** Set by `taint`. */
  tainted: boolean;
  held: "irreversible" | "tainted" | undefined;
  /** Set by `decision`: when it was decided, and whether only the writ allowed it. */
  at: Date;
  viaWritOnly: boolean;
  /** Set by `credentials` (a writ's own connection) or `connection`. */
  conn: UpstreamConnection | undefined;
}

/** The gateway's state the checks read. */
export interface CallEnv {
  readonly deps: GatewayDeps;
  readonly gw: GatewayConfig;
  readonly bounds: BoundsCheck;
  readonly now: () => Date;
  readonly sessions: Sessions;
  readonly catalog: ToolCatalog;
  readonly rate: RateLimiter;
  readonly taint: Taints;
  readonly scoped: ScopedUpstreams;
}

/** A check's answer: its refusal, or undefined when the call passes it. */
export type CheckOutcome = GatewayError | undefined;

/** One check: returns its refusal (undefined when the call passes); a promise only when it waits. */
export type CallCheck = (call: Call, env: CallEnv) => CheckOutcome | Promise<CheckOutcome>;

/** A call before any check: what later checks set is filled in as they run, in order. */
export function newCall(
  sessionId: string,
  name: string,
  input: unknown,
  ctx: CallContext,
  record: Record<string, unknown>,
): Call {
  return {
    sessionId,
    name,
    input,
    ctx,
    record,
    shadow: new ShadowSink(record),
    session: undefined as unknown as SessionState,
    server: "",
    toolName: "",
    action: "",
    tool: undefined as unknown as KnownTool,
    decl: undefined as unknown as GatewayTool,
    context: undefined,
    args: {},
    resources: [],
    tainted: false,
    held: undefined,
    at: undefined as unknown as Date,
    viaWritOnly: false,
    conn: undefined,
  };
}
