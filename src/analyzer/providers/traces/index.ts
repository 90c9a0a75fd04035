/** Agent traces: what other folders use. */
export { otlpTraceImporter } from "./otlp.js";
export { tracesPlugin } from "./plugin.js";
