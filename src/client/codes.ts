/**
 * The error codes the agent SDK (`writ/client`) raises, each documented in docs/ (docs/client.md,
 * docs/errors.md; test/errors/codes.test.ts holds them to the source and the docs).
 * src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const CLIENT_ERROR_CODES = [
  "ERR_CLIENT_APPROVAL_TIMEOUT",
  "ERR_CLIENT_KEY",
  "ERR_CLIENT_OPTIONS",
  "ERR_CLIENT_PROTOCOL",
  "ERR_CLIENT_REFUSED",
  "ERR_CLIENT_UNREACHABLE",
] as const;

export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];
