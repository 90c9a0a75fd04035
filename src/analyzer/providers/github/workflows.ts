/**
 * GitHub Actions workflows → the graph. Each job is a workload whose identity is its GITHUB_TOKEN.
 * The token's permissions come from the job's `permissions:` block, else the workflow's (shared by
 * every job that sets none: inherited when there are several jobs), else the repository default
 * (inherited by definition). A job of a reusable-only workflow (`on: workflow_call` alone) gets its
 * caller's permissions, which this file cannot see; a job that calls a reusable workflow hands its
 * own down. A multi-job workflow with no top-level block, whose jobs are not all explicit, is also a
 * workload (`workflow`) falling back on the default: its top level is one place to fix. `read-all`/`write-all` are `github:*:read|write`; `id-token: write` is
 * `github:id_token:write`.
 */
import { type Document, isMap, isPair, isScalar, LineCounter, parseDocument } from "yaml";
import { problem } from "../../input.js";
import type {
  GraphEdge,
  GraphNode,
  Importer,
  ImportResult,
  InputFile,
  InputProblem,
  PermissionGrant,
  SourceRef,
} from "../../model.js";
import { EMPTY_FRAGMENT } from "../../model.js";
import { GITHUB_PERMISSION_NAMES } from "./needs.js";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export const REPOSITORY_DEFAULT = "github:default:repository";

function triggers(on: unknown): string[] {
  if (typeof on === "string") return [on];
  if (Array.isArray(on)) return on.filter((x): x is string => typeof x === "string");
  if (isObject(on)) return Object.keys(on);
  return [];
}

/** The line of a YAML node at `path`, or of its key when the value has no range. */
function lineAt(
  doc: Document,
  lc: LineCounter,
  path: readonly (string | number)[],
  key = false,
): number | undefined {
  if (key && path.length > 0) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find(
        (p) => isPair(p) && isScalar(p.key) && p.key.value === path[path.length - 1],
      );
      const k = pair && isScalar(pair.key) ? pair.key : undefined;
      if (k?.range) return lc.linePos(k.range[0]).line;
    }
  }
  const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return node?.range ? lc.linePos(node.range[0]).line : undefined;
}

/** A job's steps as the plugin reads them: what each uses or runs, and its line. */
function stepRecords(doc: Document, lc: LineCounter, name: string, job: Obj) {
  const steps = Array.isArray(job.steps) ? job.steps.filter(isObject) : [];
  return steps.map((s, i) => ({
    uses: s.uses,
    run: s.run,
    with: s.with,
    line: lineAt(doc, lc, ["jobs", name, "steps", i]),
  }));
}

/** A `permissions:` value → grants, each with the line it is written on. */
export function permissionGrants(
  value: unknown,
  at: (key?: string) => SourceRef,
  problems: InputProblem[],
): PermissionGrant[] {
  const base = at();
  if (value === "read-all")
    return [
      {
        kind: "permission",
        action: "github:*:read",
        resource: "*",
        text: "permissions: read-all",
        source: base,
      },
    ];
  if (value === "write-all")
    return [
      {
        kind: "permission",
        action: "github:*:read",
        resource: "*",
        text: "permissions: write-all",
        source: base,
      },
      {
        kind: "permission",
        action: "github:*:write",
        resource: "*",
        text: "permissions: write-all",
        source: base,
      },
    ];
  if (value === null || value === undefined) return [];
  if (!isObject(value)) {
    problems.push(
      problem("ERR_GHA_PERMISSIONS", base, `\`permissions\` must be read-all, write-all or a map; skipped`),
    );
    return [];
  }
  const out: PermissionGrant[] = [];
  for (const [scope, level] of Object.entries(value)) {
    const src = at(scope);
    if (level === "none") continue;
    if (level !== "read" && level !== "write") {
      problems.push(
        problem(
          "ERR_GHA_PERMISSIONS",
          src,
          `\`${scope}: ${String(level)}\`: the level must be read, write or none`,
        ),
      );
      continue;
    }
    const name = scope.replace(/-/g, "_");
    const known = GITHUB_PERMISSION_NAMES.has(name);
    // An unknown scope cannot be expressed in the vocabulary; it is kept under `unknown_<name>` so the
    // report shows it (and GitHub rejects it at run time).
    const service = known ? name : `unknown_${name.replace(/[^a-z_]/gi, "_")}`;
    if (!known)
      problems.push(
        problem("WARN_GHA_UNKNOWN_SCOPE", src, `\`${scope}\` is not a GitHub token permission`, "warning"),
      );
    out.push({
      kind: "permission",
      action: `github:${service}:read`,
      resource: "*",
      text: `${scope}: ${level}`,
      source: src,
    });
    if (level === "write")
      out.push({
        kind: "permission",
        action: `github:${service}:write`,
        resource: "*",
        text: `${scope}: ${level}`,
        source: src,
      });
  }
  return out;
}

/** One parsed workflow file, and the nodes, edges and problems its steps add. */
interface Reading {
  readonly file: string;
  readonly doc: Document;
  readonly lc: LineCounter;
  readonly wf: Obj & { jobs: Obj };
  /** `on: workflow_call` alone: the caller's permissions apply. */
  readonly reusableOnly: boolean;
  /** The line of the file's first key. */
  readonly firstLine: number;
  readonly jobs: [string, unknown][];
  readonly topId: string;
  readonly hasTop: boolean;
  /** Jobs that set no `permissions:` of their own. */
  readonly inheritors: [string, unknown][];
  readonly nodes: GraphNode[];
  readonly edges: GraphEdge[];
  readonly problems: InputProblem[];
}

/** The workflow document, or the problem that stops it being read. */
function readWorkflow(file: string, text: string): Reading | InputProblem {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    return problem(
      "ERR_INPUT_YAML",
      { file, line: pos.line, column: pos.col },
      `broken YAML: ${e.message.split("\n")[0]}`,
    );
  }
  const wf = doc.toJS() as unknown;
  if (!isObject(wf) || !isObject(wf.jobs))
    return problem("ERR_GHA_SHAPE", { file, line: 1 }, "not a workflow: no `jobs` map");
  const on = wf.on ?? wf.true; // YAML 1.1 readers turn a bare `on` into true
  const first = isMap(doc.contents) ? doc.contents.items[0] : undefined;
  const jobs = Object.entries(wf.jobs);
  return {
    file,
    doc,
    lc,
    wf: wf as Obj & { jobs: Obj },
    reusableOnly: triggers(on).length === 1 && triggers(on)[0] === "workflow_call",
    firstLine: first && isScalar(first.key) && first.key.range ? lc.linePos(first.key.range[0]).line : 1,
    jobs,
    topId: `github:permissions:${file}`,
    hasTop: Object.hasOwn(wf, "permissions"),
    inheritors: jobs.filter(([, j]) => isObject(j) && !Object.hasOwn(j, "permissions")),
    nodes: [],
    edges: [],
    problems: [],
  };
}

/** `from` gets the repository default: read-only or read-write by a setting this file cannot see. */
function fallBack(r: Reading, from: string, note: string, line: number | undefined): void {
  const to = `${REPOSITORY_DEFAULT}:${r.file}`;
  r.nodes.push({
    kind: "node",
    id: to,
    provider: "github",
    type: "default",
    subtype: "repository default",
    name: "repository default token permissions",
    shared: true,
    grants: [
      {
        kind: "permission",
        action: "github:*:read|write",
        resource: "*",
        text: "default GITHUB_TOKEN permissions (repository or organisation setting)",
        source: { file: r.file, line: r.firstLine },
      },
    ],
  });
  r.edges.push({ kind: "edge", from, to, type: "falls-back-to", note, source: { file: r.file, line } });
}

/** Where a `permissions:` block (at `path`) and its keys are written. */
function blockAt(r: Reading, path: readonly (string | number)[]): (key?: string) => SourceRef {
  return (key) => ({ file: r.file, line: lineAt(r.doc, r.lc, key ? [...path, key] : path, true) });
}

/** The workflow's top-level `permissions:` block, shared when several jobs fall back on it. */
function readTopBlock(r: Reading): void {
  if (!r.hasTop) return;
  const at = blockAt(r, ["permissions"]);
  r.nodes.push({
    kind: "node",
    id: r.topId,
    provider: "github",
    type: "binding",
    subtype: "workflow permissions",
    name: `${r.file} permissions`,
    grants: permissionGrants(r.wf.permissions, at, r.problems),
    // A block that several jobs fall back on was provisioned for none of them in particular.
    shared: r.jobs.length > 1 && r.inheritors.length > 0 ? true : undefined,
    source: at(),
  });
}

/** One job: its workload, its token, and the block its token is bound by (its own, the workflow's, or the default). */
function readJob(r: Reading, name: string, job: unknown): void {
  if (!isObject(job)) {
    r.problems.push(
      problem(
        "ERR_GHA_SHAPE",
        { file: r.file, line: lineAt(r.doc, r.lc, ["jobs", name], true) },
        `job \`${name}\` is not a map; skipped`,
      ),
    );
    return;
  }
  const jobLine = lineAt(r.doc, r.lc, ["jobs", name], true);
  const id = `github:job:${r.file}#${name}`;
  const token = `github:token:${r.file}#${name}`;
  const calls = typeof job.uses === "string" ? job.uses : undefined;
  r.nodes.push({
    kind: "node",
    id,
    provider: "github",
    type: "workload",
    subtype: "job",
    name,
    namespace: r.file,
    attrs: {
      steps: JSON.stringify(stepRecords(r.doc, r.lc, name, job)),
      ...(calls ? { calls } : {}),
      ...(r.reusableOnly ? { reusableOnly: true } : {}),
    },
    source: { file: r.file, line: jobLine },
  });
  r.nodes.push({
    kind: "node",
    id: token,
    provider: "github",
    type: "identity",
    subtype: "GITHUB_TOKEN",
    name: `${name} token`,
    namespace: r.file,
  });
  r.edges.push({
    kind: "edge",
    from: id,
    to: token,
    type: "runs-as",
    note: "the job's GITHUB_TOKEN",
    source: { file: r.file, line: jobLine },
  });
  if (Object.hasOwn(job, "permissions")) {
    const bid = `github:permissions:${r.file}#${name}`;
    const at = blockAt(r, ["jobs", name, "permissions"]);
    r.nodes.push({
      kind: "node",
      id: bid,
      provider: "github",
      type: "binding",
      subtype: "job permissions",
      name: `${name} permissions`,
      grants: permissionGrants(job.permissions, at, r.problems),
      source: at(),
    });
    r.edges.push({
      kind: "edge",
      from: token,
      to: bid,
      type: "bound-by",
      note: `jobs.${name}.permissions`,
      source: at(),
    });
  } else if (r.hasTop) {
    r.edges.push({
      kind: "edge",
      from: token,
      to: r.topId,
      type: "bound-by",
      note: `jobs.${name} sets no permissions: the workflow's apply`,
      source: { file: r.file, line: jobLine },
    });
  } else if (r.reusableOnly && !calls) {
    // The caller's permissions apply; nothing here to judge.
  } else {
    fallBack(
      r,
      id,
      `neither jobs.${name} nor the workflow sets permissions: the repository default applies`,
      jobLine,
    );
  }
}

/**
 * With no top-level block, several jobs and at least one of them setting none, the default is also
 * the workflow's own: its top level is where one block would cover every such job. That place is a
 * workload of its own (`workflow`), whose steps are those of the jobs it covers. One job: the job is
 * the place; every job explicit: the default reaches no job; reusable-only: the caller decides.
 */
function readWorkflowDefault(r: Reading): void {
  const defaulted = r.inheritors.map(([name]) => name);
  if (r.hasTop || r.reusableOnly || r.jobs.length <= 1 || defaulted.length === 0) return;
  const id = `github:workflow:${r.file}`;
  const steps = r.inheritors.flatMap(([name, job]) => stepRecords(r.doc, r.lc, name, job as Obj));
  r.nodes.push({
    kind: "node",
    id,
    provider: "github",
    type: "workload",
    subtype: "workflow",
    name: typeof r.wf.name === "string" && r.wf.name !== "" ? r.wf.name : r.file,
    namespace: r.file,
    attrs: { steps: JSON.stringify(steps), jobs: defaulted.join(",") },
    source: { file: r.file, line: r.firstLine },
  });
  fallBack(
    r,
    id,
    `the workflow sets no top-level permissions: the repository default applies to ${defaulted.map((n) => `jobs.${n}`).join(", ")}`,
    r.firstLine,
  );
}

export const githubWorkflowImporter: Importer = {
  name: "github-workflows",
  detect(file: InputFile): boolean {
    return (
      /\.ya?ml$/i.test(file.path) &&
      /^jobs\s*:/m.test(file.head) &&
      /^("on"|'on'|on|true)\s*:/m.test(file.head)
    );
  },
  /** In order: the document, the top-level block, each job, the workflow's own fall-back. */
  async import(file: InputFile): Promise<ImportResult> {
    const r = readWorkflow(file.path, await file.text());
    if ("code" in r) return { fragment: EMPTY_FRAGMENT, problems: [r] };
    readTopBlock(r);
    for (const [name, job] of r.jobs) readJob(r, name, job);
    readWorkflowDefault(r);
    return { fragment: { ...EMPTY_FRAGMENT, nodes: r.nodes, edges: r.edges }, problems: r.problems };
  },
};
