/**
 * The step every issuer takes first for an object it makes for a writ: the ledger's intent, naming
 * the writ (its environment, id and agent), recorded before the object is created so that the
 * reaper finds it after a crash.
 */
import type { DownstreamRecord, DownstreamSystem, WritForIssuer } from "./types.js";

export function writIntent(
  writ: WritForIssuer,
  r: {
    readonly id: string;
    readonly system: DownstreamSystem;
    readonly kind: string;
    readonly locator: Readonly<Record<string, unknown>>;
    /** Default: the writ's expiry. */
    readonly expiresAt?: Date;
  },
): Omit<DownstreamRecord, "state" | "createdAt"> {
  return {
    id: r.id,
    system: r.system,
    environment: writ.environment,
    writ: writ.id,
    agent: writ.agent,
    kind: r.kind,
    locator: r.locator,
    expiresAt: r.expiresAt ?? writ.expiresAt,
  };
}
