/**
 * `npm run bench`: runs every `bench/*.bench.ts` in name order. Each exports `run()`, which prints
 * its own table. Bounded in time: each file budgets its own measurements (a few seconds).
 */
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here))
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

console.log(`node ${process.version}, ${process.platform}/${process.arch}\n`);
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run?: () => Promise<void> };
  if (typeof mod.run !== "function") throw new TypeError(`bench/${f} must export \`run()\``);
  await mod.run();
  console.log();
}
