/**
 * An in-memory `DownstreamLedger` for the AWS issuer's tests until the store's ledger lands (the
 * real one replaces it at merge). It keeps every record and every transition, and answers `due`
 * as the interface documents: not removed, and expired by `now` or of a revoked writ.
 */
import type { DownstreamLedger, DownstreamRecord } from "../../src/downstream/types.js";

export class MemoryLedger implements DownstreamLedger {
  readonly records = new Map<string, DownstreamRecord>();
  readonly revokedWrits = new Set<string>();

  async intend(r: Omit<DownstreamRecord, "state" | "createdAt">): Promise<DownstreamRecord> {
    if (this.records.has(r.id)) throw new Error(`duplicate record ${r.id}`);
    const rec: DownstreamRecord = { ...r, state: "intended", createdAt: new Date() };
    this.records.set(r.id, rec);
    return rec;
  }

  async created(id: string, locator?: Readonly<Record<string, unknown>>): Promise<void> {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    this.records.set(id, {
      ...r,
      state: "created",
      ...(locator ? { locator: { ...r.locator, ...locator } } : {}),
    });
  }

  async removed(id: string): Promise<void> {
    const r = this.records.get(id);
    if (!r) throw new Error(`no record ${id}`);
    this.records.set(id, { ...r, state: "removed" });
  }

  async due(now: Date): Promise<readonly DownstreamRecord[]> {
    return [...this.records.values()].filter(
      (r) =>
        r.state !== "removed" && (r.expiresAt.getTime() <= now.getTime() || this.revokedWrits.has(r.writ)),
    );
  }

  async ofWrit(writ: string): Promise<readonly DownstreamRecord[]> {
    return [...this.records.values()].filter((r) => r.writ === writ);
  }

  of(kind: string): DownstreamRecord[] {
    return [...this.records.values()].filter((r) => r.kind === kind);
  }
}
