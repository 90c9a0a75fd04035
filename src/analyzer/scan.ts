/**
 * Scanning files: detect each file's importer, import the structure files first and link them, then
 * stream the activity files through the engine, with progress for large inputs.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Engine, type EngineOptions } from "./engine.js";
import { openInput, problem } from "./input.js";
import type { AnalysisResult, Importer, InputFile, ProviderPlugin } from "./model.js";

export interface ScanProgress {
  readonly file: string;
  readonly bytes: number;
  readonly size: number;
}

export interface ScanOptions extends EngineOptions {
  readonly progress?: ((p: ScanProgress) => void) | undefined;
}

/** Files under the given paths (folders walked, hidden entries skipped), in a stable order. */
export async function expandPaths(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string) => {
    const s = await stat(p);
    if (s.isDirectory()) {
      for (const e of (await readdir(p)).sort()) if (!e.startsWith(".")) await walk(join(p, e));
    } else out.push(p);
  };
  for (const p of paths) await walk(p);
  return out;
}

export function pickImporter(plugins: readonly ProviderPlugin[], file: InputFile): Importer | undefined {
  for (const p of plugins) for (const i of p.importers) if (i.detect(file)) return i;
  return undefined;
}

export async function scanPaths(paths: readonly string[], opts: ScanOptions): Promise<AnalysisResult> {
  const engine = new Engine(opts);
  const files = await expandPaths(paths);
  const plan: { file: InputFile; importer: Importer }[] = [];
  for (const path of files) {
    const file = await openInput(path, (bytes) => opts.progress?.({ file: path, bytes, size: file.size }));
    const importer = pickImporter(opts.plugins, file);
    if (!importer) {
      if (/\.(ya?ml|json|jsonl|log)$/i.test(path))
        engine.addProblems([
          problem(
            "WARN_INPUT_UNRECOGNISED",
            { file: path },
            "no importer recognises this file; skipped",
            "warning",
          ),
        ]);
      continue;
    }
    plan.push({ file, importer });
  }
  engine.files = plan.length;
  const structure = plan.filter((p) => (p.importer.phase ?? "structure") === "structure");
  const activity = plan.filter((p) => p.importer.phase === "activity");
  for (const { file, importer } of structure) {
    const r = await importer.import(file, { window: opts.window });
    engine.add(r.fragment);
    engine.addProblems(r.problems);
  }
  engine.link();
  for (const { file, importer } of activity) {
    const r = await importer.import(file, {
      window: opts.window,
      onEvent: (e) => engine.event(e),
      progress: (bytes) => opts.progress?.({ file: file.path, bytes, size: file.size }),
    });
    engine.add(r.fragment);
    engine.addProblems(r.problems);
  }
  return engine.result();
}
