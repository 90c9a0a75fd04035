/**
 * The quickstart's agent script, as the README runs it, against `writ serve` on the quickstart
 * config: baseline denied, writ issued, the same request allowed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, BIN, ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart");
let dir: string;
let server: ChildProcess;
let url: string;

beforeAll(async () => {
  assertBuilt();
  dir = await mkdtemp(join(tmpdir(), "writ-agent-"));
  server = spawn(
    process.execPath,
    [BIN, "serve", "--config", join(QUICKSTART, "writ.yaml"), "--port", "0", "--data", dir, "--json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  // the server logs every request to stderr: read it, or a full pipe would block the server
  server.stderr?.resume();
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("serve did not start")), 90_000);
    createInterface({ input: server.stdout! }).once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
  });
}, 100_000);

afterAll(async () => {
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await rm(dir, { recursive: true, force: true });
});

function runAgent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(QUICKSTART, "agent.mjs"), "--server", url, ...args], {
      cwd: ROOT,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("examples/quickstart/agent.mjs", () => {
  it("baseline denied, writ issued, the same request allowed", async () => {
    const r = await runAgent(["--env", "dev"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "3. may release-bot k8s:apps/deployments:patch on checkout/checkout now? DENY (no_grant)",
    );
    expect(r.stdout).toMatch(/4\. writ writ_\S+: \d+ s \(bound: playbook\), 10 uses/);
    expect(r.stdout).toContain(
      "5. with the writ, may release-bot k8s:apps/deployments:patch on checkout/checkout? ALLOW (allowed)",
    );
    expect(r.stdout).toContain("introspection: active true");
  }, 30_000);

  it("a refused writ ends with the reason and exit 1", async () => {
    const r = await runAgent(["--env", "dev", "--params", '{"service":"billing","tag":"v1.0.0"}']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("writ refused: invalid_parameters");
  }, 30_000);
});
