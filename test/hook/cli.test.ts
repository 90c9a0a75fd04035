import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { assertBuilt, BIN, runCli } from "../support/cli.js";
import { claude, gemini, type HookRun, makeProject, type Project, runHookProcess } from "./fixture.js";
import { codex, cursor } from "./tables.js";

function hook(kind: string, input: unknown, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<HookRun> {
  return runHookProcess([process.execPath, BIN, "hook", kind, ...extra], input, env);
}

const decisionOf = (r: HookRun) =>
  (
    JSON.parse(r.stdout) as {
      hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string };
    }
  ).hookSpecificOutput;

let p: Project;
let server: Server;
let http: ReturnType<typeof serve> | undefined;
let base: string;
const TOKEN = "hook-test-pdp-token";

beforeAll(async () => {
  assertBuilt();
  p = await makeProject();
  const { policy, problems } = await loadPolicy(p.config);
  if (!policy) throw new Error(JSON.stringify(problems));
  server = await createServer({ policy, dataDir: join(p.root, "server"), version: "test", pdpToken: TOKEN });
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
}, 120_000);

afterAll(async () => {
  http?.close();
  await server?.close();
});

describe("writ hook through a running server", () => {
  const env = () => ({ WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_PDP_TOKEN: TOKEN });

  it("Claude Code: a denied read is a deny with its reason, an ordinary command an allow", async () => {
    const denied = await hook(
      "claude-code",
      claude("PreToolUse", "Bash", { command: "cat ../link" }, p.src),
      env(),
    );
    expect(denied.code, denied.stderr).toBe(0);
    expect(decisionOf(denied)).toMatchObject({ permissionDecision: "deny" });
    expect(decisionOf(denied).permissionDecisionReason).toContain("denied by the `coding` ceiling");
    const ok = await hook("claude-code", claude("PreToolUse", "Bash", { command: "ls -la" }, p.src), env());
    // an allow defers to Claude Code's own permission rules (no decision) …
    expect(ok).toMatchObject({ code: 0, stdout: "{}\n" });
    // … unless the hook is told that writ's allow skips the agent's prompt
    const skip = await hook("claude-code", claude("PreToolUse", "Bash", { command: "ls -la" }, p.src), {
      ...env(),
      WRIT_HOOK_ALLOW_SKIPS_PROMPT: "1",
    });
    expect(decisionOf(skip)).toMatchObject({ hookEventName: "PreToolUse", permissionDecision: "allow" });
    const ask = await hook(
      "claude-code",
      claude("PreToolUse", "Bash", { command: "npm test" }, p.src),
      env(),
    );
    expect(decisionOf(ask).permissionDecision).toBe("ask");
  });

  it("taint recorded by PostToolUse refuses a privileged call in that session", async () => {
    const s = "cli-taint";
    const post = await hook(
      "claude-code",
      claude("PostToolUse", "WebFetch", { url: "https://docs.example.com/", prompt: "x" }, p.src, s),
      env(),
    );
    expect(post).toMatchObject({ code: 0, stdout: "{}\n" });
    const w = await hook(
      "claude-code",
      claude("PreToolUse", "Write", { file_path: "x.ts", content: "" }, p.src, s),
      env(),
    );
    expect(decisionOf(w).permissionDecision).toBe("deny");
    expect(decisionOf(w).permissionDecisionReason).toContain("untrusted source");
  });

  it("Gemini CLI: answers {decision, reason}", async () => {
    const r = await hook(
      "gemini-cli",
      gemini("BeforeTool", "read_file", { file_path: p.secret }, p.src),
      env(),
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: "deny" });
    const ok = await hook(
      "gemini-cli",
      gemini("BeforeTool", "read_file", { file_path: "a.ts" }, p.src),
      env(),
    );
    expect(ok).toMatchObject({ code: 0, stdout: "{}\n" });
  });

  it("Cursor: answers in its flat permission JSON, by event; a bad event fails closed", async () => {
    const read = await hook(
      "cursor",
      cursor("beforeReadFile", { file_path: p.secret, content: "-----BEGIN", attachments: [] }, p.proj),
      env(),
    );
    expect(read.code, read.stderr).toBe(0);
    const denied = JSON.parse(read.stdout);
    expect(Object.keys(denied).sort()).toEqual(["permission", "user_message"]);
    expect(denied.permission).toBe("deny");
    expect(denied.user_message).toContain(p.secret);
    const shell = await hook(
      "cursor",
      cursor("beforeShellExecution", { command: "npm test", cwd: p.src, sandbox: false }, p.proj),
      env(),
    );
    expect(JSON.parse(shell.stdout)).toMatchObject({ permission: "ask" });
    const pre = await hook(
      "cursor",
      cursor(
        "preToolUse",
        { tool_name: "Shell", tool_input: { command: "cat ../link", cwd: p.src }, cwd: "" },
        p.proj,
      ),
      env(),
    );
    expect(JSON.parse(pre.stdout)).toMatchObject({ permission: "deny" });
    const ok = await hook(
      "cursor",
      cursor("beforeShellExecution", { command: "ls", cwd: p.src }, p.proj),
      env(),
    );
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ permission: "allow" });
    const prompt = await hook("cursor", cursor("beforeSubmitPrompt", { prompt: "hi" }, p.proj), env());
    expect(prompt.code).toBe(2);
    expect(prompt.stderr).toContain("ERR_HOOK_INPUT");
  });

  it("Codex CLI: a deny in hookSpecificOutput, an ask as a deny, an allow as no decision", async () => {
    const denied = await hook(
      "codex",
      codex(
        "PreToolUse",
        "apply_patch",
        { command: "*** Begin Patch\n*** Update File: ../secret/key.pem\n*** End Patch\n" },
        p.src,
      ),
      env(),
    );
    expect(denied.code, denied.stderr).toBe(0);
    expect(decisionOf(denied)).toMatchObject({ hookEventName: "PreToolUse", permissionDecision: "deny" });
    const ask = await hook("codex", codex("PreToolUse", "Bash", { command: "npm test" }, p.src), env());
    expect(decisionOf(ask).permissionDecision).toBe("deny");
    expect(decisionOf(ask).permissionDecisionReason).toContain("human");
    const ok = await hook("codex", codex("PreToolUse", "Bash", { command: "ls" }, p.src), {
      ...env(),
      WRIT_HOOK_ALLOW_SKIPS_PROMPT: "1",
    });
    expect(ok).toMatchObject({ code: 0, stdout: "{}\n" });
  });

  it("fails closed with a coded reason: bad input, no identity, no server, a wrong token, an unknown kind", async () => {
    const bad = await hook("claude-code", "not json", env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("ERR_HOOK_INPUT");
    const cwd = await hook(
      "claude-code",
      { ...claude("PreToolUse", "Read", {}, p.src), cwd: "relative" },
      env(),
    );
    expect(cwd.stderr).toMatch(/ERR_HOOK_INPUT: cwd/);
    const who = await hook("claude-code", claude("PreToolUse", "Bash", { command: "ls" }, p.src), {
      WRIT_SERVER: base,
    });
    expect(who.code).toBe(2);
    expect(who.stderr).toContain("ERR_HOOK_IDENTITY");
    const down = await hook("claude-code", claude("PreToolUse", "Bash", { command: "ls" }, p.src), {
      ...env(),
      WRIT_SERVER: "http://127.0.0.1:9",
    });
    expect(down.code).toBe(2);
    expect(down.stderr).toContain("ERR_HOOK_SERVER");
    expect(down.stdout).toBe("");
    const token = await hook("claude-code", claude("PreToolUse", "Bash", { command: "ls" }, p.src), {
      ...env(),
      WRIT_PDP_TOKEN: "wrong",
    });
    expect(token.code).toBe(2);
    expect(token.stderr).toMatch(/ERR_HOOK_SERVER: .*401/);
    const kind = await hook("copilot", claude("PreToolUse", "Bash", { command: "ls" }, p.src), env());
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain("ERR_HOOK_AGENT_KIND");
  });
});

describe("writ hook offline, against the local store", () => {
  it("denies the denied file and records the decision in the local audit log", async () => {
    const env = { WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_DATA_DIR: p.dataDir };
    const r = await hook(
      "claude-code",
      claude("PreToolUse", "Bash", { command: "head ../secret/key.pem" }, p.src),
      env,
      ["--config", p.config],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(decisionOf(r).permissionDecision).toBe("deny");
    const audit = await runCli(["audit", "verify", "--json"], { env: { WRIT_DATA_DIR: p.dataDir } });
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  }, 240_000);
});

describe("writ init --agent claude-code", () => {
  it("merges the hooks into an existing .claude/settings.json, keeping what is there, once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-init-hook-"));
    await mkdir(join(dir, ".claude"));
    const existing = {
      permissions: { allow: ["Bash(npm test)"] },
      hooks: { PreToolUse: [{ matcher: "Bash", hooks: [{ type: "command", command: "./lint.sh" }] }] },
    };
    await writeFile(join(dir, ".claude", "settings.json"), JSON.stringify(existing));
    const r = await runCli(["init", "--dir", dir, "--agent", "claude-code", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const settings = JSON.parse(await readFile(join(dir, ".claude", "settings.json"), "utf8"));
    expect(settings.permissions).toEqual(existing.permissions);
    expect(settings.hooks.PreToolUse).toHaveLength(2);
    expect(settings.hooks.PreToolUse[0]).toEqual(existing.hooks.PreToolUse[0]);
    const ours = settings.hooks.PreToolUse[1].hooks[0].command as string;
    expect(ours).toMatch(/^writ hook claude-code --agent claude-code --env dev --config /);
    expect(settings.hooks.PostToolUse[0].hooks[0].command).toBe(ours);
    // the starter it wrote is valid and denies .env through the hook's vocabulary
    const check = await runCli(["check", "--config", join(dir, "writ.yaml"), "--json"]);
    expect(check.code, check.stdout).toBe(0);
    // again: nothing added twice
    await runCli(["init", "--dir", dir, "--agent", "claude-code", "--force"]);
    const again = JSON.parse(await readFile(join(dir, ".claude", "settings.json"), "utf8"));
    expect(again.hooks.PreToolUse).toHaveLength(2);
    expect(again.hooks.PostToolUse).toHaveLength(1);
  });

  it("leaves a settings file it cannot read as it is", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-init-hook-"));
    await mkdir(join(dir, ".claude"));
    await writeFile(join(dir, ".claude", "settings.json"), "{ not json");
    const r = await runCli(["init", "--dir", dir, "--agent", "claude-code", "--json"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("ERR_FILE");
    expect(await readFile(join(dir, ".claude", "settings.json"), "utf8")).toBe("{ not json");
  });
});

describe("writ init --agent cursor and --agent codex", () => {
  it("cursor: merges its entries into .cursor/hooks.json, failing closed, keeping what is there, once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-init-cursor-"));
    await mkdir(join(dir, ".cursor"));
    const existing = {
      version: 1,
      hooks: { afterFileEdit: [{ command: "./format.sh" }], stop: [{ command: "./s.sh" }] },
    };
    await writeFile(join(dir, ".cursor", "hooks.json"), JSON.stringify(existing));
    const r = await runCli(["init", "--dir", dir, "--agent", "cursor", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const file = JSON.parse(await readFile(join(dir, ".cursor", "hooks.json"), "utf8"));
    expect(file.version).toBe(1);
    expect(file.hooks.afterFileEdit).toEqual(existing.hooks.afterFileEdit);
    expect(file.hooks.stop).toEqual(existing.hooks.stop);
    for (const event of [
      "preToolUse",
      "postToolUse",
      "beforeShellExecution",
      "afterShellExecution",
      "beforeMCPExecution",
      "beforeReadFile",
    ]) {
      expect(file.hooks[event], event).toHaveLength(1);
      expect(file.hooks[event][0].timeout).toBe(30);
      // the before-hooks refuse the call when the hook itself fails; the after-hooks cannot block
      expect(file.hooks[event][0].failClosed, event).toBe(
        event.startsWith("after") || event === "postToolUse" ? undefined : true,
      );
      expect(file.hooks[event][0].command).toMatch(/^writ hook cursor --agent cursor --env dev --config /);
    }
    const check = await runCli(["check", "--config", join(dir, "writ.yaml"), "--json"]);
    expect(check.code, check.stdout).toBe(0);
    await runCli(["init", "--dir", dir, "--agent", "cursor", "--force"]);
    const again = JSON.parse(await readFile(join(dir, ".cursor", "hooks.json"), "utf8"));
    expect(again.hooks.preToolUse).toHaveLength(1);
  });

  it("cursor: leaves a hooks.json of another version as it is", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-init-cursor-"));
    await mkdir(join(dir, ".cursor"));
    await writeFile(join(dir, ".cursor", "hooks.json"), '{"version":2,"hooks":{}}');
    const r = await runCli(["init", "--dir", dir, "--agent", "cursor", "--json"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("ERR_FILE");
    expect(await readFile(join(dir, ".cursor", "hooks.json"), "utf8")).toBe('{"version":2,"hooks":{}}');
  });

  it("codex: writes .codex/hooks.json with a group for every tool, and a valid starter", async () => {
    const dir = await mkdtemp(join(tmpdir(), "writ-init-codex-"));
    const r = await runCli(["init", "--dir", dir, "--agent", "codex", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const file = JSON.parse(await readFile(join(dir, ".codex", "hooks.json"), "utf8"));
    for (const event of ["PreToolUse", "PostToolUse"]) {
      expect(file.hooks[event]).toHaveLength(1);
      // no matcher: the group runs for every tool
      expect(Object.keys(file.hooks[event][0])).toEqual(["hooks"]);
      expect(file.hooks[event][0].hooks[0]).toMatchObject({ type: "command", timeout: 30 });
      expect(file.hooks[event][0].hooks[0].command).toMatch(
        /^writ hook codex --agent codex --env dev --config /,
      );
    }
    const check = await runCli(["check", "--config", join(dir, "writ.yaml"), "--json"]);
    expect(check.code, check.stdout).toBe(0);
  });
});
