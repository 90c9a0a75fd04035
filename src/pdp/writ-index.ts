/**
 * The decision point's writ index: each agent's active writs, compiled once and indexed
 * (`WritSet`), kept in memory between decisions instead of read and recompiled for every one.
 *
 * Exactness comes from the store's change feed (store/changes.ts):
 *   - an agent's writs are loaded on its first decision (one read; concurrent decisions share it);
 *   - this process's own issuance, spending and revocation apply the moment their statement
 *     returns; everybody's (other servers', the kill switch's, an operator's SQL) arrive as
 *     notifications when they commit: a revocation or a spent use is applied in place, a writ the
 *     index does not know (issued elsewhere) or a change it cannot apply in place drops the agent,
 *     whose next decision reloads;
 *   - a load that a change overtook is not kept, nor joined by decisions that come after the
 *     change (the decisions that asked before use it, as they would any read they raced with);
 *   - expired writs leave by the clock, without a read;
 *   - while the feed is not live (PostgreSQL's listening connection is down) nothing is cached and
 *     every decision reads the store, as before the index existed; when it comes back, the index
 *     starts empty.
 *
 * Bounded: at most `maxAgents` agents are held (the oldest loaded is dropped first); per agent, the
 * runner class's `limits.activeWrits` bounds the writs (enforced at issuance by the broker).
 */
import { type ActiveWrit, type WritChange, WritSet } from "../core/index.js";

export interface WritChangeFeed {
  readonly live: boolean;
  subscribe(listener: (change: WritChange | undefined) => void): () => void;
}

export interface WritIndexOptions {
  /** The agent's active, unexpired, not used-up writs from the store, compiled. */
  readonly load: (agent: string, now: Date) => Promise<readonly ActiveWrit[]>;
  readonly changes: WritChangeFeed;
  readonly clock?: (() => Date) | undefined;
  /** Agents held at most (default 10,000). */
  readonly maxAgents?: number | undefined;
}

/** An agent's writs being read from the store. */
class Load {
  promise!: Promise<WritSet | readonly ActiveWrit[]>;
  /** A change to the agent came while reading: the result may be older than it. */
  stale = false;
}

export class WritIndex {
  readonly #load: WritIndexOptions["load"];
  readonly #changes: WritChangeFeed;
  readonly #clock: () => Date;
  readonly #maxAgents: number;
  readonly #sets = new Map<string, WritSet>();
  readonly #loading = new Map<string, Load>();
  /** Writs this process is storing right now (see `apply`). */
  readonly #issuing = new Set<string>();
  /** Writs revoked or deleted lately, with when (see `#bury`). */
  readonly #graves = new Map<string, number>();
  /** Bumped when everything is forgotten. */
  #generation = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(opts: WritIndexOptions) {
    this.#load = opts.load;
    this.#changes = opts.changes;
    this.#clock = opts.clock ?? (() => new Date());
    this.#maxAgents = opts.maxAgents ?? 10_000;
  }

  /** Agents held now (for tests and metrics). */
  get agents(): number {
    return this.#sets.size;
  }

  /** The writs a decision for `agent` sees: its set, synchronously when held. */
  writsOf(agent: string): WritSet | readonly ActiveWrit[] | Promise<WritSet | readonly ActiveWrit[]> {
    const now = this.#clock();
    // follow the feed from the first decision on (it is live once its LISTEN has run)
    this.#unsubscribe ??= this.#changes.subscribe((change) => this.apply(change));
    if (!this.#changes.live) return this.#load(agent, now);
    const set = this.#sets.get(agent);
    if (set !== undefined) {
      set.prune(now.getTime());
      return set;
    }
    return this.#loadInto(agent, now);
  }

  #loadInto(agent: string, now: Date): Promise<WritSet | readonly ActiveWrit[]> {
    const pending = this.#loading.get(agent);
    if (pending !== undefined) return pending.promise;
    const generation = this.#generation;
    const load = new Load();
    load.promise = this.#load(agent, now)
      .then((writs) => {
        if (load.stale || this.#generation !== generation || !this.#changes.live) return writs;
        const set = new WritSet(agent, writs);
        if (this.#sets.size >= this.#maxAgents) {
          const oldest = this.#sets.keys().next();
          if (!oldest.done) this.#sets.delete(oldest.value);
        }
        this.#sets.set(agent, set);
        return set;
      })
      .finally(() => {
        if (this.#loading.get(agent) === load) this.#loading.delete(agent);
      });
    this.#loading.set(agent, load);
    return load.promise;
  }

  /** Applies one change from the feed; `undefined` forgets everything. */
  apply(change: WritChange | undefined): void {
    if (change === undefined || change.op === "truncate") {
      this.#sets.clear();
      this.#generation++;
      for (const load of this.#loading.values()) load.stale = true;
      this.#loading.clear();
      return;
    }
    const agent = change.agent;
    if (change.op === "issuing") {
      this.#issuing.add(change.id);
      return;
    }
    if (change.op === "abandoned" || change.writ !== undefined) this.#issuing.delete(change.id);
    if (change.op === "abandoned") return;
    // a load under way may have read before this change: not kept, and not joined from now on
    const load = this.#loading.get(agent);
    if (load !== undefined) {
      load.stale = true;
      this.#loading.delete(agent);
    }
    const now = this.#clock().getTime();
    if (change.op === "delete" || change.status === "revoked") this.#bury(change.id, now);
    const set = this.#sets.get(agent);
    if (set === undefined) return;
    const outcome = applyTo(set, change, now, this.#graves);
    // An active writ the set does not hold, issued elsewhere: its grants are not in the change, so
    // the agent is read again. This process's own is added when its statement returns (PGlite
    // notifies before that: `issuing` said it was coming).
    if (outcome === "reload" || (outcome === "unknown" && !this.#issuing.has(change.id))) {
      this.#sets.delete(agent);
    }
  }

  /**
   * Remembers a revoked or deleted writ for a minute, so that the report of its issuance by this
   * process, should it come after (PostgreSQL: the revocation by another server overtook it), does
   * not bring it back.
   */
  #bury(id: string, now: number): void {
    this.#graves.set(id, now);
    if (this.#graves.size > 10_000) {
      for (const [grave, at] of this.#graves) {
        if (now - at < 60_000 && this.#graves.size <= 10_000) break;
        this.#graves.delete(grave);
      }
    }
  }

  /** Stops following the feed and forgets everything. */
  close(): void {
    this.#unsubscribe?.();
    this.#sets.clear();
    this.#generation++;
  }
}

/**
 * Applies a change to an agent's set in place: `done`, `reload` (drop the agent), or `unknown` (an
 * active writ the set does not hold: its grants are not in the change).
 */
function applyTo(
  set: WritSet,
  c: WritChange,
  now: number,
  graves: ReadonlyMap<string, number>,
): "done" | "reload" | "unknown" {
  if (c.op === "delete" || c.status === "revoked") {
    set.delete(c.id);
    return "done";
  }
  const held = set.get(c.id);
  const spent = c.maxUses != null && c.uses !== undefined && c.uses >= c.maxUses;
  if (held === undefined) {
    if (c.writ !== undefined) {
      if (!graves.has(c.id)) set.add(c.writ);
      return "done";
    }
    // a writ not held that cannot count (spent, expired) changes nothing
    const expired = c.expiresAt !== undefined && c.expiresAt <= now;
    return spent || expired ? "done" : "unknown";
  }
  if (
    (c.issuedAt !== undefined && c.issuedAt !== held.issuedAt.getTime()) ||
    (c.expiresAt !== undefined && c.expiresAt !== held.expiresAt.getTime())
  ) {
    return "reload";
  }
  if (c.maxUses != null && c.uses !== undefined) set.setUsesLeft(c.id, c.maxUses - c.uses);
  return "done";
}
