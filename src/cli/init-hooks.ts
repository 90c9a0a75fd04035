/**
 * `writ init --agent <kind>` for a coding agent (`claude-code`, `gemini-cli`, `codex`, `cursor`): a
 * starter writ.yaml for a developer's machine, and the agent's hook settings pointing at
 * `writ hook <kind>` — merged into the project's settings file (`.claude/settings.json`,
 * `.gemini/settings.json`, `.codex/hooks.json`, `.cursor/hooks.json`) without touching anything
 * else in it, and only once. With `--server`, the hook asks that server through the thin client
 * (bin/writ-hook.sh) when it can: run by bash for a plain-http server on loopback (bash speaks
 * HTTP itself, no other process), else by sh with curl; else `writ hook --server`.
 */
import { accessSync, constants } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { quote } from "shell-quote";
import { schemaUrl } from "../config/schema.js";
import type { HookKind } from "../hook/protocol.js";
import { CliFailure, EXIT } from "./output.js";

interface HookSettings {
  readonly file: string;
  readonly events: readonly string[];
  /** In the agent's unit: seconds, except Gemini CLI's milliseconds. */
  readonly timeout: number;
  /**
   * `groups`: `hooks.<event>` is a list of `{matcher, hooks: [{type, command, timeout}]}` (Claude
   * Code, Gemini CLI, Codex); `flat`: a list of `{command, timeout, failClosed}` under a `version: 1`
   * file (Cursor).
   */
  readonly layout: "groups" | "flat";
  /** The matcher for every tool; none where the agent runs a group without one for every tool (Codex). */
  readonly matcher?: string;
}

const SETTINGS: Readonly<Record<HookKind, HookSettings>> = {
  "claude-code": {
    file: join(".claude", "settings.json"),
    events: ["PreToolUse", "PostToolUse"],
    timeout: 30,
    layout: "groups",
    matcher: "*",
  },
  "gemini-cli": {
    file: join(".gemini", "settings.json"),
    events: ["BeforeTool", "AfterTool"],
    timeout: 30_000,
    layout: "groups",
    matcher: "*",
  },
  codex: {
    file: join(".codex", "hooks.json"),
    events: ["PreToolUse", "PostToolUse"],
    timeout: 30,
    layout: "groups",
  },
  // the generic tool hooks see every tool (Write has no granular before-hook); the granular ones are
  // what older Cursor builds and its CLI fire, and the only ones where Cursor honours `ask`
  cursor: {
    file: join(".cursor", "hooks.json"),
    events: [
      "preToolUse",
      "postToolUse",
      "beforeShellExecution",
      "afterShellExecution",
      "beforeMCPExecution",
      "beforeReadFile",
    ],
    timeout: 30,
    layout: "flat",
  },
};

/** Tools decided on `-`: what each agent runs besides files, shell and the web. */
const OTHER_TOOLS: Readonly<Record<HookKind, string | undefined>> = {
  "claude-code": "TodoWrite|Task|WebSearch|ExitPlanMode",
  "gemini-cli": "WebSearch|save_memory|write_todos",
  codex: undefined,
  cursor: "Task",
};

export function codingStarter(kind: HookKind, project: string, owner: string, version: string): string {
  const here = `${project}|${project}/*`;
  const reads = "Read|Glob|Grep|LS|NotebookRead";
  const writes = "Write|Edit|MultiEdit|NotebookEdit";
  const hosts = "github.com|*.github.com|registry.npmjs.org|pypi.org";
  const other = OTHER_TOOLS[kind];
  const otherCeiling =
    other === undefined ? "" : `\n        - action: "agent:${kind}:${other}"\n          resource: "-"`;
  const otherBaseline =
    other === undefined
      ? ""
      : `\n      - action: "agent:${kind}:${other}"\n        resource: "-"\n        standingWrite: its own bookkeeping`;
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
          resource: ${JSON.stringify(hosts)}${otherCeiling}
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
        standingWrite: reads documentation and packages${otherBaseline}

hooks:
  # files whose content is untrusted: reading one taints the session, like a web fetch
  untrusted: []
`;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The thin hook client shipped in the package (bin/writ-hook.sh), from dist/cli or src/cli. */
export const THIN_CLIENT = fileURLToPath(new URL("../../bin/writ-hook.sh", import.meta.url));

/** Whether `name` is an executable file in a folder of `path` (the PATH variable). */
export function onPath(name: string, path: string | undefined): boolean {
  for (const d of (path ?? "").split(delimiter)) {
    if (d === "") continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** A plain-http server on this machine: the thin client under bash talks to it without curl. */
export const isLoopbackHttp = (server: string): boolean =>
  /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?(\/|$)/.test(server);

/**
 * The hook's command: the thin client when its identifiers and URL are of the characters it takes —
 * `bash -p` (no BASH_ENV, no functions from the environment) for a plain-http server on loopback,
 * else `sh` with curl on the PATH — else `writ hook` against the server, or offline with the config.
 */
export function hookCommand(
  kind: HookKind,
  args: { agent: string; environment: string; config: string; server?: string | undefined },
  path: string | undefined,
): string {
  const who = ["--agent", args.agent, "--env", args.environment];
  if (args.server === undefined) return quote(["writ", "hook", kind, ...who, "--config", args.config]);
  const thin =
    /^https?:\/\/[[\]A-Za-z0-9._~:/%+-]+$/.test(args.server) &&
    [args.agent, args.environment].every((w) => /^[A-Za-z0-9._~-]{1,256}$/.test(w));
  const shell =
    thin && isLoopbackHttp(args.server) && onPath("bash", path)
      ? ["bash", "-p"]
      : thin && onPath("curl", path)
        ? ["sh"]
        : undefined;
  return shell
    ? quote([...shell, THIN_CLIENT, kind, "--server", args.server, ...who])
    : quote(["writ", "hook", kind, "--server", args.server, ...who]);
}

/**
 * Adds the hook entries to the agent's settings file under `dir`, keeping everything in it.
 * Returns the file and whether it changed.
 */
export async function writeHookSettings(
  kind: HookKind,
  dir: string,
  args: { agent: string; environment: string; config: string; server?: string | undefined },
  path: string | undefined = process.env.PATH,
): Promise<{ file: string; changed: boolean; command: string; events: readonly string[] }> {
  const spec = SETTINGS[kind];
  const file = join(dir, spec.file);
  const command = hookCommand(kind, args, path);
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
  if (spec.layout === "flat") {
    if (settings.version === undefined) settings = { version: 1, ...settings };
    else if (settings.version !== 1) {
      throw new CliFailure("ERR_FILE", `${file}: \`version\` is not 1: left as it is`, EXIT.failure);
    }
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
    const runs = (h: unknown) => isObject(h) && h.command === command;
    const present =
      spec.layout === "flat"
        ? list.some(runs)
        : list.some((m) => isObject(m) && Array.isArray(m.hooks) && m.hooks.some(runs));
    if (!present) {
      list.push(entry(kind, spec, event, command));
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

/**
 * One hook entry in the agent's layout. Cursor's before-hooks block the call when the hook itself
 * fails (`failClosed`); its after-hooks cannot block anything.
 */
function entry(kind: HookKind, spec: HookSettings, event: string, command: string): Json {
  if (spec.layout === "flat") {
    const before = event === "preToolUse" || event.startsWith("before");
    return before ? { command, timeout: spec.timeout, failClosed: true } : { command, timeout: spec.timeout };
  }
  const hook: Json = { type: "command", command, timeout: spec.timeout };
  if (kind === "gemini-cli") hook.name = "writ";
  return spec.matcher === undefined ? { hooks: [hook] } : { matcher: spec.matcher, hooks: [hook] };
}
