/**
 * The downstream ledger (issue 11): what writ created in AWS, GitHub or Kubernetes for each writ,
 * recorded before it is created and kept until it is gone, so that nothing created downstream
 * outlives its writ — also after a crash between "intent recorded" and "object created".
 *
 * A record moves `intended` → `created` → `removed`. `created` on a record already removed moves it
 * back to `created`: the object exists after all (an issuance that finished after the reaper ran),
 * and the reaper removes it again on its next pass, since its writ is revoked or expired. `due`
 * joins the writs table: a record is due when it has expired, or — unless it outlives its writ
 * (`outlivesWrit`, an object the writ's end made, such as a deny) — when its writ has expired or
 * been revoked, or cannot be found.
 */
import type { Kysely, Selectable } from "kysely";
import { q, WritError } from "../core/index.js";
import type { DownstreamLedger, DownstreamRecord, DownstreamSystem } from "../downstream/types.js";
import { ERR_STORE_CORRUPT, ERR_STORE_NOT_FOUND, guard, sqlState } from "./errors.js";
import type { Database, DownstreamRecordsTable } from "./schema.js";

export const ERR_DOWNSTREAM_RECORD_INVALID = "ERR_DOWNSTREAM_RECORD_INVALID";
export const ERR_DOWNSTREAM_RECORD_EXISTS = "ERR_DOWNSTREAM_RECORD_EXISTS";

const SYSTEMS: readonly DownstreamSystem[] = ["aws", "github", "kubernetes"];
const STATES: readonly DownstreamRecord["state"][] = ["intended", "created", "removed"];
/** A locator is a handful of names; anything near this size is a mistake (or a secret). */
const MAX_LOCATOR_BYTES = 16 * 1024;

function invalid(message: string): WritError {
  return new WritError(ERR_DOWNSTREAM_RECORD_INVALID, message);
}

function checkText(field: string, value: unknown, max: number): void {
  if (typeof value !== "string" || value.length === 0 || value.length > max)
    throw invalid(`downstream record ${field}: expected a non-empty string of at most ${max} characters`);
}

function checkDate(field: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw invalid(`downstream record ${field}: expected a valid date`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function locatorJson(value: unknown): string {
  if (!isPlainObject(value)) throw invalid("downstream record locator: expected an object");
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw invalid("downstream record locator: not JSON-serialisable");
  }
  if (Buffer.byteLength(json) > MAX_LOCATOR_BYTES)
    throw invalid(`downstream record locator: larger than ${MAX_LOCATOR_BYTES / 1024} KiB`);
  return json;
}

function fromRow(row: Selectable<DownstreamRecordsTable>): DownstreamRecord {
  const corrupt = (what: string) =>
    new WritError(ERR_STORE_CORRUPT, `downstream record ${q(row.id)}: ${what}`);
  if (!SYSTEMS.includes(row.system as DownstreamSystem)) throw corrupt(`unknown system ${q(row.system)}`);
  if (!STATES.includes(row.state as DownstreamRecord["state"]))
    throw corrupt(`unknown state ${q(row.state)}`);
  if (!isPlainObject(row.locator)) throw corrupt("locator is not an object");
  return {
    id: row.id,
    system: row.system as DownstreamSystem,
    environment: row.environment,
    writ: row.writ,
    agent: row.agent,
    kind: row.kind,
    locator: row.locator,
    state: row.state as DownstreamRecord["state"],
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    ...(row.outlives_writ ? { outlivesWrit: true } : {}),
  };
}

/** The ledger over the store; `clock` stamps `createdAt` and removals (default: now). */
export function downstreamLedger(
  db: Kysely<Database>,
  clock: () => Date = () => new Date(),
): DownstreamLedger {
  const notFound = (id: string) => new WritError(ERR_STORE_NOT_FOUND, `no downstream record ${q(id)}`);
  return {
    async intend(r) {
      checkText("id", r.id, 200);
      if (!SYSTEMS.includes(r.system)) throw invalid(`downstream record system: ${q(r.system)} is not one`);
      checkText("environment", r.environment, 200);
      checkText("writ", r.writ, 200);
      checkText("agent", r.agent, 200);
      checkText("kind", r.kind, 100);
      checkDate("expiresAt", r.expiresAt);
      if (r.outlivesWrit !== undefined && typeof r.outlivesWrit !== "boolean")
        throw invalid("downstream record outlivesWrit: expected true or false");
      const locator = locatorJson(r.locator);
      const createdAt = clock();
      const row = await guard("record downstream intent", async () => {
        try {
          return await db
            .insertInto("downstream_records")
            .values({
              id: r.id,
              system: r.system,
              environment: r.environment,
              writ: r.writ,
              agent: r.agent,
              kind: r.kind,
              locator,
              outlives_writ: r.outlivesWrit === true,
              expires_at: r.expiresAt,
              created_at: createdAt,
            })
            .returningAll()
            .executeTakeFirstOrThrow();
        } catch (err) {
          if (sqlState(err) === "23505")
            throw new WritError(ERR_DOWNSTREAM_RECORD_EXISTS, `downstream record ${q(r.id)} exists already`);
          throw err;
        }
      });
      return fromRow(row);
    },

    async created(id, locator) {
      const merge = locator === undefined ? undefined : locatorJson(locator);
      const row = await guard("mark downstream record created", () =>
        db
          .updateTable("downstream_records")
          .set((eb) => ({
            state: "created",
            removed_at: null,
            ...(merge === undefined
              ? {}
              : { locator: eb(eb.ref("locator"), "||", eb.cast(eb.val(merge), "jsonb")) as never }),
          }))
          .where("id", "=", id)
          .returning("id")
          .executeTakeFirst(),
      );
      if (!row) throw notFound(id);
    },

    async removed(id) {
      const now = clock();
      const row = await guard("mark downstream record removed", async () => {
        const updated = await db
          .updateTable("downstream_records")
          .set({ state: "removed", removed_at: now })
          .where("id", "=", id)
          .where("state", "<>", "removed")
          .returning("id")
          .executeTakeFirst();
        if (updated) return updated;
        // already removed is fine (idempotent); no such record is not
        return db.selectFrom("downstream_records").select("id").where("id", "=", id).executeTakeFirst();
      });
      if (!row) throw notFound(id);
    },

    async due(now) {
      if (!(now instanceof Date) || Number.isNaN(now.getTime()))
        throw new TypeError("due: now must be a valid date");
      const rows = await guard("list due downstream records", () =>
        db
          .selectFrom("downstream_records as r")
          .leftJoin("writs as w", "w.id", "r.writ")
          .selectAll("r")
          .where("r.state", "<>", "removed")
          .where((eb) =>
            eb.or([
              eb("r.expires_at", "<=", now),
              eb.and([
                eb("r.outlives_writ", "=", false),
                eb.or([
                  eb("w.id", "is", null),
                  eb("w.status", "=", "revoked"),
                  eb("w.expires_at", "<=", now),
                ]),
              ]),
            ]),
          )
          .orderBy("r.created_at")
          .orderBy("r.id")
          .execute(),
      );
      return rows.map(fromRow);
    },

    async ofWrit(writ) {
      const rows = await guard("list downstream records", () =>
        db
          .selectFrom("downstream_records")
          .selectAll()
          .where("writ", "=", writ)
          .orderBy("created_at")
          .orderBy("id")
          .execute(),
      );
      return rows.map(fromRow);
    },
  };
}
