/**
 * An agent's declared work, from a loaded writ.yaml: its baseline grants, the grants of every
 * playbook it may run (parameters widened to the most their schema allows, as `writ check` does),
 * the permissions its tools need, its MCP tools, and what ties it to what runs (`workloads`,
 * `serviceAccounts`, `cloudIdentities`), what it reads that is untrusted, and the bindings made for it.
 */
import {
  compileRule,
  globMatches,
  parseGlob,
  parseRequestAction,
  type Rule,
  ruleMatches,
  type WritConfig,
  widenTemplate,
} from "../core/index.js";
import { coversCollection } from "./collections.js";
import type { DeclaredGrant, DeclaredWork } from "./model.js";

export function declaredWork(config: WritConfig): Map<string, DeclaredWork> {
  const out = new Map<string, DeclaredWork>();
  for (const agent of config.agents.values()) {
    const grants: DeclaredGrant[] = agent.baseline.map((g) => ({
      action: g.rule.text.action,
      resource: g.rule.text.resource,
      from: "baseline",
    }));
    for (const id of agent.playbooks) {
      const pb = config.playbooks.get(id);
      if (!pb) continue;
      const props = (pb.parameters.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const t of pb.grants) {
        for (const action of widenTemplate(t.action, props)) {
          for (const resource of widenTemplate(t.resource, props))
            grants.push({ action, resource, from: `playbook:${id}` });
        }
      }
    }
    const runs = agent.runs;
    // What a tool's calls need is declared work too, whichever tool made the call.
    for (const need of runs?.toolNeeds ?? [])
      for (const p of need.permissions)
        grants.push({
          action: p.rule.text.action,
          resource: p.rule.text.resource,
          from: `tool:${need.tool}`,
        });
    out.set(agent.id, {
      agent: agent.id,
      grants,
      tools: agent.tools.map((r) => r.text.action.replace(/^mcp:/, "")),
      playbooks: [...agent.playbooks],
      ...(runs
        ? {
            workloads: runs.workloads,
            serviceAccounts: runs.serviceAccounts.map((a) => `${a.namespace}/${a.name}`),
            cloudIdentities: runs.cloudIdentities,
            untrustedInputs: runs.untrustedInputs,
            provisionedBindings: runs.provisionedBindings?.map((b) =>
              b.kind === "RoleBinding"
                ? `k8s:RoleBinding:${b.namespace}/${b.name}`
                : `k8s:ClusterRoleBinding:${b.name}`,
            ),
          }
        : {}),
    });
  }
  return out;
}

/** Compiled for matching: which declared grant covers a concrete action on a resource. */
export class DeclaredMatcher {
  private readonly rules: { rule: Rule; from: string; resource: string }[] = [];
  constructor(readonly work: DeclaredWork) {
    for (const g of work.grants) {
      try {
        this.rules.push({ rule: compileRule(g), from: g.from, resource: g.resource });
      } catch {
        // writ.yaml was checked at load; a grant that does not compile here covers nothing
      }
    }
  }
  /** The declared sources that cover the request (`baseline`, `playbook:x`); empty: none. */
  covering(action: string, resource: string): readonly string[] {
    // Remembered per request (bounded): a large log repeats the same objects.
    const key = `${action}\u0000${resource}`;
    let hit = this.covers.get(key);
    if (hit === undefined) {
      hit = this.cover(action, resource);
      if (this.covers.size >= 65_536) this.covers.clear();
      this.covers.set(key, hit);
    }
    return hit;
  }
  private readonly covers = new Map<string, readonly string[]>();
  private cover(action: string, resource: string): string[] {
    // Parsed once per distinct action: a large audit log repeats a few dozen actions.
    let parsed = this.parsed.get(action);
    if (parsed === undefined) {
      try {
        parsed = parseRequestAction(action);
      } catch {
        parsed = null;
      }
      if (this.parsed.size < 4096) this.parsed.set(action, parsed);
    }
    if (parsed === null) return [];
    const p = parsed;
    const direct = this.rules.filter((r) => ruleMatches(r.rule, p, resource, "cover"));
    if (direct.length > 0) return direct.map((r) => r.from);
    // A list/watch is covered by a declaration of named objects as collections.ts says.
    return this.rules.filter((r) => coversCollection(r, action, resource)).map((r) => r.from);
  }
  private readonly parsed = new Map<string, ReturnType<typeof parseRequestAction> | null>();
  /** Is the tool (`server:tool`, or a bare tool name) among the agent's declared tools? */
  toolDeclared(tool: string): boolean {
    let ok = this.declaredTools.get(tool);
    if (ok === undefined) {
      ok = this.toolMatches(tool);
      if (this.declaredTools.size < 4096) this.declaredTools.set(tool, ok);
    }
    return ok;
  }
  private readonly declaredTools = new Map<string, boolean>();
  private toolMatches(tool: string): boolean {
    const i = tool.indexOf(":");
    const server = i < 0 ? undefined : tool.slice(0, i);
    const name = i < 0 ? tool : tool.slice(i + 1);
    return this.work.tools.some((pattern) => {
      const j = pattern.indexOf(":");
      if (j < 0) return false;
      try {
        const okTool = globMatches(parseGlob(pattern.slice(j + 1)), name);
        return okTool && (server === undefined || globMatches(parseGlob(pattern.slice(0, j)), server));
      } catch {
        return false;
      }
    });
  }
}

/**
 * Per agent, the bindings its owner says were made for it (writ.yaml `provisionedBindings`), as
 * node ids (`k8s:RoleBinding:ns/name`, `k8s:ClusterRoleBinding:name`). Agents
 * that do not say are absent.
 */
export function provisionedBindingsOf(
  declared: ReadonlyMap<string, DeclaredWork>,
): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const [id, w] of declared) if (w.provisionedBindings) out.set(id, w.provisionedBindings);
  return out;
}
