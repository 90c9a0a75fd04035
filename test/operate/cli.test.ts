/**
 * `writ agents list|show` and `writ maturity` in process against an embedded store: JSON, text,
 * HTML, the exit codes (`--fail-under`, unknown agent, bad flags) and the audit log verified with
 * the data folder's key.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSigningKey, openAuditLog } from "../../src/audit/index.js";
import { main } from "../../src/cli/main.js";
import { openStore } from "../../src/store/index.js";
import { createTempDatabase, postgresEnabled } from "../store/backends.js";
import { fixtureYaml } from "./fixture.js";

let dir = "";
let config = "";
let data = "";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runWith({}, ...argv);
}

async function runWith(
  env: NodeJS.ProcessEnv,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    out: (s: string) => {
      out += s;
    },
    err: (s: string) => {
      err += s;
    },
  };
  const code = await main(argv, io, env);
  return { code, out, err };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-operate-"));
  config = join(dir, "writ.yaml");
  data = join(dir, "data");
  await writeFile(config, fixtureYaml());
  const store = await openStore({ dataDir: data });
  await store.migrate();
  const now = Date.now();
  await store.writs.insert({
    id: "w-1",
    agent: "good",
    playbook: "deploy",
    environment: "dev",
    params: {},
    grants: [{ action: "k8s:apps/deployments:patch", resource: "shop/web" }],
    issuedAt: new Date(now - 60_000),
    expiresAt: new Date(now + 600_000),
  });
  const signer = await loadSigningKey(data, { create: true });
  const log = openAuditLog({ repo: store.audit, signer, checkpointEvery: 0 });
  await log.append("gateway.call", { agent: "good", writ: "w-1", tool: "files:read_text_file" });
  await log.append("broker.denied", { agent: "<ghost>", reason: "unknown_client" });
  await log.checkpoint();
  await store.close();
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("writ agents and writ maturity", () => {
  it("lists the inventory as JSON and text", async () => {
    const j = await run("agents", "list", "--config", config, "--data", data, "--json");
    expect(j.code).toBe(0);
    const inv = JSON.parse(j.out) as {
      agents: { id: string; declared: boolean; credentials: { id?: string }[] }[];
    };
    expect(inv.agents.map((a) => a.id)).toEqual(["<ghost>", "bad", "good", "quiet", "twin"]);
    expect(inv.agents.find((a) => a.id === "good")?.credentials.map((c) => c.id)).toContain("w-1");
    const t = await run("agents", "list", "--config", config, "--data", data);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^AGENT\s+OWNER/);
    expect(t.out).toMatch(/<ghost>: undeclared/);
    const show = await run("agents", "show", "good", "--config", config, "--data", data);
    expect(show.out).toMatch(/writ w-1 {2}deploy@dev/);
  });

  it("refuses an unknown agent and bad flags with a code", async () => {
    const missing = await run("agents", "show", "nobody", "--config", config, "--data", data, "--json");
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.err).error.code).toBe("ERR_AGENT_NOT_FOUND");
    const days = await run("agents", "list", "--config", config, "--data", data, "--dormant-days", "0");
    expect(days.code).toBe(2);
    const fmt = await run("maturity", "--config", config, "--data", data, "--format", "pdf", "--json");
    expect(fmt.code).toBe(2);
    expect(JSON.parse(fmt.err).error.code).toBe("ERR_USAGE");
    const pct = await run("maturity", "--config", config, "--data", data, "--fail-under", "101");
    expect(pct.code).toBe(2);
    const noStore = await run("agents", "list", "--config", config, "--data", join(dir, "none"), "--json");
    expect(noStore.code).toBe(3);
    expect(JSON.parse(noStore.err).error.code).toBe("ERR_STORE_NOT_FOUND");
  });

  it("scores agents, verifies the log with the data folder's key, and exits by --fail-under", async () => {
    const j = await run("maturity", "--config", config, "--data", data, "--json");
    expect(j.code).toBe(0);
    const r = JSON.parse(j.out) as {
      agents: { agent: string; score: number; answers: { practice: string; status: string }[] }[];
    };
    const good = r.agents.find((a) => a.agent === "good");
    expect(good?.answers.find((a) => a.practice === "tamper-resistant-log")?.status).toBe("pass");
    expect(good?.answers.find((a) => a.practice === "no-open-category-2")?.status).toBe("unknown");
    const skipped = JSON.parse(
      (await run("maturity", "--config", config, "--data", data, "--json", "--no-verify-audit")).out,
    );
    expect(
      skipped.agents[0].answers.find((a: { practice: string }) => a.practice === "tamper-resistant-log")
        .status,
    ).toBe("unknown");
    expect((await run("maturity", "--config", config, "--data", data, "--fail-under", "50")).code).toBe(1);
    expect(
      (await run("maturity", "--config", config, "--data", data, "--agent", "good", "--fail-under", "80"))
        .code,
    ).toBe(0);
    const html = await run("maturity", "--config", config, "--data", data, "--format", "html");
    expect(html.code).toBe(0);
    expect(html.out).toMatch(/^<!doctype html>/);
    expect(html.out).toContain("&lt;script&gt;");
  });
});

describe.skipIf(!postgresEnabled)("writ agents on PostgreSQL (WRIT_DATABASE_URL)", () => {
  it("reads the same inventory from PostgreSQL", async () => {
    const temp = await createTempDatabase();
    try {
      const store = await openStore({ databaseUrl: temp.url });
      await store.migrate();
      await store.writs.insert({
        id: "w-pg",
        agent: "twin",
        playbook: "deploy",
        environment: "dev",
        params: {},
        grants: [{ action: "k8s:apps/deployments:patch", resource: "shop/web" }],
        issuedAt: new Date(Date.now() - 2 * 3600_000),
        expiresAt: new Date(Date.now() + 3600_000),
      });
      await store.close();
      const r = await runWith(
        { WRIT_DATABASE_URL: temp.url },
        "agents",
        "show",
        "twin",
        "--config",
        config,
        "--json",
      );
      expect(r.code).toBe(0);
      const twin = JSON.parse(r.out).agent as {
        credentials: { id?: string }[];
        flags: { code: string; credential?: string }[];
      };
      expect(twin.credentials.map((c) => c.id)).toContain("w-pg");
      expect(twin.flags).toContainEqual(
        expect.objectContaining({ code: "credential-outlives-use", credential: "w-pg" }),
      );
    } finally {
      await temp.drop();
    }
  }, 60_000);
});
