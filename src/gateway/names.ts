/** Names the gateway shows its clients (re-exported by `gateway.ts`). */

/** The `_meta` key (and, over HTTP, the header) a client names its prompt context with. */
export const PROMPT_CONTEXT_META = "writ.dev/prompt-context-id";
export const PROMPT_CONTEXT_HEADER = "writ-prompt-context-id";
/** The `_meta` key of a refused call's result: `{ reason, code, approval?, … }`. */
export const REFUSAL_META = "writ.dev/refusal";
/** Exposed tool names: `<upstream>__<tool>`. */
export const TOOL_SEPARATOR = "__";
/** The resource of a tool that declares none. */
export const NO_RESOURCE = "-";
