/**
 * Resources: what the call touches, derived from its arguments by the upstream's and the tool's
 * rules or templates, each checked against the gateway's bounds (`resource.ts`, `bounds.ts`). A
 * tool that declares none touches `-`.
 */
import { NO_RESOURCE } from "../names.js";
import { deriveResources } from "../resource.js";
import { shadowedBounds } from "../shadow.js";
import type { Call, CallCheck } from "./call.js";

function found(call: Call, derived: string[]): void {
  call.resources = derived.length > 0 ? derived : [NO_RESOURCE];
  call.record.resources = call.resources;
}

export const resources: CallCheck = (call, env) => {
  const upstream = env.gw.upstreams.get(call.server)?.resources ?? [];
  const rules = upstream.length === 0 ? call.decl.resources : [...upstream, ...call.decl.resources];
  if (rules.length === 0) return found(call, []);
  const bounds = shadowedBounds(env.bounds, env.gw.bounds?.mode, call.shadow);
  return deriveResources(rules, call.args, bounds).then((derived) => found(call, derived));
};
