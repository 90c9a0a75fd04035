/**
 * Fixes that belong to no provider: the category-2 gateway guardrail (a Cedar `forbid` for writ's
 * own config — the grant stays, the call that misused it is stopped), and a small YAML writer for
 * the generated files. Remediation is generated, never applied.
 */
import type { ObservedEvent, PermissionGrant, Reduction, ToolCall } from "./model.js";

const cedarString = (s: string) => JSON.stringify(s);

export function guardrailFor(
  agent: string,
  grant: PermissionGrant,
  uses: readonly { event: ObservedEvent; call: ToolCall | undefined; tainted: boolean }[],
): Reduction {
  const policies: string[] = [];
  const seen = new Set<string>();
  for (const u of uses) {
    let policy: string;
    if (u.call) {
      const action = u.call.tool.includes(":") ? `mcp:${u.call.tool}` : `mcp:*:${u.call.tool}`;
      const args =
        u.call.arguments && typeof u.call.arguments === "object" && !Array.isArray(u.call.arguments)
          ? Object.entries(u.call.arguments as Record<string, unknown>).filter(
              ([, v]) => typeof v === "string",
            )
          : [];
      const conds = args
        .slice(0, 3)
        .map(
          ([k, v]) =>
            `context.arguments has ${safeKey(k)} && context.arguments.${safeKey(k)} == ${cedarString(String(v))}`,
        );
      if (u.tainted) conds.unshift("context.tainted");
      const actionClause = action.includes("*")
        ? `action in Writ::Action::${cedarString("mcp")}`
        : `action == Writ::Action::${cedarString(action)}`;
      policy = `forbid (principal == Writ::Agent::${cedarString(agent)}, ${actionClause}, resource)${conds.length ? `\nwhen { ${conds.join(" && ")} }` : ""};`;
    } else {
      policy = `forbid (principal == Writ::Agent::${cedarString(agent)}, action == Writ::Action::${cedarString(u.event.action)}, resource)\nwhen { resource.id == ${cedarString(u.event.resource)} };`;
    }
    if (seen.has(policy)) continue;
    seen.add(policy);
    policies.push(policy);
  }
  // Per action and resource: two findings' guardrails added to one writ.yaml keep distinct ids.
  const slug = (x: string) => x.replace(/[^a-zA-Z0-9]+/g, "-").slice(0, 60);
  const id = (i: number) => `scan-${agent}-${slug(grant.action)}-${slug(grant.resource)}-${i + 1}`;
  const body = policies
    .map(
      (p, i) =>
        `      @id(${cedarString(id(i))})\n${p
          .split("\n")
          .map((l) => `      ${l}`)
          .join("\n")}`,
    )
    .join("\n\n");
  return {
    kind: "gateway-guardrail",
    summary: `keep the grant; stop the out-of-scope call at the gateway with ${policies.length} guardrail(s) in writ.yaml`,
    files: [
      {
        path: "writ.yaml (add under guardrails:)",
        language: "yaml",
        content: `guardrails:\n  - inline: |\n${body}\n`,
      },
    ],
  };
}

function safeKey(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : "unsupported_key";
}

/** A minimal YAML emitter for generated manifests (plain scalars quoted when needed). */
export function yamlScalar(v: string | number | boolean): string {
  if (typeof v !== "string") return String(v);
  return /^[A-Za-z0-9_./-]+$/.test(v) && !/^(true|false|null|yes|no|on|off|~|\d.*)$/i.test(v)
    ? v
    : JSON.stringify(v);
}

export function yamlList(items: readonly string[]): string {
  return `[${items.map(yamlScalar).join(", ")}]`;
}
