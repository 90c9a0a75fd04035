/**
 * Kubernetes objects from manifests and `kubectl get -o yaml|json` dumps (including `kind: List`),
 * and kubesplaining-style cluster snapshots (`{metadata, resources: {cluster_roles, …}}`). Every
 * document is read on its own: a broken one is a problem with its line, the others still count.
 */
import { type Document, isMap, isSeq, LineCounter, parseAllDocuments } from "yaml";
import { problem } from "../../input.js";
import type { Importer, ImportResult, InputFile, InputProblem, ProviderObject } from "../../model.js";
import { EMPTY_FRAGMENT } from "../../model.js";

/** The kinds the linker reads. */
export const K8S_KINDS = new Set([
  "Role",
  "ClusterRole",
  "RoleBinding",
  "ClusterRoleBinding",
  "ServiceAccount",
  "Pod",
  "ReplicaSet",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
  "Node",
  "Namespace",
  "Service",
  "Secret",
]);

/** Kinds that carry no identity or permission: read past without a warning. */
const PASSIVE_KINDS = new Set([
  "ConfigMap",
  "NetworkPolicy",
  "Ingress",
  "Endpoints",
  "EndpointSlice",
  "PersistentVolumeClaim",
  "PersistentVolume",
  "StorageClass",
  "HorizontalPodAutoscaler",
  "PodDisruptionBudget",
  "LimitRange",
  "ResourceQuota",
  "PriorityClass",
  "CustomResourceDefinition",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "CertificateSigningRequest",
  "Event",
]);

const SNAPSHOT_KEYS: Readonly<Record<string, string>> = {
  cluster_roles: "ClusterRole",
  cluster_role_bindings: "ClusterRoleBinding",
  roles: "Role",
  role_bindings: "RoleBinding",
  service_accounts: "ServiceAccount",
  pods: "Pod",
  deployments: "Deployment",
  replica_sets: "ReplicaSet",
  replicasets: "ReplicaSet",
  stateful_sets: "StatefulSet",
  statefulsets: "StatefulSet",
  daemon_sets: "DaemonSet",
  daemonsets: "DaemonSet",
  jobs: "Job",
  cron_jobs: "CronJob",
  cronjobs: "CronJob",
  nodes: "Node",
  namespaces: "Namespace",
  services: "Service",
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isWorkflow(head: string): boolean {
  return /^jobs\s*:/m.test(head) && /^(on|"on"|'on')\s*:/m.test(head);
}

export const k8sManifestImporter: Importer = {
  name: "k8s-manifests",
  detect(file: InputFile): boolean {
    if (/\.ya?ml$/i.test(file.path)) return /^\s*kind\s*:/m.test(file.head) && !isWorkflow(file.head);
    if (/\.json$/i.test(file.path)) {
      if (file.head.includes("audit.k8s.io")) return false;
      return (
        /"kind"\s*:\s*"(List|Role|ClusterRole|RoleBinding|ClusterRoleBinding|ServiceAccount|Pod|Deployment|[A-Za-z]+List)"/.test(
          file.head,
        ) || /"resources"\s*:\s*\{/.test(file.head)
      );
    }
    return false;
  },
  async import(file: InputFile): Promise<ImportResult> {
    const text = await file.text();
    const problems: InputProblem[] = [];
    const objects: ProviderObject[] = [];
    if (/\.json$/i.test(file.path)) readJson(file.path, text, objects, problems);
    else readYaml(file.path, text, objects, problems);
    return { fragment: { ...EMPTY_FRAGMENT, objects }, problems };
  },
};

function readJson(path: string, text: string, objects: ProviderObject[], problems: InputProblem[]): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    problems.push(
      problem("ERR_INPUT_JSON", { file: path, line: jsonErrorLine(text, err) }, jsonMessage(err)),
    );
    return;
  }
  if (isObject(doc) && isObject(doc.resources) && doc.kind === undefined) {
    for (const [key, kind] of Object.entries(SNAPSHOT_KEYS)) {
      const list = doc.resources[key];
      if (!Array.isArray(list)) continue;
      for (const [i, item] of list.entries())
        accept({ ...(item as object), kind }, { file: path }, `resources.${key}[${i}]`, objects, problems);
    }
    return;
  }
  accept(doc, { file: path, line: 1 }, "", objects, problems);
}

function jsonMessage(err: unknown): string {
  return `not valid JSON: ${err instanceof Error ? err.message.replace(/^[A-Z]/, (c) => c.toLowerCase()) : String(err)}`;
}

function jsonErrorLine(text: string, err: unknown): number | undefined {
  const m = err instanceof Error ? /position (\d+)/.exec(err.message) : null;
  if (!m) return undefined;
  const pos = Number(m[1]);
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function readYaml(path: string, text: string, objects: ProviderObject[], problems: InputProblem[]): void {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const start = doc.range?.[0] ?? 0;
    const line = lc.linePos(doc.contents?.range?.[0] ?? start).line;
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const at = lc.linePos(e.pos[0]);
      problems.push(
        problem(
          "ERR_INPUT_YAML",
          { file: path, line: at.line, column: at.col },
          `broken YAML document: ${e.message.split("\n")[0]}; the document is skipped`,
        ),
      );
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    accept(value, { file: path, line }, "", objects, problems, (sub) => linesOf(doc, lc, sub));
  }
}

/** Lines of the interesting parts of a document: rules, subjects, pod specs. */
function linesOf(
  doc: Document,
  lc: LineCounter,
  prefix: readonly (string | number)[],
): Record<string, number> {
  const out: Record<string, number> = {};
  const at = (path: readonly (string | number)[], key: string) => {
    const node = doc.getIn([...prefix, ...path], true) as { range?: [number, number, number] } | undefined;
    if (node?.range) out[key] = lc.linePos(node.range[0]).line;
  };
  for (const field of ["rules", "subjects"]) {
    const seq = doc.getIn([...prefix, field], true);
    if (isSeq(seq)) for (let i = 0; i < seq.items.length; i++) at([field, i], `${field}[${i}]`);
  }
  at(["roleRef"], "roleRef");
  at(["metadata", "name"], "metadata.name");
  for (const p of [
    ["spec"],
    ["spec", "template", "spec"],
    ["spec", "jobTemplate", "spec", "template", "spec"],
  ]) {
    const spec = doc.getIn([...prefix, ...p], true);
    if (!isMap(spec)) continue;
    at([...p, "serviceAccountName"], `${p.join(".")}.serviceAccountName`);
    at(p, p.join("."));
    const containers = doc.getIn([...prefix, ...p, "containers"], true);
    if (isSeq(containers))
      for (let i = 0; i < containers.items.length; i++)
        at([...p, "containers", i], `${p.join(".")}.containers[${i}]`);
  }
  return out;
}

function accept(
  value: unknown,
  source: { file: string; line?: number },
  where: string,
  objects: ProviderObject[],
  problems: InputProblem[],
  lines?: (prefix: readonly (string | number)[]) => Record<string, number>,
  prefix: readonly (string | number)[] = [],
): void {
  const at = where ? `${where}: ` : "";
  if (!isObject(value)) {
    problems.push(
      problem("ERR_INPUT_SHAPE", source, `${at}expected a Kubernetes object, got ${typeof value}`),
    );
    return;
  }
  const kind = value.kind;
  if (typeof kind !== "string") {
    problems.push(problem("ERR_INPUT_SHAPE", source, `${at}object has no \`kind\`; skipped`));
    return;
  }
  if (kind === "List" || (kind.endsWith("List") && Array.isArray(value.items))) {
    const items = Array.isArray(value.items) ? value.items : [];
    items.forEach((item, i) => {
      const itemKind =
        isObject(item) && typeof item.kind === "string"
          ? item
          : { ...(item as object), kind: kind.slice(0, -4) };
      const l = lines?.([...prefix, "items", i]);
      const line = l?.["metadata.name"] ? l["metadata.name"] - 1 : source.line;
      accept(itemKind, { file: source.file, line }, `${where}items[${i}]`, objects, problems, lines, [
        ...prefix,
        "items",
        i,
      ]);
    });
    return;
  }
  if (!K8S_KINDS.has(kind)) {
    if (!PASSIVE_KINDS.has(kind)) {
      problems.push(
        problem("WARN_INPUT_UNKNOWN_KIND", source, `${at}unknown kind \`${kind}\`; skipped`, "warning"),
      );
    }
    return;
  }
  const meta = isObject(value.metadata) ? value.metadata : undefined;
  if (!meta || typeof meta.name !== "string" || meta.name === "") {
    problems.push(problem("ERR_INPUT_SHAPE", source, `${at}${kind} without \`metadata.name\`; skipped`));
    return;
  }
  objects.push({
    kind: "object",
    provider: "k8s",
    type: kind,
    value: kind === "Secret" ? secretMetadata(value, meta) : value,
    source,
    lines: lines?.(prefix),
  });
}

/**
 * What writ keeps of a Secret: its name, namespace, type and the ServiceAccount a legacy token
 * Secret belongs to — never `data`, `stringData` or any other annotation (the last-applied
 * configuration holds the values too). Enough to know which accounts have a long-lived token.
 */
function secretMetadata(
  value: Record<string, unknown>,
  meta: Record<string, unknown>,
): Record<string, unknown> {
  const ann = isObject(meta.annotations) ? meta.annotations : {};
  const sa = ann["kubernetes.io/service-account.name"];
  return {
    kind: "Secret",
    type: typeof value.type === "string" ? value.type : undefined,
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      annotations: typeof sa === "string" ? { "kubernetes.io/service-account.name": sa } : {},
    },
  };
}
