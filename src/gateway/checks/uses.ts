/** Uses: a call only the writ allows spends one of its uses (the store's conditional update). */
import { isWritError } from "../../core/index.js";
import { GatewayError, type GatewayReason } from "../errors.js";
import type { CallCheck } from "./call.js";

const USE_REFUSALS: Readonly<Record<string, GatewayReason>> = {
  ERR_WRIT_EXHAUSTED: "writ_exhausted",
  ERR_WRIT_REVOKED: "writ_revoked",
  ERR_WRIT_EXPIRED: "writ_expired",
  ERR_WRIT_NOT_FOUND: "writ_not_found",
  ERR_WRIT_NOT_YET_VALID: "writ_not_yet_valid",
};

export const uses: CallCheck = (call, env) => {
  const writ = call.session.identity.writ;
  if (!call.viaWritOnly || writ === undefined) return undefined;
  return env.deps.spendUse(writ.id, "gateway").then(
    (used) => {
      call.record.usesLeft = used.usesLeft;
      return undefined;
    },
    (err: unknown) => {
      // the store's refusals of the use are the call's; anything else it throws is a failure
      const reason = isWritError(err) ? USE_REFUSALS[err.code] : undefined;
      if (reason === undefined) throw err;
      return new GatewayError(reason, (err as Error).message);
    },
  );
};
