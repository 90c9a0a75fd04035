/**
 * The error and warning codes the store raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const STORE_ERROR_CODES = [
  "ERR_DOWNSTREAM_RECORD_EXISTS",
  "ERR_DOWNSTREAM_RECORD_INVALID",
  "ERR_FINDING_NOT_FOUND",
  "ERR_FINDING_STATUS",
  "ERR_STORE",
  "ERR_STORE_CORRUPT",
  "ERR_STORE_LOCKED",
  "ERR_STORE_MIGRATION",
  "ERR_STORE_NOT_FOUND",
  "ERR_STORE_NOT_MIGRATED",
  "ERR_STORE_UNAVAILABLE",
  "ERR_VALUE_UNSTORABLE",
  "ERR_WRIT_EXHAUSTED",
  "ERR_WRIT_EXISTS",
  "ERR_WRIT_EXPIRED",
  "ERR_WRIT_INVALID",
  "ERR_WRIT_NOT_FOUND",
  "ERR_WRIT_NOT_YET_VALID",
  "ERR_WRIT_REVOKED",
] as const;

export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];
