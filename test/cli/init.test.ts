import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";

describe("writ init", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "writ-init-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a starter that passes writ check, and a key pair whose private half is 0600", async () => {
    const r = await runCli(["init", "--dir", dir, "--agent", "ci-bot", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { config: string; privateKey: string; publicKeys: string };
    const check = await runCli(["check", "--config", out.config, "--json"]);
    expect(check.code, check.stdout).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, errors: 0 });
    expect((await stat(out.privateKey)).mode & 0o777).toBe(0o600);
    const pub = JSON.parse(await readFile(out.publicKeys, "utf8")) as { keys: Record<string, unknown>[] };
    expect(pub.keys[0]).not.toHaveProperty("d");
    expect(JSON.parse(await readFile(out.privateKey, "utf8"))).toHaveProperty("d");
  });

  it("the starter explains: the agent reads by default and cannot publish without a writ", async () => {
    await runCli(["init", "--dir", dir, "--agent", "ci-bot"]);
    const config = join(dir, "writ.yaml");
    const read = await runCli([
      "explain",
      "-c",
      config,
      "--agent",
      "ci-bot",
      "--env",
      "dev",
      "--action",
      "github:contents:read",
      "--resource",
      "my-org/app",
    ]);
    expect(read.code, read.stdout + read.stderr).toBe(0);
    const put = ["--action", "aws:s3:PutObject", "--resource", "arn:aws:s3:::my-org-artifacts/app/1.tgz"];
    const without = await runCli(["explain", "-c", config, "--agent", "ci-bot", "--env", "dev", ...put]);
    expect(without.code).toBe(1);
    const withWrit = await runCli([
      "explain",
      "-c",
      config,
      "--agent",
      "ci-bot",
      "--env",
      "dev",
      ...put,
      "--with-writ",
      "publish-artifact",
      "--param",
      "name=app",
    ]);
    expect(withWrit.code, withWrit.stdout + withWrit.stderr).toBe(0);
  });

  it("refuses to overwrite without --force", async () => {
    expect((await runCli(["init", "--dir", dir])).code).toBe(0);
    const again = await runCli(["init", "--dir", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists; pass --force");
    expect((await runCli(["init", "--dir", dir, "--force"])).code).toBe(0);
  });

  it("refuses a bad agent id", async () => {
    const r = await runCli(["init", "--dir", dir, "--agent", "Bad Name"]);
    expect(r.code).toBe(2);
  });
});

describe("usage errors", () => {
  it("an unknown verb or a missing required option exits 2", async () => {
    expect((await runCli(["frobnicate"])).code).toBe(2);
    expect((await runCli(["explain", "--agent", "x"])).code).toBe(2);
  });

  it("bad --context and --writ JSON are usage errors with codes", async () => {
    const base = [
      "explain",
      "-c",
      "examples/quickstart/writ.yaml",
      "--agent",
      "ops-assistant",
      "--env",
      "prod",
      "--action",
      "k8s:core/pods:get",
      "--resource",
      "a/b",
      "--json",
    ];
    for (const extra of [
      ["--context", "{nope"],
      ["--context", '{"colour":"red"}'],
      ["--writ", '{"grants":[]}'],
      ["--at", "yesterday"],
    ]) {
      const r = await runCli([...base, ...extra]);
      expect(r.code, extra.join(" ")).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toBe("ERR_USAGE");
    }
  });
});
