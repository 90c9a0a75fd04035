// biome-ignore-all assist/source/organizeImports: a table of contents, grouped by operation
// writ as a library: one line per operation (docs/library.md). Parts have their own entry points:
// `writ/client` (the agent SDK), `writ/aws` (the IAM evaluator), `writ/analyzer` (posture scans),
// `writ/gateway` (the MCP gateway).

// configuration: writ.yaml loaded and checked, every problem with file, line, column and path
export { loadPolicy, type Policy, type PolicyLoad } from "./app.js";
export {
  type ConfigProblem,
  formatProblem,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
} from "./config/index.js";

// decisions: pure, with reasons (what `writ explain` prints), or through the decision point with guardrails
export {
  type Decision,
  type DecisionCode,
  type DecisionRequest,
  decide,
  type Reason,
  type RuleMode,
  type ShadowRecord,
} from "./core/index.js";
export { decisionPoint } from "./app.js";
export { DecisionPoint, type PdpContext, type PdpRequest } from "./pdp/index.js";

// the server: broker, decision point, gateway and audit behind one HTTP app (what `writ serve` runs)
export { createServer, type Server, type ServerOptions } from "./app.js";

// AuthZEN Authorization API 1.0: what `POST /access/v1/evaluation(s)` takes and answers
export type {
  AuthzenEvaluationRequest,
  AuthzenEvaluationResponse,
  AuthzenEvaluationsRequest,
  AuthzenEvaluationsResponse,
} from "./pdp/index.js";

// AWS: the IAM policy evaluator of docs/aws.md (all of it in `writ/aws`)
export {
  type AwsRequest,
  createCatalog,
  evaluate,
  type PolicySet,
  parsePolicy,
  principalFromArn,
} from "./exports/aws.js";

// posture: scan inputs and write the report (all of it in `writ/analyzer`)
export { defaultPlugins, scanPaths } from "./exports/analyzer.js";
export { htmlReport, jsonReport, markdownReport, sarifReport, terminalReport } from "./exports/analyzer.js";

// audit: verify an exported log against trusted checkpoint keys
export { readTrustedKey, type VerifyReport, verifyExport } from "./audit/index.js";

// errors: one type, a stable code, every code in one union (docs/errors.md)
export { isWritError, WritError } from "./core/index.js";
export { isWritErrorCode, WRIT_ERROR_CODES, type WritErrorCode } from "./error-codes.js";

// the agent SDK (also `writ/client`)
export { createWritClient, type WritClient, WritRefusal } from "./client/index.js";
