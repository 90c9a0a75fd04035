/**
 * The console's HTTP side in process (`app.request()`, no browser): sessions and their cookie,
 * CSRF and Origin checks, roles, approvers' signed challenges and decisions (what the browser's
 * script does, done here with jose), held calls' exact arguments, escaping and coded refusals.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Policy, type Server } from "../../src/app.js";
import { type ConsoleDeps, CSP, consoleRoutes } from "../../src/console/index.js";
import { signedAssertion } from "../broker/kit.js";
import { quickstartKey, quickstartWithDevApproval } from "../broker/live.js";
import { createTempDatabase, postgresEnabled } from "../store/backends.js";

const BASE = "http://127.0.0.1:8080";
let dir: string;
let policy: Policy;
let server: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-console-routes-"));
  policy = await quickstartWithDevApproval(dir);
  server = await createServer({
    policy,
    dataDir: join(dir, "data"),
    version: "test",
    baseUrl: BASE,
    stateCache: false,
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const FORM = { "content-type": "application/x-www-form-urlencoded" };

async function get(path: string, cookie?: string): Promise<Response> {
  return server.app.request(`${BASE}${path}`, { headers: cookie ? { cookie } : {} });
}

async function post(path: string, fields: Record<string, string>, cookie?: string, origin = BASE) {
  return server.app.request(`${BASE}${path}`, {
    method: "POST",
    headers: { ...FORM, origin, ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
}

async function challenge(): Promise<string> {
  const html = await (await get("/console/login")).text();
  return /name="challenge" value="([^"]+)"/.exec(html)![1]!;
}

const codeOf = async (res: Response) => /<code>(ERR_[A-Z_]+)<\/code>/.exec(await res.text())?.[1];

async function operator(): Promise<{ cookie: string; csrf: string }> {
  const res = await post("/console/login/operator", {
    challenge: await challenge(),
    name: "olivia",
    token: server.adminToken,
  });
  expect(res.status).toBe(303);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const html = await (await get("/console/kill", cookie)).text();
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]! };
}

async function approver(name: string): Promise<{ cookie: string; csrf: string }> {
  const c = await challenge();
  const id = `${name}@acme.example`;
  const assertion = await signedAssertion(
    await quickstartKey(`approver-${name}`),
    id,
    `${BASE}/console/login`,
    {
      claims: { jti: c },
    },
  );
  const res = await post("/console/login/approver", { challenge: c, approver: id, assertion });
  expect(res.status).toBe(303);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const html = await (await get("/console/approvals", cookie)).text();
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "" };
}

describe("sessions", () => {
  it("redirects to the sign-in page without a session; the sign-in page carries the CSP", async () => {
    for (const path of ["/console/approvals", "/console/writs", "/console/audit?agent=x"]) {
      const res = await get(path);
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toBe("/console/login");
    }
    const res = await get("/console/login");
    expect(res.headers.get("content-security-policy")).toBe(CSP);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await get("/console/audit/export", "writ_console=forged")).toHaveProperty("status", 401);
  });

  it("the cookie is HttpOnly and SameSite=Strict, not Secure on loopback http", async () => {
    const res = await post("/console/login/operator", {
      challenge: await challenge(),
      name: "o",
      token: server.adminToken,
    });
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/console/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it("the cookie is Secure when the public URL is not loopback http", async () => {
    const token = "t".repeat(43);
    const app = consoleRoutes({
      config: policy.config,
      adminToken: token,
      baseUrl: () => "https://writ.example",
    } as unknown as ConsoleDeps);
    const page = await (await app.request("https://writ.example/console/login")).text();
    const c = /name="challenge" value="([^"]+)"/.exec(page)![1]!;
    const res = await app.request("https://writ.example/console/login/operator", {
      method: "POST",
      headers: { ...FORM, origin: "https://writ.example" },
      body: new URLSearchParams({ challenge: c, name: "o", token }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("set-cookie")).toMatch(/; Secure/);
  });

  it("refuses a wrong admin token, a reused or unknown challenge", async () => {
    const c = await challenge();
    const wrong = await post("/console/login/operator", { challenge: c, name: "o", token: "x".repeat(43) });
    expect(wrong.status).toBe(401);
    expect(await codeOf(wrong)).toBe("ERR_CONSOLE_AUTH");
    // the challenge was spent by the failed attempt
    const again = await post("/console/login/operator", {
      challenge: c,
      name: "o",
      token: server.adminToken,
    });
    expect(again.status).toBe(401);
    const unknown = await post("/console/login/operator", {
      challenge: "made-up",
      name: "o",
      token: server.adminToken,
    });
    expect(unknown.status).toBe(401);
  });

  it("refuses an approver's challenge signed by another approver's key, or for another challenge", async () => {
    const c = await challenge();
    const forged = await signedAssertion(
      await quickstartKey("approver-alice"),
      "bob@acme.example",
      `${BASE}/console/login`,
      {
        claims: { jti: c },
      },
    );
    const res = await post("/console/login/approver", {
      challenge: c,
      approver: "bob@acme.example",
      assertion: forged,
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("ERR_CLIENT_ASSERTION_SIGNATURE");
    const c2 = await challenge();
    const other = await signedAssertion(
      await quickstartKey("approver-bob"),
      "bob@acme.example",
      `${BASE}/console/login`,
    );
    const res2 = await post("/console/login/approver", { challenge: c2, assertion: other });
    expect(res2.status).toBe(401);
  });

  it("sign-out ends the session", async () => {
    const { cookie, csrf } = await operator();
    expect((await post("/console/logout", { csrf }, cookie)).status).toBe(303);
    expect((await get("/console/writs", cookie)).headers.get("location")).toBe("/console/login");
  });
});

describe("CSRF and roles", () => {
  it("refuses a POST without the session's token or from another origin", async () => {
    const { cookie, csrf } = await operator();
    const none = await post("/console/kill/lift", { kind: "all" }, cookie);
    expect(none.status).toBe(403);
    expect(await codeOf(none)).toBe("ERR_CONSOLE_CSRF");
    const foreign = await post("/console/kill/lift", { kind: "all", csrf }, cookie, "https://evil.example");
    expect(foreign.status).toBe(403);
    const wrongType = await server.app.request(`${BASE}/console/kill/lift`, {
      method: "POST",
      headers: { cookie, origin: BASE, "content-type": "application/json" },
      body: JSON.stringify({ csrf, kind: "all" }),
    });
    expect(wrongType.status).toBe(400);
  });

  it("an approver may not use the operator's pages or actions", async () => {
    const { cookie, csrf } = await approver("bob");
    for (const path of ["/console/writs", "/console/kill", "/console/audit", "/console/metrics"]) {
      const res = await get(path, cookie);
      expect(res.status, path).toBe(403);
      expect(await codeOf(res)).toBe("ERR_CONSOLE_FORBIDDEN");
    }
    expect((await post("/console/kill/engage", { csrf, kind: "all" }, cookie)).status).toBe(403);
    expect(await server.operator.engagedKills()).toEqual([]);
  });
});

describe("approvals", () => {
  async function pending(params: Record<string, unknown> = { service: "checkout", tag: "v1.0.0" }) {
    return server.operator.pendingApprovals().then(async () => {
      const { approvalService } = await import("../../src/broker/index.js");
      return approvalService(server.store).createRequest({
        agent: "release-bot",
        playbook: "deploy-service",
        params,
        environment: "dev",
        ticket: "CHG-9999",
        requester: "erin@acme.example",
        expiresAt: new Date(Date.now() + 600_000),
      });
    });
  }

  const decision = async (who: string, claims: Record<string, unknown>) =>
    signedAssertion(
      await quickstartKey(`approver-${who}`),
      `${who}@acme.example`,
      `${BASE}/console/approvals`,
      {
        claims,
      },
    );

  it("decides only with a signature covering exactly the request, binding, decision and reason", async () => {
    const r = await pending();
    const bob = await approver("bob");
    const path = `/console/approvals/${r.id}/decide`;
    const unsigned = await post(path, { csrf: bob.csrf, decision: "approve" }, bob.cookie);
    expect(unsigned.status).toBe(400);
    expect(await codeOf(unsigned)).toBe("ERR_CONSOLE_SIGNATURE");
    // signed for approve, submitted as deny
    const signedApprove = await decision("bob", { approval: r.id, binding: r.binding, decision: "approve" });
    const flipped = await post(
      path,
      { csrf: bob.csrf, decision: "deny", reason: "no", assertion: signedApprove },
      bob.cookie,
    );
    expect(await codeOf(flipped)).toBe("ERR_CONSOLE_SIGNATURE");
    // another binding
    const other = await decision("bob", { approval: r.id, binding: "0".repeat(64), decision: "approve" });
    expect(
      await codeOf(await post(path, { csrf: bob.csrf, decision: "approve", assertion: other }, bob.cookie)),
    ).toBe("ERR_CONSOLE_SIGNATURE");
    // signed by alice while bob is signed in
    const alices = await decision("alice", { approval: r.id, binding: r.binding, decision: "approve" });
    expect(
      await codeOf(await post(path, { csrf: bob.csrf, decision: "approve", assertion: alices }, bob.cookie)),
    ).toBe("ERR_CONSOLE_AUTH");
    expect(
      (
        await server.store.db
          .selectFrom("approval_decisions")
          .selectAll()
          .where("request_id", "=", r.id)
          .execute()
      ).length,
    ).toBe(0);
    // the right one (a textarea's line breaks arrive as CRLF, signed as LF), then its replay
    const good = await decision("bob", {
      approval: r.id,
      binding: r.binding,
      decision: "approve",
      reason: "ok\nchecked",
    });
    const ok = await post(
      path,
      { csrf: bob.csrf, decision: "approve", reason: "ok\r\nchecked", assertion: good },
      bob.cookie,
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toContain("status=approved");
    expect(
      (
        await server.store.db
          .selectFrom("approval_requests")
          .select("status")
          .where("id", "=", r.id)
          .executeTakeFirst()
      )?.status,
    ).toBe("approved");
    const replay = await post(
      path,
      { csrf: bob.csrf, decision: "approve", reason: "ok\r\nchecked", assertion: good },
      bob.cookie,
    );
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain("ERR_CLIENT_ASSERTION_REPLAY");
  });

  it("the approval service's refusals keep their codes (self-approval by the agent's owner)", async () => {
    const r = await pending({ service: "search", tag: "v1.0.1" });
    const alice = await approver("alice"); // release-bot's owner
    const signed = await decision("alice", { approval: r.id, binding: r.binding, decision: "approve" });
    const res = await post(
      `/console/approvals/${r.id}/decide`,
      { csrf: alice.csrf, decision: "approve", assertion: signed },
      alice.cookie,
    );
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("ERR_APPROVAL_SELF");
  });

  it("shows a held call's exact arguments when they hash to the bound digest, and says so when they do not", async () => {
    const { approvalService } = await import("../../src/broker/index.js");
    const { canonicalJson, toJsonValue } = await import("../../src/audit/index.js");
    const { createHash } = await import("node:crypto");
    const digest = (v: unknown) =>
      `sha256:${createHash("sha256")
        .update(canonicalJson(toJsonValue(v)))
        .digest("hex")}`;
    const args = { path: "/srv/reports/<script>alert(1)</script>", confirm: true };
    const make = async (stored: unknown, resource: string) => {
      const r = await approvalService(server.store).createRequest({
        agent: "ops-assistant",
        playbook: "mcp:runbooks:run",
        params: { arguments: digest(args), resources: [resource], why: "irreversible" },
        environment: "dev",
        requester: "ops-assistant",
        expiresAt: new Date(Date.now() + 600_000),
      });
      await server.store.db
        .insertInto("gateway_holds")
        .values({
          binding: r.binding,
          request_id: r.id,
          created_at: new Date(),
          arguments: JSON.stringify(stored),
        })
        .execute();
      return r;
    };
    const good = await make(args, "/srv/reports/a");
    const bad = await make({ ...args, confirm: false }, "/srv/reports/b");
    const { cookie } = await operator();
    const html = await (await get("/console/approvals", cookie)).text();
    const card = (id: string) =>
      html.slice(html.indexOf(`id="req-${id}"`), html.indexOf("</article>", html.indexOf(`id="req-${id}"`)));
    expect(card(good.id)).toContain("hash to the digest the approval binds");
    expect(card(good.id)).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(card(bad.id)).toContain("not available (or do not match the digest)");
    expect(card(bad.id)).not.toContain("&quot;confirm&quot;: false");
    expect(html).not.toContain("<script>alert(1)");
    // the quickstart has no such tool: the card says so instead of failing the inbox
    expect(card(good.id)).toContain("ERR_APPROVAL_NO_POLICY");
  });
});

describe("input", () => {
  it("escapes what it is given and refuses what it cannot take, with codes", async () => {
    const { cookie } = await operator();
    const evil = "<script>alert(1)</script>";
    for (const path of ["/console/writs?agent=", "/console/audit?agent=", "/console/denials?reason="]) {
      const res = await get(`${path}${encodeURIComponent(evil)}`, cookie);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).not.toContain(evil);
      expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    }
    const bad = [
      ["/console/denials?from=yesterday", "ERR_CONSOLE_INPUT"],
      ["/console/denials?class=nope", "ERR_CONSOLE_INPUT"],
      ["/console/audit?before=-1", "ERR_CONSOLE_INPUT"],
      [`/console/writs?agent=${encodeURIComponent("a\u0000b")}`, "ERR_CONSOLE_INPUT"],
      ["/console/findings?status=gone", "ERR_CONSOLE_INPUT"],
      ["/console/findings?after=zz", "ERR_CONSOLE_INPUT"],
      ["/console/findings/nope", "ERR_CONSOLE_NOT_FOUND"],
      ["/console/nothing-here", "ERR_CONSOLE_NOT_FOUND"],
    ] as const;
    for (const [path, code] of bad) {
      const res = await get(path, cookie);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(await codeOf(res), path).toBe(code);
    }
    const { csrf } = await operator();
    const unknownWrit = await post("/console/writs/nope/revoke", { csrf }, cookie);
    expect(unknownWrit.status).toBe(403); // another session's token
    const own = await operator();
    const res = await post("/console/writs/nope/revoke", { csrf: own.csrf }, own.cookie);
    expect(res.status).toBe(404);
    expect(await codeOf(res)).toBe("ERR_WRIT_NOT_FOUND");
    const twice = await server.app.request(`${BASE}/console/kill/lift`, {
      method: "POST",
      headers: { ...FORM, origin: BASE, cookie: own.cookie },
      body: `csrf=${own.csrf}&kind=all&kind=agent`,
    });
    expect(twice.status).toBe(400);
  });
});

describe.runIf(postgresEnabled)("on PostgreSQL", () => {
  let pgServer: Server;
  let temp: Awaited<ReturnType<typeof createTempDatabase>>;
  let pgDir: string;

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), "writ-console-pg-"));
    temp = await createTempDatabase();
    pgServer = await createServer({
      policy,
      dataDir: join(pgDir, "data"),
      databaseUrl: temp.url,
      version: "test",
      baseUrl: BASE,
    });
  }, 60_000);
  afterAll(async () => {
    await pgServer?.close();
    await temp?.drop();
    await rm(pgDir, { recursive: true, force: true });
  });

  it("every operator page answers, the denials feed finds a refusal and the held-call column holds JSON", async () => {
    await pgServer.audit.append("broker.denied", {
      environment: "dev",
      agent: "release-bot",
      reason: "no_grant",
    });
    await pgServer.audit.append("pdp.decision", {
      agent: "cost-analyst",
      decision: { allowed: false, code: "explicit_deny", reasons: [] },
    });
    await pgServer.audit.append("pdp.decision", {
      agent: "cost-analyst",
      decision: { allowed: true, code: "allowed" },
    });
    const html = await (await pgServer.app.request(`${BASE}/console/login`)).text();
    const c = /name="challenge" value="([^"]+)"/.exec(html)![1]!;
    const login = await pgServer.app.request(`${BASE}/console/login/operator`, {
      method: "POST",
      headers: { ...FORM, origin: BASE },
      body: new URLSearchParams({ challenge: c, name: "o", token: pgServer.adminToken }).toString(),
    });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    for (const page of ["approvals", "writs", "kill", "findings", "audit", "metrics", "agents", "maturity"]) {
      const res = await pgServer.app.request(`${BASE}/console/${page}`, { headers: { cookie } });
      expect(res.status, page).toBe(200);
    }
    const denials = await (
      await pgServer.app.request(`${BASE}/console/denials`, { headers: { cookie } })
    ).text();
    expect(denials).toContain("r-explicit_deny");
    expect(denials).toContain("r-no_grant");
    expect(denials).not.toContain("r-allowed");
    const filtered = await (
      await pgServer.app.request(`${BASE}/console/denials?agent=release-bot`, { headers: { cookie } })
    ).text();
    expect(filtered).toContain("r-no_grant");
    expect(filtered).not.toContain("r-explicit_deny");
  });
});
