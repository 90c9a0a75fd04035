/**
 * One error type for everything writ rejects. The `code` is stable and machine-readable; tests and
 * callers branch on it, never on the message. Wire formats (HTTP problem types, OAuth error strings,
 * exit codes) are mapped from the code at the edge.
 *
 * Messages follow one style: lowercase, no final period, user input in backticks, context joined
 * with colons.
 *
 * The code is one of `WritErrorCode` (src/error-codes.ts, assembled from each part's `codes.ts`): a
 * code that is not listed there, and so not documented, does not compile.
 */
import type { WritErrorCode } from "../error-codes.js";

export class WritError extends Error {
  readonly code: WritErrorCode;
  override readonly name = "WritError";

  constructor(code: WritErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isWritError(err: unknown, code?: WritErrorCode): err is WritError {
  return err instanceof WritError && (code === undefined || err.code === code);
}

/** Wraps user input for messages: `value`. */
export function q(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return `\`${text}\``;
}
