// The posture analyzer: importers → identity graph → three categories of excess → fixes and reports.
// The only public surface of src/analyzer.
export type * from "./model.js";
export { CATEGORIES, EMPTY_FRAGMENT, SEVERITIES } from "./model.js";
