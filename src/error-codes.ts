/**
 * Every error and warning code writ raises, as one typed union assembled from each part's own
 * (the pattern of `broker/client-auth.ts`): a part declares its codes beside its code, this file
 * only joins them. Each code is documented in docs/ (test/errors/codes.test.ts checks both ways).
 * The reasons refusals carry on the wire (decision codes, OAuth `reason`s, gateway and downstream
 * reasons) are typed where they are made: `DecisionCode`, `IntentReason`, `GatewayReason`,
 * `DownstreamReason`.
 */
import { ANALYZER_ERROR_CODES, type AnalyzerErrorCode } from "./analyzer/index.js";
import { AUDIT_ERROR_CODES, type AuditErrorCode } from "./audit/index.js";
import {
  BROKER_ERROR_CODES,
  type BrokerErrorCode,
  CLIENT_AUTH_ERRORS,
  type ClientAuthErrorCode,
  DPOP_ERRORS,
  type DpopErrorCode,
} from "./broker/index.js";
import { CLI_ERROR_CODES, type CliErrorCode, type GatewayRefusalCode } from "./cli/codes.js";
import { CLIENT_ERROR_CODES, type ClientErrorCode } from "./client/index.js";
import { CONFIG_ERROR_CODES, type ConfigErrorCode } from "./config/index.js";
import { CONSOLE_ERROR_CODES, type ConsoleErrorCode } from "./console/codes.js";
import { CORE_ERROR_CODES, type CoreErrorCode } from "./core/index.js";
import { DOWNSTREAM_ERROR_CODES, type DownstreamErrorCode } from "./downstream/index.js";
import { GATEWAY_ERROR_CODES, type GatewayErrorCode } from "./gateway/index.js";
import { HOOK_ERROR_CODES, type HookErrorCode } from "./hook/codes.js";
import { PDP_ERROR_CODES, type PdpErrorCode } from "./pdp/index.js";
import { STORE_ERROR_CODES, type StoreErrorCode } from "./store/index.js";

/** The composition root's own: `--public-url` that no issuer could use. */
export const APP_ERROR_CODES = ["ERR_PUBLIC_URL"] as const;
export type AppErrorCode = (typeof APP_ERROR_CODES)[number];

export type WritErrorCode =
  | CoreErrorCode
  | ConfigErrorCode
  | StoreErrorCode
  | AuditErrorCode
  | PdpErrorCode
  | ClientAuthErrorCode
  | DpopErrorCode
  | BrokerErrorCode
  | DownstreamErrorCode
  | ClientErrorCode
  | GatewayErrorCode
  | HookErrorCode
  | AnalyzerErrorCode
  | AppErrorCode
  | ConsoleErrorCode
  | CliErrorCode
  | GatewayRefusalCode;

/** Every code, by the part that raises it. */
export const WRIT_ERROR_CODES: Readonly<Record<string, readonly WritErrorCode[]>> = {
  core: CORE_ERROR_CODES,
  config: CONFIG_ERROR_CODES,
  store: STORE_ERROR_CODES,
  audit: AUDIT_ERROR_CODES,
  pdp: PDP_ERROR_CODES,
  broker: [
    ...(Object.keys(CLIENT_AUTH_ERRORS) as ClientAuthErrorCode[]),
    ...(Object.keys(DPOP_ERRORS) as DpopErrorCode[]),
    ...BROKER_ERROR_CODES,
  ],
  downstream: DOWNSTREAM_ERROR_CODES,
  client: CLIENT_ERROR_CODES,
  gateway: GATEWAY_ERROR_CODES,
  hook: HOOK_ERROR_CODES,
  analyzer: ANALYZER_ERROR_CODES,
  app: APP_ERROR_CODES,
  console: CONSOLE_ERROR_CODES,
  cli: CLI_ERROR_CODES,
};

const ALL: ReadonlySet<string> = new Set(Object.values(WRIT_ERROR_CODES).flat());

/** Whether `code` is one writ raises (for callers that get a code over the wire). */
export function isWritErrorCode(code: string): code is WritErrorCode {
  return ALL.has(code);
}
