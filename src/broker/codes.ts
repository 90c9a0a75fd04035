/**
 * The error and warning codes the broker, besides client authentication (`ClientAuthErrorCode`) and DPoP (`DpopErrorCode`) raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const BROKER_ERROR_CODES = [
  "ERR_ADMIN_FAILED",
  "ERR_ADMIN_REFUSED",
  "ERR_ADMIN_TOKEN",
  "ERR_ADMIN_UNREACHABLE",
  "ERR_APPROVAL_BINDING",
  "ERR_APPROVAL_CLOSED",
  "ERR_APPROVAL_DUPLICATE",
  "ERR_APPROVAL_EXPIRED",
  "ERR_APPROVAL_INVALID",
  "ERR_APPROVAL_NOT_APPROVED",
  "ERR_APPROVAL_NOT_APPROVER",
  "ERR_APPROVAL_NOT_FOUND",
  "ERR_APPROVAL_NO_POLICY",
  "ERR_APPROVAL_SELF",
  "ERR_APPROVER_UNAUTHENTICATED",
  "ERR_KILL_NOT_ENGAGED",
  "ERR_KILL_SCOPE",
  "ERR_OPERATOR_INPUT",
  "ERR_TOKEN_ALG",
  "ERR_TOKEN_AUDIENCE",
  "ERR_TOKEN_EXPIRED",
  "ERR_TOKEN_ISSUER",
  "ERR_TOKEN_KEY",
  "ERR_TOKEN_KEY_LIFE",
  "ERR_TOKEN_MALFORMED",
  "ERR_TOKEN_NOT_YET_VALID",
  "ERR_TOKEN_SIGNATURE",
  "ERR_TOKEN_TYPE",
] as const;

export type BrokerErrorCode = (typeof BROKER_ERROR_CODES)[number];
