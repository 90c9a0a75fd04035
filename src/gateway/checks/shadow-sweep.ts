/**
 * After an enforcing refusal (docs/shadow.md): the shadow rules of the checks the call did not
 * reach are asked now, for their records only, so that the call's record lists every shadow rule
 * that would have denied it — while the enforcing refusal, the record's `decision`, decides.
 * Nothing here refuses, holds, spends a use, taints or forwards. A call refused before its tool,
 * prompt context and arguments are known (a dead session, an unknown or quarantined tool, a
 * malformed prompt context or arguments) has nothing to judge and carries no records.
 */
import { isShadow, shadowRuleId } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import { NO_RESOURCE } from "../names.js";
import { deriveResources } from "../resource.js";
import { argumentsShape } from "./arguments.js";
import type { Call, CallCheck, CallEnv } from "./call.js";
import { decide, decision } from "./decision.js";
import { pins } from "./pins.js";
import { promptContext } from "./prompt-context.js";
import { resources } from "./resources.js";
import { constraintRefusal, schema } from "./schema.js";
import { session } from "./session.js";
import { taint, taintRefusal } from "./taint.js";

/** The resources the call touches, its shadow bounds recorded when `record`; undefined when underivable. */
async function derived(call: Call, env: CallEnv, record: boolean): Promise<string[] | undefined> {
  const upstream = env.gw.upstreams.get(call.server)?.resources ?? [];
  const rules = [...upstream, ...call.decl.resources];
  if (rules.length === 0) return [NO_RESOURCE];
  const shadowBounds = record && isShadow(env.gw.bounds?.mode);
  try {
    const out = await deriveResources(rules, call.args, (kind, value, arg) => {
      try {
        env.bounds(kind, value, arg);
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        // enforcing bounds the call did not reach are no shadow rule's to record
        if (shadowBounds) call.shadow.add({ rule: "gateway:bounds", kind: "bounds", ...said(err) });
      }
    });
    return out.length > 0 ? out : [NO_RESOURCE];
  } catch (err) {
    if (err instanceof GatewayError) return undefined;
    throw err;
  }
}

const said = (err: GatewayError) => ({ reason: err.reason, message: err.message });

/**
 * `checks` in their order, `refusedAt` the index of the one that refused: those before it ran to
 * their end, it and those after did not.
 */
export async function sweepShadow(
  call: Call,
  env: CallEnv,
  checks: readonly CallCheck[],
  refusedAt: number,
): Promise<void> {
  const done = (c: CallCheck) => {
    const k = checks.indexOf(c);
    return k >= 0 && k < refusedAt;
  };
  if (![session, pins, promptContext, argumentsShape].every(done)) return;
  const rule = shadowRuleId.tool(call.server, call.toolName);
  if (!done(schema) && isShadow(call.decl.mode)) {
    const broken = constraintRefusal(call.tool, call.args);
    if (broken) call.shadow.add({ rule, kind: "tool", ...said(broken) });
  }
  // refused while deriving: what the shadow bounds said of it is recorded already
  const touched = done(resources)
    ? call.resources
    : await derived(call, env, checks[refusedAt] !== resources);
  if (touched === undefined) return;
  let tainted = call.tainted;
  if (!done(taint)) {
    const id = call.session.identity;
    const at = env.now();
    const by = call.decl.privileged
      ? await env.taint.lookup(id, call.context, at)
      : env.taint.known(id, call.context, at);
    tainted = by !== undefined;
    if (tainted && call.decl.privileged && isShadow(call.decl.mode)) {
      call.shadow.add({ rule, kind: "tool", ...said(taintRefusal(call, by)) });
    }
  }
  if (!done(decision)) {
    const at = env.now();
    for (const r of touched) call.shadow.add(...(decide(call, env, r, at, tainted).shadow ?? []));
  }
}
