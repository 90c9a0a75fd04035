/** The providers the analyzer knows. Agent traces carry no grants: they ride on the k8s plugin's list. */
import { awsPlugin } from "./aws/plugin.js";
import { githubPlugin } from "./importers/github/plugin.js";
import { k8sPlugin } from "./importers/k8s/plugin.js";
import { otlpTraceImporter } from "./importers/traces/otlp.js";
import type { ProviderPlugin } from "./model.js";

export const defaultPlugins: readonly ProviderPlugin[] = [
  { ...k8sPlugin, importers: [otlpTraceImporter, ...k8sPlugin.importers] },
  githubPlugin,
  awsPlugin,
];
