/**
 * Spending a writ's use for a call only the writ allows: the broker's own operation, in process
 * (one conditional UPDATE, so concurrent calls never pass `maxUses`), audited as `broker.writ_used`
 * or `broker.use_refused`.
 */
import { spendWritUse } from "../broker/index.js";
import type { Store } from "../store/index.js";
import type { SpendUse } from "./gateway.js";

export function storeSpendUse(
  store: Pick<Store, "writs">,
  audit: (type: string, data: Record<string, unknown>) => Promise<unknown>,
  clock: () => Date = () => new Date(),
): SpendUse {
  return async (writId, by) => {
    const r = await spendWritUse({ store, audit, clock }, writId, by);
    return { usesLeft: r.usesLeft };
  };
}
