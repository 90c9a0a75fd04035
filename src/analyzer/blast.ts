/**
 * Blast radius: if this workload's credential leaked, could it create identities, read unrelated
 * secrets, or mutate workloads outside its namespace? Answered as reachability over escalation
 * edges (breadth-first, so the path shown is a shortest one).
 */
import type { BlastRadius, EscalationEdge, GraphNode, GraphView } from "./model.js";

const CREATE_IDENTITIES = new Set([
  "TOKEN_CREATE",
  "IDENTITY_IMPERSONATE",
  "ROLE_BIND",
  "ROLE_ESCALATE",
  "CSR_APPROVE",
  "SA_CREATE",
]);
const SECRETS = new Set(["TOKEN_LIST", "TOKEN_BRUTEFORCE", "SECRET_READ"]);
const MUTATE = new Set([
  "POD_CREATE",
  "POD_PATCH",
  "POD_EXEC",
  "WORKLOAD_CREATE",
  "NODE_PROXY",
  "WEBHOOK_CONFIG",
  "CE_PRIV_MOUNT",
  "CE_NSENTER",
  "CE_MODULE_LOAD",
  "CE_SYS_PTRACE",
  "CE_UMH_CORE_PATTERN",
  "CE_VAR_LOG_SYMLINK",
  "EXPLOIT_HOST_WRITE",
]);

function outside(e: EscalationEdge, ns: string | undefined): boolean {
  if (ns === undefined) return true;
  const r = e.via.resource;
  if (r === "" || e.to.startsWith("k8s:Node:")) return true;
  return !r.split("|").every((alt) => alt.startsWith(`${ns}/`));
}

export function blastRadius(_g: GraphView, w: GraphNode, edges: readonly EscalationEdge[]): BlastRadius {
  const out = new Map<string, EscalationEdge[]>();
  for (const e of edges) (out.get(e.from) ?? out.set(e.from, []).get(e.from)!).push(e);
  const prev = new Map<string, EscalationEdge | null>([[w.id, null]]);
  const queue = [w.id];
  const hits: Record<string, EscalationEdge | undefined> = {};
  const test = (e: EscalationEdge) => {
    if (!hits.create && CREATE_IDENTITIES.has(e.type)) hits.create = e;
    if (!hits.secrets && SECRETS.has(e.type) && outside(e, w.namespace)) hits.secrets = e;
    if (
      !hits.mutate &&
      MUTATE.has(e.type) &&
      (outside(e, w.namespace) || e.type.startsWith("CE_") || e.type.startsWith("EXPLOIT"))
    )
      hits.mutate = e;
  };
  for (let depth = 0; queue.length > 0 && depth < 10_000; depth++) {
    const id = queue.shift()!;
    for (const e of out.get(id) ?? []) {
      test(e);
      if (prev.has(e.to)) continue;
      prev.set(e.to, e);
      queue.push(e.to);
    }
  }
  const pathTo = (last: EscalationEdge | undefined): EscalationEdge[] => {
    if (!last) return [];
    const path = [last];
    let cur = prev.get(last.from);
    while (cur) {
      path.unshift(cur);
      cur = prev.get(cur.from);
    }
    return path;
  };
  return {
    workload: w.id,
    answers: [
      { question: "create-identities", reachable: hits.create !== undefined, path: pathTo(hits.create) },
      {
        question: "read-unrelated-secrets",
        reachable: hits.secrets !== undefined,
        path: pathTo(hits.secrets),
      },
      {
        question: "mutate-outside-namespace",
        reachable: hits.mutate !== undefined,
        path: pathTo(hits.mutate),
      },
    ],
  };
}
