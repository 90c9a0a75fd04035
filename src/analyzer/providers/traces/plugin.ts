/**
 * Agent traces as a plug-in of their own: OTLP JSON tool calls (otlp.ts). They carry no grants, so
 * the plug-in reads input only; the engine joins the calls to the providers' events (join.ts).
 */
import type { InputPlugin } from "../../model.js";
import { otlpTraceImporter } from "./otlp.js";

export const tracesPlugin: InputPlugin = { provider: "mcp", importers: [otlpTraceImporter] };
