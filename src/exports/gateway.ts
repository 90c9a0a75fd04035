// biome-ignore-all assist/source/organizeImports: a table of contents, grouped by operation
// `writ/gateway`: the MCP gateway (docs/gateway.md).

// one agent's gateway session over stdio (what `writ gateway --stdio` runs)
export { createStdioGateway, type StdioGateway, type StdioGatewayOptions } from "../app.js";

// what agents see: refusals in tool results, the prompt-context header, the MCP path, tool names
export {
  type GatewayReason,
  REFUSAL_META,
  PROMPT_CONTEXT_HEADER,
  PROMPT_CONTEXT_META,
} from "../gateway/index.js";
export { MCP_PATH, RESOURCE_METADATA_PATH, TOOL_SEPARATOR } from "../gateway/index.js";

// errors
export { GatewayError, isGatewayError } from "../gateway/index.js";
