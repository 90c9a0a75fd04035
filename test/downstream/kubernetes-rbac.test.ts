/**
 * Scoping proofs for the Kubernetes issuer, as property tests (fast-check):
 * 1. the RBAC rules generated from any writ, read back as writ permissions (by this file's own
 *    reading of RBAC), are contained in the writ's grants (core containment) and overlap no deny;
 * 2. end to end through the real client and the fake API server's own RBAC evaluation: whatever
 *    the issued token is allowed to do, the writ grants and no deny touches.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compileRule,
  escapeGlob,
  parseRequestAction,
  type RuleText,
  ruleContains,
  ruleMatches,
  ruleOverlaps,
} from "../../src/core/index.js";
import {
  labelValue,
  objectName,
  type RbacPlan,
  rbacPlan,
  resourceScope,
} from "../../src/downstream/kubernetes.js";
import { type Harness, harness, writ } from "./kubernetes-support.js";

/** What a Role's or ClusterRole's rules let a bound subject do, as writ permissions. */
function readBack(plan: RbacPlan): RuleText[] {
  const out: RuleText[] = [];
  const each = (
    rules: RbacPlan["cluster"],
    object: (group: string, resource: string, name: string | undefined) => string,
  ) => {
    for (const r of rules) {
      for (const g of r.apiGroups) {
        for (const res of r.resources) {
          for (const v of r.verbs) {
            const group = g === "" ? "core" : g;
            const names = r.resourceNames?.length ? r.resourceNames : [undefined];
            for (const n of names) {
              out.push({ action: `k8s:${group}/${res}:${v}`, resource: object(group, res, n) });
            }
          }
        }
      }
    }
  };
  for (const [ns, rules] of plan.namespaces) {
    each(rules, (_g, _r, n) => `${ns}/${n === undefined ? "*" : escapeGlob(n)}`);
  }
  // cluster-wide: namespaced resources in every namespace, cluster-scoped ones by bare name,
  // and both when the resource's scope is not known
  each(plan.cluster, (g, r, n) => {
    const scope = g === "*" || r.startsWith("*") ? "unknown" : resourceScope(g, r);
    const name = n === undefined ? "*" : escapeGlob(n);
    if (scope === "namespaced") return `*/${name}`;
    if (scope === "cluster") return name;
    return n === undefined ? "*" : `${name}|*/${name}`;
  });
  return out;
}

const groups = ["core", "apps", "batch", "rbac.authorization.k8s.io", "example.com", "*"];
const resources = [
  "pods",
  "deployments",
  "secrets",
  "nodes",
  "namespaces",
  "jobs",
  "widgets",
  "roles",
  "*",
  "pods/log",
  "*/scale",
  "deployments/scale",
];
const verbs = [
  "*",
  "get",
  "get|list",
  "get|list|watch",
  "patch|delete",
  "create",
  "*e*",
  "list",
  "escalate|bind",
  "nosuchverb",
];
const objects = [
  "shop/*",
  "shop/web",
  "prod/api",
  "*/*",
  "*/web",
  "*",
  "node-1",
  "shop/web-*",
  "sh*/web",
  "prod/*",
];

const service = fc
  .tuple(fc.constantFrom(...groups), fc.constantFrom(...resources))
  .map(([g, r]) => (g === "*" && r === "*" ? "*" : `${g}/${r}`));
const alts = <T extends string>(a: fc.Arbitrary<T>) =>
  fc.array(a, { minLength: 1, maxLength: 2 }).map((xs) => [...new Set(xs)].join("|"));
const k8sRule: fc.Arbitrary<RuleText> = fc
  .tuple(alts(service), fc.constantFrom(...verbs), alts(fc.constantFrom(...objects)))
  .map(([s, v, o]) => ({ action: `k8s:${s}:${v}`, resource: o }));
const otherRule: fc.Arbitrary<RuleText> = fc.constantFrom(
  { action: "aws:s3:GetObject", resource: "arn:aws:s3:::b/*" },
  { action: "github:contents:read", resource: "acme/x" },
  { action: "*", resource: "*" },
);

describe("Kubernetes RBAC from a writ: containment (property)", () => {
  it("every generated rule is inside the writ's grants and touches no deny — or the writ is refused", () => {
    let planned = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.array(fc.oneof({ weight: 5, arbitrary: k8sRule }, { weight: 1, arbitrary: otherRule }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.array(fc.oneof({ weight: 4, arbitrary: k8sRule }, { weight: 1, arbitrary: otherRule }), {
          maxLength: 2,
        }),
        (grants, denies) => {
          const outcome = rbacPlan(grants, denies);
          if (!outcome.ok) {
            // nothing Kubernetes in the grants, or a grant RBAC cannot hold exactly
            expect(["downstream_no_grants", "downstream_scope_exceeds_writ"]).toContain(outcome.reason);
            refused++;
            return;
          }
          const plan: RbacPlan = outcome.value;
          planned++;
          const grantRules = grants.map(compileRule).filter((g) => g.literalProvider === "k8s");
          const denyRules = denies.map(compileRule);
          const back = readBack(plan);
          expect(back.length).toBeGreaterThan(0);
          for (const r of back) {
            const rule = compileRule(r);
            expect(
              grantRules.some((g) => ruleContains(g, rule)),
              `${r.action} on ${r.resource}`,
            ).toBe(true);
            for (const d of denyRules) {
              expect(ruleOverlaps(rule, d), `${r.action} on ${r.resource} vs deny ${d.text.action}`).toBe(
                false,
              );
            }
          }
          // only a `*` namespace (or a bare cluster-scoped name) makes a ClusterRole
          if (plan.cluster.length > 0) {
            const clusterWide = (g: RuleText) =>
              g.action.startsWith("k8s:") &&
              g.resource.split("|").some((a) => a === "*" || a.startsWith("*/") || !a.includes("/"));
            expect(grants.some(clusterWide)).toBe(true);
          }
        },
      ),
      { numRuns: 600 },
    );
    // both outcomes were exercised
    expect(planned).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });

  it("names objects only when the pattern names one exactly, and never makes a ClusterRole for one namespace", () => {
    const outcome = rbacPlan(
      [
        { action: "k8s:apps/deployments:get|patch", resource: "shop/web|shop/api" },
        { action: "k8s:core/pods:get", resource: "shop/*" },
        { action: "k8s:core/nodes:get", resource: "node-1" },
      ],
      [],
    );
    if (!outcome.ok) throw new Error(outcome.detail);
    const plan = outcome.value;
    expect(plan.namespaces.get("shop")).toEqual([
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "patch"], resourceNames: ["api"] },
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "patch"], resourceNames: ["web"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
    ]);
    expect(plan.cluster).toEqual([
      { apiGroups: [""], resources: ["nodes"], verbs: ["get"], resourceNames: ["node-1"] },
    ]);
    // a bare name on a namespaced resource would be every namespace's object of that name
    const refusedWith = (grant: RuleText) => {
      const r = rbacPlan([grant], []);
      expect(r.ok).toBe(false);
      return r.ok ? "" : `${r.reason}: ${r.detail}`;
    };
    expect(refusedWith({ action: "k8s:core/pods:get", resource: "web" })).toMatch(
      /^downstream_scope_exceeds_writ: .*namespaced/,
    );
    // `*/*` on a cluster-scoped resource would be broader than `*/*` says
    expect(refusedWith({ action: "k8s:core/nodes:get", resource: "*/*" })).toMatch(/cluster-scoped/);
    expect(refusedWith({ action: "k8s:example.com/widgets:get", resource: "*/*" })).toMatch(/does not know/);
  });
});

describe("Kubernetes RBAC end to end (property): the fake API server never allows what the writ does not", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    h.fake.seed("", "namespaces", { metadata: { name: "kube-system" } });
  });
  afterAll(async () => {
    await h.fake.close();
  });

  const served: [string, string, boolean][] = [
    ["core", "pods", true],
    ["core", "pods/log", true],
    ["core", "secrets", true],
    ["core", "configmaps", true],
    ["core", "nodes", false],
    ["core", "namespaces", false],
    ["apps", "deployments", true],
    ["apps", "deployments/scale", true],
    ["rbac.authorization.k8s.io", "roles", true],
  ];
  const e2eService = fc
    .tuple(
      fc.constantFrom("core", "apps", "*"),
      fc.constantFrom("pods", "deployments", "secrets", "nodes", "*", "pods/log", "*/scale"),
    )
    .map(([g, r]) => `${g}/${r}`);
  const e2eRule: fc.Arbitrary<RuleText> = fc
    .tuple(
      e2eService,
      fc.constantFrom("*", "get", "get|list", "patch|delete", "list"),
      fc.constantFrom("shop/*", "shop/web", "shop/*", "prod/api", "prod/*", "*/*", "*", "node-1"),
    )
    .map(([s, v, o]) => ({ action: `k8s:${s}:${v}`, resource: o }));
  const request = fc.record({
    kind: fc.constantFrom(...served),
    verb: fc.constantFrom("get", "list", "watch", "create", "patch", "delete", "escalate"),
    ns: fc.constantFrom("shop", "prod", "kube-system", undefined),
    name: fc.constantFrom("web", "api", "node-1", undefined),
  });

  it("for random writs and requests: allowed by the cluster ⇒ granted by the writ and not denied", async () => {
    let allowedSeen = 0;
    let issued = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(e2eRule, { minLength: 1, maxLength: 3 }),
        fc.array(e2eRule, { maxLength: 2 }),
        fc.array(request, { minLength: 30, maxLength: 30 }),
        async (grants, denies, requests) => {
          const w = writ(grants, { denies });
          const out = await h.issuer.issue(w, new Date());
          if (!out.ok) return;
          const cred = out.value;
          if (cred.system !== "kubernetes") throw new Error("unreachable");
          const token = cred.token;
          issued++;
          try {
            const grantRules = grants.map(compileRule);
            const denyRules = denies.map(compileRule);
            // besides random requests, one aimed at each grant (wildcards filled in), so that
            // allowed requests are common enough to check
            const aimed = [...grants, ...denies].map((g) => {
              const [, svc, verb] = g.action.split(":") as [string, string, string];
              const [grp, ...rest] = svc.split("/");
              const resource = rest
                .join("/")
                .replace(/^\*\/scale$/, "deployments/scale")
                .replace(/^\*$/, "pods");
              const group = grp === "*" ? (resource.startsWith("deployments") ? "apps" : "core") : grp!;
              const kind = served.find(([sg, sr]) => sg === group && sr === resource) ?? served[0]!;
              const [nsText, nameText] = g.resource.includes("/")
                ? g.resource.split("/")
                : [undefined, g.resource];
              return {
                kind,
                verb: verb === "*" ? "get" : verb.split("|")[0]!,
                ns: nsText === "*" ? "prod" : nsText,
                name: nameText === "*" ? "web" : nameText,
              };
            });
            for (const q of [...aimed, ...requests]) {
              const [group, resource, namespaced] = q.kind;
              const ns = namespaced ? q.ns : undefined;
              const name =
                q.verb === "list" || q.verb === "watch" || q.verb === "create" ? undefined : q.name;
              const res = h.fake.use(token, q.verb, group === "core" ? "" : group, resource, ns, name);
              expect(res.code).not.toBe(401);
              if (!res.allowed) continue;
              allowedSeen++;
              const action = parseRequestAction(`k8s:${group}/${resource}:${q.verb}`);
              const object = namespaced ? `${ns ?? "*"}/${name ?? "*"}` : (name ?? "*");
              const what = `${q.verb} ${group}/${resource} ${object}`;
              expect(
                grantRules.some((g) => ruleMatches(g, action, object, "cover")),
                what,
              ).toBe(true);
              expect(
                denyRules.some((d) => ruleMatches(d, action, object, "include")),
                what,
              ).toBe(false);
            }
          } finally {
            await h.issuer.kill({ writ: w.id }, new Date());
          }
        },
      ),
      { numRuns: 60, endOnFailure: true },
    );
    expect(issued).toBeGreaterThan(20);
    // the property was checked on enough allowed requests to mean something (about one per writ
    // issued, from the aimed requests; half of that is the floor, so a random draw with more
    // denies than usual does not fail a property that held)
    expect(allowedSeen).toBeGreaterThan(issued / 2);
  });
});

describe("names and labels made from writ and agent ids (property)", () => {
  const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
  it("objectName is always a DNS-1123 label, distinct ids give distinct names; labelValue is always a valid label value", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 300 }),
        fc.string({ minLength: 1, maxLength: 300 }),
        (a, b) => {
          expect(objectName(a)).toMatch(DNS_LABEL);
          expect(labelValue(a)).toMatch(LABEL_VALUE);
          if (a !== b) {
            expect(objectName(a)).not.toBe(objectName(b));
            expect(labelValue(a)).not.toBe(labelValue(b));
          }
        },
      ),
      { numRuns: 2000 },
    );
    // ids that are already valid are kept as they are
    expect(objectName("abc-123")).toBe("writ-abc-123");
    expect(labelValue("writ_AbC-1")).toBe("writ_AbC-1");
    // the broker's ids (`writ_` + base64url) change, so they carry a hash
    expect(objectName("writ_AbC-1")).toMatch(/^writ-writ-abc-1-[0-9a-f]{10}$/);
  });
});
