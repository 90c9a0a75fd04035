/**
 * Input files for the importers: a head for detection, the whole text, or a stream of lines (large
 * audit logs are never read into one string).
 */
import { createReadStream } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { InputFile, InputProblem, SourceRef } from "./model.js";

const HEAD_BYTES = 64 * 1024;

/** `name` is what the importers call the file (a path relative to the scan root); `path` is read. */
export async function openInput(
  path: string,
  onBytes?: (n: number) => void,
  name: string = path,
): Promise<InputFile> {
  const info = await stat(path);
  const handle = await open(path, "r");
  let head: string;
  try {
    const buf = Buffer.alloc(Math.min(HEAD_BYTES, info.size));
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
  return {
    path: name,
    ...(name !== path ? { location: path } : {}),
    head,
    size: info.size,
    text: () => readFile(path, "utf8"),
    lines: () => streamLines(path, onBytes),
  };
}

/** An in-memory input (tests, stdin). */
export function textInput(path: string, text: string): InputFile {
  return {
    path,
    head: text.slice(0, HEAD_BYTES),
    size: Buffer.byteLength(text),
    text: async () => text,
    lines: async function* () {
      let start = 0;
      while (start <= text.length) {
        const nl = text.indexOf("\n", start);
        const end = nl < 0 ? text.length : nl;
        if (nl < 0 && start === text.length) return;
        yield text.slice(start, end).replace(/\r$/, "");
        if (nl < 0) return;
        start = nl + 1;
      }
    },
  };
}

async function* streamLines(path: string, onBytes?: (n: number) => void): AsyncIterable<string> {
  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 });
  if (onBytes) stream.on("data", () => onBytes(stream.bytesRead));
  const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
    stream.destroy();
  }
}

export function problem(
  code: string,
  at: SourceRef,
  message: string,
  severity: "error" | "warning" = "error",
): InputProblem {
  return { code, severity, file: at.file, line: at.line, column: at.column, message };
}

/** `file:line:col: message [CODE]` */
export function formatInputProblem(p: InputProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}${p.column ? `:${p.column}` : ""}` : p.file;
  return `${where}: ${p.severity === "warning" ? "warning: " : ""}${p.message} [${p.code}]`;
}

export function formatSource(s: SourceRef | undefined): string {
  if (!s) return "";
  return s.line !== undefined ? `${s.file}:${s.line}` : s.file;
}
