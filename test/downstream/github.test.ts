/**
 * The GitHub downstream issuer end to end against the fake GitHub, driven by the real
 * `@octokit/auth-app`: what the token request asks for, the token's use, revocation and the kill
 * switch (next use refused within 1 s), refusals with their reasons, the ledger and the audit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashedToken } from "../../src/downstream/github.js";
import { type DownstreamCredential, ERR_DOWNSTREAM_REFUSED } from "../../src/downstream/types.js";
import { DEFAULT_INSTALLATION, INSTALLATION, type Rig, rig, writ } from "./github-fixture.js";
import { credentialOf, refusalOf, type SeenRefusal } from "./outcome.js";

type GithubCredential = Extract<DownstreamCredential, { system: "github" }>;

async function use(r: Rig, token: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${r.fake.url}${path}`, {
    method,
    headers: {
      authorization: `token ${token}`,
      "user-agent": "git/2.45 (test)",
      accept: "application/vnd.github+json",
      ...(body ? { "content-type": "application/json" } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

const putFile = (r: Rig, token: string, repo: string) =>
  use(r, token, "PUT", `/repos/acme/${repo}/contents/deploy/tag.txt`, {
    message: "deploy v1.2.3",
    content: Buffer.from("v1.2.3").toString("base64"),
  });

async function issued(r: Rig, w: ReturnType<typeof writ>): Promise<GithubCredential> {
  const c = await credentialOf(r.issuer.issue(w, new Date()));
  if (c.system !== "github") throw new Error("not a github credential");
  return c;
}

async function refusal(p: Promise<unknown>): Promise<SeenRefusal> {
  const r = await refusalOf(p);
  expect(r.code).toBe(ERR_DOWNSTREAM_REFUSED);
  return r;
}

function mintRequests(r: Rig): { repositories?: string[]; permissions?: Record<string, string> }[] {
  return r.fake.calls
    .filter((c) => c.method === "POST" && c.path === `/app/installations/${INSTALLATION}/access_tokens`)
    .map((c) => c.body as { repositories?: string[]; permissions?: Record<string, string> });
}

describe("github issuer", () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig();
  });
  afterAll(() => r.close());

  it("asks GitHub for exactly the writ's repositories and permissions, and the token works within them", async () => {
    const before = mintRequests(r).length;
    const w = writ([{ action: "github:contents|deployments:read|write", resource: "acme/checkout" }]);
    const c = await issued(r, w);
    expect(mintRequests(r).slice(before)).toEqual([
      { repositories: ["checkout"], permissions: { contents: "write", deployments: "write" } },
    ]);
    expect(c.repositories).toEqual(["acme/checkout"]);
    expect(c.permissions).toEqual({ contents: "write", deployments: "write" });
    expect(c.token).toMatch(/^ghs_/);

    expect(await use(r, c.token, "GET", "/repos/acme/checkout")).toBe(200);
    expect(await putFile(r, c.token, "checkout")).toBe(201);
    // outside the writ: another repository is invisible, another permission forbidden
    expect(await use(r, c.token, "GET", "/repos/acme/payments")).toBe(404);
    expect(await putFile(r, c.token, "payments")).toBe(404);
    const fakeToken = r.fake.tokens.get(c.token)!;
    expect(fakeToken.permissions).toEqual({ contents: "write", deployments: "write", metadata: "read" });
    expect([...fakeToken.repositories]).toEqual(["checkout"]);
  });

  it("records intent then creation in the ledger and audits, never with the token", async () => {
    const w = writ([{ action: "github:contents:read", resource: "acme/search" }]);
    const c = await issued(r, w);
    const recs = await r.ledger.ofWrit(w.id);
    expect(recs).toHaveLength(1);
    const rec = recs[0]!;
    expect(rec).toMatchObject({ system: "github", kind: "installation-token", state: "created", writ: w.id });
    expect(rec.locator).toMatchObject({
      installation: INSTALLATION,
      repositories: ["search"],
      permissions: { contents: "read" },
      hashedToken: hashedToken(c.token),
    });
    expect(rec.expiresAt.getTime()).toBeLessThanOrEqual(w.expiresAt.getTime());
    const issuedAudit = r.audits.find((a) => a.type === "downstream.issued" && a.data.writ === w.id);
    expect(issuedAudit?.data).toMatchObject({ record: rec.id, repositories: ["acme/search"] });
    expect(JSON.stringify(r.ledger.all())).not.toContain(c.token);
    expect(JSON.stringify(r.audits)).not.toContain(c.token);
  });

  it("revoke: DELETE /installation/token, the very next use is refused (not at the token's expiry), and revoking again is fine", async () => {
    const w = writ([{ action: "github:contents:write", resource: "acme/checkout" }]);
    const c = await issued(r, w);
    expect(await putFile(r, c.token, "checkout")).toBeLessThan(300);
    const [rec] = await r.ledger.ofWrit(w.id);
    await r.issuer.revoke(rec!, new Date());
    expect(await putFile(r, c.token, "checkout")).toBe(401);
    expect((await r.ledger.ofWrit(w.id))[0]!.state).toBe("removed");
    expect(r.fake.calls.some((x) => x.method === "DELETE" && x.token === c.token && x.status === 204)).toBe(
      true,
    );
    // idempotent: the removed record and the same record again
    await r.issuer.revoke(rec!, new Date());
    await r.issuer.revoke((await r.ledger.ofWrit(w.id))[0]!, new Date());
  });

  it("the reaper's revocation of an expired writ's record ends its token", async () => {
    const w = writ([{ action: "github:issues:write", resource: "acme/website" }]);
    const c = await issued(r, w);
    const due = await r.ledger.due(new Date(w.expiresAt.getTime() + 1));
    const mine = due.filter((d) => d.writ === w.id);
    expect(mine).toHaveLength(1);
    for (const d of mine) await r.issuer.revoke(d, new Date());
    expect(await use(r, c.token, "GET", "/repos/acme/website")).toBe(401);
  });

  it("kill(agent) ends every token of that agent at once (DELETE each) and leaves other agents' tokens", async () => {
    const a1 = await issued(
      r,
      writ([{ action: "github:contents:write", resource: "acme/checkout" }], { agent: "a" }),
    );
    const a2 = await issued(
      r,
      writ([{ action: "github:contents:write", resource: "acme/payments" }], { agent: "a" }),
    );
    const b = await issued(
      r,
      writ([{ action: "github:contents:write", resource: "acme/search" }], { agent: "b" }),
    );
    expect(await putFile(r, a1.token, "checkout")).toBeLessThan(300);
    await r.issuer.kill({ agent: "a" }, new Date());
    const s1 = await putFile(r, a1.token, "checkout");
    const s2 = await putFile(r, a2.token, "payments");
    expect([s1, s2]).toEqual([401, 401]);
    for (const t of [a1.token, a2.token])
      expect(r.fake.calls.some((x) => x.method === "DELETE" && x.token === t && x.status === 204)).toBe(true);
    expect(await putFile(r, b.token, "search")).toBeLessThan(300);
    expect(r.audits.at(-1)).toMatchObject({
      type: "downstream.killed",
      data: { scope: { agent: "a" }, revoked: 2 },
    });
  });

  it("kill(writ) ends that writ's token only; kill({}) ends every token this issuer holds", async () => {
    const w1 = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
    const w2 = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
    const c1 = await issued(r, w1);
    const c2 = await issued(r, w2);
    await r.issuer.kill({ writ: w1.id }, new Date());
    expect(await use(r, c1.token, "GET", "/repos/acme/checkout")).toBe(401);
    expect(await use(r, c2.token, "GET", "/repos/acme/checkout")).toBe(200);
    await r.issuer.kill({}, new Date());
    expect(await use(r, c2.token, "GET", "/repos/acme/checkout")).toBe(401);
    expect(r.fake.liveTokens()).toEqual([]);
  });

  it("two writs with the same grants, redeemed concurrently, get tokens of their own", async () => {
    const grants = [{ action: "github:statuses:write", resource: "acme/payments" }];
    const [c1, c2] = await Promise.all([issued(r, writ(grants)), issued(r, writ(grants))]);
    expect(c1.token).not.toBe(c2.token);
    const w3 = writ(grants);
    const c3 = await issued(r, w3);
    await r.issuer.revoke((await r.ledger.ofWrit(w3.id))[0]!, new Date());
    expect(await use(r, c1.token, "GET", "/repos/acme/payments")).toBe(200);
    expect(await use(r, c2.token, "GET", "/repos/acme/payments")).toBe(200);
    expect(await use(r, c3.token, "GET", "/repos/acme/payments")).toBe(401);
  });

  it("removes the ceiling's denies from the request", async () => {
    const before = mintRequests(r).length;
    const w = writ([{ action: "github:*:write", resource: "acme/checkout" }], {
      denies: [{ action: "github:administration|secrets|workflows:*", resource: "*" }],
    });
    const c = await issued(r, w);
    const sent = mintRequests(r).slice(before)[0]!;
    expect(Object.keys(sent.permissions!)).not.toEqual(expect.arrayContaining(["administration"]));
    for (const p of ["administration", "secrets", "workflows"]) {
      expect(sent.permissions).not.toHaveProperty(p);
      expect(c.permissions).not.toHaveProperty(p);
    }
    expect(sent.permissions).toMatchObject({ contents: "write", deployments: "write" });
  });

  it("refuses a permission the installation lacks, naming it, before anything is minted or recorded", async () => {
    const before = r.fake.tokens.size;
    const w = writ([{ action: "github:pages:write", resource: "acme/website" }]);
    const e = await refusal(r.issuer.issue(w, new Date()));
    expect(e.reason).toBe("downstream_permission_missing");
    expect(e.message).toContain("`pages:write`");
    expect(r.fake.tokens.size).toBe(before);
    expect(await r.ledger.ofWrit(w.id)).toEqual([]);
    expect(r.audits.at(-1)).toMatchObject({ type: "downstream.refused", data: { writ: w.id } });
  });

  it("refuses a higher level than the installation's (members:write on an installation with members:read)", async () => {
    const w = writ([{ action: "github:members:write", resource: "acme/*" }]);
    const e = await refusal(r.issuer.issue(w, new Date()));
    expect(e.reason).toBe("downstream_permission_missing");
    expect(e.message).toContain("`members:write` (it has `members:read`)");
  });

  it("maps GitHub's 422 (installation narrowed since it was read) to downstream_permission_missing", async () => {
    const r2 = await rig();
    try {
      await issued(r2, writ([{ action: "github:contents:read", resource: "acme/checkout" }])); // caches the installation
      r2.fake.setInstallationPermissions(INSTALLATION, { contents: "read" });
      const w = writ([{ action: "github:contents:write", resource: "acme/checkout" }]);
      const e = await refusal(r2.issuer.issue(w, new Date()));
      expect(e.reason).toBe("downstream_permission_missing");
      expect(e.message).toContain("The permissions requested are not granted to this installation.");
      const recs = await r2.ledger.ofWrit(w.id);
      expect(recs.map((x) => x.state)).toEqual(["removed"]);
      // the installation is read again: the next refusal names the permission up front
      const e2 = await refusal(r2.issuer.issue(writ(w.grants as never), new Date()));
      expect(e2.message).toContain("`contents:write` (it has `contents:read`)");
    } finally {
      await r2.close();
    }
  });

  it("reads the installation again before refusing: a permission granted since is used at once", async () => {
    const r2 = await rig();
    try {
      const w = writ([{ action: "github:pages:write", resource: "acme/website" }]);
      expect((await refusal(r2.issuer.issue(w, new Date()))).reason).toBe("downstream_permission_missing");
      r2.fake.setInstallationPermissions(INSTALLATION, {
        ...DEFAULT_INSTALLATION.permissions,
        pages: "write",
      });
      const c = await issued(r2, writ(w.grants as never));
      expect(c.permissions).toEqual({ pages: "write" });
    } finally {
      await r2.close();
    }
  });

  it("refuses a repository the installation cannot reach (GitHub's 422), naming it", async () => {
    const w = writ([{ action: "github:contents:read", resource: "acme/not-installed" }]);
    const e = await refusal(r.issuer.issue(w, new Date()));
    expect(e.reason).toBe("downstream_permission_missing");
    expect(e.message).toContain("acme/not-installed");
  });

  it("refuses a writ without github grants, and one whose grants reach no repository of the account", async () => {
    const e1 = await refusal(
      r.issuer.issue(writ([{ action: "aws:s3:GetObject", resource: "arn:aws:s3:::b/*" }]), new Date()),
    );
    expect(e1.reason).toBe("downstream_no_grants");
    const e2 = await refusal(
      r.issuer.issue(writ([{ action: "github:contents:read", resource: "other/repo" }]), new Date()),
    );
    expect(e2.reason).toBe("downstream_no_grants");
    expect(e2.message).toContain("`acme`");
  });

  it("resolves a repository pattern against the installation with a metadata-only token revoked at once", async () => {
    const r2 = await rig();
    try {
      const w = writ([{ action: "github:contents:write", resource: "acme/svc-*" }]);
      const c = await issued(r2, w);
      expect(mintRequests(r2)).toEqual([
        { permissions: { metadata: "read" } },
        { repositories: ["svc-a", "svc-b"], permissions: { contents: "write" } },
      ]);
      expect(c.repositories).toEqual(["acme/svc-a", "acme/svc-b"]);
      const lister = [...r2.fake.tokens.values()][0]!;
      expect(lister.permissions).toEqual({ metadata: "read" });
      expect(lister.revokedAt).toBeDefined();
      const recs = await r2.ledger.ofWrit(w.id);
      expect(recs.map((x) => [x.locator.purpose ?? "credential", x.state])).toEqual([
        ["list-repositories", "removed"],
        ["credential", "created"],
      ]);
      expect(await putFile(r2, c.token, "svc-b")).toBe(201);
      expect(await putFile(r2, c.token, "checkout")).toBe(404);
      // the list is reused for a minute: the next pattern writ mints no lister
      await issued(r2, writ([{ action: "github:contents:read", resource: "acme/*-b|acme/web*" }]));
      expect(mintRequests(r2).slice(2)).toEqual([
        { repositories: ["svc-b", "website"], permissions: { contents: "read" } },
      ]);
    } finally {
      await r2.close();
    }
  });

  it("a permission reached through a pattern is fitted to the installation, a named one is not", async () => {
    const before = mintRequests(r).length;
    const c = await issued(r, writ([{ action: "github:*:read", resource: "acme/checkout" }]));
    const sent = mintRequests(r).slice(before)[0]!;
    expect(sent.repositories).toEqual(["checkout"]);
    // only what the installation has, at read
    for (const [p, l] of Object.entries(sent.permissions!)) {
      expect(l).toBe("read");
      expect(DEFAULT_INSTALLATION.permissions[p] ?? (p === "metadata" ? "read" : undefined)).toBeDefined();
    }
    expect(sent.permissions).toMatchObject({ contents: "read", issues: "read" });
    expect(c.notes.join("\n")).toContain(
      "`pages:read` is granted by a pattern and the installation lacks it",
    );
  });

  it("organization permissions need a grant on every repository of the account", async () => {
    const r2 = await rig({
      installations: [
        { ...DEFAULT_INSTALLATION, permissions: { ...DEFAULT_INSTALLATION.permissions, members: "write" } },
      ],
    });
    try {
      const c = await issued(r2, writ([{ action: "github:members:read", resource: "acme/*" }]));
      expect(c.permissions).toEqual({ members: "read" });
      expect(c.repositories).toHaveLength(DEFAULT_INSTALLATION.repositories.length);
      const e = await refusal(
        r2.issuer.issue(writ([{ action: "github:members:read", resource: "acme/checkout" }]), new Date()),
      );
      expect(e.reason).toBe("downstream_no_grants");
    } finally {
      await r2.close();
    }
  });

  it("the credential never outlives the writ and says when GitHub's token would", async () => {
    const short = writ([{ action: "github:contents:read", resource: "acme/checkout" }], {
      expiresAt: new Date(Date.now() + 5 * 60_000),
    });
    const c1 = await issued(r, short);
    expect(c1.expiration.getTime()).toBe(short.expiresAt.getTime());
    expect(c1.notes.join("\n")).toContain("writ revokes it when the writ expires");
    const long = writ([{ action: "github:contents:read", resource: "acme/checkout" }], {
      expiresAt: new Date(Date.now() + 2 * 3600_000),
    });
    const c2 = await issued(r, long);
    const tokenExpiry = r.fake.tokens.get(c2.token)!.expiresAt;
    expect(c2.expiration.getTime()).toBe(Math.floor(tokenExpiry / 1000) * 1000);
    expect(c2.expiration.getTime()).toBeLessThan(long.expiresAt.getTime());
    expect(c2.notes.join("\n")).toContain("redeem the writ again after");
  });

  it("after a restart a token it no longer holds is reported unrevocable, then removed once it has expired", async () => {
    const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
    const c = await issued(r, w);
    const old = r.issuer;
    try {
      await r.restart();
      const [rec] = await r.ledger.ofWrit(w.id);
      await r.issuer.revoke(rec!, new Date());
      // honest: GitHub's token still works until its own expiry
      expect(await use(r, c.token, "GET", "/repos/acme/checkout")).toBe(200);
      expect((await r.ledger.ofWrit(w.id))[0]!.state).toBe("created");
      expect(r.audits.at(-1)).toMatchObject({ type: "downstream.unrevocable", data: { record: rec!.id } });
      await r.issuer.kill({ writ: w.id }, new Date());
      expect(r.audits.at(-1)).toMatchObject({
        type: "downstream.killed",
        data: { scope: { writ: w.id }, revoked: 0, unrevocable: 1 },
      });
      const afterExpiry = new Date(r.fake.tokens.get(c.token)!.expiresAt + 1000);
      await r.issuer.revoke(rec!, afterExpiry);
      expect((await r.ledger.ofWrit(w.id))[0]!.state).toBe("removed");
    } finally {
      r.issuer = old;
    }
  });

  it("GitHub unreachable: downstream_unavailable, nothing handed out", async () => {
    const r2 = await rig();
    await r2.close();
    const e = await refusal(
      r2.issuer.issue(writ([{ action: "github:contents:read", resource: "acme/checkout" }]), new Date()),
    );
    expect(e.reason).toBe("downstream_unavailable");
  });

  it("an App key GitHub does not know is refused by the fake's JWT check: downstream_unavailable with GitHub's 401", async () => {
    const { appKeyPair } = await import("./github-fixture.js");
    const other = appKeyPair();
    const r2 = await rig();
    try {
      const { githubIssuer } = await import("../../src/downstream/github.js");
      const issuer = await githubIssuer(
        { ...r2.cfg, privateKey: { env: "GH_APP_KEY" } },
        { ledger: r2.ledger, audit: async () => undefined, env: { GH_APP_KEY: other.privatePem } },
      );
      const e = await refusal(
        issuer.issue(writ([{ action: "github:contents:read", resource: "acme/checkout" }]), new Date()),
      );
      expect(e.reason).toBe("downstream_unavailable");
      expect(e.message).toContain("401");
      expect(r2.fake.tokens.size).toBe(0);
    } finally {
      await r2.close();
    }
  });

  it("the default installation fixture is what the tests assume", () => {
    expect(DEFAULT_INSTALLATION.permissions.pages).toBeUndefined();
  });
});
