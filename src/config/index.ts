// writ.yaml: loaded and checked once, at the edge.
export { createAwsCatalog, type LoadableAwsCatalog } from "./catalog.js";
export { CONFIG_ERROR_CODES, type ConfigErrorCode } from "./codes.js";
export {
  collectAwsServices,
  DEFAULT_LIMITS,
  type GuardrailSource,
  type LoadOptions,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
} from "./load.js";
export { type ConfigProblem, formatPath, formatProblem, isUnreadableConfig } from "./problem.js";
