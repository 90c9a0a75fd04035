/**
 * `writ audit verify|tail|export`: check, read and export the audit log.
 *
 *   writ audit verify [--data DIR] [--key FILE]… [--file EXPORT.json] [--json]
 *   writ audit tail   [--data DIR] [-n N] [--follow] [--json]
 *   writ audit export [--data DIR] [--out FILE] [--json]
 *
 * The store is the embedded one in `<DIR>/pg`, or PostgreSQL when the composition root passes a
 * database URL. These verbs never create or migrate a database. `verify` trusts the public keys
 * given with `--key` and, by default, the data folder's `keys/audit-signing.pub.jwk` — never a key
 * read from the database or from the export file.
 *
 * Exit codes: 0 intact, 1 damaged, 2 usage or input error, 3 the store failed.
 */
import { once } from "node:events";
import { open, readFile } from "node:fs/promises";
import type { Command } from "commander";
import {
  type AuditRecord,
  dataDirPublicKey,
  ERR_AUDIT_DAMAGED,
  openAuditLog,
  readTrustedKey,
  type TrustedKey,
  type VerifyReport,
  verifyExport,
} from "../audit/index.js";
import { isWritError, q } from "../core/index.js";
import { CliFailure, EXIT, emit, type Io, stdio } from "./output.js";
import { withStore } from "./store.js";

/** What the composition root passes: defaults read from the environment there. */
export interface AuditCliDefaults {
  /** The data folder when `--data` is not given (main.ts: `WRIT_DATA_DIR`, else `.writ`). */
  readonly dataDir?: string | undefined;
  /** PostgreSQL instead of the embedded store (main.ts: `WRIT_DATABASE_URL`). */
  readonly databaseUrl?: string | undefined;
  /** Ends `tail --follow` (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal | undefined;
}

export interface AuditVerifyOptions {
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly key?: readonly string[] | undefined;
  readonly file?: string | undefined;
  readonly json: boolean;
}

export interface AuditTailOptions {
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly lines?: string | undefined;
  readonly follow: boolean;
  readonly json: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Poll interval for --follow (default 1000 ms). */
  readonly intervalMs?: number | undefined;
}

export interface AuditExportOptions {
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly out?: string | undefined;
  readonly json: boolean;
}

/** Maps what the library throws to the CLI's exit codes. */
function asFailure(err: unknown): unknown {
  if (isWritError(err, ERR_AUDIT_DAMAGED)) return new CliFailure(err.code, err.message, EXIT.no);
  return err;
}

export async function trustedKeys(opts: Pick<AuditVerifyOptions, "key" | "data">): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of opts.key ?? []) keys.push(await readTrustedKey(file));
  if (keys.length === 0) {
    const own = await dataDirPublicKey(opts.data);
    if (own !== undefined) keys.push(own);
  }
  return keys;
}

async function readExport(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new CliFailure("ERR_FILE", `cannot read ${q(file)}: ${(err as Error).message}`, EXIT.usage);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliFailure("ERR_FILE", `${q(file)} is not JSON: ${(err as Error).message}`, EXIT.usage);
  }
}

function describeReport(report: VerifyReport, source: string): string {
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
  if (report.firstBad === undefined) {
    const tail =
      report.lastCheckpointSeq === undefined
        ? "no signed checkpoint"
        : `${n(report.unsigned, "record")} after the last checkpoint (seq ${report.lastCheckpointSeq})`;
    return `${source}: audit log intact: ${n(report.records, "record")}, ${n(report.checkpoints, "checkpoint")}, last seq ${report.lastSeq}, ${tail}`;
  }
  const bad = report.firstBad;
  return [
    `${source}: audit log DAMAGED: ${bad.problem} at seq ${bad.seq}: ${bad.message}`,
    `${n(report.records, "record")} and ${n(report.checkpoints, "checkpoint")} checked before the damage`,
  ].join("\n");
}

export async function auditVerify(opts: AuditVerifyOptions, io: Io): Promise<number> {
  const keys = await trustedKeys(opts).catch((err: unknown) => {
    throw asFailure(err);
  });
  let report: VerifyReport;
  let source: string;
  if (opts.file !== undefined) {
    const doc = await readExport(opts.file);
    report = await verifyExport(doc, keys);
    source = opts.file;
  } else {
    [report, source] = await withStore(opts, { mapError: asFailure }, async (store) => [
      await openAuditLog({ repo: store.audit }).verify({ trustedKeys: keys }),
      store.location,
    ]);
  }
  if (keys.length === 0 && !opts.json) {
    io.err(
      `writ: no trusted public key (no \`--key FILE\`, none in ${q(opts.data)}): signed checkpoints cannot be confirmed`,
    );
  }
  const trusted = keys.map((k) => k.kid);
  emit(io, opts.json, { source, trustedKeys: trusted, ...report }, () => describeReport(report, source));
  return report.ok ? EXIT.ok : EXIT.no;
}

function parseCount(text: string | undefined): number {
  if (text === undefined) return 10;
  if (!/^\d{1,7}$/.test(text))
    throw new CliFailure("ERR_USAGE", `-n ${q(text)}: expected a whole number`, EXIT.usage);
  return Number(text);
}

function line(record: AuditRecord, json: boolean): string {
  if (json) {
    return JSON.stringify({
      seq: record.seq,
      at: record.at.toISOString(),
      type: record.type,
      data: record.data,
      prevHash: record.prevHash,
      hash: record.hash,
    });
  }
  return `${record.seq}  ${record.at.toISOString()}  ${record.type}  ${JSON.stringify(record.data)}`;
}

/** `--json` prints one JSON object per line (NDJSON), so it can be followed and piped. */
export async function auditTail(opts: AuditTailOptions, io: Io): Promise<number> {
  const count = parseCount(opts.lines);
  return withStore(opts, { mapError: asFailure }, async (store) => {
    const log = openAuditLog({ repo: store.audit });
    const records = await log.tail(count);
    for (const record of records) io.out(line(record, opts.json));
    if (!opts.follow) return EXIT.ok;
    const after = records.length > 0 ? records[records.length - 1]!.seq : (await log.head()).seq;
    const controller = new AbortController();
    const stop = () => controller.abort();
    opts.signal?.addEventListener("abort", stop, { once: true });
    // a stop asked while the store was opening was never heard by the listener above
    if (opts.signal?.aborted === true) stop();
    if (opts.signal === undefined) {
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    }
    try {
      for await (const record of log.follow({
        afterSeq: after,
        signal: controller.signal,
        intervalMs: opts.intervalMs,
      })) {
        io.out(line(record, opts.json));
      }
    } finally {
      opts.signal?.removeEventListener("abort", stop);
      process.removeListener("SIGINT", stop);
      process.removeListener("SIGTERM", stop);
    }
    return EXIT.ok;
  });
}

/** Writes to stdout, waiting when the pipe is full. */
async function toStdout(chunk: string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
}

export async function auditExport(
  opts: AuditExportOptions,
  io: Io,
  stdout?: (chunk: string) => Promise<void>,
) {
  const publicKey = await dataDirPublicKey(opts.data).catch((err: unknown) => {
    throw asFailure(err);
  });
  const publicKeys = publicKey === undefined ? [] : [publicKey.jwk];
  return withStore(opts, { mapError: asFailure }, async (store) => {
    const log = openAuditLog({ repo: store.audit });
    if (opts.out === undefined) {
      const write = stdout ?? (async (chunk: string) => io.out(chunk));
      await log.exportJson(write, { publicKeys });
      return EXIT.ok;
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(opts.out, "w", 0o600);
    } catch (err) {
      throw new CliFailure("ERR_FILE", `cannot write ${q(opts.out)}: ${(err as Error).message}`, EXIT.usage);
    }
    let counts: { records: number; checkpoints: number };
    try {
      counts = await log.exportJson(
        async (chunk) => {
          await handle.write(chunk);
        },
        { publicKeys },
      );
    } finally {
      await handle.close();
    }
    const out = opts.out;
    emit(
      io,
      opts.json,
      { file: out, ...counts },
      () => `exported ${counts.records} records and ${counts.checkpoints} checkpoints to ${out}`,
    );
    return EXIT.ok;
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerAudit(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: AuditCliDefaults = {},
): Command {
  const dataDir = defaults.dataDir ?? ".writ";
  const audit = program.command("audit").description("verify, read and export the hash-chained audit log");

  audit
    .command("verify")
    .description("walk the whole chain and its signed checkpoints; exit 1 and name the first damage")
    .option("--data <dir>", "the data folder", dataDir)
    .option("--key <file>", "a trusted public key (JWK); repeatable (default: the data folder's)", collect)
    .option("--file <export>", "verify an export file offline instead of the store")
    .option("--json", "print JSON", false)
    .action(async (o: Omit<AuditVerifyOptions, "databaseUrl">) =>
      setExit(await auditVerify({ ...o, databaseUrl: defaults.databaseUrl }, io)),
    );

  audit
    .command("tail")
    .description("print the latest records (--json: one JSON object per line)")
    .option("--data <dir>", "the data folder", dataDir)
    .option("-n, --lines <n>", "how many records", "10")
    .option("-f, --follow", "keep printing new records until interrupted", false)
    .option("--json", "print JSON lines", false)
    .action(async (o: Omit<AuditTailOptions, "databaseUrl" | "signal">) =>
      setExit(await auditTail({ ...o, databaseUrl: defaults.databaseUrl, signal: defaults.signal }, io)),
    );

  audit
    .command("export")
    .description("write records, checkpoints and the public key as one JSON document")
    .option("--data <dir>", "the data folder", dataDir)
    .option("--out <file>", "write to this file (mode 0600) instead of stdout")
    .option("--json", "print the summary as JSON (with --out)", false)
    .action(async (o: Omit<AuditExportOptions, "databaseUrl">) =>
      setExit(
        await auditExport(
          { ...o, databaseUrl: defaults.databaseUrl },
          io,
          io === stdio ? toStdout : undefined,
        ),
      ),
    );

  return audit;
}
