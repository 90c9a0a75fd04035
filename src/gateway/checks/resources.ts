/**
 * Resources: what the call touches, derived from its arguments by the upstream's and the tool's
 * rules or templates, each checked against the gateway's bounds (`resource.ts`, `bounds.ts`). A
 * tool that declares none touches `-`. A refused value (`resource_invalid`, `outside_bounds`) is
 * thrown from inside the derivation, and refused as such by `callTool`.
 */
import { NO_RESOURCE } from "../names.js";
import { deriveResources } from "../resource.js";
import { shadowedBounds } from "../shadow.js";
import type { Call, CallCheck } from "./call.js";

function found(call: Call, derived: string[]): undefined {
  call.resources = derived.length > 0 ? derived : [NO_RESOURCE];
  call.record.resources = call.resources;
  return undefined;
}

export const resources: CallCheck = (call, env) => {
  const upstream = env.gw.upstreams.get(call.server)?.resources ?? [];
  const rules = upstream.length === 0 ? call.decl.resources : [...upstream, ...call.decl.resources];
  if (rules.length === 0) return found(call, []);
  const bounds = shadowedBounds(env.bounds, env.gw.bounds?.mode, call.shadow);
  return deriveResources(rules, call.args, bounds).then((derived) => found(call, derived));
};
