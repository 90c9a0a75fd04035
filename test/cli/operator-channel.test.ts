/**
 * The operator verbs beside a running `writ serve` on the embedded store: the server holds the data
 * folder's lock, so `writ kill`, `writ keys rotate|list` and `writ approvals list` reach it over its
 * admin API (URL and token in `<data>/serve.json`), and what they do takes effect in the running
 * broker at once — a kill stops the next token exchange, a rotation changes the published JWKS.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentClient, requestWrit } from "../broker/live.js";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";
import { startServe } from "../support/serve.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");

describe("operator verbs beside a running writ serve (embedded store)", () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), "writ-operator-"));
    ({ child, url, exited } = await startServe(CONFIG, dir));
  }, 40_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    runCli([...args, "--config", CONFIG, "--data", dir], { env: { WRIT_OPERATOR: "alice@acme.example" } });

  const exchange = async () =>
    requestWrit(await agentClient(url, "dev"), {
      playbook: "deploy-service",
      parameters: { service: "checkout", tag: "v1.4.2" },
      environment: "dev",
      ticket: "CHG-1234",
    });

  it("writes serve.json for the owner only", async () => {
    const file = join(dir, "serve.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const content = JSON.parse(await readFile(file, "utf8")) as { url: string; adminToken: string };
    expect(content.url).toBe(url);
    expect(content.adminToken.length).toBeGreaterThanOrEqual(32);
  });

  it("refuses the admin API without the token, or with a wrong one", async () => {
    const none = await fetch(`${url}/admin/v1/kill`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    const wrong = await fetch(`${url}/admin/v1/kill`, {
      headers: { authorization: `Bearer ${"x".repeat(43)}` },
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { code: string }).code).toBe("ERR_ADMIN_TOKEN");
  });

  it("writ kill reaches the server: the writ it issued is revoked and the next exchange is refused", async () => {
    const writ = await exchange();
    const killed = await cli("kill", "--agent", "release-bot", "--reason", "drill", "--json");
    expect(killed.code, killed.stderr).toBe(0);
    const report = JSON.parse(killed.stdout) as { kill: { engagedBy: string }; revoked: { id: string }[] };
    expect(report.kill.engagedBy).toBe("alice@acme.example");
    expect(report.revoked.map((w) => w.id)).toContain(writ.writ_id);

    const refused = await exchange().then(
      () => undefined,
      (err: { cause?: { reason?: string } }) => err.cause?.reason,
    );
    expect(refused).toBe("kill_switch_engaged");

    const lifted = await cli("kill", "--lift", "--agent", "release-bot");
    expect(lifted.code, lifted.stderr).toBe(0);
    // the refusal above was a denial: the agent waits out its one-second slow-down, then is served
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await exchange()).writ_id).toMatch(/^writ_/);
    const again = await cli("kill", "--lift", "--agent", "release-bot", "--json");
    expect(again.code).toBe(1);
    expect((JSON.parse(again.stderr) as { error: { code: string } }).error.code).toBe("ERR_KILL_NOT_ENGAGED");
    const ghost = await cli("kill", "--agent", "ghost", "--json");
    expect(ghost.code).toBe(2);
    expect((JSON.parse(ghost.stderr) as { error: { code: string } }).error.code).toBe("ERR_KILL_SCOPE");
  });

  it("writ keys rotate reaches the server: the JWKS publishes the new key beside the old", async () => {
    const before = (await (await fetch(`${url}/env/dev/jwks`)).json()) as { keys: { kid: string }[] };
    const rotated = await cli("keys", "rotate", "--env", "dev", "--json");
    expect(rotated.code, rotated.stderr).toBe(0);
    const r = JSON.parse(rotated.stdout) as { created: { kid: string }; retired: { kid: string } | null };
    const after = (await (await fetch(`${url}/env/dev/jwks`)).json()) as { keys: { kid: string }[] };
    expect(after.keys.map((k) => k.kid)).toContain(r.created.kid);
    if (before.keys.length > 0) expect(after.keys.map((k) => k.kid)).toContain(r.retired?.kid);
    // the running broker signs with the new key at once
    const writ = await exchange();
    const header = JSON.parse(Buffer.from(writ.access_token.split(".")[0]!, "base64url").toString()) as {
      kid: string;
    };
    expect(header.kid).toBe(r.created.kid);
    const listed = await cli("keys", "list", "--env", "dev", "--json");
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { kid: string; status: string }[]).map((k) => k.status)).toContain(
      "active",
    );
  });

  it("writ approvals list and writ approve reach the server", async () => {
    const list = await cli("approvals", "list", "--json");
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ requests: [] });
    const unknown = await cli("approve", "nope", "--as", "bob@acme.example", "--json");
    expect(unknown.code).toBe(1);
    expect((JSON.parse(unknown.stderr) as { error: { code: string } }).error.code).toMatch(/^ERR_APPROVAL/);
  });

  it("stops cleanly, removes serve.json, and the log holds the kill, the lift and the rotation", async () => {
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await expect(stat(join(dir, "serve.json"))).rejects.toThrow();
    const tail = await runCli(["audit", "tail", "-n", "200", "--data", dir, "--json"]);
    expect(tail.code, tail.stderr).toBe(0);
    const types = tail.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types).toEqual(
      expect.arrayContaining(["kill.engaged", "kill.lifted", "keys.rotate", "broker.writ_issued"]),
    );
    // with the server gone, the verbs open the store again
    const local = await cli("keys", "list", "--json");
    expect(local.code, local.stderr).toBe(0);
  });
});
