/**
 * One agent's issuances in this process, in batches that share one hold of the store's issuance
 * lock (`writs.serialiseIssuance`: nothing on the embedded store, which one process holds; an
 * advisory lock on PostgreSQL, so that no other server issues for the agent meanwhile).
 *
 * The runner classes' `limits` are a count, a check and a write. Run one issuance at a time per
 * agent, the count is exact, but then an agent's concurrent issuances cannot share a commit: each
 * waits for the one before it to be durable. Here they run together, and stay exact:
 *
 *   - a batch starts when the one before it has ended (every writ of it stored or given up), and
 *     holds the store's lock until its last issuance has ended;
 *   - its counts are read from the store once, under that lock, by the first issuance that asks:
 *     every writ of this agent stored before is in them (no other process can store one while the
 *     lock is held, and no earlier batch of this process is still running);
 *   - every issuance of the batch that passed the check holds a place (`reserve`) that counts
 *     for the rest of the batch: the writ stored is in no count the batch read, so the place is
 *     kept, and given back only when the writ was certainly not stored (a refusal after the check).
 *     A failure that leaves it unknown keeps it: the batch then counts one writ too many, never
 *     one too few.
 *
 * A batch takes new issuances until one of its own has ended (or it holds `MAX_BATCH`), so a busy
 * agent never keeps the lock from another server for longer than about two issuances. Later ones
 * wait for the next batch. Counts read once for the batch may hold writs that expired or were
 * revoked meanwhile: too many, never too few.
 */
import type { WritLoad, WritLoadCaps } from "../../store/index.js";
import type { BrokerDeps } from "../oauth.js";

/** Issuances a batch takes at most. */
export const MAX_BATCH = 64;

export interface IssuanceSlot {
  /**
   * Checks against the agent's counts at `now`, with every place this batch holds added (the
   * store's counts are read once a batch): `check` gets them, and when `holds` says its result
   * issues a writ, a place is held for it at once — no other check of the batch comes between —
   * until the batch ends, or sooner when the issuance answers with a refusal (its writ certainly
   * not stored).
   */
  checked<R>(
    now: Date,
    since: Date,
    caps: WritLoadCaps,
    check: (load: WritLoad) => R,
    holds: (result: R) => boolean,
  ): Promise<R>;
}

interface Batch {
  members: number;
  /** Takes no more issuances (one of its own has ended, or it is full). */
  closed: boolean;
  /** Places held: writs stored or on their way, by this batch's issuances. */
  reserved: number;
  base: Promise<WritLoad> | undefined;
  /** Settles once the store's lock is held (rejects when it could not be taken). */
  readonly ready: Promise<void>;
  /** Called when its last issuance has ended: the lock is released. */
  end(): void;
  /** Settles once the lock is released. */
  readonly ended: Promise<void>;
}

const batches = new WeakMap<BrokerDeps, Map<string, Batch>>();

/**
 * Places held in this process per agent whose writs are not yet stored nor given up, over every
 * batch still running — a closed batch may still be storing while the next one waits for the lock.
 */
const unsettled = new WeakMap<BrokerDeps, Map<string, number>>();

function addUnsettled(deps: BrokerDeps, agent: string, n: number): void {
  let map = unsettled.get(deps);
  if (map === undefined) {
    map = new Map();
    unsettled.set(deps, map);
  }
  const next = (map.get(agent) ?? 0) + n;
  if (next === 0) map.delete(agent);
  else map.set(agent, next);
}

function open(deps: BrokerDeps, agent: string, before: Batch | undefined): Batch {
  let lockHeld!: () => void;
  let failed!: (e: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    lockHeld = resolve;
    failed = reject;
  });
  // members await `ready`; a rejection nobody awaits yet must not be reported as unhandled
  ready.catch(() => {});
  let end!: () => void;
  const allEnded = new Promise<void>((resolve) => {
    end = resolve;
  });
  const held = (before?.ended ?? Promise.resolve()).then(() =>
    deps.store.writs.serialiseIssuance(agent, () => {
      lockHeld();
      return allEnded;
    }),
  );
  held.catch(failed);
  return {
    members: 0,
    closed: false,
    reserved: 0,
    base: undefined,
    ready,
    end,
    ended: held.then(
      () => {},
      () => {},
    ),
  };
}

/** One issuance's slot in `batch`, and the places it holds (settled when the issuance ends). */
function slotOf(deps: BrokerDeps, agent: string, batch: Batch) {
  let held = 0;
  const slot: IssuanceSlot = {
    async checked(now, since, caps, check, holds) {
      batch.base ??= (async () => (deps.writLoad ?? deps.store.writs.load)(agent, now, since, caps))();
      const base = await batch.base;
      // from here to the place held, synchronous: every check of the batch sees the places before it
      const result = check({
        active: base.active + batch.reserved,
        issuedSince: base.issuedSince + batch.reserved,
      });
      if (holds(result)) {
        held++;
        batch.reserved++;
        addUnsettled(deps, agent, 1);
      }
      return result;
    },
  };
  /** `refused`: the issuance answered with a refusal, so no writ of it was stored. */
  const settle = (refused: boolean) => {
    if (held > 0) addUnsettled(deps, agent, -held);
    if (refused) batch.reserved -= held;
    held = 0;
  };
  return { slot, settle };
}

/**
 * Runs `fn` for one issuance of `agent`, in the batch open now or the next one (see above); `fn`
 * counts, checks and reserves through the slot it is given, and stores the writ. Its places are
 * given back when it answers with a refusal (`ok: false`); kept when it issued, or failed.
 */
export async function issuing<T extends { readonly ok: boolean }>(
  deps: BrokerDeps,
  agent: string,
  fn: (slot: IssuanceSlot) => Promise<T>,
): Promise<T> {
  let map = batches.get(deps);
  if (map === undefined) {
    map = new Map();
    batches.set(deps, map);
  }
  let batch = map.get(agent);
  if (batch === undefined || batch.closed) {
    batch = open(deps, agent, batch);
    map.set(agent, batch);
  }
  batch.members++;
  if (batch.members >= MAX_BATCH) batch.closed = true;
  let refused = false;
  const { slot, settle } = slotOf(deps, agent, batch);
  try {
    await batch.ready;
    const answer = await fn(slot);
    refused = !answer.ok;
    return answer;
  } finally {
    settle(refused);
    batch.closed = true;
    if (--batch.members === 0) {
      batch.end();
      if (map.get(agent) === batch) map.delete(agent);
    }
  }
}

/**
 * Places held in this process for `agent` whose writs are not yet stored: what a count outside a
 * batch (a request's first check, before it waits for approval) adds to the store's.
 */
export function unsettledOf(deps: BrokerDeps, agent: string): number {
  return unsettled.get(deps)?.get(agent) ?? 0;
}
