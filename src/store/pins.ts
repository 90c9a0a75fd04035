/**
 * The gateway's tool pins (`gateway_tool_pins`): per upstream tool, the hash of the definition last
 * seen and of the one approved. What a definition is and how it is hashed is the gateway's
 * (`gateway/pins.ts`); this module keeps the rows.
 */
import type { Kysely } from "kysely";
import { sql } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";

export type PinStatus = "pinned" | "quarantined";

export interface ToolPin {
  readonly server: string;
  readonly tool: string;
  /** The approved definition's hash; undefined until one is approved. */
  readonly approvedHash: string | undefined;
  readonly seenHash: string;
  readonly seenDefinition: Readonly<Record<string, unknown>>;
  readonly status: PinStatus;
  readonly firstSeen: Date;
  readonly seenAt: Date;
  readonly approvedAt: Date | undefined;
  readonly approvedBy: string | undefined;
}

/** A definition as seen now: its hash and the JSON of its pinned part. */
export interface SeenDefinition {
  readonly tool: string;
  readonly hash: string;
  readonly definition: Readonly<Record<string, unknown>>;
}

export interface ToolPinRepository {
  /**
   * Records the definition seen now. First sight pins it (`firstSight: "pin"`) or leaves it with no
   * approved hash; later sights move only the `seen_*` columns.
   */
  observe(
    server: string,
    seen: SeenDefinition,
    now: Date,
    firstSight: "pin" | "quarantine",
  ): Promise<ToolPin>;
  /** Has any tool of this server been seen? */
  known(server: string): Promise<boolean>;
  get(server: string, tool: string): Promise<ToolPin | undefined>;
  /** Every pin, by server then tool. */
  list(): Promise<ToolPin[]>;
  /** Every pin's seen annotations only, by server then tool (the inventory's read). */
  annotations(): Promise<{ server: string; tool: string; annotations: unknown }[]>;
  /**
   * Makes the definition last seen the approved one (only when it hashes to `hash`, if given);
   * undefined when there is no such pin.
   */
  approve(
    server: string,
    tool: string,
    opts: { readonly by: string; readonly hash?: string | undefined; readonly now: Date },
  ): Promise<ToolPin | undefined>;
}

type Row = {
  server: string;
  tool: string;
  approved_hash: string | null;
  seen_hash: string;
  seen_definition: unknown;
  first_seen: Date;
  seen_at: Date;
  approved_at: Date | null;
  approved_by: string | null;
};

function fromRow(r: Row): ToolPin {
  const def = typeof r.seen_definition === "string" ? JSON.parse(r.seen_definition) : r.seen_definition;
  return {
    server: r.server,
    tool: r.tool,
    approvedHash: r.approved_hash ?? undefined,
    seenHash: r.seen_hash,
    seenDefinition: def as Record<string, unknown>,
    status: r.approved_hash === r.seen_hash ? "pinned" : "quarantined",
    firstSeen: new Date(r.first_seen),
    seenAt: new Date(r.seen_at),
    approvedAt: r.approved_at ? new Date(r.approved_at) : undefined,
    approvedBy: r.approved_by ?? undefined,
  };
}

function observePin(
  db: Kysely<Database>,
  server: string,
  seen: SeenDefinition,
  now: Date,
  firstSight: "pin" | "quarantine",
): Promise<ToolPin> {
  const pin = firstSight === "pin";
  const definition = JSON.stringify(seen.definition);
  return guard("record tool pin", async () => {
    // First sight pins; later sights only move `seen_*`: the approved hash changes by approval only.
    const row = await db
      .insertInto("gateway_tool_pins")
      .values({
        server,
        tool: seen.tool,
        approved_hash: pin ? seen.hash : null,
        seen_hash: seen.hash,
        seen_definition: definition,
        first_seen: now,
        seen_at: now,
        approved_at: pin ? now : null,
        approved_by: pin ? "first use" : null,
      })
      .onConflict((oc) =>
        oc
          .columns(["server", "tool"])
          .doUpdateSet({ seen_hash: seen.hash, seen_definition: definition, seen_at: now }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return fromRow(row as Row);
  });
}

export function toolPinRepository(db: Kysely<Database>): ToolPinRepository {
  return {
    observe: (server, seen, now, firstSight) => observePin(db, server, seen, now, firstSight),
    get: (server, tool) =>
      guard("read tool pin", async () => {
        const row = await db
          .selectFrom("gateway_tool_pins")
          .selectAll()
          .where("server", "=", server)
          .where("tool", "=", tool)
          .executeTakeFirst();
        return row ? fromRow(row as Row) : undefined;
      }),
    known: (server) =>
      guard("read tool pins", async () => {
        const row = await db
          .selectFrom("gateway_tool_pins")
          .select("tool")
          .where("server", "=", server)
          .limit(1)
          .executeTakeFirst();
        return row !== undefined;
      }),
    list: () =>
      guard("list tool pins", async () =>
        (
          await db.selectFrom("gateway_tool_pins").selectAll().orderBy("server").orderBy("tool").execute()
        ).map((r) => fromRow(r as Row)),
      ),
    annotations: () =>
      guard("list tool pins", () =>
        db
          .selectFrom("gateway_tool_pins")
          .select(["server", "tool", sql<unknown>`seen_definition->'annotations'`.as("annotations")])
          .orderBy("server")
          .orderBy("tool")
          .execute(),
      ),
    approve: async (server, tool, opts) => {
      const row = await guard("approve tool pin", () => {
        let update = db
          .updateTable("gateway_tool_pins")
          .set((eb) => ({ approved_hash: eb.ref("seen_hash"), approved_at: opts.now, approved_by: opts.by }))
          .where("server", "=", server)
          .where("tool", "=", tool);
        if (opts.hash !== undefined) update = update.where("seen_hash", "=", opts.hash);
        return update.returningAll().executeTakeFirst();
      });
      return row ? fromRow(row as Row) : undefined;
    },
  };
}
