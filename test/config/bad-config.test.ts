/**
 * Every fixture in test/fixtures/bad-config/ names the errors it must produce in `# expect:` lines:
 * `# expect: CODE path@line:column`. Loading must report exactly those errors — each with its code,
 * path and position — through the library and through `writ check --json`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ConfigProblem, loadConfigFile } from "../../src/config/index.js";
import { ROOT, runCli } from "../support/cli.js";

const DIR = join(ROOT, "test", "fixtures", "bad-config");

interface Expected {
  code: string;
  path?: string;
  line: number;
  column: number;
}

function expectations(file: string): Expected[] {
  const text = readFileSync(join(DIR, file), "utf8");
  return [...text.matchAll(/^# expect: (\S+?)(?: (.+?))?@(\d+):(\d+)$/gm)].map((m) => ({
    code: m[1]!,
    ...(m[2] ? { path: m[2] } : {}),
    line: Number(m[3]),
    column: Number(m[4]),
  }));
}

function simplify(problems: readonly ConfigProblem[]): Expected[] {
  return problems
    .filter((p) => p.severity === "error")
    .map((p) => ({ code: p.code, ...(p.path ? { path: p.path } : {}), line: p.line!, column: p.column! }));
}

const sort = (xs: Expected[]) => [...xs].sort((a, b) => a.line - b.line || a.code.localeCompare(b.code));
const fixtures = readdirSync(DIR).filter((f) => f.endsWith(".yaml"));

describe("broken configs", () => {
  it("has at least 15 fixtures, each with expectations", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(15);
    for (const f of fixtures) expect(expectations(f).length, f).toBeGreaterThan(0);
  });

  for (const f of fixtures) {
    it(`library: ${f}`, async () => {
      const r = await loadConfigFile(join(DIR, f));
      expect(r.config).toBeUndefined();
      expect(sort(simplify(r.problems))).toEqual(sort(expectations(f)));
      for (const p of r.problems) expect(p.file).toBe(join(DIR, f));
    });
    it.concurrent(`cli: ${f}`, async () => {
      const r = await runCli(["check", "--config", join(DIR, f), "--json"]);
      expect(r.code, r.stderr).toBe(1);
      const out = JSON.parse(r.stdout) as { ok: boolean; problems: ConfigProblem[] };
      expect(out.ok).toBe(false);
      expect(sort(simplify(out.problems))).toEqual(sort(expectations(f)));
    });
  }

  it("names the file, line, column and path in human output", async () => {
    const r = await runCli(["check", "--config", join(DIR, "unknown-playbook.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      "unknown-playbook.yaml:35:25: agents.release-bot.playbooks[1]: unknown playbook `rotate-cert` [ERR_CONFIG_UNKNOWN_REF]",
    );
  });

  it("a missing file is a usage error, not a stack trace", async () => {
    const r = await runCli(["check", "--config", join(DIR, "does-not-exist.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^writ: cannot read .*does-not-exist\.yaml.*: no such file\n$/);
  });

  it("the shipped example is clean", async () => {
    const r = await runCli([
      "check",
      "--config",
      join(ROOT, "examples", "quickstart", "writ.yaml"),
      "--json",
    ]);
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, errors: 0, warnings: 0 });
  });
});
