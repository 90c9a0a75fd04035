/**
 * `writ audit …` driven in process, wired as src/cli/main.ts wires verbs.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSigningKey, openAuditLog, signingKeyPaths } from "../../src/audit/index.js";
import { type AuditCliDefaults, registerAudit } from "../../src/cli/audit.js";
import { EXIT, reportFailure } from "../../src/cli/output.js";
import { openStore } from "../../src/store/index.js";
import { asAttacker, createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

async function writ(args: readonly string[], defaults: AuditCliDefaults = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
  let code: number = EXIT.ok;
  const program = new Command("writ")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerAudit(
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
let data = "";

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "writ-cli-"));
  data = join(root, "data");
  const store = await openStore({ dataDir: data });
  await store.migrate();
  const log = openAuditLog({ repo: store.audit, signer: await loadSigningKey(data), checkpointEvery: 5 });
  for (let i = 1; i <= 12; i++)
    await log.append("decision", { i, agent: "release-bot", access_token: `secret-${i}` });
  await log.settled();
  await store.close();
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("writ audit (embedded store)", () => {
  it("verify: an intact log exits 0", async () => {
    const run = await writ(["audit", "verify", "--data", data]);
    expect(run.code).toBe(0);
    expect(run.out).toContain("audit log intact: 12 records, 2 checkpoints, last seq 12");
    const json = await writ(["audit", "verify", "--data", data, "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({
      ok: true,
      records: 12,
      checkpoints: 2,
      lastSeq: 12,
      unsigned: 2,
    });
  });

  it("tail: prints the latest records, as JSON lines with --json", async () => {
    const run = await writ(["audit", "tail", "--data", data, "-n", "3"]);
    expect(run.code).toBe(0);
    expect(run.out.split("\n").map((l) => l.split(" ")[0])).toEqual(["10", "11", "12"]);
    expect(run.out).not.toContain("secret-");
    const json = await writ(["audit", "tail", "--data", data, "-n", "2", "--json"]);
    expect(json.out.split("\n").map((l) => JSON.parse(l).seq)).toEqual([11, 12]);
  });

  it("tail --follow ends when told to", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const run = await writ(["audit", "tail", "--data", data, "-n", "1", "--follow"], {
      signal: controller.signal,
    });
    expect(run.code).toBe(0);
    expect(run.out.split("\n")).toHaveLength(1);
  });

  it("tail --follow told to stop before the store opened still ends", async () => {
    const controller = new AbortController();
    controller.abort();
    const run = await writ(["audit", "tail", "--data", data, "-n", "1", "--follow"], {
      signal: controller.signal,
    });
    expect(run.code).toBe(0);
    expect(run.out.split("\n")).toHaveLength(1);
  });

  it("export: writes a 0600 file that verifies offline, with the data folder's key or --key", async () => {
    const file = join(root, "export.json");
    const run = await writ(["audit", "export", "--data", data, "--out", file, "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toEqual({ file, records: 12, checkpoints: 2 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(file, "utf8"));
    expect(doc.records).toHaveLength(12);
    expect((await writ(["audit", "verify", "--file", file, "--data", data])).code).toBe(0);
    const elsewhere = join(root, "nowhere");
    const keyed = await writ([
      "audit",
      "verify",
      "--file",
      file,
      "--data",
      elsewhere,
      "--key",
      signingKeyPaths(data).publicKey,
    ]);
    expect(keyed.code).toBe(0);
    // without any trusted key the checkpoints cannot be confirmed: damage, said out loud
    const unkeyed = await writ(["audit", "verify", "--file", file, "--data", elsewhere]);
    expect(unkeyed.code).toBe(1);
    expect(unkeyed.err).toContain("no trusted public key");
    const unkeyedJson = await writ(["audit", "verify", "--file", file, "--data", elsewhere, "--json"]);
    expect(JSON.parse(unkeyedJson.out)).toMatchObject({
      trustedKeys: [],
      firstBad: { problem: "bad-checkpoint", seq: 5 },
    });
  });

  it("export: to stdout as one JSON document", async () => {
    const run = await writ(["audit", "export", "--data", data]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out)).toMatchObject({ format: "writ-audit-export", head: { seq: 12 } });
  });

  it("verify --file: a tampered export exits 1 and names the damage", async () => {
    const doc = JSON.parse(await readFile(join(root, "export.json"), "utf8"));
    doc.records[3].data.agent = "someone-else";
    const file = join(root, "tampered.json");
    await writeFile(file, JSON.stringify(doc));
    const run = await writ(["audit", "verify", "--file", file, "--data", data]);
    expect(run.code).toBe(1);
    expect(run.out).toContain("audit log DAMAGED: edited at seq 4");
  });

  it.each([
    ["a missing export file", ["audit", "verify", "--file", "/nonexistent/export.json"], "cannot read"],
    ["an export that is not JSON", ["audit", "verify", "--file", "__self__"], "is not JSON"],
    ["an export of another format", ["audit", "verify", "--file", "__other__"], "audit export: format"],
    ["a missing key file", ["audit", "verify", "--key", "/nonexistent/key.jwk"], "cannot read"],
    ["a bad -n", ["audit", "tail", "-n", "many"], "expected a whole number"],
  ])("%s is a usage error (exit 2)", async (_label, args, message) => {
    const notJson = join(root, "not.json");
    const other = join(root, "other.json");
    await writeFile(notJson, "{");
    await writeFile(other, JSON.stringify({ format: "other" }));
    const resolved = args.map((a) => (a === "__self__" ? notJson : a === "__other__" ? other : a));
    const run = await writ([...resolved, "--data", data]);
    expect(run.code).toBe(EXIT.usage);
    expect(run.err).toContain(message);
  });

  it("an unknown flag is a usage error", async () => {
    expect((await writ(["audit", "verify", "--nope"])).code).toBe(EXIT.usage);
  });

  it("a data folder without a database is a store failure (exit 3)", async () => {
    const run = await writ(["audit", "verify", "--data", join(root, "empty"), "--json"]);
    expect(run.code).toBe(EXIT.failure);
    expect(JSON.parse(run.err)).toMatchObject({ error: { code: "ERR_STORE_NOT_FOUND" } });
  });

  it("a data folder in use by another process is a store failure (exit 3)", async () => {
    const held = await openStore({ dataDir: data });
    try {
      const run = await writ(["audit", "tail", "--data", data]);
      expect(run.code).toBe(EXIT.failure);
      expect(run.err).toContain("in use by");
    } finally {
      await held.close();
    }
  });

  it("verify: damage in the store exits 1 and names the first bad record", async () => {
    const store = await openStore({ dataDir: data });
    try {
      await asAttacker(store.db, ["delete from audit_records where seq = 8"]);
    } finally {
      await store.close();
    }
    const run = await writ(["audit", "verify", "--data", data, "--json"]);
    expect(run.code).toBe(EXIT.no);
    expect(JSON.parse(run.out).firstBad).toMatchObject({ problem: "deleted", seq: 8 });
  });
});

describe.runIf(postgresEnabled)("writ audit (PostgreSQL)", () => {
  let temp: TempDatabase;
  beforeAll(async () => {
    temp = await createTempDatabase();
  });
  afterAll(() => temp.drop());

  it("an unmigrated database is a store failure (exit 3)", async () => {
    const run = await writ(["audit", "verify", "--data", data, "--json"], { databaseUrl: temp.url });
    expect(run.code).toBe(EXIT.failure);
    expect(JSON.parse(run.err)).toMatchObject({ error: { code: "ERR_STORE_NOT_MIGRATED" } });
  });

  it("tail --follow prints records appended by another process", async () => {
    const store = await openStore({ databaseUrl: temp.url });
    await store.migrate();
    const log = openAuditLog({ repo: store.audit });
    await log.append("decision", { i: 1 });
    const controller = new AbortController();
    const following = writ(["audit", "tail", "--data", data, "-n", "1", "--follow", "--json"], {
      databaseUrl: temp.url,
      signal: controller.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await log.append("decision", { i: 2 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    controller.abort();
    const run = await following;
    await store.close();
    expect(run.code).toBe(0);
    expect(run.out.split("\n").map((l) => JSON.parse(l).data.i)).toEqual([1, 2]);
  });
});
