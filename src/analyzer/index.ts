// The posture analyzer: importers → identity graph → three categories of excess → fixes and reports.
// The only public surface of src/analyzer.
export { blastRadius } from "./blast.js";
export { ANALYZER_ERROR_CODES, type AnalyzerErrorCode } from "./codes.js";
export { DeclaredMatcher, declaredWork, provisionedBindingsOf } from "./declared.js";
export { Engine, type EngineOptions, findingId, grantChain } from "./engine.js";
export { buildGraph, effectiveGrants, identitiesOf, workloads } from "./graph.js";
export { githubPlugin } from "./importers/github/plugin.js";
export { githubWorkflowImporter } from "./importers/github/workflows.js";
export { k8sAuditImporter, principalId } from "./importers/k8s/audit.js";
export { k8sLinker } from "./importers/k8s/link.js";
export { k8sManifestImporter } from "./importers/k8s/manifests.js";
export { k8sEscalations, k8sPlugin, k8sRisk } from "./importers/k8s/plugin.js";
export { ruleGrants } from "./importers/k8s/rbac.js";
export { otlpTraceImporter } from "./importers/traces/otlp.js";
export { formatInputProblem, formatSource, openInput, problem, textInput } from "./input.js";
export type {
  AnalysisResult,
  Category,
  DeclaredWork,
  EscalationEdge,
  Finding,
  GraphNode,
  GraphView,
  ObservationWindow,
  ObservedEvent,
  ProviderPlugin,
  ToolCall,
} from "./model.js";
export { CATEGORIES, EMPTY_FRAGMENT, SEVERITIES } from "./model.js";
export { defaultPlugins } from "./plugins.js";
export { guardrailFor } from "./remediation.js";
export { htmlReport, jsonReport, markdownReport, sarifReport, terminalReport } from "./reports/index.js";
export {
  expandPaths,
  pickImporter,
  rootedName,
  type ScanOptions,
  type ScanProgress,
  scanPaths,
  scanRoot,
} from "./scan.js";
export { validWritIssue, writWorkloadId } from "./writs.js";
