/**
 * Taint, outside any session: MCP 2026-07-28 has no session id, a client can open a new session at
 * will, and a load balancer may send consecutive requests to different gateway processes. So taint
 * is kept per handle — the writ the call carries, or, for a baseline token, the agent in its
 * environment — and per prompt context within it (`*` when a call named none), in the store that
 * every gateway process shares, until it expires (`taintTtl`, never past the writ's expiry).
 *
 * Taint only grows until it expires, so each process keeps what it has learnt in memory and asks
 * the store only when memory says "clean" and the answer decides (a privileged tool): no
 * invalidation is ever needed.
 *
 *   - a call naming context `c` is tainted by a taint under `c` or under `*`;
 *   - a call naming no context could belong to any: it is tainted by every taint of its handle.
 */
import type { Store } from "../store/index.js";

export const ANY_CONTEXT = "*";
/** Past this many handles in memory, expired taints are swept before a new one is kept. */
const MAX_HANDLES = 10_000;

export interface TaintIdentity {
  readonly agent: string;
  readonly environment: string;
  readonly writ?: { readonly id: string; readonly expiresAt: Date } | undefined;
}

export function taintHandle(id: TaintIdentity): string {
  return id.writ ? `writ:${id.writ.id}` : `agent:${id.environment}/${id.agent}`;
}

export interface Taints {
  /** What tainted this identity in this context, from memory only (cheap, every call). */
  known(id: TaintIdentity, context: string | undefined, now: Date): string | undefined;
  /** The same, asking the shared store when memory knows of none. */
  lookup(id: TaintIdentity, context: string | undefined, now: Date): Promise<string | undefined>;
  /** Records that `by` (an untrusted tool) tainted this identity in this context. */
  mark(
    id: TaintIdentity,
    context: string | undefined,
    by: string,
    now: Date,
    ttlSeconds: number,
  ): Promise<void>;
}

interface Entry {
  readonly by: string;
  readonly until: number;
}

export function taints(store: Pick<Store, "taints">): Taints {
  const rows = store.taints;
  const memory = new Map<string, Map<string, Entry>>();

  const remember = (handle: string, context: string, e: Entry) => {
    let entries = memory.get(handle);
    if (entries === undefined) {
      entries = new Map();
      memory.set(handle, entries);
    }
    const had = entries.get(context);
    if (had === undefined || had.until < e.until) entries.set(context, e);
  };

  const sweep = (t: number) => {
    for (const [handle, entries] of memory) {
      for (const [key, e] of entries) if (e.until <= t) entries.delete(key);
      if (entries.size === 0) memory.delete(handle);
    }
  };

  const known: Taints["known"] = (id, context, now) => {
    const entries = memory.get(taintHandle(id));
    if (entries === undefined) return undefined;
    const t = now.getTime();
    for (const [key, e] of entries) {
      if (e.until <= t) continue;
      if (context === undefined || key === context || key === ANY_CONTEXT) return e.by;
    }
    return undefined;
  };

  return {
    known,
    async lookup(id, context, now) {
      const hit = known(id, context, now);
      if (hit !== undefined) return hit;
      const handle = taintHandle(id);
      const row = await rows.find(handle, context === undefined ? undefined : [context, ANY_CONTEXT], now);
      if (row === undefined) return undefined;
      remember(handle, row.context, { by: row.taintedBy, until: row.until.getTime() });
      return row.taintedBy;
    },
    async mark(id, context, by, now, ttlSeconds) {
      const handle = taintHandle(id);
      const key = context ?? ANY_CONTEXT;
      const t = now.getTime();
      const have = memory.get(handle)?.get(key);
      if (have !== undefined && have.until > t) return; // known already: the store has it
      const until = Math.min(t + ttlSeconds * 1000, id.writ?.expiresAt.getTime() ?? Number.POSITIVE_INFINITY);
      if (memory.size > MAX_HANDLES) sweep(t);
      remember(handle, key, { by, until });
      // another process may have marked it already: the later expiry stands
      await rows.mark(handle, { context: key, taintedBy: by, until: new Date(until) });
    },
  };
}
