/**
 * The fake GitHub itself checks what GitHub checks: the App JWT (RS256 only, the App's key, `iss`,
 * the `iat`/`exp` window of at most 10 minutes), the installation's permissions and repositories
 * (422), installation tokens dead after `DELETE /installation/token` (401), User-Agent. Driven by
 * the real `@octokit/auth-app` for the accepted path and by hand-made JWTs for the refused ones.
 */
import { createPrivateKey, createSign } from "node:crypto";
import { request as httpRequest } from "node:http";
import { createAppAuth } from "@octokit/auth-app";
import { request } from "@octokit/request";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeGithub, startFakeGithub } from "../fakes/github.js";
import { APP_ID, appKeyPair, DEFAULT_INSTALLATION, INSTALLATION, KEYS } from "./github-fixture.js";

function jwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  privatePem = KEYS.privatePem,
): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const data = `${enc(header)}.${enc(payload)}`;
  const sig = createSign("RSA-SHA256").update(data).sign(createPrivateKey(privatePem)).toString("base64url");
  return `${data}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);

describe("fake GitHub", () => {
  let fake: FakeGithub;
  beforeAll(async () => {
    fake = await startFakeGithub({
      appId: APP_ID,
      clientId: "Iv23liFAKE",
      publicKey: KEYS.publicPem,
      installations: [DEFAULT_INSTALLATION],
    });
  });
  afterAll(() => fake.close());

  async function call(
    method: string,
    path: string,
    auth: string | undefined,
    body?: unknown,
    userAgent = "test",
  ): Promise<{ status: number; json: Record<string, unknown> | undefined; headers: Headers }> {
    const res = await fetch(`${fake.url}${path}`, {
      method,
      headers: {
        ...(auth ? { authorization: auth } : {}),
        ...(userAgent ? { "user-agent": userAgent } : {}),
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  const good = () => ({ iat: now() - 30, exp: now() + 540, iss: APP_ID });
  const getInstallation = (token: string) =>
    call("GET", `/app/installations/${INSTALLATION}`, `Bearer ${token}`);

  it("accepts the real @octokit/auth-app's JWT and mints a scoped token", async () => {
    const auth = createAppAuth({
      appId: APP_ID,
      privateKey: KEYS.privatePem,
      request: request.defaults({ baseUrl: fake.url }),
    });
    const t = await auth({
      type: "installation",
      installationId: INSTALLATION,
      repositoryNames: ["checkout"],
      permissions: { contents: "read" },
      refresh: true,
    });
    expect(t.token).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
    expect(t.repositoryNames).toEqual(["checkout"]);
    expect(t.permissions).toEqual({ contents: "read", metadata: "read" });
    expect(Date.parse(t.expiresAt) - Date.now()).toBeGreaterThan(3590_000);
    expect(Date.parse(t.expiresAt) - Date.now()).toBeLessThanOrEqual(3600_000);
  });

  it("accepts the client id as `iss`, and a numeric-string app id", async () => {
    expect(
      (await getInstallation(jwt({ alg: "RS256", typ: "JWT" }, { ...good(), iss: "Iv23liFAKE" }))).status,
    ).toBe(200);
    expect((await getInstallation(jwt({ alg: "RS256" }, { ...good(), iss: String(APP_ID) }))).status).toBe(
      200,
    );
  });

  it("refuses JWTs GitHub refuses", async () => {
    const cases: [string, string][] = [
      ["alg HS256", jwt({ alg: "HS256" }, good())],
      [
        "alg none",
        `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(good())).toString("base64url")}.`,
      ],
      ["another key", jwt({ alg: "RS256" }, good(), appKeyPair().privatePem)],
      ["another app", jwt({ alg: "RS256" }, { ...good(), iss: APP_ID + 1 })],
      ["no iss", jwt({ alg: "RS256" }, { iat: now() - 30, exp: now() + 500 })],
      ["iat in the future", jwt({ alg: "RS256" }, { ...good(), iat: now() + 120 })],
      ["iat not an integer", jwt({ alg: "RS256" }, { ...good(), iat: now() - 30.5 })],
      ["expired", jwt({ alg: "RS256" }, { ...good(), iat: now() - 700, exp: now() - 100 })],
      ["exp 11 minutes ahead", jwt({ alg: "RS256" }, { ...good(), iat: now() - 10, exp: now() + 660 })],
      ["exp - iat over 10 minutes", jwt({ alg: "RS256" }, { ...good(), iat: now() - 200, exp: now() + 500 })],
      ["not a JWT", "abc.def"],
    ];
    for (const [name, token] of cases) {
      const res = await getInstallation(token);
      expect([name, res.status]).toEqual([name, 401]);
      expect(typeof res.json?.message).toBe("string");
    }
    expect((await getInstallation(jwt({ alg: "RS256" }, good()))).status).toBe(200);
  });

  it("needs a User-Agent, as GitHub does", async () => {
    // fetch always sends one: a bare node:http request does not
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${fake.url}/app/installations/${INSTALLATION}`, {
        headers: { authorization: `Bearer ${jwt({ alg: "RS256" }, good())}` },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it("answers the installation with its account and permissions; 404 for another", async () => {
    const res = await getInstallation(jwt({ alg: "RS256" }, good()));
    expect(res.json).toMatchObject({
      id: INSTALLATION,
      account: { login: "acme" },
      app_id: APP_ID,
      permissions: { contents: "write", metadata: "read" },
    });
    const other = await call("GET", "/app/installations/999", `Bearer ${jwt({ alg: "RS256" }, good())}`);
    expect(other.status).toBe(404);
  });

  const mint = (body: unknown) =>
    call(
      "POST",
      `/app/installations/${INSTALLATION}/access_tokens`,
      `Bearer ${jwt({ alg: "RS256" }, good())}`,
      body,
    );

  it("422 for permissions the installation lacks, levels GitHub does not offer, unknown names, unknown repositories", async () => {
    const refusedPermissions = [
      { pages: "read" },
      { members: "write" },
      { workflows: "read" },
      { contents: "admin" },
      { "pull-requests": "read" },
      { contents: 1 },
    ];
    for (const permissions of refusedPermissions) {
      const res = await mint({ repositories: ["checkout"], permissions });
      expect([permissions, res.status]).toEqual([permissions, 422]);
      expect(res.json?.message).toBe("The permissions requested are not granted to this installation.");
    }
    const repo = await mint({ repositories: ["checkout", "nope"], permissions: { contents: "read" } });
    expect(repo.status).toBe(422);
    expect(repo.json?.message).toMatch(/repository that does not exist or is not accessible/);
    const tooMany = await mint({
      repositories: Array.from({ length: 501 }, () => "checkout"),
      permissions: {},
    });
    expect(tooMany.status).toBe(201); // duplicates collapse to one repository
  });

  it("201 with the documented shape; a token without permissions gets the installation's", async () => {
    const res = await mint({ repositories: ["Checkout"], permissions: { deployments: "write" } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      token: expect.stringMatching(/^ghs_/),
      expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      permissions: { deployments: "write", metadata: "read" },
      repository_selection: "selected",
      repositories: [expect.objectContaining({ name: "checkout", full_name: "acme/checkout" })],
    });
    const all = await mint({});
    expect(all.json?.permissions).toMatchObject(DEFAULT_INSTALLATION.permissions);
    expect(all.json?.repositories).toBeUndefined();
  });

  it("lists an installation token's repositories page by page; DELETE ends the token at once", async () => {
    const t = (await mint({ permissions: { metadata: "read" } })).json!.token as string;
    const page1 = await call("GET", "/installation/repositories?per_page=4", `token ${t}`);
    expect(page1.json).toMatchObject({ total_count: 6 });
    expect((page1.json!.repositories as unknown[]).length).toBe(4);
    expect(page1.headers.get("link")).toContain('rel="next"');
    const page2 = await call("GET", "/installation/repositories?per_page=4&page=2", `token ${t}`);
    expect((page2.json!.repositories as { name: string }[]).map((r) => r.name)).toEqual(["svc-b", "website"]);
    expect((await call("DELETE", "/installation/token", `token ${t}`)).status).toBe(204);
    expect((await call("GET", "/installation/repositories", `token ${t}`)).status).toBe(401);
    expect((await call("DELETE", "/installation/token", `token ${t}`)).status).toBe(401);
    // a JWT is not an installation token
    expect(
      (await call("GET", "/installation/repositories", `Bearer ${jwt({ alg: "RS256" }, good())}`)).status,
    ).toBe(401);
  });

  it("uses of a token: 404 outside its repositories, 403 without the permission, 401 once expired", async () => {
    let clock = Date.now();
    const f2 = await startFakeGithub({
      appId: APP_ID,
      publicKey: KEYS.publicPem,
      installations: [DEFAULT_INSTALLATION],
      now: () => clock,
    });
    try {
      const res = await fetch(`${f2.url}/app/installations/${INSTALLATION}/access_tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt({ alg: "RS256" }, good())}`, "user-agent": "t" },
        body: JSON.stringify({ repositories: ["checkout"], permissions: { contents: "read" } }),
      });
      const { token } = (await res.json()) as { token: string };
      const put = (repo: string) =>
        fetch(`${f2.url}/repos/acme/${repo}/contents/a.txt`, {
          method: "PUT",
          headers: { authorization: `token ${token}`, "user-agent": "t" },
          body: JSON.stringify({ message: "m", content: "YQ==" }),
        }).then((r) => r.status);
      const get = (repo: string) =>
        fetch(`${f2.url}/repos/acme/${repo}`, {
          headers: { authorization: `token ${token}`, "user-agent": "t" },
        }).then((r) => r.status);
      expect(await get("checkout")).toBe(200);
      expect(await get("payments")).toBe(404);
      expect(await put("checkout")).toBe(403);
      // the same checks without HTTP, for other tests
      expect(f2.use(token, "contents", "read", "acme/checkout")).toBe(200);
      expect(f2.use(token, "contents", "write", "acme/checkout")).toBe(403);
      expect(f2.use(token, "contents", "read", "acme/payments")).toBe(404);
      expect(f2.use(token, "contents", "read", "other/checkout")).toBe(404);
      clock += 3600_000;
      expect(await get("checkout")).toBe(401);
      expect(f2.use(token, "contents", "read", "acme/checkout")).toBe(401);
    } finally {
      await f2.close();
    }
  });
});
