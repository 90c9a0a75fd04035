/** The console's refusals: a coded error, shown as a page with its code (docs/console.md#codes). */
import { WritError } from "../core/index.js";
import type { ConsoleErrorCode } from "./codes.js";

/** A form field or query parameter the console does not accept (400). */
export const ERR_CONSOLE_INPUT = "ERR_CONSOLE_INPUT";
/** Not signed in, or a login that failed (401). */
export const ERR_CONSOLE_AUTH = "ERR_CONSOLE_AUTH";
/** A POST without this session's CSRF token, or from another origin (403). */
export const ERR_CONSOLE_CSRF = "ERR_CONSOLE_CSRF";
/** A page or action the session's role may not use (403). */
export const ERR_CONSOLE_FORBIDDEN = "ERR_CONSOLE_FORBIDDEN";
/** A decision whose signature does not cover exactly what was submitted (400). */
export const ERR_CONSOLE_SIGNATURE = "ERR_CONSOLE_SIGNATURE";
/** No such writ, request or finding (404). */
export const ERR_CONSOLE_NOT_FOUND = "ERR_CONSOLE_NOT_FOUND";

export const CONSOLE_STATUS: Readonly<Record<string, number>> = {
  [ERR_CONSOLE_INPUT]: 400,
  [ERR_CONSOLE_AUTH]: 401,
  [ERR_CONSOLE_CSRF]: 403,
  [ERR_CONSOLE_FORBIDDEN]: 403,
  [ERR_CONSOLE_SIGNATURE]: 400,
  [ERR_CONSOLE_NOT_FOUND]: 404,
};

export const consoleError = (code: ConsoleErrorCode, message: string) => new WritError(code, message);
