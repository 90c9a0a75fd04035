// The web console served by `writ serve` at `/` (docs/console.md). The only public surface of src/console.
export { CONSOLE_ERROR_CODES, type ConsoleErrorCode } from "./codes.js";
export type { ConsoleDeps } from "./deps.js";
export {
  ERR_CONSOLE_AUTH,
  ERR_CONSOLE_CSRF,
  ERR_CONSOLE_FORBIDDEN,
  ERR_CONSOLE_INPUT,
  ERR_CONSOLE_NOT_FOUND,
  ERR_CONSOLE_SIGNATURE,
} from "./errors.js";
export { escapeHtml, Html, h } from "./html.js";
export { CSP, consoleRoutes } from "./routes.js";
