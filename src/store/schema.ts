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

export interface Database {
  writs: WritsTable;
  audit_records: AuditRecordsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
}
