/**
 * The gateway's sessions: who each one is, and how it ends (a kill, the client, the transport, the
 * gateway closing). Ending one audits `gateway.session_end` and tells the transport.
 */
import { randomBytes } from "node:crypto";
import { q } from "../core/index.js";
import { GatewayError } from "./errors.js";
import type { GatewayIdentity, GatewaySession } from "./gateway.js";

export interface SessionState extends GatewaySession {
  ended: string | undefined;
  readonly onEnd: Array<(why: string) => void>;
}

export interface SessionsOptions {
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  readonly now: () => Date;
  /** Why a kill switch stops this identity now, if one does. */
  readonly killedWhy: (id: Pick<GatewayIdentity, "agent" | "environment">) => string | undefined;
}

export class Sessions {
  readonly #live = new Map<string, SessionState>();
  readonly #o: SessionsOptions;

  constructor(o: SessionsOptions) {
    this.#o = o;
  }

  /** Starts a session; refused (`killed`) when a kill switch stops the agent. */
  open(identity: GatewayIdentity, onEnd?: (why: string) => void): SessionState {
    const why = this.#o.killedWhy(identity);
    if (why !== undefined) throw new GatewayError("killed", why);
    const s: SessionState = {
      id: `gws_${randomBytes(16).toString("base64url")}`,
      identity,
      startedAt: this.#o.now(),
      ended: undefined,
      onEnd: onEnd ? [onEnd] : [],
    };
    this.#live.set(s.id, s);
    this.#o
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
  }

  get(id: string): SessionState | undefined {
    return this.#live.get(id);
  }

  /** The live session, or its refusal returned: `session_ended`, or `killed` (which ends it). */
  check(id: string): SessionState | GatewayError {
    const s = this.#live.get(id);
    if (!s) return new GatewayError("session_ended", `session ${q(id)} has ended`);
    const why = this.#o.killedWhy(s.identity);
    if (why !== undefined) {
      this.end(s, why);
      return new GatewayError("killed", why);
    }
    return s;
  }

  /** `check` for callers that want an exception: the live session, or its refusal thrown. */
  alive(id: string): SessionState {
    const s = this.check(id);
    if (s instanceof GatewayError) throw s;
    return s;
  }

  /** Ends every session a kill switch now stops. */
  endKilled(): void {
    for (const s of this.#live.values()) {
      const why = this.#o.killedWhy(s.identity);
      if (why !== undefined) this.end(s, why);
    }
  }

  endAll(why: string): void {
    for (const s of [...this.#live.values()]) this.end(s, why);
  }

  end(s: SessionState, why: string): void {
    if (s.ended !== undefined) return;
    s.ended = why;
    this.#live.delete(s.id);
    this.#o.audit("gateway.session_end", { session: s.id, agent: s.identity.agent, why }).catch(() => {});
    for (const f of s.onEnd) {
      try {
        f(why);
      } catch {
        // the transport's own failure
      }
    }
  }
}
