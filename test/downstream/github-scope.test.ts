/**
 * Property tests: whatever the writ's grants, denies and the installation, the token request (and
 * the token GitHub — the fake — actually mints for it) stays within the writ's grants minus its
 * denies: every repository is one a grant names, every permission at its level is granted on every
 * repository of the token and denied on none, nothing the installation lacks, never "all
 * repositories". The oracle is the core's rule matching (`ruleMatches`), the definition of what a
 * writ grants. Plus examples of the mapping itself.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RuleText, resourceMatches, ruleMatches } from "../../src/core/index.js";
import {
  APP_PERMISSIONS,
  type GithubLevel,
  githubRules,
  githubScope,
  levelAtLeast,
  ORGANIZATION_PERMISSIONS,
} from "../../src/downstream/github/scope.js";
import { DEFAULT_INSTALLATION, INSTALLATION, type Rig, rig, writ } from "./github-fixture.js";

const ACCOUNT = "acme";
const UNIVERSE = ["checkout", "payments", "search", "svc-a", "svc-b", "website"];
const PERMS = [
  "contents",
  "issues",
  "deployments",
  "pull-requests",
  "workflows",
  "administration",
  "members",
  "metadata",
  "pages",
  "id_token",
  "repository_projects",
];

const permissionSegment = fc.oneof(
  fc.uniqueArray(fc.constantFrom(...PERMS), { minLength: 1, maxLength: 3 }).map((a) => a.join("|")),
  fc.constantFrom("*", "c*", "*s", "pull_*"),
);
const levelSegment = fc.constantFrom("read", "write", "admin", "*", "read|write", "w*", "READ");
const repoName = fc.constantFrom(...UNIVERSE, "Checkout", "ghost");
const resource = fc.oneof(
  repoName.map((r) => `${ACCOUNT}/${r}`),
  fc
    .uniqueArray(repoName, { minLength: 2, maxLength: 3 })
    .map((a) => a.map((r) => `${ACCOUNT}/${r}`).join("|")),
  fc.constantFrom(
    "acme/svc-*",
    "acme/*",
    "*",
    "ACME/*out",
    "acme/?????",
    "other/checkout",
    "acme/*|other/*",
    "acme",
  ),
);
const provider = fc.constantFrom("github", "github", "github", "GitHub", "*", "aws");
const rule: fc.Arbitrary<RuleText> = fc
  .tuple(provider, permissionSegment, levelSegment, resource)
  .map(([p, s, a, r]) => ({ action: p === "aws" ? "aws:s3:GetObject" : `${p}:${s}:${a}`, resource: r }));
const installationPermissions = fc.dictionary(
  fc.constantFrom(...[...APP_PERMISSIONS.keys()]),
  fc.constantFrom<GithubLevel>("read", "write", "admin"),
);
const installationRepos = fc.subarray(UNIVERSE);

type Level = GithubLevel;
const action = (p: string, l: Level) => ({ provider: "github" as const, service: p, action: l });

/** Is `p:level` on `repo` granted by `grants` and stopped by no deny? (the writ's own meaning) */
function allowed(grants: RuleText[], denies: RuleText[], p: string, level: Level, repo: string): boolean {
  const g = githubRules(grants);
  const d = githubRules(denies);
  return (
    g.some((x) => ruleMatches(x, action(p, level), repo, "cover")) &&
    !d.some((x) => ruleMatches(x, action(p, level), repo, "include"))
  );
}

/** Checks a token (repositories × permissions) against the writ; returns the first violation. */
function violation(
  grants: RuleText[],
  denies: RuleText[],
  repositories: readonly string[],
  permissions: Readonly<Record<string, string>>,
  installation: Readonly<Record<string, Level>> | undefined,
  listed: readonly string[],
): string | undefined {
  if (repositories.length === 0) return "no repositories: GitHub would give all of them";
  const rules = githubRules(grants);
  for (const r of repositories) {
    const full = `${ACCOUNT}/${r}`;
    if (!rules.some((g) => resourceMatches(g, "github", full))) return `${full} is named by no grant`;
    const literal = grants.some((g) => g.resource.toLowerCase().split("|").includes(full.toLowerCase()));
    if (!literal && !listed.some((x) => x.toLowerCase() === r.toLowerCase()))
      return `${full} is not the installation's`;
  }
  if (Object.keys(permissions).length === 0) return "no permissions: GitHub would give all of them";
  for (const [p, l] of Object.entries(permissions)) {
    if (l !== "read" && l !== "write" && l !== "admin") return `${p}: level ${l}`;
    if (!APP_PERMISSIONS.get(p)?.includes(l)) return `${p}:${l} is not an App permission level`;
    if (installation && !(installation[p] && levelAtLeast(installation[p], l))) {
      return `${p}:${l} is beyond the installation`;
    }
    // organization permissions act on the whole account: granted on every repository, any name
    const where = ORGANIZATION_PERMISSIONS.has(p) ? [...UNIVERSE, "zz-any-other"] : repositories;
    for (const r of where) {
      if (!allowed(grants, denies, p, l, `${ACCOUNT}/${r}`))
        return `${p}:${l} on ${ACCOUNT}/${r} is not granted`;
    }
  }
  return undefined;
}

describe("github scope (pure)", () => {
  it("property: the request is always within the writ's grants minus its denies, and the installation", () => {
    fc.assert(
      fc.property(
        fc.array(rule, { minLength: 0, maxLength: 4 }),
        fc.array(rule, { maxLength: 3 }),
        installationRepos,
        fc.option(installationPermissions, { nil: undefined }),
        (grants, denies, listed, installation) => {
          const s = githubScope({ grants, denies, account: ACCOUNT, repositories: listed, installation });
          if (!s.ok) {
            expect([
              "downstream_no_grants",
              "downstream_permission_missing",
              "downstream_unavailable",
            ]).toContain(s.reason);
            return;
          }
          expect(
            violation(grants, denies, s.repositories, s.permissions, installation, listed),
          ).toBeUndefined();
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("property: a grant named literally is carried exactly (one repository, one permission, no denies)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...[...APP_PERMISSIONS.keys()].filter((p) => !ORGANIZATION_PERMISSIONS.has(p))),
        fc.constantFrom<Level>("read", "write", "admin"),
        fc.constantFrom(...UNIVERSE),
        (p, l, r) => {
          const s = githubScope({
            grants: [{ action: `github:${p}:${l}`, resource: `acme/${r}` }],
            denies: [],
            account: ACCOUNT,
          });
          const accepted = APP_PERMISSIONS.get(p)!.filter((x) => levelAtLeast(l, x));
          if (accepted.length === 0) {
            expect(s.ok).toBe(false);
            return;
          }
          expect(s).toMatchObject({ ok: true, repositories: [r], permissions: { [p]: accepted.at(-1) } });
        },
      ),
    );
  });

  it("examples: levels GitHub offers, the rectangle, denies, other accounts, vocabulary outside the App", () => {
    const one = (grants: RuleText[], denies: RuleText[] = [], repositories?: string[]) =>
      githubScope({ grants, denies, account: ACCOUNT, repositories });
    // contents has no admin level: `admin` is asked as `write`; workflows only has write
    expect(one([{ action: "github:contents:admin", resource: "acme/a" }])).toMatchObject({
      permissions: { contents: "write" },
    });
    expect(one([{ action: "github:workflows:read", resource: "acme/a" }])).toMatchObject({
      ok: false,
      reason: "downstream_no_grants",
    });
    // `-` and `_` are the same; names are case-insensitive
    expect(one([{ action: "GitHub:Pull-Requests:WRITE", resource: "ACME/a" }])).toMatchObject({
      repositories: ["a"],
      permissions: { pull_requests: "write" },
    });
    // the rectangle: write on a, read on b → read on both, with a note
    const rect = one([
      { action: "github:contents:write", resource: "acme/a" },
      { action: "github:contents:read", resource: "acme/b" },
      { action: "github:issues:write", resource: "acme/b" },
    ]);
    expect(rect).toMatchObject({ ok: true, repositories: ["a", "b"], permissions: { contents: "read" } });
    expect(rect.notes.join("\n")).toContain("`contents:write` on `acme/a` is `read` in the token");
    // a deny of read stops write too
    expect(
      one(
        [{ action: "github:contents|issues:write", resource: "acme/a" }],
        [{ action: "github:contents:read", resource: "*" }],
      ),
    ).toMatchObject({ permissions: { issues: "write" } });
    // a deny of write leaves read
    expect(
      one(
        [{ action: "github:contents:write", resource: "acme/a" }],
        [{ action: "github:contents:write", resource: "acme/*" }],
      ),
    ).toMatchObject({ permissions: { contents: "read" } });
    // another account is never in the token
    const other = one([{ action: "github:contents:read", resource: "acme/a|evil/a" }]);
    expect(other).toMatchObject({ ok: true, repositories: ["a"] });
    expect(other.notes.join("\n")).toContain("`evil/a` is not a repository of the installation's account");
    // not App permissions
    expect(one([{ action: "github:id_token:write", resource: "acme/a" }])).toMatchObject({
      ok: false,
      reason: "downstream_no_grants",
    });
    // a pattern needs the installation's repositories; never "all"
    expect(one([{ action: "github:contents:read", resource: "acme/*" }])).toMatchObject({
      ok: false,
      reason: "downstream_unavailable",
    });
    expect(one([{ action: "github:contents:read", resource: "*" }], [], ["a", "b"])).toMatchObject({
      repositories: ["a", "b"],
    });
    expect(one([{ action: "github:contents:read", resource: "*" }], [], [])).toMatchObject({
      ok: false,
      reason: "downstream_no_grants",
    });
    // only github grants count
    expect(one([{ action: "aws:s3:GetObject", resource: "*" }])).toMatchObject({
      reason: "downstream_no_grants",
    });
    expect(one([{ action: "*", resource: "acme/a" }]).ok).toBe(true);
  });
});

describe("github scope through the issuer and the fake GitHub", () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig();
  });
  afterAll(() => r.close());

  it("property: what GitHub actually minted is within the writ's grants minus its denies", async () => {
    let minted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(rule, { minLength: 1, maxLength: 3 }),
        fc.array(rule, { maxLength: 2 }),
        async (grants, denies) => {
          const before = new Set(r.fake.tokens.keys());
          const w = writ(grants, { denies });
          const out = await r.issuer.issue(w, new Date());
          if (!out.ok) {
            // a refusal mints nothing that stays alive
            expect(r.fake.liveTokens().filter((t) => !before.has(t.token))).toEqual([]);
            return;
          }
          {
            const c = out.value;
            if (c.system !== "github") throw new Error("not github");
            const fresh = [...r.fake.tokens.values()].filter(
              (t) => !before.has(t.token) && t.revokedAt === undefined,
            );
            expect(fresh.map((t) => t.token)).toEqual([c.token]);
            const t = fresh[0]!;
            const perms = { ...t.permissions };
            // GitHub's own addition to every installation token
            if (perms.metadata === "read" && c.permissions.metadata === undefined) delete perms.metadata;
            expect(
              violation(
                grants,
                denies,
                [...t.repositories],
                perms,
                { metadata: "read", ...DEFAULT_INSTALLATION.permissions },
                DEFAULT_INSTALLATION.repositories,
              ),
            ).toBeUndefined();
            minted++;
            await r.issuer.kill({ writ: w.id }, new Date());
          }
        },
      ),
      { numRuns: 150 },
    );
    expect(minted).toBeGreaterThan(10);
    expect(r.fake.liveTokens()).toEqual([]);
    expect(
      r.fake.calls.filter((c) => c.path.startsWith(`/app/installations/${INSTALLATION}/access_tokens`))
        .length,
    ).toBeGreaterThan(0);
  });
});
