/**
 * The error codes `writ hook` raises, each documented in docs/errors.md (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const HOOK_ERROR_CODES = [
  "ERR_HOOK_AGENT_KIND",
  "ERR_HOOK_IDENTITY",
  "ERR_HOOK_INPUT",
  "ERR_HOOK_SERVER",
  "ERR_HOOK_SPOOL",
] as const;

export type HookErrorCode = (typeof HOOK_ERROR_CODES)[number];
