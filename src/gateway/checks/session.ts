/** Kill: the session is alive and no kill switch stops its agent — checked first, and again last. */
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

export const session: CallCheck = (call, env) => {
  const s = env.sessions.check(call.sessionId);
  if (s instanceof GatewayError) return s;
  call.session = s;
  return undefined;
};

/** A kill engaged while the checks ran still stops the call. */
export const stillAlive: CallCheck = (call, env) => {
  const s = env.sessions.check(call.sessionId);
  return s instanceof GatewayError ? s : undefined;
};
