/**
 * The error and warning codes the decision point raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const PDP_ERROR_CODES = [
  "ERR_AUTHZEN_REQUEST",
  "ERR_AUTHZEN_VALUE_INVALID",
  "ERR_AUTHZEN_VALUE_TOO_LONG",
  "ERR_CEDAR_DUPLICATE_ID",
  "ERR_CEDAR_ENGINE",
  "ERR_CEDAR_GUARDRAILS",
  "ERR_CEDAR_PERMIT",
  "ERR_CEDAR_SYNTAX",
  "ERR_CEDAR_TEMPLATE",
  "ERR_CEDAR_TOO_DEEP",
  "ERR_CEDAR_VALIDATION",
  "ERR_GUARDRAIL_INPUT",
  "WARN_CEDAR_VALIDATION",
] as const;

export type PdpErrorCode = (typeof PDP_ERROR_CODES)[number];
