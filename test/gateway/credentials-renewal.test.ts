/**
 * The per-writ connections over time, on the gateway's clock: a credential that ends before its
 * writ (GitHub's one-hour installation tokens) is replaced shortly before its end — a new token from
 * the issuer and a new process — while within its life every call reuses the same one; past the
 * writ's end nothing starts; closing stops every process. The real GitHub issuer against the fake,
 * our whoami MCP server as the upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Upstream } from "../../src/core/index.js";
import { type ScopedUpstreams, scopedUpstreams } from "../../src/gateway/credentials.js";
import { envResolver, isGatewayError } from "../../src/gateway/index.js";
import { type Rig, rig, writ } from "../downstream/github-fixture.js";
import { ROOT } from "../support/cli.js";

const WHOAMI = `${ROOT}/test/gateway/fixtures/whoami.mjs`;
let gh: Rig;
let scoped: ScopedUpstreams;

const upstream: Upstream = {
  kind: "stdio-upstream",
  id: "ghs",
  command: process.execPath,
  args: [{ template: WHOAMI, env: [] }],
  env: new Map(),
  cwd: ROOT,
  tools: new Map(),
  resources: [],
  trustNewTools: false,
  credentials: { downstream: "github", maxWrits: 4, path: [] },
  path: [],
};

beforeAll(async () => {
  gh = await rig();
  scoped = scopedUpstreams({
    issuers: (_env, system) => (system === "github" ? gh.issuer : undefined),
    connect: { resolve: envResolver(process.env), version: "test", stderr: "ignore" },
    audit: async () => {},
  });
});

afterAll(async () => {
  await scoped?.close();
  await gh?.close();
});

async function whoami(at: Date, w: ReturnType<typeof writ>): Promise<{ pid: number; token: string }> {
  const { conn } = await scoped.acquire(upstream, w, at);
  const r = await conn.call("whoami", {}, { timeoutMs: 10_000 });
  const me = JSON.parse((r.content[0] as { text: string }).text) as {
    pid: number;
    env: Record<string, string>;
  };
  return { pid: me.pid, token: me.env.GH_TOKEN! };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("per-writ connections over time", () => {
  it("reuses the writ's token within its life, replaces it shortly before it ends, and refuses past the writ", async () => {
    const t0 = new Date();
    const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }], {
      issuedAt: t0,
      expiresAt: new Date(t0.getTime() + 2 * 3600_000),
    });
    const first = await whoami(t0, w);
    expect(gh.fake.tokens.get(first.token)).toBeDefined();
    const later = await whoami(new Date(t0.getTime() + 30 * 60_000), w);
    expect(later).toEqual(first);
    // GitHub's token ends after an hour, an hour before the writ: replaced in its last minute
    const renewed = await whoami(new Date(t0.getTime() + 59.5 * 60_000), w);
    expect(renewed.token).not.toBe(first.token);
    expect(renewed.pid).not.toBe(first.pid);
    expect(gh.fake.tokens.get(renewed.token)).toBeDefined();
    const end = Date.now() + 3000;
    while (alive(first.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(alive(first.pid), "the old process is stopped").toBe(false);
    expect(scoped.count("ghs")).toBe(1);

    const past = await scoped.acquire(upstream, w, new Date(w.expiresAt.getTime() + 1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isGatewayError(past) && past.reason).toBe("writ_expired");
    expect(scoped.count("ghs")).toBe(0);

    await scoped.close();
    const end2 = Date.now() + 3000;
    while (alive(renewed.pid) && Date.now() < end2) await new Promise((r) => setTimeout(r, 20));
    expect(alive(renewed.pid), "closing stops every process").toBe(false);
  });

  it("a slow issuer refuses the call once the limit passes, and nothing is cached", async () => {
    // the issuer answers only when the test lets it: a refusal before that is the limit's, never the answer's
    let answer: () => void = () => {};
    const held = new Promise<void>((r) => {
      answer = r;
    });
    let asked = 0;
    const slow = await rig({
      beforeMint: () => {
        asked++;
        return held;
      },
    });
    try {
      const s = scopedUpstreams({
        issuers: () => slow.issuer,
        connect: { resolve: envResolver(process.env), version: "test", stderr: "ignore" },
        audit: async () => {},
        issueTimeoutMs: 200,
      });
      const w = writ([{ action: "github:contents:read", resource: "acme/checkout" }]);
      const err = await s.acquire(upstream, w, new Date()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGatewayError(err) && err.reason).toBe("downstream_unavailable");
      expect((err as Error).message).toContain("did not answer within 200 ms");
      expect(asked, "the issuer was asked").toBe(1);
      expect(s.count("ghs")).toBe(0);
      await s.close();
    } finally {
      answer();
      await slow.close();
    }
  });
});
