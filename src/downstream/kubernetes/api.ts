/**
 * The Kubernetes issuer's API calls: the broker's typed clients (its token re-read before each use,
 * as the kubelet rotates a projected token; every request under a timeout), and the five kinds of
 * object writ makes — created, read, deleted under a uid precondition, and deleted only while
 * still ours. Plus how the API server's failures read in writ's refusals.
 */
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  RbacAuthorizationV1Api,
} from "@kubernetes/client-node";
import type { WritError } from "../../core/index.js";
import { type DownstreamRefused, refused, thrown } from "../refusal.js";
import type { DownstreamReason, KubernetesDownstreamConfig } from "../types.js";
import { readToken } from "./config.js";
import { LABEL_WRIT, labelValue } from "./names.js";

/** What a ledger locator holds: enough to find the object again, never a secret. */
export interface Locator {
  readonly apiVersion: string;
  readonly kind: "Secret" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding";
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
}

export const RECORD_KIND: Record<Locator["kind"], string> = {
  Secret: "secret",
  Role: "role",
  RoleBinding: "rolebinding",
  ClusterRole: "clusterrole",
  ClusterRoleBinding: "clusterrolebinding",
};

export interface Clients {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
}

/** How long one API call may take before writ stops waiting (and aborts it). */
export const REQUEST_TIMEOUT_MS = 15_000;

/** A KubeConfig whose every request carries an abort signal: a hung API server never hangs writ. */
export class TimedKubeConfig extends KubeConfig {
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

export function apiCode(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/** The API server's `Status.message`, for our own messages (never a token: requests carry none back). */
export function apiMessage(e: unknown): string {
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

/** The API server's failure as a refusal: 403 is a permission the broker lacks, anything else unavailability. */
export function apiRefused(what: string, e: unknown): DownstreamRefused {
  const code = apiCode(e);
  const reason: DownstreamReason = code === 403 ? "downstream_permission_missing" : "downstream_unavailable";
  return refused(reason, `${what}: ${apiMessage(e)}`);
}

/** `apiRefused` thrown, for the paths that throw (`revoke`, `kill`). */
export function apiRefusal(what: string, e: unknown): WritError {
  return thrown(apiRefused(what, e));
}

/** Does an existing object hold what `body` would have created (rules, roleRef, subjects, type)? */
export function sameContent(existing: KubernetesObject, body: KubernetesObject): boolean {
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

export function describe(l: Locator): string {
  return `${l.kind} ${l.namespace ? `${l.namespace}/` : ""}${l.name}`;
}

/** The broker's clients of one API server, and the five kinds of object through them. */
export class KubeApi {
  private token: string;
  private clients: Clients;

  constructor(
    private readonly cfg: KubernetesDownstreamConfig,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly server: URL,
    private readonly caData: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.token = readToken(cfg, env);
    this.clients = this.build(this.token);
  }

  private build(t: string): Clients {
    const kc = new TimedKubeConfig(this.timeoutMs);
    kc.loadFromClusterAndUser(
      {
        name: "writ-target",
        server: this.server.toString().replace(/\/$/, ""),
        caData: this.caData,
        skipTLSVerify: false,
      },
      { name: "writ-broker", token: t },
    );
    return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api) };
  }

  /** The clients; a projected ServiceAccount token file is rotated by the kubelet: re-read it first. */
  api(): Clients {
    if ("file" in this.cfg.token) {
      try {
        const fresh = readToken(this.cfg, this.env);
        if (fresh !== this.token) {
          this.token = fresh;
          this.clients = this.build(fresh);
        }
      } catch {
        // keep the last good token; the API server will say if it no longer works
      }
    }
    return this.clients;
  }

  create(l: Locator, body: KubernetesObject): Promise<KubernetesObject> {
    const c = this.api();
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
  }

  read(l: Locator): Promise<KubernetesObject> {
    const c = this.api();
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
  }

  /** Deletes `l` if it is still the object `uid` names (the precondition: never another object). */
  async remove(l: Locator, uid: string): Promise<void> {
    const c = this.api();
    const { name } = l;
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
  }

  /**
   * Deletes the object `l` names if it still is ours (labelled for `writ`, or the recorded uid).
   * Returns whether something was deleted; gone already, or someone else's, is not an error.
   */
  async removeOwned(l: Locator, writ: string): Promise<boolean> {
    let uid = l.uid;
    if (uid === undefined) {
      let current: KubernetesObject;
      try {
        current = await this.read(l);
      } catch (e) {
        if (apiCode(e) === 404) return false;
        throw apiRefusal(`reading ${describe(l)}`, e);
      }
      if (current.metadata?.labels?.[LABEL_WRIT] !== labelValue(writ)) return false;
      uid = current.metadata?.uid;
      if (!uid) return false;
    }
    try {
      await this.remove(l, uid);
      return true;
    } catch (e) {
      // 404: gone already; 409: the precondition failed, the name now holds another object
      if (apiCode(e) === 404 || apiCode(e) === 409) return false;
      throw apiRefusal(`deleting ${describe(l)}`, e);
    }
  }
}
