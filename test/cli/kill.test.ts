import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");

describe("writ kill", () => {
  let dir: string;
  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), "writ-kill-"));
    const store = await openStore({ dataDir: dir });
    await store.migrate();
    const now = new Date();
    for (const [id, agent, environment] of [
      ["w1", "release-bot", "prod"],
      ["w2", "ops-assistant", "prod"],
      ["w3", "ops-assistant", "dev"],
    ] as const) {
      await store.writs.insert({
        id,
        agent,
        environment,
        playbook: "p",
        params: {},
        grants: [{ action: "k8s:core/pods:get", resource: "a/b" }],
        issuedAt: new Date(now.getTime() - 1000),
        expiresAt: new Date(now.getTime() + 600_000),
      });
    }
    await store.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    runCli(["kill", "-c", CONFIG, "--data", dir, ...args], { env: { WRIT_OPERATOR: "alice@acme.example" } });

  it("revokes what is in scope and reports it", async () => {
    const r = await cli("--env", "prod", "--reason", "incident 42", "--json");
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { kill: { engagedBy: string }; revoked: { id: string }[] };
    expect(out.revoked.map((w) => w.id)).toEqual(["w1", "w2"]);
    expect(out.kill.engagedBy).toBe("alice@acme.example");
  });

  it("prints a human report with the way to lift it", async () => {
    const r = await cli("--agent", "ops-assistant");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("1 outstanding writ(s) revoked");
    expect(r.stdout).toContain("w3");
    expect(r.stdout).toContain("writ kill --lift --agent ops-assistant");
  });

  it("lifts, and lifting again is a no (exit 1)", async () => {
    expect((await cli("--lift", "--env", "prod")).code).toBe(0);
    const again = await cli("--lift", "--env", "prod", "--json");
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error.code).toBe("ERR_KILL_NOT_ENGAGED");
  });

  it("usage errors: no scope, two scopes, an unknown agent", async () => {
    expect((await cli()).code).toBe(2);
    expect((await cli("--all", "--env", "prod")).code).toBe(2);
    const ghost = await cli("--agent", "ghost", "--json");
    expect(ghost.code).toBe(2);
    expect(JSON.parse(ghost.stderr).error.code).toBe("ERR_KILL_SCOPE");
  });
});
