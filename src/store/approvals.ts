/**
 * Approval requests and their decisions (`approval_requests`, `approval_decisions`), as rows. What
 * a request means — its binding, its policy, its life — is the broker's (`broker/approvals.ts`);
 * this module reads and writes the rows, every change of one request in a transaction holding its
 * row (`select … for update`) when the broker asks for one.
 */
import type { Insertable, Kysely, Selectable, Transaction } from "kysely";
import { guard, sqlState } from "./errors.js";
import type { ApprovalDecisionsTable, ApprovalRequestsTable, Database } from "./schema.js";

export type ApprovalRequestRow = Selectable<ApprovalRequestsTable>;
export type ApprovalDecisionRow = Selectable<ApprovalDecisionsTable>;
/** A new request's row (the columns with defaults may be left out). */
export type ApprovalRequestInsert = Insertable<ApprovalRequestsTable>;

/** A request's row with its decisions' rows. */
export interface ApprovalRows {
  readonly request: ApprovalRequestRow;
  readonly decisions: readonly ApprovalDecisionRow[];
}

/** Why an insert was refused: the id is taken, or the params are not storable as jsonb. */
export type ApprovalInsertRefusal = { readonly refused: "exists" | "unstorable"; readonly message: string };

/** One request's row, locked for the transaction it is read in. */
export interface LockedApproval {
  readonly rows: ApprovalRows | undefined;
  /** Moves a pending or approved request that has expired by `now` to `expired`; true if it did. */
  expire(now: Date): Promise<boolean>;
  addDecision(decision: Omit<ApprovalDecisionRow, "request_id">): Promise<void>;
  close(status: string, decidedAt: Date): Promise<void>;
}

export interface ApprovalRepository {
  insert(row: ApprovalRequestInsert): Promise<ApprovalRows | ApprovalInsertRefusal>;
  remove(id: string): Promise<void>;
  load(id: string): Promise<ApprovalRows | undefined>;
  /** Runs `work` in a transaction holding the request's row; its answer is committed with it. */
  locked<T>(id: string, work: (request: LockedApproval) => Promise<T>): Promise<T>;
  expire(id: string, now: Date): Promise<boolean>;
  /**
   * Records a poll at `now`: `pace` gets the interval and the previous poll and answers the new
   * interval. Undefined when there is no such request.
   */
  recordPoll(
    id: string,
    now: Date,
    pace: (row: { pollInterval: number; lastPolledAt: Date | undefined }) => number,
  ): Promise<
    { pollInterval: number; previous: { pollInterval: number; lastPolledAt: Date | undefined } } | undefined
  >;
  /** approved → consumed by `writId`, while unexpired at `now`; true if it moved. */
  consume(id: string, writId: string, now: Date): Promise<boolean>;
  /** Pending, unexpired requests (of one environment, when given), oldest first. */
  listPending(opts: {
    readonly now: Date;
    readonly environment?: string | undefined;
  }): Promise<ApprovalRows[]>;
}

type Db = Kysely<Database> | Transaction<Database>;

async function load(db: Db, id: string, lock: boolean): Promise<ApprovalRows | undefined> {
  let query = db.selectFrom("approval_requests").selectAll().where("id", "=", id);
  if (lock) query = query.forUpdate();
  const request = await query.executeTakeFirst();
  if (request === undefined) return undefined;
  const decisions = await db
    .selectFrom("approval_decisions")
    .selectAll()
    .where("request_id", "=", id)
    .execute();
  return { request, decisions };
}

async function expire(db: Db, id: string, now: Date): Promise<boolean> {
  const row = await db
    .updateTable("approval_requests")
    .set({ status: "expired" })
    .where("id", "=", id)
    .where("status", "in", ["pending", "approved"])
    .where("expires_at", "<=", now)
    .returning("id")
    .executeTakeFirst();
  return row !== undefined;
}

function lockedApproval(
  trx: Transaction<Database>,
  id: string,
  rows: ApprovalRows | undefined,
): LockedApproval {
  return {
    rows,
    expire: (now) => expire(trx, id, now),
    async addDecision(d) {
      await trx
        .insertInto("approval_decisions")
        .values({ request_id: id, approver: d.approver, decision: d.decision, reason: d.reason, at: d.at })
        .execute();
    },
    async close(status, decidedAt) {
      await trx
        .updateTable("approval_requests")
        .set({ status, decided_at: decidedAt })
        .where("id", "=", id)
        .execute();
    },
  };
}

async function insert(
  db: Kysely<Database>,
  row: Insertable<ApprovalRequestsTable>,
): Promise<ApprovalRows | ApprovalInsertRefusal> {
  return guard("create approval request", async () => {
    try {
      const request = await db
        .insertInto("approval_requests")
        .values(row)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { request, decisions: [] };
    } catch (err) {
      const state = sqlState(err);
      if (state === "23505") return { refused: "exists", message: "already exists" };
      // 22P05 / 22P02: text jsonb cannot hold (NUL, a lone surrogate).
      if (state === "22P05" || state === "22P02")
        return { refused: "unstorable", message: (err as Error).message };
      throw err;
    }
  });
}

async function recordPoll(
  db: Kysely<Database>,
  id: string,
  now: Date,
  pace: (row: { pollInterval: number; lastPolledAt: Date | undefined }) => number,
) {
  return guard("record approval poll", () =>
    db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom("approval_requests")
        .select(["poll_interval", "last_polled_at"])
        .where("id", "=", id)
        .forUpdate()
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const previous = { pollInterval: row.poll_interval, lastPolledAt: row.last_polled_at ?? undefined };
      const pollInterval = pace(previous);
      await trx
        .updateTable("approval_requests")
        .set({ last_polled_at: now, poll_interval: pollInterval })
        .where("id", "=", id)
        .execute();
      return { pollInterval, previous };
    }),
  );
}

async function listPending(db: Kysely<Database>, opts: { now: Date; environment?: string | undefined }) {
  return guard("list approval requests", async () => {
    let query = db
      .selectFrom("approval_requests")
      .selectAll()
      .where("status", "=", "pending")
      .where("expires_at", ">", opts.now);
    if (opts.environment !== undefined) query = query.where("environment", "=", opts.environment);
    const rows = await query.orderBy("created_at").orderBy("id").execute();
    if (rows.length === 0) return [];
    const decisions = await db
      .selectFrom("approval_decisions")
      .selectAll()
      .where(
        "request_id",
        "in",
        rows.map((r) => r.id),
      )
      .execute();
    return rows.map((request) => ({
      request,
      decisions: decisions.filter((d) => d.request_id === request.id),
    }));
  });
}

export function approvalRepository(db: Kysely<Database>): ApprovalRepository {
  return {
    insert: (row) => insert(db, row),
    remove: (id) =>
      guard("create approval request", async () => {
        await db.deleteFrom("approval_requests").where("id", "=", id).execute();
      }),
    load: (id) => guard("read approval request", () => load(db, id, false)),
    locked: (id, work) =>
      guard("decide approval request", () =>
        db.transaction().execute(async (trx) => work(lockedApproval(trx, id, await load(trx, id, true)))),
      ),
    expire: (id, now) => guard("expire approval request", () => expire(db, id, now)),
    recordPoll: (id, now, pace) => recordPoll(db, id, now, pace),
    consume: (id, writId, now) =>
      guard("consume approval request", async () => {
        const row = await db
          .updateTable("approval_requests")
          .set({ status: "consumed", writ_id: writId })
          .where("id", "=", id)
          .where("status", "=", "approved")
          .where("expires_at", ">", now)
          .returning("id")
          .executeTakeFirst();
        return row !== undefined;
      }),
    listPending: (opts) => listPending(db, opts),
  };
}
