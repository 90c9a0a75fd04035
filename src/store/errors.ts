/**
 * How the store reports failure: every error leaving a repository is a `WritError`. Failures of the
 * database itself carry a code starting with `ERR_STORE` (callers map them to "runtime failure");
 * refusals about a writ carry `ERR_WRIT_*`.
 */
import { isWritError, WritError } from "../core/index.js";

/** The database cannot be reached, or refused the connection. */
export const ERR_STORE_UNAVAILABLE = "ERR_STORE_UNAVAILABLE";
/** The schema is missing: `store.migrate()` has not run against this database. */
export const ERR_STORE_NOT_MIGRATED = "ERR_STORE_NOT_MIGRATED";
/** Applying the migrations failed, or the database holds migrations this build does not know. */
export const ERR_STORE_MIGRATION = "ERR_STORE_MIGRATION";
/** Another process holds the embedded database of this data folder. */
export const ERR_STORE_LOCKED = "ERR_STORE_LOCKED";
/** `create: false` and the data folder holds no embedded database. */
export const ERR_STORE_NOT_FOUND = "ERR_STORE_NOT_FOUND";
/** A row read back breaks an invariant the schema promises. */
export const ERR_STORE_CORRUPT = "ERR_STORE_CORRUPT";
/** Any other database error. */
export const ERR_STORE = "ERR_STORE";
/**
 * The database refused a value it was given (NUL in text, an encoding it cannot hold, a value over
 * one of its limits): the caller's input, not a failure of the store — HTTP edges answer 400. The
 * edges check what they accept first; this is the defence behind them.
 */
export const ERR_VALUE_UNSTORABLE = "ERR_VALUE_UNSTORABLE";

/** True for failures of the store itself (as opposed to refusals such as `ERR_WRIT_EXHAUSTED`). */
export function isStoreFailure(err: unknown): err is WritError {
  return isWritError(err) && err.code.startsWith("ERR_STORE");
}

/** The SQLSTATE of a PostgreSQL error (pg and PGlite both expose it as `code`). */
export function sqlState(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EAI_AGAIN", "EPIPE"]);

function isUnavailable(err: unknown): boolean {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  const state = sqlState(err);
  // 08: connection exception; 57P0x: admin/crash shutdown; 53300: too many connections;
  // 3D000: no such database; 28xxx: authentication.
  if (state !== undefined && /^(08|57P0|28)/.test(state)) return true;
  if (state === "53300" || state === "3D000") return true;
  const message = err instanceof Error ? err.message : "";
  return /connection terminated|timeout exceeded when trying to connect|closed|cannot use a pool after calling end/i.test(
    message,
  );
}

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 0 ? text.charAt(0).toLowerCase() + text.slice(1) : "unknown error";
}

/** Wraps a database error as a coded `WritError`; coded errors pass through unchanged. */
export function storeError(what: string, err: unknown): WritError {
  if (isWritError(err)) return err;
  if (sqlState(err) === "42P01") {
    return new WritError(
      ERR_STORE_NOT_MIGRATED,
      `${what}: the store has no schema: run the migrations first`,
      {
        cause: err,
      },
    );
  }
  // 22: data exception (22021 a byte sequence, 22P05 an untranslatable character, 22001 too long …);
  // 54000: a program limit (an index row too large)
  const state = sqlState(err);
  if (state !== undefined && (state.startsWith("22") || state === "54000")) {
    return new WritError(ERR_VALUE_UNSTORABLE, `${what}: the database refused a value: ${messageOf(err)}`, {
      cause: err,
    });
  }
  if (isUnavailable(err)) {
    return new WritError(ERR_STORE_UNAVAILABLE, `${what}: ${messageOf(err)}`, { cause: err });
  }
  return new WritError(ERR_STORE, `${what}: ${messageOf(err)}`, { cause: err });
}

/**
 * Runs `fn`, turning what it throws into a coded error. Coded errors and `TypeError`s (programmer
 * misuse, from a callback or an argument check) pass through unchanged.
 */
export async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TypeError && sqlState(err) === undefined) throw err;
    throw storeError(what, err);
  }
}

/**
 * A bigint column as a JS number. pg returns int8 as a string, PGlite as a number or a bigint;
 * anything that is not a safe integer is refused rather than rounded.
 */
export function toInt(value: unknown, what: string): number {
  const n = typeof value === "bigint" ? Number(value) : typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) {
    throw new WritError(ERR_STORE_CORRUPT, `${what}: expected an integer, got ${String(value)}`);
  }
  return n;
}

/** Hides the password of a connection URL before it appears in a message. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparsable database url>";
  }
}
