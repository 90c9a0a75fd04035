// `writ/analyzer`: posture analysis (docs/analyzer.md): inputs → findings → reports.

// what a scan returns
export type { AnalysisResult, Finding } from "../analyzer/index.js";
// scan files and folders with the provider plugins
// the engine, for inputs already in memory
// report writers
export {
  defaultPlugins,
  Engine,
  type EngineOptions,
  htmlReport,
  jsonReport,
  markdownReport,
  type ScanOptions,
  type ScanProgress,
  sarifReport,
  scanPaths,
  scanRoot,
  terminalReport,
} from "../analyzer/index.js";
