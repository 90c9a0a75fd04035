/**
 * A declared-work file, as an agent's owner writes it, translated into writ.yaml's `agents:`
 * entries: one YAML document per agent (or `agents: [...]`), short strings where writ.yaml has
 * maps. Every field has exactly one place in writ.yaml, so nothing is lost (docs/analyzer.md):
 *
 *   agent: triage-bot                        → agents.triage-bot
 *   owner / purpose                          → owner / purpose
 *   workloads: ["Deployment support/triage"] → workloads: [{kind, namespace, name}]
 *   serviceAccounts / cloudIdentities        → the same lists
 *   permissions: ["k8s:core/pods:get on support/*"]  → baseline, `standingWrite` naming the file
 *   tools: {"kubectl:get_pods": ["… on …"]}  → tools: [{tool, permissions}] (an empty list: a plain tool)
 *   untrustedInputs                          → the same list (tool globs, {attribute, equals|matches})
 *   provisionedBindings: ["RoleBinding support/x", "ClusterRoleBinding y"] → [{kind, namespace?, name}]
 *
 * The agents run in an environment `scan` under a runner class `declared-work` whose ceiling
 * allows every provider: the translation is for `writ scan`; a writ.yaml that issues writs sets
 * its own runner class and environments (the printed text says so).
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments, stringify } from "yaml";
import { problem } from "./input.js";
import type { InputProblem } from "./model.js";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const FIELDS = [
  "agent",
  "owner",
  "purpose",
  "workloads",
  "serviceAccounts",
  "cloudIdentities",
  "permissions",
  "tools",
  "untrustedInputs",
  "provisionedBindings",
];
export interface DeclaredTranslation {
  /** The writ.yaml text (undefined when the file has errors). */
  readonly yaml?: string | undefined;
  readonly agents: readonly string[];
  readonly problems: readonly InputProblem[];
}

/** `permission on resource` → `{action, resource}` (no ` on `: every resource). */
function permission(s: string): { action: string; resource?: string } {
  const i = s.lastIndexOf(" on ");
  return i < 0 ? { action: s.trim() } : { action: s.slice(0, i).trim(), resource: s.slice(i + 4).trim() };
}

export function translateDeclaredWork(text: string, file: string): DeclaredTranslation {
  const problems: InputProblem[] = [];
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true });
  const at = (node: Node | null | undefined) => {
    const off = node?.range?.[0];
    if (off === undefined) return { file };
    const p = lc.linePos(off);
    return { file, line: p.line, column: p.col };
  };
  const fail = (node: Node | null | undefined, path: string, msg: string) =>
    problems.push(problem("ERR_DECLARED_WORK", at(node), `${path}: ${msg}`));
  /** The YAML node at a path under `root`, for positions. */
  const nodeAt = (root: Node | null, path: (string | number)[]): Node | null => {
    let n: Node | null = root;
    for (const seg of path) {
      if (isMap(n)) n = (n.items.find((p) => isScalar(p.key) && p.key.value === seg)?.value as Node) ?? n;
      else if (isSeq(n) && typeof seg === "number") n = (n.items[seg] as Node) ?? n;
      else break;
    }
    return n;
  };
  const agents: Record<string, Obj> = {};
  const names: string[] = [];
  docs.forEach((doc) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors)
        problems.push(
          problem(
            "ERR_DECLARED_WORK",
            { file, line: e.linePos?.[0]?.line, column: e.linePos?.[0]?.col },
            e.message,
          ),
        );
      return;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) return;
    const list: [unknown, (string | number)[]][] =
      isObject(value) && Array.isArray(value.agents)
        ? value.agents.map((a, i) => [a, ["agents", i]])
        : [[value, []]];
    for (const [a, base] of list) {
      const root = nodeAt(doc.contents as Node | null, base);
      const where = (path: (string | number)[]) => nodeAt(doc.contents as Node | null, [...base, ...path]);
      if (!isObject(a)) {
        fail(root, base.join(".") || "(document)", "expected a map with `agent`, `owner`, `purpose`, …");
        continue;
      }
      for (const k of Object.keys(a))
        if (!FIELDS.includes(k)) fail(where([k]), k, `unknown field \`${k}\` (known: ${FIELDS.join(", ")})`);
      const id = typeof a.agent === "string" ? a.agent : undefined;
      if (!id) {
        fail(root, "agent", "missing: the agent's name as in writ.yaml");
        continue;
      }
      if (agents[id]) {
        fail(where(["agent"]), "agent", `\`${id}\` is declared twice`);
        continue;
      }
      const strings = (k: string): string[] | undefined => {
        const v = a[k];
        if (v === undefined) return undefined;
        if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
          fail(where([k]), k, "expected a list of strings");
          return undefined;
        }
        return v as string[];
      };
      for (const k of ["owner", "purpose"])
        if (typeof a[k] !== "string" || a[k] === "") fail(where([k]), k, `missing: the agent's ${k}`);
      const out: Obj = {
        owner: a.owner,
        purpose: a.purpose,
        runnerClass: "declared-work",
        environments: ["scan"],
      };
      const perms = strings("permissions");
      if (perms)
        // The owner's declaration is the reason a standing write is there (writ.yaml asks for one).
        out.baseline = perms.map((p) => ({ ...permission(p), standingWrite: `declared work in ${file}` }));
      if (a.tools !== undefined) {
        if (!isObject(a.tools))
          fail(where(["tools"]), "tools", "expected a map of `server:tool` to its permissions");
        else
          out.tools = Object.entries(a.tools).map(([tool, ps]) => {
            if (ps === null || (Array.isArray(ps) && ps.length === 0)) return tool;
            if (!Array.isArray(ps) || ps.some((x) => typeof x !== "string")) {
              fail(
                where(["tools", tool]),
                `tools.${tool}`,
                "expected a list of `action on resource` strings",
              );
              return tool;
            }
            return { tool, permissions: (ps as string[]).map(permission) };
          });
      }
      const wl = strings("workloads");
      if (wl)
        out.workloads = wl.map((w, i) => {
          const m = /^(\S+)\s+([^/\s]+)\/(\S+)$/.exec(w.trim());
          if (!m)
            fail(where(["workloads", i]), `workloads[${i}]`, `\`${w}\`: expected \`Kind namespace/name\``);
          return m ? { kind: m[1], namespace: m[2], name: m[3] } : { kind: w };
        });
      for (const k of ["serviceAccounts", "cloudIdentities"]) {
        const v = strings(k);
        if (v) out[k] = v;
      }
      if (a.untrustedInputs !== undefined) out.untrustedInputs = a.untrustedInputs;
      const pb = strings("provisionedBindings");
      if (pb)
        out.provisionedBindings = pb.map((b, i) => {
          const rb = /^RoleBinding\s+([^/\s]+)\/(\S+)$/.exec(b.trim());
          const crb = /^ClusterRoleBinding\s+(\S+)$/.exec(b.trim());
          if (rb) return { kind: "RoleBinding", namespace: rb[1], name: rb[2] };
          if (crb) return { kind: "ClusterRoleBinding", name: crb[1] };
          fail(
            where(["provisionedBindings", i]),
            `provisionedBindings[${i}]`,
            `\`${b}\`: expected \`RoleBinding namespace/name\` or \`ClusterRoleBinding name\``,
          );
          return { kind: b };
        });
      agents[id] = out;
      names.push(id);
    }
  });
  if (problems.length > 0) return { agents: names, problems };
  const config = {
    version: 1,
    environments: { scan: { description: "writ scan (from declared work)" } },
    runnerClasses: {
      "declared-work": {
        description: "every provider: for writ scan only; set a real runner class before issuing writs",
        ceiling: {
          maxTtl: "1h",
          allow: ["aws", "k8s", "github", "gcp", "mcp"].map((p) => ({ action: `${p}:*:*` })),
        },
      },
    },
    agents,
  };
  const yaml = `# Translated by writ from the declared work in ${file}.\n${stringify(config, { lineWidth: 0 })}`;
  return { yaml, agents: names, problems };
}
