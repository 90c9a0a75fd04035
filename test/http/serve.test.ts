/**
 * `writ serve` as a process: the quickstart config on a fresh embedded store, AuthZEN decisions over
 * real HTTP, every decision in the audit log, a clean stop that checkpoints, and a log that verifies.
 */
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";
import { startServe } from "../support/serve.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");

describe("writ serve", () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), "writ-serve-"));
    ({ child, url, exited } = await startServe(CONFIG, dir));
  }, 40_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  const evaluate = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/access/v1/evaluation`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  it("publishes AuthZEN metadata", async () => {
    const res = await fetch(`${url}/.well-known/authzen-configuration`);
    expect(res.status).toBe(200);
    const meta = (await res.json()) as Record<string, string>;
    expect(meta.access_evaluation_endpoint).toMatch(/\/access\/v1\/evaluation$/);
    expect(meta.access_evaluations_endpoint).toMatch(/\/access\/v1\/evaluations$/);
  });

  it("allows and denies with reasons", async () => {
    const allow = await evaluate({
      subject: { type: "agent", id: "cost-analyst" },
      action: { name: "aws:s3:GetObject" },
      resource: { type: "aws", id: "arn:aws:s3:::acme-reports/2026/10.csv" },
      context: { environment: "prod" },
    });
    expect(allow.status).toBe(200);
    expect(await allow.json()).toMatchObject({ decision: true, context: { reason_code: "allowed" } });

    const deny = await evaluate(
      {
        subject: { type: "agent", id: "ops-assistant" },
        action: { name: "mcp:pagerduty:add_note" },
        resource: { type: "mcp", id: "P123" },
        context: { environment: "prod", tainted: true, arguments: { note: "token=s3cr3t-value" } },
      },
      { "x-request-id": "req-42" },
    );
    expect(await deny.json()).toMatchObject({
      decision: false,
      context: { reason_code: "guardrail_forbid" },
    });
  });

  it("answers a malformed body with problem+json, not a stack", async () => {
    const res = await fetch(`${url}/access/v1/evaluation`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await res.text()).not.toMatch(/at .*\.js:\d+/);
  });

  it("stops cleanly on SIGTERM, and the audit log it leaves verifies, holds the decisions and no secrets", async () => {
    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    const verify = await runCli(["audit", "verify", "--data", dir, "--json"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });

    const tail = await runCli(["audit", "tail", "--data", dir, "-n", "50", "--json"]);
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).not.toContain("s3cr3t-value");
    const records = tail.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    expect(records.map((r) => r.type)).toEqual([
      "server.start",
      "pdp.decision",
      "pdp.decision",
      "server.stop",
    ]);
    // the digest of writ.yaml as it was loaded, not of a second read of the file
    const configText = await readFile(CONFIG);
    expect(records[0]!.data.configDigest).toBe(
      `sha256:${createHash("sha256").update(configText).digest("hex")}`,
    );
    const note = records[2]!.data as {
      requestId: string;
      decision: { code: string };
      context: { argumentsDigest: string };
    };
    expect(note.requestId).toBe("req-42");
    expect(note.decision.code).toBe("guardrail_forbid");
    expect(note.context.argumentsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe("writ serve refuses", () => {
  it("a non-loopback address without a PDP token", async () => {
    const r = await runCli(["serve", "--config", CONFIG, "--host", "0.0.0.0", "--port", "0"], {
      env: { WRIT_PDP_TOKEN: "" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("without WRIT_PDP_TOKEN");
  });

  it("an invalid config, naming its errors", async () => {
    const r = await runCli([
      "serve",
      "--config",
      join(ROOT, "test", "fixtures", "bad-config", "unknown-playbook.yaml"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[ERR_CONFIG_UNKNOWN_REF]");
  });

  it("a bad port", async () => {
    const r = await runCli(["serve", "--config", CONFIG, "--port", "http"]);
    expect(r.code).toBe(2);
  });
});
