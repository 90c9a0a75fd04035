/**
 * The error and warning codes the command line raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
import type { GatewayReason } from "../gateway/errors.js";

export const CLI_ERROR_CODES = [
  "ERR_ADDRESS_IN_USE",
  "ERR_AGENT_NOT_FOUND",
  "ERR_AWS_PRINCIPAL_NOT_FOUND",
  "ERR_CONFIG_INVALID",
  "ERR_EXISTS",
  "ERR_FILE",
  "ERR_GATEWAY_AGENT",
  "ERR_GATEWAY_WRIT",
  "ERR_INPUT_FILE",
  "ERR_INTERNAL",
  "ERR_UNKNOWN_ENVIRONMENT",
  "ERR_USAGE",
] as const;

export type CliErrorCode = (typeof CLI_ERROR_CODES)[number];

/**
 * `writ gateway --stdio`'s refusal of a session: the gateway's reason upper-cased after the prefix
 * (reason `killed`: `ERR_GATEWAY_KILLED`), documented as the `ERR_GATEWAY_*` row of docs/errors.md.
 */
export type GatewayRefusalCode = `ERR_GATEWAY_${Uppercase<GatewayReason>}`;

export function gatewayRefusalCode(reason: GatewayReason): GatewayRefusalCode {
  return `ERR_GATEWAY_${reason.toUpperCase() as Uppercase<GatewayReason>}`;
}
