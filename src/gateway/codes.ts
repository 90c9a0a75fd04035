/**
 * The error and warning codes the MCP gateway raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const GATEWAY_ERROR_CODES = [
  "ERR_GATEWAY_ENV",
  "ERR_GATEWAY_REFUSED",
  "ERR_GATEWAY_UPSTREAM",
  "ERR_PINS_UNREACHABLE",
  "ERR_PIN_NOT_FOUND",
] as const;

export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];
