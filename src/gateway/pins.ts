/**
 * Tool pinning: the gateway records a hash of every upstream tool's definition (name, title,
 * description, input and output schemas, annotations). The first definition seen is pinned; a
 * definition that differs from the pinned one is quarantined — hidden and refused — until an
 * operator approves it (`writ tools approve`), which pins the new hash.
 */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { canonicalJson, toJsonValue } from "../audit/index.js";
import { q, WritError } from "../core/index.js";
import { type Database, guard } from "../store/index.js";

export const ERR_PIN_NOT_FOUND = "ERR_PIN_NOT_FOUND";

/** The parts of an MCP tool definition a change of which could change what the model does. */
export interface ToolDefinition {
  readonly name: string;
  readonly title?: string | undefined;
  readonly description?: string | undefined;
  readonly inputSchema: unknown;
  readonly outputSchema?: unknown;
  readonly annotations?: unknown;
}

export function pinnedPart(tool: ToolDefinition): Record<string, unknown> {
  return {
    name: tool.name,
    title: tool.title ?? null,
    description: tool.description ?? null,
    inputSchema: tool.inputSchema ?? null,
    outputSchema: tool.outputSchema ?? null,
    annotations: tool.annotations ?? null,
  };
}

/** SHA-256 (hex) of the canonical JSON of the pinned part. */
export function definitionHash(tool: ToolDefinition): string {
  return createHash("sha256")
    .update(canonicalJson(toJsonValue(pinnedPart(tool))), "utf8")
    .digest("hex");
}

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

export interface PinStore {
  /**
   * Records the definition seen now and answers its status: a tool never seen is pinned as it is
   * (`firstSight: "pin"`, the default) or quarantined with no approved definition; a known tool
   * is pinned when its hash is the approved one, quarantined otherwise.
   */
  observe(
    server: string,
    tool: ToolDefinition,
    now?: Date,
    opts?: { readonly firstSight?: "pin" | "quarantine" },
  ): Promise<ToolPin>;
  /** Has any tool of this server been seen? */
  known(server: string): Promise<boolean>;
  get(server: string, tool: string): Promise<ToolPin | undefined>;
  list(): Promise<ToolPin[]>;
  /**
   * Approves the definition last seen (`hash`, when given, must be it): it becomes the pinned one.
   * `ERR_PIN_NOT_FOUND` when the gateway never saw the tool, or the hash is not the one seen.
   */
  approve(
    server: string,
    tool: string,
    opts: { by: string; hash?: string | undefined; now?: Date },
  ): Promise<ToolPin>;
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

export function pinStore(db: Kysely<Database>): PinStore {
  const get = (server: string, tool: string) =>
    guard("read tool pin", async () => {
      const row = await db
        .selectFrom("gateway_tool_pins")
        .selectAll()
        .where("server", "=", server)
        .where("tool", "=", tool)
        .executeTakeFirst();
      return row ? fromRow(row as Row) : undefined;
    });
  return {
    get,
    async known(server) {
      return guard("read tool pins", async () => {
        const row = await db
          .selectFrom("gateway_tool_pins")
          .select("tool")
          .where("server", "=", server)
          .limit(1)
          .executeTakeFirst();
        return row !== undefined;
      });
    },
    async observe(server, tool, now = new Date(), opts = {}) {
      const pin = opts.firstSight !== "quarantine";
      const hash = definitionHash(tool);
      const definition = JSON.stringify(toJsonValue(pinnedPart(tool)));
      return guard("record tool pin", async () => {
        // First sight pins; later sights only move `seen_*`: the approved hash changes by approval only.
        const row = await db
          .insertInto("gateway_tool_pins")
          .values({
            server,
            tool: tool.name,
            approved_hash: pin ? hash : null,
            seen_hash: hash,
            seen_definition: definition,
            first_seen: now,
            seen_at: now,
            approved_at: pin ? now : null,
            approved_by: pin ? "first use" : null,
          })
          .onConflict((oc) =>
            oc.columns(["server", "tool"]).doUpdateSet({
              seen_hash: hash,
              seen_definition: definition,
              seen_at: now,
            }),
          )
          .returningAll()
          .executeTakeFirstOrThrow();
        return fromRow(row as Row);
      });
    },
    async list() {
      return guard("list tool pins", async () =>
        (
          await db.selectFrom("gateway_tool_pins").selectAll().orderBy("server").orderBy("tool").execute()
        ).map((r) => fromRow(r as Row)),
      );
    },
    async approve(server, tool, opts) {
      const now = opts.now ?? new Date();
      const row = await guard("approve tool pin", () => {
        let update = db
          .updateTable("gateway_tool_pins")
          .set((eb) => ({ approved_hash: eb.ref("seen_hash"), approved_at: now, approved_by: opts.by }))
          .where("server", "=", server)
          .where("tool", "=", tool);
        if (opts.hash !== undefined) update = update.where("seen_hash", "=", opts.hash);
        return update.returningAll().executeTakeFirst();
      });
      if (!row) {
        throw new WritError(
          ERR_PIN_NOT_FOUND,
          opts.hash === undefined
            ? `the gateway has never seen tool ${q(`${server}:${tool}`)}`
            : `tool ${q(`${server}:${tool}`)} was last seen with another definition than ${q(opts.hash)}`,
        );
      }
      return fromRow(row as Row);
    },
  };
}
