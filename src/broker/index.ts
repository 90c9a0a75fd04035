// The broker: an OAuth 2 authorization server that turns an intent into a short-lived, scoped,
// sender-bound writ. The only public surface of src/broker.

export { adminApi, ERR_ADMIN_REFUSED, ERR_ADMIN_UNREACHABLE, remoteOperator } from "./admin-api.js";
export {
  type ApprovalService,
  approvalBinding,
  approvalService,
} from "./approvals.js";
export { type ApprovalsApiOptions, approvalsApi } from "./approvals-api.js";
export { blockSeconds, type DenialBackoff, denialBackoff } from "./backoff.js";
export {
  type BoundToken,
  type BoundTokenOptions,
  BoundTokenRefusal,
  verifyBoundToken,
} from "./bound-token.js";
export * from "./client-auth.js";
export { BROKER_ERROR_CODES, type BrokerErrorCode } from "./codes.js";
export * from "./dpop.js";
export * from "./intent.js";
export * from "./keys.js";
export * from "./kill.js";
export * from "./metadata.js";
export * from "./operator.js";
export * from "./replay.js";
export { type BrokerRouteOptions, brokerRoutes } from "./routes.js";
export {
  ACCESS_TOKEN_TYPE,
  type BrokerService,
  brokerService,
  CIBA_GRANT,
  spendWritUse,
  TOKEN_EXCHANGE,
} from "./service.js";
export {
  type AccessTokenClaims,
  mintAccessToken,
  verifyAccessToken,
} from "./tokens.js";
