// `writ/aws`: the AWS IAM policy evaluator and its inputs (docs/aws.md).

// evaluate a request against policies: allow, explicit deny or implicit deny, with the deciding statements
// policies: parse and check a policy document
// requests: the principal from its ARN, the request context
// the action catalog (every AWS action, resource type and condition key)
// usage: the policy a principal's observed calls need, and its check
export {
  type AwsCatalog,
  type AwsPrincipal,
  type AwsRequest,
  analyzeUsage,
  buildContext,
  createCatalog,
  type Decision,
  type DecisionKind,
  describe,
  type EvaluateOptions,
  evaluate,
  type Organization,
  type OrgNode,
  type Policy,
  type PolicyKind,
  type PolicyProblem,
  type PolicySet,
  PrincipalError,
  parsePolicy,
  policyErrors,
  principalFromArn,
  replacementPolicy,
  type StatementRef,
  verifyReplacement,
} from "../analyzer/aws/index.js";
