// The tamper-evident audit log: hash chain, signed checkpoints, verification, redaction. The only
// public surface of src/audit.
export { canonicalJson, type JsonObject, type JsonValue, toJsonValue } from "./canonical.js";
export { CHECKPOINT_TYPE, signCheckpoint } from "./checkpoint.js";
export { AUDIT_ERROR_CODES, type AuditErrorCode } from "./codes.js";
export {
  type AuditExport,
  ERR_AUDIT_EXPORT_INVALID,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportedCheckpoint,
  type ExportedRecord,
} from "./export.js";
export { GENESIS_HASH, recordHash } from "./hash.js";
export {
  type AuditSigner,
  dataDirPublicKey,
  ERR_AUDIT_KEY_INVALID,
  ERR_AUDIT_KEY_MISMATCH,
  ERR_AUDIT_KEY_PERMISSIONS,
  loadSigningKey,
  type PublicJwk,
  readTrustedKey,
  signingKeyPaths,
  type TrustedKey,
  trustKey,
} from "./keys.js";
export {
  type AuditLog,
  type AuditLogOptions,
  type AuditRecord,
  ERR_AUDIT_DAMAGED,
  ERR_AUDIT_NO_SIGNING_KEY,
  ERR_AUDIT_TOO_LARGE,
  type FollowOptions,
  openAuditLog,
  verifyExport,
} from "./log.js";
export { type RedactionKind, redact, redactionMarker, redactString, sensitiveKey } from "./redact.js";
export { type ChainSource, type Damage, type Problem, type VerifyReport, verifyChain } from "./verify.js";
