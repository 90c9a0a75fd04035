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
import { lstat } from "node:fs/promises";
import type { Decision, HooksConfig, RegionRequest, RegionView } from "../core/index.js";
// the gateway's files, not its face: the offline hook loads this engine without the MCP proxy
import { parsePathGlob, pathGlobMatches } from "../gateway/bounds.js";
import type { Taints } from "../gateway/index.js";
import type { PdpRequest } from "../pdp/index.js";
import {
  type AgentKind,
  type Derivation,
  derive,
  type NativeCall,
  type Need,
  type Region,
} from "./derive.js";

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
  /**
   * What the rules say of a region (a file pattern, a folder past the walk's bound): the decision
   * point's `region`. Without it every region is an `ask`.
   */
  region?(req: RegionRequest): Promise<RegionView>;
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
    const taintedBy =
      d.needs.some((n) => n.privileged) || d.regions.some((r) => r.privileged)
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
    const asks = [...d.ask];
    for (const r of d.regions) {
      const refused = await judgeRegion(id, call, r, at, asks);
      if (refused !== undefined) {
        record.reasons = refused.reasons;
        return refused.verdict;
      }
    }
    const privileged: Need | undefined =
      d.needs.find((n) => n.privileged) ??
      d.regions
        .filter((r) => r.privileged)
        .map((r) => ({ tool: r.tool, resource: r.glob, privileged: true }))[0];
    if (taintedBy !== undefined && privileged !== undefined) {
      return verdict(
        "deny",
        "tainted_session",
        `writ: ${describe(call.kind, privileged)} is privileged and this session read from untrusted source ${JSON.stringify(taintedBy)}`,
      );
    }
    if (asks.length > 0) {
      record.ask = asks.slice(0, 20);
      return verdict("ask", "ask", `writ cannot judge this call exactly: ${asks.slice(0, 3).join("; ")}`);
    }
    return verdict("allow", "allowed", "writ: allowed");
  }

  /**
   * A region on the rules: denied when a deny holds all of it, or names one path in it that exists;
   * allowed when a grant and the ceiling hold all of it, no deny can reach into it and no link can
   * lead out of it; else an `ask` (pushed on `asks`).
   */
  async function judgeRegion(
    id: HookIdentity,
    call: NativeCall,
    r: Region,
    at: Date,
    asks: string[],
  ): Promise<{ verdict: Verdict; reasons: unknown } | undefined> {
    if (deps.region === undefined) {
      asks.push(r.why);
      return undefined;
    }
    const view = await deps.region({
      agent: id.agent,
      action: action(call.kind, r.tool),
      region: r.glob,
      environment: id.environment,
      now: at,
    });
    // denies only of what the tool never shows (git's own `.git`) do not meet it
    const denies = view.denies.filter((d) => r.hidden === undefined || !d.alternative.startsWith(r.hidden));
    for (const d of denies) {
      // a literal denied path meets the region: denied if it is there; not there, a history may
      // still hold it, and the human decides
      const exists =
        d.literal &&
        (await lstat(d.alternative).then(
          () => true,
          () => false,
        ));
      if (d.literal && !exists && !r.onDisk) {
        asks.push(
          `${r.why}, and it may hold ${JSON.stringify(d.alternative)}, denied (${d.rule.action} on ${d.rule.resource})`,
        );
      }
      if (d.whole || exists) {
        const what = d.whole ? "every path it reaches" : JSON.stringify(d.alternative);
        const where =
          d.source === "ceiling"
            ? `the ${JSON.stringify(d.owner)} ceiling`
            : `agent ${JSON.stringify(d.owner)}`;
        return {
          reasons: [{ kind: "deny", source: d.source, owner: d.owner, rule: d.rule }],
          verdict: verdict(
            "deny",
            "explicit_deny",
            `writ: ${describe(call.kind, { tool: r.tool, resource: r.glob, privileged: r.privileged })} reaches ${what}, denied by ${where} (${d.rule.action} on ${d.rule.resource})`,
          ),
        };
      }
    }
    const reach = denies.find((d) => !d.literal);
    if (reach !== undefined) {
      asks.push(
        `${r.why}, and a path below it may be denied (${reach.rule.action} on ${reach.rule.resource})`,
      );
    } else if (!view.granted) asks.push(`${r.why}, and no grant holds all of it`);
    else if (r.follows) asks.push(`${r.why}, and a link below it may lead anywhere`);
    return undefined;
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
        if (d.regions.length > 0) record.regions = d.regions.slice(0, 20).map((r) => `${r.tool} ${r.glob}`);
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
