// The posture analyzer: importers → identity graph → three categories of excess → fixes and reports.
// The only public surface of src/analyzer.
export { blastRadius } from "./blast.js";
export { ANALYZER_ERROR_CODES, type AnalyzerErrorCode } from "./codes.js";
export { DeclaredMatcher, declaredWork, provisionedBindingsOf } from "./declared.js";
export { Engine, type EngineOptions, findingId, grantChain } from "./engine.js";
export { buildGraph, effectiveGrants, identitiesOf, workloads } from "./graph.js";
export { formatInputProblem, formatSource, openInput, problem, textInput } from "./input.js";
export type {
  AnalysisResult,
  AnalyzerPlugin,
  BlastQuestion,
  Category,
  DeclaredWork,
  EscalationEdge,
  Finding,
  GraphNode,
  GraphView,
  InputPlugin,
  NodeProvider,
  ObservationWindow,
  ObservedEvent,
  ProviderPlugin,
  ToolCall,
} from "./model.js";
export { BLAST_QUESTIONS, CATEGORIES, EMPTY_FRAGMENT, providesGrants, SEVERITIES } from "./model.js";
export { githubPlugin, githubWorkflowImporter } from "./providers/github/index.js";
export { defaultPlugins } from "./providers/index.js";
export {
  k8sAuditImporter,
  k8sEscalations,
  k8sLinker,
  k8sManifestImporter,
  k8sPlugin,
  k8sRisk,
  principalId,
  ruleGrants,
} from "./providers/k8s/index.js";
export { otlpTraceImporter, tracesPlugin } from "./providers/traces/index.js";
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
