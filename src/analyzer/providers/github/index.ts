/** GitHub Actions: workflows, their token permissions, what steps need, risk and fixes. What other folders use. */
export { githubPlugin } from "./plugin.js";
export { githubWorkflowImporter } from "./workflows.js";
