/**
 * Issue 14's "done when", as a new user does it: `writ serve` on the quickstart config (as `npm
 * start` runs it, on a fresh data folder), the real `examples/quickstart/agent.mjs --approval`
 * asking for a writ that needs one SRE in dev (no change window: any hour), the quickstart's
 * approver signing in to the console at `/` with their key file, seeing the agent's request arrive,
 * approving it in the page (signed in the browser), and the waiting agent then getting its writ and
 * exiting 0. Screenshots of the inbox before and after go to .ci/screenshots/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launch, SCREENSHOTS, watch } from "../console/browser.js";
import { assertBuilt, BIN, ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart");
let dir: string;
let server: ChildProcess;
let url: string;
let browser: Browser;
let agent: ChildProcess | undefined;

beforeAll(async () => {
  assertBuilt();
  dir = await mkdtemp(join(tmpdir(), "writ-quickstart-console-"));
  server = spawn(
    process.execPath,
    [BIN, "serve", "--config", join(QUICKSTART, "writ.yaml"), "--port", "0", "--data", dir, "--json"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  // the server logs every request to stderr: read it, or a full pipe would block the server
  server.stderr?.resume();
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("serve did not start")), 90_000);
    createInterface({ input: server.stdout! }).once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    server.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
  });
  browser = await launch();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (agent && agent.exitCode === null) agent.kill("SIGTERM");
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The agent as the README runs it; its output, the request id it prints, and its exit. */
function startAgent() {
  const child = spawn(process.execPath, [join(QUICKSTART, "agent.mjs"), "--approval", "--server", url], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent = child;
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d) => {
    out.stdout += d;
  });
  child.stderr.on("data", (d) => {
    out.stderr += d;
  });
  const exited = new Promise<number | null>((r) => child.on("close", r));
  const requestId = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the agent asked no approval: ${out.stdout}${out.stderr}`)),
      60_000,
    );
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /waiting for approvers \(request (\S+),/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) =>
      reject(new Error(`the agent exited ${code} first: ${out.stdout}${out.stderr}`)),
    );
  });
  return { out, exited, requestId };
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe("the quickstart's approval in the console (issue 14's done-when)", () => {
  it("the agent waits, the approver approves in the browser, the agent gets its writ and exits 0", async () => {
    const run = startAgent();
    const id = await run.requestId;
    expect(run.out.stdout).toContain("4. deploy-candidate needs approval in dev: asked through CIBA");
    await expect.poll(() => run.out.stdout).toContain(`approve in the console: ${url}/`);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watch(page);
    // the address the user opens: the root, which asks them to sign in
    await page.goto(`${url}/`);
    expect(new URL(page.url()).pathname).toBe("/console/login");
    await page.locator("#ap-id").fill("bob@acme.example");
    await page
      .getByLabel("Private key (JWK file)")
      .setInputFiles(join(QUICKSTART, "keys", "approver-bob.DEVELOPMENT-ONLY.private.jwk"));
    await expect.poll(() => page.getByLabel("…or paste the JWK").inputValue()).toContain('"d"');
    await page.getByRole("button", { name: "Sign in as approver" }).click();
    await page.waitForURL(`${url}/console/approvals`);

    const card = page.locator(`article[id="req-${id}"]`);
    await expect.poll(() => card.count()).toBe(1);
    const text = (await card.textContent()) ?? "";
    expect(text).toContain("release-bot");
    expect(text).toContain("deploy-candidate");
    expect(text).toContain("v1.5.0-rc.1");
    expect(text).toContain("checkout/checkout"); // a grant the parameters render to
    expect(text).toMatch(/Still needed: 1 more from `sre`/);
    // still waiting: nothing issued before the approval
    expect(run.out.stdout).not.toMatch(/4\. writ writ_/);
    await shot(page, "quickstart-inbox-before");

    await card.getByLabel("Reason (optional)").fill("rc looks fine");
    await card.getByRole("button", { name: "Approve (signed with your key)" }).click();
    await page.waitForURL(/decided=/);
    await expect.poll(() => page.locator(".flash").textContent()).toContain("approved");
    expect(await page.locator(`article[id="req-${id}"]`).count()).toBe(0);
    await shot(page, "quickstart-inbox-after");

    // the agent continues: its poll gets the writ, and the decision point now allows the work
    expect(await run.exited, run.out.stdout + run.out.stderr).toBe(0);
    expect(run.out.stdout).toContain(`approved: request ${id}`);
    expect(run.out.stdout).toMatch(/4\. writ writ_\S+: \d+ s \(bound: playbook\), 10 uses/);
    expect(run.out.stdout).toContain(
      "5. with the writ, may release-bot k8s:apps/deployments:patch on checkout/checkout? ALLOW (allowed)",
    );
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
