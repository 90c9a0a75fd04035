/**
 * Posture figures of one scan, beside its findings, for the metrics (docs/metrics.md): how many
 * ClusterRoleBindings the Kubernetes input holds, and how many GitHub workflows set their token's
 * permissions explicitly — no job of the workflow falls back to the repository default.
 */
import type { GraphView } from "./model.js";

export interface Posture {
  /** ClusterRoleBinding objects in the input (bindings only referenced, never seen, are not counted). */
  readonly clusterRoleBindings: number;
  /** Workflow files with at least one job analyzed. */
  readonly workflows: number;
  /** Of those, the files none of whose jobs gets the repository default token permissions. */
  readonly workflowsExplicit: number;
}

/** `github:job:<file>#<job>` and `github:workflow:<file>`: the workflow file a GitHub workload is in. */
function workflowFile(id: string): string | undefined {
  const m = /^github:(?:job|workflow):(.+?)(?:#[^#]*)?$/.exec(id);
  return m?.[1];
}

export function postureOf(g: GraphView): Posture {
  let clusterRoleBindings = 0;
  const files = new Map<string, boolean>();
  for (const n of g.nodes.values()) {
    if (n.provider === "k8s" && n.type === "binding" && n.subtype === "ClusterRoleBinding") {
      if (n.attrs?.implicit !== true) clusterRoleBindings++;
    }
    if (n.provider === "github" && n.type === "workload") {
      const file = workflowFile(n.id);
      if (file === undefined) continue;
      const defaulted = (g.out.get(n.id) ?? []).some((e) => e.type === "falls-back-to");
      files.set(file, (files.get(file) ?? true) && !defaulted);
    }
  }
  let explicit = 0;
  for (const ok of files.values()) if (ok) explicit++;
  return { clusterRoleBindings, workflows: files.size, workflowsExplicit: explicit };
}
