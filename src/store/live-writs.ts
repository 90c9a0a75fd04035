/**
 * Live writs (active and unexpired) as operators look at them: the console's pages of them, newest
 * first, with the downstream credentials made for them, and the writs a kill of a scope would
 * revoke (`console/writs-page.ts`, `console/kill-page.ts`).
 */
import type { Kysely } from "kysely";
import { guard } from "./errors.js";
import type { KillReach } from "./kill.js";
import type { Database } from "./schema.js";

export interface LiveWritRow {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly grants: unknown;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly maxUses: number | null;
  readonly uses: number;
  readonly ticket: string | null;
  readonly sponsor: string | null;
}

export interface LiveCredential {
  readonly writ: string;
  readonly system: string;
  readonly kind: string;
  readonly state: string;
  readonly expiresAt: Date;
}

export interface LiveWrits {
  /**
   * Live writs at `now` (of one agent, one environment, when given), newest issued first then by id
   * descending, starting below `before`; at most `limit`.
   */
  page(
    filter: { agent?: string | undefined; environment?: string | undefined },
    before: { at: Date; id: string } | undefined,
    now: Date,
    limit: number,
  ): Promise<LiveWritRow[]>;
  /** The downstream credentials not removed of these writs. */
  credentials(writIds: readonly string[]): Promise<LiveCredential[]>;
  /** The live writs at `now` in a kill's reach: the newest `limit`, and how many in all. */
  inReach(reach: KillReach, now: Date, limit: number): Promise<{ rows: LiveWritRow[]; count: number }>;
}

const toRow = (r: {
  id: string;
  agent: string;
  playbook: string;
  environment: string;
  grants: unknown;
  issued_at: Date;
  expires_at: Date;
  max_uses: number | null;
  uses: number;
  ticket: string | null;
  sponsor: string | null;
}): LiveWritRow => ({
  id: r.id,
  agent: r.agent,
  playbook: r.playbook,
  environment: r.environment,
  grants: r.grants,
  issuedAt: new Date(r.issued_at),
  expiresAt: new Date(r.expires_at),
  maxUses: r.max_uses,
  uses: Number(r.uses),
  ticket: r.ticket,
  sponsor: r.sponsor,
});

const COLUMNS = [
  "id",
  "agent",
  "playbook",
  "environment",
  "grants",
  "issued_at",
  "expires_at",
  "max_uses",
  "uses",
  "ticket",
  "sponsor",
] as const;

export function liveWrits(db: Kysely<Database>): LiveWrits {
  return {
    page: (filter, before, now, limit) =>
      guard("list live writs", async () => {
        let sel = db
          .selectFrom("writs")
          .select([...COLUMNS])
          .where("status", "=", "active")
          .where("expires_at", ">", now);
        if (filter.agent) sel = sel.where("agent", "=", filter.agent);
        if (filter.environment) sel = sel.where("environment", "=", filter.environment);
        if (before) {
          sel = sel.where((eb) =>
            eb.or([
              eb("issued_at", "<", before.at),
              eb.and([eb("issued_at", "=", before.at), eb("id", "<", before.id)]),
            ]),
          );
        }
        const rows = await sel.orderBy("issued_at", "desc").orderBy("id", "desc").limit(limit).execute();
        return rows.map(toRow);
      }),
    credentials: (writIds) =>
      guard("list downstream credentials", async () => {
        if (writIds.length === 0) return [];
        const rows = await db
          .selectFrom("downstream_records")
          .select(["writ", "system", "kind", "state", "expires_at"])
          .where("writ", "in", [...writIds])
          .where("state", "<>", "removed")
          .execute();
        return rows.map((r) => ({
          writ: r.writ,
          system: r.system,
          kind: r.kind,
          state: r.state,
          expiresAt: new Date(r.expires_at),
        }));
      }),
    inReach: (reach, now, limit) =>
      guard("list live writs", async () => {
        let sel = db.selectFrom("writs").where("status", "=", "active").where("expires_at", ">", now);
        if (reach.agent !== undefined) sel = sel.where("agent", "=", reach.agent);
        if (reach.environment !== undefined) sel = sel.where("environment", "=", reach.environment);
        if (reach.agents !== undefined)
          sel = sel.where("agent", "in", reach.agents.length === 0 ? [""] : [...reach.agents]);
        const [rows, count] = await Promise.all([
          sel
            .select([...COLUMNS])
            .orderBy("issued_at", "desc")
            .limit(limit)
            .execute(),
          sel.select((eb) => eb.fn.countAll<string | number | bigint>().as("n")).executeTakeFirstOrThrow(),
        ]);
        return { rows: rows.map(toRow), count: Number(count.n) };
      }),
  };
}
