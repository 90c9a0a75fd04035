/**
 * A fake Kubernetes API server for the downstream issuer's tests (there is no cluster here), on
 * HTTPS at 127.0.0.1:<random port> with a self-signed certificate made at start (`openssl`; the
 * client must trust `caFile`, as with a real cluster's CA), driven by the real
 * @kubernetes/client-node and kubectl.
 *
 * It follows the documented wire format and checks what the real API server checks for the calls
 * writ makes: bearer-token authentication (401 `Status`), RBAC authorisation from the Roles,
 * ClusterRoles and bindings it holds (403 `Status` in the API server's words), object validation
 * (422 `Invalid` with causes: names, labels, required fields, RBAC rule and roleRef shapes), 409
 * `AlreadyExists`, 404 `NotFound` (also for a missing namespace), delete preconditions (409 on a uid
 * mismatch), label selectors on lists, legacy discovery (`/api`, `/apis`, resource lists), and the
 * TokenRequest subresource: `expirationSeconds` ≥ 600, `boundObjectRef` to a Secret that exists
 * with that uid, tokens that stop authenticating once their bound Secret is gone or they expire,
 * and audiences checked against the server's own.
 *
 * Not reproduced (docs/downstream-kubernetes.md lists it for users): client certificates, JWT
 * tokens and their signing keys, RBAC escalation/bind checks on the broker's own requests (its token is an
 * administrator here), watches, patches and updates, aggregated discovery, server-side printing
 * beyond a two-column table, admission, finalizers and graceful deletion, pagination.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

type Obj = Record<string, unknown> & {
  metadata: Record<string, unknown> & {
    name: string;
    namespace?: string;
    uid: string;
    labels?: Record<string, string>;
  };
};

interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
  readonly shortNames?: readonly string[];
}

const RBAC = "rbac.authorization.k8s.io";
const CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const TYPES: readonly ResourceType[] = [
  {
    group: "",
    version: "v1",
    resource: "namespaces",
    kind: "Namespace",
    namespaced: false,
    verbs: CRUD,
    shortNames: ["ns"],
  },
  {
    group: "",
    version: "v1",
    resource: "pods",
    kind: "Pod",
    namespaced: true,
    verbs: CRUD,
    shortNames: ["po"],
  },
  { group: "", version: "v1", resource: "secrets", kind: "Secret", namespaced: true, verbs: CRUD },
  {
    group: "",
    version: "v1",
    resource: "configmaps",
    kind: "ConfigMap",
    namespaced: true,
    verbs: CRUD,
    shortNames: ["cm"],
  },
  {
    group: "",
    version: "v1",
    resource: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
    verbs: CRUD,
    shortNames: ["sa"],
  },
  {
    group: "",
    version: "v1",
    resource: "nodes",
    kind: "Node",
    namespaced: false,
    verbs: CRUD,
    shortNames: ["no"],
  },
  {
    group: "apps",
    version: "v1",
    resource: "deployments",
    kind: "Deployment",
    namespaced: true,
    verbs: CRUD,
    shortNames: ["deploy"],
  },
  { group: RBAC, version: "v1", resource: "roles", kind: "Role", namespaced: true, verbs: CRUD },
  {
    group: RBAC,
    version: "v1",
    resource: "rolebindings",
    kind: "RoleBinding",
    namespaced: true,
    verbs: CRUD,
  },
  {
    group: RBAC,
    version: "v1",
    resource: "clusterroles",
    kind: "ClusterRole",
    namespaced: false,
    verbs: CRUD,
  },
  {
    group: RBAC,
    version: "v1",
    resource: "clusterrolebindings",
    kind: "ClusterRoleBinding",
    namespaced: false,
    verbs: CRUD,
  },
];
const GROUPS = [...new Set(TYPES.map((t) => t.group).filter((g) => g !== ""))];
/** What the fake API server accepts as audiences of the tokens it issues (its default audience). */
export const API_AUDIENCE = "https://kubernetes.default.svc.cluster.local";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** A request's attributes, as the API server's authorizer sees them. */
export interface Attributes {
  readonly verb: string;
  readonly group: string;
  /** `pods`, or `pods/log` for a subresource. */
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

interface IssuedToken {
  readonly saNamespace: string;
  readonly saName: string;
  readonly saUid: string;
  readonly secretName: string;
  readonly secretUid: string;
  readonly expires: number;
  readonly audiences: readonly string[];
}

type User = { kind: "admin" } | { kind: "serviceaccount"; namespace: string; name: string };

export interface UseResult {
  readonly allowed: boolean;
  readonly code: 200 | 401 | 403;
  readonly message: string;
}

export interface FakeKubernetes {
  readonly url: string;
  /** The PEM file of the server's self-signed certificate: the CA a client must trust. */
  readonly caFile: string;
  /** The broker's token: every request with it is allowed (an administrator). */
  readonly adminToken: string;
  /** The authentication and authorisation a request with `token` would get, as the server decides it. */
  use(
    token: string,
    verb: string,
    group: string,
    resource: string,
    namespace: string | undefined,
    name: string | undefined,
  ): UseResult;
  /** Stored objects of one resource type (`group/resource`, core group ""), copies. */
  objects(group: string, resource: string): Obj[];
  /** Seeds an object as an administrator would (namespace, ServiceAccount, pod …). */
  seed(group: string, resource: string, body: Record<string, unknown>): Obj;
  /** Every request: method, path, and who made it (never the token). */
  readonly requests: { method: string; path: string; user: string; status: number }[];
  /** Makes the next n requests fail with 500 (to test unavailability). */
  failNext(n: number): void;
  /** Makes the next n requests hang: read, never answered (until close). */
  hangNext(n: number): void;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function status(e: ApiError): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: e.message,
    reason: e.reason,
    ...(e.details ? { details: e.details } : {}),
    code: e.code,
  };
}

function qualified(t: ResourceType): string {
  return t.group === "" ? t.resource : `${t.resource}.${t.group}`;
}

function invalid(t: ResourceType, name: string, causes: { field: string; message: string }[]): ApiError {
  const msg = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  return new ApiError(422, "Invalid", `${t.kind} "${name}" is invalid: ${msg}`, {
    name,
    group: t.group,
    kind: t.kind,
    causes: causes.map((c) => ({ reason: "FieldValueInvalid", message: c.message, field: c.field })),
  });
}

/** Parses a label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-joined (set-based forms: 400). */
function parseSelector(text: string): ((labels: Record<string, string>) => boolean) | undefined {
  if (text.trim() === "") return () => true;
  const tests: ((l: Record<string, string>) => boolean)[] = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    const ne = part.match(/^([^=!\s]+)\s*!=\s*([^=!\s]*)$/);
    const eq = part.match(/^([^=!\s]+)\s*==?\s*([^=!\s]*)$/);
    const absent = part.match(/^!([^=!\s]+)$/);
    const present = part.match(/^([^=!\s()]+)$/);
    if (ne || eq) {
      const [, k, v] = (ne ?? eq) as unknown as [string, string, string];
      if (!LABEL_VALUE.test(v)) return undefined;
      tests.push(ne ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if (absent) {
      const k = absent[1]!;
      tests.push((l) => !(k in l));
    } else if (present) {
      const k = present[1]!;
      tests.push((l) => k in l);
    } else return undefined;
  }
  return (l) => tests.every((t) => t(l));
}

function labelProblems(labels: unknown): { field: string; message: string }[] {
  if (labels === undefined) return [];
  if (!labels || typeof labels !== "object" || Array.isArray(labels)) {
    return [{ field: "metadata.labels", message: "must be a map of strings" }];
  }
  const out: { field: string; message: string }[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const [prefix, name] = k.includes("/")
      ? [k.slice(0, k.indexOf("/")), k.slice(k.indexOf("/") + 1)]
      : [undefined, k];
    if ((prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) || name.length > 63 || !LABEL_NAME.test(name)) {
      out.push({
        field: "metadata.labels",
        message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`,
      });
    }
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) {
      out.push({
        field: "metadata.labels",
        message: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`,
      });
    }
  }
  return out;
}

/** Path segment names (RBAC objects): not `.`/`..`, no `/` or `%`. */
function pathSegmentProblem(name: string): string | undefined {
  if (name === "." || name === "..") return `may not be '${name}'`;
  if (/[/%]/.test(name)) return "may not contain '/' or '%'";
  return undefined;
}

function ruleProblems(rules: unknown, namespaced: boolean): { field: string; message: string }[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) return [{ field: "rules", message: "must be a list" }];
  const out: { field: string; message: string }[] = [];
  rules.forEach((r: Record<string, unknown>, i) => {
    const f = `rules[${i}]`;
    const list = (k: string) =>
      Array.isArray(r?.[k]) ? (r[k] as unknown[]) : r?.[k] === undefined ? [] : null;
    const verbs = list("verbs");
    const groups = list("apiGroups");
    const resources = list("resources");
    const urls = list("nonResourceURLs");
    if (!verbs || !groups || !resources || !urls) {
      out.push({
        field: f,
        message: "verbs, apiGroups, resources, resourceNames and nonResourceURLs are lists of strings",
      });
      return;
    }
    if (verbs.length === 0)
      out.push({ field: `${f}.verbs`, message: "Required value: verbs must contain at least one value" });
    if (urls.length > 0) {
      if (namespaced)
        out.push({
          field: `${f}.nonResourceURLs`,
          message: "Invalid value: namespaced rules cannot apply to non-resource URLs",
        });
      if (resources.length > 0 || groups.length > 0)
        out.push({ field: f, message: "rules cannot apply to both regular resources and non-resource URLs" });
      return;
    }
    if (groups.length === 0)
      out.push({
        field: `${f}.apiGroups`,
        message: "Required value: resource rules must supply at least one api group",
      });
    if (resources.length === 0)
      out.push({
        field: `${f}.resources`,
        message: "Required value: resource rules must supply at least one resource",
      });
    for (const v of [...verbs, ...groups, ...resources]) {
      if (typeof v !== "string") out.push({ field: f, message: "entries must be strings" });
    }
  });
  return out;
}

function bindingProblems(
  body: Record<string, unknown>,
  clusterBinding: boolean,
): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  const ref = body.roleRef as Record<string, unknown> | undefined;
  if (!ref || typeof ref !== "object") return [{ field: "roleRef", message: "Required value" }];
  if (ref.apiGroup !== RBAC)
    out.push({
      field: "roleRef.apiGroup",
      message: `Unsupported value: ${JSON.stringify(ref.apiGroup)}: supported values: "${RBAC}"`,
    });
  const kinds = clusterBinding ? ["ClusterRole"] : ["Role", "ClusterRole"];
  if (typeof ref.kind !== "string" || !kinds.includes(ref.kind))
    out.push({
      field: "roleRef.kind",
      message: `Unsupported value: ${JSON.stringify(ref.kind)}: supported values: ${kinds.map((k) => `"${k}"`).join(", ")}`,
    });
  if (typeof ref.name !== "string" || ref.name === "")
    out.push({ field: "roleRef.name", message: "Required value" });
  const subjects = body.subjects;
  if (subjects !== undefined && !Array.isArray(subjects))
    return [...out, { field: "subjects", message: "must be a list" }];
  (subjects as Record<string, unknown>[] | undefined)?.forEach((s, i) => {
    const f = `subjects[${i}]`;
    if (typeof s?.name !== "string" || s.name === "")
      out.push({ field: `${f}.name`, message: "Required value" });
    if (s?.kind === "ServiceAccount") {
      if (s.apiGroup !== undefined && s.apiGroup !== "")
        out.push({ field: `${f}.apiGroup`, message: 'Unsupported value: must be ""' });
      if (typeof s.name === "string" && !DNS_SUBDOMAIN.test(s.name))
        out.push({ field: `${f}.name`, message: `Invalid value: "${s.name}"` });
      if (clusterBinding && (typeof s.namespace !== "string" || s.namespace === ""))
        out.push({ field: `${f}.namespace`, message: "Required value" });
    } else if (s?.kind !== "User" && s?.kind !== "Group") {
      out.push({
        field: `${f}.kind`,
        message: `Unsupported value: ${JSON.stringify(s?.kind)}: supported values: "ServiceAccount", "User", "Group"`,
      });
    }
  });
  return out;
}

/** RBAC's rule matching, as documented: `*` wildcards, `*\/sub` subresources, resourceNames. */
function ruleAllows(rule: Record<string, unknown>, a: Attributes): boolean {
  const list = (k: string) => (Array.isArray(rule[k]) ? (rule[k] as string[]) : []);
  const verbs = list("verbs");
  if (!verbs.includes("*") && !verbs.includes(a.verb)) return false;
  const groups = list("apiGroups");
  if (!groups.includes("*") && !groups.includes(a.group)) return false;
  const sub = a.resource.includes("/") ? a.resource.slice(a.resource.indexOf("/") + 1) : "";
  const resOk = list("resources").some(
    (r) => r === "*" || r === a.resource || (sub !== "" && r === `*/${sub}`),
  );
  if (!resOk) return false;
  const names = list("resourceNames");
  return names.length === 0 || (a.name !== undefined && names.includes(a.name));
}

function verbOf(method: string, named: boolean, watch: boolean): string | undefined {
  switch (method) {
    case "GET":
      return named ? "get" : watch ? "watch" : "list";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return named ? "delete" : "deletecollection";
    default:
      return undefined;
  }
}

export async function startFakeKubernetes(opts: { adminToken?: string } = {}): Promise<FakeKubernetes> {
  const adminToken = opts.adminToken ?? `admin-${randomBytes(18).toString("base64url")}`;
  const store = new Map<string, Map<string, Obj>>(); // "group/resource" → "ns/name" → object
  const tokens = new Map<string, IssuedToken>();
  const requests: FakeKubernetes["requests"] = [];
  let rv = 1000;
  let failures = 0;
  let hangs = 0;

  const bucket = (t: ResourceType) => {
    const key = `${t.group}/${t.resource}`;
    const b = store.get(key) ?? new Map<string, Obj>();
    store.set(key, b);
    return b;
  };
  const key = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;
  const typeOf = (group: string, resource: string) =>
    TYPES.find((t) => t.group === group && t.resource === resource);
  const nsType = typeOf("", "namespaces")!;
  const get = (group: string, resource: string, ns: string | undefined, name: string) =>
    bucket(typeOf(group, resource)!).get(key(ns, name));

  const sameSecret = (a: string, b: string) => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };

  function authenticate(token: string | undefined): User | ApiError {
    const unauthorized = new ApiError(401, "Unauthorized", "Unauthorized");
    if (!token) return unauthorized;
    if (sameSecret(token, adminToken)) return { kind: "admin" };
    const t = tokens.get(token);
    if (!t) return unauthorized;
    if (Date.now() >= t.expires) return unauthorized;
    if (!t.audiences.includes(API_AUDIENCE)) return unauthorized;
    const secret = get("", "secrets", t.saNamespace, t.secretName);
    if (!secret || secret.metadata.uid !== t.secretUid) return unauthorized;
    const sa = get("", "serviceaccounts", t.saNamespace, t.saName);
    if (!sa || sa.metadata.uid !== t.saUid) return unauthorized;
    return { kind: "serviceaccount", namespace: t.saNamespace, name: t.saName };
  }

  function authorize(user: User, a: Attributes): boolean {
    if (user.kind === "admin") return true;
    const isSubject = (b: Obj) =>
      Array.isArray(b.subjects) &&
      (b.subjects as Record<string, unknown>[]).some(
        (s) => s.kind === "ServiceAccount" && s.name === user.name && s.namespace === user.namespace,
      );
    const rulesOf = (kind: unknown, name: unknown, ns: string | undefined) => {
      const role =
        kind === "ClusterRole"
          ? get(RBAC, "clusterroles", undefined, String(name))
          : kind === "Role" && ns
            ? get(RBAC, "roles", ns, String(name))
            : undefined;
      return Array.isArray(role?.rules) ? (role.rules as Record<string, unknown>[]) : [];
    };
    for (const b of bucket(typeOf(RBAC, "clusterrolebindings")!).values()) {
      if (!isSubject(b)) continue;
      const ref = b.roleRef as Record<string, unknown>;
      if (rulesOf(ref?.kind, ref?.name, undefined).some((r) => ruleAllows(r, a))) return true;
    }
    if (a.namespace !== undefined) {
      for (const b of bucket(typeOf(RBAC, "rolebindings")!).values()) {
        if (b.metadata.namespace !== a.namespace || !isSubject(b)) continue;
        const ref = b.roleRef as Record<string, unknown>;
        if (rulesOf(ref?.kind, ref?.name, a.namespace).some((r) => ruleAllows(r, a))) return true;
      }
    }
    return false;
  }

  function forbidden(user: User, a: Attributes): ApiError {
    const who = user.kind === "admin" ? "admin" : `system:serviceaccount:${user.namespace}:${user.name}`;
    const [res, sub] = a.resource.split("/");
    const subject = a.name ? `${res} "${a.name}"` : res;
    const where = a.namespace !== undefined ? ` in the namespace "${a.namespace}"` : " at the cluster scope";
    return new ApiError(
      403,
      "Forbidden",
      `${subject} is forbidden: User "${who}" cannot ${a.verb} resource "${res}"${sub ? ` with subresource "${sub}"` : ""} in API group "${a.group}"${where}`,
      { ...(a.name ? { name: a.name } : {}), group: a.group, kind: res },
    );
  }

  function stamp(t: ResourceType, body: Record<string, unknown>, ns: string | undefined): Obj {
    const meta = { ...(body.metadata as Record<string, unknown>) };
    const obj = {
      ...body,
      apiVersion: t.group === "" ? t.version : `${t.group}/${t.version}`,
      kind: t.kind,
      metadata: {
        ...meta,
        ...(ns !== undefined ? { namespace: ns } : {}),
        uid: randomUUID(),
        resourceVersion: String(++rv),
        creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      },
    } as unknown as Obj;
    if (t.kind === "Secret" && obj.type === undefined) obj.type = "Opaque";
    return obj;
  }

  function validate(t: ResourceType, body: Record<string, unknown>, ns: string | undefined): void {
    const meta = body.metadata as Record<string, unknown> | undefined;
    const name = typeof meta?.name === "string" ? meta.name : "";
    const causes: { field: string; message: string }[] = [];
    if (!meta || typeof meta !== "object") causes.push({ field: "metadata", message: "Required value" });
    if (name === "")
      causes.push({ field: "metadata.name", message: "Required value: name or generateName is required" });
    else if (t.group === RBAC) {
      const p = pathSegmentProblem(name);
      if (p) causes.push({ field: "metadata.name", message: `Invalid value: "${name}": ${p}` });
    } else {
      const re = t.kind === "Namespace" ? DNS_LABEL : DNS_SUBDOMAIN;
      if (!re.test(name)) {
        causes.push({
          field: "metadata.name",
          message: `Invalid value: "${name}": a lowercase RFC 1123 ${t.kind === "Namespace" ? "label" : "subdomain"} must consist of lower case alphanumeric characters, '-' or '.'`,
        });
      }
    }
    causes.push(...labelProblems(meta?.labels));
    if (t.kind === "Role") causes.push(...ruleProblems(body.rules, true));
    if (t.kind === "ClusterRole") causes.push(...ruleProblems(body.rules, false));
    if (t.kind === "RoleBinding") causes.push(...bindingProblems(body, false));
    if (t.kind === "ClusterRoleBinding") causes.push(...bindingProblems(body, true));
    if (t.kind === "Secret") {
      if (body.type !== undefined && typeof body.type !== "string")
        causes.push({ field: "type", message: "must be a string" });
      const data = body.data as Record<string, unknown> | undefined;
      for (const [k, v] of Object.entries(data ?? {})) {
        if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
          causes.push({ field: `data[${k}]`, message: "must be base64" });
      }
    }
    if (causes.length > 0) throw invalid(t, name, causes);
    if (t.namespaced && meta?.namespace !== undefined && meta.namespace !== ns) {
      throw new ApiError(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
  }

  function create(t: ResourceType, ns: string | undefined, body: Record<string, unknown>): Obj {
    const want = t.group === "" ? t.version : `${t.group}/${t.version}`;
    if (
      (body.kind !== undefined && body.kind !== t.kind) ||
      (body.apiVersion !== undefined && body.apiVersion !== want)
    ) {
      throw new ApiError(
        400,
        "BadRequest",
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${want})`,
      );
    }
    validate(t, body, ns);
    if (t.namespaced && !bucket(nsType).has(key(undefined, ns!))) {
      throw new ApiError(404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
    }
    const name = (body.metadata as { name: string }).name;
    const b = bucket(t);
    if (b.has(key(ns, name))) {
      throw new ApiError(409, "AlreadyExists", `${qualified(t)} "${name}" already exists`, {
        name,
        group: t.group,
        kind: t.resource,
      });
    }
    const obj = stamp(t, body, t.namespaced ? ns : undefined);
    b.set(key(ns, name), obj);
    return obj;
  }

  function tokenRequest(ns: string, saName: string, body: Record<string, unknown>): Record<string, unknown> {
    const t: ResourceType = {
      group: "authentication.k8s.io",
      version: "v1",
      resource: "tokenrequests",
      kind: "TokenRequest",
      namespaced: true,
      verbs: ["create"],
    };
    // like any create, a body without kind/apiVersion takes the endpoint's; a different one is refused
    if (
      (body.kind !== undefined && body.kind !== "TokenRequest") ||
      (body.apiVersion !== undefined && body.apiVersion !== "authentication.k8s.io/v1")
    ) {
      throw new ApiError(
        400,
        "BadRequest",
        `expected a TokenRequest of authentication.k8s.io/v1, got ${String(body.kind)} ${String(body.apiVersion)}`,
      );
    }
    const sa = get("", "serviceaccounts", ns, saName);
    if (!sa)
      throw new ApiError(404, "NotFound", `serviceaccounts "${saName}" not found`, {
        name: saName,
        kind: "serviceaccounts",
      });
    const spec = (body.spec ?? {}) as Record<string, unknown>;
    const causes: { field: string; message: string }[] = [];
    const seconds = spec.expirationSeconds === undefined ? 3600 : spec.expirationSeconds;
    if (typeof seconds !== "number" || !Number.isInteger(seconds))
      causes.push({ field: "spec.expirationSeconds", message: "must be an integer" });
    else if (seconds < 600)
      causes.push({
        field: "spec.expirationSeconds",
        message: `Invalid value: ${seconds}: may not specify a duration less than 10 minutes`,
      });
    else if (seconds > 2 ** 32)
      causes.push({
        field: "spec.expirationSeconds",
        message: `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds`,
      });
    const audiences =
      spec.audiences === undefined || (Array.isArray(spec.audiences) && spec.audiences.length === 0)
        ? [API_AUDIENCE]
        : spec.audiences;
    if (!Array.isArray(audiences) || audiences.some((a) => typeof a !== "string" || a === ""))
      causes.push({ field: "spec.audiences", message: "must be a list of non-empty strings" });
    const ref = spec.boundObjectRef as Record<string, unknown> | undefined;
    if (ref !== undefined) {
      if (ref.kind !== "Secret" && ref.kind !== "Pod" && ref.kind !== "Node")
        causes.push({
          field: "spec.boundObjectRef.kind",
          message: `Unsupported value: ${JSON.stringify(ref.kind)}: supported values: "Pod", "Secret", "Node"`,
        });
      if (ref.apiVersion !== "v1")
        causes.push({
          field: "spec.boundObjectRef.apiVersion",
          message: `Unsupported value: ${JSON.stringify(ref.apiVersion)}: supported values: "v1"`,
        });
      if (typeof ref.name !== "string" || ref.name === "")
        causes.push({ field: "spec.boundObjectRef.name", message: "Required value" });
    }
    if (causes.length > 0) throw invalid(t, saName, causes);
    if (!ref || ref.kind !== "Secret")
      throw new ApiError(400, "BadRequest", "this fake issues only Secret-bound tokens");
    const secret = get("", "secrets", ns, String(ref.name));
    if (!secret)
      throw new ApiError(404, "NotFound", `secrets "${String(ref.name)}" not found`, {
        name: ref.name,
        kind: "secrets",
      });
    if (ref.uid !== undefined && ref.uid !== secret.metadata.uid) {
      throw new ApiError(
        409,
        "Conflict",
        `the UID in the bound object reference (${String(ref.uid)}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    }
    const token = `fake.${randomBytes(32).toString("base64url")}`;
    const expires = Date.now() + (seconds as number) * 1000;
    tokens.set(token, {
      saNamespace: ns,
      saName,
      saUid: sa.metadata.uid,
      secretName: secret.metadata.name,
      secretUid: secret.metadata.uid,
      expires,
      audiences: audiences as string[],
    });
    return {
      kind: "TokenRequest",
      apiVersion: "authentication.k8s.io/v1",
      metadata: {
        name: saName,
        namespace: ns,
        creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      },
      spec: {
        audiences,
        expirationSeconds: seconds,
        boundObjectRef: {
          kind: "Secret",
          apiVersion: "v1",
          name: secret.metadata.name,
          uid: secret.metadata.uid,
        },
      },
      status: { token, expirationTimestamp: new Date(expires).toISOString().replace(/\.\d{3}Z$/, "Z") },
    };
  }

  function discovery(path: string): unknown {
    if (path === "/api")
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }],
      };
    if (path === "/apis") {
      return {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: GROUPS.map((g) => ({
          name: g,
          versions: [{ groupVersion: `${g}/v1`, version: "v1" }],
          preferredVersion: { groupVersion: `${g}/v1`, version: "v1" },
        })),
      };
    }
    const m = path.match(/^\/api\/v1$|^\/apis\/([^/]+)\/v1$/);
    if (m) {
      const group = m[1] ?? "";
      if (group !== "" && !GROUPS.includes(group)) return undefined;
      const resources = TYPES.filter((t) => t.group === group).map((t) => ({
        name: t.resource,
        singularName: t.kind.toLowerCase(),
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.verbs,
        ...(t.shortNames ? { shortNames: t.shortNames } : {}),
      }));
      if (group === "")
        resources.push({
          name: "serviceaccounts/token",
          singularName: "",
          namespaced: true,
          kind: "TokenRequest",
          verbs: ["create"],
        });
      return {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: group === "" ? "v1" : `${group}/v1`,
        resources,
      };
    }
    if (path === "/version")
      return { major: "1", minor: "33", gitVersion: "v1.33.0-writ-fake", platform: "linux/amd64" };
    return undefined;
  }

  /** Serves a list, as a meta.k8s.io Table when the client asks for one (kubectl get). */
  function list(t: ResourceType, ns: string | undefined, selectorText: string, accept: string): unknown {
    const selector = parseSelector(selectorText);
    if (!selector)
      throw new ApiError(
        400,
        "BadRequest",
        `unable to parse requirement: invalid label selector "${selectorText}"`,
      );
    const items = [...bucket(t).values()]
      .filter((o) => ns === undefined || o.metadata.namespace === ns)
      .filter((o) => selector(o.metadata.labels ?? {}))
      .map((o) => {
        const { apiVersion: _a, kind: _k, ...rest } = o;
        return rest;
      });
    if (accept.includes("as=Table")) {
      return {
        kind: "Table",
        apiVersion: "meta.k8s.io/v1",
        metadata: { resourceVersion: String(rv) },
        columnDefinitions: [
          { name: "Name", type: "string", format: "name", description: "Name", priority: 0 },
          { name: "Created At", type: "date", description: "creation time", priority: 0 },
        ],
        rows: items.map((o) => ({
          cells: [o.metadata.name, o.metadata.creationTimestamp],
          object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
        })),
      };
    }
    return {
      kind: `${t.kind}List`,
      apiVersion: t.group === "" ? t.version : `${t.group}/${t.version}`,
      metadata: { resourceVersion: String(rv) },
      items,
    };
  }

  async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 3 * 1024 * 1024)
        throw new ApiError(413, "RequestEntityTooLarge", "request entity too large");
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text === "") return {};
    try {
      const v = JSON.parse(text);
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      return v;
    } catch {
      throw new ApiError(400, "BadRequest", "the request body is not a JSON object");
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<{ code: number; user: string }> {
    const url = new URL(req.url ?? "/", "http://fake");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
    const user = authenticate(bearer);
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
      return code;
    };
    let userName = "anonymous";
    try {
      if (failures > 0) {
        failures--;
        throw new ApiError(
          500,
          "InternalError",
          'an error on the server ("fake failure") has prevented the request from succeeding',
        );
      }
      if (user instanceof ApiError) throw user;
      userName = user.kind === "admin" ? "admin" : `system:serviceaccount:${user.namespace}:${user.name}`;
      if (req.method === "GET") {
        const d = discovery(path);
        if (d !== undefined) return { code: send(200, d), user: userName };
      }
      const m = path.match(
        /^\/(?:api\/v1|apis\/([^/]+)\/v1)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/,
      );
      if (!m) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      const group = m[1] ?? "";
      // `/api/v1/namespaces/<name>` falls through to resource `namespaces`, name `<name>`
      const [ns, resource, name, sub] = [m[2], m[3]!, m[4], m[5]];
      const t = typeOf(group, resource);
      if (!t) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      if (ns !== undefined && !t.namespaced)
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      const verb = verbOf(req.method ?? "", name !== undefined, url.searchParams.get("watch") === "true");
      if (!verb)
        throw new ApiError(
          405,
          "MethodNotAllowed",
          `the server does not allow this method on the requested resource`,
        );
      const attrs: Attributes = {
        verb,
        group,
        resource: sub ? `${resource}/${sub}` : resource,
        namespace: ns,
        name,
      };
      if (!authorize(user, attrs)) throw forbidden(user, attrs);
      const body =
        req.method === "POST" || req.method === "DELETE" || req.method === "PUT" ? await readBody(req) : {};
      if (sub !== undefined) {
        if (
          t.resource === "serviceaccounts" &&
          sub === "token" &&
          req.method === "POST" &&
          ns !== undefined &&
          name !== undefined
        ) {
          return { code: send(201, tokenRequest(ns, name, body)), user: userName };
        }
        throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      }
      if (req.method === "POST" && name === undefined) {
        if (t.namespaced && ns === undefined)
          throw new ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
          );
        return { code: send(201, create(t, ns, body)), user: userName };
      }
      if (req.method === "GET" && name === undefined) {
        if (verb === "watch") throw new ApiError(405, "MethodNotAllowed", "this fake does not serve watches");
        return {
          code: send(
            200,
            list(t, ns, url.searchParams.get("labelSelector") ?? "", String(req.headers.accept ?? "")),
          ),
          user: userName,
        };
      }
      if (name !== undefined && (t.namespaced ? ns !== undefined : ns === undefined)) {
        const b = bucket(t);
        const obj = b.get(key(ns, name));
        if (!obj)
          throw new ApiError(404, "NotFound", `${qualified(t)} "${name}" not found`, {
            name,
            group: t.group,
            kind: t.resource,
          });
        if (req.method === "GET") return { code: send(200, obj), user: userName };
        if (req.method === "DELETE") {
          const pre = (body.preconditions ?? {}) as Record<string, unknown>;
          if (pre.uid !== undefined && pre.uid !== obj.metadata.uid) {
            throw new ApiError(
              409,
              "Conflict",
              `Operation cannot be fulfilled on ${qualified(t)} "${name}": Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${obj.metadata.uid}`,
              { name, group: t.group, kind: t.resource },
            );
          }
          if (pre.resourceVersion !== undefined && pre.resourceVersion !== obj.metadata.resourceVersion) {
            throw new ApiError(
              409,
              "Conflict",
              `Operation cannot be fulfilled on ${qualified(t)} "${name}": Precondition failed: resourceVersion`,
              { name, group: t.group, kind: t.resource },
            );
          }
          b.delete(key(ns, name));
          return {
            code: send(200, {
              kind: "Status",
              apiVersion: "v1",
              metadata: {},
              status: "Success",
              details: { name, group: t.group, kind: t.resource, uid: obj.metadata.uid },
            }),
            user: userName,
          };
        }
      }
      throw new ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
      );
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, "InternalError", "internal error");
      return { code: send(err.code, status(err)), user: userName };
    }
  }

  // a fresh self-signed certificate for 127.0.0.1 (never reused, removed at close)
  const dir = mkdtempSync(join(tmpdir(), "writ-fake-k8s-"));
  const caFile = join(dir, "ca.pem");
  const keyFile = join(dir, "key.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyFile,
        "-out",
        caFile,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: "ignore" },
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `the fake Kubernetes API server makes its certificate with openssl, which failed (${(e as NodeJS.ErrnoException).code ?? "error"}): install it (Debian: apt-get install openssl; .ci/run does)`,
    );
  }
  const server: Server = createServer(
    { cert: readFileSync(caFile), key: readFileSync(keyFile) },
    (req, res) => {
      const path = (req.url ?? "/").split("?")[0]!;
      if (hangs > 0) {
        hangs--;
        requests.push({ method: req.method ?? "", path, user: "?", status: 0 });
        return;
      }
      void handle(req, res).then(({ code, user }) =>
        requests.push({ method: req.method ?? "", path, user, status: code }),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}`,
    caFile,
    adminToken,
    requests,
    use(token, verb, group, resource, namespace, name) {
      const user = authenticate(token);
      if (user instanceof ApiError) return { allowed: false, code: 401, message: user.message };
      const attrs = { verb, group, resource, namespace, name };
      return authorize(user, attrs)
        ? { allowed: true, code: 200, message: "allowed" }
        : { allowed: false, code: 403, message: forbidden(user, attrs).message };
    },
    objects(group, resource) {
      const t = typeOf(group, resource);
      if (!t) throw new Error(`the fake does not serve ${group}/${resource}`);
      return [...bucket(t).values()].map((o) => structuredClone(o));
    },
    seed(group, resource, body) {
      const t = typeOf(group, resource);
      if (!t) throw new Error(`the fake does not serve ${group}/${resource}`);
      const ns = (body.metadata as { namespace?: string } | undefined)?.namespace;
      return create(t, t.namespaced ? ns : undefined, body);
    },
    failNext(n) {
      failures = n;
    },
    hangNext(n) {
      hangs = n;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => {
          rmSync(dir, { recursive: true, force: true });
          return e ? reject(e) : resolve();
        });
      }),
  };
}
