// Storage: Kysely over PostgreSQL, embedded (PGlite) by default. The only public surface of src/store.
export type {
  ApprovalDecisionRow,
  ApprovalInsertRefusal,
  ApprovalRepository,
  ApprovalRequestInsert,
  ApprovalRequestRow,
  ApprovalRows,
  LockedApproval,
} from "./approvals.js";
export type {
  AuditHead,
  AuditReader,
  AuditRepository,
  AuditRow,
  CheckpointRow,
  Companion,
} from "./audit.js";
export type { AuditFilter, AuditHit, AuditSearch } from "./audit-search.js";
export type { DenialCounter, DenialCounterRepository } from "./backoff.js";
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
  type FindingFilter,
  type FindingHistoryEntry,
  type FindingInput,
  type FindingLine,
  type FindingRepository,
  type FindingStatus,
  type ScanSummary,
  type StoredFinding,
} from "./findings.js";
export type { DayFigure, History } from "./history.js";
export type { HeldCallRepository, HeldCallRow } from "./holds.js";
export type {
  KeyChange,
  SigningKeyAlg,
  SigningKeyInsert,
  SigningKeyRepository,
  SigningKeyRow,
} from "./keys.js";
export type { KilledWrit, KillReach, KillRow, KillSwitchRepository } from "./kill.js";
export type { LiveCredential, LiveWritRow, LiveWrits } from "./live-writs.js";
export type {
  FigureOptions,
  LifetimeQuantiles,
  ScanPosture,
  StoreFigures,
  StoreMetrics,
} from "./metrics.js";
export { DENIAL_PREDICATE, GENESIS_HASH, MIGRATIONS, type MigrationReport } from "./migrations.js";
export { type Backend, openStore, type Store, type StoreOptions } from "./open.js";
export {
  ACTIVITY_STEP,
  ACTIVITY_TYPES,
  type ActivityBounds,
  type ActivityScan,
  type LiveDownstream,
  type LiveWrit,
  MAX_STORE_AGENTS,
  type OperationalState,
  type OperationalStateOptions,
  type OperationalStateReader,
  PAGE_ROWS,
  type StoredFindingSummary,
  type ToolPinSummary,
} from "./operational-state.js";
export type { PGliteClient, PGliteDialectConfig } from "./pglite-dialect.js";
export type { PinStatus, SeenDefinition, ToolPin, ToolPinRepository } from "./pins.js";
/** The schema's table types, for tests that read rows directly (`Store.db`). */
export type { Database } from "./schema.js";
export type { SeenJti, SeenJtiBatch, SeenJtiRepository, SeenJtiRider } from "./seen-jti.js";
export type { ShadowGroupRow, ShadowReader, ShadowRecord } from "./shadow.js";
export type { TaintRepository, TaintRow } from "./taints.js";
export type { WritLoadCounter, WritLoadCounterOptions } from "./writ-load.js";
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
  type SpendResult,
  type StoredWrit,
  toActiveWrit,
  type WritLoad,
  type WritLoadCaps,
  type WritRepository,
  type WritStatus,
  writRow,
} from "./writs.js";
