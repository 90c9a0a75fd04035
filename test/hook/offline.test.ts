/**
 * The offline hook without a server: a full run (the store opened) leaves a decision snapshot;
 * while neither writ.yaml nor the store changes, calls decide on it without opening the store and
 * record to a hash-chained, signed spool, flushed before the answer; the next full run imports the
 * spool into the audit log (and the taints into the store); a spool that was edited is refused.
 */
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { judgeOffline } from "../../src/cli/hook-offline.js";
import { type HookKind, parseHookInput } from "../../src/hook/index.js";
import { dropSnapshot, readSnapshot, storeStamp } from "../../src/hook/local.js";
import { openStore } from "../../src/store/index.js";
import { assertBuilt, BIN } from "../support/cli.js";
import { claude, makeProject, type Project, runHookProcess } from "./fixture.js";

let p: Project;
const ID = { agent: "coder", environment: "dev" };
const spool = () => join(p.dataDir, "hook-spool.jsonl");
const spoolLines = async () =>
  (await readFile(spool(), "utf8").catch(() => "")).split("\n").filter((l) => l.length > 0);

const call = (raw: Record<string, unknown>, kind: HookKind = "claude-code") =>
  judgeOffline({ configFile: p.config, dataDir: p.dataDir }, ID, parseHookInput(kind, JSON.stringify(raw)));
const read = (file: string, session = "s1") =>
  call(claude("PreToolUse", "Read", { file_path: file }, p.src, session));

async function auditRecords() {
  const store = await openStore({ dataDir: p.dataDir });
  try {
    return await store.audit.records(0, 10_000);
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  p = await makeProject();
}, 60_000);

describe("the offline hook's snapshot and spool", () => {
  it("a full run leaves a snapshot; the next calls decide on it, without the store, and spool their records", async () => {
    const first = await read(p.secret);
    expect(first.decision).toBe("deny");
    const snap = await readSnapshot(p.dataDir);
    expect(snap).toMatchObject({ v: 1, agent: "coder", environment: "dev" });
    const stamp = await storeStamp(p.dataDir);
    expect(snap!.stamp).toBe(stamp);

    const denied = await read(p.secret);
    const allowed = await read(join(p.src, "a.ts"));
    expect(denied).toMatchObject({ decision: "deny", code: "explicit_deny" });
    expect(allowed.decision).toBe("allow");
    // the store was not touched, and both records wait in the spool, chained and signed
    expect(await storeStamp(p.dataDir)).toBe(stamp);
    const lines = (await spoolLines()).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual([1, 2]);
    expect(lines[1]!.prev).toBe(lines[0]!.hash);
    expect(typeof lines[0]!.sig).toBe("string");
    expect(lines[0]!.entry).toMatchObject({ t: "audit", type: "hook.decision" });
  }, 240_000);

  it("taint from a spooled PostToolUse refuses a privileged call in that session, on the snapshot", async () => {
    await call(
      claude("PostToolUse", "WebFetch", { url: "https://docs.example.com/x", prompt: "read" }, p.src, "s2"),
    );
    const v = await call(
      claude("PreToolUse", "Write", { file_path: join(p.src, "b.ts"), content: "x" }, p.src, "s2"),
    );
    expect(v.code).toBe("tainted_session");
    const other = await call(
      claude("PreToolUse", "Write", { file_path: join(p.src, "b.ts"), content: "x" }, p.src, "s3"),
    );
    expect(other.decision).toBe("allow");
  }, 120_000);

  it("a change to writ.yaml voids the snapshot: the next call runs in full and imports the spool", async () => {
    const before = (await spoolLines()).filter((l) => l.includes('"t":"audit"')).length;
    expect(before).toBeGreaterThan(0);
    await appendFile(p.config, "# edited\n");
    const v = await read(join(p.src, "a.ts"));
    expect(v.decision).toBe("allow");
    expect(await spoolLines()).toEqual([]);
    const records = await auditRecords();
    const spooled = records.filter((r) => (r.data as { spooled?: unknown }).spooled !== undefined);
    expect(spooled.length).toBe(before);
    expect(spooled[0]!.type).toBe("hook.decision");
    // the taint went to the store with it: still refused in s2 after a full run
    await appendFile(p.config, "# edited again\n");
    const w = await call(
      claude("PreToolUse", "Write", { file_path: join(p.src, "b.ts"), content: "x" }, p.src, "s2"),
    );
    expect(w.code).toBe("tainted_session");
  }, 360_000);

  it("a write to the store voids the snapshot", async () => {
    await read(join(p.src, "a.ts")); // on the snapshot
    expect((await spoolLines()).length).toBe(1);
    const store = await openStore({ dataDir: p.dataDir });
    await store.close();
    const records = (await auditRecords()).length;
    await read(join(p.src, "a.ts")); // in full: the spooled record imported
    expect(await spoolLines()).toEqual([]);
    expect((await auditRecords()).length).toBeGreaterThan(records);
  }, 360_000);

  it("an edited spool is not imported, and offline calls refuse (ERR_HOOK_SPOOL)", async () => {
    await appendFile(p.config, "# a full run first\n");
    await read(join(p.src, "a.ts"));
    expect(await spoolLines()).toEqual([]);
    await read(join(p.src, "a.ts"));
    await read(p.secret);
    const lines = await spoolLines();
    expect(lines.length).toBe(2);
    expect(lines[1]).toContain('"decision":"deny"');
    // the deny rewritten as an allow
    await writeFile(
      spool(),
      `${lines[0]}\n${lines[1]!.replace('"decision":"deny"', '"decision":"allow"')}\n`,
    );
    await expect(read(join(p.src, "a.ts"))).rejects.toMatchObject({ code: "ERR_HOOK_SPOOL" });
    // a line removed: out of sequence
    await writeFile(spool(), `${lines[1]}\n`);
    await expect(read(join(p.src, "a.ts"))).rejects.toMatchObject({ code: "ERR_HOOK_SPOOL" });
    await appendFile(p.config, "# and again\n");
    await expect(read(join(p.src, "a.ts"))).rejects.toMatchObject({ code: "ERR_HOOK_SPOOL" });
  }, 360_000);
});

describe("the snapshot decides what a full run decides", () => {
  it("allow, deny and ask: each call judged in full, then again on the snapshot, with the same verdict and record", async () => {
    p = await makeProject();
    const calls: [string, Record<string, unknown>][] = [
      ["allow", claude("PreToolUse", "Read", { file_path: join(p.src, "a.ts") }, p.src)],
      ["deny", claude("PreToolUse", "Read", { file_path: p.secret }, p.src)],
      ["deny", claude("PreToolUse", "Read", { file_path: join(p.proj, "link") }, p.src)],
      ["deny", claude("PreToolUse", "Write", { file_path: p.secret, content: "x" }, p.src)],
      ["allow", claude("PreToolUse", "Write", { file_path: join(p.src, "b.ts"), content: "x" }, p.src)],
      ["ask", claude("PreToolUse", "Bash", { command: "npm test" }, p.src)],
      ["allow", claude("PreToolUse", "Bash", { command: "grep -n export a.ts | head -5" }, p.src)],
      ["deny", claude("PreToolUse", "WebFetch", { url: "https://evil.example/x", prompt: "r" }, p.src)],
      ["allow", claude("PreToolUse", "Glob", { pattern: "**/*.ts", path: p.src }, p.src)],
    ];
    for (const [expected, raw] of calls) {
      await dropSnapshot(p.dataDir);
      const full = await call(raw);
      expect(await spoolLines()).toEqual([]); // in full: nothing spooled
      const fast = await call(raw);
      const lines = (await spoolLines()).map((l) => JSON.parse(l) as { entry: Record<string, unknown> });
      expect(lines.length).toBe(1); // on the snapshot: its record spooled
      // the store read after both calls (opening it voids the snapshot): the spool not yet imported
      const records = await auditRecords();
      const fullRecord = records[records.length - 1]!;
      expect(full.decision).toBe(expected);
      expect(fast).toEqual(full);
      expect(lines[0]!.entry).toEqual({ t: "audit", type: fullRecord.type, data: fullRecord.data });
    }
  }, 600_000);
});

describe("what a call on the snapshot loads", () => {
  it("without Cedar guardrails, never Cedar's WebAssembly (the process as the agent runs it)", async () => {
    assertBuilt();
    // a module hook that says on stderr when Cedar's module is required
    const trace = join(p.root, "trace-cedar.cjs");
    await writeFile(
      trace,
      'const M = require("node:module"); const load = M._load;\n' +
        'M._load = function (r, ...a) { if (/cedar-wasm/.test(r)) process.stderr.write("cedar loaded\\n"); return load.call(this, r, ...a); };\n',
    );
    const env = { WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_CONFIG: p.config, WRIT_DATA_DIR: p.dataDir };
    const argv = [process.execPath, "--require", trace, BIN, "hook", "claude-code"];
    const input = claude("PreToolUse", "Read", { file_path: join(p.src, "a.ts") }, p.src);
    await dropSnapshot(p.dataDir);
    const full = await runHookProcess(argv, input, env); // leaves the snapshot
    expect(full.code, full.stderr).toBe(0);
    const before = (await spoolLines()).length;
    const fast = await runHookProcess(argv, input, env);
    expect(fast.code, fast.stderr).toBe(0);
    expect((await spoolLines()).length).toBe(before + 1); // it decided on the snapshot
    expect(fast.stdout).toBe(full.stdout);
    expect(fast.stderr).not.toContain("cedar loaded");
  }, 120_000);

  it("with a Cedar guardrail, the snapshot's bundle finds Cedar's WebAssembly and the guardrail decides", async () => {
    assertBuilt();
    const g = await makeProject();
    await writeFile(
      join(g.root, "readmes.cedar"),
      '@id("no-reading-readmes")\nforbid (principal, action == Writ::Action::"agent:claude-code:Read", resource)\nwhen { resource.id like "*README.md" };\n',
    );
    await appendFile(g.config, "guardrails:\n  - file: readmes.cedar\n");
    const env = { WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_CONFIG: g.config, WRIT_DATA_DIR: g.dataDir };
    const argv = [process.execPath, BIN, "hook", "claude-code"];
    const denied = claude("PreToolUse", "Read", { file_path: join(g.proj, "README.md") }, g.src);
    const allowed = claude("PreToolUse", "Read", { file_path: join(g.src, "a.ts") }, g.src);
    const full = await runHookProcess(argv, denied, env); // the store opened; leaves the snapshot
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toContain("forbidden by guardrail `no-reading-readmes`");
    const spooled = async () =>
      (await readFile(join(g.dataDir, "hook-spool.jsonl"), "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean).length;
    for (const [input, verdict] of [
      [denied, '"permissionDecision":"deny"'],
      [allowed, "{}"], // allowed: the agent's own rules apply (no skipping its prompt)
    ] as const) {
      const before = await spooled();
      const r = await runHookProcess(argv, input, env);
      expect(r.code, r.stderr).toBe(0);
      expect(await spooled()).toBe(before + 1); // decided on the snapshot, by the bundle
      expect(r.stdout).toContain(verdict);
    }
    expect((await runHookProcess(argv, denied, env)).stdout).toBe(full.stdout);
  }, 120_000);
});
