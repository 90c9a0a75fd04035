/**
 * What the store says about agents, read once for the inventory and the maturity check (the reads
 * are the store's, `store/operational-state.ts`; the judging is done by pure functions over them,
 * `inventory.ts` and `maturity.ts`, so the console and the CLI answer the same).
 */
import type { OperationalState, OperationalStateOptions, Store } from "../store/index.js";

export type {
  ActivityBounds,
  ActivityScan,
  LiveDownstream,
  LiveWrit,
  OperationalState,
  StoredFindingSummary,
  ToolPinSummary,
} from "../store/index.js";
export { ACTIVITY_STEP, ACTIVITY_TYPES } from "../store/index.js";

/** Reads the state at `now` (see `OperationalStateReader.read`). */
export function readOperationalState(
  store: Pick<Store, "operationalState">,
  opts: OperationalStateOptions,
): Promise<OperationalState> {
  return store.operationalState.read(opts);
}
