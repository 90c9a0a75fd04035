/**
 * Blast radius: if this workload's credential leaked, could it create identities, read unrelated
 * secrets, or mutate workloads outside its namespace — each question worded by the workload's
 * provider (`ProviderPlugin.blastQuestions`)? Answered as reachability over escalation
 * edges (breadth-first, so the path shown is a shortest one). Edges resting on a fact the input does
 * not show (`unknown`) never make a question reachable: they only explain an unknown answer.
 */
import {
  BLAST_QUESTIONS,
  type BlastQuestion,
  type BlastRadius,
  type EscalationEdge,
  type GraphNode,
  type GraphView,
} from "./model.js";

/** The questions' words when the workload's provider gives none of its own. */
export const GENERIC_QUESTIONS: Readonly<Record<BlastQuestion, string>> = {
  "create-identities": "create identities",
  "read-unrelated-secrets": "read unrelated secrets",
  "mutate-outside-namespace": "mutate workloads outside its namespace",
};

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
  "PRIVILEGED_POD",
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

type Question = BlastQuestion;
const QUESTIONS = BLAST_QUESTIONS;

/** Breadth-first from the workload: the first edge answering each question, and the way back. */
function search(
  w: GraphNode,
  out: ReadonlyMap<string, readonly EscalationEdge[]>,
): {
  hits: Partial<Record<Question, EscalationEdge>>;
  pathTo: (e: EscalationEdge | undefined) => EscalationEdge[];
} {
  const prev = new Map<string, EscalationEdge | null>([[w.id, null]]);
  const queue = [w.id];
  const hits: Partial<Record<Question, EscalationEdge>> = {};
  const test = (e: EscalationEdge) => {
    if (!hits["create-identities"] && CREATE_IDENTITIES.has(e.type)) hits["create-identities"] = e;
    if (!hits["read-unrelated-secrets"] && SECRETS.has(e.type) && outside(e, w.namespace))
      hits["read-unrelated-secrets"] = e;
    if (
      !hits["mutate-outside-namespace"] &&
      MUTATE.has(e.type) &&
      (outside(e, w.namespace) || e.type.startsWith("CE_") || e.type.startsWith("EXPLOIT"))
    )
      hits["mutate-outside-namespace"] = e;
  };
  for (let head = 0; head < queue.length && head < 10_000; head++) {
    const id = queue[head]!;
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
  return { hits, pathTo };
}

/** The escalation edges by origin, known ones apart: built once for every workload's questions. */
export interface BlastIndex {
  readonly known: ReadonlyMap<string, readonly EscalationEdge[]>;
  readonly all: ReadonlyMap<string, readonly EscalationEdge[]>;
  readonly unknownEdges: boolean;
}

export function blastIndex(edges: readonly EscalationEdge[]): BlastIndex {
  const known = new Map<string, EscalationEdge[]>();
  let unknownEdges = false;
  const all = new Map<string, EscalationEdge[]>();
  for (const e of edges) {
    if (e.unknown) unknownEdges = true;
    else (known.get(e.from) ?? known.set(e.from, []).get(e.from)!).push(e);
    (all.get(e.from) ?? all.set(e.from, []).get(e.from)!).push(e);
  }
  return { known, all, unknownEdges };
}

/**
 * Each question answered over the edges the input shows; a question those leave open is searched
 * again with the edges resting on a fact the input does not show (`unknown`), and answered as
 * unknown — not reachable — with that path and the reason.
 */
export function blastRadius(
  _g: GraphView,
  w: GraphNode,
  edges: readonly EscalationEdge[] | BlastIndex,
  words: Readonly<Record<BlastQuestion, string>> = GENERIC_QUESTIONS,
): BlastRadius {
  const { known, all, unknownEdges } = "known" in edges ? edges : blastIndex(edges);
  const sure = search(w, known);
  const open = QUESTIONS.some((q) => !sure.hits[q]) && unknownEdges ? search(w, all) : undefined;
  return {
    workload: w.id,
    answers: QUESTIONS.map((question) => {
      const text = words[question];
      const hit = sure.hits[question];
      if (hit) return { question, text, reachable: true, path: sure.pathTo(hit) };
      const maybe = open?.hits[question];
      if (!maybe) return { question, text, reachable: false, path: [] };
      const path = open!.pathTo(maybe);
      return { question, text, reachable: false, path, unknown: path.find((e) => e.unknown)?.unknown };
    }),
  };
}
