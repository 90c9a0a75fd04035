/**
 * The tables as Kysely sees them. JSON columns are written as JSON text (pg would turn a JS array
 * into a PostgreSQL array literal, not JSON) and read back parsed. bigint columns come back as a
 * string (pg) or a number/bigint (PGlite); repositories convert them with `toInt`.
 */
import type { ColumnType, Generated } from "kysely";

type Json = ColumnType<unknown, string, string>;
type BigIntColumn = ColumnType<string | number | bigint, number, number>;
type Timestamp = ColumnType<Date, Date, Date>;

export interface WritsTable {
  id: string;
  agent: string;
  playbook: string;
  environment: string;
  params: Json;
  grants: Json;
  issued_at: Timestamp;
  expires_at: Timestamp;
  max_uses: number | null;
  uses: Generated<number>;
  status: Generated<string>;
  revoked_at: Timestamp | null;
  revoked_reason: string | null;
  ticket: Generated<string | null>;
  sponsor: Generated<string | null>;
  audience: Generated<string | null>;
  jkt: Generated<string | null>;
  approval_request: Generated<string | null>;
  /** The writ this one was delegated from (migration 0012). */
  parent_writ: Generated<string | null>;
  /** When a use was first and last spent (null: never used). */
  first_used_at: Generated<Date | null>;
  last_used_at: Generated<Date | null>;
}

export interface AuditRecordsTable {
  seq: BigIntColumn;
  at: Timestamp;
  type: string;
  data: Json;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: BigIntColumn;
  hash: string;
  updated_at: Timestamp;
}

export interface AuditCheckpointsTable {
  seq: BigIntColumn;
  key_id: string;
  hash: string;
  at: Timestamp;
  signature: string;
}

export interface SigningKeysTable {
  kid: string;
  environment: string;
  alg: Generated<string>;
  public_jwk: Json;
  private_jwk: Json;
  created_at: Timestamp;
  sign_until: Timestamp;
  publish_until: Timestamp;
  status: Generated<string>;
  retired_at: Timestamp | null;
}

export interface SeenJtiTable {
  scope: string;
  jti: string;
  expires_at: Timestamp;
}

export interface ApprovalRequestsTable {
  id: string;
  environment: string;
  agent: string;
  playbook: string;
  params: Json;
  ticket: string | null;
  binding: string;
  requester: string;
  status: Generated<string>;
  created_at: Timestamp;
  expires_at: Timestamp;
  poll_interval: Generated<number>;
  last_polled_at: Timestamp | null;
  decided_at: Timestamp | null;
  writ_id: string | null;
  /** The RFC 8707 audience the request asks for (CIBA); null for gateway holds. */
  audience: Generated<string | null>;
}

export interface ApprovalDecisionsTable {
  request_id: string;
  approver: string;
  decision: string;
  reason: string | null;
  at: Timestamp;
}

export interface KillSwitchesTable {
  id: string;
  scope: string;
  target: string;
  reason: string | null;
  engaged_at: Timestamp;
  engaged_by: string;
  lifted_at: Timestamp | null;
  lifted_by: string | null;
}

export interface DenialCountersTable {
  agent: string;
  environment: string;
  count: number;
  last_denied_at: Timestamp;
  blocked_until: Timestamp | null;
}

export interface AnalyzerFindingsTable {
  id: string;
  workload: string;
  action: string;
  resource: string;
  category: string;
  severity: string;
  title: string;
  status: Generated<string>;
  finding: Json;
  first_seen: Timestamp;
  last_seen: Timestamp;
  updated_at: Timestamp;
}

export interface AnalyzerFindingHistoryTable {
  seq: Generated<BigIntColumn>;
  finding_id: string;
  at: Timestamp;
  kind: string;
  from_category: string | null;
  to_category: string | null;
  from_status: string | null;
  to_status: string | null;
  actor: string;
  note: string | null;
}

export interface GatewayToolPinsTable {
  server: string;
  tool: string;
  approved_hash: string | null;
  seen_hash: string;
  seen_definition: Json;
  first_seen: Timestamp;
  seen_at: Timestamp;
  approved_at: Timestamp | null;
  approved_by: string | null;
}

export interface GatewayHoldsTable {
  binding: string;
  request_id: string;
  created_at: Timestamp;
  /** The held call's exact arguments (JSON), for approvers to read; null when not kept. */
  arguments: ColumnType<unknown, string | null | undefined, string | null>;
}

/** Taint of a writ (or an agent's baseline) in one prompt context, shared by every gateway process. */
export interface GatewayTaintsTable {
  handle: string;
  context: string;
  tainted_by: string;
  until: Timestamp;
}

/** One object created downstream for a writ (src/store/downstream.ts). */
export interface DownstreamRecordsTable {
  id: string;
  system: string;
  environment: string;
  writ: string;
  agent: string;
  kind: string;
  locator: Json;
  state: Generated<string>;
  outlives_writ: Generated<boolean>;
  expires_at: Timestamp;
  created_at: Timestamp;
  removed_at: Timestamp | null;
}

/** The posture figures of one `writ scan --store`, beside its findings. */
export interface AnalyzerScansTable {
  seq: Generated<BigIntColumn>;
  at: Timestamp;
  cluster_role_bindings: number;
  workflows: number;
  workflows_explicit: number;
  findings: number;
}

export interface Database {
  writs: WritsTable;
  audit_records: AuditRecordsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
  signing_keys: SigningKeysTable;
  seen_jti: SeenJtiTable;
  approval_requests: ApprovalRequestsTable;
  approval_decisions: ApprovalDecisionsTable;
  kill_switches: KillSwitchesTable;
  denial_counters: DenialCountersTable;
  gateway_tool_pins: GatewayToolPinsTable;
  gateway_holds: GatewayHoldsTable;
  gateway_taints: GatewayTaintsTable;
  analyzer_findings: AnalyzerFindingsTable;
  analyzer_finding_history: AnalyzerFindingHistoryTable;
  downstream_records: DownstreamRecordsTable;
  analyzer_scans: AnalyzerScansTable;
}
