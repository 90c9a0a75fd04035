export { htmlReport } from "./html.js";
export { jsonReport } from "./json.js";
export { markdownReport } from "./markdown.js";
export { sarifReport } from "./sarif.js";
export { terminalReport } from "./terminal.js";
