/**
 * The error codes the web console raises, each documented in docs/console.md (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const CONSOLE_ERROR_CODES = [
  "ERR_CONSOLE_AUTH",
  "ERR_CONSOLE_CSRF",
  "ERR_CONSOLE_FORBIDDEN",
  "ERR_CONSOLE_INPUT",
  "ERR_CONSOLE_NOT_FOUND",
  "ERR_CONSOLE_SIGNATURE",
] as const;

export type ConsoleErrorCode = (typeof CONSOLE_ERROR_CODES)[number];
