/**
 * The error and warning codes the downstream issuers and `writ creds` raise (its client's are `client/codes.ts`), each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const DOWNSTREAM_ERROR_CODES = [
  "ERR_CREDS_INSECURE_SERVER",
  "ERR_CREDS_KEY",
  "ERR_CREDS_PROTOCOL",
  "ERR_DOWNSTREAM_CONFIG",
  "ERR_DOWNSTREAM_REFUSED",
] as const;

export type DownstreamErrorCode = (typeof DOWNSTREAM_ERROR_CODES)[number];
