/**
 * One hook call judged: the native tool call's needs (derive.ts), each decided by the decision
 * point — the same decision point, writs and ceiling as the gateway's — then taint, then the
 * answer, audited. The first refusal decides; then:
 *
 *   1. any need denied by the decision point → `deny`, with its reason (shown to the model);
 *   2. the session is tainted (an untrusted read earlier, by this agent in this session) and a need
 *      is privileged (a write, a host, a program that is not a pure reader) → `deny`
 *      (`tainted_session`);
 *   3. anything the derivation could not read exactly → `ask` (the human decides), never `allow`;
 *   4. else `allow`.
 *
 * After the tool ran (PostToolUse, AfterTool), a call that read from outside (a web fetch or
 * search, a host from the shell) or a file under `hooks.untrusted` taints the session. Any error
 * is a `deny` (fail closed).
 */
import { createHash } from "node:crypto";
import type { Decision, HooksConfig } from "../core/index.js";
import { parsePathGlob, pathGlobMatches, type Taints } from "../gateway/index.js";
import type { PdpRequest } from "../pdp/index.js";
import { type AgentKind, type Derivation, derive, type NativeCall, type Need } from "./derive.js";

export type HookDecision = "allow" | "deny" | "ask";

export interface Verdict {
  readonly decision: HookDecision;
  /** `allowed`, a decision code (`explicit_deny`, `no_grant` …), `tainted_session`, `ask`, `hook_error`. */
  readonly code: string;
  /** Shown to the model on a deny, to the human on an ask. */
  readonly reason: string;
}

export interface HookIdentity {
  readonly agent: string;
  readonly environment: string;
}

export interface HookEngineDeps {
  decide(req: PdpRequest): Promise<Decision>;
  readonly taints: Taints;
  audit(type: string, data: Record<string, unknown>): Promise<unknown>;
  readonly hooks?: HooksConfig | undefined;
  readonly now?: (() => Date) | undefined;
  /** Resolves `~` in shell commands. */
  readonly home: string;
}

export interface HookEngine {
  judge(identity: HookIdentity, call: NativeCall): Promise<Verdict>;
}

const DEFAULT_TAINT_TTL = 24 * 60 * 60;
const MAX_AUDITED_NEEDS = 200;

function digest(value: unknown): string {
  return `sha256:${createHash("sha256").update(JSON.stringify(value)).digest("hex")}`;
}

export function hookEngine(deps: HookEngineDeps): HookEngine {
  const now = deps.now ?? (() => new Date());
  const untrusted = (deps.hooks?.untrusted ?? []).map((g) => parsePathGlob(g));
  const ttl = deps.hooks?.taintTtlSeconds ?? DEFAULT_TAINT_TTL;
  const action = (kind: AgentKind, tool: string) => `agent:${kind}:${tool}`;

  async function pre(id: HookIdentity, call: NativeCall, d: Derivation, record: Record<string, unknown>) {
    const at = now();
    // the store is asked only where taint decides (a privileged need), as the gateway does
    const taintedBy = d.needs.some((n) => n.privileged)
      ? await deps.taints.lookup(id, call.session, at)
      : deps.taints.known(id, call.session, at);
    record.tainted = taintedBy !== undefined;
    for (const need of d.needs) {
      const decision = await deps.decide({
        agent: id.agent,
        action: action(call.kind, need.tool),
        resource: need.resource,
        environment: id.environment,
        now: at,
        context: { tainted: taintedBy !== undefined, promptContextId: call.session },
      });
      if (!decision.allowed) {
        record.reasons = decision.reasons;
        return verdict("deny", decision.code, `writ: ${decision.message}`);
      }
    }
    const privileged = d.needs.find((n) => n.privileged);
    if (taintedBy !== undefined && privileged !== undefined) {
      return verdict(
        "deny",
        "tainted_session",
        `writ: ${describe(call.kind, privileged)} is privileged and this session read from untrusted source ${JSON.stringify(taintedBy)}`,
      );
    }
    if (d.ask.length > 0) {
      return verdict("ask", "ask", `writ cannot judge this call exactly: ${d.ask.slice(0, 3).join("; ")}`);
    }
    return verdict("allow", "allowed", "writ: allowed");
  }

  async function post(id: HookIdentity, call: NativeCall, d: Derivation, record: Record<string, unknown>) {
    let source: string | undefined;
    if (d.external) source = `${call.kind}:${call.tool}`;
    else {
      const read = d.needs.find(
        (n) => n.tool === "Read" && untrusted.some((g) => pathGlobMatches(g, n.resource)),
      );
      if (read !== undefined) source = read.resource;
    }
    if (source !== undefined) {
      await deps.taints.mark(id, call.session, source, now(), ttl);
      record.taints = source;
    }
    return verdict("allow", "allowed", "writ: recorded");
  }

  return {
    async judge(id, call) {
      const record: Record<string, unknown> = {
        agent: id.agent,
        environment: id.environment,
        kind: call.kind,
        phase: call.phase,
        tool: call.tool,
        session: call.session,
        cwd: call.cwd,
        input: digest(call.input),
      };
      let v: Verdict;
      try {
        const d = await derive(call, deps.home);
        record.needs = d.needs.slice(0, MAX_AUDITED_NEEDS).map((n) => `${n.tool} ${n.resource}`);
        if (d.needs.length > MAX_AUDITED_NEEDS) record.needsOmitted = d.needs.length - MAX_AUDITED_NEEDS;
        if (d.ask.length > 0) record.ask = d.ask.slice(0, 20);
        v = call.phase === "pre" ? await pre(id, call, d, record) : await post(id, call, d, record);
      } catch (err) {
        v = verdict(
          "deny",
          "hook_error",
          `writ could not judge this call: ${(err as Error).message}`.slice(0, 500),
        );
      }
      record.decision = { decision: v.decision, code: v.code, reason: v.reason };
      // no record, no answer but a refusal
      await deps.audit(call.phase === "pre" ? "hook.decision" : "hook.result", record);
      return v;
    },
  };
}

function describe(kind: AgentKind, n: Need): string {
  return `agent:${kind}:${n.tool} on ${JSON.stringify(n.resource)}`;
}

function verdict(decision: HookDecision, code: string, reason: string): Verdict {
  return { decision, code, reason };
}
