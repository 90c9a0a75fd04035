/** The prompt-context id a call names (in `_meta`, or over HTTP a header): 1 to 200 printable ASCII. */
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

const PROMPT_CONTEXT = /^[\x21-\x7e]{1,200}$/;

export const promptContext: CallCheck = (call) => {
  const id = call.ctx.promptContextId;
  if (id === undefined) return undefined;
  if (typeof id !== "string" || !PROMPT_CONTEXT.test(id)) {
    return new GatewayError(
      "prompt_context_invalid",
      "the prompt-context id must be 1 to 200 printable ASCII characters",
    );
  }
  call.context = id;
  call.record.promptContextId = id;
  return undefined;
};
