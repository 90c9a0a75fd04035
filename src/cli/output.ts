/**
 * How every verb prints and exits. Exit codes (docs/cli.md):
 *   0  success: the config is valid, the decision is allow, the audit log is intact
 *   1  the answer is no: config errors, a deny, audit damage
 *   2  usage or input error: a bad flag, a missing or unreadable file
 *   3  runtime failure: the store or another dependency failed
 */
// errors.js alone: every verb loads this module, and the rest of core costs a start ~20 ms
import { isWritError, WritError } from "../core/errors.js";
import type { WritErrorCode } from "../error-codes.js";

export const EXIT = { ok: 0, no: 1, usage: 2, failure: 3 } as const;

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export const stdio: Io = {
  out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
};

/** Prints `value` as JSON with --json, else the human rendering. */
export function emit(io: Io, json: boolean, value: unknown, human: () => string): void {
  io.out(json ? JSON.stringify(value, null, 2) : human());
}

/**
 * A failure the CLI reports as one line (or one JSON object) and an exit code, never a stack: a
 * `WritError` with a typed code and the exit code it ends the command with.
 */
export class CliFailure extends WritError {
  constructor(
    code: WritErrorCode,
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(code, message);
  }
}

export function reportFailure(io: Io, json: boolean, err: unknown): number {
  if (err instanceof CliFailure) {
    io.err(
      json ? JSON.stringify({ error: { code: err.code, message: err.message } }) : `writ: ${err.message}`,
    );
    return err.exitCode;
  }
  if (isWritError(err)) {
    io.err(
      json ? JSON.stringify({ error: { code: err.code, message: err.message } }) : `writ: ${err.message}`,
    );
    return EXIT.usage;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.err(
    json ? JSON.stringify({ error: { code: "ERR_INTERNAL", message } }) : `writ: internal error: ${message}`,
  );
  return EXIT.failure;
}
