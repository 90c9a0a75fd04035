// biome-ignore-all assist/source/organizeImports: a table of contents, grouped by operation
// `writ/analyzer`: posture analysis (docs/analyzer.md): inputs → findings → reports.

// scan files and folders with the provider plugins
export {
  defaultPlugins,
  type ScanOptions,
  type ScanProgress,
  scanPaths,
  scanRoot,
} from "../analyzer/index.js";

// the engine, for inputs already in memory
export { Engine, type EngineOptions } from "../analyzer/index.js";

// report writers
export { htmlReport, jsonReport, markdownReport, sarifReport, terminalReport } from "../analyzer/index.js";

// what a scan returns
export type { AnalysisResult, Finding } from "../analyzer/index.js";
