/**
 * An in-memory `DownstreamLedger` for the issuers' tests until the store's ledger
 * (src/store/downstream.ts) is on main; it keeps the same contract: `intend` before anything is
 * created downstream, `created` after, `removed` when gone, `due` = not removed and expired or of a
 * revoked writ. Records are frozen copies, so a test sees exactly what an issuer wrote.
 */
import { randomUUID } from "node:crypto";
import type { DownstreamLedger, DownstreamRecord } from "../../src/downstream/types.js";

export interface MemoryLedger extends DownstreamLedger {
  /** Every record, in the order intended. */
  all(): readonly DownstreamRecord[];
  /** Marks a writ revoked: its records become due at once. */
  revokeWrit(writ: string): void;
}

export function memoryLedger(clock: () => Date = () => new Date()): MemoryLedger {
  const records = new Map<string, DownstreamRecord>();
  const revoked = new Set<string>();
  function update(id: string, patch: Partial<DownstreamRecord>): void {
    const r = records.get(id);
    if (!r) throw new Error(`ledger: no record ${id}`);
    records.set(id, Object.freeze({ ...r, ...patch }));
  }
  return {
    async intend(r) {
      const id = r.id || randomUUID();
      if (records.has(id)) throw new Error(`ledger: record ${id} exists`);
      const rec: DownstreamRecord = Object.freeze({ ...r, id, state: "intended", createdAt: clock() });
      records.set(id, rec);
      return rec;
    },
    async created(id, locator) {
      const r = records.get(id);
      if (!r) throw new Error(`ledger: no record ${id}`);
      if (r.state === "removed") throw new Error(`ledger: record ${id} was removed`);
      update(id, { state: "created", ...(locator ? { locator: { ...r.locator, ...locator } } : {}) });
    },
    async removed(id) {
      update(id, { state: "removed" });
    },
    async due(now) {
      return [...records.values()].filter(
        (r) => r.state !== "removed" && (revoked.has(r.writ) || r.expiresAt.getTime() <= now.getTime()),
      );
    },
    async ofWrit(writ) {
      return [...records.values()].filter((r) => r.writ === writ);
    },
    all() {
      return [...records.values()];
    },
    revokeWrit(writ) {
      revoked.add(writ);
    },
  };
}
