/**
 * Repeated denials slow an agent down; they never wear writ down. After a denial the agent is
 * blocked for a while, and every request inside the block — however it is phrased, for whatever
 * playbook — is answered `429` with `Retry-After` and counts as another denial, so the block
 * doubles: 1 s, 2 s, 4 s … up to 15 minutes. The count is per agent and environment, and starts
 * over only after an hour without a denial. A success does not reset it.
 *
 * The counter lives in the store (`denial_counters`), so several `writ serve` processes share it;
 * each update is one transaction holding the row.
 */
import type { DenialCounter, Store } from "../store/index.js";

export interface BackoffOptions {
  /** Longest block, seconds (default 900). */
  readonly maxSeconds?: number;
  /** Quiet time after which the count starts over, seconds (default 3600). */
  readonly quietSeconds?: number;
  /**
   * True when this process is the store's only user (the embedded store): blocks are then also
   * kept in memory and `check` answers from there, exactly, since only `record` can start one.
   */
  readonly exclusive?: boolean;
}

export interface Blocked {
  /** Whole seconds until the block ends: the `Retry-After` value. */
  readonly retryAfter: number;
  readonly count: number;
}

export interface DenialBackoff {
  /** The block in force now, if any. */
  check(agent: string, environment: string, now: Date): Promise<Blocked | undefined>;
  /** Counts a denial (or a request refused while blocked) and returns the block it starts. */
  record(agent: string, environment: string, now: Date): Promise<Blocked>;
}

/** The block after the `count`-th denial in a row. */
export function blockSeconds(count: number, maxSeconds = 900): number {
  return Math.min(2 ** Math.max(0, count - 1), maxSeconds);
}

export function denialBackoff(store: Pick<Store, "denials">, opts: BackoffOptions = {}): DenialBackoff {
  const maxSeconds = opts.maxSeconds ?? 900;
  const quietMs = (opts.quietSeconds ?? 3600) * 1000;
  const counters = store.denials;
  // agent + NUL + environment → blocked until (ms; 0 for none), when exclusive
  const known = new Map<string, { until: number; count: number }>();
  const keyOf = (agent: string, environment: string) => `${agent}\u0000${environment}`;
  const answer = (until: number, count: number, now: Date): Blocked | undefined => {
    const left = until - now.getTime();
    return left > 0 ? { retryAfter: Math.ceil(left / 1000), count } : undefined;
  };
  /** The counter after one more denial at `now`: a quiet hour starts the count over; blocks only grow. */
  const next = (row: DenialCounter, now: Date): DenialCounter => {
    const quiet = now.getTime() - row.lastDeniedAt.getTime() > quietMs;
    const count = quiet ? 1 : row.count + 1;
    const previous = row.blockedUntil?.getTime() ?? 0;
    const until = Math.max(previous, now.getTime() + blockSeconds(count, maxSeconds) * 1000);
    return { count, lastDeniedAt: now, blockedUntil: new Date(until) };
  };

  return {
    async check(agent, environment, now) {
      const memo = opts.exclusive ? known.get(keyOf(agent, environment)) : undefined;
      if (memo !== undefined) return answer(memo.until, memo.count, now);
      const row = await counters.read(agent, environment);
      const until = row?.blockedUntil?.getTime() ?? 0;
      if (opts.exclusive) known.set(keyOf(agent, environment), { until, count: row?.count ?? 0 });
      return answer(until, row?.count ?? 0, now);
    },

    async record(agent, environment, now) {
      known.delete(keyOf(agent, environment));
      const row = await counters.bump(agent, environment, now, (current) => next(current, now));
      // a failed record leaves no memory, so the next check reads
      known.delete(keyOf(agent, environment));
      const until = row.blockedUntil?.getTime() ?? now.getTime();
      return { retryAfter: Math.ceil((until - now.getTime()) / 1000), count: row.count };
    },
  };
}
