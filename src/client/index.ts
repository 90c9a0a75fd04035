// biome-ignore-all assist/source/organizeImports: a table of contents, grouped by operation
// writ/client: the agent SDK (docs/client.md). The only public surface of src/client.

// a client for one agent in one environment: writs, calls with them, revocation
export {
  createWritClient,
  type GetWritOptions,
  type Writ,
  type WritClient,
  type WritClientOptions,
  type WritFetchInit,
  type WritProgress,
  type WritRequest,
} from "./client.js";

// the agent's key
export { type AgentKeyInput, importAgentKey, type PrivateJwk } from "./key.js";

// errors: every one a WritError with a code; the broker's refusals a WritRefusal
export { isWritRefusal, refusalFromResponse, WritRefusal } from "./errors.js";
export {
  ERR_CLIENT_APPROVAL_TIMEOUT,
  ERR_CLIENT_KEY,
  ERR_CLIENT_OPTIONS,
  ERR_CLIENT_PROTOCOL,
  ERR_CLIENT_REFUSED,
  ERR_CLIENT_UNREACHABLE,
} from "./errors.js";
export { CLIENT_ERROR_CODES, type ClientErrorCode } from "./codes.js";
export { isWritError, WritError } from "../core/errors.js";
