/**
 * The fake API server itself, driven by the real @kubernetes/client-node: it must answer the
 * documented shapes and status codes and refuse what the real API server refuses, or the issuer's
 * tests would prove nothing. Each case states the real server's behaviour it reproduces.
 */
import { readFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { ApiException, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeKubernetes, startFakeKubernetes } from "../fakes/kubernetes.js";

let fake: FakeKubernetes;
let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;

function clients(token: string) {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    { name: "fake", server: fake.url, caFile: fake.caFile, skipTLSVerify: false },
    { name: "u", token },
  );
  return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api) };
}

/** The `Status` of a failed call: its HTTP code, reason and (for 422) the fields of its causes. */
async function status(p: Promise<unknown>): Promise<{ code: number; reason: string; fields: string[] }> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    // the client keeps no body for codes its OpenAPI document gives none (401)
    if (e.body === undefined) return { code: e.code, reason: "", fields: [] };
    const body = JSON.parse(e.body as string) as {
      kind: string;
      code: number;
      reason: string;
      details?: { causes?: { field: string }[] };
    };
    expect(body.kind).toBe("Status");
    expect(body.code).toBe(e.code);
    return { code: e.code, reason: body.reason, fields: (body.details?.causes ?? []).map((c) => c.field) };
  }
  throw new Error("expected the API server to refuse");
}

beforeAll(async () => {
  fake = await startFakeKubernetes();
  fake.seed("", "namespaces", { metadata: { name: "shop" } });
  ({ core, rbac } = clients(fake.adminToken));
});
afterAll(async () => {
  await fake.close();
});

describe("fake Kubernetes API server, through the real client", () => {
  it("401 Unauthorized without a valid bearer token", async () => {
    expect(await status(clients("wrong").core.listNamespacedPod({ namespace: "shop" }))).toMatchObject({
      code: 401,
    });
    // the wire answer itself is a Status with reason Unauthorized
    const wire = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = httpsGet(
        `${fake.url}/api/v1/namespaces/shop/pods`,
        { ca: readFileSync(fake.caFile), headers: { authorization: "Bearer wrong" } },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => {
            body += c.toString();
          });
          res.on("end", () => resolve({ code: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
    });
    expect(wire.code).toBe(401);
    expect(JSON.parse(wire.body)).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "Unauthorized",
      code: 401,
    });
  });

  it("201 on create with uid, resourceVersion and creationTimestamp; 409 AlreadyExists on the same name", async () => {
    const s = await core.createNamespacedSecret({ namespace: "shop", body: { metadata: { name: "one" } } });
    expect(s.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(s.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(s.type).toBe("Opaque");
    expect(
      await status(core.createNamespacedSecret({ namespace: "shop", body: { metadata: { name: "one" } } })),
    ).toMatchObject({ code: 409, reason: "AlreadyExists" });
  });

  it("404 NotFound for a missing object, and for a create in a namespace that does not exist", async () => {
    expect(await status(core.readNamespacedSecret({ name: "nope", namespace: "shop" }))).toMatchObject({
      code: 404,
      reason: "NotFound",
    });
    expect(
      await status(core.createNamespacedSecret({ namespace: "ghost", body: { metadata: { name: "x" } } })),
    ).toMatchObject({ code: 404, reason: "NotFound" });
  });

  it("422 Invalid, with the fields named, for bad names, labels, rules and roleRefs", async () => {
    expect(
      await status(
        core.createNamespacedSecret({ namespace: "shop", body: { metadata: { name: "Bad_Name" } } }),
      ),
    ).toMatchObject({ code: 422, reason: "Invalid", fields: ["metadata.name"] });
    expect(
      await status(
        core.createNamespacedSecret({
          namespace: "shop",
          body: { metadata: { name: "ok", labels: { "writ.dev/writ": "-bad-" } } },
        }),
      ),
    ).toMatchObject({ code: 422, fields: ["metadata.labels"] });
    expect(
      await status(
        rbac.createNamespacedRole({
          namespace: "shop",
          body: { metadata: { name: "r" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: [] }] },
        }),
      ),
    ).toMatchObject({ code: 422, fields: ["rules[0].verbs"] });
    expect(
      await status(
        rbac.createNamespacedRole({
          namespace: "shop",
          body: { metadata: { name: "r" }, rules: [{ nonResourceURLs: ["/metrics"], verbs: ["get"] }] },
        }),
      ),
    ).toMatchObject({ code: 422, fields: ["rules[0].nonResourceURLs"] });
    expect(
      await status(
        rbac.createClusterRoleBinding({
          body: {
            metadata: { name: "b" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "r" },
            subjects: [{ kind: "ServiceAccount", name: "a" }],
          },
        }),
      ),
    ).toMatchObject({ code: 422, fields: ["roleRef.kind", "subjects[0].namespace"] });
    expect(
      await status(core.createNamespacedSecret({ namespace: "shop", body: { metadata: {} } })),
    ).toMatchObject({ code: 422, fields: ["metadata.name"] });
  });

  it("400 when the body's namespace is not the URL's", async () => {
    expect(
      await status(
        core.createNamespacedSecret({
          namespace: "shop",
          body: { metadata: { name: "x", namespace: "other" } },
        }),
      ),
    ).toMatchObject({ code: 400, reason: "BadRequest" });
  });

  it("lists by label selector (=, !=, exists, !exists) and refuses a selector it cannot parse", async () => {
    for (const [name, labels] of [
      ["l1", { team: "a", tier: "web" }],
      ["l2", { team: "b" }],
      ["l3", {}],
    ] as const) {
      await core.createNamespacedConfigMap({ namespace: "shop", body: { metadata: { name, labels } } });
    }
    const names = async (labelSelector: string) =>
      (await core.listNamespacedConfigMap({ namespace: "shop", labelSelector })).items.map(
        (i) => i.metadata?.name,
      );
    expect(await names("team=a")).toEqual(["l1"]);
    expect(await names("team!=a")).toEqual(["l2", "l3"]);
    expect(await names("team")).toEqual(["l1", "l2"]);
    expect(await names("!team")).toEqual(["l3"]);
    expect(await names("team,tier=web")).toEqual(["l1"]);
    expect(
      await status(core.listNamespacedConfigMap({ namespace: "shop", labelSelector: "team in (a" })),
    ).toMatchObject({
      code: 400,
    });
  });

  it("delete: 200 Status, 404 after, 409 on a uid precondition that does not match", async () => {
    const s = await core.createNamespacedSecret({ namespace: "shop", body: { metadata: { name: "del" } } });
    expect(
      await status(
        core.deleteNamespacedSecret({
          name: "del",
          namespace: "shop",
          body: { preconditions: { uid: "not-it" } },
        }),
      ),
    ).toMatchObject({ code: 409, reason: "Conflict" });
    const ok = await core.deleteNamespacedSecret({
      name: "del",
      namespace: "shop",
      body: { preconditions: { uid: s.metadata!.uid! } },
    });
    expect(ok.status).toBe("Success");
    expect(await status(core.deleteNamespacedSecret({ name: "del", namespace: "shop" }))).toMatchObject({
      code: 404,
    });
  });

  it("TokenRequest: ≥ 600 s, a bound Secret that exists with that uid, and a token that dies with it", async () => {
    fake.seed("", "serviceaccounts", { metadata: { name: "sa", namespace: "shop" } });
    const secret = await core.createNamespacedSecret({
      namespace: "shop",
      body: { metadata: { name: "bound" } },
    });
    const ref = { apiVersion: "v1", kind: "Secret", name: "bound", uid: secret.metadata!.uid! };
    const ask = (spec: Record<string, unknown>, sa = "sa") =>
      core.createNamespacedServiceAccountToken({ name: sa, namespace: "shop", body: { spec } as never });
    expect(await status(ask({ expirationSeconds: 599, boundObjectRef: ref }))).toMatchObject({
      code: 422,
      fields: ["spec.expirationSeconds"],
    });
    expect(
      await status(ask({ expirationSeconds: 600, boundObjectRef: { ...ref, kind: "ConfigMap" } })),
    ).toMatchObject({
      code: 422,
      fields: ["spec.boundObjectRef.kind"],
    });
    expect(
      await status(ask({ expirationSeconds: 600, boundObjectRef: { ...ref, uid: "stale" } })),
    ).toMatchObject({
      code: 409,
    });
    expect(
      await status(ask({ expirationSeconds: 600, boundObjectRef: { ...ref, name: "gone" } })),
    ).toMatchObject({
      code: 404,
    });
    expect(await status(ask({ expirationSeconds: 600, boundObjectRef: ref }, "nosa"))).toMatchObject({
      code: 404,
    });
    const t = await ask({ expirationSeconds: 600, boundObjectRef: ref });
    const token = t.status!.token;
    expect(t.status!.expirationTimestamp.getTime() - Date.now()).toBeGreaterThan(590_000);
    expect(t.spec.audiences).toEqual(["https://kubernetes.default.svc.cluster.local"]);
    // authenticated, but no RBAC yet: 403
    expect(await status(clients(token).core.listNamespacedPod({ namespace: "shop" }))).toMatchObject({
      code: 403,
      reason: "Forbidden",
    });
    await rbac.createNamespacedRole({
      namespace: "shop",
      body: {
        metadata: { name: "read" },
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: "shop",
      body: {
        metadata: { name: "read" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read" },
        subjects: [{ kind: "ServiceAccount", name: "sa", namespace: "shop" }],
      },
    });
    expect((await clients(token).core.listNamespacedPod({ namespace: "shop" })).items).toEqual([]);
    await core.deleteNamespacedSecret({ name: "bound", namespace: "shop" });
    expect(await status(clients(token).core.listNamespacedPod({ namespace: "shop" }))).toMatchObject({
      code: 401,
    });
  });
});
