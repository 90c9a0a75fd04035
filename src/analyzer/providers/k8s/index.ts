/** Kubernetes: manifests, API-server audit logs, the linker, RBAC, risk and escalation edges. What other folders use. */
export { k8sAuditImporter, principalId, writBindingIssue } from "./audit.js";
export { k8sEscalations } from "./escalation.js";
export { k8sLinker } from "./link.js";
export { k8sManifestImporter } from "./manifests.js";
export { k8sPlugin, k8sRisk } from "./plugin.js";
export { CLUSTER_SCOPED, ruleGrants } from "./rbac.js";
