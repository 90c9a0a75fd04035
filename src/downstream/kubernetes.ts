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
import type { CoreV1Api, KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";
import { isWritError, q } from "../core/index.js";
import { writIntent } from "./intent.js";
import {
  apiCode,
  apiMessage,
  apiRefusal,
  apiRefused,
  describe,
  KubeApi,
  type Locator,
  RECORD_KIND,
  REQUEST_TIMEOUT_MS,
  sameContent,
} from "./kubernetes/api.js";
import { checkServer, configError, serviceAccountFor } from "./kubernetes/config.js";
import { LABEL_AGENT, LABEL_ENVIRONMENT, LABEL_WRIT, labelValue, objectName } from "./kubernetes/names.js";
import { type PolicyRule, type RbacPlan, rbacPlan } from "./kubernetes/rbac.js";
import { type DownstreamOutcome, issued, refusal, refused } from "./refusal.js";
import type {
  DownstreamCredential,
  DownstreamIssuer,
  DownstreamRecord,
  IssuerDeps,
  KubernetesDownstreamConfig,
  WritForIssuer,
} from "./types.js";

export { REQUEST_TIMEOUT_MS } from "./kubernetes/api.js";
export { LABEL_AGENT, LABEL_ENVIRONMENT, LABEL_WRIT, labelValue, objectName } from "./kubernetes/names.js";
export { type RbacPlan, rbacPlan, resourceScope } from "./kubernetes/rbac.js";

/** The TokenRequest API's documented floor for `expirationSeconds`. */
export const MIN_TOKEN_SECONDS = 600;

const RBAC_GROUP = "rbac.authorization.k8s.io";
const RBAC_VERSION = `${RBAC_GROUP}/v1`;

export function kubernetesIssuer(
  cfg: KubernetesDownstreamConfig,
  deps: IssuerDeps,
): Promise<DownstreamIssuer> {
  return kubernetesIssuerWith(cfg, deps, {});
}

/** The CA (base64) after the section's checks, each a coded configuration error. */
function checkedConfig(cfg: KubernetesDownstreamConfig): string | undefined {
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

  return caData;
}

/** `kubernetesIssuer` with tunables for tests (a shorter request timeout). */
export async function kubernetesIssuerWith(
  cfg: KubernetesDownstreamConfig,
  deps: IssuerDeps,
  opts: { readonly timeoutMs?: number },
): Promise<DownstreamIssuer> {
  const url = checkServer(cfg.server);
  const caData = checkedConfig(cfg);
  const api = new KubeApi(cfg, deps.env ?? process.env, url, caData, opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
  // namespaces where Secrets are made, when no mapping templates the namespace (kill lists there only)
  const secretNamespaces = [...cfg.serviceAccounts.values()].some((sa) =>
    sa.split("/")[0]!.includes("{agent}"),
  )
    ? undefined
    : [...new Set([...cfg.serviceAccounts.values()].map((sa) => sa.split("/")[0]!))];

  return new KubernetesIssuer(cfg, deps, api, caData, secretNamespaces);
}

/** What one issue made so far: each object's record and where it is (undone in reverse on failure). */
type Made = { record: DownstreamRecord; locator: Locator }[];

/** One writ's issue: its RBAC plan, its lifetime left, its ServiceAccount. */
interface Planned {
  readonly plan: RbacPlan;
  readonly remaining: number;
  readonly sa: { readonly namespace: string; readonly name: string };
}

class KubernetesIssuer implements DownstreamIssuer {
  readonly system = "kubernetes" as const;

  constructor(
    private readonly cfg: KubernetesDownstreamConfig,
    private readonly deps: IssuerDeps,
    private readonly k: KubeApi,
    private readonly caData: string | undefined,
    /** Namespaces where Secrets are made, when no mapping templates the namespace (kill lists there only). */
    private readonly secretNamespaces: readonly string[] | undefined,
  ) {}

  private async audit(type: string, data: Record<string, unknown>): Promise<void> {
    await this.deps.audit(type, { system: "kubernetes", ...data });
  }

  /**
   * The writ's objects, then its token: a Secret, a Role and RoleBinding per namespace (a
   * ClusterRole and binding for cluster-wide grants), a TokenRequest bound to the Secret. A refused
   * step undoes the ones before it.
   */
  async issue(writ: WritForIssuer, now: Date): Promise<DownstreamOutcome<DownstreamCredential>> {
    const step = this.planned(writ, now);
    if (!step.ok) return step;
    const planned = step.value;
    const made: Made = [];
    let out: DownstreamOutcome<DownstreamCredential>;
    try {
      const secret = await this.objects(writ, planned, made);
      out = secret.ok ? await this.credential(writ, now, planned, secret.value) : secret;
    } catch (e) {
      await this.undo(writ, made);
      throw e;
    }
    if (!out.ok) await this.undo(writ, made);
    return out;
  }

  /** The RBAC plan of the writ's grants, its lifetime left and its agent's ServiceAccount, or a refusal. */
  private planned(writ: WritForIssuer, now: Date): DownstreamOutcome<Planned> {
    const plan = rbacPlan(writ.grants, writ.denies);
    if (!plan.ok) return plan;
    const remaining = Math.floor((writ.expiresAt.getTime() - now.getTime()) / 1000);
    if (remaining <= 0) return refused("downstream_scope_exceeds_writ", `writ ${q(writ.id)} has expired`);
    const sa = serviceAccountFor(this.cfg, writ.agent);
    if (!sa.ok) return sa;
    return { ok: true, value: { plan: plan.value, remaining, sa: sa.value } };
  }

  /** The metadata of every object of `writ`: its name, labels and annotations. */
  private meta(writ: WritForIssuer, namespace?: string): V1ObjectMeta {
    const name = objectName(writ.id);
    return {
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
    };
  }

  /** The writ's Secret and RBAC objects, in order; the Secret (which the token is bound to). */
  private async objects(
    writ: WritForIssuer,
    { plan, sa }: Planned,
    made: Made,
  ): Promise<DownstreamOutcome<KubernetesObject>> {
    const name = objectName(writ.id);
    const meta = (namespace?: string) => this.meta(writ, namespace);
    const subjects = [{ kind: "ServiceAccount", name: sa.name, namespace: sa.namespace }];
    const secretLoc: Locator = { apiVersion: "v1", kind: "Secret", namespace: sa.namespace, name };
    const wanted: [Locator, KubernetesObject][] = [
      [
        secretLoc,
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: meta(sa.namespace),
          type: "Opaque",
        } as KubernetesObject,
      ],
    ];
    const roleRef = (kind: "Role" | "ClusterRole") => ({ apiGroup: RBAC_GROUP, kind, name });
    for (const [ns, rules] of plan.namespaces) {
      wanted.push(
        [
          { apiVersion: RBAC_VERSION, kind: "Role", namespace: ns, name },
          {
            apiVersion: RBAC_VERSION,
            kind: "Role",
            metadata: meta(ns),
            rules: rules as PolicyRule[],
          } as KubernetesObject,
        ],
        [
          { apiVersion: RBAC_VERSION, kind: "RoleBinding", namespace: ns, name },
          {
            apiVersion: RBAC_VERSION,
            kind: "RoleBinding",
            metadata: meta(ns),
            roleRef: roleRef("Role"),
            subjects,
          } as KubernetesObject,
        ],
      );
    }
    if (plan.cluster.length > 0) {
      wanted.push(
        [
          { apiVersion: RBAC_VERSION, kind: "ClusterRole", name },
          {
            apiVersion: RBAC_VERSION,
            kind: "ClusterRole",
            metadata: meta(),
            rules: plan.cluster as PolicyRule[],
          } as KubernetesObject,
        ],
        [
          { apiVersion: RBAC_VERSION, kind: "ClusterRoleBinding", name },
          {
            apiVersion: RBAC_VERSION,
            kind: "ClusterRoleBinding",
            metadata: meta(),
            roleRef: roleRef("ClusterRole"),
            subjects,
          } as KubernetesObject,
        ],
      );
    }
    // one after the other, the Secret first: a refusal stops here, and `issue` undoes what was made
    let secret: KubernetesObject | undefined;
    for (const [l, body] of wanted) {
      const obj = await this.ensure(writ, made, l, body);
      if (!obj.ok) return obj;
      secret ??= obj.value;
    }
    return issued(secret!);
  }

  /** Intent, create (or adopt our own on 409), created: one object. Returns the live object. */
  private async ensure(
    writ: WritForIssuer,
    made: Made,
    l: Locator,
    body: KubernetesObject,
  ): Promise<DownstreamOutcome<KubernetesObject>> {
    const record = await this.deps.ledger.intend(
      writIntent(writ, {
        id: `k8s_${randomBytes(12).toString("base64url")}`,
        system: "kubernetes",
        kind: RECORD_KIND[l.kind],
        locator: { ...l },
      }),
    );
    let obj: KubernetesObject;
    let adopted = false;
    try {
      obj = await this.k.create(l, body);
    } catch (e) {
      const code = apiCode(e);
      if (code === undefined || code >= 500) {
        // no answer, or the server failed: the object may exist (or appear later), so the
        // intent stays for the reaper, which looks it up by name and label
        return apiRefused(`creating ${describe(l)}`, e);
      }
      if (code !== 409) {
        // the API server refused: nothing was created
        await this.deps.ledger.removed(record.id);
        return apiRefused(`creating ${describe(l)}`, e);
      }
      try {
        obj = await this.k.read(l);
      } catch (e2) {
        await this.deps.ledger.removed(record.id);
        return apiRefused(`reading ${describe(l)} after a conflict`, e2);
      }
      if (obj.metadata?.labels?.[LABEL_WRIT] !== labelValue(writ.id)) {
        // someone else's object under our name: never adopt, never delete it
        await this.deps.ledger.removed(record.id);
        return refused(
          "downstream_unavailable",
          `${describe(l)} already exists and does not belong to writ ${q(writ.id)}`,
        );
      }
      if (!sameContent(obj, body)) {
        // labelled as ours but not what this writ needs (someone who can write RBAC made it, or
        // edited it): binding to it could grant more than the writ, so refuse and leave it
        await this.deps.ledger.removed(record.id);
        return refused(
          "downstream_scope_exceeds_writ",
          `${describe(l)} exists with this writ's label but not with this writ's rules or subjects`,
        );
      }
      adopted = true;
    }
    const uid = obj.metadata?.uid;
    const locator: Locator = { ...l, uid };
    await this.deps.ledger.created(record.id, { ...locator, resourceVersion: obj.metadata?.resourceVersion });
    made.push({ record, locator });
    await this.audit(adopted ? "downstream.object_adopted" : "downstream.object_created", {
      writ: writ.id,
      agent: writ.agent,
      ...locator,
    });
    return issued(obj);
  }

  /** The TokenRequest bound to the Secret, its notes and audit: the credential. */
  private async credential(
    writ: WritForIssuer,
    now: Date,
    { plan, remaining, sa }: Planned,
    secret: KubernetesObject,
  ): Promise<DownstreamOutcome<DownstreamCredential>> {
    const name = objectName(writ.id);
    const seconds = Math.max(remaining, MIN_TOKEN_SECONDS);
    let answer: Awaited<ReturnType<CoreV1Api["createNamespacedServiceAccountToken"]>>;
    try {
      answer = await this.k.api().core.createNamespacedServiceAccountToken({
        name: sa.name,
        namespace: sa.namespace,
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            audiences: this.cfg.audience !== undefined ? [this.cfg.audience] : [],
            expirationSeconds: seconds,
            boundObjectRef: { apiVersion: "v1", kind: "Secret", name, uid: secret.metadata?.uid },
          },
        },
      });
    } catch (e) {
      return apiRefused(`TokenRequest for ServiceAccount ${sa.namespace}/${sa.name}`, e);
    }
    const token = answer.status?.token;
    if (typeof token !== "string" || token === "") {
      return refused("downstream_unavailable", "the TokenRequest answer holds no token");
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
    await this.audit("downstream.credential_issued", {
      writ: writ.id,
      agent: writ.agent,
      serviceAccount: `${sa.namespace}/${sa.name}`,
      expirationSeconds: seconds,
      expiresAt: writ.expiresAt.toISOString(),
      roles: [...plan.namespaces.keys()],
      clusterRole: plan.cluster.length > 0,
    });
    return issued({
      system: "kubernetes",
      token,
      expiration: new Date(Math.min(tokenExpiry.getTime(), writ.expiresAt.getTime())),
      server: this.cfg.server,
      caData: this.caData,
      notes,
    });
  }

  /** Undoes an attempt (Secret first), so a refused issue leaves nothing behind. */
  private async undo(writ: WritForIssuer, made: Made): Promise<void> {
    for (const m of [...made]
      .reverse()
      .sort((a, b) => Number(b.locator.kind === "Secret") - Number(a.locator.kind === "Secret"))) {
      try {
        await this.k.removeOwned(m.locator, writ.id);
        await this.deps.ledger.removed(m.record.id);
      } catch {
        // left to the reaper: the record stays `created` until its object is gone
      }
    }
  }

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
    const deleted = await this.k.removeOwned(l, record.writ);
    await this.deps.ledger.removed(record.id);
    await this.audit("downstream.object_removed", {
      writ: record.writ,
      agent: record.agent,
      apiVersion: l.apiVersion,
      kind: l.kind,
      namespace: l.namespace,
      name: l.name,
      existed: deleted,
    });
  }

  async kill(scope: { readonly writ?: string; readonly agent?: string }, now: Date): Promise<void> {
    void now;
    const selector =
      scope.writ !== undefined
        ? `${LABEL_WRIT}=${labelValue(scope.writ)}`
        : scope.agent !== undefined
          ? `${LABEL_AGENT}=${labelValue(scope.agent)}`
          : LABEL_WRIT;
    const c = this.k.api();
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
      if (this.secretNamespaces) {
        for (const ns of this.secretNamespaces) {
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
        await this.k.remove(l, l.uid!);
        removed++;
      } catch (e) {
        if (apiCode(e) === 404 || apiCode(e) === 409) continue;
        failures.push(`${describe(l)}: ${apiMessage(e)}`);
      }
    }
    await this.audit("downstream.killed", {
      scope: { ...scope },
      selector,
      removed,
      failed: failures.length,
    });
    if (failures.length > 0) {
      throw refusal(
        "downstream_unavailable",
        `kill left ${failures.length} object(s): ${failures.slice(0, 3).join("; ")}`,
      );
    }
  }
}
