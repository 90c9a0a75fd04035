// biome-ignore-all assist/source/organizeImports: a table of contents, grouped by operation
// `writ/aws`: the AWS IAM policy evaluator and its inputs (docs/aws.md).

// evaluate a request against policies: allow, explicit deny or implicit deny, with the deciding statements
export {
  type Decision,
  type DecisionKind,
  describe,
  type EvaluateOptions,
  evaluate,
  type Organization,
  type OrgNode,
  type PolicySet,
  type StatementRef,
} from "../analyzer/providers/aws/index.js";

// policies: parse and check a policy document
export {
  type Policy,
  type PolicyKind,
  type PolicyProblem,
  parsePolicy,
  policyErrors,
} from "../analyzer/providers/aws/index.js";

// requests: the principal from its ARN, the request context
export {
  type AwsPrincipal,
  type AwsRequest,
  buildContext,
  PrincipalError,
  principalFromArn,
} from "../analyzer/providers/aws/index.js";

// the action catalog (every AWS action, resource type and condition key)
export { type AwsCatalog, createCatalog } from "../analyzer/providers/aws/index.js";

// usage: the policy a principal's observed calls need, and its check
export { analyzeUsage, replacementPolicy, verifyReplacement } from "../analyzer/providers/aws/index.js";
