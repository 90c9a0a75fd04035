/** `writ --version` answers the package's version, alone and before any verb is loaded. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, runCli } from "../support/cli.js";

describe("writ --version", () => {
  const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
    .version;
  for (const flag of ["--version", "-V"]) {
    it(`${flag} prints the package version and exits 0`, async () => {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(version);
      expect(r.stderr).toBe("");
    });
  }
});
