/**
 * `writ keys rotate|list`, driven in process as src/cli/main.ts wires the verb, and once through the
 * built binary (the lazy registration in main.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import { environmentKeys } from "../../src/broker/keys.js";
import { type KeysCliDefaults, registerKeys } from "../../src/cli/keys.js";
import { EXIT, reportFailure } from "../../src/cli/output.js";
import { openStore } from "../../src/store/index.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";

const CONFIG = join(ROOT, "examples", "quickstart", "writ.yaml");
const SLOW = { timeoutMs: 60_000 }; // a child process starting PGlite on a busy machine
const T0 = new Date("2026-11-18T10:00:00Z");

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function writ(args: readonly string[], defaults: KeysCliDefaults = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
  let code: number = EXIT.ok;
  const program = new Command("writ")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerKeys(
    program,
    io,
    (c) => {
      code = c;
    },
    defaults,
  );
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    code = e instanceof CommanderError ? EXIT.usage : reportFailure(io, args.includes("--json"), e);
  }
  const result = { code, out: out.join("\n"), err: err.join("\n") };
  expect(result.err).not.toMatch(/\n\s+at /); // never a stack trace
  return result;
}

let root = "";
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "writ-keys-cli-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("writ keys (embedded store)", () => {
  it("rotate then list: one active key and one retired, published until its last token expires", async () => {
    const data = join(root, "rotate");
    const T1 = new Date(T0.getTime() + 600_000);
    // The server made the first key.
    const store = await openStore({ dataDir: data });
    await store.migrate();
    const first = await environmentKeys(store, { clock: () => T0 }).activeKey("prod");
    await store.close();

    const rotated = await writ(
      ["keys", "rotate", "--env", "prod", "--config", CONFIG, "--data", data, "--json"],
      {
        clock: () => T1,
      },
    );
    expect(rotated.code).toBe(EXIT.ok);
    const report = JSON.parse(rotated.out);
    // The quickstart's longest ceiling maximum is 2h: no writ signed by the old key outlives that.
    expect(report).toMatchObject({
      environment: "prod",
      retired: {
        kid: first.kid,
        status: "retired",
        signUntil: T1.toISOString(),
        publishUntil: new Date(T1.getTime() + 2 * 3600 * 1000).toISOString(),
      },
      created: { env: "prod", status: "active", createdAt: T1.toISOString() },
    });

    const listed = await writ(["keys", "list", "--data", data, "--json"]);
    expect(listed.code).toBe(EXIT.ok);
    const keys = JSON.parse(listed.out) as { kid: string; status: string; env: string }[];
    expect(keys.map((k) => [k.kid, k.env, k.status])).toEqual([
      [first.kid, "prod", "retired"],
      [report.created.kid, "prod", "active"],
    ]);

    const human = await writ(["keys", "list", "--env", "prod", "--config", CONFIG, "--data", data]);
    expect(human.code).toBe(EXIT.ok);
    const lines = human.out.split("\n");
    expect(lines[0]).toMatch(/^KID\s+ENV\s+ALG\s+STATUS\s+CREATED\s+SIGN UNTIL\s+PUBLISHED UNTIL$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      [first.kid, "prod", "EdDSA", "retired"],
      [report.created.kid, "prod", "EdDSA", "active"],
    ]);

    // The rotation is in the audit log.
    const again = await openStore({ dataDir: data, create: false });
    try {
      const [record] = await openAuditLog({ repo: again.audit }).tail(1);
      expect(record).toMatchObject({
        type: "keys.rotate",
        data: { environment: "prod", retired: first.kid, created: report.created.kid },
      });
    } finally {
      await again.close();
    }
  });

  it("rotate on a fresh data folder creates the first key; --max-token-ttl 0 withdraws the old one", async () => {
    const data = join(root, "fresh");
    const first = await writ(["keys", "rotate", "--env", "dev", "--config", CONFIG, "--data", data]);
    expect(first.code).toBe(EXIT.ok);
    expect(first.out).toMatch(/^dev: no active key to retire\ndev: active \S+: signs until /);
    const second = await writ([
      "keys",
      "rotate",
      "--env",
      "dev",
      "--config",
      CONFIG,
      "--data",
      data,
      "--max-token-ttl",
      "0",
      "--json",
    ]);
    expect(second.code).toBe(EXIT.ok);
    const report = JSON.parse(second.out);
    expect(report.retired.publishUntil).toBe(report.retired.signUntil);
  });

  it("refuses an environment writ.yaml does not declare (exit 2)", async () => {
    const data = join(root, "unknown");
    const run = await writ(["keys", "rotate", "--env", "staging", "--config", CONFIG, "--data", data]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toMatch(/--env `staging`: .* declares no such environment \(it declares `dev`, `prod`\)/);
    const json = await writ([
      "keys",
      "list",
      "--env",
      "staging",
      "--config",
      CONFIG,
      "--data",
      data,
      "--json",
    ]);
    expect(json.code).toBe(EXIT.usage);
    expect(JSON.parse(json.err)).toMatchObject({ error: { code: "ERR_UNKNOWN_ENVIRONMENT" } });
  });

  it("usage errors exit 2: no --env, a missing config, a bad duration", async () => {
    const data = join(root, "usage");
    expect((await writ(["keys", "rotate", "--config", CONFIG, "--data", data])).code).toBe(EXIT.usage);
    const missing = await writ(["keys", "rotate", "--env", "prod", "--config", join(root, "nope.yaml")]);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toMatch(/no such file/);
    const ttl = await writ([
      "keys",
      "rotate",
      "--env",
      "prod",
      "--config",
      CONFIG,
      "--data",
      data,
      "--max-token-ttl",
      "soon",
    ]);
    expect(ttl.code).toBe(EXIT.usage);
    const alg = await writ([
      "keys",
      "rotate",
      "--env",
      "prod",
      "--config",
      CONFIG,
      "--data",
      data,
      "--alg",
      "RS256",
    ]);
    expect(alg.code).toBe(EXIT.usage);
    expect(alg.err).toMatch(/--alg `RS256`/);
  });

  it("store failures exit 3", async () => {
    const run = await writ(["keys", "list", "--data", join(root, "no-such-folder")]);
    expect(run.code).toBe(EXIT.failure);
    expect(run.err).toMatch(/^writ: no embedded database/);
    const unreachable = await writ(["keys", "list", "--json"], {
      databaseUrl: "postgres://postgres@127.0.0.1:1/none",
    });
    expect(unreachable.code).toBe(EXIT.failure);
    expect(JSON.parse(unreachable.err)).toMatchObject({ error: { code: "ERR_STORE_UNAVAILABLE" } });
  });
});

describe.skipIf(!postgresEnabled)("writ keys (PostgreSQL)", () => {
  let temp: TempDatabase;
  beforeAll(async () => {
    temp = await createTempDatabase();
  });
  afterAll(() => temp.drop());

  it("rotates twice and lists one active and one retired key", async () => {
    const defaults = { databaseUrl: temp.url };
    const args = ["keys", "rotate", "--env", "prod", "--config", CONFIG, "--json"];
    expect((await writ(args, defaults)).code).toBe(EXIT.ok);
    expect((await writ(args, defaults)).code).toBe(EXIT.ok);
    const listed = await writ(["keys", "list", "--json"], defaults);
    expect(listed.code).toBe(EXIT.ok);
    expect((JSON.parse(listed.out) as { status: string }[]).map((k) => k.status)).toEqual([
      "retired",
      "active",
    ]);
  });
});

describe("writ keys (the built binary)", () => {
  beforeAll(() => assertBuilt());

  it("is registered in main.ts: rotate, list, and exit 2 for an unknown environment", async () => {
    const data = join(root, "bin");
    const env = { WRIT_DATABASE_URL: "" };
    const rotated = await runCli(
      ["keys", "rotate", "--env", "dev", "--config", CONFIG, "--data", data, "--json"],
      {
        env,
      },
    );
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ environment: "dev", retired: null });
    const listed = await runCli(["keys", "list", "--data", data], { env, ...SLOW });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/\bdev\s+EdDSA\s+active\b/);
    const unknown = await runCli(["keys", "rotate", "--env", "qa", "--config", CONFIG, "--data", data], {
      env,
      ...SLOW,
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^writ: --env `qa`/);
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
  }, 120_000); // three processes, each starting the embedded database
});
