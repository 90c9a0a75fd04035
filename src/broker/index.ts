// The broker: an OAuth 2 authorization server that turns an intent into a short-lived, scoped,
// sender-bound writ. The only public surface of src/broker.

export { adminApi, ERR_ADMIN_REFUSED, ERR_ADMIN_UNREACHABLE, remoteOperator } from "./admin-api.js";
export {
  type ApprovalRequest,
  type ApprovalService,
  approvalBinding,
  approvalService,
  evaluateRequest,
} from "./approvals.js";
export { type ApprovalsApiOptions, approvalsApi, approverPrincipals } from "./approvals-api.js";
export { blockSeconds, type DenialBackoff, denialBackoff } from "./backoff.js";
export {
  type BoundToken,
  type BoundTokenOptions,
  type BoundTokenRefusal,
  verifyBoundToken,
} from "./bound-token.js";
export {
  authenticateClient,
  CLIENT_AUTH_ERRORS,
  type ClientAuthErrorCode,
  ClientRefused,
  checkClient,
  JWT_BEARER_ASSERTION_TYPE,
  type OAuthErrorMapping,
} from "./client-auth.js";
export { BROKER_ERROR_CODES, type BrokerErrorCode } from "./codes.js";
export {
  checkDpopProof,
  createNonceService,
  DPOP_ERRORS,
  type DpopErrorCode,
  DpopNonceError,
  DpopRefused,
  verifyDpopProof,
} from "./dpop.js";
export {
  checkDelegation,
  DELEGATION_OAUTH_ERROR,
  type DelegationReason,
  type DelegationVerdict,
} from "./grants/delegation-check.js";
export { INTENT_OAUTH_ERROR } from "./intent.js";
export {
  type EnvironmentKeys,
  environmentKeys,
  type SigningKey,
} from "./keys.js";
export {
  blocks,
  describeScope,
  type KillScope,
  type KillSwitch,
  killSwitch,
} from "./kill.js";
export {
  issuerFor,
  SIGNING_ALGORITHMS,
} from "./metadata.js";
export {
  type Operator,
  operator,
} from "./operator.js";
export {
  memoryReplayCache,
  type ReplayCache,
  replayCache,
} from "./replay.js";
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
  checkAccessToken,
  mintAccessToken,
  TokenRefused,
  verifyAccessToken,
} from "./tokens.js";
