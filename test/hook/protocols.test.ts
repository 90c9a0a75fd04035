import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isWritError } from "../../src/core/index.js";
import {
  type HookEngine,
  type HookKind,
  parseHookInput,
  renderAnswer,
  wireInput,
} from "../../src/hook/index.js";
import type { Store } from "../../src/store/index.js";
import { claude, type JudgingEngine, judgingEngine, makeProject, type Project } from "./fixture.js";
import {
  ALLOWED_COMMANDS,
  codex,
  cursor,
  DENIED_FILE_ROUTES,
  EXFIL_ROUTES,
  PLAINLY_DENIED,
  SHELL_PROTOCOLS,
  WHOLE_TREE_ROUTES,
} from "./tables.js";

let p: Project;
let store: Store;
let engine: HookEngine;
let audited: JudgingEngine["audited"];
const ID = { agent: "coder", environment: "dev" };

beforeAll(async () => {
  p = await makeProject();
  ({ store, engine, audited } = await judgingEngine(p));
}, 60_000);

afterAll(async () => {
  await store?.close();
});

async function judge(kind: HookKind, raw: Record<string, unknown>) {
  return engine.judge(ID, parseHookInput(kind, JSON.stringify(raw)));
}

/** The code of what parseHookInput throws, or `undefined`. */
function inputError(kind: HookKind, raw: unknown): string | undefined {
  try {
    parseHookInput(kind, typeof raw === "string" ? raw : JSON.stringify(raw));
    return undefined;
  } catch (err) {
    return isWritError(err) ? err.code : "not a WritError";
  }
}

const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

for (const proto of SHELL_PROTOCOLS.filter((s) => s.kind !== "claude-code")) {
  describe(`${proto.name}: the bypass table`, () => {
    const shell = (command: string, cwd = p.src, session = `${proto.name}-s`) =>
      judge(proto.kind, proto.pre(p, command, cwd, session));

    for (const [name, command] of DENIED_FILE_ROUTES) {
      it(`reading the denied file by ${name}: never allow`, async () => {
        const v = await shell(command(p));
        expect(v.decision, `${command(p)} → ${v.reason}`).not.toBe("allow");
      });
    }

    it("the plain routes are denied outright, naming the file", async () => {
      for (const c of PLAINLY_DENIED) {
        const v = await shell(c);
        expect(v, c).toMatchObject({ decision: "deny", code: "explicit_deny" });
        expect(v.reason).toContain(p.secret);
      }
    });

    it("commands that name no path are denied on the whole repository or folder they read", async () => {
      for (const [command, where] of WHOLE_TREE_ROUTES) {
        const v = await shell(command, where(p));
        expect(v, `${command} → ${v.reason}`).toMatchObject({ decision: "deny", code: "explicit_deny" });
      }
    });

    for (const command of EXFIL_ROUTES) {
      it(`exfiltration by ${command}: never allow`, async () => {
        const v = await shell(command);
        expect(v.decision, v.reason).not.toBe("allow");
      });
    }

    it("ordinary work is allowed", async () => {
      for (const c of ALLOWED_COMMANDS) {
        const v = await shell(c);
        expect(v.decision, `${c} → ${v.reason}`).toBe("allow");
      }
    });

    it("a web fetch from the shell, once run, taints the session: writes are refused, reads are not", async () => {
      const s = `${proto.name}-taint`;
      const after = await judge(proto.kind, proto.post(p, "curl -fsSL https://docs.example.com/a", p.src, s));
      expect(after.decision).toBe("allow");
      expect(await shell("echo x > out.txt", p.src, s)).toMatchObject({
        decision: "deny",
        code: "tainted_session",
      });
      expect((await shell("cat a.ts", p.src, s)).decision).toBe("allow");
      expect((await shell("echo x > out.txt", p.src, `${s}-other`)).decision).toBe("allow");
    });
  });
}

describe("Cursor: files, MCP and edits", () => {
  it("beforeReadFile: the denied file, by any path to it, is denied; a project file is allowed", async () => {
    for (const file_path of [p.secret, join(p.proj, "link"), `${p.src}/../secret/./key.pem`]) {
      const v = await judge(
        "cursor",
        cursor(
          "beforeReadFile",
          { file_path, content: "-----BEGIN PRIVATE KEY-----\n", attachments: [] },
          p.proj,
        ),
      );
      expect(v, file_path).toMatchObject({ decision: "deny", code: "explicit_deny" });
    }
    const ok = await judge(
      "cursor",
      cursor("beforeReadFile", { file_path: join(p.src, "a.ts"), content: "export const a = 1;\n" }, p.proj),
    );
    expect(ok.decision, ok.reason).toBe("allow");
  });

  it("preToolUse: Read, Write and Grep of the denied file are denied; in the project, allowed", async () => {
    const pre = (tool_name: string, tool_input: Record<string, unknown>) =>
      judge("cursor", cursor("preToolUse", { tool_name, tool_input, tool_use_id: "t", cwd: "" }, p.proj));
    expect(await pre("Read", { file_path: p.secret })).toMatchObject({
      decision: "deny",
      code: "explicit_deny",
    });
    expect(await pre("Write", { file_path: join(p.proj, "secret", "new.pem") })).toMatchObject({
      decision: "deny",
      code: "explicit_deny",
    });
    // relative to the workspace root when Cursor gives no cwd
    expect(await pre("Write", { file_path: "secret/new.pem" })).toMatchObject({ decision: "deny" });
    expect((await pre("Grep", { pattern: "KEY", file_path: p.proj })).decision).toBe("deny");
    expect((await pre("Read", { file_path: join(p.src, "a.ts") })).decision).toBe("allow");
    expect((await pre("Write", { file_path: join(p.src, "b.ts") })).decision).toBe("allow");
    // a Write whose path writ cannot find is never allowed
    expect((await pre("Write", {})).decision).toBe("ask");
    // Delete (its input undocumented) is a Write of its path, never a tool decided by name alone
    expect(await pre("Delete", { file_path: p.secret })).toMatchObject({
      decision: "deny",
      code: "explicit_deny",
    });
    expect(await pre("Delete", { path: "secret/key.pem" })).toMatchObject({
      decision: "deny",
      code: "explicit_deny",
    });
    expect((await pre("Delete", { file_path: join(p.src, "old.ts") })).decision).toBe("allow");
    expect((await pre("Delete", {})).decision).toBe("ask");
  });

  it("preToolUse Shell runs where tool_input.working_directory says, not where the top-level cwd does", async () => {
    const shell = (tool_input: Record<string, unknown>, cwd: string) =>
      judge(
        "cursor",
        cursor("preToolUse", { tool_name: "Shell", tool_input, tool_use_id: "t", cwd }, p.proj),
      );
    // read from src, `secret/key.pem` would be a file of the project that does not exist
    const v = await shell({ command: "cat secret/key.pem", working_directory: p.proj }, p.src);
    expect(v, v.reason).toMatchObject({ decision: "deny", code: "explicit_deny" });
    expect(v.reason).toContain(p.secret);
    expect((await shell({ command: "cat a.ts", working_directory: p.src }, p.proj)).decision).toBe("allow");
    // the older spelling, and both when they agree
    expect((await shell({ command: "cat secret/key.pem", cwd: p.proj }, p.src)).decision).toBe("deny");
    expect(
      (await shell({ command: "cat a.ts", cwd: p.src, working_directory: p.src }, p.proj)).decision,
    ).toBe("allow");
  });

  it("an MCP tool is decided by its name, from beforeMCPExecution and preToolUse alike", async () => {
    const before = audited.length;
    const a = await judge(
      "cursor",
      cursor(
        "beforeMCPExecution",
        { tool_name: "db_query", tool_input: '{"query":"DROP TABLE x"}', command: "npx db-mcp" },
        p.proj,
      ),
    );
    expect(a).toMatchObject({ decision: "deny", code: "no_grant" });
    expect(audited[before]!.data.needs).toEqual(["MCP_db_query -"]);
    const b = await judge(
      "cursor",
      cursor("preToolUse", { tool_name: "MCP:db_query", tool_input: { query: "x" }, cwd: "" }, p.proj),
    );
    expect(b).toMatchObject({ decision: "deny", code: "no_grant" });
    expect(audited[before + 1]!.data.needs).toEqual(["MCP_db_query -"]);
  });

  it("a tool named like an object's own property is still decided by its name", async () => {
    for (const tool_name of ["constructor", "toString", "__proto__"]) {
      const v = await judge("cursor", cursor("preToolUse", { tool_name, tool_input: {}, cwd: "" }, p.proj));
      expect(v, tool_name).toMatchObject({ decision: "deny", code: "no_grant" });
      const c = await judge("claude-code", claude("PreToolUse", tool_name, {}, p.src));
      expect(c, tool_name).toMatchObject({ decision: "deny", code: "no_grant" });
    }
  });

  it("postToolUse of a Read under hooks.untrusted taints the conversation; afterFileEdit does not", async () => {
    const inbox = join(p.proj, "inbox", "mail.txt");
    await judge(
      "cursor",
      cursor("afterFileEdit", { file_path: join(p.src, "a.ts"), edits: [] }, p.proj, "cur-edit"),
    );
    const shell = (conv: string) =>
      judge("cursor", cursor("beforeShellExecution", { command: "touch x", cwd: p.src }, p.proj, conv));
    expect((await shell("cur-edit")).decision).toBe("allow");
    const post = await judge(
      "cursor",
      cursor(
        "postToolUse",
        { tool_name: "Read", tool_input: { file_path: inbox }, tool_output: "{}", cwd: "" },
        p.proj,
        "cur-read",
      ),
    );
    expect(post.decision).toBe("allow");
    expect(await shell("cur-read")).toMatchObject({ decision: "deny", code: "tainted_session" });
  });

  it("answers in Cursor's format for each event", () => {
    const out = (event: string, answer: "allow" | "deny" | "ask", skips = false) =>
      renderAnswer(
        "cursor",
        event.startsWith("after") || event === "postToolUse" ? "post" : "pre",
        answer,
        "why",
        skips,
        event,
      );
    const deny = out("beforeShellExecution", "deny");
    expect(deny.exitCode).toBe(0);
    expect(json(deny.stdout)).toEqual({ permission: "deny", user_message: "why", agent_message: "why" });
    expect(json(out("beforeShellExecution", "ask").stdout)).toEqual({
      permission: "ask",
      user_message: "why",
      agent_message: "why",
    });
    expect(json(out("beforeMCPExecution", "ask").stdout).permission).toBe("ask");
    // preToolUse and beforeReadFile do not honour ask: a deny saying a human must run it
    const pre = json(out("preToolUse", "ask").stdout);
    expect(pre.permission).toBe("deny");
    expect(pre.agent_message).toContain("human");
    // preToolUse also in the spelling some builds documented: `decision` and `reason`
    expect(pre.decision).toBe("deny");
    expect(pre.reason).toBe(pre.agent_message);
    expect(json(out("preToolUse", "deny").stdout)).toEqual({
      permission: "deny",
      user_message: "why",
      agent_message: "why",
      decision: "deny",
      reason: "why",
    });
    const read = json(out("beforeReadFile", "ask").stdout);
    expect(Object.keys(read).sort()).toEqual(["permission", "user_message"]);
    expect(read.permission).toBe("deny");
    // Cursor takes an answer without `permission` as a failed hook: an allow is always explicit
    for (const e of ["beforeShellExecution", "beforeMCPExecution", "beforeReadFile"]) {
      expect(json(out(e, "allow").stdout), e).toEqual({ permission: "allow" });
      expect(json(out(e, "allow", true).stdout), e).toEqual({ permission: "allow" });
    }
    expect(json(out("preToolUse", "allow").stdout)).toEqual({ permission: "allow", decision: "allow" });
    for (const e of ["postToolUse", "afterShellExecution", "afterFileEdit", "afterMCPExecution"]) {
      expect(out(e, "deny").stdout, e).toBe("{}\n");
    }
  });

  it("refuses input that is not what Cursor documents, with ERR_HOOK_INPUT", () => {
    const shell = (fields: Record<string, unknown>) => cursor("beforeShellExecution", fields, p.proj);
    const cases: [string, unknown][] = [
      ["not JSON", "{"],
      ["an array", "[]"],
      [
        "an event writ does not decide",
        cursor("beforeSubmitPrompt", { prompt: "hi", attachments: [] }, p.proj),
      ],
      ["Claude Code's event", claude("PreToolUse", "Bash", { command: "ls" }, p.src)],
      ["no command", shell({ cwd: p.src })],
      ["a command that is not a string", shell({ command: ["ls"], cwd: p.src })],
      ["a relative cwd", shell({ command: "ls", cwd: "src" })],
      ["no cwd and no workspace root", { ...shell({ command: "ls" }), workspace_roots: [] }],
      ["workspace_roots not a list", { ...shell({ command: "ls" }), workspace_roots: p.proj }],
      ["a relative workspace root", { ...shell({ command: "ls" }), workspace_roots: ["proj"] }],
      [
        "a conversation id too long",
        { ...shell({ command: "ls", cwd: p.src }), conversation_id: "x".repeat(300) },
      ],
      ["tool_input not an object", cursor("preToolUse", { tool_name: "Read", tool_input: "x" }, p.proj)],
      ["no tool_name", cursor("preToolUse", { tool_input: {} }, p.proj)],
      [
        "a relative Shell cwd",
        cursor("preToolUse", { tool_name: "Shell", tool_input: { command: "ls", cwd: "x" } }, p.proj),
      ],
      [
        "Shell working_directory relative",
        cursor(
          "preToolUse",
          { tool_name: "Shell", tool_input: { command: "ls", working_directory: "x" } },
          p.proj,
        ),
      ],
      [
        "Shell working_directory and cwd differ",
        cursor(
          "preToolUse",
          { tool_name: "Shell", tool_input: { command: "ls", working_directory: "/w/a", cwd: "/w/b" } },
          p.proj,
        ),
      ],
      ["MCP parameters of a number", cursor("beforeMCPExecution", { tool_name: "q", tool_input: 3 }, p.proj)],
      ["beforeReadFile without a path", cursor("beforeReadFile", { content: "x" }, p.proj)],
    ];
    for (const [name, raw] of cases) expect(inputError("cursor", raw), name).toBe("ERR_HOOK_INPUT");
  });
});

describe("Codex CLI", () => {
  const patch = (...body: string[]) => ["*** Begin Patch", ...body, "*** End Patch", ""].join("\n");
  const apply = (command: string) => judge("codex", codex("PreToolUse", "apply_patch", { command }, p.src));

  it("apply_patch writes every file its patch names: into the denied folder is denied", async () => {
    expect((await apply(patch("*** Add File: b.ts", "+export const b = 2;"))).decision).toBe("allow");
    expect(await apply(patch("*** Update File: ../secret/key.pem", "@@", "-a", "+b"))).toMatchObject({
      decision: "deny",
      code: "explicit_deny",
    });
    expect(
      await apply(patch("*** Update File: a.ts", "*** Move to: ../secret/a.ts", "@@", "-1", "+2")),
    ).toMatchObject({ decision: "deny", code: "explicit_deny" });
    expect(await apply(patch("*** Delete File: ../link"))).toMatchObject({ decision: "deny" });
    expect(await apply(patch(`*** Add File: ${join(p.proj, "secret", "x")}`, "+x"))).toMatchObject({
      decision: "deny",
    });
  });

  it("a patch writ cannot read is for the human", async () => {
    expect((await apply("echo not a patch")).decision).toBe("ask");
    expect((await apply(patch("nothing here"))).decision).toBe("ask");
    expect((await apply(patch("*** Add File: ", "+x"))).decision).toBe("ask");
    expect((await judge("codex", codex("PreToolUse", "apply_patch", {}, p.src))).decision).toBe("ask");
  });

  it("an MCP tool is decided by its name", async () => {
    const v = await judge("codex", codex("PreToolUse", "mcp__db__drop", { table: "x" }, p.src));
    expect(v).toMatchObject({ decision: "deny", code: "no_grant" });
  });

  it("answers as Codex reads it: only a deny with a reason blocks, so ask is a deny and allow no decision", () => {
    const deny = json(renderAnswer("codex", "pre", "deny", "no", false, "PreToolUse").stdout);
    expect(deny).toEqual({
      hookSpecificOutput: {
        hookEventName: "PreToolUse",
        permissionDecision: "deny",
        permissionDecisionReason: "no",
      },
    });
    const ask = json(renderAnswer("codex", "pre", "ask", "unsure").stdout) as {
      hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string };
    };
    expect(ask.hookSpecificOutput.permissionDecision).toBe("deny");
    expect(ask.hookSpecificOutput.permissionDecisionReason).toContain("human");
    expect(renderAnswer("codex", "pre", "allow", "ok").stdout).toBe("{}\n");
    expect(renderAnswer("codex", "pre", "allow", "ok", true).stdout).toBe("{}\n");
    expect(renderAnswer("codex", "post", "deny", "x").stdout).toBe("{}\n");
  });

  it("refuses input that is not what Codex documents, with ERR_HOOK_INPUT", () => {
    const ok = codex("PreToolUse", "Bash", { command: "ls" }, p.src);
    expect(inputError("codex", ok)).toBeUndefined();
    const cases: [string, unknown][] = [
      ["Gemini's event", { ...ok, hook_event_name: "BeforeTool" }],
      ["PermissionRequest", { ...ok, hook_event_name: "PermissionRequest" }],
      ["no tool_name", { ...ok, tool_name: undefined }],
      ["tool_input a string", { ...ok, tool_input: "ls" }],
      ["a relative cwd", { ...ok, cwd: "." }],
    ];
    for (const [name, raw] of cases) expect(inputError("codex", raw), name).toBe("ERR_HOOK_INPUT");
  });
});

describe("the wire to a server", () => {
  it("re-reads to the same call, for every event of every protocol", () => {
    const samples: [HookKind, Record<string, unknown>][] = [
      ["codex", codex("PreToolUse", "Bash", { command: "ls" }, "/w")],
      ["codex", codex("PostToolUse", "apply_patch", { command: "*** Begin Patch" }, "/w", "s")],
      ["cursor", cursor("beforeShellExecution", { command: "ls", cwd: "/w/src" }, "/w")],
      ["cursor", cursor("afterShellExecution", { command: "ls", cwd: "", output: "x" }, "/w")],
      ["cursor", cursor("beforeMCPExecution", { tool_name: "q", tool_input: "{}", url: "http://x" }, "/w")],
      ["cursor", cursor("afterMCPExecution", { tool_name: "q", result_json: "{}" }, "/w")],
      ["cursor", cursor("beforeReadFile", { file_path: "/w/a", content: "secret text" }, "/w")],
      [
        "cursor",
        cursor("afterFileEdit", { file_path: "/w/a", edits: [{ old_string: "a", new_string: "b" }] }, "/w"),
      ],
      [
        "cursor",
        cursor("preToolUse", { tool_name: "Shell", tool_input: { command: "ls", cwd: "/w/x" } }, "/w"),
      ],
      [
        "cursor",
        cursor(
          "preToolUse",
          { tool_name: "Shell", tool_input: { command: "ls", working_directory: "/w/x" }, cwd: "/w" },
          "/w",
        ),
      ],
      [
        "cursor",
        cursor("postToolUse", { tool_name: "Read", tool_input: { file_path: "/w/a" }, cwd: "" }, "/w"),
      ],
    ];
    for (const [kind, raw] of samples) {
      const once = parseHookInput(kind, JSON.stringify(raw));
      const wire = wireInput(once);
      expect(parseHookInput(kind, JSON.stringify(wire)), JSON.stringify(raw)).toEqual(once);
      // the file's content never leaves the hook process
      expect(JSON.stringify(wire)).not.toContain("secret text");
    }
  });
});

describe("audit", () => {
  it("a Cursor decision is recorded with its needs and the input's digest, never the file's content", async () => {
    const before = audited.length;
    await judge(
      "cursor",
      cursor(
        "beforeReadFile",
        { file_path: p.secret, content: "-----BEGIN PRIVATE KEY-----\nMIIE" },
        p.proj,
        "aud",
      ),
    );
    const rec = audited[before]!;
    expect(rec.type).toBe("hook.decision");
    expect(rec.data).toMatchObject({
      kind: "cursor",
      tool: "Read",
      session: "aud",
      decision: { decision: "deny", code: "explicit_deny" },
    });
    expect(rec.data.needs).toEqual([`Read ${p.secret}`]);
    expect(String(rec.data.input)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(rec.data)).not.toContain("MIIE");
  });
});
