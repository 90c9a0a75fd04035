/**
 * The shared corpora (../shared/corpora beside the repository, as in CI). Tests that need them fail
 * with this message when the folder is missing — they never skip silently.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { AnalysisResult, GraphView } from "../../src/analyzer/index.js";
import {
  Engine,
  type EngineOptions,
  expandPaths,
  openInput,
  pickImporter,
} from "../../src/analyzer/index.js";
import { ROOT } from "../support/cli.js";

export const CORPORA = join(ROOT, "..", "shared", "corpora");

export function corpus(...parts: string[]): string {
  if (!existsSync(join(CORPORA, "README.md"))) {
    throw new Error(
      `the test corpora are missing: expected ${CORPORA} (the shared corpora folder beside the repository, as in CI)`,
    );
  }
  const p = join(CORPORA, ...parts);
  if (!existsSync(p)) throw new Error(`corpus file missing: ${p}`);
  return p;
}

/** Runs the engine over paths and keeps the graph too (tests look at edges the reports summarise). */
export async function analyze(
  paths: readonly string[],
  opts: EngineOptions,
): Promise<{ result: AnalysisResult; graph: GraphView }> {
  const engine = new Engine(opts);
  const activity: {
    file: Awaited<ReturnType<typeof openInput>>;
    importer: NonNullable<ReturnType<typeof pickImporter>>;
  }[] = [];
  for (const path of await expandPaths(paths)) {
    const file = await openInput(path);
    const importer = pickImporter(opts.plugins, file);
    if (!importer) continue;
    if (importer.phase === "activity") {
      activity.push({ file, importer });
      continue;
    }
    const r = await importer.import(file);
    engine.add(r.fragment);
    engine.addProblems(r.problems);
  }
  const graph = engine.link();
  for (const { file, importer } of activity) {
    const r = await importer.import(file, { onEvent: (e) => engine.event(e) });
    engine.addProblems(r.problems);
  }
  return { result: engine.result(), graph };
}

export interface Score {
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  readonly precision: number;
  readonly recall: number;
  readonly missing: string[];
  readonly extra: string[];
}

export function score(expected: Iterable<string>, actual: Iterable<string>): Score {
  const e = new Set(expected);
  const a = new Set(actual);
  const tp = [...a].filter((x) => e.has(x)).length;
  const missing = [...e].filter((x) => !a.has(x)).sort();
  const extra = [...a].filter((x) => !e.has(x)).sort();
  return {
    tp,
    fp: extra.length,
    fn: missing.length,
    precision: a.size === 0 ? 1 : tp / a.size,
    recall: e.size === 0 ? 1 : tp / e.size,
    missing,
    extra,
  };
}

export function printScore(name: string, s: Score): void {
  console.log(
    `[precision/recall] ${name}: precision ${s.precision.toFixed(3)} recall ${s.recall.toFixed(3)} (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})` +
      (s.missing.length ? `\n  missing: ${s.missing.slice(0, 20).join(", ")}` : "") +
      (s.extra.length ? `\n  extra: ${s.extra.slice(0, 20).join(", ")}` : ""),
  );
}
