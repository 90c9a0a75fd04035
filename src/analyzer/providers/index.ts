/**
 * The providers the analyzer knows, one folder each: `aws`, `k8s`, `github`, and `traces` (agents'
 * tool calls, input only). Order matters: a file goes to the first importer that detects it, and
 * traces are detected before Kubernetes manifests (both can be JSON).
 */
import type { AnalyzerPlugin } from "../model.js";
import { awsPlugin } from "./aws/index.js";
import { githubPlugin } from "./github/index.js";
import { k8sPlugin } from "./k8s/index.js";
import { tracesPlugin } from "./traces/index.js";

export const defaultPlugins: readonly AnalyzerPlugin[] = [tracesPlugin, k8sPlugin, githubPlugin, awsPlugin];
