/**
 * The counts the runner classes' `limits` check at every issuance — an agent's active writs, and
 * the writs it was issued in the last minute — kept in memory, exactly, for a store this process
 * alone writes to (the embedded one, held under a lock), instead of counted by a query per writ.
 *
 * Per agent, on its first count: its active writs (id, expiry) and its recent issuance (id, time)
 * are read from the store once; from then on the store's change feed (changes.ts: this process's
 * own writes at once, everybody's as notifications) keeps them:
 *   - an inserted writ is one more issuance, and one more active writ while it is active, unexpired
 *     and not used up;
 *   - a revoked or used-up writ stops being active (and never comes back: a late report of it as
 *     active is ignored); it still counts as issued;
 *   - a deleted writ counts for neither;
 *   - expiry is the clock's: a count at `now` leaves out writs expired by then.
 * Changes that arrive while an agent is being read are applied on top of what was read (each is
 * idempotent, and a writ only ever moves towards revoked, used up, expired), so a busy agent is
 * never read twice. While the feed is not live (or after it lost changes) nothing is kept and
 * every count is the store's query.
 *
 * What is kept is bounded: writs expired or issued more than `marginMs` before the latest count
 * are dropped (a count asking about earlier times, a clock gone backwards, goes to the store), and
 * at most `maxAgents` agents are held (the oldest read is dropped first).
 */
import type { Kysely } from "kysely";
import type { WritChange, WritChanges } from "./changes.js";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";
import type { WritLoad, WritLoadCaps, WritRepository } from "./writs.js";

export interface WritLoadCounter {
  /** As `WritRepository.load`; synchronous when the agent's counts are held. */
  load(agent: string, now: Date, since: Date, caps?: WritLoadCaps): WritLoad | Promise<WritLoad>;
  /** Agents held now (for tests and metrics). */
  readonly agents: number;
  /** Stops following the feed and forgets everything. */
  close(): void;
}

export interface WritLoadCounterOptions {
  readonly db: Kysely<Database>;
  /** The store's own counting query: what answers whenever memory cannot. */
  readonly writs: Pick<WritRepository, "load">;
  readonly changes: WritChanges;
  /** Agents held at most (default 10,000). */
  readonly maxAgents?: number | undefined;
  /** How far before the latest count a count may still ask about (default 60 s). */
  readonly marginMs?: number | undefined;
}

/** Times (epoch ms) with the writ each belongs to, in ascending order; dropped from the front. */
class Timeline {
  #items: { t: number; id: string }[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** How many held times are below `t` (`inclusive`: at or below). */
  #rank(t: number, inclusive: boolean): number {
    let lo = this.#head;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#items[mid]!.t;
      if (v < t || (inclusive && v === t)) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.#head;
  }

  /** Held times after `t` (`inclusive`: at or after). */
  countFrom(t: number, inclusive: boolean): number {
    return this.size - this.#rank(t, !inclusive);
  }

  add(t: number, id: string): void {
    const items = this.#items;
    // times arrive in order nearly always: start from the end
    let i = items.length;
    while (i > this.#head && items[i - 1]!.t > t) i--;
    items.splice(i, 0, { t, id });
  }

  remove(t: number, id: string): void {
    const items = this.#items;
    for (let i = this.#head + this.#rank(t, false); i < items.length && items[i]!.t === t; i++) {
      if (items[i]!.id === id) {
        items.splice(i, 1);
        return;
      }
    }
  }

  /** Drops the times at or below `t`; calls `dropped` with each writ. */
  dropThrough(t: number, dropped: (id: string) => void): void {
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.t <= t) dropped(items[this.#head++]!.id);
    if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** One agent's counts. */
class AgentLoad {
  /** Active writs by id → expiry. */
  readonly active = new Map<string, number>();
  readonly expiries = new Timeline();
  /** Recently issued writs by id → issuance time. */
  readonly issued = new Map<string, number>();
  readonly issuance = new Timeline();
  /** Writs revoked, used up or deleted: never active again (id → when it may be forgotten). */
  readonly ended = new Map<string, number>();
  /** Counts are exact for `now` after this (expiry) and `since` at or after this (issuance). */
  activeFrom: number;
  issuedFrom: number;

  constructor(activeFrom: number, issuedFrom: number) {
    this.activeFrom = activeFrom;
    this.issuedFrom = issuedFrom;
  }

  addActive(id: string, expiresAt: number): void {
    if (this.active.has(id) || this.ended.has(id) || expiresAt <= this.activeFrom) return;
    this.active.set(id, expiresAt);
    this.expiries.add(expiresAt, id);
  }

  end(id: string, until: number): void {
    const expiresAt = this.active.get(id);
    if (expiresAt !== undefined) {
      this.active.delete(id);
      this.expiries.remove(expiresAt, id);
    }
    if (until > this.activeFrom) this.ended.set(id, until);
  }

  addIssued(id: string, issuedAt: number): void {
    if (this.issued.has(id) || issuedAt < this.issuedFrom) return;
    this.issued.set(id, issuedAt);
    this.issuance.add(issuedAt, id);
  }

  removeIssued(id: string): void {
    const issuedAt = this.issued.get(id);
    if (issuedAt === undefined) return;
    this.issued.delete(id);
    this.issuance.remove(issuedAt, id);
  }

  apply(c: WritChange, now: number): void {
    if (c.op === "delete") {
      this.end(c.id, Math.max(c.expiresAt ?? 0, now + 60_000));
      this.removeIssued(c.id);
      return;
    }
    if (c.op === "insert" && c.issuedAt !== undefined) this.addIssued(c.id, c.issuedAt);
    const spent = c.maxUses != null && c.uses !== undefined && c.uses >= c.maxUses;
    if (c.status === "revoked" || spent) {
      this.end(c.id, Math.max(c.expiresAt ?? 0, now + 60_000));
    } else if (c.status === "active" && c.expiresAt !== undefined) {
      this.addActive(c.id, c.expiresAt);
    }
  }

  /** Moves the horizons up to `margin` before this count, dropping what falls behind them. */
  advance(now: number, since: number, margin: number): void {
    if (now - margin > this.activeFrom) {
      this.activeFrom = now - margin;
      this.expiries.dropThrough(this.activeFrom, (id) => this.active.delete(id));
      if (this.ended.size > 0) {
        for (const [id, until] of this.ended) if (until <= this.activeFrom) this.ended.delete(id);
      }
    }
    if (since - margin > this.issuedFrom) {
      this.issuedFrom = since - margin;
      this.issuance.dropThrough(this.issuedFrom - 1, (id) => this.issued.delete(id));
    }
  }
}

/** An agent's counts being read from the store, and the changes that arrived meanwhile. */
class Seed {
  promise!: Promise<AgentLoad | undefined>;
  readonly pending: WritChange[] = [];
}

export function writLoadCounter(opts: WritLoadCounterOptions): WritLoadCounter {
  const { db, writs, changes } = opts;
  const maxAgents = opts.maxAgents ?? 10_000;
  const margin = opts.marginMs ?? 60_000;
  const held = new Map<string, AgentLoad>();
  const seeding = new Map<string, Seed>();
  let generation = 0;

  const forgetAll = () => {
    held.clear();
    seeding.clear();
    generation++;
  };

  const apply = (change: WritChange | undefined) => {
    if (change === undefined || change.op === "truncate") {
      forgetAll();
      return;
    }
    if (change.op === "issuing" || change.op === "abandoned") return;
    const now = Date.now();
    held.get(change.agent)?.apply(change, now);
    seeding.get(change.agent)?.pending.push(change);
  };

  /** Reads an agent's active writs and recent issuance, then applies what changed meanwhile. */
  const seed = (agent: string, now: number, since: number): Promise<AgentLoad | undefined> => {
    const pending = seeding.get(agent);
    if (pending !== undefined) return pending.promise;
    const s = new Seed();
    const at = generation;
    s.promise = guard("count writs", async () => {
      const activeFrom = now - margin;
      const issuedFrom = since - margin;
      // two reads, one after the other: what changes between them (or after) is in `pending`
      const active = await db
        .selectFrom("writs")
        .select(["id", "expires_at"])
        .where("agent", "=", agent)
        .where("status", "=", "active")
        .where("expires_at", ">", new Date(activeFrom))
        .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]))
        .execute();
      const recent = await db
        .selectFrom("writs")
        .select(["id", "issued_at"])
        .where("agent", "=", agent)
        .where("issued_at", ">=", new Date(issuedFrom))
        .execute();
      const load = new AgentLoad(activeFrom, issuedFrom);
      for (const r of recent) load.addIssued(r.id, new Date(r.issued_at).getTime());
      for (const r of active) load.addActive(r.id, new Date(r.expires_at).getTime());
      const t = Date.now();
      for (const change of s.pending) load.apply(change, t);
      if (at !== generation || !changes.live || seeding.get(agent) !== s) return undefined;
      if (held.size >= maxAgents) {
        const oldest = held.keys().next();
        if (!oldest.done) held.delete(oldest.value);
      }
      held.set(agent, load);
      return load;
    }).finally(() => {
      if (seeding.get(agent) === s) seeding.delete(agent);
    });
    seeding.set(agent, s);
    return s.promise;
  };

  const count = (load: AgentLoad, now: number, since: number, caps: WritLoadCaps): WritLoad => {
    load.advance(now, since, margin);
    const active = load.expiries.countFrom(now, false);
    const issuedSince = load.issuance.countFrom(since, true);
    return {
      active: caps.active === undefined ? active : Math.min(active, caps.active),
      issuedSince: caps.issued === undefined ? issuedSince : Math.min(issuedSince, caps.issued),
    };
  };

  /** The held counts answer for these times: neither is before what is kept. */
  const answers = (load: AgentLoad, now: number, since: number) =>
    now >= load.activeFrom && since >= load.issuedFrom;

  // follow the feed from now on (it is live once its LISTEN has run)
  const unsubscribe = changes.subscribe(apply);

  return {
    load(agent, nowDate, sinceDate, caps = {}) {
      const now = nowDate.getTime();
      const since = sinceDate.getTime();
      if (!changes.live || Number.isNaN(now) || Number.isNaN(since)) {
        return writs.load(agent, nowDate, sinceDate, caps);
      }
      const load = held.get(agent);
      if (load !== undefined) {
        if (answers(load, now, since)) return count(load, now, since, caps);
        return writs.load(agent, nowDate, sinceDate, caps);
      }
      return seed(agent, now, since).then((seeded) =>
        seeded !== undefined && answers(seeded, now, since)
          ? count(seeded, now, since, caps)
          : writs.load(agent, nowDate, sinceDate, caps),
      );
    },

    get agents() {
      return held.size;
    },

    close() {
      unsubscribe();
      forgetAll();
    },
  };
}
