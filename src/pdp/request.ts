/** What the decision point is asked. */
import type { DecisionRequest } from "../core/index.js";

/** What a caller knows beyond the core request: it reaches guardrails as `context`. */
export interface PdpContext {
  /** The change ticket the caller quotes. */
  readonly ticket?: string | undefined;
  /** The writ the caller's token was issued for. */
  readonly writId?: string | undefined;
  /** The session has read from an untrusted source (web, e-mail, tickets). */
  readonly tainted?: boolean | undefined;
  /** The tool call's arguments (JSON). */
  readonly arguments?: Readonly<Record<string, unknown>> | undefined;
  /** The prompt context the call came with, for audit. */
  readonly promptContextId?: string | undefined;
}

export interface PdpRequest extends DecisionRequest {
  readonly context?: PdpContext | undefined;
}
