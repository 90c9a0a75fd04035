/**
 * Reading writ.yaml and the files it names (key sets, guardrails) without trusting the path: only a
 * regular file, checked on the open descriptor (a path checked first can be swapped before it is
 * read), opened without blocking (a FIFO with no writer would otherwise wait forever), read up to a
 * cap per kind of file and never further (`/dev/zero`, `/proc` files that report size 0), and
 * decoded as strict UTF-8 with a leading BOM dropped. Every refusal is a code (docs/config-errors.md)
 * and a lowercase reason. Control characters are the caller's to refuse (`forbiddenCharacter`), so
 * that the problem can name the line in the file's own terms.
 */
import { constants, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { ConfigErrorCode } from "./codes.js";

export type FileKind = "config" | "guardrails" | "keys";

const KIB = 1024;

/** The largest file of each kind writ reads, in bytes. */
export const MAX_FILE_BYTES: Readonly<Record<FileKind, number>> = {
  config: 4096 * KIB,
  guardrails: 1024 * KIB,
  keys: 256 * KIB,
};

export type FileRead =
  | { readonly ok: true; readonly text: string }
  | {
      readonly ok: false;
      /** `ERR_CONFIG_FILE` (cannot open), `ERR_CONFIG_NOT_FILE`, `ERR_CONFIG_TOO_LARGE`, `ERR_CONFIG_ENCODING`. */
      readonly code: ConfigErrorCode;
      readonly reason: string;
    };

const OPEN_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  ENOTDIR: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the path is too long",
};

function what(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

function fail(code: ConfigErrorCode, reason: string): FileRead {
  return { ok: false, code, reason };
}

async function readCapped(handle: FileHandle, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.alloc(Math.min(64 * KIB, max + 1 - total));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return undefined;
  }
}

export interface ForbiddenCharacter {
  readonly line: number;
  readonly column: number;
  /** `U+0000` */
  readonly name: string;
}

/** The first character a config file may not hold (NUL and the other control characters), if any. */
export function forbiddenCharacter(text: string): ForbiddenCharacter | undefined {
  // YAML's printable set, and what Cedar and JSON accept: no C0 control but tab, LF, CR; no DEL
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      lineStart = i + 1;
    } else if ((c < 0x20 && c !== 9 && c !== 13) || c === 0x7f) {
      const name = `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
      return { line, column: i - lineStart + 1, name };
    }
  }
  return undefined;
}

export async function readTextFile(path: string, kind: FileKind): Promise<FileRead> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code === "EISDIR") return fail("ERR_CONFIG_NOT_FILE", "a directory, not a regular file");
    // what opening a socket answers
    if (code === "ENXIO") return fail("ERR_CONFIG_NOT_FILE", "a socket, not a regular file");
    return fail("ERR_CONFIG_FILE", OPEN_ERRORS[code] ?? (e as Error).message);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return fail("ERR_CONFIG_NOT_FILE", `${what(st)}, not a regular file`);
    const max = MAX_FILE_BYTES[kind];
    const tooLarge = `larger than ${max / KIB} KiB, the most writ reads for a ${kind} file`;
    if (st.size > max) return fail("ERR_CONFIG_TOO_LARGE", tooLarge);
    const bytes = await readCapped(handle, max);
    if (!bytes) return fail("ERR_CONFIG_TOO_LARGE", tooLarge);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return fail("ERR_CONFIG_ENCODING", "not UTF-8 text");
    }
    return { ok: true, text };
  } catch (e) {
    return fail("ERR_CONFIG_FILE", (e as Error).message);
  } finally {
    await handle.close();
  }
}
