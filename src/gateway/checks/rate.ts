/** Rate limits: per agent (`gateway.rateLimit.perAgent`), and per agent and tool. */
import { type GatewayConfig, type GatewayTool, q, type RateLimit } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

/** The buckets a call takes a token from. */
export function rateBuckets(
  gw: GatewayConfig,
  decl: GatewayTool,
  agent: string,
  action: string,
): [string, RateLimit][] {
  const limits: [string, RateLimit][] = [];
  if (gw.perAgent) limits.push([`a\0${agent}`, gw.perAgent]);
  const perTool = decl.rateLimit ?? gw.perTool;
  if (perTool) limits.push([`t\0${agent}\0${action}`, perTool]);
  return limits;
}

export const rateLimits: CallCheck = (call, env) => {
  const agent = call.session.identity.agent;
  const limits = rateBuckets(env.gw, call.decl, agent, call.action);
  if (limits.length === 0) return undefined;
  const r = env.rate.take(limits, env.now().getTime());
  if (r.ok) return undefined;
  return new GatewayError(
    "rate_limited",
    `rate limit of ${r.key.startsWith("a") ? `agent ${q(agent)}` : q(`${call.server}:${call.toolName}`)} reached: retry after ${r.retryAfter} s`,
    { retryAfter: r.retryAfter },
  );
};
