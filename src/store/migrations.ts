/**
 * The schema, as migrations in code. Names sort in the order they apply; a migration, once
 * released, never changes — later issues add new ones. There are no down migrations: the audit
 * tables are append-only and nothing rolls them back.
 *
 * Two processes may migrate one PostgreSQL at once: Kysely's Migrator takes a session advisory
 * lock (`pg_advisory_lock`) around the run and applies each migration in a transaction, so the
 * second process waits and then finds nothing left to do.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";
import { WritError } from "../core/index.js";
import { ERR_STORE_MIGRATION, storeError } from "./errors.js";

/** The `prev_hash` of the first audit record and the hash of an empty log: 64 zeros. */
export const GENESIS_HASH = "0".repeat(64);

// biome-ignore lint/suspicious/noExplicitAny: migrations run against whatever schema exists at that point
type AnyDb = Kysely<any>;

async function run(db: AnyDb, statements: readonly ReturnType<typeof sql.raw>[]): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

const initial: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table writs (
          id text primary key check (length(id) between 1 and 200),
          agent text not null check (length(agent) > 0),
          playbook text not null check (length(playbook) > 0),
          environment text not null check (length(environment) > 0),
          params jsonb not null default '{}'::jsonb check (jsonb_typeof(params) = 'object'),
          grants jsonb not null check (jsonb_typeof(grants) = 'array'),
          issued_at timestamptz not null,
          expires_at timestamptz not null,
          max_uses integer check (max_uses is null or max_uses > 0),
          uses integer not null default 0 check (uses >= 0),
          status text not null default 'active' check (status in ('active', 'revoked')),
          revoked_at timestamptz,
          revoked_reason text,
          constraint writs_expiry_after_issue check (expires_at > issued_at),
          constraint writs_uses_within_max check (max_uses is null or uses <= max_uses),
          constraint writs_revocation_complete check ((status = 'revoked') = (revoked_at is not null))
        )`),
      sql.raw(`create index writs_active_by_agent on writs (agent, expires_at) where status = 'active'`),
      sql.raw(`create index writs_active_by_environment on writs (environment) where status = 'active'`),
      // timestamptz(3): the hash covers `at` to the millisecond, so the column cannot hold more.
      sql.raw(`
        create table audit_records (
          seq bigint primary key check (seq > 0),
          at timestamptz(3) not null,
          type text not null,
          data jsonb not null,
          prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
          hash text not null check (hash ~ '^[0-9a-f]{64}$')
        )`),
      sql.raw(`
        create table audit_head (
          id smallint primary key default 1 check (id = 1),
          seq bigint not null check (seq >= 0),
          hash text not null check (hash ~ '^[0-9a-f]{64}$'),
          updated_at timestamptz not null
        )`),
      sql.raw(`insert into audit_head (id, seq, hash, updated_at) values (1, 0, '${GENESIS_HASH}', now())`),
      sql.raw(`
        create table audit_checkpoints (
          seq bigint not null check (seq >= 0),
          key_id text not null,
          hash text not null check (hash ~ '^[0-9a-f]{64}$'),
          at timestamptz(3) not null,
          signature text not null,
          primary key (seq, key_id)
        )`),
      // Defence in depth: the application never updates or deletes audit rows, so the database
      // refuses to. Someone with owner rights can still disable the triggers; verify() is what
      // detects that.
      sql.raw(`
        create function writ_audit_append_only() returns trigger language plpgsql as $fn$
        begin
          raise exception 'writ: % on % refused: the audit log is append-only', tg_op, tg_table_name
            using errcode = 'WA001';
        end
        $fn$`),
      sql.raw(`
        create trigger audit_records_append_only before update or delete on audit_records
        for each row execute function writ_audit_append_only()`),
      sql.raw(`
        create trigger audit_records_no_truncate before truncate on audit_records
        for each statement execute function writ_audit_append_only()`),
      sql.raw(`
        create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
        for each row execute function writ_audit_append_only()`),
      sql.raw(`
        create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
        for each statement execute function writ_audit_append_only()`),
    ]);
  },
};

/**
 * The broker's tables: per-environment signing keys, the replay cache for one-time JWT ids
 * (client assertions, DPoP proofs), approval requests and decisions, kill switches and the
 * repeated-denial counters; and what a writ records of how it was issued.
 */
const broker: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table signing_keys (
          kid text primary key check (length(kid) between 1 and 200),
          environment text not null check (length(environment) > 0),
          alg text not null default 'EdDSA',
          public_jwk jsonb not null check (jsonb_typeof(public_jwk) = 'object'),
          private_jwk jsonb not null check (jsonb_typeof(private_jwk) = 'object'),
          created_at timestamptz not null,
          sign_until timestamptz not null,
          publish_until timestamptz not null,
          status text not null default 'active' check (status in ('active', 'retired')),
          retired_at timestamptz,
          constraint signing_keys_life check (sign_until > created_at and publish_until >= sign_until),
          constraint signing_keys_retirement check ((status = 'retired') = (retired_at is not null))
        )`),
      sql.raw(`create index signing_keys_by_environment on signing_keys (environment, status, created_at)`),
      sql.raw(`
        create table seen_jti (
          scope text not null check (length(scope) > 0),
          jti text not null check (length(jti) between 1 and 512),
          expires_at timestamptz not null,
          primary key (scope, jti)
        )`),
      sql.raw(`create index seen_jti_expiry on seen_jti (expires_at)`),
      sql.raw(`
        create table approval_requests (
          id text primary key check (length(id) between 1 and 200),
          environment text not null,
          agent text not null,
          playbook text not null,
          params jsonb not null check (jsonb_typeof(params) = 'object'),
          ticket text,
          binding text not null check (binding ~ '^[0-9a-f]{64}$'),
          requester text not null,
          status text not null default 'pending'
            check (status in ('pending', 'approved', 'denied', 'expired', 'consumed')),
          created_at timestamptz not null,
          expires_at timestamptz not null,
          poll_interval integer not null default 5 check (poll_interval > 0),
          last_polled_at timestamptz,
          decided_at timestamptz,
          writ_id text,
          constraint approval_requests_expiry check (expires_at > created_at)
        )`),
      sql.raw(`create index approval_requests_pending on approval_requests (status, expires_at)`),
      sql.raw(`create index approval_requests_binding on approval_requests (binding)`),
      sql.raw(`
        create table approval_decisions (
          request_id text not null references approval_requests (id),
          approver text not null check (length(approver) > 0),
          decision text not null check (decision in ('approve', 'deny')),
          reason text,
          at timestamptz not null,
          primary key (request_id, approver)
        )`),
      sql.raw(`
        create table kill_switches (
          id text primary key,
          scope text not null check (scope in ('agent', 'class', 'environment', 'all')),
          target text not null,
          reason text,
          engaged_at timestamptz not null,
          engaged_by text not null,
          lifted_at timestamptz,
          lifted_by text,
          constraint kill_switches_lift check ((lifted_at is null) = (lifted_by is null))
        )`),
      sql.raw(`create index kill_switches_engaged on kill_switches (scope, target) where lifted_at is null`),
      sql.raw(`
        create table denial_counters (
          agent text not null,
          environment text not null,
          count integer not null check (count >= 0),
          last_denied_at timestamptz not null,
          blocked_until timestamptz,
          primary key (agent, environment)
        )`),
      sql.raw(`alter table writs add column ticket text`),
      sql.raw(`alter table writs add column sponsor text`),
      sql.raw(`alter table writs add column audience text`),
      sql.raw(`alter table writs add column jkt text`),
      sql.raw(`alter table writs add column approval_request text`),
    ]);
  },
};

/**
 * The analyzer's findings queue: one row per finding (keyed by workload and permission, so a rescan
 * that reclassifies it updates the same row), its status, and an append-only history of every
 * change — opened, reclassified, fixed, reopened, status set by a person.
 */
const analyzer: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table analyzer_findings (
          id text primary key check (length(id) between 1 and 200),
          workload text not null,
          action text not null,
          resource text not null,
          category text not null
            check (category in ('unused-excess', 'unjustified-use', 'inherited-overreach')),
          severity text not null check (severity in ('critical', 'high', 'medium', 'low')),
          title text not null,
          status text not null default 'open' check (status in ('open', 'accepted', 'fixed', 'risk-accepted')),
          finding jsonb not null check (jsonb_typeof(finding) = 'object'),
          first_seen timestamptz not null,
          last_seen timestamptz not null,
          updated_at timestamptz not null
        )`),
      sql.raw(`create index analyzer_findings_queue on analyzer_findings (status, severity)`),
      sql.raw(`create index analyzer_findings_workload on analyzer_findings (workload)`),
      sql.raw(`
        create table analyzer_finding_history (
          seq bigint generated always as identity primary key,
          finding_id text not null references analyzer_findings (id),
          at timestamptz not null,
          kind text not null check (kind in ('opened', 'reclassified', 'severity', 'fixed', 'reopened', 'status')),
          from_category text,
          to_category text,
          from_status text,
          to_status text,
          actor text not null,
          note text
        )`),
      sql.raw(
        `create index analyzer_finding_history_by_finding on analyzer_finding_history (finding_id, seq)`,
      ),
    ]);
  },
};

/**
 * The MCP gateway: the pinned definition of every upstream tool (a changed definition waits in
 * quarantine until an operator approves it), and the approval request each held call is waiting on,
 * by the binding of its exact arguments.
 */
const gateway: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table gateway_tool_pins (
          server text not null check (length(server) between 1 and 200),
          tool text not null check (length(tool) between 1 and 200),
          approved_hash text check (approved_hash is null or approved_hash ~ '^[0-9a-f]{64}$'),
          seen_hash text not null check (seen_hash ~ '^[0-9a-f]{64}$'),
          seen_definition jsonb not null check (jsonb_typeof(seen_definition) = 'object'),
          first_seen timestamptz not null,
          seen_at timestamptz not null,
          approved_at timestamptz,
          approved_by text,
          primary key (server, tool)
        )`),
      sql.raw(`
        create table gateway_holds (
          binding text primary key check (binding ~ '^[0-9a-f]{64}$'),
          request_id text not null,
          created_at timestamptz not null
        )`),
    ]);
  },
};

/**
 * Gateway taint outside any session (MCP 2026-07-28 has none): per writ or agent (`handle`) and
 * prompt context, until it expires, so every gateway process sharing the store refuses a privileged
 * call after an untrusted read made through another.
 */
const gatewayTaint: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table gateway_taints (
          handle text not null check (length(handle) between 1 and 400),
          context text not null check (length(context) between 1 and 200),
          tainted_by text not null check (length(tainted_by) between 1 and 400),
          until timestamptz not null,
          primary key (handle, context)
        )`),
    ]);
  },
};

/**
 * The audience (RFC 8707 `resource`) a CIBA request asks for is fixed when it is made and shown to
 * its approvers; the poll cannot choose another. Null for holds and requests made before.
 */
const approvalAudience: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(
        `alter table approval_requests add column audience text check (audience is null or length(audience) between 1 and 2000)`,
      ),
    ]);
  },
};

/**
 * Change notifications on writs: every row inserted, updated or deleted is announced on the
 * `writ_changes` channel when its transaction commits (LISTEN/NOTIFY), with what the decision
 * point's writ index needs to stay exact — id, agent, status, uses, max uses and validity (epoch
 * milliseconds). A TRUNCATE says `truncate`: forget everything. And an index for counting an
 * agent's recent issuance (the per-runner-class issuance cap).
 */
const writChanges: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create function writ_changes_notify() returns trigger language plpgsql as $fn$
        declare
          r writs;
        begin
          if tg_op = 'TRUNCATE' then
            perform pg_notify('writ_changes', '{"op":"truncate"}');
            return null;
          end if;
          if tg_op = 'DELETE' then r := old; else r := new; end if;
          perform pg_notify('writ_changes', json_build_object(
            'op', lower(tg_op),
            'id', r.id,
            'agent', r.agent,
            'status', r.status,
            'uses', r.uses,
            'maxUses', r.max_uses,
            'issuedAt', round(extract(epoch from r.issued_at) * 1000)::bigint,
            'expiresAt', round(extract(epoch from r.expires_at) * 1000)::bigint
          )::text);
          return null;
        end
        $fn$`),
      sql.raw(`
        create trigger writs_notify after insert or update or delete on writs
        for each row execute function writ_changes_notify()`),
      sql.raw(`
        create trigger writs_notify_truncate after truncate on writs
        for each statement execute function writ_changes_notify()`),
      sql.raw(`create index writs_by_agent_issued on writs (agent, issued_at)`),
    ]);
  },
};

/**
 * The downstream ledger (issue 11): every object created in AWS, GitHub or Kubernetes for a writ,
 * recorded *before* it is created (`intended`), marked `created` after and `removed` once it is
 * gone, so the reaper can remove what a crash left behind; `outlives_writ` marks an object the
 * writ's end itself made (a deny), due by its own expiry only. No foreign key to `writs`: a record whose
 * writ cannot be found is due for removal, not an error. `locator` says how to find the object
 * again and never holds a secret.
 */
const downstream: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create table downstream_records (
          id text primary key check (length(id) between 1 and 200),
          system text not null check (system in ('aws', 'github', 'kubernetes')),
          environment text not null check (length(environment) between 1 and 200),
          writ text not null check (length(writ) between 1 and 200),
          agent text not null check (length(agent) between 1 and 200),
          kind text not null check (length(kind) between 1 and 100),
          locator jsonb not null check (jsonb_typeof(locator) = 'object'),
          state text not null default 'intended' check (state in ('intended', 'created', 'removed')),
          outlives_writ boolean not null default false,
          expires_at timestamptz not null,
          created_at timestamptz not null,
          removed_at timestamptz,
          constraint downstream_removal_complete check ((state = 'removed') = (removed_at is not null))
        )`),
      sql.raw(
        `create index downstream_records_open on downstream_records (expires_at) where state <> 'removed'`,
      ),
      sql.raw(`create index downstream_records_by_writ on downstream_records (writ)`),
    ]);
  },
};

/**
 * What the metrics read (issue 14, docs/metrics.md): when each writ was first and last used (its
 * lifetime actually used, beside the TTL it was issued for), and the posture figures of each
 * `writ scan --store` that the findings alone do not carry (ClusterRoleBindings, workflows with
 * explicit token permissions).
 */
const observability: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`alter table writs add column first_used_at timestamptz, add column last_used_at timestamptz`),
      sql.raw(`create index writs_by_issued on writs (issued_at)`),
      sql.raw(`
        create table analyzer_scans (
          seq bigserial primary key,
          at timestamptz not null,
          cluster_role_bindings integer not null check (cluster_role_bindings >= 0),
          workflows integer not null check (workflows >= 0),
          workflows_explicit integer not null check (workflows_explicit between 0 and workflows),
          findings integer not null check (findings >= 0)
        )`),
    ]);
  },
};

/**
 * The web console (issue 14). The exact arguments of a held tool call beside its hold: the approvals
 * inbox shows approvers what they approve, not only the digest the approval binds (removed with the
 * hold). A partial index of the refusals in the audit log, by seq: the denials feed reads the
 * newest few without scanning every record, whatever the log's size. Its predicate is
 * `DENIAL_PREDICATE`, which queries must repeat word for word for the planner to use it.
 */
export const DENIAL_PREDICATE =
  "(type = 'broker.denied' or (type in ('pdp.decision', 'gateway.call') and data->'decision'->>'allowed' = 'false'))";

const consoleSupport: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`alter table gateway_holds add column arguments jsonb`),
      sql.raw(`create index audit_records_denials on audit_records (seq) where ${DENIAL_PREDICATE}`),
    ]);
  },
};

/**
 * One call appends audit records and stores the writs issued with them (issue 10: the cost of the
 * token exchange). `writ_audit_append` moves the head from exactly (`p_head_seq`, `p_head_hash`) to the
 * last record — the compare-and-set the CTE did before —, inserts the records, then the writ rows
 * (`p_writs`, a JSON array of rows, null for none), in the one statement that calls it: all or
 * nothing. It answers the number of records stored: 0 when the head had moved (nothing written).
 * PL/pgSQL keeps each statement's plan for the session, so a call is parsed and planned once.
 */
const auditAppend: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(`
        create function writ_audit_append(
          p_head_seq bigint, p_head_hash text,
          p_seqs bigint[], p_ats timestamptz[], p_types text[], p_datas jsonb[], p_prev_hashes text[],
          p_hashes text[], p_writs jsonb
        ) returns integer language plpgsql as $fn$
        declare
          v_last integer := cardinality(p_seqs);
          v_stored integer;
        begin
          update audit_head set seq = p_seqs[v_last], hash = p_hashes[v_last], updated_at = now()
          where id = 1 and seq = p_head_seq and hash = p_head_hash;
          if not found then
            return 0;
          end if;
          insert into audit_records (seq, at, type, data, prev_hash, hash)
          select * from unnest(p_seqs, p_ats, p_types, p_datas, p_prev_hashes, p_hashes);
          get diagnostics v_stored = row_count;
          if p_writs is not null then
            insert into writs (id, agent, playbook, environment, params, grants, issued_at, expires_at,
              max_uses, ticket, sponsor, audience, jkt, approval_request)
            select r.id, r.agent, r.playbook, r.environment, r.params, r.grants, r.issued_at, r.expires_at,
              r.max_uses, r.ticket, r.sponsor, r.audience, r.jkt, r.approval_request
            from jsonb_populate_recordset(null::writs, p_writs) as r;
          end if;
          return v_stored;
        end
        $fn$`),
    ]);
  },
};

/**
 * Delegation (docs/broker.md#delegation): a writ names the writ it was delegated from, so that
 * revoking one revokes its descendants and a descendant's use is spent from its ancestors; the
 * append function stores the column with the writ.
 */
const writDelegation: Migration = {
  async up(db: AnyDb) {
    await run(db, [
      sql.raw(
        `alter table writs add column parent_writ text check (parent_writ is null or parent_writ <> id)`,
      ),
      sql.raw(`create index writs_by_parent on writs (parent_writ) where parent_writ is not null`),
      sql.raw(`
        create or replace function writ_audit_append(
          p_head_seq bigint, p_head_hash text,
          p_seqs bigint[], p_ats timestamptz[], p_types text[], p_datas jsonb[], p_prev_hashes text[],
          p_hashes text[], p_writs jsonb
        ) returns integer language plpgsql as $fn$
        declare
          v_last integer := cardinality(p_seqs);
          v_stored integer;
        begin
          update audit_head set seq = p_seqs[v_last], hash = p_hashes[v_last], updated_at = now()
          where id = 1 and seq = p_head_seq and hash = p_head_hash;
          if not found then
            return 0;
          end if;
          insert into audit_records (seq, at, type, data, prev_hash, hash)
          select * from unnest(p_seqs, p_ats, p_types, p_datas, p_prev_hashes, p_hashes);
          get diagnostics v_stored = row_count;
          if p_writs is not null then
            insert into writs (id, agent, playbook, environment, params, grants, issued_at, expires_at,
              max_uses, ticket, sponsor, audience, jkt, approval_request, parent_writ)
            select r.id, r.agent, r.playbook, r.environment, r.params, r.grants, r.issued_at, r.expires_at,
              r.max_uses, r.ticket, r.sponsor, r.audience, r.jkt, r.approval_request, r.parent_writ
            from jsonb_populate_recordset(null::writs, p_writs) as r;
          end if;
          return v_stored;
        end
        $fn$`),
    ]);
  },
};

/** Every migration, by name. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_writs_and_audit": initial,
  "0002_broker": broker,
  "0003_analyzer": analyzer,
  "0004_gateway": gateway,
  "0005_gateway_taint": gatewayTaint,
  "0006_approval_audience": approvalAudience,
  "0007_writ_changes": writChanges,
  "0008_downstream": downstream,
  "0009_observability": observability,
  "0010_console": consoleSupport,
  "0011_audit_append": auditAppend,
  "0012_writ_delegation": writDelegation,
};

const provider: MigrationProvider = {
  getMigrations: async () => ({ ...MIGRATIONS }),
};

export interface MigrationReport {
  /** Migrations this call applied, in order; empty when the schema was already current. */
  readonly applied: readonly string[];
}

/** Migrations this code knows that the database has not applied (empty: the schema is current). */
export async function pendingMigrations(db: AnyDb): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  try {
    return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
  } catch (err) {
    throw storeError("read migrations", err);
  }
}

export async function migrateToLatest(db: AnyDb): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider });
  let result: Awaited<ReturnType<Migrator["migrateToLatest"]>>;
  try {
    result = await migrator.migrateToLatest();
  } catch (err) {
    throw storeError("migrate", err);
  }
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === "Error");
    const cause = storeError(failed ? `migration \`${failed.migrationName}\`` : "migrate", result.error);
    if (cause.code !== "ERR_STORE") throw cause;
    throw new WritError(ERR_STORE_MIGRATION, cause.message, { cause: result.error });
  }
  return {
    applied: (result.results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName),
  };
}
