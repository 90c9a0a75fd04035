/**
 * The hook protocols, as each agent documents them: what arrives on standard input, and how an
 * answer is given (standard output, standard error, exit code). Light on purpose: the hook's fast
 * path (cli/hook-fast.ts) loads this file and nothing of the decision machinery.
 *
 * Claude Code (PreToolUse / PostToolUse): `{session_id, transcript_path, cwd, permission_mode,
 * hook_event_name, tool_name, tool_input[, tool_response]}`; a PreToolUse answer is
 * `{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow" | "deny" |
 * "ask", "permissionDecisionReason": "…"}}` on stdout with exit 0 (a deny's reason is shown to the
 * model, an ask's to the user); exit 2 with a message on stderr blocks the call.
 *
 * Gemini CLI (BeforeTool / AfterTool): `{session_id, transcript_path, cwd, hook_event_name,
 * timestamp, tool_name, tool_input[, tool_response][, mcp_context]}`; the answer is
 * `{"decision": "allow" | "deny", "reason": "…"}` on stdout with exit 0; exit 2 with stderr blocks.
 * Its reference documents no `ask` for tools, so writ's `ask` is answered `deny` there, the reason
 * saying that a human must run it.
 *
 * Codex CLI (PreToolUse / PostToolUse, https://developers.openai.com/codex/hooks): `{session_id,
 * turn_id, transcript_path, cwd, hook_event_name, model, permission_mode, tool_name, tool_input,
 * tool_use_id[, tool_response]}`, `tool_name` being `Bash` (shell, `tool_input.command`),
 * `apply_patch` (the patch in `tool_input.command`) or an MCP tool's `mcp__server__tool`. It reads
 * Claude Code's answer, but only `permissionDecision: "deny"` (with a non-empty reason) blocks:
 * `ask`, and `allow` without `updatedInput`, are refused as unsupported and the call goes on. So
 * writ answers `ask` as a `deny` saying that a human must run it, and `allow` as no decision. Exit
 * 2 with a reason on stderr blocks.
 *
 * Cursor: its own events and answer (cursor.ts).
 */
import { isAbsolute } from "node:path";
import { WritError } from "../core/errors.js";
import { CURSOR_EVENTS, cursorWire, parseCursor, renderCursor } from "./cursor.js";

export const HOOK_KINDS = ["claude-code", "gemini-cli", "codex", "cursor"] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

export type HookPhase = "pre" | "post";
export type HookAnswer = "allow" | "deny" | "ask";

export interface HookInput {
  readonly kind: HookKind;
  /** The agent's own name for the event (`PreToolUse`, `beforeShellExecution` …). */
  readonly event: string;
  readonly phase: HookPhase;
  readonly tool: string;
  readonly input: Readonly<Record<string, unknown>>;
  readonly cwd: string;
  readonly session?: string | undefined;
}

/** What the hook process prints and exits with. */
export interface HookOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

const EVENTS: Readonly<Record<HookKind, Readonly<Record<string, HookPhase>>>> = {
  "claude-code": { PreToolUse: "pre", PostToolUse: "post" },
  "gemini-cli": { BeforeTool: "pre", AfterTool: "post" },
  codex: { PreToolUse: "pre", PostToolUse: "post" },
  cursor: CURSOR_EVENTS,
};

/**
 * The largest hook input read, in bytes: Cursor's beforeReadFile carries the whole file, so a
 * file larger than this cannot be read through Cursor while writ decides.
 */
export const MAX_HOOK_INPUT = 16 * 1024 * 1024;

export function isHookKind(s: string): s is HookKind {
  return (HOOK_KINDS as readonly string[]).includes(s);
}

function bad(message: string): never {
  throw new WritError("ERR_HOOK_INPUT", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads one hook's standard input; throws `ERR_HOOK_INPUT` naming what is wrong. */
export function parseHookInput(kind: HookKind, text: string): HookInput {
  if (text.length > MAX_HOOK_INPUT) bad(`the hook input is larger than ${MAX_HOOK_INPUT} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return bad(`the hook input is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) return bad("the hook input is not a JSON object");
  if (kind === "cursor") return parseCursor(raw);
  const event = raw.hook_event_name;
  const phase = typeof event === "string" ? EVENTS[kind][event] : undefined;
  if (phase === undefined || typeof event !== "string") {
    return bad(
      `hook_event_name ${JSON.stringify(event)}: ${kind} hooks are ${Object.keys(EVENTS[kind]).join(" and ")}`,
    );
  }
  const tool = raw.tool_name;
  if (typeof tool !== "string" || tool.length === 0 || tool.length > 256) {
    return bad("tool_name: expected a string of 1 to 256 characters");
  }
  const input = raw.tool_input ?? {};
  if (!isObject(input)) return bad("tool_input: expected a JSON object");
  const cwd = raw.cwd;
  if (typeof cwd !== "string" || !isAbsolute(cwd) || cwd.length > 4096 || cwd.includes("\0")) {
    return bad("cwd: expected an absolute path");
  }
  const session = raw.session_id;
  if (session !== undefined && (typeof session !== "string" || session.length > 256)) {
    return bad("session_id: expected a string of at most 256 characters");
  }
  return { kind, event, phase, tool, input, cwd, session: session === "" ? undefined : session };
}

/** The hook's JSON again, from what was read: a server reads and checks it itself. */
export function wireInput(input: HookInput): Record<string, unknown> {
  if (input.kind === "cursor") return cursorWire(input);
  return {
    hook_event_name: input.event,
    tool_name: input.tool,
    tool_input: input.input,
    cwd: input.cwd,
    ...(input.session === undefined ? {} : { session_id: input.session }),
  };
}

const HUMAN = " (writ asks for a human: run it yourself if it is right)";

/**
 * The answer in the agent's own format. writ only narrows: an `allow` is no decision at all (`{}`),
 * so the agent's own permission rules and prompts still apply, unless `allowSkipsPrompt` (the
 * hook's `--allow-skips-prompt`) makes it an explicit allow, which skips the agent's own prompt
 * (Codex takes no explicit allow: there it stays no decision; Cursor takes no answer without one:
 * there it is always explicit). `event` is the hook's event: Cursor answers each differently.
 */
export function renderAnswer(
  kind: HookKind,
  phase: HookPhase,
  answer: HookAnswer,
  reason: string,
  allowSkipsPrompt = false,
  event = "",
): HookOutput {
  if (kind === "cursor") return renderCursor(event, phase, answer, reason);
  const json = (out: unknown): HookOutput => ({
    stdout: `${JSON.stringify(out)}\n`,
    stderr: "",
    exitCode: 0,
  });
  if (phase === "post" || (answer === "allow" && (!allowSkipsPrompt || kind === "codex"))) return json({});
  if (kind === "claude-code" || kind === "codex") {
    const decision = kind === "codex" && answer === "ask" ? "deny" : answer;
    return json({
      hookSpecificOutput: {
        hookEventName: "PreToolUse",
        permissionDecision: decision,
        permissionDecisionReason: decision !== answer ? `${reason}${HUMAN}` : reason,
      },
    });
  }
  return json(
    answer === "allow"
      ? { decision: "allow", reason }
      : { decision: "deny", reason: answer === "ask" ? `${reason}${HUMAN}` : reason },
  );
}

/**
 * A refusal when the hook itself fails (bad input, no identity, no server): exit 2 with the reason
 * on stderr, which every agent here documents as blocking the call.
 */
export function failClosed(code: string, message: string): HookOutput {
  return { stdout: "", stderr: `writ hook: ${code}: ${message}\n`, exitCode: 2 };
}
