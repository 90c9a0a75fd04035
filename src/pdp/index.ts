// The decision point: the core decision, then Cedar guardrails; the AuthZEN API in front of it.
export {
  type AuthzenOptions,
  type AuthzenRecord,
  authzenRoutes,
  type Decider,
  EVALUATION_PATH,
  EVALUATIONS_PATH,
  METADATA_PATH,
} from "./authzen.js";
export type {
  AuthzenContext,
  AuthzenEvaluationRequest,
  AuthzenEvaluationResponse,
  AuthzenEvaluationsRequest,
  AuthzenEvaluationsResponse,
} from "./authzen-wire.js";
export { PDP_ERROR_CODES, type PdpErrorCode } from "./codes.js";
export { type CompileOptions, type CompileResult, compileGuardrails, type GuardrailText } from "./compile.js";
export { DecisionPoint, type DecisionPointOptions, type WritSource, type Writs } from "./decision-point.js";
export { CompiledGuardrails, type GuardrailOutcome, type GuardrailPolicy, PERMIT_ALL } from "./guardrails.js";
export type { PdpContext, PdpRequest } from "./request.js";
export { cedarSchemaFor, type SchemaOptions } from "./schema.js";
export {
  type WritChangeFeed,
  WritIndex,
  type WritIndexOptions,
} from "./writ-index.js";
