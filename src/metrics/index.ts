// Prometheus metrics of `writ serve` (docs/metrics.md). The only public surface of src/metrics.
export { type CredentialFigures, credentialFigures, productionEnvironments } from "./practice.js";
export { createMetrics, type Metrics, type MetricsOptions, metricsRoutes } from "./registry.js";
