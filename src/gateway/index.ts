// The MCP gateway: an MCP proxy that decides on what each tool call touches. The only public
// surface of src/gateway.

export { boundsCheck, parsePathGlob, pathGlobMatches } from "./bounds.js";
export { GATEWAY_ERROR_CODES, type GatewayErrorCode } from "./codes.js";
export {
  type DownstreamIssuers,
  INJECTED_ENV,
  injectionFor,
  missingIssuers,
} from "./credentials.js";
export { ERR_GATEWAY_REFUSED, GatewayError, type GatewayReason, isGatewayError } from "./errors.js";
export {
  type CallContext,
  createGateway,
  type Gateway,
  type GatewayDeps,
  type GatewayIdentity,
  type GatewaySession,
  NO_RESOURCE,
  PROMPT_CONTEXT_HEADER,
  PROMPT_CONTEXT_META,
  REFUSAL_META,
  type SpendUse,
  TOOL_SEPARATOR,
} from "./gateway.js";
export { admitHeld, toolSubject, withToolApprovals } from "./holds.js";
export {
  type GatewayHttpOptions,
  gatewayResource,
  gatewayRoutes,
  MCP_PATH,
  RESOURCE_METADATA_PATH,
} from "./http.js";
export { sessionServer } from "./mcp.js";
export {
  definitionHash,
  ERR_PIN_NOT_FOUND,
  type PinStatus,
  type PinStore,
  pinStore,
  type ToolDefinition,
  type ToolPin,
} from "./pins.js";
export {
  ERR_PINS_UNREACHABLE,
  PINS_PATH,
  type PinOperator,
  parseToolRef,
  pinsApi,
  remotePins,
} from "./pins-api.js";
export { type BoundsCheck, deriveResources, type ValueKind } from "./resource.js";
export { type StdioSession, serveStdio } from "./stdio.js";
export { type Taints, taintHandle, taints } from "./taint.js";
export { ERR_GATEWAY_ENV, ERR_GATEWAY_UPSTREAM, envResolver, type ResolveText } from "./upstreams.js";
export { storeSpendUse } from "./uses.js";
