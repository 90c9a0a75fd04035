/**
 * An agent's `workloads`, `serviceAccounts`, `cloudIdentities`, `untrustedInputs`,
 * `provisionedBindings` and the permissions its tools need (`tools` entries written as maps): what
 * ties the agent to what runs in a cluster or a cloud, for `writ scan` without annotations on
 * anyone's objects. Checked like every other section: every problem with its path and a code.
 */
import {
  type AgentBinding,
  type AgentRuns,
  type AgentWorkload,
  globMatches,
  isWritError,
  type Path,
  parseGlob,
  type Rule,
  type ToolNeeds,
  type UntrustedInput,
} from "../core/index.js";
import type { ConfigErrorCode } from "./codes.js";
import type { Checker } from "./load.js";
import { SHAPES } from "./schema.js";

type Json = unknown;
type Obj = Record<string, Json>;

/** Kubernetes kinds an agent's workload can be (what the analyzer's graph has as workloads). */
export const WORKLOAD_KINDS = [
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "CronJob",
  "Job",
  "Pod",
  "ReplicaSet",
];
const K8S_NAME = /^[a-z0-9*?[\]{},.-]{1,253}$/;
const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const GCP_SA = /^[a-z0-9][a-z0-9-]{1,62}@[a-z0-9][a-z0-9.-]*\.gserviceaccount\.com$/;
const q = (s: unknown) => `\`${String(s)}\``;

function glob(c: Checker, s: string, path: Path): boolean {
  try {
    parseGlob(s);
    return true;
  } catch (e) {
    if (!isWritError(e)) throw e;
    c.error("ERR_CONFIG_PATTERN", path, e.message);
    return false;
  }
}

const K8S_EXACT = /^[a-z0-9.-]{1,253}$/;
function k8sName(
  c: Checker,
  v: Json,
  path: Path,
  code: ConfigErrorCode,
  what: string,
  exact = false,
): string | undefined {
  const s = c.string(v, path);
  if (s === undefined) return undefined;
  if (exact && !K8S_EXACT.test(s)) {
    c.error(
      code,
      path,
      `${what} ${q(s)} is not a Kubernetes name (lower-case letters, digits, \`-\`, \`.\`; no globs)`,
    );
    return undefined;
  }
  if (!K8S_NAME.test(s)) {
    c.error(
      code,
      path,
      `${what} ${q(s)} is not a Kubernetes name (lower-case letters, digits, \`-\`, \`.\`; globs allowed)`,
    );
    return undefined;
  }
  return glob(c, s, path) ? s : undefined;
}

function parseWorkloads(c: Checker, v: Json, path: Path): AgentWorkload[] {
  const out: AgentWorkload[] = [];
  const seen = new Set<string>();
  (c.list(v, path) ?? []).forEach((item, i) => {
    const p = [...path, i];
    const obj = c.map(item, p, "a map with `kind`, `namespace` and `name`");
    if (!obj) return;
    c.shape(obj, p, SHAPES.workload);
    const kind = obj.kind === undefined ? undefined : c.string(obj.kind, [...p, "kind"]);
    let kindOk = kind !== undefined && glob(c, kind, [...p, "kind"]);
    if (kind !== undefined && kindOk) {
      const g = parseGlob(kind);
      if (!WORKLOAD_KINDS.some((k) => globMatches(g, k))) {
        c.error(
          "ERR_CONFIG_WORKLOAD",
          [...p, "kind"],
          `kind ${q(kind)} matches no workload kind (${WORKLOAD_KINDS.map(q).join(", ")})`,
        );
        kindOk = false;
      }
    }
    const ns =
      obj.namespace === undefined
        ? undefined
        : k8sName(c, obj.namespace, [...p, "namespace"], "ERR_CONFIG_WORKLOAD", "namespace");
    const name =
      obj.name === undefined
        ? undefined
        : k8sName(c, obj.name, [...p, "name"], "ERR_CONFIG_WORKLOAD", "name");
    if (!kindOk || kind === undefined || ns === undefined || name === undefined) return;
    const key = `${kind}/${ns}/${name}`;
    if (seen.has(key)) c.error("ERR_CONFIG_DUPLICATE", p, `${q(key)} is listed twice`);
    seen.add(key);
    out.push({ kind, namespace: ns, name });
  });
  return out;
}

function parseServiceAccounts(c: Checker, v: Json, path: Path): AgentRuns["serviceAccounts"] {
  const out: { namespace: string; name: string }[] = [];
  c.strings(v, path).forEach((s, i) => {
    const p = [...path, i];
    const parts = s.split("/");
    if (parts.length !== 2 || !K8S_NAME.test(parts[0]!) || !K8S_NAME.test(parts[1]!)) {
      c.error("ERR_CONFIG_SERVICE_ACCOUNT", p, `service account ${q(s)}: expected \`namespace/name\``);
      return;
    }
    if (glob(c, parts[0]!, p) && glob(c, parts[1]!, p)) out.push({ namespace: parts[0]!, name: parts[1]! });
  });
  return out;
}

function parseCloudIdentities(c: Checker, v: Json, path: Path): string[] {
  return c.strings(v, path).filter((s, i) => {
    if (ROLE_ARN.test(s) || GCP_SA.test(s)) return true;
    c.error(
      "ERR_CONFIG_CLOUD_IDENTITY",
      [...path, i],
      `cloud identity ${q(s)}: expected an IAM role ARN (\`arn:aws:iam::123456789012:role/name\`) or a GCP service-account e-mail (\`name@project.iam.gserviceaccount.com\`)`,
    );
    return false;
  });
}

function toolPattern(c: Checker, t: string, path: Path): boolean {
  const parts = t.split(":");
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    c.error(
      "ERR_CONFIG_PATTERN",
      path,
      `tool ${q(t)}: expected \`server:tool\` (wildcards allowed: \`filesystem:read_*\`)`,
    );
    return false;
  }
  return glob(c, parts[0], path) && glob(c, parts[1], path);
}

function parseUntrusted(c: Checker, v: Json, path: Path): UntrustedInput[] {
  const out: UntrustedInput[] = [];
  (c.list(v, path) ?? []).forEach((item, i) => {
    const p = [...path, i];
    if (typeof item === "string") {
      if (c.string(item, p) !== undefined && toolPattern(c, item, p)) out.push({ kind: "tool", tool: item });
      return;
    }
    const obj = c.map(item, p, "a tool (`server:tool`) or a map with `tool` or `attribute`");
    if (!obj) return;
    c.shape(obj, p, SHAPES.untrustedInput);
    const hasTool = obj.tool !== undefined;
    const hasAttr = obj.attribute !== undefined;
    if (hasTool === hasAttr) {
      c.error("ERR_CONFIG_UNTRUSTED_INPUT", p, "give exactly one of `tool` and `attribute`");
      return;
    }
    if (hasTool) {
      if (obj.equals !== undefined || obj.matches !== undefined)
        c.error("ERR_CONFIG_UNTRUSTED_INPUT", p, "`equals` and `matches` go with `attribute`, not `tool`");
      const t = c.string(obj.tool, [...p, "tool"]);
      if (t !== undefined && toolPattern(c, t, [...p, "tool"])) out.push({ kind: "tool", tool: t });
      return;
    }
    const key = c.string(obj.attribute, [...p, "attribute"]);
    if (obj.equals !== undefined && obj.matches !== undefined) {
      c.error("ERR_CONFIG_UNTRUSTED_INPUT", p, "give at most one of `equals` and `matches`");
      return;
    }
    let equals: string | number | boolean | undefined;
    if (obj.equals !== undefined) {
      if (!["string", "number", "boolean"].includes(typeof obj.equals)) {
        c.error(
          "ERR_CONFIG_TYPE",
          [...p, "equals"],
          `expected a string, number or boolean, got ${c.typeName(obj.equals)}`,
        );
        return;
      }
      equals = obj.equals as string | number | boolean;
    }
    let matches: string | undefined;
    if (obj.matches !== undefined) {
      matches = c.string(obj.matches, [...p, "matches"]);
      if (matches === undefined || !glob(c, matches, [...p, "matches"])) return;
    }
    if (key !== undefined) out.push({ kind: "attribute", key, equals, matches });
  });
  return out;
}

function parseBindings(c: Checker, v: Json, path: Path): AgentBinding[] {
  const out: AgentBinding[] = [];
  (c.list(v, path) ?? []).forEach((item, i) => {
    const p = [...path, i];
    const obj = c.map(item, p, "a map with `kind`, `name` and (for a RoleBinding) `namespace`");
    if (!obj) return;
    c.shape(obj, p, SHAPES.binding);
    const kind = obj.kind === undefined ? undefined : c.string(obj.kind, [...p, "kind"]);
    if (kind !== undefined && kind !== "RoleBinding" && kind !== "ClusterRoleBinding") {
      c.error(
        "ERR_CONFIG_BINDING",
        [...p, "kind"],
        `kind ${q(kind)}: expected \`RoleBinding\` or \`ClusterRoleBinding\``,
      );
      return;
    }
    if (kind === "RoleBinding" && obj.namespace === undefined) {
      c.error("ERR_CONFIG_BINDING", p, "a RoleBinding needs its `namespace`");
      return;
    }
    if (kind === "ClusterRoleBinding" && obj.namespace !== undefined) {
      c.error("ERR_CONFIG_BINDING", [...p, "namespace"], "a ClusterRoleBinding has no namespace");
      return;
    }
    const ns =
      obj.namespace === undefined
        ? undefined
        : k8sName(c, obj.namespace, [...p, "namespace"], "ERR_CONFIG_BINDING", "namespace", true);
    const name =
      obj.name === undefined
        ? undefined
        : k8sName(c, obj.name, [...p, "name"], "ERR_CONFIG_BINDING", "name", true);
    if (kind === undefined || name === undefined || (kind === "RoleBinding" && ns === undefined)) return;
    out.push({ kind, namespace: ns, name });
  });
  return out;
}

/**
 * `tools`: `server:tool` strings, or maps `{tool, permissions}` naming what the tool's calls need.
 * Returns the tool rules (as before) and the needs.
 */
export function parseTools(
  c: Checker,
  v: Json,
  path: Path,
  compile: (tool: string, path: Path) => Rule | undefined,
): { tools: Rule[]; needs: ToolNeeds[] } {
  const tools: Rule[] = [];
  const needs: ToolNeeds[] = [];
  const seen = new Set<string>();
  (c.list(v, path) ?? []).forEach((item, i) => {
    const p = [...path, i];
    let tool: string | undefined;
    let tp: Path = p;
    let obj: Obj | undefined;
    if (typeof item === "string") tool = c.string(item, p);
    else {
      obj = c.map(item, p, "a tool (`server:tool`) or a map with `tool` and `permissions`");
      if (!obj) return;
      c.shape(obj, p, SHAPES.toolNeeds);
      tp = [...p, "tool"];
      tool = obj.tool === undefined ? undefined : c.string(obj.tool, tp);
    }
    if (tool === undefined) return;
    if (seen.has(tool)) c.error("ERR_CONFIG_DUPLICATE", tp, `${q(tool)} is listed twice`);
    seen.add(tool);
    const rule = compile(tool, tp);
    if (rule) tools.push(rule);
    if (!obj || obj.permissions === undefined) return;
    const permissions: { rule: Rule; path: Path }[] = [];
    (c.list(obj.permissions, [...p, "permissions"]) ?? []).forEach((g, j) => {
      const r = c.rule(g, [...p, "permissions", j]);
      if (r) permissions.push({ rule: r.rule, path: [...p, "permissions", j] });
    });
    if (rule) needs.push({ tool, permissions });
  });
  return { tools, needs };
}

/** The agent's ties; undefined when writ.yaml sets none of them and no tool says what it needs. */
export function parseRuns(
  c: Checker,
  obj: Obj,
  path: Path,
  needs: readonly ToolNeeds[],
): AgentRuns | undefined {
  const keys = ["workloads", "serviceAccounts", "cloudIdentities", "untrustedInputs", "provisionedBindings"];
  if (needs.length === 0 && keys.every((k) => obj[k] === undefined)) return undefined;
  return {
    workloads: obj.workloads === undefined ? [] : parseWorkloads(c, obj.workloads, [...path, "workloads"]),
    serviceAccounts:
      obj.serviceAccounts === undefined
        ? []
        : parseServiceAccounts(c, obj.serviceAccounts, [...path, "serviceAccounts"]),
    cloudIdentities:
      obj.cloudIdentities === undefined
        ? []
        : parseCloudIdentities(c, obj.cloudIdentities, [...path, "cloudIdentities"]),
    untrustedInputs:
      obj.untrustedInputs === undefined
        ? undefined
        : parseUntrusted(c, obj.untrustedInputs, [...path, "untrustedInputs"]),
    toolNeeds: needs,
    provisionedBindings:
      obj.provisionedBindings === undefined
        ? undefined
        : parseBindings(c, obj.provisionedBindings, [...path, "provisionedBindings"]),
  };
}
