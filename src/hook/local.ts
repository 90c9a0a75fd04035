/**
 * The offline hook without opening the store on every call (docs/hooks.md#server-or-offline).
 *
 * Opening the embedded store (PGlite) costs seconds. A full offline run (hook-offline.ts) leaves
 * beside the store a *decision snapshot* — the agent's unexpired writs and its taints, with the
 * digest of the writ.yaml it was judged under and a stamp of the store's files (the write-ahead
 * log and control file of `<dataDir>/pg`) taken once the store was closed. A later call uses the
 * snapshot only while writ.yaml's digest and the stamp are unchanged: any write to the store (a writ
 * issued or revoked, a use spent, a server that ran) changes the stamp, and the next call is a full
 * run again.
 *
 * What such a call records goes to a *spool* (`hook-spool.jsonl`): one line per audit record or
 * taint, each hash-chained to the one before (SHA-256 over the previous hash and the entry's
 * canonical JSON) and signed with the audit signing key, appended and flushed to disk (fsync)
 * before the answer is given — no record, no answer but a refusal. The next full run (or `writ
 * serve` at start) verifies the whole chain and its signatures, appends every record to the audit
 * log (the tamper-evident chain) with its spool time, sequence and hash, records the taints in the
 * store, then removes the spool. A spool that does not verify is not imported: `ERR_HOOK_SPOOL`,
 * and every offline call refuses until an operator looks at it. Appends, reads and imports hold
 * `hook-spool.lock`, so hook processes running at once keep one chain.
 */
import { createHash, sign, verify } from "node:crypto";
import { open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AuditSigner } from "../audit/keys.js";
import { type ActiveWrit, compileRule, type RuleText, WritError } from "../core/index.js";
import type { Taints } from "../gateway/index.js";

const SNAPSHOT = "hook-snapshot.json";
const SPOOL = "hook-spool.jsonl";
const LOCK = "hook-spool.lock";
const GENESIS = "0".repeat(64);
const LOCK_WAIT_MS = 10_000;
const STALE_LOCK_MS = 30_000;
/** Past this many spooled entries, a call runs in full (and imports them). */
export const MAX_SPOOL = 1000;

export interface SnapshotWrit {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly grants: readonly RuleText[];
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly usesLeft?: number | undefined;
  readonly revoked: boolean;
}

export interface SnapshotTaint {
  readonly context: string;
  readonly by: string;
  readonly until: string;
}

export interface Snapshot {
  readonly v: 1;
  readonly agent: string;
  readonly environment: string;
  /** writ.yaml's digest (the policy's). */
  readonly config: string;
  /** The store's files when the snapshot was taken. */
  readonly stamp: string;
  readonly writs: readonly SnapshotWrit[];
  /** The agent's taints (its baseline handle), by context. */
  readonly taints: readonly SnapshotTaint[];
}

export type SpoolEntry =
  | { readonly t: "audit"; readonly type: string; readonly data: Record<string, unknown> }
  | {
      readonly t: "taint";
      readonly agent: string;
      readonly environment: string;
      readonly context: string | undefined;
      readonly by: string;
      readonly until: string;
    };

interface SpoolLine {
  readonly seq: number;
  readonly at: string;
  readonly entry: SpoolEntry;
  readonly prev: string;
  readonly hash: string;
  readonly sig: string;
}

/** The stamp of the embedded store's files: changes with every write to it. */
export async function storeStamp(dataDir: string): Promise<string | undefined> {
  const pg = join(dataDir, "pg");
  const wal = await readdir(join(pg, "pg_wal")).catch(() => undefined);
  if (wal === undefined) return undefined;
  const files = [join(pg, "global", "pg_control"), ...wal.sort().map((f) => join(pg, "pg_wal", f))];
  const h = createHash("sha256");
  for (const f of files) {
    const s = await stat(f, { bigint: true }).catch(() => undefined);
    h.update(s === undefined ? `${f}:-\n` : `${f}:${s.size}:${s.mtimeNs}:${s.ino}\n`);
  }
  return h.digest("hex");
}

export async function readSnapshot(dataDir: string): Promise<Snapshot | undefined> {
  const text = await readFile(join(dataDir, SNAPSHOT), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as Snapshot;
    return s.v === 1 && Array.isArray(s.writs) && Array.isArray(s.taints) ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function writeSnapshot(dataDir: string, s: Snapshot): Promise<void> {
  const tmp = join(dataDir, `${SNAPSHOT}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(s), { mode: 0o600 });
  await rename(tmp, join(dataDir, SNAPSHOT));
}

/** Forgets the snapshot: the next call runs in full. */
export async function dropSnapshot(dataDir: string): Promise<void> {
  await unlink(join(dataDir, SNAPSHOT)).catch(() => undefined);
}

export function snapshotWrits(s: Snapshot): ActiveWrit[] {
  return s.writs.map((w) => ({
    kind: "writ",
    id: w.id,
    agent: w.agent,
    playbook: w.playbook,
    environment: w.environment,
    grants: w.grants.map((text, i) => ({
      kind: "grant",
      rule: compileRule(text),
      path: ["writs", w.id, "grants", i],
    })),
    issuedAt: new Date(w.issuedAt),
    expiresAt: new Date(w.expiresAt),
    usesLeft: w.usesLeft,
    revoked: w.revoked === true,
  }));
}

export function toSnapshotWrit(w: ActiveWrit): SnapshotWrit {
  return {
    id: w.id,
    agent: w.agent,
    playbook: w.playbook,
    environment: w.environment,
    grants: w.grants.map((g) => g.rule.text),
    issuedAt: w.issuedAt.toISOString(),
    expiresAt: w.expiresAt.toISOString(),
    usesLeft: w.usesLeft,
    revoked: w.revoked === true,
  };
}

function lineHash(
  prev: string,
  seq: number,
  at: string,
  entry: SpoolEntry,
  canonical: (v: unknown) => string,
) {
  return createHash("sha256")
    .update(`${prev}\n${canonical({ seq, at, entry })}`)
    .digest("hex");
}

/** Holds the spool's lock while `work` runs. */
export async function withSpoolLock<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  const path = join(dataDir, LOCK);
  const started = Date.now();
  for (;;) {
    try {
      const h = await open(path, "wx", 0o600);
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const s = await stat(path).catch(() => undefined);
      if (s !== undefined && Date.now() - s.mtimeMs > STALE_LOCK_MS) {
        await unlink(path).catch(() => undefined); // left by a process that died
        continue;
      }
      if (Date.now() - started > LOCK_WAIT_MS) {
        throw new WritError("ERR_HOOK_SPOOL", `${path} is held by another process for more than 10 s`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  try {
    return await work();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

export interface Spool {
  readonly entries: readonly {
    readonly seq: number;
    readonly at: string;
    readonly hash: string;
    readonly entry: SpoolEntry;
  }[];
  /** Appends one entry, flushed to disk before it returns. Call under the lock. */
  append(entry: SpoolEntry, at: Date): Promise<void>;
}

/** Reads and verifies the spool (call under the lock): a broken chain or signature is `ERR_HOOK_SPOOL`. */
export async function openSpool(
  dataDir: string,
  signer: AuditSigner,
  canonical: (v: unknown) => string,
): Promise<Spool> {
  const path = join(dataDir, SPOOL);
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return "";
    throw err;
  });
  const entries: { seq: number; at: string; hash: string; entry: SpoolEntry }[] = [];
  let prev = GENESIS;
  const broken = (n: number, why: string) =>
    new WritError(
      "ERR_HOOK_SPOOL",
      `${path}: line ${n}: ${why}; it is not imported, and offline hook calls refuse`,
    );
  const lines = text.split("\n").filter((l) => l.length > 0);
  for (let i = 0; i < lines.length; i++) {
    let line: SpoolLine;
    try {
      line = JSON.parse(lines[i]!) as SpoolLine;
    } catch {
      throw broken(i + 1, "not JSON");
    }
    if (line.seq !== i + 1 || line.prev !== prev) throw broken(i + 1, "out of sequence");
    if (lineHash(prev, line.seq, line.at, line.entry, canonical) !== line.hash)
      throw broken(i + 1, "its hash does not match");
    if (!verify(null, Buffer.from(line.hash, "hex"), signer.key, Buffer.from(line.sig, "base64url"))) {
      throw broken(i + 1, "its signature does not verify");
    }
    entries.push({ seq: line.seq, at: line.at, hash: line.hash, entry: line.entry });
    prev = line.hash;
  }
  return {
    entries,
    async append(entry, at) {
      const seq = entries.length + 1;
      const iso = at.toISOString();
      const hash = lineHash(prev, seq, iso, entry, canonical);
      const sig = sign(null, Buffer.from(hash, "hex"), signer.key).toString("base64url");
      const h = await open(path, "a", 0o600);
      try {
        await h.appendFile(`${JSON.stringify({ seq, at: iso, entry, prev, hash, sig })}\n`);
        await h.datasync();
      } finally {
        await h.close();
      }
      entries.push({ seq, at: iso, hash, entry });
      prev = hash;
    },
  };
}

/** Removes the spool once imported (call under the lock). */
export async function clearSpool(dataDir: string): Promise<void> {
  await unlink(join(dataDir, SPOOL)).catch(() => undefined);
}

/** Taint as the snapshot and the spool hold it, for an agent's baseline (the hook's identity). */
export function localTaints(snapshot: Snapshot, spool: Spool, environment: string, agent: string): Taints {
  const lookup = (context: string | undefined, now: Date): string | undefined => {
    const t = now.getTime();
    const hit = (c: string, until: string) =>
      (context === undefined || c === context || c === "*") && Date.parse(until) > t;
    for (const x of snapshot.taints) if (hit(x.context, x.until)) return x.by;
    for (const { entry: e } of spool.entries) {
      if (
        e.t === "taint" &&
        e.agent === agent &&
        e.environment === environment &&
        hit(e.context ?? "*", e.until)
      ) {
        return e.by;
      }
    }
    return undefined;
  };
  return {
    known: (_id, context, now) => lookup(context, now),
    lookup: async (_id, context, now) => lookup(context, now),
    async mark(id, context, by, now, ttlSeconds) {
      if (lookup(context, now) !== undefined) return;
      const until = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
      await spool.append(
        { t: "taint", agent: id.agent, environment: id.environment, context, by, until },
        now,
      );
    },
  };
}

/** A spooled taint marked in `taints` from `at` for what is left of it: `importSpool`'s `taint`. */
export function markSpooledTaint(taints: Pick<Taints, "mark">) {
  return (e: Extract<SpoolEntry, { t: "taint" }>, at: Date): Promise<void> =>
    taints.mark(
      { agent: e.agent, environment: e.environment },
      e.context,
      e.by,
      at,
      Math.max(0, (Date.parse(e.until) - at.getTime()) / 1000),
    );
}

/**
 * Imports the spool (under its lock): every entry verified, each audit record appended to the audit
 * log with where it came from, each taint recorded; then the spool is removed. Returns how many
 * entries were imported. A spool that does not verify throws `ERR_HOOK_SPOOL` and stays.
 */
export async function importSpool(
  dataDir: string,
  signer: AuditSigner,
  canonical: (v: unknown) => string,
  sink: {
    append(type: string, data: Record<string, unknown>): Promise<unknown>;
    taint(entry: Extract<SpoolEntry, { t: "taint" }>, at: Date): Promise<void>;
    settled(): Promise<void>;
  },
): Promise<number> {
  return withSpoolLock(dataDir, async () => {
    const spool = await openSpool(dataDir, signer, canonical);
    for (const { seq, at, hash, entry } of spool.entries) {
      if (entry.t === "audit") await sink.append(entry.type, { ...entry.data, spooled: { at, seq, hash } });
      else await sink.taint(entry, new Date(at));
    }
    await sink.settled();
    await clearSpool(dataDir);
    return spool.entries.length;
  });
}
