// Storage: Kysely over PostgreSQL, embedded (PGlite) by default. The only public surface of src/store.
export {
  type ApprovalDecisionRow,
  type ApprovalInsertRefusal,
  type ApprovalRepository,
  type ApprovalRequestRow,
  type ApprovalRows,
  approvalRepository,
  type LockedApproval,
} from "./approvals.js";
export type {
  AuditHead,
  AuditReader,
  AuditRepository,
  AuditRow,
  CheckpointRow,
  Companion,
} from "./audit.js";
export { type DenialCounter, type DenialCounterRepository, denialCounterRepository } from "./backoff.js";
export {
  parseWritChange,
  WRIT_CHANGES_APPLICATION,
  WRIT_CHANGES_CHANNEL,
  type WritChange,
  type WritChangeListener,
  type WritChanges,
} from "./changes.js";
export { STORE_ERROR_CODES, type StoreErrorCode } from "./codes.js";
export {
  downstreamLedger,
  ERR_DOWNSTREAM_RECORD_EXISTS,
  ERR_DOWNSTREAM_RECORD_INVALID,
} from "./downstream.js";
export {
  ERR_STORE,
  ERR_STORE_CORRUPT,
  ERR_STORE_LOCKED,
  ERR_STORE_MIGRATION,
  ERR_STORE_NOT_FOUND,
  ERR_STORE_NOT_MIGRATED,
  ERR_STORE_UNAVAILABLE,
  ERR_VALUE_UNSTORABLE,
  guard,
  isStoreFailure,
  sqlState,
} from "./errors.js";
export {
  ERR_FINDING_NOT_FOUND,
  ERR_FINDING_STATUS,
  FINDING_STATUSES,
  type FindingHistoryEntry,
  type FindingInput,
  type FindingRepository,
  type FindingStatus,
  findingRepository,
  type ScanSummary,
  type StoredFinding,
} from "./findings.js";
export { type HeldCallRepository, type HeldCallRow, heldCallRepository } from "./holds.js";
export {
  type KeyChange,
  type SigningKeyRepository,
  type SigningKeyRow,
  signingKeyRepository,
} from "./keys.js";
export {
  type FigureOptions,
  type LifetimeQuantiles,
  recordScanPosture,
  type StoreFigures,
  storeFigures,
} from "./metrics.js";
export { DENIAL_PREDICATE, GENESIS_HASH, MIGRATIONS, type MigrationReport } from "./migrations.js";
export { type Backend, openStore, type Store, type StoreOptions } from "./open.js";
export {
  carryWith,
  type PGliteClient,
  PGliteDialect,
  type PGliteDialectConfig,
  type RiderSource,
  simpleQuery,
} from "./pglite-dialect.js";
export {
  type PinStatus,
  type SeenDefinition,
  type ToolPin,
  type ToolPinRepository,
  toolPinRepository,
} from "./pins.js";
export type { Database } from "./schema.js";
export { type WritLoadCounter, type WritLoadCounterOptions, writLoadCounter } from "./writ-load.js";
export {
  ERR_WRIT_EXHAUSTED,
  ERR_WRIT_EXISTS,
  ERR_WRIT_EXPIRED,
  ERR_WRIT_INVALID,
  ERR_WRIT_NOT_FOUND,
  ERR_WRIT_NOT_YET_VALID,
  ERR_WRIT_REVOKED,
  type NewWrit,
  type RevokeResult,
  revokeDescendants,
  type SpendResult,
  type StoredWrit,
  toActiveWrit,
  type WritLoad,
  type WritLoadCaps,
  type WritRepository,
  type WritStatus,
  writRow,
} from "./writs.js";
