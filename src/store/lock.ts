/**
 * An exclusive lock on a data folder's embedded database. PGlite takes no lock of its own, and
 * two processes writing one data folder would corrupt it, so the store refuses to open a folder
 * another live process holds.
 *
 * The lock is a file created with O_EXCL holding `{pid, host, token}`. A lock left by a process
 * that no longer runs on this host is taken over; a lock from another host is never (its process
 * cannot be checked).
 */
import { randomUUID } from "node:crypto";
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { q, WritError } from "../core/index.js";
import { ERR_STORE_LOCKED } from "./errors.js";

export interface DirLock {
  release(): void;
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
}

function readHolder(file: string): Holder | undefined {
  try {
    const value = JSON.parse(readFileSync(file, "utf8")) as Partial<Holder>;
    if (typeof value.pid === "number" && typeof value.host === "string" && typeof value.token === "string") {
      return { pid: value.pid, host: value.host, token: value.token };
    }
  } catch {
    // unreadable or half written: treated as held
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function lockFile(file: string): DirLock {
  const me: Holder = { pid: process.pid, host: hostname(), token: randomUUID() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o600);
    } catch (err) {
      if (errno(err) !== "EEXIST") throw err;
      const holder = readHolder(file);
      if (holder !== undefined && holder.host === me.host && !alive(holder.pid)) {
        try {
          unlinkSync(file);
        } catch (unlinkErr) {
          if (errno(unlinkErr) !== "ENOENT") throw unlinkErr;
        }
        continue;
      }
      const who = holder === undefined ? "another process" : `process ${holder.pid} on ${q(holder.host)}`;
      throw new WritError(
        ERR_STORE_LOCKED,
        `the embedded database is in use by ${who}: lock file ${q(file)} (delete it only if no writ process uses this data folder)`,
      );
    }
    try {
      writeSync(fd, JSON.stringify(me));
    } finally {
      closeSync(fd);
    }
    return {
      release() {
        if (readHolder(file)?.token !== me.token) return;
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      },
    };
  }
  throw new WritError(ERR_STORE_LOCKED, `could not take the lock file ${q(file)}: it keeps reappearing`);
}
