/**
 * The escalation path catalogue writ ships (data/aws-privesc-paths.json): it is exactly what
 * scripts/aws-privesc-paths.ts generates from the pathfinding.cloud corpus, so it cannot drift; it
 * holds the facts evaluation needs; bad catalogues are errors that name the file.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { originFromNotice } from "../../../scripts/aws-privesc-paths.js";
import {
  loadPrivescPaths,
  parsePrivescCatalogue,
  SHIPPED_CATALOGUE,
  shippedPrivescPaths,
} from "../../../src/analyzer/providers/aws/paths.js";
import { isWritError } from "../../../src/core/index.js";
import { ROOT } from "../../support/cli.js";
import { corpus } from "../corpora.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-paths-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isWritError(err) ? err.code : `not a WritError: ${String(err)}`;
  }
  return undefined;
}

describe("the shipped path catalogue", () => {
  it("is byte for byte what the script generates from the corpus", () => {
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "scripts", "aws-privesc-paths.ts"),
        "--corpus",
        corpus("aws-privesc-paths"),
        "--out",
        "-",
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(10_000);
    expect(r.stdout).toBe(readFileSync(SHIPPED_CATALOGUE, "utf8"));
  });

  it("holds every corpus path with the facts evaluation needs, and none of the prose", () => {
    const shipped = shippedPrivescPaths();
    const fromYaml = loadPrivescPaths(corpus("aws-privesc-paths", "paths"));
    expect(shipped).toHaveLength(65);
    expect(shipped.map(({ source: _, ...p }) => p)).toEqual(fromYaml.map(({ source: _, ...p }) => p));
    const ec2 = shipped.find((p) => p.id === "ec2-001")!;
    expect(ec2).toMatchObject({
      name: "iam:PassRole + ec2:RunInstances",
      category: "new-passrole",
      required: ["iam:PassRole", "ec2:RunInstances"],
      passedTo: ["ec2.amazonaws.com"],
    });
    expect(ec2.constraints["iam:PassRole"]).toMatch(/role ARN/);
    expect(ec2.source).toBe("https://github.com/DataDog/pathfinding.cloud@84dd65c9:ec2/ec2-001.yaml");
    expect(shipped.find((p) => p.id === "iam-003")!.parent).toBe("iam-002");
    expect(shipped.find((p) => p.id === "iam-001")!.passedTo).toEqual([]);
    const text = readFileSync(SHIPPED_CATALOGUE, "utf8");
    for (const prose of ["exploitationSteps", "description", "recommendation", "aws iam create"])
      expect(text).not.toContain(prose);
    const doc = JSON.parse(text);
    expect(doc.origin).toEqual({
      repository: "https://github.com/DataDog/pathfinding.cloud",
      commit: "84dd65c97fc21dee54f4587be6dfd5b7b5fe320c",
      licence: "Apache License 2.0",
    });
  });

  it("is attributed in NOTICE with its licence and commit", () => {
    const notice = readFileSync(join(ROOT, "NOTICE"), "utf8");
    expect(notice).toContain("data/aws-privesc-paths.json");
    expect(notice).toContain("https://github.com/DataDog/pathfinding.cloud");
    expect(notice).toContain("84dd65c97fc21dee54f4587be6dfd5b7b5fe320c");
    expect(notice).toContain("Apache License 2.0");
    expect(notice).toContain("Copyright 2025-Present Datadog, Inc.");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg.files).toEqual(expect.arrayContaining(["data", "NOTICE"]));
  });

  it("rejects a damaged catalogue with ERR_AWS_PRIVESC_CATALOGUE", () => {
    const good = JSON.parse(readFileSync(SHIPPED_CATALOGUE, "utf8"));
    expect(parsePrivescCatalogue(good, "x.json")).toHaveLength(65);
    const broken = structuredClone(good);
    broken.paths[3].required = [{ permission: "not an action" }];
    expect(code(() => parsePrivescCatalogue(broken, "x.json"))).toBe("ERR_AWS_PRIVESC_CATALOGUE");
    expect(() => parsePrivescCatalogue(broken, "x.json")).toThrow(/x\.json: paths\[3\]/);
    expect(code(() => parsePrivescCatalogue({ format: 2, paths: [] }, "x.json"))).toBe(
      "ERR_AWS_PRIVESC_CATALOGUE",
    );
  });

  it("reads the upstream commit from the corpora's NOTICE, and fails without it", () => {
    const notice = readFileSync(join(corpus("aws-privesc-paths"), "..", "NOTICE"), "utf8");
    expect(originFromNotice(notice, "aws-privesc-paths").commit).toBe(
      "84dd65c97fc21dee54f4587be6dfd5b7b5fe320c",
    );
    expect(() => originFromNotice(notice, "no-such-folder")).toThrow(/no block/);
  });
});

describe("a catalogue folder (--aws-paths)", () => {
  it("names the file and the problem for a missing folder, an empty one, bad YAML and a bad entry", () => {
    expect(code(() => loadPrivescPaths(join(tmp, "missing")))).toBe("ERR_AWS_PRIVESC_PATH");
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    expect(() => loadPrivescPaths(empty)).toThrow(/no `\*\.yaml` path files/);
    const bad = join(tmp, "bad");
    mkdirSync(join(bad, "iam"), { recursive: true });
    writeFileSync(join(bad, "iam", "x.yaml"), "id: [unclosed\n");
    expect(code(() => loadPrivescPaths(bad))).toBe("ERR_AWS_PRIVESC_PATH");
    expect(() => loadPrivescPaths(bad)).toThrow(/iam\/x\.yaml/);
    writeFileSync(
      join(bad, "iam", "x.yaml"),
      "id: x-1\ncategory: self-escalation\npermissions:\n  required:\n    - permission: nope\n",
    );
    expect(() => loadPrivescPaths(bad)).toThrow(/x\.yaml: permissions\.required\[0\]: not an action/);
  });

  it("refuses two files with one id", () => {
    const dup = join(tmp, "dup");
    mkdirSync(dup);
    const src = corpus("aws-privesc-paths", "paths", "iam", "iam-002.yaml");
    cpSync(src, join(dup, "a.yaml"));
    cpSync(src, join(dup, "b.yaml"));
    expect(() => loadPrivescPaths(dup)).toThrow(/duplicate id `iam-002`/);
  });
});
