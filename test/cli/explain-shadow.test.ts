/** `writ explain` names what rules in shadow mode would have denied, apart from the outcome. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { quickstartCopy } from "../http/support.js";

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-explain-shadow-"));
  file = await quickstartCopy(dir, "", (yaml) =>
    yaml.replace(
      "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n",
      "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n    mode: shadow\n",
    ),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writ explain with a shadow ceiling", () => {
  it("shows the outcome (an enforcing deny) and, apart, what the shadow ceiling would have denied too", async () => {
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    const args = ["explain", "-c", file, "--agent", "cost-analyst", "--env", "dev"];
    const code = await main([...args, "--action", "k8s:core/secrets:get", "--resource", "shop/db"], io, {});
    // no grant covers secrets: denied (exit 1) by that; the shadow ceiling's deny only recorded
    expect(code).toBe(1);
    const text = out.join("\n");
    expect(text).toMatch(/^DENY/);
    expect(text).toContain("no_grant");
    expect(text).toContain("would have denied (rules in shadow mode; not enforced):");
    expect(text).toContain("ceiling:analyst [explicit_deny]");

    out.length = 0;
    const json = await main(
      [...args, "--action", "k8s:core/secrets:get", "--resource", "shop/db", "--json"],
      io,
      {},
    );
    expect(json).toBe(1);
    const d = JSON.parse(out.join("")) as { allowed: boolean; shadow: { rule: string; reason: string }[] };
    expect(d.allowed).toBe(false);
    expect(d.shadow).toEqual([expect.objectContaining({ rule: "ceiling:analyst", reason: "explicit_deny" })]);
  });
});
