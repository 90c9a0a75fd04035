/**
 * What the engine asks of GitHub Actions: risk per scope (write to code, releases, packages, OIDC
 * tokens is high), what a job's steps need when there is no activity data, and the fix — a
 * `permissions:` block per job, each entry with the step that needs it.
 */
import type {
  GraphNode,
  GraphView,
  InferredUse,
  ProviderPlugin,
  Reduction,
  ReductionContext,
  Severity,
} from "../../model.js";
import { stepNeeds } from "./needs.js";
import { githubWorkflowImporter } from "./workflows.js";

const HIGH = new Set([
  "actions",
  "attestations",
  "contents",
  "deployments",
  "id_token",
  "issues",
  "packages",
  "pages",
  "pull_requests",
  "workflows",
  "administration",
  "secrets",
]);
const LOW = new Set(["models", "statuses"]);

export function githubRisk(action: string): Severity {
  const [, scope = "", level = ""] = action.split(":");
  if (scope === "*") return /write/.test(level) ? (level === "write" ? "high" : "medium") : "medium";
  if (level === "read") return "low";
  if (HIGH.has(scope)) return "high";
  if (LOW.has(scope)) return "low";
  return "medium";
}

function stepsOf(w: GraphNode): { uses?: unknown; run?: unknown; with?: unknown; line?: number }[] {
  try {
    return JSON.parse(String(w.attrs?.steps ?? "[]"));
  } catch {
    return [];
  }
}

function inferredUse(w: GraphNode, _g: GraphView): InferredUse[] {
  const { needs } = stepNeeds(stepsOf(w));
  const out: InferredUse[] = [];
  for (const n of needs) {
    out.push({
      action: `github:${n.scope}:${n.level}`,
      resource: "*",
      reason: n.reason,
      source: { file: String(w.namespace), line: n.line },
    });
    if (n.level === "write")
      out.push({
        action: `github:${n.scope}:read`,
        resource: "*",
        reason: n.reason,
        source: { file: String(w.namespace), line: n.line },
      });
  }
  return out;
}

function block(ctx: ReductionContext): string {
  const levels = new Map<string, { level: "read" | "write"; why: string }>();
  for (const u of ctx.used) {
    const [, scope = "", level = ""] = u.action.split(":");
    if (scope === "*" || scope.startsWith("unknown_")) continue;
    const prev = levels.get(scope);
    if (!prev || (prev.level === "read" && level === "write"))
      levels.set(scope, { level: level as "read" | "write", why: u.evidence });
  }
  const { unknown } = stepNeeds(stepsOf(ctx.workload));
  const lines = [`jobs:`, `  ${ctx.workload.name}:`, `    permissions:`];
  if (levels.size === 0) lines[2] = "    permissions: {}  # no step needs the token";
  for (const [scope, { level, why }] of [...levels].sort())
    lines.push(`      ${scope.replace(/_/g, "-")}: ${level}  # ${why}`);
  if (unknown.length > 0)
    lines.push(`    # review: writ cannot tell what these steps need: ${unknown.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

function replacement(ctx: ReductionContext): Reduction {
  return {
    kind: "permissions-block",
    summary: `set job \`${ctx.workload.name}\`'s permissions to what its steps use`,
    files: [
      { path: `${ctx.workload.namespace} (job ${ctx.workload.name})`, language: "yaml", content: block(ctx) },
    ],
  };
}

function dedicatedIdentity(ctx: ReductionContext): Reduction {
  const from = [...new Set(ctx.excess.map((p) => p.path[p.path.length - 1]!))].map((id) =>
    id.replace(/^github:/, ""),
  );
  return {
    kind: "permissions-block",
    summary: `give job \`${ctx.workload.name}\` its own permissions block instead of inheriting ${from.join(", ")}; leave the workflow's block (or set it to \`{}\`) for the other jobs`,
    files: [
      { path: `${ctx.workload.namespace} (job ${ctx.workload.name})`, language: "yaml", content: block(ctx) },
    ],
  };
}

export const githubPlugin: ProviderPlugin = {
  provider: "github",
  importers: [githubWorkflowImporter],
  risk: (action) => githubRisk(action),
  inferredUse,
  replacement,
  dedicatedIdentity,
};
