/**
 * `writ scan` and `writ findings` through the built CLI: formats, --fail-on, SARIF's shape for
 * GitHub code scanning, the self-contained HTML report, usage errors, and the stored queue.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, ROOT, runCli } from "../support/cli.js";

const EX = join(ROOT, "examples", "analyzer");
const INPUTS = [join(EX, "cluster.yaml"), join(EX, "audit.log"), join(EX, "traces.json")];

describe("writ scan (built CLI)", () => {
  let dir: string;
  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(join(tmpdir(), "writ-scan-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints the summary, and --fail-on fails on a match only", async () => {
    const ok = await runCli(["scan", ...INPUTS, "--config", join(EX, "writ.yaml")]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("Category 2 — unjustified use: 1");
    const fail = await runCli([
      "scan",
      ...INPUTS,
      "--config",
      join(EX, "writ.yaml"),
      "--fail-on",
      "unjustified-use",
    ]);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toContain("match --fail-on unjustified-use");
    const none = await runCli(["scan", join(EX, "cluster.yaml"), "--fail-on", "unjustified-use"]);
    expect(none.code).toBe(0);
    const bad = await runCli(["scan", ...INPUTS, "--fail-on", "severe"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--fail-on `severe`");
    const missing = await runCli(["scan", join(dir, "nope.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^writ: cannot read input/);
  });

  it("writes SARIF 2.1.0 that code scanning reads, and a self-contained HTML report", async () => {
    const sarifFile = join(dir, "r.sarif");
    const r = await runCli([
      "scan",
      ...INPUTS,
      "--config",
      join(EX, "writ.yaml"),
      "--format",
      "sarif",
      "-o",
      sarifFile,
    ]);
    expect(r.code).toBe(0);
    const sarif = JSON.parse(await readFile(sarifFile, "utf8"));
    expect(sarif.version).toBe("2.1.0");
    const run = sarif.runs[0];
    expect(run.tool.driver.rules.map((x: { id: string }) => x.id)).toEqual([
      "writ/unused-excess",
      "writ/unjustified-use",
      "writ/inherited-overreach",
    ]);
    expect(run.results.length).toBe(7);
    for (const res of run.results) {
      expect(["error", "warning", "note"]).toContain(res.level);
      const loc = res.locations[0].physicalLocation;
      expect(loc.artifactLocation.uri).not.toMatch(/^\//);
      expect(loc.region.startLine).toBeGreaterThanOrEqual(1);
      expect(res.partialFingerprints["writFindingId/v1"]).toMatch(/^wf-[0-9a-f]{16}$/);
      expect(Number(res.properties["security-severity"])).toBeGreaterThan(0);
    }
    const html = await runCli(["scan", ...INPUTS, "--config", join(EX, "writ.yaml"), "--format", "html"]);
    expect(html.code).toBe(0);
    expect(html.stdout).toMatch(/^<!doctype html>/);
    expect(html.stdout).not.toMatch(/<script|<link|src="http/);
    for (const c of ["unused-excess", "unjustified-use", "inherited-overreach"])
      expect(html.stdout).toContain(`<section id="${c}">`);
    expect(html.stdout).toContain("<svg");
    const md = await runCli(["scan", ...INPUTS, "--format", "markdown"]);
    expect(md.stdout).toContain("## Category 3 — inherited overreach (1)");
  });

  it("stores the findings and changes a status through writ findings", async () => {
    const data = join(dir, "data");
    const r = await runCli(
      ["scan", ...INPUTS, "--config", join(EX, "writ.yaml"), "--store", "--data", data],
      { timeoutMs: 60_000 },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("stored: 7 new");
    const list = await runCli(["findings", "list", "--data", data, "--json"], { timeoutMs: 60_000 });
    const found = JSON.parse(list.stdout).findings as { id: string; category: string }[];
    expect(found.length).toBe(7);
    const id = found.find((f) => f.category === "inherited-overreach")!.id;
    const set = await runCli(
      ["findings", "set", id, "risk-accepted", "--note", "legacy", "--as", "carol", "--data", data],
      {
        timeoutMs: 60_000,
      },
    );
    expect(set.code).toBe(0);
    const show = await runCli(["findings", "show", id, "--data", data], { timeoutMs: 60_000 });
    expect(show.stdout).toContain("open → risk-accepted  by carol: legacy");
    const unknown = await runCli(["findings", "show", "wf-nope", "--data", data], { timeoutMs: 60_000 });
    expect(unknown.code).toBe(2);
  });
});
