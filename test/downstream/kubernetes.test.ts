/**
 * The Kubernetes downstream issuer end to end, through the real @kubernetes/client-node against the
 * fake API server: RBAC objects and the Secret-bound token, the ledger's intent-then-result, use
 * allowed and refused by the fake's RBAC, revocation and kill ending the token at once, adoption on
 * 409, refusals with their reasons, and the configuration checks at start.
 */
import { afterEach, describe, expect, it } from "vitest";
import { isWritError } from "../../src/core/index.js";
import { kubernetesIssuer, objectName } from "../../src/downstream/kubernetes.js";
import { ERR_DOWNSTREAM_CONFIG, ERR_DOWNSTREAM_REFUSED } from "../../src/downstream/types.js";
import { type Harness, harness, MemoryLedger, writ } from "./kubernetes-support.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.fake.close();
  h = undefined;
});

async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: unknown; message: string }> {
  try {
    await p;
  } catch (e) {
    if (!isWritError(e)) throw e;
    return { code: e.code, reason: (e as unknown as { reason?: unknown }).reason, message: e.message };
  }
  throw new Error("expected a refusal");
}

describe("kubernetes issuer: issue", () => {
  it("creates the Secret, Role and RoleBinding for a namespaced grant and a Secret-bound token that can do exactly that", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:apps/deployments:get|patch", resource: "shop/web" }]);
    const now = new Date();
    const cred = await h.issuer.issue(w, now);
    expect(cred.system).toBe("kubernetes");
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    expect(cred.server).toBe(h.fake.url);
    // never later than the writ; the token is asked for the writ's remaining whole seconds
    expect(cred.expiration.getTime()).toBeLessThanOrEqual(w.expiresAt.getTime());
    expect(cred.expiration.getTime()).toBeGreaterThan(w.expiresAt.getTime() - 2000);
    expect(cred.notes).toEqual([]);
    const name = objectName(w.id);
    const [role] = h.fake.objects("rbac.authorization.k8s.io", "roles");
    expect(role?.metadata).toMatchObject({
      name,
      namespace: "shop",
      labels: { "writ.dev/writ": w.id, "writ.dev/agent": "deployer" },
    });
    expect(role?.rules).toEqual([
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "patch"], resourceNames: ["web"] },
    ]);
    const [rb] = h.fake.objects("rbac.authorization.k8s.io", "rolebindings");
    expect(rb).toMatchObject({
      metadata: { name, namespace: "shop" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name: "deployer", namespace: "agents" }],
    });
    expect(h.fake.objects("rbac.authorization.k8s.io", "clusterroles")).toEqual([]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "clusterrolebindings")).toEqual([]);
    const secrets = h.fake.objects("", "secrets");
    expect(secrets.map((s) => [s.metadata.namespace, s.metadata.name, s.type])).toEqual([
      ["agents", name, "Opaque"],
    ]);

    // the token does what the writ grants, and nothing else
    expect(h.fake.use(cred.token, "get", "apps", "deployments", "shop", "web")).toMatchObject({
      allowed: true,
    });
    expect(h.fake.use(cred.token, "patch", "apps", "deployments", "shop", "web")).toMatchObject({
      allowed: true,
    });
    expect(h.fake.use(cred.token, "delete", "apps", "deployments", "shop", "web")).toMatchObject({
      allowed: false,
      code: 403,
    });
    expect(h.fake.use(cred.token, "get", "apps", "deployments", "shop", "api")).toMatchObject({
      allowed: false,
      code: 403,
    });
    expect(h.fake.use(cred.token, "get", "apps", "deployments", "prod", "web")).toMatchObject({
      allowed: false,
      code: 403,
    });
    expect(h.fake.use(cred.token, "list", "apps", "deployments", "shop", undefined)).toMatchObject({
      allowed: false,
      code: 403,
    });

    // ledger: every object intended then created, locators never the token
    const recs = h.ledger.live();
    expect(recs.map((r) => r.kind).sort()).toEqual(["role", "rolebinding", "secret"]);
    for (const r of recs) {
      expect(r.state).toBe("created");
      expect(r.expiresAt).toEqual(w.expiresAt);
      expect(r.locator).toMatchObject({ name, uid: expect.any(String) });
      expect(JSON.stringify(r.locator)).not.toContain(cred.token);
    }
    expect(JSON.stringify(h.audit)).not.toContain(cred.token);
    expect(h.audit.map((a) => a.type)).toContain("downstream.credential_issued");
  });
});
