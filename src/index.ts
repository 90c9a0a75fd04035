// writ as a library: one line per operation (docs/library.md). Parts have their own entry points:
// `writ/client` (the agent SDK), `writ/aws` (the IAM evaluator), `writ/analyzer` (posture scans),
// `writ/gateway` (the MCP gateway).

// configuration: writ.yaml loaded and checked, every problem with file, line, column and path
// the server: broker, decision point, gateway and audit behind one HTTP app (what `writ serve` runs)
export {
  createServer,
  decisionPoint,
  loadPolicy,
  type Policy,
  type PolicyLoad,
  type Server,
  type ServerOptions,
} from "./app.js";
// audit: verify an exported log against trusted checkpoint keys
export { readTrustedKey, type VerifyReport, verifyExport } from "./audit/index.js";
// the agent SDK (also `writ/client`)
export { createWritClient, type WritClient, WritRefusal } from "./client/index.js";
export {
  type ConfigProblem,
  formatProblem,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
} from "./config/index.js";
// decisions: pure, with reasons (what `writ explain` prints), or through the decision point with guardrails
// errors: one type, a stable code
export {
  type Decision,
  type DecisionCode,
  type DecisionRequest,
  decide,
  isWritError,
  type Reason,
  WritError,
} from "./core/index.js";

// posture: scan inputs and write the report (all of it in `writ/analyzer`)
export {
  defaultPlugins,
  htmlReport,
  jsonReport,
  markdownReport,
  sarifReport,
  scanPaths,
  terminalReport,
} from "./exports/analyzer.js";
// AWS: the IAM policy evaluator of docs/aws.md (all of it in `writ/aws`)
export {
  type AwsRequest,
  createCatalog,
  evaluate,
  type PolicySet,
  parsePolicy,
  principalFromArn,
} from "./exports/aws.js";
// AuthZEN Authorization API 1.0: what `POST /access/v1/evaluation(s)` takes and answers
export type {
  AuthzenEvaluationRequest,
  AuthzenEvaluationResponse,
  AuthzenEvaluationsRequest,
  AuthzenEvaluationsResponse,
} from "./pdp/index.js";
export { DecisionPoint, type PdpContext, type PdpRequest } from "./pdp/index.js";
