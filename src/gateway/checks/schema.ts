/** The arguments match the tool's `inputSchema` and writ.yaml's constraints (both compiled when the tool was seen). */
import { q, shadowRuleId } from "../../core/index.js";
import type { KnownTool } from "../catalog.js";
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

/** The refusal of these arguments by the tool's schema or constraints, if any. */
export function schemaRefusal(k: KnownTool, args: Record<string, unknown>): GatewayError | undefined {
  if (k.check === undefined) return new GatewayError("gateway_error", k.checkError ?? "no schema");
  const wrong = k.check(args);
  if (wrong !== undefined) {
    return new GatewayError(
      "arguments_invalid",
      `the arguments do not match the tool's inputSchema: ${wrong}`,
    );
  }
  return undefined;
}

/** The refusal of these arguments by writ.yaml's `constraints` for the tool, if any. */
export function constraintRefusal(k: KnownTool, args: Record<string, unknown>): GatewayError | undefined {
  for (const [arg, check] of k.constraints) {
    if (args[arg] === undefined) continue;
    const bad = check(args[arg]);
    if (bad !== undefined) {
      return new GatewayError(
        "argument_constraint",
        `argument ${q(arg)} breaks a constraint in writ.yaml: ${bad}`,
      );
    }
  }
  return undefined;
}

export const schema: CallCheck = (call) => {
  const refusal = schemaRefusal(call.tool, call.args);
  if (refusal) return refusal;
  // the tool's own inputSchema always enforces; writ.yaml's constraints follow the tool's mode
  const broken = constraintRefusal(call.tool, call.args);
  if (!broken) return undefined;
  return call.shadow.refuseOr(call.decl.mode, shadowRuleId.tool(call.server, call.toolName), "tool", broken);
};
