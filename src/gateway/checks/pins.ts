/**
 * Pins: the tool exists upstream and its definition is the one pinned (a changed one, or one new on
 * an upstream already pinned, is quarantined until an operator approves it).
 */
import { q } from "../../core/index.js";
import { declOf, type KnownTool } from "../catalog.js";
import { GatewayError } from "../errors.js";
import { TOOL_SEPARATOR } from "../names.js";
import type { CallCheck } from "./call.js";

/** `<upstream>__<tool>` → its parts (empty when the name has no separator). */
export function splitToolName(name: string): { server: string; toolName: string } {
  const sep = name.indexOf(TOOL_SEPARATOR);
  return sep > 0
    ? { server: name.slice(0, sep), toolName: name.slice(sep + TOOL_SEPARATOR.length) }
    : { server: "", toolName: "" };
}

function refuseQuarantined(k: KnownTool): GatewayError | undefined {
  if (!k.quarantined) return undefined;
  const ref = `${k.server}:${k.tool.name}`;
  return new GatewayError(
    "tool_quarantined",
    `${q(ref)} ${k.fresh ? "is new on an upstream already pinned" : "changed since it was pinned"}: quarantined until an operator approves it (\`writ tools approve ${ref}\`)`,
    { hash: k.hash },
  );
}

export const pins: CallCheck = (call, env) => {
  const { server, toolName } = splitToolName(call.name);
  const k = env.catalog.tool(server, toolName);
  if (!k) return new GatewayError("unknown_tool", `no tool ${q(call.name)} behind this gateway`);
  call.server = server;
  call.toolName = toolName;
  call.action = `mcp:${server}:${toolName}`;
  call.tool = k;
  call.decl = declOf(env.gw, server, toolName);
  call.record.tool = `${server}:${toolName}`;
  call.record.action = call.action;
  // a quarantined tool's pin is read again: an operator may have approved it since
  if (k.quarantined) return env.catalog.recheck(k).then(() => refuseQuarantined(k));
  return undefined;
};
