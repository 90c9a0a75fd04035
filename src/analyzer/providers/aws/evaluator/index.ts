/** The AWS IAM policy evaluator: parse policies, build a request, evaluate. Pure, synchronous. */
export { arnMatch } from "./arn.js";
export { evaluateClause } from "./conditions.js";
export {
  type ActionCatalog,
  type Decision,
  type DecisionKind,
  describe,
  type EvalProblem,
  type EvaluateOptions,
  evaluate,
  type Organization,
  type OrgNode,
  orgPath,
  type PolicySet,
  type StatementRef,
} from "./evaluate.js";
export { globParts, wildcardMatch, wildcardMatchLower } from "./glob.js";
export {
  CONDITION_OPERATORS,
  type ConditionClause,
  type ConditionOperator,
  type Policy,
  type PolicyKind,
  type PolicyProblem,
  parsePolicy,
  policyErrors,
  type Statement,
} from "./policy.js";
export {
  type AwsPrincipal,
  type AwsRequest,
  arnAccount,
  buildContext,
  type ContextValue,
  PrincipalError,
  type PrincipalKind,
  principalFromArn,
} from "./request.js";
export { resolvePattern } from "./variables.js";
