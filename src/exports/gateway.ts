// `writ/gateway`: the MCP gateway (docs/gateway.md).

// one agent's gateway session over stdio (what `writ gateway --stdio` runs)
export { createStdioGateway, type StdioGateway, type StdioGatewayOptions } from "../app.js";
// what agents see: refusals in tool results, the prompt-context header, tool names
export {
  GatewayError,
  type GatewayReason,
  isGatewayError,
  MCP_PATH,
  PROMPT_CONTEXT_HEADER,
  PROMPT_CONTEXT_META,
  REFUSAL_META,
  RESOURCE_METADATA_PATH,
  TOOL_SEPARATOR,
} from "../gateway/index.js";
