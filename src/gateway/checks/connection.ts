/** The connection the call goes through: the writ's own (per-writ credentials), else the shared one. */
import { q } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

export const connection: CallCheck = (call, env) => {
  const shared = env.gw.upstreams.get(call.server)?.credentials
    ? undefined
    : env.catalog.upstream(call.server);
  call.conn ??= shared;
  if (call.conn) return undefined;
  return new GatewayError("upstream_unavailable", `upstream ${q(call.server)} is not connected`);
};
