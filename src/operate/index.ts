// Operating writ: the agents inventory and the maturity check, as pure functions over writ.yaml and
// one read of the store (docs/maturity.md). The only public surface of src/operate.
export {
  type AgentCeiling,
  type AgentEntry,
  buildInventory,
  DEFAULT_DORMANT_DAYS,
  DEFAULT_IDLE_SECONDS,
  type DownstreamCredential,
  type Inventory,
  type InventoryCredential,
  type InventoryFlag,
  type InventoryFlagCode,
  type InventoryGrant,
  type InventoryOptions,
  UNRESOLVED_STATUSES,
  type WritCredential,
} from "./inventory.js";
export {
  type AgentMaturity,
  type Answer,
  type AnswerStatus,
  type AuditEvidence,
  assessMaturity,
  DEFAULT_MAX_TTL_SECONDS,
  type Evidence,
  MAX_UNSIGNED,
  type MaturityOptions,
  type MaturityReport,
  PRACTICE_TITLE,
  PRACTICES,
  type Practice,
} from "./maturity.js";
export { agentText, escapeHtml, inventoryText, maturityHtml, maturityText, textTable } from "./render.js";
export {
  MAX_GROUPS as SHADOW_MAX_GROUPS,
  MAX_SCAN as SHADOW_MAX_SCAN,
  readShadowReport,
  type ShadowExample,
  type ShadowGroup,
  type ShadowReport,
  shadowReportText,
} from "./shadow.js";
export {
  ACTIVITY_STEP,
  ACTIVITY_TYPES,
  type ActivityBounds,
  type ActivityScan,
  type LiveDownstream,
  type LiveWrit,
  type OperationalState,
  readOperationalState,
  type StoredFindingSummary,
  type ToolPinSummary,
} from "./state.js";
export {
  type AgentTool,
  agentTools,
  formatRef,
  type Locate,
  type SourceRef,
  type StandingCredential,
  standingCredentials,
} from "./surface.js";
