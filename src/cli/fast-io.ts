/**
 * Standard input and output for the start-up fast paths (hook-fast.ts, creds-fast.ts), read and
 * written with node:fs on the file descriptors: `process.stdin` and `process.stdout` load Node's
 * stream machinery (and, for a pipe, node:net), which costs a process start several milliseconds.
 * A descriptor that is non-blocking (EAGAIN: a parent left it so) falls back to the streams.
 */
import { readSync, writeSync } from "node:fs";

const CHUNK = 64 * 1024;

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** All of standard input up to `max` bytes (more is cut there: callers refuse what is too large). */
export async function readStdin(max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const b = Buffer.allocUnsafe(CHUNK);
      const n = readSync(0, b, 0, CHUNK, null);
      if (n === 0) return Buffer.concat(chunks).toString("utf8");
      chunks.push(b.subarray(0, n));
      size += n;
      if (size > max) return Buffer.concat(chunks).toString("utf8");
    }
  } catch (err) {
    if (codeOf(err) !== "EAGAIN") throw err;
  }
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(b);
    size += b.length;
    if (size > max) break;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Writes all of `text` to descriptor 1 or 2; a reader gone (EPIPE) is not an error here. */
export function writeAll(fd: 1 | 2, text: string): void {
  const b = Buffer.from(text, "utf8");
  let off = 0;
  try {
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
  } catch (err) {
    if (codeOf(err) === "EPIPE") return;
    if (codeOf(err) !== "EAGAIN") throw err;
    (fd === 1 ? process.stdout : process.stderr).write(b.subarray(off));
  }
}
