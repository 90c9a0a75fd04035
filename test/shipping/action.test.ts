/**
 * action.yml, the GitHub Action: its inputs become flags `writ scan` accepts, nothing from an input
 * is spliced into a script, and its scan step, run here with bash against the built CLI (npx
 * replaced by a shim that runs bin/writ.js), writes SARIF and reports the exit code the upload and
 * the last step act on.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { registerScan } from "../../src/cli/scan.js";
import { assertBuilt, BIN, ROOT } from "../support/cli.js";

interface Step {
  readonly name?: string;
  readonly id?: string;
  readonly if?: string;
  readonly uses?: string;
  readonly shell?: string;
  readonly run?: string;
  readonly env?: Record<string, string>;
  readonly with?: Record<string, string>;
}
interface Action {
  readonly inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  readonly outputs: Record<string, { value: string }>;
  readonly runs: { using: string; steps: Step[] };
}

const action = parse(readFileSync(join(ROOT, "action.yml"), "utf8")) as Action;
const steps = action.runs.steps;
const scanStep = steps.find((s) => s.id === "scan")!;

function scanFlags(): Set<string> {
  const program = new Command("writ");
  registerScan(program, { out: () => {}, err: () => {} } as never, () => {}, {
    dataDir: ".writ",
    version: "0.0.0",
  });
  const scan = program.commands.find((c) => c.name() === "scan")!;
  return new Set(scan.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)));
}

/** `--flag` tokens of the script's `args` lines (npx's own `--yes` and the `--` terminator aside). */
function flagsOf(script: string): string[] {
  const lines = script.split("\n").filter((l) => /args(\+)?=\(/.test(l));
  return [...new Set(lines.flatMap((l) => l.match(/--[a-z][a-z-]*/g) ?? []))];
}

describe("action.yml", () => {
  it("is a composite action on pinned actions: setup-node, then writ scan, then the SARIF upload", () => {
    expect(action.runs.using).toBe("composite");
    const uses = steps.filter((s) => s.uses).map((s) => s.uses!);
    expect(uses).toEqual(["actions/setup-node@v4", "github/codeql-action/upload-sarif@v4"]);
    const upload = steps.find((s) => s.uses?.startsWith("github/codeql-action/upload-sarif"))!;
    expect(upload.with?.sarif_file).toBe("${{ inputs.output }}");
    expect(steps.indexOf(upload)).toBeGreaterThan(steps.indexOf(scanStep));
    expect(scanStep.run).toMatch(/npx --yes "writ@\$WRIT_INPUT_VERSION" "\$\{args\[@\]\}"/);
    expect(action.inputs.version!.default).toBe(
      (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version,
    );
  });

  it("passes only flags writ scan accepts, and asks for SARIF", () => {
    const accepted = scanFlags();
    const used = flagsOf(scanStep.run!);
    expect(used.length).toBeGreaterThan(5);
    for (const f of used) expect(accepted, f).toContain(f);
    expect(scanStep.run).toContain("--format sarif");
    // an input named like a flag of writ scan is passed as that flag
    for (const name of Object.keys(action.inputs)) {
      if (accepted.has(`--${name}`) && name !== "version")
        expect(used, `input ${name}`).toContain(`--${name}`);
    }
    // the check can fail
    expect(accepted.has("--paths")).toBe(false);
  });

  it("splices no input into a script: each reaches it as an environment variable, and each is used", () => {
    for (const s of steps) if (s.run) expect(s.run, s.name).not.toMatch(/\$\{\{/);
    const all = JSON.stringify(steps);
    for (const name of Object.keys(action.inputs)) expect(all, `input ${name}`).toContain(`inputs.${name}`);
    for (const [k, v] of Object.entries(scanStep.env ?? {})) {
      expect(v).toMatch(/^\$\{\{ inputs\.[a-z-]+ \}\}$/);
      expect(scanStep.run, k).toContain(`$${k}`);
    }
  });
});

describe("the scan step, run with bash", () => {
  let dir: string;
  beforeAll(() => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), "writ-action-"));
    mkdirSync(join(dir, "bin"));
    // npx --yes writ@VERSION ARGS… → the CLI built from this checkout
    writeFileSync(
      join(dir, "bin", "npx"),
      `#!/usr/bin/env bash\n[ "$1" = --yes ] || exit 90\ncase "$2" in writ@*) ;; *) exit 91;; esac\nshift 2\nexec "${process.execPath}" "${BIN}" "$@"\n`,
    );
    chmodSync(join(dir, "bin", "npx"), 0o755);
    const ws = join(dir, "ws");
    mkdirSync(join(ws, ".github", "workflows"), { recursive: true });
    writeFileSync(
      join(ws, ".github", "workflows", "ci.yml"),
      "name: ci\non: push\npermissions: write-all\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function run(inputs: Record<string, string>) {
    const values = Object.fromEntries(
      Object.entries(action.inputs).map(([k, v]) => [k, inputs[k] ?? v.default ?? ""]),
    );
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(scanStep.env ?? {})) {
      env[k] = values[/inputs\.([a-z-]+)/.exec(v)![1]!]!;
    }
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
    writeFileSync(out, "");
    const r = spawnSync("bash", ["-c", scanStep.run!], {
      cwd: join(dir, "ws"),
      env: { PATH: `${join(dir, "bin")}:${process.env.PATH}`, HOME: dir, GITHUB_OUTPUT: out, ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
    return { status: r.status, stderr: r.stderr, output: readFileSync(out, "utf8"), values };
  }

  it("writes a SARIF 2.1.0 report of the workflow's excess and reports exit code 0", () => {
    const r = run({});
    expect(r.status, r.stderr).toBe(0);
    expect(r.output).toBe("exit-code=0\n");
    const sarif = JSON.parse(readFileSync(join(dir, "ws", r.values.output!), "utf8")) as {
      version: string;
      runs: { results: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[];
    };
    expect(sarif.version).toBe("2.1.0");
    const results = sarif.runs[0]!.results;
    expect(results.length).toBeGreaterThan(0);
    expect(results[0]!.locations[0]!.physicalLocation.artifactLocation.uri).toBe(".github/workflows/ci.yml");
  });

  it("findings matching fail-on: the step passes with exit code 1, so the upload runs and the last step fails", () => {
    const r = run({ "fail-on": "low", output: "f.sarif" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.output).toBe("exit-code=1\n");
    expect(JSON.parse(readFileSync(join(dir, "ws", "f.sarif"), "utf8"))).toHaveProperty("version", "2.1.0");
    const last = steps.at(-1)!;
    expect(last.if).toBe("steps.scan.outputs.exit-code == '1'");
    expect(last.run).toMatch(/exit 1/);
  });

  it("a usage error (an unknown path) fails the step itself, with exit code 2", () => {
    const r = run({ paths: "no/such/folder", output: "u.sarif" });
    expect(r.status).toBe(2);
    expect(r.output).toBe("exit-code=2\n");
  });

  it("paths on several lines and a strict run reach writ scan as separate arguments", () => {
    mkdirSync(join(dir, "ws", "more"));
    writeFileSync(
      join(dir, "ws", "more", "release.yml"),
      "name: release\non: push\npermissions: {}\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n",
    );
    const r = run({ paths: ".github/workflows\n  more/release.yml ", strict: "true", output: "s.sarif" });
    expect(r.output, r.stderr).toBe("exit-code=0\n");
    expect(r.stderr).toMatch(/coverage: 2 file\(s\)/);
  });
});
