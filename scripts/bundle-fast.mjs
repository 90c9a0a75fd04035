/**
 * The start-up fast paths as one CommonJS file each, made by `npm run build` after tsc: agents run
 * `writ hook` around every tool call and tools run `writ creds` on every start, so these paths pay
 * Node's start on every call. One CommonJS file (bin/writ.cjs requires it) skips the ESM loader and
 * the resolution of a module graph, which cost a start ~20 ms of CPU here (docs/hooks.md). The sources stay the TypeScript
 * in src/cli/; test/cli/fast-bundle.test.ts holds dist's bundles equal to what this makes from them.
 *
 * Plain JavaScript (run by node, before anything else is built) with esbuild's API.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Each bundle: its source and the file it becomes. */
export const FAST_BUNDLES = [
  { source: "src/cli/hook-fast.ts", out: "dist/cli/hook-fast.cjs" },
  { source: "src/cli/creds-fast.ts", out: "dist/cli/creds-fast.cjs" },
];

/** The bundles' text, `{ out, text }` each, from the sources as they are now. */
export async function bundleFast(root = ROOT) {
  const made = [];
  for (const b of FAST_BUNDLES) {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [b.source],
      bundle: true,
      write: false,
      platform: "node",
      format: "cjs",
      target: "node20",
      // the offline hook (PGlite, the decision engine) stays the compiled ESM beside the bundle,
      // loaded only without a server
      external: ["./hook-offline.js"],
      banner: {
        js: `// Made by scripts/bundle-fast.mjs from ${b.source} (npm run build): do not edit.`,
      },
      logLevel: "silent",
    });
    made.push({ out: b.out, text: result.outputFiles[0].text });
  }
  return made;
}

// `node scripts/bundle-fast.mjs [--out <dir>]`: writes the bundles under the repository (or <dir>)
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf("--out");
  const into = at === -1 ? ROOT : process.argv[at + 1];
  for (const { out, text } of await bundleFast()) {
    mkdirSync(dirname(join(into, out)), { recursive: true });
    writeFileSync(join(into, out), text);
  }
}
