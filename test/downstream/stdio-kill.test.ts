/**
 * `writ gateway --stdio` holds the store and answers the operator's kill on its own admin API: that
 * kill must reach the downstream issuers as `writ serve`'s does (each issuer's kill awaited before the
 * answer, then the revoked writs' records removed), not leave credentials already handed out to
 * the reaper.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStdioGateway, loadPolicy, type StdioGateway } from "../../src/app.js";
import type { DownstreamIssuer, IssuerFactories } from "../../src/downstream/index.js";
import { ROOT } from "../support/cli.js";
import { configDir, DOWNSTREAM_YAML } from "./fixture.js";
import { credentialOf } from "./outcome.js";
import { TestDownstream } from "./test-issuer.js";

const WHOAMI = join(ROOT, "test", "gateway", "fixtures", "whoami.mjs");

let dir: string;
let opened: StdioGateway;
const system = new TestDownstream();
/** The issuers the gateway's registry built, by system. */
const built = new Map<string, DownstreamIssuer>();

beforeAll(async () => {
  const yaml = `${DOWNSTREAM_YAML}gateway:
  upstreams:
    who:
      command: ${process.execPath}
      args: ["${WHOAMI}"]
      cwd: ${ROOT}
`;
  const made = await configDir(yaml);
  dir = made.dir;
  const loaded = await loadPolicy(made.file);
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  const f = system.factories();
  const keep =
    <C>(
      name: string,
      make: (c: C, d: Parameters<IssuerFactories["github"]>[1]) => Promise<DownstreamIssuer>,
    ) =>
    async (c: C, d: Parameters<IssuerFactories["github"]>[1]) => {
      const issuer = await make(c, d);
      built.set(name, issuer);
      return issuer;
    };
  opened = await createStdioGateway({
    policy: loaded.policy!,
    dataDir: join(dir, "data"),
    version: "test",
    upstreamStderr: "ignore",
    env: { WRIT_TEST_K8S_TOKEN: "test-token" },
    downstream: {
      factories: {
        aws: keep("aws", f.aws),
        github: keep("github", f.github),
        kubernetes: keep("kubernetes", f.kubernetes),
      },
      reaperPeriodMs: 3_600_000,
    },
  });
}, 60_000);

afterAll(async () => {
  await opened?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a kill through `writ gateway --stdio`'s admin API", () => {
  it("reaches the issuers: a credential handed out stops working before the answer", async () => {
    const now = new Date();
    const github = built.get("github")!;
    const credential = await credentialOf(
      github.issue(
        {
          id: "w-stdio-kill",
          environment: "dev",
          agent: "release-bot",
          playbook: "push",
          params: {},
          grants: [{ action: "github:contents:write", resource: "acme/checkout" }],
          denies: [],
          issuedAt: now,
          expiresAt: new Date(now.getTime() + 600_000),
        },
        now,
      ),
    );
    const secret = (credential as { token: string }).token;
    expect(system.works(secret)).toBe(true);
    const res = await opened.admin.request("/admin/v1/kill", {
      method: "POST",
      headers: { authorization: `Bearer ${opened.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ scope: { kind: "agent", agent: "release-bot" }, by: "test" }),
    });
    expect(res.status).toBe(200);
    expect(system.works(secret)).toBe(false);
    expect(system.calls).toContainEqual(
      expect.objectContaining({ op: "kill", system: "github", environment: "dev", agent: "release-bot" }),
    );
    await opened.downstreamSettled();
  });
});
