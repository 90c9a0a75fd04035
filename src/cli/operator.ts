/**
 * The operator verbs (kill, keys rotate/list, approve, deny, approvals list) act on the store when
 * they can open it, and otherwise on the `writ serve` that holds it: the embedded store is locked
 * by its server, which then takes the same calls over its admin API (`<data>/serve.json` says
 * where, with the token). Either way the verb sees one `Operator` and prints the same output.
 */
import { openAuditLog } from "../audit/index.js";
import {
  approvalService,
  environmentKeys,
  killSwitch,
  type Operator,
  operator,
  remoteOperator,
} from "../broker/index.js";
import { isWritError, type WritConfig } from "../core/index.js";
import { withToolApprovals } from "../gateway/holds.js";
import { ERR_STORE_LOCKED } from "../store/index.js";
import { CliFailure, EXIT } from "./output.js";
import { readServeFile } from "./serve-file.js";
import { type StoreTarget, type WithStoreOptions, withStore } from "./store.js";

export interface OperatorTarget extends StoreTarget {
  readonly clock?: (() => Date) | undefined;
}

export interface WithOperatorOptions extends WithStoreOptions {
  /** Migrate the store first (verbs that write: kill, keys rotate). */
  readonly migrate?: boolean;
}

/** How the verb reached the broker, for its output. */
export type Via = "store" | "server";

export async function withOperator<T>(
  target: OperatorTarget,
  config: WritConfig | undefined,
  opts: WithOperatorOptions,
  fn: (ops: Operator, via: Via) => Promise<T>,
): Promise<T> {
  try {
    return await withStore(target, opts, async (store) => {
      if (opts.migrate) await store.migrate();
      const audit = openAuditLog({ repo: store.audit, clock: target.clock });
      const ops = operator({
        // held tool calls are decided by their tool's approval policy (gateway/holds.ts)
        config: config === undefined ? undefined : withToolApprovals(config),
        kill: killSwitch(store),
        keys: environmentKeys(store, { clock: target.clock }),
        webIdentityKeys: environmentKeys(store, { clock: target.clock, alg: "ES256" }),
        approvals: approvalService(store, { audit }),
        audit: (type, data) => audit.append(type, data),
        clock: target.clock,
      });
      return fn(ops, "store");
    });
  } catch (err) {
    if (!(err instanceof CliFailure) || err.code !== ERR_STORE_LOCKED) throw err;
    const running = await readServeFile(target.data);
    if (running === undefined) throw err;
    try {
      return await fn(remoteOperator(running.url, running.adminToken), "server");
    } catch (remote) {
      if (isWritError(remote) && remote.code.startsWith("ERR_ADMIN")) {
        throw new CliFailure(remote.code, `${err.message}; and ${remote.message}`, EXIT.failure);
      }
      throw opts.mapError ? opts.mapError(remote) : remote;
    }
  }
}
