import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigFile, loadConfigText } from "../../src/config/index.js";
import { ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart", "writ.yaml");

describe("approvers", () => {
  it("the quickstart registers a public key for every approver", async () => {
    const r = await loadConfigFile(QUICKSTART);
    expect(r.problems).toEqual([]);
    const approvers = r.config!.approvers!;
    expect([...approvers.keys()].sort()).toEqual([
      "alice@acme.example",
      "bob@acme.example",
      "carol@acme.example",
      "dan@acme.example",
    ]);
    for (const a of approvers.values()) {
      expect(a.keys.length).toBe(1);
      expect(a.keys[0]).not.toHaveProperty("d");
    }
  });

  it("a group member without keys is a warning: CLI approvals only", async () => {
    const { readFile } = await import("node:fs/promises");
    const text = (await readFile(QUICKSTART, "utf8")).replace(
      "  dan@acme.example: { keys: { file: keys/approver-dan.jwks.json } }\n",
      "",
    );
    const r = await loadConfigText(text, { file: QUICKSTART });
    expect(r.config).toBeDefined();
    expect(r.problems.map((p) => [p.code, p.path])).toEqual([
      ["WARN_CONFIG_APPROVER_NO_KEYS", "approverGroups.managers.members[1]"],
    ]);
  });

  it("without an approvers section nothing is required", async () => {
    const { readFile } = await import("node:fs/promises");
    const full = await readFile(QUICKSTART, "utf8");
    const text = full.replace(/^approvers:\n( {2}.*\n)+/m, "");
    expect(text).not.toContain("approver-alice");
    const r = await loadConfigText(text, { file: QUICKSTART });
    expect(r.problems).toEqual([]);
    expect(r.config!.approvers).toBeUndefined();
  });
});
