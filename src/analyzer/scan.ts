/**
 * Scanning files: detect each file's importer, import the structure files first and link them, then
 * stream the activity files through the engine, with progress for large inputs.
 *
 * With a scan root, every input is named by its path relative to the root (`/` separated): node
 * ids built from file names (GitHub jobs), evidence and so finding ids and SARIF fingerprints are
 * then the same whether an input was given as `./x`, `x` or `/abs/x`. `writ scan` always sets one:
 * `--root`, else the common ancestor of its inputs (`scanRoot`).
 */
import { readdir, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { Engine, type EngineOptions } from "./engine.js";
import { openInput, problem } from "./input.js";
import type { AnalysisResult, AnalyzerPlugin, Importer, InputFile, ToolCall } from "./model.js";

export interface ScanProgress {
  readonly file: string;
  readonly bytes: number;
  readonly size: number;
}

export interface ScanOptions extends EngineOptions {
  readonly progress?: ((p: ScanProgress) => void) | undefined;
  /**
   * Name inputs relative to this folder (absolute, or relative to the working directory). An input
   * outside it keeps its absolute path. Without one, inputs keep the paths they were given.
   */
  readonly root?: string | undefined;
}

/**
 * The common ancestor of the inputs: a folder given stands for itself, a file for its folder.
 * Absolute; the same however the paths are spelled.
 */
export async function scanRoot(paths: readonly string[]): Promise<string> {
  const dirs: string[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    dirs.push((await stat(abs)).isDirectory() ? abs : dirname(abs));
  }
  if (dirs.length === 0) return resolve(".");
  let parts = dirs[0]!.split(sep);
  for (const d of dirs.slice(1)) {
    const other = d.split(sep);
    let i = 0;
    while (i < parts.length && i < other.length && parts[i] === other[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

/** How an input is named under a root: relative with `/`, or absolute when outside the root. */
export function rootedName(root: string, path: string): string {
  const abs = resolve(path);
  const rel = relative(root, abs);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return abs.split(sep).join("/");
  return rel.split(sep).join("/");
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

export function pickImporter(plugins: readonly AnalyzerPlugin[], file: InputFile): Importer | undefined {
  for (const p of plugins) for (const i of p.importers) if (i.detect(file)) return i;
  return undefined;
}

export async function scanPaths(paths: readonly string[], opts: ScanOptions): Promise<AnalysisResult> {
  const engine = new Engine(opts);
  const root = opts.root === undefined ? undefined : resolve(opts.root);
  const files = await expandPaths(paths);
  const plan: { file: InputFile; importer: Importer }[] = [];
  for (const path of files) {
    const name = root === undefined ? path : rootedName(root, path);
    const file = await openInput(
      path,
      (bytes) => opts.progress?.({ file: name, bytes, size: file.size }),
      name,
    );
    const importer = pickImporter(opts.plugins, file);
    if (!importer) {
      // Nothing is skipped silently: `writ scan --strict` fails on this warning.
      engine.addProblems([
        problem(
          "WARN_INPUT_UNRECOGNISED",
          { file: name },
          "no importer recognises this file (not a Kubernetes manifest or audit log, GitHub workflow, AWS authorization details or CloudTrail, or OTLP JSON traces); skipped",
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
    // Tool calls stream into the engine's compact store when the importer can read them again.
    const reload = importer.reload;
    if (reload) engine.callSource(file, (f, lines) => reload.call(importer, f, lines));
    const r = await importer.import(file, {
      window: opts.window,
      ...(reload ? { onToolCall: (c: ToolCall) => engine.toolCall(c) } : {}),
    });
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
  await engine.finish();
  const result = engine.result();
  return root === undefined ? result : { ...result, root };
}
