/**
 * `writ scan PATH…`: read Kubernetes manifests and audit logs, GitHub Actions workflows and agent
 * traces; sort every permission into the three categories of excess; print a summary or a report.
 *
 *   writ scan PATH… [--format terminal|json|sarif|markdown|html] [--output FILE]
 *                   [--fail-on CATEGORY|SEVERITY[,…]] [--config writ.yaml] [--window 30d|START..END]
 *                   [--declared FILE [--print-config]]
 *                   [--store] [--data DIR] [--aws-paths DIR] [--aws-organization DIR]
 *                   [--root DIR] [--strict]
 *
 * Inputs are named relative to the scan root (`--root`, else the common ancestor of the inputs), so
 * finding ids and SARIF locations do not depend on how a path was spelled.
 *
 * Exit codes: 0 done (and nothing at or above --fail-on), 1 findings matched --fail-on, 2 usage or
 * unreadable input — and, with --strict, an input no importer recognises or an input error (a
 * broken document, a bad line) —, 3 store failure.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { translateDeclaredWork } from "../analyzer/declared-file.js";
import {
  type AnalysisResult,
  type AnalyzerPlugin,
  CATEGORIES,
  type DeclaredWork,
  declaredWork,
  defaultPlugins,
  type Finding,
  formatInputProblem,
  htmlReport,
  jsonReport,
  markdownReport,
  type ObservationWindow,
  SEVERITIES,
  sarifReport,
  scanPaths,
  scanRoot,
  terminalReport,
} from "../analyzer/index.js";
import {
  createAwsPlugin,
  loadOrganization,
  loadPrivescPaths,
  type Organization,
  type PrivescPath,
  SUPPLEMENT_PATHS,
} from "../analyzer/providers/aws/index.js";
import { formatProblem, loadConfigText } from "../config/index.js";
import { isWritError, parseDuration } from "../core/index.js";
import { requirePolicy } from "./common.js";
import { CliFailure, EXIT, type Io } from "./output.js";

export interface ScanOptions {
  readonly format: string;
  readonly output?: string;
  readonly failOn?: string;
  readonly config?: string;
  readonly declared?: string;
  readonly printConfig?: boolean;
  readonly window?: string;
  readonly store: boolean;
  readonly data?: string;
  readonly json: boolean;
  readonly progress: boolean;
  readonly awsPaths?: string;
  readonly awsOrganization?: string;
  readonly root?: string;
  readonly strict?: boolean;
}

export interface ScanDefaults {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly version: string;
  readonly now?: () => number;
}

const FORMATS = ["terminal", "json", "sarif", "markdown", "html"] as const;
const RANK = { critical: 4, high: 3, medium: 2, low: 1 } as const;

export function parseWindow(text: string, now: number): ObservationWindow {
  const range = /^(.+)\.\.(.+)$/.exec(text);
  if (range) {
    const start = Date.parse(range[1]!);
    const end = Date.parse(range[2]!);
    if (Number.isNaN(start) || Number.isNaN(end) || end <= start)
      throw new CliFailure(
        "ERR_USAGE",
        `--window \`${text}\`: expected START..END (ISO 8601), START before END`,
      );
    return { start, end };
  }
  try {
    return { start: now - parseDuration(text) * 1000, end: now + 1 };
  } catch (err) {
    if (isWritError(err)) throw new CliFailure("ERR_USAGE", `--window: ${err.message}`);
    throw err;
  }
}

/** `--fail-on high` (that severity or worse) or `--fail-on inherited-overreach` or both, comma-separated. */
export function failMatcher(text: string): (f: Finding) => boolean {
  const tests = text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      if ((CATEGORIES as readonly string[]).includes(t)) return (f: Finding) => f.category === t;
      if ((SEVERITIES as readonly string[]).includes(t))
        return (f: Finding) => RANK[f.severity] >= RANK[t as keyof typeof RANK];
      throw new CliFailure(
        "ERR_USAGE",
        `--fail-on \`${t}\`: expected a category (${CATEGORIES.join(", ")}) or a severity (${SEVERITIES.join(", ")})`,
      );
    });
  return (f) => tests.some((t) => t(f));
}

function fromFlag<T>(flag: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (isWritError(err)) throw new CliFailure(err.code, `${flag}: ${err.message}`);
    throw err;
  }
}

/**
 * The plug-ins of this scan: the defaults, with AWS's escalation catalogue from `--aws-paths` and
 * the organization's SCPs and RCPs from `--aws-organization`.
 */
function scanPlugins(o: ScanOptions): readonly AnalyzerPlugin[] {
  if (!o.awsPaths && !o.awsOrganization) return defaultPlugins;
  let paths: PrivescPath[] | undefined;
  let organization: Organization | undefined;
  if (o.awsPaths) {
    const dir = o.awsPaths;
    paths = [...fromFlag("--aws-paths", () => loadPrivescPaths(dir)), ...SUPPLEMENT_PATHS];
  }
  if (o.awsOrganization) {
    const dir = o.awsOrganization;
    organization = fromFlag("--aws-organization", () => loadOrganization(dir));
  }
  const aws = createAwsPlugin({ paths, organization });
  return defaultPlugins.map((p) => (p.provider === "aws" ? aws : p));
}

export function render(r: AnalysisResult, format: string, version: string): string {
  switch (format) {
    case "json":
      return jsonReport(r);
    case "sarif":
      return sarifReport(r, version);
    case "markdown":
      return markdownReport(r);
    case "html":
      return htmlReport(r);
    default:
      return terminalReport(r);
  }
}

export async function scan(
  paths: readonly string[],
  o: ScanOptions,
  io: Io,
  d: ScanDefaults,
): Promise<number> {
  if (o.printConfig) {
    if (!o.declared) throw new CliFailure("ERR_USAGE", "--print-config needs --declared FILE");
    io.out((await fromDeclaredFile(o.declared, io)).yaml);
    return EXIT.ok;
  }
  const format = o.json ? "json" : o.format;
  if (!(FORMATS as readonly string[]).includes(format))
    throw new CliFailure("ERR_USAGE", `--format \`${format}\`: expected one of ${FORMATS.join(", ")}`);
  if (paths.length === 0) throw new CliFailure("ERR_USAGE", "give at least one file or folder to scan");
  const fail = o.failOn ? failMatcher(o.failOn) : undefined;
  const now = (d.now ?? Date.now)();
  const window = o.window ? parseWindow(o.window, now) : undefined;
  const plugins = scanPlugins(o);
  let declared: Map<string, DeclaredWork> | undefined;
  if (o.config) declared = declaredWork((await requirePolicy(o.config, io, format !== "terminal")).config);
  if (o.declared) {
    const fromFile = (await fromDeclaredFile(o.declared, io)).declared;
    for (const id of fromFile.keys())
      if (declared?.has(id))
        throw new CliFailure("ERR_USAGE", `agent \`${id}\` is in both --config and --declared: keep one`);
    declared = new Map([...(declared ?? []), ...fromFile]);
  }
  let lastReport = 0;
  const progress = (p: { file: string; bytes: number; size: number }) => {
    if (!o.progress || p.size < 8 * 1024 * 1024) return;
    const t = Date.now();
    if (t - lastReport < 1000) return;
    lastReport = t;
    io.err(
      `writ scan: ${p.file}: ${Math.round((p.bytes / p.size) * 100)}% (${(p.bytes / 1048576).toFixed(0)} of ${(p.size / 1048576).toFixed(0)} MiB)`,
    );
  };
  let result: AnalysisResult;
  try {
    const root = o.root !== undefined ? resolve(o.root) : await scanRoot(paths);
    result = await scanPaths(paths, { plugins, declared, window, progress, root });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR")
      throw new CliFailure("ERR_INPUT_FILE", `cannot read input: ${(err as Error).message}`, EXIT.usage);
    throw err;
  }
  if (o.store) {
    const { persistScan } = await import("./findings.js");
    const summary = await persistScan(result, { data: o.data ?? d.dataDir, databaseUrl: d.databaseUrl });
    io.err(
      `writ scan: stored: ${summary.opened} new, ${summary.reclassified} reclassified, ${summary.fixed} fixed, ${summary.unchanged} unchanged`,
    );
  }
  const text = render(result, format, d.version);
  if (o.output) {
    await writeFile(o.output, text.endsWith("\n") ? text : `${text}\n`);
    if (format !== "terminal") io.err(terminalReport(result, { limit: 3, problems: false }));
  } else io.out(text);
  if (format !== "terminal" && !o.output) {
    // the problems are inside the report; say how many on stderr too
    if (result.problems.length > 0)
      io.err(`writ scan: ${result.problems.length} input problem(s); see the report`);
    for (const p of result.problems)
      if (p.code === "WARN_INPUT_UNRECOGNISED") io.err(`writ scan: ${formatInputProblem(p)}`);
  }
  if (o.strict) {
    const strictFail = result.problems.filter(
      (p) => p.severity === "error" || p.code === "WARN_INPUT_UNRECOGNISED",
    );
    if (strictFail.length > 0) {
      for (const p of strictFail.slice(0, 20)) io.err(`writ scan: ${formatInputProblem(p)}`);
      io.err(
        `writ scan: --strict: ${strictFail.length} input(s) not read in full (unrecognised files or input errors)`,
      );
      return EXIT.usage;
    }
  }
  const failing = fail ? result.findings.filter(fail) : [];
  if (failing.length > 0) {
    io.err(`writ scan: ${failing.length} finding(s) match --fail-on ${o.failOn}`);
    return EXIT.no;
  }
  return EXIT.ok;
}

const MAX_DECLARED_BYTES = 4 * 1024 * 1024;

/** A declared-work file → the writ.yaml it stands for, loaded and checked like any writ.yaml. */
async function fromDeclaredFile(
  file: string,
  io: Io,
): Promise<{ yaml: string; declared: Map<string, DeclaredWork> }> {
  let text: string;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new CliFailure("ERR_INPUT_FILE", `--declared \`${file}\`: not a regular file`);
    if (s.size > MAX_DECLARED_BYTES)
      throw new CliFailure("ERR_INPUT_FILE", `--declared \`${file}\`: larger than 4 MiB`);
    text = await readFile(file, "utf8");
  } catch (err) {
    if (err instanceof CliFailure) throw err;
    throw new CliFailure("ERR_INPUT_FILE", `--declared: cannot read \`${file}\`: ${(err as Error).message}`);
  }
  const t = translateDeclaredWork(text, file);
  if (!t.yaml) {
    for (const p of t.problems) io.err(formatInputProblem(p));
    throw new CliFailure(
      "ERR_DECLARED_WORK",
      `${file}: ${t.problems.length} problem(s) in the declared work`,
    );
  }
  const loaded = await loadConfigText(t.yaml, { file: `${file} (as writ.yaml)` });
  if (!loaded.config) {
    for (const p of loaded.problems) io.err(formatProblem(p));
    throw new CliFailure(
      "ERR_DECLARED_WORK",
      `${file}: the declared work does not make a valid writ.yaml (\`--print-config\` shows it)`,
    );
  }
  return { yaml: t.yaml, declared: declaredWork(loaded.config) };
}

export function registerScan(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  d: ScanDefaults,
): void {
  program
    .command("scan")
    .description(
      "find excess permission (unused, unjustified, inherited) in Kubernetes, GitHub Actions, AWS and agent traces",
    )
    .argument(
      "[paths...]",
      "files or folders: manifests, audit logs, workflows, AWS authorization details and CloudTrail, OTLP JSON traces",
    )
    .option("--format <format>", `output: ${FORMATS.join(", ")}`, "terminal")
    .option("-o, --output <file>", "write the report to a file (a short summary still goes to stderr)")
    .option(
      "--fail-on <list>",
      "exit 1 when a finding matches: a category or a minimum severity, comma-separated",
    )
    .option("-c, --config <file>", "writ.yaml with the agents' declared work (enables unjustified-use)")
    .option(
      "--declared <file>",
      "the agents' declared work as their owners wrote it (docs/analyzer.md), instead of or besides --config",
    )
    .option("--print-config", "print the writ.yaml that --declared translates to, and exit", false)
    .option("--window <window>", "observation window: a duration ending now (`30d`) or START..END")
    .option("--store", "record the findings in the store's queue (history, reclassification)", false)
    .option("--data <dir>", `data folder for --store (default: WRIT_DATA_DIR or ${d.dataDir})`)
    .option(
      "--aws-paths <dir>",
      "AWS escalation path catalogue: a folder of pathfinding.cloud path files (default: the one writ ships)",
    )
    .option(
      "--aws-organization <dir>",
      "AWS organization tree (SCPs, RCPs; layout in docs/aws.md) bounding role assumption and escalation",
    )
    .option(
      "--root <dir>",
      "name inputs relative to this folder (default: their common ancestor); ids and SARIF locations use it",
    )
    .option(
      "--strict",
      "exit 2 when a file is not recognised or an input is broken in part (default: a warning, the rest analyzed)",
      false,
    )
    .option("--no-progress", "no progress lines on stderr for large inputs")
    .option("--json", "same as --format json", false)
    .action(async (paths: string[], o: ScanOptions) => setExit(await scan(paths, o, io, d)));
}
