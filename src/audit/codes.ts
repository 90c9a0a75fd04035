/**
 * The error and warning codes the audit log raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const AUDIT_ERROR_CODES = [
  "ERR_AUDIT_DAMAGED",
  "ERR_AUDIT_EXPORT_INVALID",
  "ERR_AUDIT_KEY_INVALID",
  "ERR_AUDIT_KEY_MISMATCH",
  "ERR_AUDIT_KEY_PERMISSIONS",
  "ERR_AUDIT_NO_SIGNING_KEY",
  "ERR_AUDIT_TOO_LARGE",
] as const;

export type AuditErrorCode = (typeof AUDIT_ERROR_CODES)[number];
