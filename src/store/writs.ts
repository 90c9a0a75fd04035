/**
 * Issued writs. A row holds the grants as written (`{action, resource}` after parameter
 * substitution); `toActiveWrit` compiles them into the core model for the decision point.
 *
 * `uses` counts spent uses. `spendUse` is one conditional UPDATE, so concurrent spenders on any
 * number of processes can never take a writ past `max_uses`.
 */
import { type Insertable, type Kysely, type Selectable, sql } from "kysely";
import { type ActiveWrit, compileRule, isWritError, q, type RuleText, WritError } from "../core/index.js";
import type { Companion } from "./audit.js";
import type { WritChange } from "./changes.js";
import { ERR_STORE_CORRUPT, guard, sqlState } from "./errors.js";
import { type IssuanceLock, issuanceLock } from "./issuance-lock.js";
import type { Database, WritsTable } from "./schema.js";

export const ERR_WRIT_INVALID = "ERR_WRIT_INVALID";
export const ERR_WRIT_EXISTS = "ERR_WRIT_EXISTS";
export const ERR_WRIT_NOT_FOUND = "ERR_WRIT_NOT_FOUND";
export const ERR_WRIT_REVOKED = "ERR_WRIT_REVOKED";
export const ERR_WRIT_EXPIRED = "ERR_WRIT_EXPIRED";
export const ERR_WRIT_NOT_YET_VALID = "ERR_WRIT_NOT_YET_VALID";
export const ERR_WRIT_EXHAUSTED = "ERR_WRIT_EXHAUSTED";

export type WritStatus = "active" | "revoked";

/** What the broker stores when it issues a writ. */
export interface NewWrit {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly grants: readonly RuleText[];
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** undefined: unlimited uses within the TTL. */
  readonly maxUses?: number | undefined;
  /** The change ticket the writ was issued under. */
  readonly ticket?: string | undefined;
  /** The human the agent acts for (a CIBA requester), when not the agent itself. */
  readonly sponsor?: string | undefined;
  /** The resource server(s) the token is for (RFC 8707 `resource`). */
  readonly audience?: string | undefined;
  /** The DPoP key thumbprint the token is bound to (RFC 9449 `cnf.jkt`). */
  readonly jkt?: string | undefined;
  /** The approval request it consumed. */
  readonly approvalRequest?: string | undefined;
  /**
   * The writ it was delegated from (token exchange with an `actor_token`, docs/broker.md#delegation):
   * its uses are spent from every ancestor too, and revoking any ancestor revokes it.
   */
  readonly parent?: string | undefined;
}

const OPTIONAL_TEXT = ["ticket", "sponsor", "audience", "jkt", "approvalRequest", "parent"] as const;

export interface StoredWrit extends Omit<NewWrit, "maxUses" | (typeof OPTIONAL_TEXT)[number]> {
  readonly kind: "stored-writ";
  readonly maxUses: number | undefined;
  readonly ticket: string | undefined;
  readonly sponsor: string | undefined;
  readonly audience: string | undefined;
  readonly jkt: string | undefined;
  readonly approvalRequest: string | undefined;
  readonly parent: string | undefined;
  /** Uses spent so far. */
  readonly uses: number;
  readonly status: WritStatus;
  readonly revokedAt: Date | undefined;
  readonly revokedReason: string | undefined;
}

export interface SpendResult {
  /** Uses spent, this one included. */
  readonly uses: number;
  /** Uses left after this one; undefined when the writ is unlimited. */
  readonly usesLeft: number | undefined;
}

export interface RevokeResult {
  readonly writ: StoredWrit;
  /** True when the writ was already revoked: the first revocation's time and reason are kept. */
  readonly alreadyRevoked: boolean;
  /** The writs delegated from it, at any depth, that this call revoked with it. */
  readonly descendants: readonly StoredWrit[];
}

/** How many writs an agent holds and has been issued lately: what the issuance caps count. */
export interface WritLoad {
  /** Active, unexpired, not used up (whether or not yet valid). */
  readonly active: number;
  /** Issued at or after the window's start, whatever became of them since. */
  readonly issuedSince: number;
}

/** Where the counts of `load` may stop: the runner class's limits. */
export interface WritLoadCaps {
  readonly active?: number | undefined;
  readonly issued?: number | undefined;
}

export interface WritRepository {
  /** Stores a new writ. `ERR_WRIT_INVALID` for a malformed one, `ERR_WRIT_EXISTS` for a taken id. */
  insert(writ: NewWrit): Promise<StoredWrit>;
  get(id: string): Promise<StoredWrit | undefined>;
  /** The agent's writs that are active, issued at or before `now`, unexpired and not used up. */
  listActive(agent: string, now: Date): Promise<StoredWrit[]>;
  /**
   * The agent's writs that are active, unexpired and not used up, including those issued after
   * `now` (another server's clock may run ahead): what the decision point's writ index holds.
   */
  listUnexpired(agent: string, now: Date): Promise<StoredWrit[]>;
  /**
   * For a writ stored by other means (in one commit with its audit record, `writRow`): tells this
   * process's listeners it is being stored; call the function returned with whether it was.
   */
  announce(writ: NewWrit): (stored: boolean) => void;
  /**
   * Counts for the issuance caps: writs held at `now`, and writs issued since `since`. A count
   * stops at its cap when one is given (the answer is then `min(count, cap)`, all a limit check
   * needs), so its cost does not grow with the agent's writs.
   */
  load(agent: string, now: Date, since: Date, caps?: WritLoadCaps): Promise<WritLoad>;
  /**
   * Revokes a writ and every writ delegated from it, at any depth (idempotent). `ERR_WRIT_NOT_FOUND`
   * when there is no such writ.
   */
  revoke(id: string, reason: string, now?: Date): Promise<RevokeResult>;
  /**
   * A writ and its ancestors, from it up to its root, as committed (waiting for a revocation of any
   * of them in progress). Empty when there is no such writ.
   */
  lineage(id: string): Promise<StoredWrit[]>;
  /**
   * Spends one use, atomically: only an active, valid, not used-up writ is charged. Otherwise
   * `ERR_WRIT_NOT_FOUND`, `ERR_WRIT_REVOKED`, `ERR_WRIT_EXPIRED`, `ERR_WRIT_NOT_YET_VALID` or
   * `ERR_WRIT_EXHAUSTED`, and nothing changes. A delegated writ's use is spent from each of its
   * ancestors too, in one transaction: all are charged or none (a refusal names the ancestor).
   */
  spendUse(id: string, now?: Date): Promise<SpendResult>;
  /**
   * Runs `fn` while no other `serialiseIssuance` for `agent` runs on this store, in this process or
   * another (issuance-lock.ts): count the agent's writs, check its limits and store the new writ
   * inside it, and concurrent issuances cannot together overshoot the limits.
   */
  serialiseIssuance<T>(agent: string, fn: () => Promise<T>): Promise<T>;
}

/** The core model of a stored writ, grants compiled. */
export function toActiveWrit(writ: StoredWrit): ActiveWrit {
  return {
    kind: "writ",
    id: writ.id,
    agent: writ.agent,
    playbook: writ.playbook,
    environment: writ.environment,
    grants: writ.grants.map((text, i) => ({
      kind: "grant",
      rule: compileRule(text),
      path: ["writs", writ.id, "grants", i],
    })),
    issuedAt: writ.issuedAt,
    expiresAt: writ.expiresAt,
    usesLeft: writ.maxUses === undefined ? undefined : writ.maxUses - writ.uses,
    revoked: writ.status === "revoked",
  };
}

function invalid(message: string): WritError {
  return new WritError(ERR_WRIT_INVALID, message);
}

function checkName(field: string, value: unknown, max = 200): void {
  if (typeof value !== "string" || value.length === 0 || value.length > max) {
    throw invalid(`writ ${field}: expected a non-empty string of at most ${max} characters`);
  }
}

function checkDate(field: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw invalid(`writ ${field}: expected a valid date`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function validate(writ: NewWrit): void {
  checkName("id", writ.id);
  checkName("agent", writ.agent);
  checkName("playbook", writ.playbook);
  checkName("environment", writ.environment);
  checkDate("issuedAt", writ.issuedAt);
  checkDate("expiresAt", writ.expiresAt);
  if (writ.expiresAt.getTime() <= writ.issuedAt.getTime()) {
    throw invalid(`writ ${q(writ.id)}: expiresAt must be after issuedAt`);
  }
  if (writ.maxUses !== undefined && !(Number.isSafeInteger(writ.maxUses) && writ.maxUses > 0)) {
    throw invalid(`writ ${q(writ.id)}: maxUses must be a positive integer, got ${q(writ.maxUses)}`);
  }
  for (const field of OPTIONAL_TEXT) {
    if (writ[field] !== undefined) checkName(field, writ[field], 2000);
  }
  if (!isPlainObject(writ.params)) throw invalid(`writ ${q(writ.id)}: params must be an object`);
  if (!Array.isArray(writ.grants)) throw invalid(`writ ${q(writ.id)}: grants must be an array`);
  writ.grants.forEach((grant, i) => {
    if (typeof grant?.action !== "string" || typeof grant?.resource !== "string") {
      throw invalid(`writ ${q(writ.id)}: grants[${i}]: expected {action, resource} strings`);
    }
    try {
      compileRule(grant);
    } catch (err) {
      if (isWritError(err)) throw invalid(`writ ${q(writ.id)}: grants[${i}]: ${err.message}`);
      throw err;
    }
  });
}

/** Why a use of `writ` cannot be spent at `now`; undefined when it can. */
function unspendableReason(writ: StoredWrit, now: Date): WritError | undefined {
  const id = writ.id;
  if (writ.status === "revoked") return new WritError(ERR_WRIT_REVOKED, `writ ${q(id)} is revoked`);
  if (writ.expiresAt.getTime() <= now.getTime()) {
    return new WritError(ERR_WRIT_EXPIRED, `writ ${q(id)} expired at ${writ.expiresAt.toISOString()}`);
  }
  if (writ.issuedAt.getTime() > now.getTime()) {
    return new WritError(
      ERR_WRIT_NOT_YET_VALID,
      `writ ${q(id)} is not valid before ${writ.issuedAt.toISOString()}`,
    );
  }
  if (writ.maxUses !== undefined && writ.uses >= writ.maxUses) {
    return new WritError(
      ERR_WRIT_EXHAUSTED,
      `writ ${q(id)} has no uses left (${writ.uses} of ${writ.maxUses})`,
    );
  }
  return undefined;
}

/** The refusal for a writ whose use was not spent (the row only moves towards refusal). */
function unspendable(writ: StoredWrit, now: Date): WritError {
  return (
    unspendableReason(writ, now) ??
    new WritError(ERR_WRIT_EXHAUSTED, `writ ${q(writ.id)} has no uses left (${writ.uses} of ${writ.maxUses})`)
  );
}

/** How deep a delegation chain the store follows (the runner classes' limits are far below it). */
const MAX_CHAIN = 32;

// biome-ignore lint/suspicious/noExplicitAny: a transaction or the database, whichever the caller holds
type Queryable = Kysely<any>;

/**
 * Revokes every active writ delegated from `roots`, at any depth, and returns them. Run after the
 * roots' own revocation: a child stored before this statement is caught by it, and one stored after
 * finds its parent revoked when its issuer reads the lineage again (`lineage`, which waits for a
 * revocation in progress), docs/broker.md#delegation.
 */
export async function revokeDescendants(
  db: Queryable,
  roots: readonly string[],
  reason: string,
  now: Date,
): Promise<StoredWrit[]> {
  if (roots.length === 0) return [];
  const why = `${reason} (an ancestor writ was revoked)`.slice(0, 1000);
  const rows = await guard("revoke delegated writs", () =>
    sql<Selectable<WritsTable>>`
        with recursive tree(id, depth) as (
          select id, 1 from writs where parent_writ in (${sql.join(roots)})
          union
          select w.id, t.depth + 1 from writs w join tree t on w.parent_writ = t.id where t.depth < ${MAX_CHAIN}
        )
        update writs set status = 'revoked', revoked_at = ${now}, revoked_reason = ${why}
        where id in (select id from tree) and status = 'active'
        returning *`.execute(db),
  );
  return rows.rows.map(fromRow);
}

/** The recursive walk from a writ up through its ancestors (`lineage` and `spendChain`). */
const chainOf = (id: string) => sql`
  with recursive chain(id, parent_writ, depth) as (
    select id, parent_writ, 0 from writs where id = ${id}
    union all
    select w.id, w.parent_writ, c.depth + 1 from writs w join chain c on w.id = c.parent_writ
    where c.depth < ${MAX_CHAIN}
  )
  select id from chain`;

/** The rows of a chain ordered from the writ up to its root (a missing ancestor ends it early). */
function ordered(id: string, rows: readonly Selectable<WritsTable>[]): StoredWrit[] {
  const byId = new Map(rows.map((r) => [r.id, fromRow(r)]));
  const chain: StoredWrit[] = [];
  for (let w = byId.get(id); w !== undefined && chain.length <= MAX_CHAIN; ) {
    chain.push(w);
    w = w.parent === undefined ? undefined : byId.get(w.parent);
  }
  return chain;
}

/**
 * Spends one use of a delegated writ and of each of its ancestors, in one transaction, the chain's
 * rows locked in id order (concurrent spenders of one family wait rather than deadlock).
 */
async function spendChain(
  db: Kysely<Database>,
  id: string,
  now: Date,
): Promise<{ result: SpendResult; charged: StoredWrit[] }> {
  return guard("spend delegated writ use", () =>
    db.transaction().execute(async (trx) => {
      const locked = await sql<Selectable<WritsTable>>`
        select * from writs where id in (${chainOf(id)}) order by id for update`.execute(trx);
      // from the writ up to its root: the first that cannot be spent is the refusal
      const chain = ordered(id, locked.rows);
      const child = chain[0];
      if (child === undefined) throw new WritError(ERR_WRIT_NOT_FOUND, `writ ${q(id)} not found`);
      const last = chain[chain.length - 1];
      if (last?.parent !== undefined) {
        throw new WritError(ERR_WRIT_NOT_FOUND, `writ ${q(id)}: its parent writ ${q(last.parent)} is gone`);
      }
      for (const w of chain) {
        const refusal = unspendableReason(w, now);
        if (refusal === undefined) continue;
        if (w === child) throw refusal;
        throw new WritError(refusal.code, `writ ${q(id)} is delegated from ${refusal.message}`);
      }
      const rows = await trx
        .updateTable("writs")
        .set((eb) => ({
          uses: eb("uses", "+", 1),
          first_used_at: eb.fn<Date>("least", [eb.ref("first_used_at"), eb.val(now)]),
          last_used_at: eb.fn<Date>("greatest", [eb.ref("last_used_at"), eb.val(now)]),
        }))
        .where(
          "id",
          "in",
          chain.map((w) => w.id),
        )
        .returningAll()
        .execute();
      const charged = rows.map(fromRow);
      const lefts = charged.flatMap((w) => (w.maxUses === undefined ? [] : [w.maxUses - w.uses]));
      const uses = charged.find((w) => w.id === id)?.uses ?? child.uses + 1;
      return { result: { uses, usesLeft: lefts.length === 0 ? undefined : Math.min(...lefts) }, charged };
    }),
  );
}

function corrupt(id: string, what: string): WritError {
  return new WritError(ERR_STORE_CORRUPT, `writ ${q(id)}: ${what}`);
}

function parseGrants(id: string, value: unknown): RuleText[] {
  if (!Array.isArray(value)) throw corrupt(id, "grants is not an array");
  return value.map((g: unknown, i) => {
    const grant = g as { action?: unknown; resource?: unknown } | null;
    if (typeof grant?.action !== "string" || typeof grant.resource !== "string") {
      throw corrupt(id, `grants[${i}] is not {action, resource}`);
    }
    return { action: grant.action, resource: grant.resource };
  });
}

function fromRow(row: Selectable<WritsTable>): StoredWrit {
  if (row.status !== "active" && row.status !== "revoked")
    throw corrupt(row.id, `unknown status ${q(row.status)}`);
  if (!isPlainObject(row.params)) throw corrupt(row.id, "params is not an object");
  return {
    kind: "stored-writ",
    id: row.id,
    agent: row.agent,
    playbook: row.playbook,
    environment: row.environment,
    params: row.params,
    grants: parseGrants(row.id, row.grants),
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    maxUses: row.max_uses ?? undefined,
    ticket: row.ticket ?? undefined,
    sponsor: row.sponsor ?? undefined,
    audience: row.audience ?? undefined,
    jkt: row.jkt ?? undefined,
    approvalRequest: row.approval_request ?? undefined,
    parent: row.parent_writ ?? undefined,
    uses: row.uses,
    status: row.status,
    revokedAt: row.revoked_at ?? undefined,
    revokedReason: row.revoked_reason ?? undefined,
  };
}

/**
 * A new writ as a row of `writs`, checked as `insert` checks it (`ERR_WRIT_INVALID`): for storing it
 * in the same commit as its issuance audit record (`AuditLog.append(…, { with })`).
 */
export function writRow(writ: NewWrit): Companion {
  validate(writ);
  return {
    table: "writs",
    row: {
      id: writ.id,
      agent: writ.agent,
      playbook: writ.playbook,
      environment: writ.environment,
      params: writ.params,
      grants: writ.grants.map((g) => ({ action: g.action, resource: g.resource })),
      issued_at: writ.issuedAt.toISOString(),
      expires_at: writ.expiresAt.toISOString(),
      max_uses: writ.maxUses ?? null,
      ...Object.fromEntries(OPTIONAL_TEXT.map((field) => [COLUMN_OF[field], writ[field] ?? null])),
    },
  };
}

/** The column of each optional text field. */
const COLUMN_OF: Readonly<Record<(typeof OPTIONAL_TEXT)[number], string>> = {
  ticket: "ticket",
  sponsor: "sponsor",
  audience: "audience",
  jkt: "jkt",
  approvalRequest: "approval_request",
  parent: "parent_writ",
};

/** The counts of `WritRepository.load`, each stopping at its cap. */
function countLoad(
  db: Kysely<Database>,
  agent: string,
  now: Date,
  since: Date,
  caps: WritLoadCaps,
): Promise<WritLoad> {
  checkDate("now", now);
  checkDate("since", since);
  const cap = (n: number | undefined) => {
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) {
      throw new TypeError(`writ load: a cap must be an integer ≥ 0, got ${n}`);
    }
    return n;
  };
  const activeCap = cap(caps.active);
  const issuedCap = cap(caps.issued);
  return guard("count writs", async () => {
    // Two counts, each over its own index (writs_active_by_agent, writs_by_agent_issued) and
    // each stopping at its cap: the cost is bounded by the limits, not by the agent's history.
    let active = db
      .selectFrom("writs")
      .select(sql.lit(1).as("one"))
      .where("agent", "=", agent)
      .where("status", "=", "active")
      .where("expires_at", ">", now)
      .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]));
    if (activeCap !== undefined) active = active.limit(activeCap);
    let issued = db
      .selectFrom("writs")
      .select(sql.lit(1).as("one"))
      .where("agent", "=", agent)
      .where("issued_at", ">=", since);
    if (issuedCap !== undefined) issued = issued.limit(issuedCap);
    const row = await db
      .selectNoFrom((eb) => [
        eb.selectFrom(active.as("a")).select(eb.fn.countAll<string | number>().as("n")).as("active"),
        eb.selectFrom(issued.as("i")).select(eb.fn.countAll<string | number>().as("n")).as("recent"),
      ])
      .executeTakeFirstOrThrow();
    return { active: Number(row.active), issuedSince: Number(row.recent) };
  });
}

/** `WritRepository.spendUse`: one conditional UPDATE for a writ without a parent, else the chain. */
async function spendOne(
  db: Kysely<Database>,
  id: string,
  now: Date,
  changed: (w: StoredWrit) => void,
  get: (id: string) => Promise<StoredWrit | undefined>,
): Promise<SpendResult> {
  checkDate("now", now);
  const row = await guard("spend writ use", () =>
    db
      .updateTable("writs")
      .set((eb) => ({
        uses: eb("uses", "+", 1),
        // the earliest and the latest spend, whatever order servers' clocks report them in
        first_used_at: eb.fn<Date>("least", [eb.ref("first_used_at"), eb.val(now)]),
        last_used_at: eb.fn<Date>("greatest", [eb.ref("last_used_at"), eb.val(now)]),
      }))
      .where("id", "=", id)
      .where("parent_writ", "is", null)
      .where("status", "=", "active")
      .where("issued_at", "<=", now)
      .where("expires_at", ">", now)
      .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]))
      .returningAll()
      .executeTakeFirst(),
  );
  if (row !== undefined) {
    changed(fromRow(row));
    return { uses: row.uses, usesLeft: row.max_uses === null ? undefined : row.max_uses - row.uses };
  }
  // Nothing was charged; say why. The row only moves towards refusal (revoked, used up, expired),
  // so reading it after the failed update gives the reason that applied.
  const writ = await get(id);
  if (writ === undefined) throw new WritError(ERR_WRIT_NOT_FOUND, `writ ${q(id)} not found`);
  if (writ.parent !== undefined) {
    const spent = await spendChain(db, id, now);
    for (const w of spent.charged) changed(w);
    return spent.result;
  }
  throw unspendable(writ, now);
}

/**
 * `onChange` hears of this process's own changes as soon as their statement returns (the writ index
 * applies them at once instead of waiting for the notification, see changes.ts).
 */
export function writRepository(
  db: Kysely<Database>,
  onChange: (change: WritChange) => void = () => {},
  lock: IssuanceLock = issuanceLock(db, "pglite"),
): WritRepository {
  const changed = (w: StoredWrit, writ?: ActiveWrit) =>
    onChange({
      op: writ ? "insert" : "update",
      id: w.id,
      agent: w.agent,
      status: w.status,
      uses: w.uses,
      maxUses: w.maxUses ?? null,
      issuedAt: w.issuedAt.getTime(),
      expiresAt: w.expiresAt.getTime(),
      writ,
    });
  /** The agent's active, unexpired, not used-up writs in issuance order; `valid`: issued by `now`. */
  const list = (agent: string, now: Date, valid: boolean) => {
    checkDate("now", now);
    return guard("list active writs", async () => {
      let query = db
        .selectFrom("writs")
        .selectAll()
        .where("agent", "=", agent)
        .where("status", "=", "active")
        .where("expires_at", ">", now)
        .where((eb) => eb.or([eb("max_uses", "is", null), eb("uses", "<", eb.ref("max_uses"))]));
      if (valid) query = query.where("issued_at", "<=", now);
      const rows = await query.orderBy("issued_at").orderBy("id").execute();
      return rows.map(fromRow);
    });
  };
  /** Tells the listeners a writ is being stored; the function returned says whether it was. */
  const announce = (writ: NewWrit) => {
    onChange({ op: "issuing", id: writ.id, agent: writ.agent });
    return (stored: boolean) => {
      if (!stored) {
        onChange({ op: "abandoned", id: writ.id, agent: writ.agent });
        return;
      }
      // the writ as the store now holds it, compiled
      const held: StoredWrit = {
        ...writ,
        kind: "stored-writ",
        maxUses: writ.maxUses,
        ticket: writ.ticket,
        sponsor: writ.sponsor,
        audience: writ.audience,
        jkt: writ.jkt,
        approvalRequest: writ.approvalRequest,
        parent: writ.parent,
        uses: 0,
        status: "active",
        revokedAt: undefined,
        revokedReason: undefined,
      };
      changed(held, toActiveWrit(held));
    };
  };
  const get = (id: string) =>
    guard("read writ", async () => {
      const row = await db.selectFrom("writs").selectAll().where("id", "=", id).executeTakeFirst();
      return row === undefined ? undefined : fromRow(row);
    });

  return {
    announce,

    async insert(writ) {
      const { row: values } = writRow(writ);
      const done = announce(writ);
      let stored: StoredWrit | undefined;
      try {
        stored = await guard("insert writ", async () => {
          try {
            const row = await db
              .insertInto("writs")
              .values({
                ...(values as Insertable<WritsTable>),
                params: JSON.stringify(values.params),
                grants: JSON.stringify(values.grants),
              })
              .returningAll()
              .executeTakeFirstOrThrow();
            return fromRow(row);
          } catch (err) {
            if (sqlState(err) === "23505") {
              throw new WritError(ERR_WRIT_EXISTS, `writ ${q(writ.id)} already exists`, { cause: err });
            }
            throw err;
          }
        });
      } finally {
        done(stored !== undefined);
      }
      return stored;
    },

    get,

    lineage: (id) =>
      guard("read writ lineage", async () => {
        const rows = await sql<Selectable<WritsTable>>`
          select * from writs where id in (${chainOf(id)}) for share`.execute(db);
        return ordered(id, rows.rows);
      }),

    listActive: (agent, now) => list(agent, now, true),

    listUnexpired: (agent, now) => list(agent, now, false),

    load: (agent, now, since, caps = {}) => countLoad(db, agent, now, since, caps),

    async revoke(id, reason, now = new Date()) {
      checkDate("now", now);
      if (typeof reason !== "string" || reason.trim().length === 0 || reason.length > 1000) {
        throw invalid(
          `revoke writ ${q(id)}: the reason must be a non-empty string of at most 1000 characters`,
        );
      }
      const row = await guard("revoke writ", () =>
        db
          .updateTable("writs")
          .set({ status: "revoked", revoked_at: now, revoked_reason: reason })
          .where("id", "=", id)
          .where("status", "=", "active")
          .returningAll()
          .executeTakeFirst(),
      );
      const existing = row === undefined ? await get(id) : fromRow(row);
      if (existing === undefined) throw new WritError(ERR_WRIT_NOT_FOUND, `writ ${q(id)} not found`);
      if (row !== undefined) changed(existing);
      // an already revoked writ's descendants too: one delegated while the revocation ran is caught here
      const descendants = await revokeDescendants(db, [id], reason, now);
      for (const d of descendants) changed(d);
      return { writ: existing, alreadyRevoked: row === undefined, descendants };
    },

    spendUse: (id, now = new Date()) => spendOne(db, id, now, (w) => changed(w), get),

    serialiseIssuance: (agent, fn) => lock.serialise(agent, fn),
  };
}
