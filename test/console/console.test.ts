/**
 * The web console in a real browser (Debian's chromium through playwright-core) against a live
 * `writ serve` app on loopback with a copy of the quickstart (deploy-service also needs one SRE in
 * dev, so the test runs any day): sign-in as operator and as the quickstart approver, approving a
 * CIBA request in the page (the key signs in WebCrypto) after which the agent's poll succeeds,
 * revoking a writ, engaging and lifting a kill, the CSP and no console errors, hostile strings shown
 * as text, keyboard use, and 390 px without sideways scrolling. One screenshot per page under
 * .ci/screenshots/.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as client from "openid-client";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "../../src/app.js";
import { CSP } from "../../src/console/index.js";
import {
  agentClient,
  type Live,
  QUICKSTART,
  quickstartWithDevApproval,
  requestWrit,
  startLive,
} from "../broker/live.js";
import { launch, SCREENSHOTS, watch } from "./browser.js";

const RESOURCE = "https://k8s.acme.example";
let dir: string;
let live: Live;
let server: Server;
let base: string;
let browser: Browser;
let context: BrowserContext | undefined;
let problems: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-console-"));
  live = await startLive(await quickstartWithDevApproval(dir), join(dir, "data"), { stateCache: false });
  ({ server, base } = live);
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await live?.stop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await context?.close();
  context = undefined;
  // every page the test opened: no console error, no uncaught exception, no dialog
  expect(problems).toEqual([]);
  problems = [];
});

async function open(width = 1280): Promise<Page> {
  context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  problems = watch(page);
  return page;
}

async function asOperator(page: Page): Promise<void> {
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe("/console/login");
  await page.getByLabel("Your name (for the records)").fill("olivia");
  await page.getByLabel("Admin token").fill(server.adminToken);
  await page.getByRole("button", { name: "Sign in as operator" }).click();
  await page.waitForURL(`${base}/console/approvals`);
}

async function asApprover(page: Page, name: string): Promise<void> {
  await page.goto(`${base}/console/login`);
  await page.locator("#ap-id").fill(`${name}@acme.example`);
  await page
    .getByLabel("Private key (JWK file)")
    .setInputFiles(join(QUICKSTART, "keys", `approver-${name}.DEVELOPMENT-ONLY.private.jwk`));
  await expect.poll(() => page.getByLabel("…or paste the JWK").inputValue()).toContain('"d"');
  await page.getByRole("button", { name: "Sign in as approver" }).click();
  await page.waitForURL(`${base}/console/approvals`);
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<string, unknown>;

describe("console in chromium", () => {
  it("nothing is readable without signing in, and every answer carries the CSP", async () => {
    const page = await open();
    for (const path of ["/console/approvals", "/console/writs", "/console/audit", "/console/metrics"]) {
      const res = await page.goto(`${base}${path}`);
      expect(new URL(page.url()).pathname).toBe("/console/login");
      expect(res?.headers()["content-security-policy"]).toBe(CSP);
      expect(res?.headers()["x-content-type-options"]).toBe("nosniff");
      expect(res?.headers()["referrer-policy"]).toBe("same-origin");
    }
    await shot(page, "login");
  });

  it("a wrong admin token is refused with a coded page", async () => {
    const page = await open();
    await page.goto(`${base}/console/login`);
    await page.getByLabel("Your name (for the records)").fill("mallory");
    await page.getByLabel("Admin token").fill("not-the-token");
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/console/login/operator")),
      page.getByRole("button", { name: "Sign in as operator" }).click(),
    ]);
    expect(res.status()).toBe(401);
    await expect.poll(() => page.locator("main").textContent()).toContain("ERR_CONSOLE_AUTH");
    // the browser reports the 401 itself; nothing else may be reported
    problems = problems.filter((p) => !p.includes("status of 401"));
  });

  it("an approver signs in with their key and approves a CIBA request; the agent's poll then gets its writ", async () => {
    const agent = await agentClient(base, "dev", "release-bot");
    const started = await client.initiateBackchannelAuthentication(agent.config, {
      login_hint: "erin@acme.example",
      resource: RESOURCE,
      authorization_details: JSON.stringify([
        {
          type: "writ_playbook",
          playbook: "deploy-service",
          parameters: { service: "checkout", tag: "v2.0.1" },
          ticket: "CHG-1234",
        },
      ]),
    });
    const page = await open();
    await asApprover(page, "bob");
    const card = page.locator(`article[id="req-${started.auth_req_id}"]`);
    await expect.poll(() => card.textContent()).toContain("deploy-service");
    const text = await card.textContent();
    expect(text).toContain("release-bot");
    expect(text).toContain("v2.0.1");
    expect(text).toContain("CHG-1234");
    expect(text).toContain("checkout/checkout"); // a grant the parameters render to
    expect(text).toMatch(/Still needed: 1 more from `sre`/);
    await shot(page, "approvals");
    // by keyboard: the reason, then Tab to the approve button and Enter
    await card.getByLabel("Reason (optional)").focus();
    await page.keyboard.type("tag v2.0.1 reviewed");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL(/decided=/);
    await expect.poll(() => page.locator(".flash").textContent()).toContain("approved");
    const writ = await client.pollBackchannelAuthenticationGrant(
      agent.config,
      started,
      { resource: RESOURCE },
      { DPoP: agent.DPoP },
    );
    expect(claimsOf(writ.access_token)).toMatchObject({
      sub: "erin@acme.example",
      act: { sub: "release-bot" },
    });
    const approval = await server.store.db
      .selectFrom("approval_decisions")
      .selectAll()
      .where("request_id", "=", started.auth_req_id)
      .execute();
    expect(approval).toMatchObject([
      { approver: "bob@acme.example", decision: "approve", reason: "tag v2.0.1 reviewed" },
    ]);
    // an approver sees the inbox only
    const res = await page.goto(`${base}/console/writs`);
    expect(res?.status()).toBe(403);
    await expect.poll(() => page.locator("main").textContent()).toContain("ERR_CONSOLE_FORBIDDEN");
    problems = problems.filter((p) => !p.includes("status of 403"));
  }, 60_000);

  it("an operator revokes a writ from the page", async () => {
    const agent = await agentClient(base, "dev", "ops-assistant");
    const got = await requestWrit(agent, {
      playbook: "scale-deployment",
      parameters: { service: "search", replicas: 3 },
    });
    const id = claimsOf(got.access_token).writ as string;
    const page = await open();
    await asOperator(page);
    await page.goto(`${base}/console/writs?agent=ops-assistant`);
    const row = page.locator("tr", { hasText: id });
    expect(await row.textContent()).toContain("scale-deployment");
    expect(await row.textContent()).toContain("search/search");
    await shot(page, "writs");
    await page.getByRole("button", { name: `Revoke writ ${id}` }).click();
    await page.waitForURL(/revoked=/);
    expect((await server.store.writs.get(id))?.status).toBe("revoked");
    expect(await page.locator("main").textContent()).not.toContain(`Revoke writ ${id}`);
  }, 60_000);

  it("an operator engages a kill after a confirmation naming what it revokes, then lifts it", async () => {
    const agent = await agentClient(base, "dev", "ops-assistant");
    const got = await requestWrit(agent, {
      playbook: "scale-deployment",
      parameters: { service: "checkout", replicas: 2 },
    });
    const id = claimsOf(got.access_token).writ as string;
    const page = await open();
    await asOperator(page);
    await page.goto(`${base}/console/kill`);
    await page.getByLabel("Agent", { exact: true }).first().check();
    await page.locator("#t-agent").selectOption("ops-assistant");
    await page.getByLabel("Reason").fill("runaway scaling");
    await shot(page, "kill");
    await page.getByRole("button", { name: "Review what this revokes" }).click();
    const confirm = await page.locator("main").textContent();
    expect(confirm).toContain("agent `ops-assistant`");
    expect(confirm).toContain(id);
    await shot(page, "kill-confirm");
    await page.getByRole("button", { name: "Engage the kill on agent `ops-assistant`" }).click();
    await page.waitForURL(/\/console\/kill\?done=/);
    expect(await page.locator(".flash").textContent()).toMatch(/revoked/);
    expect((await server.store.writs.get(id))?.status).toBe("revoked");
    expect((await server.operator.engagedKills()).map((k) => k.scope)).toEqual([
      { kind: "agent", agent: "ops-assistant" },
    ]);
    const refused = await requestWrit(agent, {
      playbook: "scale-deployment",
      parameters: { service: "checkout", replicas: 2 },
    }).catch((e) => e);
    expect(refused.cause?.reason ?? refused.error).toMatch(/kill/);
    await page.getByRole("button", { name: "Lift the kill on agent `ops-assistant`" }).click();
    await page.waitForURL(/lifted/);
    expect(await server.operator.engagedKills()).toEqual([]);
  }, 60_000);

  it("hostile strings in the store and in parameters are shown as text", async () => {
    const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
    await server.audit.append("test.hostile", { agent: evil, reason: evil });
    const page = await open();
    await asOperator(page);
    await page.goto(`${base}/console/audit?agent=${encodeURIComponent(evil)}`);
    expect(await page.getByLabel("Agent").inputValue()).toBe(evil);
    expect(await page.locator("main table").textContent()).toContain(evil);
    expect(await page.locator("main img").count()).toBe(0);
    await page.goto(`${base}/console/writs?agent=${encodeURIComponent(evil)}`);
    expect(await page.getByLabel("Agent").inputValue()).toBe(evil);
    await page.goto(`${base}/console/denials?reason=${encodeURIComponent(evil)}`);
    expect(await page.locator("script:not([src])").count()).toBe(0);
  }, 60_000);

  it("every page renders at 1280 px and at 390 px without sideways scrolling, and the keyboard reaches the menu", async () => {
    const pages = [
      "approvals",
      "writs",
      "kill",
      "denials",
      "findings",
      "audit",
      "metrics",
      "agents",
      "maturity",
      "reasons",
    ];
    for (const width of [1280, 390]) {
      const page = await open(width);
      await asOperator(page);
      for (const name of pages) {
        const res = await page.goto(`${base}/console/${name}`);
        expect(res?.status(), name).toBe(200);
        expect(await page.locator("h1").textContent()).not.toBe("");
        const overflow = Number(
          await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
        );
        expect(overflow, `${name} at ${width} px`).toBeLessThanOrEqual(0);
        if (width === 1280 && !["approvals", "writs", "kill"].includes(name)) await shot(page, name);
        if (width === 390 && ["approvals", "writs", "audit"].includes(name)) await shot(page, `${name}-390`);
      }
      await page.keyboard.press("Tab");
      expect(await page.evaluate("document.activeElement?.textContent")).toBe("Skip to content");
      await context!.close();
      context = undefined;
    }
  }, 120_000);
});
