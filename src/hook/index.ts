// Coding agents' own tools (Claude Code, Gemini CLI, Codex CLI, Cursor), decided through their hooks: the only public
// surface of src/hook (docs/hooks.md).

export { HOOK_ERROR_CODES, type HookErrorCode } from "./codes.js";
export { type AgentKind, type Derivation, derive, type NativeCall, type Need } from "./derive.js";
export {
  type HookDecision,
  type HookEngine,
  type HookEngineDeps,
  type HookIdentity,
  hookEngine,
  type Verdict,
} from "./engine.js";
export {
  failClosed,
  HOOK_KINDS,
  type HookInput,
  type HookKind,
  type HookOutput,
  isHookKind,
  MAX_HOOK_INPUT,
  parseHookInput,
  renderAnswer,
  wireInput,
} from "./protocol.js";
export { HOOK_PATH, hookRoutes } from "./routes.js";
export { type Effect, prepare, readShell, type ShellReading, sedScriptIsSafe } from "./shell.js";
