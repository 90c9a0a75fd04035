/**
 * Writ change notifications: what lets a process keep writs in memory and stay exact while other
 * processes (or its own kill switch, or an operator's SQL) change them.
 *
 * Every committed insert, update or delete on `writs` is announced by a trigger on the
 * `writ_changes` channel (migration 0005). On PostgreSQL a dedicated connection LISTENs; when it
 * drops, the feed stops being `live`, tells its subscribers to forget everything (`undefined`), and
 * reconnects; nothing may be cached while it is not live. PGlite is one process and one session: it
 * LISTENs on its own connection and hands the notifications of a commit over before the committing
 * statement's caller resumes.
 *
 * Besides the notifications, the writ repository reports this process's own changes the moment the
 * statement returns (`local`), so a process never waits for the echo of its own writes.
 */
import { type Kysely, sql } from "kysely";
import pg from "pg";
import type { WritChange } from "../core/index.js";
import type { Database } from "./schema.js";

export const WRIT_CHANGES_CHANNEL = "writ_changes";
/** The listening connection's `application_name` (how an operator finds it in `pg_stat_activity`). */
export const WRIT_CHANGES_APPLICATION = "writ-changes";

export type { WritChange };

/** A change, or `undefined`: changes may have been missed (the listener reconnected), forget all. */
export type WritChangeListener = (change: WritChange | undefined) => void;

export interface WritChanges {
  /** True while every committed change reaches the subscribers: only then may writs be cached. */
  readonly live: boolean;
  /** Starts listening with the first subscriber; returns the unsubscribe. */
  subscribe(listener: WritChangeListener): () => void;
  /**
   * Resolves once every change committed before the call has reached the subscribers (a round trip
   * on the listening connection: PostgreSQL sends pending notifications before answering it).
   */
  sync(): Promise<void>;
  close(): Promise<void>;
}

const OPS = new Set(["insert", "update", "delete", "truncate"]);

/** Reads a notification payload written by the trigger; undefined when it is not one. */
export function parseWritChange(payload: string | undefined): WritChange | undefined {
  if (payload === undefined) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || !OPS.has(v.op as string)) return undefined;
  if (v.op === "truncate") return { op: "truncate", id: "", agent: "" };
  if (typeof v.id !== "string" || typeof v.agent !== "string") return undefined;
  const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : undefined);
  return {
    op: v.op as WritChange["op"],
    id: v.id,
    agent: v.agent,
    status: v.status === "active" || v.status === "revoked" ? v.status : undefined,
    uses: num(v.uses),
    maxUses: v.maxUses === null ? null : num(v.maxUses),
    issuedAt: num(v.issuedAt),
    expiresAt: num(v.expiresAt),
  };
}

/** The subscribers and their fan-out; the transports below feed it. */
export class ChangeHub {
  readonly #listeners = new Set<WritChangeListener>();
  live = false;

  get subscribed(): boolean {
    return this.#listeners.size > 0;
  }

  add(listener: WritChangeListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  emit(change: WritChange | undefined): void {
    for (const listener of this.#listeners) listener(change);
  }

  /** A notification's payload from the channel. */
  notified(payload: string | undefined): void {
    const change = parseWritChange(payload);
    // a payload we cannot read is a change we cannot apply: forget everything
    this.emit(change);
  }
}

/** A feed over a hub: `start` begins listening (called at each subscription; idempotent). */
function feed(
  hub: ChangeHub,
  start: () => void,
  sync: () => Promise<void>,
  close: () => Promise<void>,
): WritChanges & { hub: ChangeHub } {
  return {
    hub,
    get live() {
      return hub.live;
    },
    subscribe(listener) {
      const remove = hub.add(listener);
      start();
      return remove;
    },
    sync,
    close,
  };
}

/** PGlite: LISTEN on the one connection, notifications through `onNotification`. */
export interface PGliteNotifier {
  onNotification(callback: (channel: string, payload: string) => void): () => void;
}

export function pgliteChanges(
  db: Kysely<Database>,
  client: PGliteNotifier,
): WritChanges & { hub: ChangeHub } {
  const hub = new ChangeHub();
  let started: Promise<void> | undefined;
  let off: (() => void) | undefined;
  const start = () => {
    started ??= (async () => {
      off = client.onNotification((channel, payload) => {
        if (channel === WRIT_CHANGES_CHANNEL) hub.notified(payload);
      });
      // through Kysely, so the LISTEN waits for the connection's mutex and never lands in a transaction
      await sql.raw(`listen ${WRIT_CHANGES_CHANNEL}`).execute(db);
      hub.live = true;
      hub.emit(undefined);
    })();
    started.catch(() => {});
  };
  return feed(
    hub,
    start,
    async () => {
      await started;
    },
    async () => {
      hub.live = false;
      off?.();
    },
  );
}

/**
 * PostgreSQL: a connection of its own that LISTENs, reconnecting (1 s, doubling to 10 s) when it
 * drops. Not live until LISTEN has succeeded.
 */
export function postgresChanges(url: string): WritChanges & { hub: ChangeHub } {
  const hub = new ChangeHub();
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 1000;
  let timer: NodeJS.Timeout | undefined;
  let connecting: Promise<void> | undefined;

  const lost = (c: pg.Client) => {
    if (client !== c) return;
    client = undefined;
    c.removeAllListeners("notification");
    c.end().catch(() => {});
    if (hub.live) {
      hub.live = false;
      hub.emit(undefined);
    }
    if (!closed) {
      timer = setTimeout(connect, delay);
      timer.unref();
      delay = Math.min(delay * 2, 10_000);
    }
  };

  const connect = () => {
    timer = undefined;
    if (closed || connecting) return;
    connecting = (async () => {
      const c = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
        application_name: WRIT_CHANGES_APPLICATION,
      });
      client = c;
      c.on("error", () => lost(c));
      c.on("end", () => lost(c));
      c.on("notification", (n) => {
        if (n.channel === WRIT_CHANGES_CHANNEL) hub.notified(n.payload);
      });
      try {
        await c.connect();
        await c.query(`listen ${WRIT_CHANGES_CHANNEL}`);
        if (client !== c || closed) return;
        delay = 1000;
        hub.live = true;
        hub.emit(undefined);
      } catch {
        lost(c);
      }
    })().finally(() => {
      connecting = undefined;
    });
  };

  return feed(
    hub,
    () => {
      if (!client && !timer) connect();
    },
    async () => {
      const c = client;
      if (!c || !hub.live) return;
      try {
        await c.query("select 1");
      } catch {
        // the connection dropped: `lost` made the feed not live, and subscribers forgot everything
      }
    },
    async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      await connecting;
      const c = client;
      client = undefined;
      hub.live = false;
      if (c) await c.end().catch(() => {});
    },
  );
}
