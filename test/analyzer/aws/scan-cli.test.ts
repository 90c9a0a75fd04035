/**
 * `writ scan` on AWS authorization details through the built CLI: escalation paths from the
 * catalogue writ ships, without any flag; `--aws-paths DIR` swaps in another catalogue folder;
 * `--aws-organization DIR` bounds role assumption by the organization's SCPs.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalysisResult, EscalationEdge } from "../../../src/analyzer/index.js";
import { assertBuilt, runCli } from "../../support/cli.js";
import { corpus } from "../corpora.js";
import { arn, FIXTURE, writeOrganization } from "./chain-fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-scan-"));
const ACCOUNT = "200611803367";
const user = (name: string) => `aws:workload:arn:aws:iam::${ACCOUNT}:user/${name}`;
/** `aws:escalation:<path id>:<target>` → the path id. */
const pathIds = (edges: readonly EscalationEdge[]) =>
  new Set(edges.filter((e) => e.to.startsWith("aws:escalation:")).map((e) => e.to.split(":")[2]!));

async function scanJson(args: string[]): Promise<AnalysisResult> {
  const r = await runCli(["scan", corpus("aws-authz-details", "example.json"), "--json", ...args], {
    timeoutMs: 90_000,
  });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as AnalysisResult;
}

beforeAll(() => assertBuilt());
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("writ scan on AWS authorization details (built CLI)", () => {
  it("reports escalation paths from the shipped catalogue, with the path as evidence", async () => {
    const r = await scanJson([]);
    const ids = pathIds(r.escalations);
    // iam-vulnerable's account opens paths of every kind: policies, other users, PassRole, services.
    for (const id of [
      "iam-001",
      "iam-002",
      "iam-004",
      "iam-005",
      "iam-007",
      "ec2-001",
      "lambda-001",
      "glue-001",
    ])
      expect(ids, id).toContain(id);
    // 59 of the catalogue's 65 paths and the supplementary one, with today's action catalog
    expect(ids.size).toBeGreaterThanOrEqual(55);
    const radius = (w: string) => r.blastRadius.find((b) => b.workload === w)!;
    const create = radius(user("privesc4-CreateAccessKey-user")).answers.find(
      (a) => a.question === "create-identities",
    )!;
    expect(create.reachable).toBe(true);
    expect(create.path.at(-1)!.via.action).toBe("aws:iam:CreateAccessKey");
    expect(create.path.at(-1)!.to).toMatch(/^aws:escalation:iam-002:/);
    const ec2 = radius(user("privesc3-CreateEC2WithExistingInstanceProfile-user")).answers.find(
      (a) => a.question === "mutate-outside-namespace",
    )!;
    expect(ec2.path.at(-1)!.via.action).toBe("aws:iam:PassRole+ec2:RunInstances");
    // the traps stay closed
    for (const trap of [
      "fp1-allow-and-deny-user",
      "fp3-deny-iam-user",
      "fp5-nonExploitableConditionConstraint-user",
    ])
      expect(
        radius(user(trap)).answers.every((a) => !a.reachable),
        trap,
      ).toBe(true);
  }, 120_000);

  it("uses another catalogue folder with --aws-paths, and refuses a folder that is not one", async () => {
    const dir = join(tmp, "paths");
    mkdirSync(join(dir, "iam"), { recursive: true });
    cpSync(corpus("aws-privesc-paths", "paths", "iam", "iam-002.yaml"), join(dir, "iam", "iam-002.yaml"));
    const r = await scanJson(["--aws-paths", dir]);
    // only the folder's path and the supplementary one
    expect([...pathIds(r.escalations)].sort()).toEqual(["iam-002", "writ-iam-setdefaultpolicyversion"]);
    const missing = await runCli([
      "scan",
      corpus("aws-authz-details", "example.json"),
      "--aws-paths",
      join(tmp, "nope"),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^writ: --aws-paths: .*nope: no such folder/);
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    const none = await runCli([
      "scan",
      corpus("aws-authz-details", "example.json"),
      "--aws-paths",
      empty,
      "--json",
    ]);
    expect(none.code).toBe(2);
    expect(JSON.parse(none.stderr).error.code).toBe("ERR_AWS_PRIVESC_PATH");
  }, 120_000);

  it("bounds role assumption by the organization's SCPs with --aws-organization", async () => {
    const authz = join(tmp, "authz.json");
    writeFileSync(authz, JSON.stringify(FIXTURE));
    const org = join(tmp, "org");
    writeOrganization(org);
    const assumes = (r: AnalysisResult, user: string, role: string) =>
      r.escalations.some(
        (e) => e.from === `aws:user:${arn("user", user)}` && e.to === `aws:role:${arn("role", role)}`,
      );
    const inherited = (r: AnalysisResult, user: string) =>
      r.findings.filter(
        (f) => f.workload.id === `aws:workload:${arn("user", user)}` && f.category === "inherited-overreach",
      );
    const run = async (...args: string[]) => {
      const r = await runCli(["scan", authz, "--json", ...args], { timeoutMs: 60_000 });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as AnalysisResult;
    };
    const open = await run();
    expect(assumes(open, "ops", "breakglass")).toBe(true);
    expect(inherited(open, "ops").map((f) => f.permission.action)).toEqual(["aws:iam:*"]);
    const bounded = await run("--aws-organization", org);
    expect(assumes(bounded, "ops", "breakglass")).toBe(false);
    expect(inherited(bounded, "ops")).toEqual([]);
    expect(assumes(bounded, "ci", "deploy")).toBe(true);
    const bad = await runCli(["scan", authz, "--aws-organization", join(tmp, "paths")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^writ: --aws-organization: .*organization\.json/);
  }, 120_000);
});
