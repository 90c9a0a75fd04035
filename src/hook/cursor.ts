/**
 * Cursor's hooks (https://cursor.com/docs/agent/hooks, reference https://cursor.com/docs/reference/hooks),
 * read into the one shape the other protocols have (protocol.ts) and answered in Cursor's own.
 * Light, like protocol.ts: the hook's fast path loads it.
 *
 * Every event carries `hook_event_name`, `conversation_id`, `generation_id` and `workspace_roots`;
 * then, per event:
 *
 *   preToolUse / postToolUse     `tool_name` (Shell, Read, Write, Grep, Delete, Task, MCP:<tool> …),
 *                                `tool_input` (an object; Shell's holds `command` and
 *                                `working_directory`, or `cwd` in some builds), `cwd`
 *   beforeShellExecution /       `command`, `cwd`
 *     afterShellExecution
 *   beforeMCPExecution /         `tool_name`, `tool_input` (the JSON parameters), `url` or `command`
 *     afterMCPExecution
 *   beforeReadFile               `file_path`, `content`, `attachments`
 *   afterFileEdit                `file_path`, `edits`
 *
 * Each becomes a call to Cursor's own tool type — `Shell`, `Read`, `Write`, `MCP:<tool>`, or the
 * `tool_name` of preToolUse — so that a shell command is the same call whichever hook reports it.
 * The file content (`content`, `edits`) is never kept: it is not needed to decide, and the audit
 * holds digests only.
 *
 * The answer is flat JSON on stdout, exit 0: `{"permission": "allow" | "deny" | "ask",
 * "user_message": "…", "agent_message": "…"}` (snake_case: Cursor 1.7 spelled them `userMessage` and
 * `agentMessage`); one without `permission` is a failed hook. Exit 2 blocks the call, like a deny.
 * `ask` is enforced on beforeShellExecution and beforeMCPExecution only; beforeReadFile takes
 * `allow` or `deny` (and `user_message`); preToolUse enforces `allow` and `deny` (and was documented
 * for a while as `{"decision", "reason"}`: writ sends both spellings there). The after-events are
 * fire-and-forget: `{}`.
 */
import { isAbsolute } from "node:path";
import { WritError } from "../core/errors.js";
import type { HookAnswer, HookInput, HookOutput, HookPhase } from "./protocol.js";

export const CURSOR_EVENTS: Readonly<Record<string, HookPhase>> = {
  preToolUse: "pre",
  postToolUse: "post",
  beforeShellExecution: "pre",
  afterShellExecution: "post",
  beforeMCPExecution: "pre",
  afterMCPExecution: "post",
  beforeReadFile: "pre",
  afterFileEdit: "post",
};

/** Events whose `permission` may be `ask` (Cursor then asks the user). */
const ASK_HONOURED = new Set(["beforeShellExecution", "beforeMCPExecution"]);
const MCP = "MCP:";

function bad(message: string): never {
  throw new WritError("ERR_HOOK_INPUT", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text(raw: Record<string, unknown>, key: string, max: number): string {
  const v = raw[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max || v.includes("\0")) {
    return bad(`${key}: expected a string of 1 to ${max} characters`);
  }
  return v;
}

function optionalText(raw: Record<string, unknown>, key: string, max: number): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" || v.length > max)
    return bad(`${key}: expected a string of at most ${max} characters`);
  return v;
}

function absolute(v: unknown): string | undefined {
  return typeof v === "string" && isAbsolute(v) && v.length <= 4096 && !v.includes("\0") ? v : undefined;
}

/** The working directory: `cwd` when Cursor gives one (it may be empty), else the first workspace root. */
function baseDir(raw: Record<string, unknown>): string {
  const cwd = raw.cwd;
  if (typeof cwd === "string" && cwd !== "") {
    const abs = absolute(cwd);
    return abs ?? bad("cwd: expected an absolute path");
  }
  const roots = raw.workspace_roots;
  if (roots !== undefined && (!Array.isArray(roots) || roots.some((r) => typeof r !== "string"))) {
    return bad("workspace_roots: expected a list of paths");
  }
  const root = Array.isArray(roots) ? absolute(roots[0]) : undefined;
  return root ?? bad("cwd: no absolute `cwd` and no absolute first `workspace_roots` entry");
}

/**
 * Where a `Shell` tool call runs: `tool_input.working_directory` (Cursor's reference), or
 * `tool_input.cwd` (what some builds send); both, naming different folders, is refused.
 */
function shellDir(input: Record<string, unknown>): string | undefined {
  let dir: string | undefined;
  for (const key of ["working_directory", "cwd"]) {
    const v = input[key];
    if (v === undefined || v === null || v === "") continue;
    const abs = absolute(v) ?? bad(`tool_input.${key}: expected an absolute path`);
    if (dir !== undefined && dir !== abs) bad("tool_input: working_directory and cwd name different folders");
    dir = abs;
  }
  return dir;
}

/** Reads one Cursor hook's input (already JSON); throws `ERR_HOOK_INPUT` naming what is wrong. */
export function parseCursor(raw: Record<string, unknown>): HookInput {
  const event = raw.hook_event_name;
  const phase = typeof event === "string" ? CURSOR_EVENTS[event] : undefined;
  if (phase === undefined || typeof event !== "string") {
    return bad(
      `hook_event_name ${JSON.stringify(event)}: writ decides the cursor hooks ${Object.keys(CURSOR_EVENTS).join(", ")}`,
    );
  }
  const session = optionalText(raw, "conversation_id", 256) ?? optionalText(raw, "session_id", 256);
  let cwd = baseDir(raw);
  let tool: string;
  let input: Record<string, unknown>;
  switch (event) {
    case "preToolUse":
    case "postToolUse": {
      tool = text(raw, "tool_name", 256);
      const given = raw.tool_input ?? {};
      if (!isObject(given)) return bad("tool_input: expected a JSON object");
      input = given;
      // the shell runs where its own input says
      if (tool === "Shell") cwd = shellDir(input) ?? cwd;
      break;
    }
    case "beforeShellExecution":
    case "afterShellExecution":
      tool = "Shell";
      input = { command: text(raw, "command", 1024 * 1024) };
      break;
    case "beforeMCPExecution":
    case "afterMCPExecution": {
      tool = `${MCP}${text(raw, "tool_name", 252)}`;
      const args = raw.tool_input;
      if (args !== undefined && typeof args !== "string" && !isObject(args)) {
        return bad("tool_input: expected the tool's parameters as a JSON string or object");
      }
      input = { tool_input: args ?? null };
      for (const k of ["url", "command"] as const) {
        const v = optionalText(raw, k, 4096);
        if (v !== undefined) input[k] = v;
      }
      break;
    }
    default:
      // beforeReadFile, afterFileEdit: the path, never the content
      tool = event === "beforeReadFile" ? "Read" : "Write";
      input = { file_path: text(raw, "file_path", 4096) };
  }
  return { kind: "cursor", event, phase, tool, input, cwd, session };
}

/** The hook's JSON again, as Cursor documents it for the event, from what was read. */
export function cursorWire(input: HookInput): Record<string, unknown> {
  const base: Record<string, unknown> = {
    hook_event_name: input.event,
    ...(input.session === undefined ? {} : { conversation_id: input.session }),
    cwd: input.cwd,
    workspace_roots: [input.cwd],
  };
  switch (input.event) {
    case "beforeShellExecution":
    case "afterShellExecution":
      return { ...base, command: input.input.command };
    case "beforeMCPExecution":
    case "afterMCPExecution": {
      const { tool_input, url, command } = input.input;
      return {
        ...base,
        tool_name: input.tool.slice(MCP.length),
        ...(tool_input === null ? {} : { tool_input }),
        ...(url === undefined ? {} : { url }),
        ...(command === undefined ? {} : { command }),
      };
    }
    case "beforeReadFile":
    case "afterFileEdit":
      return { ...base, file_path: input.input.file_path };
    default:
      return { ...base, tool_name: input.tool, tool_input: input.input };
  }
}

const HUMAN = " (writ asks for a human: run it yourself if it is right)";

/**
 * Cursor's answer. Cursor takes an answer without `permission` as a failed hook (refused under
 * `failClosed`), so writ's allow is always `{"permission": "allow"}` here: there is no "no
 * decision" to give, and `allowSkipsPrompt` changes nothing. `ask` where Cursor does not honour it
 * is a `deny` saying that a human must run it.
 */
export function renderCursor(
  event: string,
  phase: HookPhase,
  answer: HookAnswer,
  reason: string,
): HookOutput {
  const json = (out: Record<string, unknown>): HookOutput => ({
    stdout: `${JSON.stringify(out)}\n`,
    stderr: "",
    exitCode: 0,
  });
  if (phase === "post") return json({});
  // preToolUse: some 2.x builds documented `decision` and `reason` in place of `permission` and the
  // messages; both are sent, so that either reading finds the answer
  const generic = event === "preToolUse";
  if (answer === "allow")
    return json(generic ? { permission: "allow", decision: "allow" } : { permission: "allow" });
  const permission = answer === "ask" && ASK_HONOURED.has(event) ? "ask" : "deny";
  const message = answer === "ask" && permission === "deny" ? `${reason}${HUMAN}` : reason;
  if (event === "beforeReadFile") return json({ permission, user_message: message });
  return json({
    permission,
    user_message: message,
    agent_message: message,
    ...(generic ? { decision: permission, reason: message } : {}),
  });
}
