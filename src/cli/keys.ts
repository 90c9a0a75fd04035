/**
 * `writ keys rotate|list`: the per-environment signing keys of the broker (docs/keys.md).
 *
 *   writ keys rotate --env E [--config FILE] [--data DIR] [--max-token-ttl DURATION] [--json]
 *   writ keys list [--env E] [--config FILE] [--data DIR] [--json]
 *
 * `rotate` retires the environment's active key at once and creates a new one; the retired key
 * stays published until every token it signed has expired: `--max-token-ttl` after now, by default
 * the longest ceiling maximum in writ.yaml (no writ outlives its ceiling). `0` withdraws it at once,
 * for a key that leaked. The environment must be one writ.yaml declares. The rotation is written to
 * the audit log.
 *
 * The store is the embedded one in `<DIR>/pg`, or PostgreSQL when the composition root passes a
 * database URL. `rotate` creates and migrates it (an administrative write); `list` only reads. The
 * embedded store is held by a running `writ serve`: rotate with it stopped, or use PostgreSQL.
 *
 * Exit codes: 0 done, 1 writ.yaml has errors, 2 usage error (unknown environment, bad flag,
 * missing config), 3 the store failed.
 */
import type { Command } from "commander";
import type { KeyInfo } from "../broker/keys.js";
import { formatProblem, loadConfigFile } from "../config/index.js";
import { isWritError, parseDuration, q, type WritConfig } from "../core/index.js";
import { textTable } from "../operate/index.js";
import { withOperator } from "./operator.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

const DEFAULT_CONFIG = "writ.yaml";

/** What the composition root passes: defaults read from the environment there. */
export interface KeysCliDefaults {
  /** The data folder when `--data` is not given (main.ts: `WRIT_DATA_DIR`, else `.writ`). */
  readonly dataDir?: string | undefined;
  /** PostgreSQL instead of the embedded store (main.ts: `WRIT_DATABASE_URL`). */
  readonly databaseUrl?: string | undefined;
  readonly clock?: (() => Date) | undefined;
  /** Who rotates, for the audit record (main.ts: WRIT_OPERATOR or USER). */
  readonly operator?: string | undefined;
}

export interface KeysRotateOptions {
  readonly env: string;
  readonly config: string;
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly maxTokenTtl?: string | undefined;
  /** The key family: `EdDSA` (default, writ's tokens) or `ES256` (AWS web-identity tokens). */
  readonly alg?: string | undefined;
  readonly json: boolean;
  readonly clock?: (() => Date) | undefined;
  /** Who rotates, for the audit record (main.ts: WRIT_OPERATOR or USER). */
  readonly operator?: string | undefined;
}

export interface KeysListOptions {
  readonly env?: string | undefined;
  readonly config: string;
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly json: boolean;
}

/** Loads writ.yaml: a missing file is a usage error (2), an invalid one the answer no (1). */
async function requireConfig(file: string, io: Io, json: boolean): Promise<WritConfig> {
  const { config, problems } = await loadConfigFile(file);
  if (config !== undefined) return config;
  const missing = problems.find((p) => p.code === "ERR_CONFIG_FILE" && p.path === "");
  if (missing) throw new CliFailure(missing.code, missing.message, EXIT.usage);
  if (json) io.err(JSON.stringify({ error: { code: "ERR_CONFIG_INVALID", problems } }));
  else for (const p of problems) io.err(formatProblem(p));
  const errors = problems.filter((p) => p.severity === "error").length;
  throw new CliFailure(
    "ERR_CONFIG_INVALID",
    `${file}: ${errors} error(s); run \`writ check\` for details`,
    EXIT.no,
  );
}

function requireEnvironment(config: WritConfig, env: string, file: string): void {
  if (config.environments.has(env)) return;
  const known = [...config.environments.keys()].map((e) => q(e)).join(", ");
  throw new CliFailure(
    "ERR_UNKNOWN_ENVIRONMENT",
    `--env ${q(env)}: ${file} declares no such environment (it declares ${known || "none"})`,
    EXIT.usage,
  );
}

/**
 * The longest TTL a token of this config can have: the largest ceiling maximum. With no runner
 * class at all, a bound past any key's life: the retired key stays published for the rest of it.
 */
function longestTtl(config: WritConfig): number {
  let longest = 0;
  for (const runnerClass of config.runnerClasses.values()) {
    longest = Math.max(longest, runnerClass.ceiling.maxTtlSeconds);
  }
  return longest > 0 ? longest : 100 * 365 * 86_400;
}

function parseTtl(text: string): number {
  if (text.trim() === "0") return 0;
  try {
    return parseDuration(text);
  } catch (err) {
    if (isWritError(err)) throw new CliFailure("ERR_USAGE", `--max-token-ttl: ${err.message}`, EXIT.usage);
    throw err;
  }
}

function keyJson(k: KeyInfo) {
  return {
    kid: k.kid,
    env: k.env,
    alg: k.alg,
    status: k.status,
    createdAt: k.createdAt.toISOString(),
    signUntil: k.signUntil.toISOString(),
    publishUntil: k.publishUntil.toISOString(),
    retiredAt: k.retiredAt?.toISOString() ?? null,
  };
}

export async function keysRotate(opts: KeysRotateOptions, io: Io): Promise<number> {
  const config = await requireConfig(opts.config, io, opts.json);
  requireEnvironment(config, opts.env, opts.config);
  const maxTtl = opts.maxTokenTtl !== undefined ? parseTtl(opts.maxTokenTtl) : longestTtl(config);
  const alg = opts.alg ?? "EdDSA";
  if (alg !== "EdDSA" && alg !== "ES256") {
    throw new CliFailure("ERR_USAGE", `--alg ${q(alg)}: expected \`EdDSA\` or \`ES256\``, EXIT.usage);
  }
  const { retired, created } = await withOperator(opts, config, { create: true, migrate: true }, (ops) =>
    ops.rotateKey(opts.env, { maxTokenTtlSeconds: maxTtl, by: opts.operator ?? "operator", alg }),
  );
  emit(
    io,
    opts.json,
    {
      environment: opts.env,
      retired: retired === undefined ? null : keyJson(retired),
      created: keyJson(created),
    },
    () =>
      [
        retired === undefined
          ? `${opts.env}: no active key to retire`
          : `${opts.env}: retired ${retired.kid}: signs no more, published until ${retired.publishUntil.toISOString()}`,
        `${opts.env}: active ${created.kid}: signs until ${created.signUntil.toISOString()}`,
      ].join("\n"),
  );
  return EXIT.ok;
}

function table(keys: readonly KeyInfo[]): string {
  if (keys.length === 0) return "no signing keys";
  const rows = [
    ["KID", "ENV", "ALG", "STATUS", "CREATED", "SIGN UNTIL", "PUBLISHED UNTIL"],
    ...keys.map((k) => [
      k.kid,
      k.env,
      k.alg,
      k.status,
      k.createdAt.toISOString(),
      k.signUntil.toISOString(),
      k.publishUntil.toISOString(),
    ]),
  ];
  return textTable(rows);
}

export async function keysList(opts: KeysListOptions, io: Io): Promise<number> {
  if (opts.env !== undefined) {
    const config = await requireConfig(opts.config, io, opts.json);
    requireEnvironment(config, opts.env, opts.config);
  }
  const keys = await withOperator(opts, undefined, { create: false }, (ops) => ops.listKeys(opts.env));
  emit(io, opts.json, keys.map(keyJson), () => table(keys));
  return EXIT.ok;
}

export function registerKeys(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: KeysCliDefaults = {},
): Command {
  const dataDir = defaults.dataDir ?? ".writ";
  const keys = program.command("keys").description("rotate and list the per-environment signing keys");

  keys
    .command("rotate")
    .description("retire the environment's signing key at once and create a new one")
    .requiredOption("--env <environment>", "the environment (one writ.yaml declares)")
    .option("--config <file>", "the config file", DEFAULT_CONFIG)
    .option("--data <dir>", "the data folder", dataDir)
    .option(
      "--max-token-ttl <duration>",
      "publish the retired key this long (default: the longest ceiling maximum; 0: withdraw it now)",
    )
    .option(
      "--alg <alg>",
      "the key family: EdDSA (writ's tokens) or ES256 (AWS web-identity tokens)",
      "EdDSA",
    )
    .option("--json", "print JSON", false)
    .action(async (o: Omit<KeysRotateOptions, "databaseUrl" | "clock">) =>
      setExit(
        await keysRotate(
          { ...o, databaseUrl: defaults.databaseUrl, clock: defaults.clock, operator: defaults.operator },
          io,
        ),
      ),
    );

  keys
    .command("list")
    .description(
      "list signing keys: kid, environment, algorithm, status, created, sign until, published until",
    )
    .option("--env <environment>", "only this environment (one writ.yaml declares)")
    .option("--config <file>", "the config file (read with --env)", DEFAULT_CONFIG)
    .option("--data <dir>", "the data folder", dataDir)
    .option("--json", "print JSON", false)
    .action(async (o: Omit<KeysListOptions, "databaseUrl">) =>
      setExit(await keysList({ ...o, databaseUrl: defaults.databaseUrl }, io)),
    );

  return keys;
}
