/**
 * What the engine asks of GitHub Actions: risk per scope (write to code, releases, packages, OIDC
 * tokens is high), what a job's steps need when there is no activity data, and the fix — a
 * `permissions:` block per job (or at the top level, for a workflow whose jobs fall back on the
 * repository default), each entry with the step that needs it.
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
  // A workflow-level workload gets a top-level block (what the jobs that set none need together).
  const top = ctx.workload.subtype === "workflow";
  const pad = top ? "" : "    ";
  const lines = top ? [] : [`jobs:`, `  ${ctx.workload.name}:`];
  if (top)
    lines.push(
      `# top level of the workflow, for ${String(ctx.workload.attrs?.jobs ?? "").replace(/,/g, ", ")}`,
    );
  lines.push(levels.size === 0 ? `${pad}permissions: {}  # no step needs the token` : `${pad}permissions:`);
  for (const [scope, { level, why }] of [...levels].sort())
    lines.push(`${pad}  ${scope.replace(/_/g, "-")}: ${level}  # ${why}`);
  if (unknown.length > 0)
    lines.push(`${pad}# review: writ cannot tell what these steps need: ${unknown.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

/** Where the block goes: a job, or the workflow's top level. */
function place(w: GraphNode): string {
  return w.subtype === "workflow" ? "the workflow's top level" : `job \`${w.name}\``;
}

function blockFile(ctx: ReductionContext) {
  const w = ctx.workload;
  const where = w.subtype === "workflow" ? "top level" : `job ${w.name}`;
  return { path: `${w.namespace} (${where})`, language: "yaml" as const, content: block(ctx) };
}

function replacement(ctx: ReductionContext): Reduction {
  return {
    kind: "permissions-block",
    summary: `set ${place(ctx.workload)}'s permissions to what its steps use`,
    files: [blockFile(ctx)],
  };
}

function dedicatedIdentity(ctx: ReductionContext): Reduction {
  const from = [...new Set(ctx.excess.map((p) => p.path[p.path.length - 1]!))].map((id) =>
    id.replace(/^github:/, ""),
  );
  if (ctx.workload.subtype === "workflow")
    return {
      kind: "permissions-block",
      summary: `give the workflow a top-level permissions block instead of ${from.join(", ")}: it covers ${String(ctx.workload.attrs?.jobs ?? "").replace(/,/g, ", ")}`,
      files: [blockFile(ctx)],
    };
  return {
    kind: "permissions-block",
    summary: `give job \`${ctx.workload.name}\` its own permissions block instead of inheriting ${from.join(", ")}; leave the workflow's block (or set it to \`{}\`) for the other jobs`,
    files: [blockFile(ctx)],
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
