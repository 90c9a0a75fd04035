/**
 * A gateway-held tool call approved in the browser, end to end: the agent's irreversible call
 * (`fs__move_file`) is held by the gateway in a live `writ serve`, the approver signs in to the
 * console with their key, sees the call's exact arguments on the request's card, approves it
 * (signed in WebCrypto), and the agent's same call then goes through to the real filesystem server.
 */
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Browser, BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { type Live, QUICKSTART, startLive } from "../broker/live.js";
import { agentToken, connect, type Fixture, refusal, writeFixture } from "../gateway/support.js";
import { launch, SCREENSHOTS, watch } from "./browser.js";

let dir: string;
let fx: Fixture;
let live: Live;
let bot: Client;
let browser: Browser;
let context: BrowserContext | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-console-held-"));
  fx = await writeFixture(dir);
  // the gateway fixture's approvers have no keys; register bob's (the quickstart's) to sign in with
  const bobKeys = join(QUICKSTART, "keys", "approver-bob.jwks.json");
  await appendFile(fx.config, `\napprovers:\n  bob@acme.example: { keys: { file: ${bobKeys} } }\n`);
  const { policy, problems } = await loadPolicy(fx.config);
  if (!policy) throw new Error(JSON.stringify(problems, null, 2));
  live = await startLive(policy, join(dir, "data"), { stateCache: true });
  const mcpUrl = `${live.base}/mcp`;
  bot = await connect(mcpUrl, await agentToken(live.base, "release-bot", mcpUrl));
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await bot?.close();
  await live?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a held tool call in the console", () => {
  it("shows the call's exact arguments, is approved in the browser, and the agent's call then runs", async () => {
    const args = {
      source: join(fx.root, "notes", "todo.txt"),
      destination: join(fx.root, "notes", "approved-<b>move.txt"),
    };
    const held = await bot.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(held)?.reason).toBe("approval_required");
    const id = refusal(held)!.approval!;
    expect(refusal(await bot.callTool({ name: "fs__move_file", arguments: args }))?.reason).toBe(
      "approval_pending",
    );

    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems = watch(page);
    await page.goto(`${live.base}/console/login`);
    await page.locator("#ap-id").fill("bob@acme.example");
    await page
      .getByLabel("Private key (JWK file)")
      .setInputFiles(join(QUICKSTART, "keys", "approver-bob.DEVELOPMENT-ONLY.private.jwk"));
    await expect.poll(() => page.getByLabel("…or paste the JWK").inputValue()).toContain('"d"');
    await page.getByRole("button", { name: "Sign in as approver" }).click();
    await page.waitForURL(`${live.base}/console/approvals`);

    const card = page.locator(`article[id="req-${id}"]`);
    await expect.poll(() => card.textContent()).toContain("Held tool call");
    const text = (await card.textContent()) ?? "";
    expect(text).toContain("release-bot");
    expect(text).toContain("Tool fs:move_file, held because it is irreversible");
    expect(text).toContain("Exact arguments");
    // the exact arguments, not only their digest; markup in them is text
    expect(text).toContain(args.destination);
    expect(await card.locator("b").count()).toBe(0);
    await page.screenshot({ path: join(SCREENSHOTS, "approvals-held-call.png"), fullPage: true });

    await card.getByRole("button", { name: /^Approve/ }).click();
    await page.waitForURL(/decided=/);
    await expect.poll(() => page.locator(".flash").textContent()).toContain("approved");
    expect(problems).toEqual([]);

    const done = await bot.callTool({ name: "fs__move_file", arguments: args });
    expect(refusal(done)).toBeUndefined();
    expect(done.isError, JSON.stringify(done)).toBeFalsy();
    expect(await readFile(args.destination, "utf8")).toBe("buy milk\n");
    const decisions = await live.server.store.db
      .selectFrom("approval_decisions")
      .selectAll()
      .where("request_id", "=", id)
      .execute();
    expect(decisions).toMatchObject([{ approver: "bob@acme.example", decision: "approve" }]);
  }, 90_000);
});
