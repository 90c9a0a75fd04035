/**
 * One GitHub permission list: every permission the analyzer can read from a workflow or propose in
 * a `permissions:` block is one `writ check`'s parser accepts in a `github:` rule — and a name
 * outside the list is refused by both.
 */
import { describe, expect, it } from "vitest";
import { githubPlugin, scanPaths, textInput } from "../../src/analyzer/index.js";
import { githubWorkflowImporter } from "../../src/analyzer/providers/github/index.js";
import { loadConfigText } from "../../src/config/index.js";
import { GITHUB_PERMISSION_LIST } from "../../src/core/index.js";

/** A writ.yaml whose agent's baseline holds each `github:<scope>:<level>` on one repository. */
function configWith(actions: readonly string[]): string {
  return `version: 1
environments:
  prod: {}
runnerClasses:
  ci:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "github:*:*"
          resource: "acme/*"
agents:
  bot:
    owner: alice@acme.example
    purpose: proposes blocks
    runnerClass: ci
    environments: [prod]
    baseline:
${actions.map((a) => `      - action: "${a}"\n        resource: "acme/widgets"\n        standingWrite: test`).join("\n")}
`;
}

async function checkProblems(actions: readonly string[]) {
  const r = await loadConfigText(configWith(actions), { file: "writ.yaml" });
  return r.problems.filter((p) => p.severity === "error");
}

/** A workflow with one step per well-known action and `run:` command the analyzer reads. */
const WORKFLOW = `on: push
jobs:
  all:
    runs-on: ubuntu-latest
    permissions: write-all
    steps:
      - uses: actions/checkout@v4
      - uses: github/codeql-action/analyze@v3
      - uses: actions/deploy-pages@v4
      - uses: actions/attest-build-provenance@v2
      - uses: docker/login-action@v3
        with: { registry: ghcr.io }
      - uses: softprops/action-gh-release@v2
      - uses: peter-evans/create-pull-request@v7
      - uses: actions/labeler@v5
      - uses: actions/stale@v9
      - uses: aws-actions/configure-aws-credentials@v4
        with: { role-to-assume: arn:aws:iam::1:role/x }
      - run: gh pr create && gh pr view && gh issue comment && gh release create && git push && docker push ghcr.io/a/b
`;

describe("one GitHub permission list (analyzer and writ check)", () => {
  it("writ check accepts every permission name the analyzer knows, at read and write", async () => {
    expect(GITHUB_PERMISSION_LIST).toContain("artifact_metadata");
    const actions = GITHUB_PERMISSION_LIST.flatMap((s) => [
      `github:${s}:read`,
      `github:${s.replace(/_/g, "-")}:write`,
    ]);
    expect(await checkProblems(actions)).toEqual([]);
  });

  it("every scope of a workflow block the analyzer reads without a warning is accepted", async () => {
    const block = GITHUB_PERMISSION_LIST.map((s) => `      ${s.replace(/_/g, "-")}: write`).join("\n");
    const wf = `on: push\njobs:\n  j:\n    runs-on: x\n    permissions:\n${block}\n    steps:\n      - run: echo\n`;
    const r = await githubWorkflowImporter.import(textInput("wf.yml", wf));
    expect(r.problems).toEqual([]);
    const granted = r.fragment.nodes.flatMap((n) => n.grants ?? []).map((g) => g.action);
    expect(new Set(granted.map((a) => a.split(":")[1])).size).toBe(GITHUB_PERMISSION_LIST.length);
    expect(await checkProblems(granted)).toEqual([]);
  });

  it("every permission a proposed permissions: block names is accepted by writ check", async () => {
    const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "writ-gh-"));
    try {
      await writeFile(join(dir, "wf.yml"), WORKFLOW);
      const result = await scanPaths([join(dir, "wf.yml")], { plugins: [githubPlugin], root: dir });
      const proposed = new Set<string>();
      for (const f of result.findings)
        for (const file of f.reduction.files)
          for (const m of file.content.matchAll(/^\s+([a-z-]+): (read|write)\b/gm))
            proposed.add(`github:${m[1]}:${m[2]}`);
      // the table covers many scopes: the block is not trivially empty
      expect(proposed.size).toBeGreaterThanOrEqual(8);
      for (const a of ["github:security-events:write", "github:id-token:write", "github:pull-requests:write"])
        expect(proposed).toContain(a);
      expect(await checkProblems([...proposed])).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a name outside the list is refused by both", async () => {
    const problems = await checkProblems(["github:not_a_scope:read"]);
    expect(problems.map((p) => p.message).join("\n")).toContain("is not a GitHub token permission");
    const wf =
      "on: push\njobs:\n  j:\n    runs-on: x\n    permissions:\n      not-a-scope: read\n    steps:\n      - run: echo\n";
    const r = await githubWorkflowImporter.import(textInput("wf.yml", wf));
    expect(r.problems.map((p) => p.code)).toEqual(["WARN_GHA_UNKNOWN_SCOPE"]);
  });
});
