/**
 * The Agents and Maturity pages' read of the store (`readOperationalState`), kept in process and
 * refreshed in the background, as `/metrics` keeps its store figures: a page older than `maxAgeMs`
 * is answered from the last read while a new one runs (one at a time); past six times that age, or
 * on the first load, the page waits for a fresh read. Moving every live writ and finding out of
 * the store takes longer than a page may (docs/console.md); the pages say how old their data is.
 */
import type { OperationalState } from "../operate/index.js";

export interface OperationalCache {
  /** The state to show at `now`: fresh enough by the rules above. */
  get(now: Date): Promise<OperationalState>;
}

export function operationalCache(
  read: (now: Date) => Promise<OperationalState>,
  maxAgeMs = 10_000,
): OperationalCache {
  let cached: OperationalState | undefined;
  let reading: Promise<OperationalState> | undefined;
  const refresh = (now: Date): Promise<OperationalState> => {
    if (reading !== undefined) return reading;
    const r = read(now).then(
      (s) => {
        if (cached === undefined || s.at.getTime() >= cached.at.getTime()) cached = s;
        reading = undefined;
        return s;
      },
      (err: unknown) => {
        reading = undefined;
        throw err;
      },
    );
    reading = r;
    return r;
  };
  return {
    async get(now) {
      const age = cached === undefined ? Number.POSITIVE_INFINITY : now.getTime() - cached.at.getTime();
      if (cached === undefined || maxAgeMs === 0 || age > maxAgeMs * 6 || age < 0) return refresh(now);
      // a failed background read is retried by the next load, which waits once the data is too old
      if (age > maxAgeMs) refresh(now).catch(() => {});
      return cached;
    },
  };
}
