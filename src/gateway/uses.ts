/**
 * Spending a writ's use for a call only the writ allows. One function, so the gateway can move to
 * the broker's own use operation (in process, or its HTTP endpoint with the resource servers'
 * token) without touching the call path.
 */
import type { Store } from "../store/index.js";
import type { SpendUse } from "./gateway.js";

export function storeSpendUse(
  store: Pick<Store, "writs">,
  audit: (type: string, data: Record<string, unknown>) => Promise<unknown>,
  clock: () => Date = () => new Date(),
): SpendUse {
  return async (writId, by) => {
    const r = await store.writs.spendUse(writId, clock());
    await audit("gateway.writ_used", { writ: writId, by, uses: r.uses, usesLeft: r.usesLeft ?? null });
    return { usesLeft: r.usesLeft };
  };
}
