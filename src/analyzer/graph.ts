/**
 * The identity graph: merged nodes and edges from every importer and linker, and the walk from a
 * workload to every grant it holds, with the path and whether the path is inherited.
 */
import type { EffectiveGrant, GraphEdge, GraphNode, GraphView } from "./model.js";

/** Edges a credential flows along, from the workload towards the grants. */
const GRANT_EDGES = new Set<GraphEdge["type"]>([
  "runs-as",
  "falls-back-to",
  "member-of",
  "bound-by",
  "assumes",
  "inherits",
]);
const IDENTITY_EDGES = new Set<GraphEdge["type"]>(["runs-as", "falls-back-to", "assumes"]);

export function buildGraph(nodes: Iterable<GraphNode>, edges: Iterable<GraphEdge>): GraphView {
  const byId = new Map<string, GraphNode>();
  for (const n of nodes) {
    const prev = byId.get(n.id);
    if (!prev || (prev.attrs?.implicit && !n.attrs?.implicit)) byId.set(n.id, n);
  }
  const out = new Map<string, GraphEdge[]>();
  const inn = new Map<string, GraphEdge[]>();
  const seen = new Set<string>();
  for (const e of edges) {
    const key = `${e.from}\u0000${e.to}\u0000${e.type}`;
    if (seen.has(key)) continue;
    seen.add(key);
    (out.get(e.from) ?? out.set(e.from, []).get(e.from)!).push(e);
    (inn.get(e.to) ?? inn.set(e.to, []).get(e.to)!).push(e);
  }
  return { nodes: byId, out, in: inn };
}

export function workloads(g: GraphView): GraphNode[] {
  return [...g.nodes.values()].filter((n) => n.type === "workload").sort((a, b) => a.id.localeCompare(b.id));
}

/** The identities a workload's credential is (its service account, and what that assumes). */
export function identitiesOf(g: GraphView, workload: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>([workload]);
  const stack = [workload];
  while (stack.length > 0) {
    const id = stack.pop()!;
    for (const e of g.out.get(id) ?? []) {
      if (!IDENTITY_EDGES.has(e.type) || seen.has(e.to)) continue;
      seen.add(e.to);
      out.push(e.to);
      stack.push(e.to);
    }
  }
  return out;
}

/** How many workloads run as each identity: an identity run by more than one is shared. */
export function identityUse(g: GraphView): Map<string, string[]> {
  const use = new Map<string, string[]>();
  for (const w of workloads(g)) {
    for (const id of identitiesOf(g, w.id)) (use.get(id) ?? use.set(id, []).get(id)!).push(w.id);
  }
  return use;
}

/** Why a step of a path makes it inherited, or undefined. */
export function inheritedBecause(
  node: GraphNode,
  via: GraphEdge,
  use: ReadonlyMap<string, readonly string[]>,
): string | undefined {
  if (via.type === "falls-back-to") return `no identity of its own: ${via.note ?? "falls back to a default"}`;
  if (via.type === "can-assume")
    return `reached by assuming \`${node.name}\`${via.note ? ` (${via.note})` : ""}: a role not provisioned for this workload`;
  if (node.type === "group") return `granted to the group \`${node.name}\`, not to this workload`;
  if (node.type === "default") return `the default for everything that sets nothing (\`${node.name}\`)`;
  if (node.shared) return `\`${node.name}\` is shared by design (${node.subtype})`;
  const users = use.get(node.id);
  if (node.type === "identity" && users && users.length > 1)
    return `\`${node.name}\` is shared by ${users.length} workloads`;
  return undefined;
}

export interface GrantPath extends EffectiveGrant {
  readonly edges: readonly GraphEdge[];
  readonly why?: string | undefined;
}

/**
 * Every grant reachable from the workload, one entry per (grant, path). Roles reached through
 * `can-assume` edges are walked breadth-first, each once, by a shortest chain: role chaining can
 * join many roles to each other, and every path through them would be too many.
 */
export function effectiveGrants(
  g: GraphView,
  workload: string,
  use: ReadonlyMap<string, readonly string[]>,
): GrantPath[] {
  const out: GrantPath[] = [];
  const visited = new Set<string>([workload]);
  const chained: { id: string; path: string[]; edges: GraphEdge[]; why: string | undefined }[] = [];
  const walk = (id: string, path: string[], edges: GraphEdge[], why: string | undefined) => {
    if (path.length > 12) return;
    visited.add(id);
    const node = g.nodes.get(id);
    if (node && path.length > 1) {
      for (const grant of node.grants ?? [])
        out.push({ grant, path, edges, inherited: why !== undefined, why });
    }
    for (const e of g.out.get(id) ?? []) {
      const chain = e.type === "can-assume";
      if ((!chain && !GRANT_EDGES.has(e.type)) || path.includes(e.to)) continue;
      const next = g.nodes.get(e.to);
      if (!next) continue;
      const step = {
        id: e.to,
        path: [...path, e.to],
        edges: [...edges, e],
        why: why ?? inheritedBecause(next, e, use),
      };
      if (chain) chained.push(step);
      else walk(step.id, step.path, step.edges, step.why);
    }
  };
  walk(workload, [workload], [], undefined);
  for (let i = 0; i < chained.length; i++) {
    const c = chained[i]!;
    if (visited.has(c.id)) continue;
    walk(c.id, c.path, c.edges, c.why);
  }
  return out;
}
