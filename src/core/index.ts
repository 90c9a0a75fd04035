// The pure domain: permissions, patterns, ceilings, playbooks, decisions. No I/O.
export {
  type ApprovalContext,
  type ApprovalEvaluation,
  type ApprovalNeed,
  type ApprovalState,
  type ApprovalVerdict,
  type ApprovalVote,
  approvalGroups,
  approverGroupsOf,
  type CountedApproval,
  ERR_APPROVAL_POLICY_TOO_LARGE,
  evaluateApproval,
  type IgnoredReason,
  type IgnoredVote,
  isSelfApproval,
  normalizeIdentity,
} from "./approval.js";
export { actionProblems, isReadOnly, wildcardProblem } from "./classify.js";
export { CORE_ERROR_CODES, type CoreErrorCode } from "./codes.js";
export { checkContainment, excessGrants, type Problem } from "./containment.js";
export {
  ceilingShadow,
  type Decision,
  type DecisionCode,
  type DecisionRequest,
  decide,
  type Reason,
  withShadow,
} from "./decide.js";
export { isWritError, q, WritError } from "./errors.js";
export {
  type InputProblem,
  type JsonProblem,
  jsonProblem,
  MAX_JSON_DEPTH,
  type TextRules,
  textProblem,
} from "./input.js";
export type {
  ActiveWrit,
  Agent,
  AgentBinding,
  AgentRuns,
  AgentWorkload,
  ApprovalPolicy,
  Approver,
  ApproverGroup,
  ArgumentStep,
  Ceiling,
  CeilingRule,
  ChangeWindow,
  ConfigText,
  Environment,
  GatewayBounds,
  GatewayConfig,
  GatewayTool,
  Grant,
  GrantTemplate,
  HooksConfig,
  Path,
  Playbook,
  RateLimit,
  ResourceFilter,
  ResourceRule,
  ResourceTemplate,
  Risk,
  RunnerClass,
  RunnerClassDelegation,
  RunnerClassLimits,
  SponsorRule,
  TemplatePlaceholder,
  TicketRequirement,
  ToolNeeds,
  UntrustedInput,
  Upstream,
  UpstreamCredentials,
  Weekday,
  WritConfig,
} from "./model.js";
export {
  escapeGlob,
  foldGlob,
  type Glob,
  globContains,
  globIntersects,
  globMatches,
  literalOf,
  MAX_PATTERN_LENGTH,
  parseGlob,
} from "./pattern.js";
export {
  actionMatches,
  compileRule,
  type Rule,
  type RuleText,
  resourceMatches,
  ruleContains,
  ruleMatches,
  ruleOverlaps,
  ruleToString,
} from "./permission.js";
export {
  LinearRegex,
  linearRegExpEngine,
  linearRegex,
  MAX_REGEX_DEPTH,
  MAX_REGEX_LENGTH,
  MAX_REGEX_STATES,
  type RegexLike,
} from "./regex.js";
export { type RegionDeny, type RegionRequest, type RegionView, regionView } from "./region.js";
export {
  isShadow,
  RULE_MODES,
  type RuleMode,
  SHADOW_KINDS,
  type ShadowKind,
  type ShadowRecord,
  shadowRuleId,
} from "./shadow.js";
export { isParamName, substitute, templateParams, widenTemplate } from "./template.js";
export {
  formatDuration,
  isTimeZone,
  localTime,
  parseClock,
  parseDuration,
  WEEKDAYS,
  windowState,
} from "./time.js";
export {
  type AwsActionInfo,
  type AwsCatalog,
  GITHUB_PERMISSION_LIST,
  GITHUB_PERMISSIONS,
  isProvider,
  type ParsedAction,
  PROVIDERS,
  type Provider,
  parseRequestAction,
  RULES,
  type Vocabulary,
} from "./vocabulary.js";
export { instantiateWrit, playbookGrants, type WritInit } from "./writ.js";
export {
  type InactiveWhy,
  inactiveWhy,
  type WritChange,
  WritMatch,
  WritSet,
} from "./writ-set.js";
