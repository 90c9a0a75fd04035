/**
 * The kill switches (`kill_switches`) and the revocation an engaged one makes. What a scope means
 * and which agents a runner class holds is the broker's (`broker/kill.ts`); this module keeps the
 * rows, and engages a kill and revokes the writs in its scope (and every writ delegated from them)
 * in one transaction: a kill either records itself and revokes, or does neither.
 */
import type { Kysely } from "kysely";
import { guard } from "./errors.js";
import type { Database } from "./schema.js";
import { revokeDescendants } from "./writs.js";

/** One kill switch's row: `scope` is `agent`, `class`, `environment` or `all` (target `*`). */
export interface KillRow {
  readonly id: string;
  readonly scope: string;
  readonly target: string;
  readonly reason: string | null;
  readonly engagedAt: Date;
  readonly engagedBy: string;
}

/** A writ a kill revoked. */
export interface KilledWrit {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly expiresAt: Date;
}

/** Which active, unexpired writs a kill revokes: all of them, or those matching every field given. */
export interface KillReach {
  readonly agent?: string | undefined;
  readonly environment?: string | undefined;
  /** The agents of a runner class; an empty list revokes nothing. */
  readonly agents?: readonly string[] | undefined;
}

export interface KillSwitchRepository {
  /** Engaged (not lifted) kills, oldest first. */
  engaged(): Promise<KillRow[]>;
  /** The oldest engaged kill of scope `agent` = `agent`, `class` = `runnerClass`, `environment`, or `all`. */
  blocking(agent: string, runnerClass: string, environment: string): Promise<KillRow | undefined>;
  /**
   * In one transaction: the engaged kill of exactly `kill.scope` and `kill.target` (the oldest), or
   * `kill` inserted when there is none; then the writs in `reach` revoked at `kill.engagedAt` with
   * the reason `revokedReason(id)` (the kill's id), and their delegated descendants with
   * `descendantReason(id)`. The revoked writs come back sorted by id.
   */
  engage(
    kill: KillRow,
    reach: KillReach,
    reasons: { revoked(killId: string): string; descendants(killId: string): string },
  ): Promise<{ kill: KillRow; already: boolean; revoked: KilledWrit[] }>;
  /** Lifts every engaged kill of exactly this scope and target; the kills lifted. */
  lift(scope: string, target: string, at: Date, by: string): Promise<KillRow[]>;
}

const toKill = (r: {
  id: string;
  scope: string;
  target: string;
  reason: string | null;
  engaged_at: Date | string;
  engaged_by: string;
}): KillRow => ({
  id: r.id,
  scope: r.scope,
  target: r.target,
  reason: r.reason,
  engagedAt: new Date(r.engaged_at),
  engagedBy: r.engaged_by,
});

async function engage(
  db: Kysely<Database>,
  kill: KillRow,
  reach: KillReach,
  reasons: { revoked(killId: string): string; descendants(killId: string): string },
) {
  return db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom("kill_switches")
      .selectAll()
      .where("scope", "=", kill.scope)
      .where("target", "=", kill.target)
      .where("lifted_at", "is", null)
      .orderBy("engaged_at")
      .executeTakeFirst();
    const engaged = existing === undefined ? kill : toKill(existing);
    const already = existing !== undefined;
    if (!already) {
      await trx
        .insertInto("kill_switches")
        .values({
          id: kill.id,
          scope: kill.scope,
          target: kill.target,
          reason: kill.reason,
          engaged_at: kill.engagedAt,
          engaged_by: kill.engagedBy,
          lifted_at: null,
          lifted_by: null,
        })
        .execute();
    }
    const now = kill.engagedAt;
    let update = trx
      .updateTable("writs")
      .set({ status: "revoked", revoked_at: now, revoked_reason: reasons.revoked(engaged.id) })
      .where("status", "=", "active")
      .where("expires_at", ">", now);
    if (reach.agent !== undefined) update = update.where("agent", "=", reach.agent);
    if (reach.environment !== undefined) update = update.where("environment", "=", reach.environment);
    if (reach.agents !== undefined) {
      if (reach.agents.length === 0) return { kill: engaged, already, revoked: [] };
      update = update.where("agent", "in", [...reach.agents]);
    }
    const direct = await update.returning(["id", "agent", "playbook", "environment", "expires_at"]).execute();
    // and every writ delegated from them, whoever holds it (docs/broker.md#delegation)
    const descendants = await revokeDescendants(
      trx,
      direct.map((r) => r.id),
      reasons.descendants(engaged.id),
      now,
    );
    const rows = [...direct, ...descendants.map((d) => ({ ...d, expires_at: d.expiresAt }))];
    const revoked = rows
      .map((r) => ({
        id: r.id,
        agent: r.agent,
        playbook: r.playbook,
        environment: r.environment,
        expiresAt: new Date(r.expires_at),
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
    return { kill: engaged, already, revoked };
  });
}

export function killSwitchRepository(db: Kysely<Database>): KillSwitchRepository {
  return {
    engaged: () =>
      guard("list", async () =>
        (
          await db
            .selectFrom("kill_switches")
            .selectAll()
            .where("lifted_at", "is", null)
            .orderBy("engaged_at")
            .execute()
        ).map(toKill),
      ),
    blocking: (agent, runnerClass, environment) =>
      guard("check", async () => {
        const row = await db
          .selectFrom("kill_switches")
          .selectAll()
          .where("lifted_at", "is", null)
          .where((eb) =>
            eb.or([
              eb.and([eb("scope", "=", "agent"), eb("target", "=", agent)]),
              eb.and([eb("scope", "=", "class"), eb("target", "=", runnerClass)]),
              eb.and([eb("scope", "=", "environment"), eb("target", "=", environment)]),
              eb("scope", "=", "all"),
            ]),
          )
          .orderBy("engaged_at")
          .executeTakeFirst();
        return row ? toKill(row) : undefined;
      }),
    engage: (kill, reach, reasons) => guard("engage", () => engage(db, kill, reach, reasons)),
    lift: (scope, target, at, by) =>
      guard("lift", async () =>
        (
          await db
            .updateTable("kill_switches")
            .set({ lifted_at: at, lifted_by: by })
            .where("scope", "=", scope)
            .where("target", "=", target)
            .where("lifted_at", "is", null)
            .returningAll()
            .execute()
        ).map(toKill),
      ),
  };
}
