/**
 * `writ init --agent claude-code` (or `gemini-cli`): a starter writ.yaml for a coding agent on a
 * developer's machine, and the agent's hook settings pointing at `writ hook <kind>` — merged into
 * the project's settings file (`.claude/settings.json`, `.gemini/settings.json`) without touching
 * anything else in it, and only once.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { quote } from "shell-quote";
import { schemaUrl } from "../config/schema.js";
import type { HookKind } from "../hook/protocol.js";
import { CliFailure, EXIT } from "./output.js";

const SETTINGS: Readonly<
  Record<HookKind, { file: string; events: readonly [string, string]; timeout: number }>
> = {
  // Claude Code's hook timeout is in seconds, Gemini CLI's in milliseconds
  "claude-code": {
    file: join(".claude", "settings.json"),
    events: ["PreToolUse", "PostToolUse"],
    timeout: 30,
  },
  "gemini-cli": {
    file: join(".gemini", "settings.json"),
    events: ["BeforeTool", "AfterTool"],
    timeout: 30_000,
  },
};

/** Tools decided on `-`: what each agent runs besides files, shell and the web. */
const OTHER_TOOLS: Readonly<Record<HookKind, string>> = {
  "claude-code": "TodoWrite|Task|WebSearch|ExitPlanMode",
  "gemini-cli": "WebSearch|save_memory|write_todos",
};

export function codingStarter(kind: HookKind, project: string, owner: string, version: string): string {
  const here = `${project}|${project}/*`;
  const reads = "Read|Glob|Grep|LS|NotebookRead";
  const writes = "Write|Edit|MultiEdit|NotebookEdit";
  const hosts = "github.com|*.github.com|registry.npmjs.org|pypi.org";
  return `# yaml-language-server: $schema=${schemaUrl(version)}
# writ.yaml for ${kind} on this machine: its own tools are decided through its hooks
# (\`writ hook ${kind}\`, docs/hooks.md). Reference: docs/config.md
version: 1

environments:
  dev:
    description: A developer's machine

runnerClasses:
  coding:
    description: A coding agent working in ${project}
    ceiling:
      maxTtl: 8h
      allow:
        - action: "agent:${kind}:${reads}|${writes}"
          resource: ${JSON.stringify(here)}
        # every program the shell runs; what each one touches is decided as Read, Write, WebFetch
        - action: "agent:${kind}:Bash"
          resource: "*"
        - action: "agent:${kind}:WebFetch"
          resource: ${JSON.stringify(hosts)}
        - action: "agent:${kind}:${OTHER_TOOLS[kind]}"
          resource: "-"
      deny:
        - action: "agent:*:Read|Write"
          resource: ${JSON.stringify(`${project}/.env|${project}/.env.*|${project}/.git/hooks/*|*/.ssh/*|*/.aws/*`)}

agents:
  ${kind}:
    owner: ${JSON.stringify(owner)}
    purpose: Writes code in ${project}
    runnerClass: coding
    environments: [dev]
    keys:
      file: keys/${kind}.jwks.json   # DEVELOPMENT key pair made by \`writ init\`
    baseline:
      - action: "agent:${kind}:${reads}"
        resource: ${JSON.stringify(here)}
      - action: "agent:${kind}:${writes}"
        resource: ${JSON.stringify(here)}
        standingWrite: edits the project it works in
      - action: "agent:${kind}:Bash"
        resource: "*"
        standingWrite: runs the commands its hook allows
      - action: "agent:${kind}:WebFetch"
        resource: ${JSON.stringify(hosts)}
        standingWrite: reads documentation and packages
      - action: "agent:${kind}:${OTHER_TOOLS[kind]}"
        resource: "-"
        standingWrite: its own bookkeeping

hooks:
  # files whose content is untrusted: reading one taints the session, like a web fetch
  untrusted: []
`;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Adds the hook entries to the agent's settings file under `dir`, keeping everything in it.
 * Returns the file and whether it changed.
 */
export async function writeHookSettings(
  kind: HookKind,
  dir: string,
  args: { agent: string; environment: string; config: string },
): Promise<{ file: string; changed: boolean; command: string; events: readonly string[] }> {
  const spec = SETTINGS[kind];
  const file = join(dir, spec.file);
  const command = quote([
    "writ",
    "hook",
    kind,
    "--agent",
    args.agent,
    "--env",
    args.environment,
    "--config",
    args.config,
  ]);
  let settings: Json = {};
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new CliFailure("ERR_FILE", `${file}: ${err.message}`, EXIT.failure);
  });
  if (text !== undefined && text.trim().length > 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CliFailure(
        "ERR_FILE",
        `${file}: not JSON (${(err as Error).message}): left as it is`,
        EXIT.failure,
      );
    }
    if (!isObject(parsed))
      throw new CliFailure("ERR_FILE", `${file}: not a JSON object: left as it is`, EXIT.failure);
    settings = parsed;
  }
  const hooks = settings.hooks ?? {};
  if (!isObject(hooks))
    throw new CliFailure("ERR_FILE", `${file}: \`hooks\` is not an object: left as it is`, EXIT.failure);
  let changed = false;
  for (const event of spec.events) {
    const list = hooks[event] ?? [];
    if (!Array.isArray(list)) {
      throw new CliFailure(
        "ERR_FILE",
        `${file}: \`hooks.${event}\` is not a list: left as it is`,
        EXIT.failure,
      );
    }
    const present = list.some(
      (m) =>
        isObject(m) && Array.isArray(m.hooks) && m.hooks.some((h) => isObject(h) && h.command === command),
    );
    if (!present) {
      const hook: Json = { type: "command", command, timeout: spec.timeout };
      if (kind === "gemini-cli") hook.name = "writ";
      list.push({ matcher: "*", hooks: [hook] });
      changed = true;
    }
    hooks[event] = list;
  }
  settings.hooks = hooks;
  if (changed) {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(settings, null, 2)}\n`);
  }
  return { file, changed, command, events: spec.events };
}
