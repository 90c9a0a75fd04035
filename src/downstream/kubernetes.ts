/**
 * The Kubernetes downstream issuer: a writ with `k8s:` grants becomes a ServiceAccount token that
 * can do exactly what the writ grants, through RBAC objects made for that writ alone.
 *
 * For each writ: a per-writ Secret in the ServiceAccount's namespace, a Role + RoleBinding per
 * namespace the grants name (a ClusterRole + ClusterRoleBinding only for cluster-wide grants), all
 * named `writ-<id>` and labelled `writ.dev/writ`/`writ.dev/agent`; then a TokenRequest whose
 * `boundObjectRef` is that Secret, so deleting the Secret ends the token at once. Every object is
 * recorded in the ledger before it is created and after; revocation and kill delete them (Secret
 * first). The broker's own token and CA are read at start; `~/.kube/config` is never read.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  RbacAuthorizationV1Api,
  type V1ObjectMeta,
} from "@kubernetes/client-node";
import { isWritError, q, type WritError } from "../core/index.js";
import { checkServer, configError, readToken, serviceAccountFor } from "./kubernetes/config.js";
import { labelValue, objectName } from "./kubernetes/names.js";
import { type PolicyRule, planRbac, RbacRefusal } from "./kubernetes/rbac.js";
import { refusal } from "./refusal.js";
import type {
  DownstreamCredential,
  DownstreamIssuer,
  DownstreamReason,
  DownstreamRecord,
  IssuerDeps,
  KubernetesDownstreamConfig,
  WritForIssuer,
} from "./types.js";

export { labelValue, objectName } from "./kubernetes/names.js";
export { planRbac, type RbacPlan, resourceScope } from "./kubernetes/rbac.js";

export const LABEL_WRIT = "writ.dev/writ";
export const LABEL_AGENT = "writ.dev/agent";
/** Which writ environment made the object (for people and audit; kill does not select by it). */
export const LABEL_ENVIRONMENT = "writ.dev/environment";
/** The TokenRequest API's documented floor for `expirationSeconds`. */
export const MIN_TOKEN_SECONDS = 600;

const RBAC_GROUP = "rbac.authorization.k8s.io";
const RBAC_VERSION = `${RBAC_GROUP}/v1`;

/** What a ledger locator holds: enough to find the object again, never a secret. */
interface Locator {
  readonly apiVersion: string;
  readonly kind: "Secret" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding";
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
}

const RECORD_KIND: Record<Locator["kind"], string> = {
  Secret: "secret",
  Role: "role",
  RoleBinding: "rolebinding",
  ClusterRole: "clusterrole",
  ClusterRoleBinding: "clusterrolebinding",
};

interface Clients {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
}

/** How long one API call may take before writ stops waiting (and aborts it). */
export const REQUEST_TIMEOUT_MS = 15_000;

/** A KubeConfig whose every request carries an abort signal: a hung API server never hangs writ. */
class TimedKubeConfig extends KubeConfig {
  constructor(private readonly timeoutMs: number) {
    super();
  }
  override async applySecurityAuthentication(
    context: Parameters<KubeConfig["applySecurityAuthentication"]>[0],
  ) {
    await super.applySecurityAuthentication(context);
    context.setSignal(AbortSignal.timeout(this.timeoutMs));
  }
}

function apiCode(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/** The API server's `Status.message`, for our own messages (never a token: requests carry none back). */
function apiMessage(e: unknown): string {
  if (e instanceof ApiException) {
    let body: unknown = e.body;
    if (typeof body === "string") {
      try {
        body = JSON.parse(body);
      } catch {
        /* not JSON */
      }
    }
    const msg = body && typeof body === "object" ? (body as { message?: unknown }).message : undefined;
    return `HTTP ${e.code}${typeof msg === "string" ? `: ${msg.slice(0, 300)}` : ""}`;
  }
  const err = e as { code?: unknown; name?: unknown; type?: unknown };
  if (err?.name === "AbortError" || err?.type === "aborted") return "no answer in time (aborted)";
  return typeof err?.code === "string" ? err.code : "request failed";
}

function apiRefusal(what: string, e: unknown): WritError {
  const code = apiCode(e);
  const reason: DownstreamReason = code === 403 ? "downstream_permission_missing" : "downstream_unavailable";
  return refusal(reason, `${what}: ${apiMessage(e)}`);
}

/** Does an existing object hold what `body` would have created (rules, roleRef, subjects, type)? */
function sameContent(existing: KubernetesObject, body: KubernetesObject): boolean {
  const a = existing as unknown as Record<string, unknown>;
  const b = body as unknown as Record<string, unknown>;
  // key order, absent fields, empty lists and empty strings do not count (the API omits them)
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(canon);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = canon((v as Record<string, unknown>)[k]);
        if (x !== undefined) out[k] = x;
      }
      return Object.keys(out).length === 0 ? undefined : out;
    }
    return v === "" || v === null ? undefined : v;
  };
  const norm = (v: unknown) => JSON.stringify(canon(v) ?? null);
  return ["rules", "roleRef", "subjects", "type", "aggregationRule"].every((k) => norm(a[k]) === norm(b[k]));
}

function describe(l: Locator): string {
  return `${l.kind} ${l.namespace ? `${l.namespace}/` : ""}${l.name}`;
}

export function kubernetesIssuer(
  cfg: KubernetesDownstreamConfig,
  deps: IssuerDeps,
): Promise<DownstreamIssuer> {
  return kubernetesIssuerWith(cfg, deps, {});
}

/** `kubernetesIssuer` with tunables for tests (a shorter request timeout). */
export async function kubernetesIssuerWith(
  cfg: KubernetesDownstreamConfig,
  deps: IssuerDeps,
  opts: { readonly timeoutMs?: number },
): Promise<DownstreamIssuer> {
  const env = deps.env ?? process.env;
  const url = checkServer(cfg.server);
  let caData: string | undefined;
  if (cfg.caFile !== undefined) {
    try {
      caData = readFileSync(cfg.caFile).toString("base64");
    } catch (e) {
      throw configError(
        `caFile ${q(cfg.caFile)} cannot be read: ${(e as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (caData === "") throw configError(`caFile ${q(cfg.caFile)} is empty`);
  }
  if (cfg.serviceAccounts.size === 0)
    throw configError("serviceAccounts: at least one agent (or `*`) must be mapped");
  for (const [agent, sa] of cfg.serviceAccounts) {
    const parts = sa.split("/");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw configError(`serviceAccounts.${agent}: ${q(sa)} is not \`namespace/name\``);
    }
  }
  if (cfg.audience !== undefined && cfg.audience.trim() === "") throw configError("audience is empty");

  let token = readToken(cfg, env);
  const build = (t: string): Clients => {
    const kc = new TimedKubeConfig(opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
    kc.loadFromClusterAndUser(
      { name: "writ-target", server: url.toString().replace(/\/$/, ""), caData, skipTLSVerify: false },
      { name: "writ-broker", token: t },
    );
    return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api) };
  };
  let clients = build(token);
  /** A projected ServiceAccount token file is rotated by the kubelet: re-read it before each use. */
  const api = (): Clients => {
    if ("file" in cfg.token) {
      try {
        const fresh = readToken(cfg, env);
        if (fresh !== token) {
          token = fresh;
          clients = build(fresh);
        }
      } catch {
        // keep the last good token; the API server will say if it no longer works
      }
    }
    return clients;
  };
  // namespaces where Secrets are made, when no mapping templates the namespace (kill lists there only)
  const secretNamespaces = [...cfg.serviceAccounts.values()].some((sa) =>
    sa.split("/")[0]!.includes("{agent}"),
  )
    ? undefined
    : [...new Set([...cfg.serviceAccounts.values()].map((sa) => sa.split("/")[0]!))];

  const audit = async (type: string, data: Record<string, unknown>) => {
    await deps.audit(type, { system: "kubernetes", ...data });
  };

  // ---- the five kinds, through the typed clients ----
  const create = (l: Locator, body: KubernetesObject): Promise<KubernetesObject> => {
    const c = api();
    switch (l.kind) {
      case "Secret":
        return c.core.createNamespacedSecret({ namespace: l.namespace!, body });
      case "Role":
        return c.rbac.createNamespacedRole({ namespace: l.namespace!, body: body as never });
      case "RoleBinding":
        return c.rbac.createNamespacedRoleBinding({ namespace: l.namespace!, body: body as never });
      case "ClusterRole":
        return c.rbac.createClusterRole({ body: body as never });
      case "ClusterRoleBinding":
        return c.rbac.createClusterRoleBinding({ body: body as never });
    }
  };
  const read = (l: Locator): Promise<KubernetesObject> => {
    const c = api();
    const { name } = l;
    switch (l.kind) {
      case "Secret":
        return c.core.readNamespacedSecret({ name, namespace: l.namespace! });
      case "Role":
        return c.rbac.readNamespacedRole({ name, namespace: l.namespace! });
      case "RoleBinding":
        return c.rbac.readNamespacedRoleBinding({ name, namespace: l.namespace! });
      case "ClusterRole":
        return c.rbac.readClusterRole({ name });
      case "ClusterRoleBinding":
        return c.rbac.readClusterRoleBinding({ name });
    }
  };
  const remove = async (l: Locator, uid: string): Promise<void> => {
    const c = api();
    const { name } = l;
    // the uid precondition: never delete an object that is not the one recorded
    const body = { preconditions: { uid } };
    switch (l.kind) {
      case "Secret":
        await c.core.deleteNamespacedSecret({ name, namespace: l.namespace!, body });
        return;
      case "Role":
        await c.rbac.deleteNamespacedRole({ name, namespace: l.namespace!, body });
        return;
      case "RoleBinding":
        await c.rbac.deleteNamespacedRoleBinding({ name, namespace: l.namespace!, body });
        return;
      case "ClusterRole":
        await c.rbac.deleteClusterRole({ name, body });
        return;
      case "ClusterRoleBinding":
        await c.rbac.deleteClusterRoleBinding({ name, body });
        return;
    }
  };

  /**
   * Deletes the object `l` names if it still is ours (labelled for `writ`, or the recorded uid).
   * Returns whether something was deleted; gone already, or someone else's, is not an error.
   */
  const removeOwned = async (l: Locator, writ: string): Promise<boolean> => {
    let uid = l.uid;
    if (uid === undefined) {
      let current: KubernetesObject;
      try {
        current = await read(l);
      } catch (e) {
        if (apiCode(e) === 404) return false;
        throw apiRefusal(`reading ${describe(l)}`, e);
      }
      if (current.metadata?.labels?.[LABEL_WRIT] !== labelValue(writ)) return false;
      uid = current.metadata?.uid;
      if (!uid) return false;
    }
    try {
      await remove(l, uid);
      return true;
    } catch (e) {
      // 404: gone already; 409: the precondition failed, the name now holds another object
      if (apiCode(e) === 404 || apiCode(e) === 409) return false;
      throw apiRefusal(`deleting ${describe(l)}`, e);
    }
  };

  return {
    system: "kubernetes",

    async issue(writ: WritForIssuer, now: Date): Promise<DownstreamCredential> {
      let plan: ReturnType<typeof planRbac>;
      try {
        plan = planRbac(writ.grants, writ.denies);
      } catch (e) {
        if (e instanceof RbacRefusal) throw refusal(e.reason, e.message);
        if (isWritError(e)) throw refusal("downstream_scope_exceeds_writ", e.message);
        throw e;
      }
      const remaining = Math.floor((writ.expiresAt.getTime() - now.getTime()) / 1000);
      if (remaining <= 0) throw refusal("downstream_scope_exceeds_writ", `writ ${q(writ.id)} has expired`);
      const sa = serviceAccountFor(cfg, writ.agent);
      if (!sa) {
        throw refusal(
          "downstream_not_configured",
          `no ServiceAccount is mapped for agent ${q(writ.agent)} (downstream.kubernetes.serviceAccounts)`,
        );
      }
      const name = objectName(writ.id);
      const meta = (namespace?: string): V1ObjectMeta => ({
        name,
        ...(namespace ? { namespace } : {}),
        labels: {
          [LABEL_WRIT]: labelValue(writ.id),
          [LABEL_AGENT]: labelValue(writ.agent),
          [LABEL_ENVIRONMENT]: labelValue(writ.environment),
        },
        annotations: {
          "writ.dev/writ-id": writ.id,
          "writ.dev/agent-id": writ.agent,
          "writ.dev/playbook": writ.playbook,
          "writ.dev/expires-at": writ.expiresAt.toISOString(),
          // the analyzer names the writ's sponsor in its findings from this
          ...(writ.sponsor ? { "writ.dev/sponsor": writ.sponsor } : {}),
        },
      });
      const subjects = [{ kind: "ServiceAccount", name: sa.name, namespace: sa.namespace }];
      const made: { record: DownstreamRecord; locator: Locator }[] = [];

      /** Intent, create (or adopt our own on 409), created: one object. Returns the live object. */
      const ensure = async (l: Locator, body: KubernetesObject): Promise<KubernetesObject> => {
        const record = await deps.ledger.intend({
          id: `k8s_${randomBytes(12).toString("base64url")}`,
          system: "kubernetes",
          environment: writ.environment,
          writ: writ.id,
          agent: writ.agent,
          kind: RECORD_KIND[l.kind],
          locator: { ...l },
          expiresAt: writ.expiresAt,
        });
        let obj: KubernetesObject;
        let adopted = false;
        try {
          obj = await create(l, body);
        } catch (e) {
          const code = apiCode(e);
          if (code === undefined || code >= 500) {
            // no answer, or the server failed: the object may exist (or appear later), so the
            // intent stays for the reaper, which looks it up by name and label
            throw apiRefusal(`creating ${describe(l)}`, e);
          }
          if (code !== 409) {
            // the API server refused: nothing was created
            await deps.ledger.removed(record.id);
            throw apiRefusal(`creating ${describe(l)}`, e);
          }
          try {
            obj = await read(l);
          } catch (e2) {
            await deps.ledger.removed(record.id);
            throw apiRefusal(`reading ${describe(l)} after a conflict`, e2);
          }
          if (obj.metadata?.labels?.[LABEL_WRIT] !== labelValue(writ.id)) {
            // someone else's object under our name: never adopt, never delete it
            await deps.ledger.removed(record.id);
            throw refusal(
              "downstream_unavailable",
              `${describe(l)} already exists and does not belong to writ ${q(writ.id)}`,
            );
          }
          if (!sameContent(obj, body)) {
            // labelled as ours but not what this writ needs (someone who can write RBAC made it, or
            // edited it): binding to it could grant more than the writ, so refuse and leave it
            await deps.ledger.removed(record.id);
            throw refusal(
              "downstream_scope_exceeds_writ",
              `${describe(l)} exists with this writ's label but not with this writ's rules or subjects`,
            );
          }
          adopted = true;
        }
        const uid = obj.metadata?.uid;
        const locator: Locator = { ...l, uid };
        await deps.ledger.created(record.id, { ...locator, resourceVersion: obj.metadata?.resourceVersion });
        made.push({ record, locator });
        await audit(adopted ? "downstream.object_adopted" : "downstream.object_created", {
          writ: writ.id,
          agent: writ.agent,
          ...locator,
        });
        return obj;
      };

      try {
        const secretLoc: Locator = { apiVersion: "v1", kind: "Secret", namespace: sa.namespace, name };
        const secret = await ensure(secretLoc, {
          apiVersion: "v1",
          kind: "Secret",
          metadata: meta(sa.namespace),
          type: "Opaque",
        } as KubernetesObject);
        const roleRef = (kind: "Role" | "ClusterRole") => ({ apiGroup: RBAC_GROUP, kind, name });
        for (const [ns, rules] of plan.namespaces) {
          await ensure({ apiVersion: RBAC_VERSION, kind: "Role", namespace: ns, name }, {
            apiVersion: RBAC_VERSION,
            kind: "Role",
            metadata: meta(ns),
            rules: rules as PolicyRule[],
          } as KubernetesObject);
          await ensure({ apiVersion: RBAC_VERSION, kind: "RoleBinding", namespace: ns, name }, {
            apiVersion: RBAC_VERSION,
            kind: "RoleBinding",
            metadata: meta(ns),
            roleRef: roleRef("Role"),
            subjects,
          } as KubernetesObject);
        }
        if (plan.cluster.length > 0) {
          await ensure({ apiVersion: RBAC_VERSION, kind: "ClusterRole", name }, {
            apiVersion: RBAC_VERSION,
            kind: "ClusterRole",
            metadata: meta(),
            rules: plan.cluster as PolicyRule[],
          } as KubernetesObject);
          await ensure({ apiVersion: RBAC_VERSION, kind: "ClusterRoleBinding", name }, {
            apiVersion: RBAC_VERSION,
            kind: "ClusterRoleBinding",
            metadata: meta(),
            roleRef: roleRef("ClusterRole"),
            subjects,
          } as KubernetesObject);
        }
        const seconds = Math.max(remaining, MIN_TOKEN_SECONDS);
        let answer: Awaited<ReturnType<CoreV1Api["createNamespacedServiceAccountToken"]>>;
        try {
          answer = await api().core.createNamespacedServiceAccountToken({
            name: sa.name,
            namespace: sa.namespace,
            body: {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenRequest",
              spec: {
                audiences: cfg.audience !== undefined ? [cfg.audience] : [],
                expirationSeconds: seconds,
                boundObjectRef: { apiVersion: "v1", kind: "Secret", name, uid: secret.metadata?.uid },
              },
            },
          });
        } catch (e) {
          throw apiRefusal(`TokenRequest for ServiceAccount ${sa.namespace}/${sa.name}`, e);
        }
        const issued = answer.status?.token;
        if (typeof issued !== "string" || issued === "") {
          throw refusal("downstream_unavailable", "the TokenRequest answer holds no token");
        }
        const tokenExpiry = answer.status?.expirationTimestamp
          ? new Date(answer.status.expirationTimestamp)
          : new Date(now.getTime() + seconds * 1000);
        const notes: string[] = [];
        if (remaining < MIN_TOKEN_SECONDS) {
          notes.push(
            `the API server issues tokens for at least ${MIN_TOKEN_SECONDS} s; this one was requested for ${MIN_TOKEN_SECONDS} s and ends when the writ expires (${writ.expiresAt.toISOString()}), when writ deletes its bound Secret`,
          );
        }
        if (tokenExpiry.getTime() > writ.expiresAt.getTime() + MIN_TOKEN_SECONDS * 1000) {
          notes.push(
            `the API server set the token's expiry to ${tokenExpiry.toISOString()}, later than asked; it still ends at the writ's expiry, when writ deletes its bound Secret`,
          );
        }
        await audit("downstream.credential_issued", {
          writ: writ.id,
          agent: writ.agent,
          serviceAccount: `${sa.namespace}/${sa.name}`,
          expirationSeconds: seconds,
          expiresAt: writ.expiresAt.toISOString(),
          roles: [...plan.namespaces.keys()],
          clusterRole: plan.cluster.length > 0,
        });
        return {
          system: "kubernetes",
          token: issued,
          expiration: new Date(Math.min(tokenExpiry.getTime(), writ.expiresAt.getTime())),
          server: cfg.server,
          caData,
          notes,
        };
      } catch (e) {
        // undo this attempt (Secret first), so a refused issue leaves nothing behind
        for (const m of [...made]
          .reverse()
          .sort((a, b) => Number(b.locator.kind === "Secret") - Number(a.locator.kind === "Secret"))) {
          try {
            await removeOwned(m.locator, writ.id);
            await deps.ledger.removed(m.record.id);
          } catch {
            // left to the reaper: the record stays `created` until its object is gone
          }
        }
        throw e;
      }
    },

    async revoke(record: DownstreamRecord, now: Date): Promise<void> {
      void now;
      const l = record.locator as unknown as Locator;
      if (
        record.system !== "kubernetes" ||
        typeof l?.name !== "string" ||
        !Object.hasOwn(RECORD_KIND, l.kind) ||
        ((l.kind === "Secret" || l.kind === "Role" || l.kind === "RoleBinding") &&
          typeof l.namespace !== "string")
      ) {
        throw refusal("downstream_unavailable", `record ${q(record.id)} has no Kubernetes locator`);
      }
      const deleted = await removeOwned(l, record.writ);
      await deps.ledger.removed(record.id);
      await audit("downstream.object_removed", {
        writ: record.writ,
        agent: record.agent,
        apiVersion: l.apiVersion,
        kind: l.kind,
        namespace: l.namespace,
        name: l.name,
        existed: deleted,
      });
    },

    async kill(scope, now: Date): Promise<void> {
      void now;
      const selector =
        scope.writ !== undefined
          ? `${LABEL_WRIT}=${labelValue(scope.writ)}`
          : scope.agent !== undefined
            ? `${LABEL_AGENT}=${labelValue(scope.agent)}`
            : LABEL_WRIT;
      const c = api();
      const found: Locator[] = [];
      const add = (apiVersion: string, kind: Locator["kind"], items: readonly KubernetesObject[]) => {
        for (const o of items) {
          if (!o.metadata?.name || !o.metadata.uid) continue;
          found.push({
            apiVersion,
            kind,
            namespace: o.metadata.namespace,
            name: o.metadata.name,
            uid: o.metadata.uid,
          });
        }
      };
      try {
        // Secrets first: deleting one ends its token at once; the RBAC objects follow
        if (secretNamespaces) {
          for (const ns of secretNamespaces) {
            add(
              "v1",
              "Secret",
              (await c.core.listNamespacedSecret({ namespace: ns, labelSelector: selector })).items,
            );
          }
        } else {
          add("v1", "Secret", (await c.core.listSecretForAllNamespaces({ labelSelector: selector })).items);
        }
        add(
          RBAC_VERSION,
          "ClusterRoleBinding",
          (await c.rbac.listClusterRoleBinding({ labelSelector: selector })).items,
        );
        add(
          RBAC_VERSION,
          "RoleBinding",
          (await c.rbac.listRoleBindingForAllNamespaces({ labelSelector: selector })).items,
        );
        add(RBAC_VERSION, "ClusterRole", (await c.rbac.listClusterRole({ labelSelector: selector })).items);
        add(RBAC_VERSION, "Role", (await c.rbac.listRoleForAllNamespaces({ labelSelector: selector })).items);
      } catch (e) {
        if (isWritError(e)) throw e;
        throw apiRefusal(`listing objects labelled ${q(selector)}`, e);
      }
      let removed = 0;
      const failures: string[] = [];
      for (const l of found) {
        try {
          await remove(l, l.uid!);
          removed++;
        } catch (e) {
          if (apiCode(e) === 404 || apiCode(e) === 409) continue;
          failures.push(`${describe(l)}: ${apiMessage(e)}`);
        }
      }
      await audit("downstream.killed", { scope: { ...scope }, selector, removed, failed: failures.length });
      if (failures.length > 0) {
        throw refusal(
          "downstream_unavailable",
          `kill left ${failures.length} object(s): ${failures.slice(0, 3).join("; ")}`,
        );
      }
    },
  };
}
