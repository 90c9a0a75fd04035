/**
 * `writ creds`'s start-up fast path (src/cli/creds-fast.ts): a fresh cache entry is answered exactly
 * as the full command prints it, and everything else — a miss, an expiring entry, git, `--no-cache`,
 * a bare `--env`, an empty option, an unknown option — is left to the full command.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheFile, formatCredential, parseParams, writeCache } from "../../src/cli/creds-cache.js";
import { credsFromCache } from "../../src/cli/creds-fast.js";

const SERVER = "https://writ.acme.example";
const now = new Date("2026-12-06T12:00:00Z");
const later = new Date(now.getTime() + 30 * 60_000);
let dir = "";
const env = () => ({
  WRIT_CACHE_DIR: dir,
  WRIT_SERVER: SERVER,
  WRIT_AGENT: "release-bot",
  WRIT_AGENT_KEY: "/keys/release-bot.jwk",
  WRIT_ENV: "dev",
});
const aws = {
  accessKeyId: "ASIAFAKEFAKEFAKE0001",
  secretAccessKey: "secret",
  sessionToken: "session",
  expiration: later.toISOString(),
};

async function store(
  system: "aws" | "github",
  playbook: string,
  params: string[],
  credential: object,
  expiresAt = later,
) {
  const file = cacheFile(dir, [SERVER, "dev", "release-bot", system, playbook, parseParams(params), null]);
  writeCache(dir, file, {
    system,
    writ: "writ_x",
    expiresAt,
    notes: [],
    credential: { ...credential },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-creds-fast-"));
  await store("aws", "fetch", ["version=1.2.3", "n:=2"], aws);
  await store("github", "push", [], { token: "ghs_fake", expiration: later.toISOString() });
  await store("aws", "soon", [], aws, new Date(now.getTime() + 30_000));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("writ creds from the cache, before the CLI loads", () => {
  it("answers a cached aws credential exactly as the full command formats it", async () => {
    const out = await credsFromCache(
      ["creds", "aws", "--playbook", "fetch", "--param", "version=1.2.3", "--param=n:=2"],
      env(),
      now,
    );
    expect(out).toBe(formatCredential("aws", aws, { exportForm: false }));
    expect(JSON.parse(out!)).toMatchObject({ Version: 1, AccessKeyId: aws.accessKeyId });
  });

  it("answers github's GH_TOKEN form, and its export form", async () => {
    expect(await credsFromCache(["creds", "github", "--playbook", "push"], env(), now)).toBe(
      "GH_TOKEN=ghs_fake",
    );
    expect(await credsFromCache(["creds", "github", "--playbook", "push", "--export"], env(), now)).toBe(
      "export GH_TOKEN=ghs_fake",
    );
  });

  it("answers with --insecure-http too (it makes no request; the flag only lets the full command ask)", async () => {
    expect(
      await credsFromCache(["creds", "github", "--playbook", "push", "--insecure-http"], env(), now),
    ).toBe("GH_TOKEN=ghs_fake");
  });

  const fallbacks: [string, string[]][] = [
    ["a miss (other parameters)", ["creds", "aws", "--playbook", "fetch", "--param", "version=9"]],
    [
      "parameters in another order (another cache key)",
      ["creds", "aws", "--playbook", "fetch", "--param", "n:=2", "--param", "version=1.2.3"],
    ],
    ["an entry within a minute of expiry", ["creds", "aws", "--playbook", "soon"]],
    ["git's helper protocol", ["creds", "git", "get", "--playbook", "push"]],
    ["--no-cache", ["creds", "aws", "--playbook", "fetch", "--no-cache"]],
    ["a bare --env (github's GH_TOKEN flag)", ["creds", "github", "--playbook", "push", "--env"]],
    ["an empty option", ["creds", "github", "--playbook", "push", "--server", ""]],
    ["an unknown option", ["creds", "aws", "--playbook", "fetch", "--bogus"]],
    ["a positional argument", ["creds", "aws", "extra", "--playbook", "fetch"]],
    ["no playbook", ["creds", "aws"]],
    ["another verb", ["check", "aws", "--playbook", "fetch"]],
  ];
  for (const [what, argv] of fallbacks) {
    it(`leaves ${what} to the full command`, async () => {
      expect(await credsFromCache(argv, env(), now)).toBeUndefined();
    });
  }

  it("leaves a credential missing a field to the full command (which reports it)", async () => {
    await store("aws", "broken", [], { accessKeyId: "x" });
    expect(await credsFromCache(["creds", "aws", "--playbook", "broken"], env(), now)).toBeUndefined();
  });
});
