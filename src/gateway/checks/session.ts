/** Kill: the session is alive and no kill switch stops its agent — checked first, and again last. */
import type { CallCheck } from "./call.js";

export const session: CallCheck = (call, env) => {
  call.session = env.sessions.alive(call.sessionId);
};

/** A kill engaged while the checks ran still stops the call. */
export const stillAlive: CallCheck = (call, env) => {
  env.sessions.alive(call.sessionId);
};
