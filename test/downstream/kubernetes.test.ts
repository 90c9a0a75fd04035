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
import {
  type Harness,
  harness,
  live,
  type MemoryLedger,
  memoryLedger,
  record,
  writ,
} from "./kubernetes-support.js";
import { credentialOf, refusalOf } from "./outcome.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.fake.close();
  h = undefined;
});

const refusal = refusalOf;

describe("kubernetes issuer: issue", () => {
  it("creates the Secret, Role and RoleBinding for a namespaced grant and a Secret-bound token that can do exactly that", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:apps/deployments:get|patch", resource: "shop/web" }], {
      sponsor: "alice",
    });
    const now = new Date();
    const cred = await credentialOf(h.issuer.issue(w, now));
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
      labels: { "writ.dev/writ": w.id, "writ.dev/agent": "deployer", "writ.dev/environment": "prod" },
      // what the analyzer attributes the binding's uses with (src/analyzer/writs.ts)
      annotations: {
        "writ.dev/writ-id": w.id,
        "writ.dev/agent-id": "deployer",
        "writ.dev/playbook": "rollout",
        "writ.dev/sponsor": "alice",
      },
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
    const recs = live(h.ledger);
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

describe("kubernetes issuer: cluster-wide grants", () => {
  it("makes a ClusterRole and ClusterRoleBinding only for a `*` namespace, and no Role", async () => {
    h = await harness();
    const w = writ([
      { action: "k8s:core/pods:get|list", resource: "*/*" },
      { action: "k8s:core/pods/log:get", resource: "shop/*" },
    ]);
    const cred = await credentialOf(h.issuer.issue(w, new Date()));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    const [cr] = h.fake.objects("rbac.authorization.k8s.io", "clusterroles");
    expect(cr?.rules).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "clusterrolebindings")).toHaveLength(1);
    const roles = h.fake.objects("rbac.authorization.k8s.io", "roles");
    expect(roles.map((r) => [r.metadata.namespace, r.rules])).toEqual([
      ["shop", [{ apiGroups: [""], resources: ["pods/log"], verbs: ["get"] }]],
    ]);
    expect(h.fake.use(cred.token, "list", "", "pods", "prod", undefined).allowed).toBe(true);
    expect(h.fake.use(cred.token, "get", "", "pods/log", "shop", "web-1").allowed).toBe(true);
    expect(h.fake.use(cred.token, "get", "", "pods/log", "prod", "web-1").allowed).toBe(false);
    expect(h.fake.use(cred.token, "get", "", "secrets", "prod", "db").allowed).toBe(false);
    expect(h.fake.use(cred.token, "delete", "", "pods", "prod", "web-1").allowed).toBe(false);
    expect(
      live(h.ledger)
        .map((r) => r.kind)
        .sort(),
    ).toEqual(["clusterrole", "clusterrolebinding", "role", "rolebinding", "secret"]);
  });
});

describe("kubernetes issuer: revocation and kill end the token at once", () => {
  it("revoking the writ's records (Secret first) refuses the very next use, not at the token's expiry", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]);
    const cred = await credentialOf(h.issuer.issue(w, new Date()));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    expect(h.fake.use(cred.token, "get", "", "pods", "shop", "a")).toMatchObject({
      allowed: true,
      code: 200,
    });
    h.ledger.revokeWrit(w.id);
    const due = await h.ledger.due(new Date());
    expect(due).toHaveLength(3);
    for (const r of due) await h.issuer.revoke(r, new Date());
    // the token lives as long as the writ (far past this test): a 401 now is the revocation's
    expect(h.fake.use(cred.token, "get", "", "pods", "shop", "a")).toMatchObject({
      allowed: false,
      code: 401,
    });
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")).toEqual([]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "rolebindings")).toEqual([]);
    expect(live(h.ledger)).toEqual([]);
    // idempotent: gone already is fine
    for (const r of due) await h.issuer.revoke(r, new Date());
    expect(h.audit.filter((a) => a.type === "downstream.object_removed").map((a) => a.data.existed)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it("deleting the bound Secret alone is enough: the token is refused although its Role remains", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]);
    const cred = await credentialOf(h.issuer.issue(w, new Date()));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    const secret = live(h.ledger).find((r) => r.kind === "secret")!;
    await h.issuer.revoke(secret, new Date());
    expect(h.fake.use(cred.token, "get", "", "pods", "shop", "a")).toMatchObject({
      allowed: false,
      code: 401,
    });
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")).toHaveLength(1);
  });

  it("kill by writ removes that writ's objects only; by agent that agent's; with no scope everything writ made", async () => {
    h = await harness();
    const a1 = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]);
    const a2 = writ([{ action: "k8s:core/pods:get", resource: "*/*" }]);
    const b1 = writ([{ action: "k8s:core/pods:get", resource: "prod/*" }], { agent: "fixer" });
    const c = {
      a1: await credentialOf(h.issuer.issue(a1, new Date())),
      a2: await credentialOf(h.issuer.issue(a2, new Date())),
      b1: await credentialOf(h.issuer.issue(b1, new Date())),
    };
    const tok = (k: keyof typeof c) => (c[k] as { token: string }).token;
    // an object writ did not make, with no writ label, must survive every kill
    h.fake.seed("", "secrets", {
      metadata: { name: "unrelated", namespace: "agents", labels: { app: "x" } },
    });

    await h.issuer.kill({ writ: a1.id }, new Date());
    expect(h.fake.use(tok("a1"), "get", "", "pods", "shop", "p").code).toBe(401);
    expect(h.fake.use(tok("a2"), "get", "", "pods", "shop", "p").code).toBe(200);
    expect(h.fake.use(tok("b1"), "get", "", "pods", "prod", "p").code).toBe(200);

    await h.issuer.kill({ agent: "deployer" }, new Date());
    expect(h.fake.use(tok("a2"), "get", "", "pods", "shop", "p").code).toBe(401);
    expect(h.fake.use(tok("b1"), "get", "", "pods", "prod", "p").code).toBe(200);
    expect(h.fake.objects("rbac.authorization.k8s.io", "clusterroles")).toEqual([]);

    await h.issuer.kill({}, new Date());
    expect(h.fake.use(tok("b1"), "get", "", "pods", "prod", "p").code).toBe(401);
    expect(h.fake.objects("", "secrets").map((s) => s.metadata.name)).toEqual(["unrelated"]);
    for (const [g, r] of [
      ["rbac.authorization.k8s.io", "roles"],
      ["rbac.authorization.k8s.io", "rolebindings"],
      ["rbac.authorization.k8s.io", "clusterrolebindings"],
    ] as const) {
      expect(h.fake.objects(g, r)).toEqual([]);
    }
    // the ledger's records are left to the reaper, whose revoke finds them gone
    for (const r of await h.ledger.due(new Date(Date.now() + 7200_000))) await h.issuer.revoke(r, new Date());
    expect(live(h.ledger)).toEqual([]);
  });
});

describe("kubernetes issuer: crash recovery and conflicts", () => {
  it("adopts its own objects on 409 (a crash after create, before `created`), and the token works", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/configmaps:get", resource: "shop/settings" }]);
    await credentialOf(h.issuer.issue(w, new Date()));
    // the same writ redeemed again (or retried after a crash): every create answers 409
    const again = await credentialOf(h.issuer.issue(w, new Date()));
    if (again.system !== "kubernetes") throw new Error("unreachable");
    expect(h.audit.filter((a) => a.type === "downstream.object_adopted")).toHaveLength(3);
    expect(h.fake.use(again.token, "get", "", "configmaps", "shop", "settings").allowed).toBe(true);
    expect(h.fake.objects("", "secrets")).toHaveLength(1);
  });

  it("never adopts nor deletes another's object under the writ's name: refused, and this attempt is undone", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/configmaps:get", resource: "shop/settings" }]);
    const name = objectName(w.id);
    h.fake.seed("rbac.authorization.k8s.io", "rolebindings", {
      metadata: { name, namespace: "shop", labels: { owner: "someone-else" } },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "x" },
      subjects: [],
    });
    const r = await refusal(h.issuer.issue(w, new Date()));
    expect(r.code).toBe(ERR_DOWNSTREAM_REFUSED);
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain("does not belong to writ");
    expect(h.fake.objects("rbac.authorization.k8s.io", "rolebindings").map((b) => b.metadata.labels)).toEqual(
      [{ owner: "someone-else" }],
    );
    // the Secret and Role made by this attempt were removed again, and the ledger says so
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")).toEqual([]);
    expect(live(h.ledger)).toEqual([]);
  });

  it("a record left `intended` by a crash is reaped: its object is found by name and label and deleted", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]);
    const name = objectName(w.id);
    // the crash: the intent was recorded and the create reached the API server, `created` never ran
    const rec = await h.ledger.intend({
      id: "k8s_crash",
      system: "kubernetes",
      environment: "prod",
      writ: w.id,
      agent: w.agent,
      kind: "secret",
      locator: { apiVersion: "v1", kind: "Secret", namespace: "agents", name },
      expiresAt: new Date(Date.now() - 1000),
    });
    h.fake.seed("", "secrets", {
      metadata: { name, namespace: "agents", labels: { "writ.dev/writ": w.id } },
    });
    // and a record left intended whose create never happened
    const ghost = await h.ledger.intend({
      ...rec,
      id: "k8s_ghost",
      locator: { ...rec.locator, name: "writ-never-made" },
    });
    const due = await h.ledger.due(new Date());
    expect(due.map((r) => r.id).sort()).toEqual(["k8s_crash", "k8s_ghost"]);
    for (const r of due) await h.issuer.revoke(r, new Date());
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(record(h.ledger, ghost.id)?.state).toBe("removed");
    expect(live(h.ledger)).toEqual([]);
  });

  it("a crash right after the create (before `created` is recorded): a restarted issuer's reaper pass removes it", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]);
    // the process dies when it would record `created` for the Secret it just made
    const crashing: MemoryLedger = {
      ...h.ledger,
      created: async () => {
        throw new Error("process killed");
      },
    };
    const before = await kubernetesIssuer(h.cfg, {
      ledger: crashing,
      audit: async () => undefined,
      env: { K8S_BROKER_TOKEN: h.fake.adminToken },
    });
    await expect(before.issue(w, new Date())).rejects.toThrow("process killed");
    expect(h.fake.objects("", "secrets")).toHaveLength(1);
    expect(live(h.ledger).map((r) => [r.kind, r.state])).toEqual([["secret", "intended"]]);
    // restart: a new issuer over the same ledger; the writ is revoked, the reaper runs
    const after = await kubernetesIssuer(h.cfg, {
      ledger: h.ledger,
      audit: async () => undefined,
      env: { K8S_BROKER_TOKEN: h.fake.adminToken },
    });
    h.ledger.revokeWrit(w.id);
    for (const r of await h.ledger.due(new Date())) await after.revoke(r, new Date());
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(live(h.ledger)).toEqual([]);
  });

  it("refuses to revoke a record whose locator is not a Kubernetes object it makes", async () => {
    h = await harness();
    const base = {
      id: "k8s_bad",
      system: "kubernetes" as const,
      environment: "prod",
      writ: "writ_x",
      agent: "deployer",
      kind: "secret",
      state: "created" as const,
      expiresAt: new Date(),
      createdAt: new Date(),
    };
    for (const locator of [
      { apiVersion: "v1", kind: "toString", name: "x" },
      { apiVersion: "v1", kind: "Pod", namespace: "shop", name: "x" },
      { apiVersion: "v1", kind: "Secret", name: "x" },
      {},
    ]) {
      const r = await refusal(h.issuer.revoke({ ...base, locator }, new Date()));
      expect(r.code).toBe(ERR_DOWNSTREAM_REFUSED);
      expect(r.message).toContain("no Kubernetes locator");
    }
  });

  it("an `intended` record whose name now holds someone else's object leaves that object alone", async () => {
    h = await harness();
    h.fake.seed("", "secrets", { metadata: { name: "writ-x", namespace: "agents" } });
    const rec = await h.ledger.intend({
      id: "k8s_other",
      system: "kubernetes",
      environment: "prod",
      writ: "writ_x",
      agent: "deployer",
      kind: "secret",
      locator: { apiVersion: "v1", kind: "Secret", namespace: "agents", name: "writ-x" },
      expiresAt: new Date(),
    });
    await h.issuer.revoke(rec, new Date());
    expect(h.fake.objects("", "secrets").map((s) => s.metadata.name)).toEqual(["writ-x"]);
    expect(record(h.ledger, "k8s_other")?.state).toBe("removed");
  });
});

describe("kubernetes issuer: lifetime and audience", () => {
  it("asks for 600 s when the writ is shorter, says so in the notes, and still ends at the writ's expiry", async () => {
    h = await harness();
    const now = new Date();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }], {
      expiresAt: new Date(now.getTime() + 120_000),
    });
    const cred = await credentialOf(h.issuer.issue(w, now));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    expect(cred.expiration).toEqual(w.expiresAt);
    expect(cred.notes.join(" ")).toMatch(/at least 600 s/);
    expect(h.audit.find((a) => a.type === "downstream.credential_issued")?.data.expirationSeconds).toBe(600);
    // at the writ's expiry the reaper deletes the Secret, and the token is refused
    for (const r of await h.ledger.due(w.expiresAt)) await h.issuer.revoke(r, w.expiresAt);
    expect(h.fake.use(cred.token, "get", "", "pods", "shop", "a").code).toBe(401);
  });

  it("refuses a writ that has already expired", async () => {
    h = await harness();
    const now = new Date();
    const w = writ([{ action: "k8s:core/pods:get", resource: "shop/*" }], { expiresAt: now });
    const r = await refusal(h.issuer.issue(w, now));
    expect(r.reason).toBe("downstream_scope_exceeds_writ");
    expect(h.fake.objects("", "secrets")).toEqual([]);
  });

  it("passes the configured audience: a token for another audience is not accepted by the API server", async () => {
    h = await harness({ audience: "https://vault.example" });
    const cred = await credentialOf(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    expect(h.fake.use(cred.token, "get", "", "pods", "shop", "a").code).toBe(401);
    await h.fake.close();
    h = await harness({ audience: "https://kubernetes.default.svc.cluster.local" });
    const ok = await credentialOf(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    if (ok.system !== "kubernetes") throw new Error("unreachable");
    expect(h.fake.use(ok.token, "get", "", "pods", "shop", "a").code).toBe(200);
  });
});

describe("kubernetes issuer: refusals", () => {
  const cases: [string, Parameters<typeof writ>[0], Partial<Parameters<typeof writ>[1]>, string, RegExp][] = [
    [
      "no k8s grants",
      [{ action: "github:contents:read", resource: "acme/x" }],
      {},
      "downstream_no_grants",
      /no `k8s:` grants/,
    ],
    [
      "a glob inside an object name",
      [{ action: "k8s:core/pods:get", resource: "shop/web-*" }],
      {},
      "downstream_scope_exceeds_writ",
      /resourceNames/,
    ],
    [
      "a glob inside a namespace",
      [{ action: "k8s:core/pods:get", resource: "shop-*/web" }],
      {},
      "downstream_scope_exceeds_writ",
      /namespace/,
    ],
    [
      "a glob inside a resource",
      [{ action: "k8s:apps/deploy*:get", resource: "shop/web" }],
      {},
      "downstream_scope_exceeds_writ",
      /resource pattern/,
    ],
    [
      "a deny that cuts into a grant",
      [{ action: "k8s:core/secrets:get", resource: "shop/*" }],
      { denies: [{ action: "k8s:core/secrets:get", resource: "shop/db-password" }] },
      "downstream_scope_exceeds_writ",
      /overlap deny/,
    ],
    [
      "a deny that covers every grant",
      [{ action: "k8s:core/secrets:get", resource: "shop/*" }],
      { denies: [{ action: "k8s:core/secrets:*", resource: "*" }] },
      "downstream_no_grants",
      /cut by a deny/,
    ],
    [
      "an agent without a ServiceAccount mapping",
      [{ action: "k8s:core/pods:get", resource: "shop/*" }],
      { agent: "Bad Agent" },
      "downstream_not_configured",
      /not `namespace\/name`/,
    ],
  ];
  for (const [what, grants, over, reason, message] of cases) {
    it(`refuses ${what} (${reason}) and creates nothing`, async () => {
      h = await harness();
      const r = await refusal(h.issuer.issue(writ(grants, over), new Date()));
      expect(r.code).toBe(ERR_DOWNSTREAM_REFUSED);
      expect(r.reason).toBe(reason);
      expect(r.message.startsWith(`${reason}: `)).toBe(true);
      expect(r.message).toMatch(message);
      expect(h.fake.objects("", "secrets")).toEqual([]);
      expect(h.ledger.all().length).toBe(0);
    });
  }

  it("drops the verbs a deny wholly covers and grants the rest", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:apps/deployments:get|patch|delete", resource: "shop/web" }], {
      denies: [{ action: "k8s:*:delete", resource: "*" }],
    });
    const cred = await credentialOf(h.issuer.issue(w, new Date()));
    if (cred.system !== "kubernetes") throw new Error("unreachable");
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")[0]?.rules).toEqual([
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "patch"], resourceNames: ["web"] },
    ]);
    expect(h.fake.use(cred.token, "delete", "apps", "deployments", "shop", "web").allowed).toBe(false);
  });

  it("refuses when no mapping names the agent and there is no `*`", async () => {
    h = await harness({ serviceAccounts: new Map([["deployer", "agents/deployer"]]) });
    const r = await refusal(
      h.issuer.issue(
        writ([{ action: "k8s:core/pods:get", resource: "shop/*" }], { agent: "other" }),
        new Date(),
      ),
    );
    expect(r.reason).toBe("downstream_not_configured");
  });

  it("a namespace the cluster lacks: 404 → downstream_unavailable, and the Secret made before is removed", async () => {
    h = await harness();
    const r = await refusal(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "nowhere/*" }]), new Date()),
    );
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain('namespaces \\"nowhere\\" not found'.replace(/\\/g, ""));
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(live(h.ledger)).toEqual([]);
  });

  it("a missing ServiceAccount: the TokenRequest's 404 is downstream_unavailable and everything is undone", async () => {
    h = await harness({ serviceAccounts: new Map([["*", "agents/ghost"]]) });
    const r = await refusal(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain("TokenRequest");
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")).toEqual([]);
    expect(h.fake.objects("", "secrets")).toEqual([]);
    expect(live(h.ledger)).toEqual([]);
  });

  it("an API server error is downstream_unavailable, never a credential; the uncertain intent is left for the reaper", async () => {
    h = await harness();
    h.fake.failNext(1);
    const r = await refusal(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain("HTTP 500");
    // a 500 does not say whether the Secret was created: its record stays `intended`
    const left = live(h.ledger);
    expect(left.map((x) => [x.kind, x.state])).toEqual([["secret", "intended"]]);
    // the reaper's pass looks it up (404 here) and marks it removed
    h.ledger.revokeWrit(left[0]!.writ);
    for (const x of await h.ledger.due(new Date())) await h.issuer.revoke(x, new Date());
    expect(live(h.ledger)).toEqual([]);
  });

  it("an API server that does not answer: the call is aborted after the timeout, refused, never hung", async () => {
    h = await harness({}, { timeoutMs: 300 });
    h.fake.hangNext(1);
    // the fake never answers that call: only the issuer's own 300 ms timeout can end it
    const r = await refusal(
      h.issuer.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    expect(r.reason).toBe("downstream_unavailable");
    expect(r.message).toContain("no answer in time");
    expect(live(h.ledger).map((x) => x.state)).toEqual(["intended"]);
  });
});

describe("kubernetes issuer: configuration at start", () => {
  const base = (url: string) => ({
    server: url,
    token: { env: "TOK" } as const,
    serviceAccounts: new Map([["*", "agents/a"]]),
  });
  const deps = (env: Record<string, string | undefined>) => ({
    ledger: memoryLedger(),
    audit: async () => undefined,
    env,
  });
  async function configError(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      if (isWritError(e, ERR_DOWNSTREAM_CONFIG)) return e.message;
      throw e;
    }
    throw new Error("expected ERR_DOWNSTREAM_CONFIG");
  }

  it("refuses a missing or empty token, an unreadable CA or token file, a non-https server, an empty mapping", async () => {
    expect(await configError(kubernetesIssuer(base("https://k8s.example"), deps({})))).toMatch(
      /`TOK` is not set/,
    );
    expect(await configError(kubernetesIssuer(base("https://k8s.example"), deps({ TOK: "  " })))).toMatch(
      /empty/,
    );
    expect(await configError(kubernetesIssuer(base("https://k8s.example"), deps({ TOK: "a b" })))).toMatch(
      /whitespace/,
    );
    expect(
      await configError(
        kubernetesIssuer({ ...base("https://k8s.example"), token: { file: "/nonexistent/token" } }, deps({})),
      ),
    ).toMatch(/token file `\/nonexistent\/token` cannot be read: ENOENT/);
    expect(
      await configError(
        kubernetesIssuer(
          { ...base("https://k8s.example"), caFile: "/nonexistent/ca.pem" },
          deps({ TOK: "t" }),
        ),
      ),
    ).toMatch(/caFile/);
    expect(await configError(kubernetesIssuer(base("http://k8s.example"), deps({ TOK: "t" })))).toMatch(
      /https/,
    );
    expect(await configError(kubernetesIssuer(base("https://k8s.example/x?y"), deps({ TOK: "t" })))).toMatch(
      /no credentials, query/,
    );
    expect(await configError(kubernetesIssuer(base("not a url"), deps({ TOK: "t" })))).toMatch(/not a URL/);
    expect(
      await configError(
        kubernetesIssuer({ ...base("https://k8s.example"), serviceAccounts: new Map() }, deps({ TOK: "t" })),
      ),
    ).toMatch(/serviceAccounts/);
    expect(
      await configError(
        kubernetesIssuer(
          { ...base("https://k8s.example"), serviceAccounts: new Map([["*", "justname"]]) },
          deps({ TOK: "t" }),
        ),
      ),
    ).toMatch(/namespace\/name/);
  });

  it("reads the token from a file, and verifies the API server's certificate against caFile", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    h = await harness();
    const dir = mkdtempSync(join(tmpdir(), "writ-k8s-test-"));
    writeFileSync(join(dir, "token"), `${h.fake.adminToken}\n`);
    const fromFile = await kubernetesIssuer(
      { ...h.cfg, token: { file: join(dir, "token") } },
      { ledger: memoryLedger(), audit: async () => undefined },
    );
    const cred = await credentialOf(
      fromFile.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    expect(cred.system).toBe("kubernetes");
    // a wrong broker token: the API server's 401, as downstream_unavailable
    writeFileSync(join(dir, "token"), "not-the-token\n");
    expect(
      (await refusal(fromFile.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date())))
        .message,
    ).toContain("HTTP 401");
    // without the CA the self-signed server is not trusted: no request reaches it
    const untrusted = await kubernetesIssuer(
      { ...h.cfg, caFile: undefined },
      {
        ledger: memoryLedger(),
        audit: async () => undefined,
        env: { K8S_BROKER_TOKEN: h.fake.adminToken },
      },
    );
    const before = h.fake.requests.length;
    const r = await refusal(
      untrusted.issue(writ([{ action: "k8s:core/pods:get", resource: "shop/*" }]), new Date()),
    );
    expect(r.reason).toBe("downstream_unavailable");
    expect(h.fake.requests.length).toBe(before);
  });
});

describe("kubernetes issuer: adoption checks content", () => {
  it("refuses to adopt a Role labelled for the writ whose rules are broader, and leaves it alone", async () => {
    h = await harness();
    const w = writ([{ action: "k8s:core/configmaps:get", resource: "shop/settings" }]);
    const name = objectName(w.id);
    // someone who can write Roles in `shop` guessed the writ's name and label, with broader rules
    h.fake.seed("rbac.authorization.k8s.io", "roles", {
      metadata: { name, namespace: "shop", labels: { "writ.dev/writ": w.id } },
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    });
    const r = await refusal(h.issuer.issue(w, new Date()));
    expect(r.reason).toBe("downstream_scope_exceeds_writ");
    expect(r.message).toContain("not with this writ's rules");
    expect(h.fake.objects("rbac.authorization.k8s.io", "roles")[0]?.rules).toEqual([
      { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
    ]);
    expect(h.fake.objects("rbac.authorization.k8s.io", "rolebindings")).toEqual([]);
    expect(h.fake.objects("", "secrets")).toEqual([]);
  });
});
