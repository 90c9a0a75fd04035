/**
 * Regenerates `data/aws-privesc-paths.json`, the privilege-escalation path catalogue writ ships,
 * from DataDog/pathfinding.cloud's path files (Apache-2.0) in the shared corpora:
 *
 *   npx tsx scripts/aws-privesc-paths.ts [--corpus DIR] [--out FILE]
 *
 * `--corpus` is the catalogue folder (default `../shared/corpora/aws-privesc-paths`); its `paths/`
 * holds the YAML files, and the corpora's NOTICE beside it gives the upstream commit. Only the facts
 * evaluation needs are kept (src/analyzer/providers/aws/paths.ts). Writes `--out` (default the shipped file),
 * or prints to stdout with `--out -`. A test checks the shipped file equals this script's output.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  buildPrivescCatalogue,
  type CatalogueOrigin,
  renderPrivescCatalogue,
} from "../src/analyzer/providers/aws/paths.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_CORPUS = join(ROOT, "..", "shared", "corpora", "aws-privesc-paths");
export const DEFAULT_OUT = join(ROOT, "data", "aws-privesc-paths.json");

/** The upstream repository, commit and licence of a corpora folder, from the corpora's NOTICE. */
export function originFromNotice(notice: string, folder: string): CatalogueOrigin {
  const lines = notice.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`${folder}/`) && l.includes("<-"));
  if (start < 0) throw new Error(`NOTICE: no block for \`${folder}/\``);
  const repository = /<-\s+(https:\/\/\S+)/.exec(lines[start]!)?.[1];
  const block = lines.slice(start + 1, start + 8).join("\n");
  const commit = /^Commit:\s+([0-9a-f]{40})/m.exec(block)?.[1];
  const licence = /^Licence:\s+(.+?)\s+\(/m.exec(block)?.[1];
  if (!repository || !commit || !licence)
    throw new Error(`NOTICE: the \`${folder}/\` block needs the repository, \`Commit:\` and \`Licence:\``);
  return { repository, commit, licence };
}

export function generate(corpus: string): string {
  const dir = resolve(corpus);
  const notice = readFileSync(join(dir, "..", "NOTICE"), "utf8");
  const origin = originFromNotice(notice, dir.split(/[\\/]/).pop()!);
  return renderPrivescCatalogue(buildPrivescCatalogue(join(dir, "paths"), origin));
}

export function main(argv: readonly string[]): number {
  let corpus = DEFAULT_CORPUS;
  let out = DEFAULT_OUT;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if ((a === "--corpus" || a === "--out") && v !== undefined) {
      if (a === "--corpus") corpus = v;
      else out = v;
      i++;
    } else {
      process.stderr.write(
        `aws-privesc-paths: unknown argument \`${a}\`\nusage: npx tsx scripts/aws-privesc-paths.ts [--corpus DIR] [--out FILE|-]\n`,
      );
      return 2;
    }
  }
  let text: string;
  try {
    text = generate(corpus);
  } catch (err) {
    process.stderr.write(`aws-privesc-paths: ${(err as Error).message}\n`);
    return 1;
  }
  if (out === "-") process.stdout.write(text);
  else writeFileSync(out, text);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
