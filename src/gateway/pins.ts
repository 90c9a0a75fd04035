/**
 * Tool pinning: the gateway records a hash of every upstream tool's definition (name, title,
 * description, input and output schemas, annotations). The first definition seen is pinned; a
 * definition that differs from the pinned one is quarantined — hidden and refused — until an
 * operator approves it (`writ tools approve`), which pins the new hash.
 */
import { createHash } from "node:crypto";
import { canonicalJson, toJsonValue } from "../audit/index.js";
import { q, WritError } from "../core/index.js";
import type { PinStatus, Store, ToolPin } from "../store/index.js";

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

export type { PinStatus, ToolPin };

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

/** The gateway's pins over the store's rows: definitions hashed here, refusals coded here. */
export function pinStore(store: Pick<Store, "pins">): PinStore {
  const rows = store.pins;
  return {
    get: (server, tool) => rows.get(server, tool),
    known: (server) => rows.known(server),
    list: () => rows.list(),
    observe: (server, tool, now = new Date(), opts = {}) =>
      rows.observe(
        server,
        {
          tool: tool.name,
          hash: definitionHash(tool),
          definition: toJsonValue(pinnedPart(tool)) as Record<string, unknown>,
        },
        now,
        opts.firstSight ?? "pin",
      ),
    async approve(server, tool, opts) {
      const pin = await rows.approve(server, tool, {
        by: opts.by,
        hash: opts.hash,
        now: opts.now ?? new Date(),
      });
      if (pin === undefined) {
        throw new WritError(
          ERR_PIN_NOT_FOUND,
          opts.hash === undefined
            ? `the gateway has never seen tool ${q(`${server}:${tool}`)}`
            : `tool ${q(`${server}:${tool}`)} was last seen with another definition than ${q(opts.hash)}`,
        );
      }
      return pin;
    },
  };
}
