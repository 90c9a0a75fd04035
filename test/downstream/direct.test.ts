/**
 * The redemption `writ creds` makes without the agent SDK (src/downstream/direct.ts: node:http and
 * node:crypto, for a cold start) against a live server that demands DPoP nonces: the credential
 * it gets works and is the one the issuer made; refusals are the SDK's `WritRefusal` with the
 * broker's reason; a playbook that needs approvers, and a server the SDK must judge, are handed
 * back before anything is issued.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WritRefusal } from "../../src/client/errors.js";
import { type AgentKey, agentKeyFromJwk } from "../../src/downstream/agent.js";
import { redeemDirect } from "../../src/downstream/direct.js";
import { type DownstreamLive, QUICKSTART_KEYS, startDownstreamLive } from "./fixture.js";

let live: DownstreamLive;
let key: AgentKey;

beforeAll(async () => {
  live = await startDownstreamLive({ dpopNonce: "require" });
  key = agentKeyFromJwk(
    await readFile(join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  );
}, 120_000);
afterAll(() => live?.stop());

const opts = () => ({ server: live.base, environment: "dev", agent: "release-bot", key });
const issues = () => live.system.calls.filter((c) => c.op === "issue").length;

describe("redeeming without the SDK", () => {
  it("answers the issuer's credential, its nonce challenges answered", async () => {
    const before = issues();
    const r = await redeemDirect(opts(), { playbook: "restart", params: {} }, "kubernetes");
    if (r === undefined || r === "approval") throw new Error(`not redeemed: ${r}`);
    expect(r.system).toBe("kubernetes");
    expect(r.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(live.system.works(r.credential.token as string)).toBe(true);
    expect(issues()).toBe(before + 1);
    const call = live.system.calls.find((c) => c.op === "issue" && c.writ === r.writ);
    expect(call).toMatchObject({ system: "kubernetes", agent: "release-bot" });
  });

  it("throws the broker's refusal with its reason", async () => {
    const err = await redeemDirect(opts(), { playbook: "nope", params: {} }, "kubernetes").catch((e) => e);
    expect(err).toBeInstanceOf(WritRefusal);
    expect((err as WritRefusal).reason).toBe("unknown_playbook");
  });

  it("hands a playbook that needs approvers back, nothing issued", async () => {
    const before = issues();
    expect(await redeemDirect(opts(), { playbook: "guarded", params: {} }, "kubernetes")).toBe("approval");
    expect(issues()).toBe(before);
  });

  it("leaves plain HTTP to another machine, and what is not a URL, to the SDK, asking nothing", async () => {
    for (const server of ["http://writ.acme.example", "not a url", "ftp://127.0.0.1"])
      expect(
        await redeemDirect({ ...opts(), server }, { playbook: "restart", params: {} }, "kubernetes"),
      ).toBe(undefined);
  });

  it("reports an unreachable server with ERR_CLIENT_UNREACHABLE", async () => {
    const err = await redeemDirect(
      { ...opts(), server: "http://127.0.0.1:9" },
      { playbook: "restart", params: {} },
      "kubernetes",
    ).catch((e) => e);
    expect(err).toMatchObject({ code: "ERR_CLIENT_UNREACHABLE" });
  });
});
