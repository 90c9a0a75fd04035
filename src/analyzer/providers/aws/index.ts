/** AWS: the IAM evaluator, the action catalog, importers, expansion, escalation, usage, and the engine plug-in. */
export { type AccessLevel, type AwsAction, type AwsCatalog, createCatalog } from "./catalog.js";
export {
  analyzeEscalation,
  type EscalationReport,
  type OpenPath,
  type PrincipalEscalation,
} from "./escalation.js";
export {
  type AwsPrincipal,
  type AwsRequest,
  buildContext,
  type ContextValue,
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
  type StatementRef,
} from "./evaluator/index.js";
export {
  type ExpandedAction,
  type Expansion,
  expandPolicies,
  type Risk,
  risksOf,
  servicesFor,
} from "./expand.js";
export {
  type AuthorizationDetails,
  findPrincipal,
  importAuthorizationDetails,
  importResourcePolicy,
  loadOrganization,
  loadPolicyFolder,
  normaliseRecord,
  parseJson,
  policiesFor,
} from "./importers/index.js";
export {
  buildPrivescCatalogue,
  type CatalogueOrigin,
  isAssumeOnly,
  loadPrivescPaths,
  type PrivescCatalogue,
  type PrivescPath,
  parsePrivescCatalogue,
  renderPrivescCatalogue,
  SHIPPED_CATALOGUE,
  SUPPLEMENT_PATHS,
  shippedPrivescPaths,
} from "./paths.js";
export {
  type AwsPluginOptions,
  awsAuthzImporter,
  awsCatalog,
  awsEscalations,
  awsPlugin,
  awsRisk,
  cloudTrailImporter,
  createAwsPlugin,
} from "./plugin.js";
export {
  type ActionUsage,
  analyzeUsage,
  type Confidence,
  eventContext,
  policyDocumentFrom,
  type Replacement,
  replacementPolicy,
  type UsageReport,
  verifyReplacement,
} from "./usage.js";
