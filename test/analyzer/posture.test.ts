/**
 * The posture counts a stored scan keeps for the metrics (analyzer/posture.ts): ClusterRoleBindings
 * present in the input, and workflow files where no job falls back to the repository's default
 * token permissions.
 */
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { defaultPlugins, scanPaths } from "../../src/analyzer/index.js";
import { persistScan } from "../../src/cli/findings.js";
import { openStore } from "../../src/store/index.js";
import { ROOT } from "../support/cli.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-posture-"));
  await cp(
    join(ROOT, "test", "fixtures", "realistic", "export", "k8s", "clusterrolebindings.yaml"),
    join(dir, "clusterrolebindings.yaml"),
  );
  const step = "    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";
  // top-level block: explicit
  await writeFile(join(dir, "top.yml"), `on: push\npermissions:\n  contents: read\njobs:\n  build:\n${step}`);
  // every job sets its own: explicit
  await writeFile(
    join(dir, "jobs.yml"),
    `on: push\njobs:\n  a:\n    permissions: { contents: read }\n${step}  b:\n    permissions: {}\n${step}`,
  );
  // one job without: the repository default applies to it
  await writeFile(
    join(dir, "mixed.yml"),
    `on: push\njobs:\n  a:\n    permissions: { contents: read }\n${step}  b:\n${step}`,
  );
  // none at all, one job
  await writeFile(join(dir, "bare.yml"), `on: push\njobs:\n  only:\n${step}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it("counts the ClusterRoleBindings and the workflows with explicit token permissions", async () => {
  const r = await scanPaths([dir], { plugins: defaultPlugins });
  expect(r.posture).toEqual({ clusterRoleBindings: 6, workflows: 4, workflowsExplicit: 2 });
});

it("`writ scan --store` keeps them beside the findings, and the metrics read the latest", async () => {
  const data = await mkdtemp(join(tmpdir(), "writ-posture-store-"));
  try {
    const r = await scanPaths([dir], { plugins: defaultPlugins });
    await persistScan(r, { data }, new Date("2026-11-01T00:00:00Z"));
    await persistScan(
      { ...r, posture: { clusterRoleBindings: 1, workflows: 2, workflowsExplicit: 2 } },
      { data },
      new Date("2026-11-02T00:00:00Z"),
    );
    const store = await openStore({ dataDir: data, create: false });
    try {
      const f = await store.metrics.figures({ now: new Date(), windowSeconds: 60, production: [] });
      expect(f.latestScan).toEqual({
        at: new Date("2026-11-02T00:00:00Z"),
        clusterRoleBindings: 1,
        workflows: 2,
        workflowsExplicit: 2,
      });
    } finally {
      await store.close();
    }
  } finally {
    await rm(data, { recursive: true, force: true });
  }
}, 120_000);
