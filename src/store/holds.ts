/**
 * The gateway's held calls (`gateway_holds`): per approval binding (the hash of the call's subject
 * and exact arguments), the approval request that holds it and, when kept, the exact arguments for
 * approvers to see. What a binding is and when a call is held is the gateway's (`gateway/holds.ts`).
 */
import type { Kysely } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

export interface HeldCallRow {
  readonly binding: string;
  readonly requestId: string;
  readonly createdAt: Date;
}

export interface HeldCallRepository {
  find(binding: string): Promise<HeldCallRow | undefined>;
  /**
   * Records the hold of `binding`, replacing an earlier one (an expired or denied request's), with
   * the arguments' JSON when they are kept (null otherwise).
   */
  record(hold: HeldCallRow & { readonly arguments: string | null }): Promise<void>;
  clear(binding: string): Promise<void>;
  /** The kept arguments of the holds of these approval requests, by request (those kept only). */
  argumentsOf(requestIds: readonly string[]): Promise<Map<string, unknown>>;
}

export function heldCallRepository(db: Kysely<Database>): HeldCallRepository {
  return {
    find: (binding) =>
      guard("read held call", async () => {
        const row = await db
          .selectFrom("gateway_holds")
          .select(["binding", "request_id", "created_at"])
          .where("binding", "=", binding)
          .executeTakeFirst();
        return row === undefined
          ? undefined
          : { binding: row.binding, requestId: row.request_id, createdAt: new Date(row.created_at) };
      }),
    record: (hold) =>
      guard("record held call", async () => {
        const values = { request_id: hold.requestId, created_at: hold.createdAt, arguments: hold.arguments };
        await db
          .insertInto("gateway_holds")
          .values({ binding: hold.binding, ...values })
          .onConflict((oc) => oc.column("binding").doUpdateSet(values))
          .execute();
      }),
    clear: (binding) =>
      guard("clear held call", async () => {
        await db.deleteFrom("gateway_holds").where("binding", "=", binding).execute();
      }),
    argumentsOf: async (requestIds) => {
      if (requestIds.length === 0) return new Map();
      const rows = await guard("read held calls' arguments", () =>
        db
          .selectFrom("gateway_holds")
          .select(["request_id", "arguments"])
          .where("request_id", "in", [...requestIds])
          .execute(),
      );
      return new Map(rows.filter((r) => r.arguments !== null).map((r) => [r.request_id, r.arguments]));
    },
  };
}
