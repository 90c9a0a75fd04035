/**
 * Finding ids, SARIF fingerprints and locations do not depend on how an input path is spelled
 * (`./x`, `x`, `/abs/x`): `writ scan` names inputs relative to the scan root. A file no importer
 * recognises is a warning naming it, and `--strict` makes it (or a broken input) exit 2.
 * Runs `scan` (src/cli/scan.ts) in process, as the CLI does, with the worked example and a GitHub
 * workflow (whose job ids are built from the file's name).
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactLocation } from "../../src/analyzer/reports/sarif.js";
import { scanRoot } from "../../src/analyzer/scan.js";
import { scan } from "../../src/cli/scan.js";
import { ROOT } from "../support/cli.js";

const EX = join(ROOT, "examples", "analyzer");

const WORKFLOW = `name: ci
on: push
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make test
`;

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(paths: string[], flags: Record<string, unknown> = {}): Promise<Run> {
  const outs: string[] = [];
  const errs: string[] = [];
  const io = { out: (t: string) => outs.push(t), err: (t: string) => errs.push(t) };
  const code = await scan(
    paths,
    { format: "json", store: false, json: false, progress: false, ...flags },
    io,
    { dataDir: join(tmpdir(), "writ-unused"), version: "0.0.0-test" },
  );
  return { code, out: outs.join("\n"), err: errs.join("\n") };
}

describe("stable finding ids and SARIF locations", () => {
  let dir: string;
  let files: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "writ-stable-"));
    await mkdir(join(dir, "wf"), { recursive: true });
    for (const f of ["cluster.yaml", "audit.log", "traces.json"]) await copyFile(join(EX, f), join(dir, f));
    await writeFile(join(dir, "wf", "ci.yml"), WORKFLOW);
    files = ["cluster.yaml", "audit.log", "traces.json", "wf/ci.yml"].map((f) => join(dir, f));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("gives the same findings, ids and locations for ./x, x and /abs/x", async () => {
    const rel = files.map((f) => relative(process.cwd(), f));
    const spellings = [files, rel, rel.map((f) => (f.startsWith("..") ? f : `./${f}`))];
    // the relative spelling really differs from the absolute one
    expect(rel[0]).not.toBe(files[0]);
    const reports = [];
    for (const paths of spellings) {
      const r = await run(paths, { config: join(EX, "writ.yaml") });
      expect(r.code).toBe(0);
      reports.push(JSON.parse(r.out));
    }
    const key = (rep: {
      findings: { id: string; category: string; workload: { id: string }; location?: unknown }[];
    }) => rep.findings.map((f) => [f.id, f.category, f.workload.id, f.location]);
    const first = key(reports[0]);
    expect(first.length).toBeGreaterThanOrEqual(8);
    expect(key(reports[1])).toEqual(first);
    expect(key(reports[2])).toEqual(first);
    // the workflow's job is named relative to the root, not by the absolute path it was given
    const ids = reports[0].findings.map((f: { workload: { id: string } }) => f.workload.id);
    expect(ids).toContain("github:job:wf/ci.yml#build");
    expect(JSON.stringify(reports[0].findings)).not.toContain(dir);
    expect(reports[0].root).toBe(dir);
  });

  it("writes relative SARIF URIs against %SRCROOT% with the root given, and the same fingerprints", async () => {
    const sarifs = [];
    for (const paths of [files, files.map((f) => relative(process.cwd(), f))]) {
      const r = await run(paths, { format: "sarif", config: join(EX, "writ.yaml") });
      expect(r.code).toBe(0);
      sarifs.push(JSON.parse(r.out));
    }
    const run0 = sarifs[0].runs[0];
    expect(run0.originalUriBaseIds["%SRCROOT%"].uri).toBe(`file://${dir}/`);
    const uris = new Set<string>();
    for (const res of run0.results) {
      const loc = res.locations[0].physicalLocation.artifactLocation;
      expect(loc.uriBaseId).toBe("%SRCROOT%");
      expect(loc.uri).not.toMatch(/^\/|^file:|\.\./);
      uris.add(loc.uri);
    }
    expect([...uris].sort()).toEqual(["cluster.yaml", "wf/ci.yml"]);
    const fp = (s: { runs: { results: { partialFingerprints: Record<string, string> }[] }[] }) =>
      s.runs[0]!.results.map((x) => x.partialFingerprints["writFindingId/v1"]);
    expect(fp(sarifs[1])).toEqual(fp(sarifs[0]));
    // --root moves the base: locations become paths under it
    const rooted = await run(files, { format: "sarif", root: ROOT });
    const locs = JSON.parse(rooted.out).runs[0].results.map(
      (x: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }) =>
        x.locations[0]!.physicalLocation.artifactLocation.uri,
    );
    // the temporary folder is outside the repository: absolute file URIs, never `tmp/…` as if relative
    for (const u of locs) expect(u).toMatch(/^file:\/\/\//);
  });

  it("reads inputs an importer opens itself (gzipped CloudTrail) under the root's names too", async () => {
    const wa = join(ROOT, "test", "fixtures", "writ-attribution");
    const paths = [join(wa, "aws"), join(wa, "k8s")];
    const spelled = [paths, paths.map((p) => relative(process.cwd(), p))];
    const reports = [];
    for (const p of spelled) {
      const r = await run(p, { config: join(wa, "writ.yaml") });
      expect(r.code).toBe(0);
      reports.push(JSON.parse(r.out));
    }
    const gz = "aws/111122223333_CloudTrail_eu-west-2_20261205T1010Z_b2.json.gz";
    const codes = reports[0].problems.map((p: { code: string; file: string }) => `${p.code} ${p.file}`);
    expect(codes).toContain(`WARN_WRIT_ATTRIBUTION_MISMATCH ${gz}`);
    expect(codes.filter((c: string) => c.startsWith("ERR_INPUT_CLOUDTRAIL"))).toEqual([]);
    const ids = (rep: { findings: { id: string }[] }) => rep.findings.map((f) => f.id);
    expect(ids(reports[1])).toEqual(ids(reports[0]));
  });

  it("encodes artifact URIs: relative with a base, absolute as file URIs", () => {
    expect(artifactLocation("k8s/a b#1.yaml")).toEqual({ uri: "k8s/a%20b%231.yaml", uriBaseId: "%SRCROOT%" });
    expect(artifactLocation("./x.yaml")).toEqual({ uri: "x.yaml", uriBaseId: "%SRCROOT%" });
    expect(artifactLocation("/abs/x.yaml")).toEqual({ uri: "file:///abs/x.yaml" });
  });

  it("finds the common ancestor of the inputs: a folder for itself, a file for its folder", async () => {
    expect(await scanRoot(files)).toBe(dir);
    expect(await scanRoot([files[3]!])).toBe(join(dir, "wf"));
    expect(await scanRoot([join(dir, "wf")])).toBe(join(dir, "wf"));
    expect(await scanRoot([relative(process.cwd(), files[0]!)])).toBe(dir);
  });

  it("warns about a file it does not recognise, and --strict exits 2", async () => {
    const notes = join(dir, "notes.txt");
    await writeFile(notes, "not an input\n");
    const lax = await run([files[0]!, notes]);
    expect(lax.code).toBe(0);
    const report = JSON.parse(lax.out);
    expect(report.problems).toEqual([
      expect.objectContaining({ code: "WARN_INPUT_UNRECOGNISED", file: "notes.txt", severity: "warning" }),
    ]);
    expect(lax.err).toContain("notes.txt: warning: no importer recognises this file");
    const strict = await run([files[0]!, notes], { strict: true });
    expect(strict.code).toBe(2);
    expect(strict.err).toContain("--strict: 1 input(s) not read in full");
    // the report is still written
    expect(JSON.parse(strict.out).findings.length).toBeGreaterThan(0);
    // the terminal summary names the warning's file and says what names are relative to
    const term = await run([files[0]!, notes], { format: "terminal" });
    expect(term.out).toContain(`  root:     ${dir}`);
    expect(term.out).toContain("notes.txt: warning: no importer recognises this file");
    // recognised inputs alone pass --strict
    expect((await run([files[0]!], { strict: true })).code).toBe(0);
  });
});
