/**
 * Kubernetes audit logs (`audit.k8s.io/v1` Events): JSON lines streamed line by line, a JSON array,
 * or a CloudWatch Logs export (`{events: [{message: "<event JSON>"}]}`, as EKS writes). A line that
 * is not JSON, or not an audit event, is a problem with its line number; the rest is still read.
 */
import { problem } from "../../input.js";
import type {
  CredentialRef,
  Importer,
  ImportOptions,
  ImportResult,
  InputFile,
  InputProblem,
  ObservedEvent,
  Outcome,
  WritIssue,
} from "../../model.js";
import { EMPTY_FRAGMENT } from "../../model.js";
import { CLUSTER_SCOPED, groupName } from "./rbac.js";

const MAX_PROBLEMS = 50;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The identity node id of an authenticated username. */
export function principalId(username: string): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  if (sa) return `k8s:ServiceAccount:${sa[1]}/${sa[2]}`;
  const node = /^system:node:(.+)$/.exec(username);
  if (node) return `k8s:Node:${node[1]}`;
  return `k8s:User:${username}`;
}

const HTTP_VERBS: Readonly<Record<string, string>> = {
  get: "get",
  head: "get",
  post: "create",
  put: "update",
  patch: "patch",
  delete: "delete",
};

function outcomeOf(e: Record<string, unknown>): Outcome {
  const ann = isObject(e.annotations) ? e.annotations : {};
  if (ann["authorization.k8s.io/decision"] === "forbid") return "denied";
  const status = isObject(e.responseStatus) ? e.responseStatus : undefined;
  const code = typeof status?.code === "number" ? status.code : 200;
  if (code === 401 || code === 403) return "denied";
  return code >= 400 ? "error" : "allowed";
}

type Parsed = { event: ObservedEvent } | { skip: true } | { error: string };

/**
 * Names of the objects writ's Kubernetes issuer makes for a writ: `writ-<id>` made a DNS label
 * (src/downstream/kubernetes/names.ts), and writ ids begin `writ_`, so `writ-writ-…`. The broker's
 * own bindings (`writ-broker`) are not a writ's.
 */
const WRIT_OBJECT = /^writ-writ-/;
/**
 * The RBAC authorizer's reason (`authorization.k8s.io/reason`): `RBAC: allowed by RoleBinding
 * "NAME/NAMESPACE" of Role "R" to ServiceAccount "SA/NS"`, or `ClusterRoleBinding "NAME" of …`.
 */
const RBAC_REASON = /^RBAC: allowed by (RoleBinding|ClusterRoleBinding) "([^"/]+)(?:\/([^"]+))?" of /;

/** The binding that authorised the request, when it is one of writ's (`writ-…`). */
function writBindingOf(ann: Record<string, unknown>): CredentialRef | undefined {
  const reason = ann["authorization.k8s.io/reason"];
  if (typeof reason !== "string") return undefined;
  const m = RBAC_REASON.exec(reason);
  if (!m || !WRIT_OBJECT.test(m[2]!)) return undefined;
  if (m[1] === "RoleBinding")
    return m[3] ? { kind: "k8s-binding", key: `k8s:RoleBinding:${m[3]}/${m[2]}` } : undefined;
  return { kind: "k8s-binding", key: `k8s:ClusterRoleBinding:${m[2]}` };
}

/**
 * A writ binding being created, when the audit level records the object (Request or
 * RequestResponse): writ's issuer annotates it `writ.dev/writ-id`, `writ.dev/agent-id`,
 * `writ.dev/playbook` (and `writ.dev/sponsor` when it sets one).
 */
function writIssueOf(raw: Record<string, unknown>, verb: string): WritIssue | undefined {
  const status = isObject(raw.responseStatus) ? raw.responseStatus : undefined;
  const code = typeof status?.code === "number" ? status.code : 200;
  const ref = isObject(raw.objectRef) ? raw.objectRef : undefined;
  if (verb !== "create" || code >= 300 || !ref || ref.apiGroup !== "rbac.authorization.k8s.io")
    return undefined;
  const kind =
    ref.resource === "rolebindings"
      ? "RoleBinding"
      : ref.resource === "clusterrolebindings"
        ? "ClusterRoleBinding"
        : undefined;
  if (!kind) return undefined;
  const obj = isObject(raw.responseObject)
    ? raw.responseObject
    : isObject(raw.requestObject)
      ? raw.requestObject
      : undefined;
  const meta = obj && isObject(obj.metadata) ? obj.metadata : undefined;
  const ann = meta && isObject(meta.annotations) ? meta.annotations : undefined;
  const name =
    typeof ref.name === "string" && ref.name
      ? ref.name
      : typeof meta?.name === "string"
        ? meta.name
        : undefined;
  const ns = typeof ref.namespace === "string" && ref.namespace ? ref.namespace : undefined;
  return writBindingIssue(
    kind,
    ns,
    name,
    ann,
    `created${typeof raw.auditID === "string" ? ` in ${raw.auditID}` : ""}`,
  );
}

/**
 * The writ issuance a writ binding (`writ-writ-…`) records in its annotations: `writ.dev/writ-id`,
 * `writ.dev/agent-id`, `writ.dev/playbook`, and `writ.dev/sponsor` and `writ.dev/expires-at` when
 * set; undefined when it is not one. `seen` says where the binding was read, for the evidence.
 */
export function writBindingIssue(
  kind: "RoleBinding" | "ClusterRoleBinding",
  ns: string | undefined,
  name: string | undefined,
  ann: Record<string, unknown> | undefined,
  seen: string,
): WritIssue | undefined {
  if (!ann || !name || !WRIT_OBJECT.test(name)) return undefined;
  const writ = ann["writ.dev/writ-id"];
  const agent = ann["writ.dev/agent-id"];
  const playbook = ann["writ.dev/playbook"];
  const sponsor = ann["writ.dev/sponsor"];
  const expires =
    typeof ann["writ.dev/expires-at"] === "string" ? Date.parse(ann["writ.dev/expires-at"]) : Number.NaN;
  if (typeof writ !== "string" || typeof agent !== "string" || typeof playbook !== "string") return undefined;
  if (!writ || !agent || !playbook) return undefined;
  if (kind === "RoleBinding" && !ns) return undefined;
  const key = kind === "RoleBinding" ? `k8s:RoleBinding:${ns}/${name}` : `k8s:ClusterRoleBinding:${name}`;
  return {
    writ,
    agent,
    playbook,
    ...(typeof sponsor === "string" && sponsor ? { sponsor } : {}),
    credential: { kind: "k8s-binding", key },
    ...(Number.isNaN(expires) ? {} : { expiresAt: expires }),
    how: `annotations of ${kind} ${ns ? `${ns}/` : ""}${name} (${seen})`,
  };
}

/** One audit Event object → an observed event, or why not. */
export function toEvent(raw: unknown, file: string, line: number | undefined): Parsed {
  if (
    !isObject(raw) ||
    raw.kind !== "Event" ||
    (raw.apiVersion !== undefined &&
      (typeof raw.apiVersion !== "string" || !raw.apiVersion.startsWith("audit.k8s.io/")))
  ) {
    return { error: "not an `audit.k8s.io` Event" };
  }
  if (raw.stage !== undefined && raw.stage !== "ResponseComplete" && raw.stage !== "Panic")
    return { skip: true };
  const user = isObject(raw.impersonatedUser)
    ? raw.impersonatedUser
    : isObject(raw.user)
      ? raw.user
      : undefined;
  const username = typeof user?.username === "string" ? user.username : undefined;
  const verb = typeof raw.verb === "string" ? raw.verb.toLowerCase() : undefined;
  if (!username || !verb) return { error: "event without `user.username` or `verb`" };
  const when = [raw.requestReceivedTimestamp, raw.stageTimestamp, raw.timestamp].find(
    (t) => typeof t === "string",
  );
  const at = typeof when === "string" ? Date.parse(when) : Number.NaN;
  if (Number.isNaN(at)) return { error: "event without a valid timestamp" };
  let action: string;
  let resource: string;
  const ref = isObject(raw.objectRef) ? raw.objectRef : undefined;
  if (ref && typeof ref.resource === "string") {
    const group = typeof ref.apiGroup === "string" ? groupName(ref.apiGroup) : "core";
    const sub = typeof ref.subresource === "string" && ref.subresource ? `/${ref.subresource}` : "";
    action = `k8s:${group}/${ref.resource}${sub}:${verb}`;
    const ns = typeof ref.namespace === "string" && ref.namespace ? ref.namespace : undefined;
    const name = typeof ref.name === "string" && ref.name ? ref.name : undefined;
    if (ns) resource = `${ns}/${name ?? "*"}`;
    else if (CLUSTER_SCOPED.has(ref.resource)) resource = name ?? "*";
    else resource = name ? `*/${name}` : "*";
  } else if (typeof raw.requestURI === "string") {
    action = `k8s:nonresource/urls:${HTTP_VERBS[verb] ?? verb}`;
    resource = raw.requestURI.split("?")[0]!;
  } else {
    return { error: "event without `objectRef` or `requestURI`" };
  }
  const ann = isObject(raw.annotations) ? raw.annotations : undefined;
  const via = ann ? writBindingOf(ann) : undefined;
  const issues = verb === "create" ? writIssueOf(raw, verb) : undefined;
  const extra = isObject(user?.extra) ? user.extra : {};
  const podName = extra["authentication.kubernetes.io/pod-name"];
  const saMatch = /^system:serviceaccount:([^:]+):/.exec(username);
  const pod =
    Array.isArray(podName) && typeof podName[0] === "string" && saMatch
      ? `k8s:Pod:${saMatch[1]}/${podName[0]}`
      : undefined;
  return {
    event: {
      kind: "event",
      provider: "k8s",
      at,
      principal: principalId(username),
      pod,
      action,
      resource,
      outcome: outcomeOf(raw),
      requestId: typeof raw.auditID === "string" ? raw.auditID : undefined,
      userAgent: typeof raw.userAgent === "string" ? raw.userAgent : undefined,
      via,
      issues,
      source: { file, line },
    },
  };
}

export const k8sAuditImporter: Importer = {
  name: "k8s-audit",
  phase: "activity",
  detect(file: InputFile): boolean {
    if (/"audit\.k8s\.io\/v1(beta1)?"/.test(file.head) || /\\"audit\.k8s\.io\/v1/.test(file.head))
      return true;
    // Older exports (falco's traces) carry no apiVersion: an Event with a verb and an audit id.
    return (
      /"kind"\s*:\s*"Event"/.test(file.head) &&
      /"auditID"\s*:/.test(file.head) &&
      /"verb"\s*:/.test(file.head)
    );
  },
  async import(file: InputFile, opts: ImportOptions = {}): Promise<ImportResult> {
    const problems: InputProblem[] = [];
    const events: ObservedEvent[] = [];
    let dropped = 0;
    const report = (p: InputProblem) => {
      if (problems.length < MAX_PROBLEMS) problems.push(p);
      else dropped++;
    };
    const emit = (parsed: Parsed, line: number | undefined) => {
      if ("skip" in parsed) return;
      if ("error" in parsed) {
        report(
          problem(
            "WARN_INPUT_NOT_AUDIT_EVENT",
            { file: file.path, line },
            `${parsed.error}; skipped`,
            "warning",
          ),
        );
        return;
      }
      const e = parsed.event;
      // A writ binding made before the window still names the writ of the requests inside it.
      if (opts.window && !e.issues && (e.at < opts.window.start || e.at >= opts.window.end)) return;
      if (opts.onEvent) opts.onEvent(e);
      else events.push(e);
    };
    const first = file.head.trimStart()[0];
    if (first === "[" || (first === "{" && /^\s*\{\s*"events"\s*:/.test(file.head))) {
      // A whole JSON document: an array of events, or a CloudWatch export.
      let doc: unknown;
      try {
        doc = JSON.parse(await file.text());
      } catch (err) {
        report(
          problem(
            "ERR_INPUT_JSON",
            { file: file.path },
            `not valid JSON: ${err instanceof Error ? err.message : err}`,
          ),
        );
        return { fragment: EMPTY_FRAGMENT, problems };
      }
      const items = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.events) ? doc.events : [];
      items.forEach((item: unknown, i: number) => {
        let raw = item;
        if (isObject(item) && typeof item.message === "string") {
          try {
            raw = JSON.parse(item.message);
          } catch {
            report(
              problem("ERR_INPUT_JSON", { file: file.path }, `events[${i}].message: not valid JSON; skipped`),
            );
            return;
          }
        }
        emit(toEvent(raw, file.path, undefined), undefined);
      });
    } else {
      let n = 0;
      for await (const text of file.lines()) {
        n++;
        if (text.trim() === "") continue;
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch {
          report(
            problem(
              "ERR_INPUT_JSON_LINE",
              { file: file.path, line: n },
              `line is not valid JSON (truncated?); skipped`,
            ),
          );
          continue;
        }
        emit(toEvent(raw, file.path, n), n);
      }
    }
    if (dropped > 0) {
      problems.push(
        problem(
          "WARN_INPUT_MORE_PROBLEMS",
          { file: file.path },
          `${dropped} more problem(s) not shown`,
          "warning",
        ),
      );
    }
    return { fragment: { ...EMPTY_FRAGMENT, events }, problems };
  },
};
