import { chmod, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { quote } from "shell-quote";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { assertBuilt, BIN, ROOT, runCli } from "../support/cli.js";
import { claude, gemini, type HookRun, makeProject, type Project, runHookProcess } from "./fixture.js";
import { codex, cursor } from "./tables.js";

const THIN = join(ROOT, "bin", "writ-hook.sh");
const TOKEN = "thin-client-pdp-token";

const exec = runHookProcess;

const thin = (kind: string, input: unknown, env: NodeJS.ProcessEnv, extra: string[] = []) =>
  exec(["sh", THIN, kind, ...extra], input, env);
const node = (kind: string, input: unknown, env: NodeJS.ProcessEnv, extra: string[] = []) =>
  exec([process.execPath, BIN, "hook", kind, ...extra], input, env);

let p: Project;
let server: Server;
let http: ReturnType<typeof serve> | undefined;
let base: string;
let dir: string;
/** Servers that are not writ: one answers 200 with a web page, one never answers. */
let page: HttpServer;
let silent: HttpServer;
const listen = (s: HttpServer) =>
  new Promise<string>((resolve) =>
    s.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
  );

beforeAll(async () => {
  assertBuilt();
  p = await makeProject();
  dir = await mkdtemp(join(tmpdir(), "writ-thin-"));
  const { policy, problems } = await loadPolicy(p.config);
  if (!policy) throw new Error(JSON.stringify(problems));
  server = await createServer({ policy, dataDir: join(p.root, "server"), version: "test", pdpToken: TOKEN });
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  page = createHttpServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>{}</html>");
  });
  silent = createHttpServer(() => {});
}, 120_000);

afterAll(async () => {
  http?.close();
  page?.close();
  silent?.closeAllConnections();
  silent?.close();
  await server?.close();
});

describe("the thin hook client answers what writ hook answers", () => {
  const env = () => ({ WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_PDP_TOKEN: TOKEN });
  const cases: [string, string, () => unknown, Record<string, string>, string[]][] = [
    [
      "a Read in the project",
      "claude-code",
      () => claude("PreToolUse", "Read", { file_path: "a.ts" }, p.src),
      {},
      [],
    ],
    [
      "a denied read through a symlink",
      "claude-code",
      () => claude("PreToolUse", "Bash", { command: "cat ../link" }, p.src),
      {},
      [],
    ],
    ["an ask", "claude-code", () => claude("PreToolUse", "Bash", { command: "npm test" }, p.src), {}, []],
    [
      "an allow that skips the prompt (flag)",
      "claude-code",
      () => claude("PreToolUse", "Bash", { command: "ls -la" }, p.src),
      {},
      ["--allow-skips-prompt"],
    ],
    [
      "an allow that skips the prompt (environment)",
      "claude-code",
      () => claude("PreToolUse", "Bash", { command: "ls -la" }, p.src),
      { WRIT_HOOK_ALLOW_SKIPS_PROMPT: "1" },
      [],
    ],
    [
      "a PostToolUse",
      "claude-code",
      () => claude("PostToolUse", "Read", { file_path: "a.ts" }, p.src),
      {},
      [],
    ],
    [
      "Gemini CLI: a deny",
      "gemini-cli",
      () => gemini("BeforeTool", "read_file", { file_path: p.secret }, p.src),
      {},
      [],
    ],
    [
      "Gemini CLI: an ask, answered as a deny",
      "gemini-cli",
      () => gemini("BeforeTool", "run_shell_command", { command: "npm test" }, p.src),
      {},
      [],
    ],
    [
      "Codex CLI: an ask, answered as a deny",
      "codex",
      () => codex("PreToolUse", "Bash", { command: "npm test" }, p.src),
      {},
      [],
    ],
    ["Codex CLI: an allow", "codex", () => codex("PreToolUse", "Bash", { command: "ls" }, p.src), {}, []],
    [
      "Cursor: a denied read",
      "cursor",
      () => cursor("beforeReadFile", { file_path: p.secret, content: "-----BEGIN", attachments: [] }, p.proj),
      {},
      [],
    ],
    [
      "Cursor: a shell command allowed",
      "cursor",
      () => cursor("beforeShellExecution", { command: "ls", cwd: p.src }, p.proj),
      {},
      [],
    ],
  ];
  for (const [what, kind, input, extraEnv, args] of cases) {
    it(what, async () => {
      const a = await thin(kind, input(), { ...env(), ...extraEnv }, args);
      const b = await node(kind, input(), { ...env(), ...extraEnv }, args);
      expect(a.code, a.stderr).toBe(0);
      expect(a).toEqual(b);
      expect(a.stdout.endsWith("}\n")).toBe(true);
    });
  }

  it("the cases above cover allow, deny and ask", async () => {
    const deny = await thin(
      "claude-code",
      claude("PreToolUse", "Read", { file_path: p.secret }, p.src),
      env(),
    );
    expect(JSON.parse(deny.stdout).hookSpecificOutput.permissionDecision).toBe("deny");
    const ask = await thin(
      "claude-code",
      claude("PreToolUse", "Bash", { command: "npm test" }, p.src),
      env(),
    );
    expect(JSON.parse(ask.stdout).hookSpecificOutput.permissionDecision).toBe("ask");
  });
});

describe("the thin hook client fails closed", () => {
  const env = () => ({ WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_PDP_TOKEN: TOKEN });
  const ls = () => claude("PreToolUse", "Bash", { command: "ls" }, p.src);
  const blocked = (r: HookRun, code: string, detail?: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.startsWith(`writ hook: ${code}: `), r.stderr).toBe(true);
    if (detail) expect(r.stderr).toMatch(detail);
  };

  it("on its own arguments: the kind, the identity, the server's URL, the token", async () => {
    blocked(await thin("aider", ls(), env()), "ERR_HOOK_AGENT_KIND");
    blocked(await thin("claude-code", ls(), env(), ["gemini-cli"]), "ERR_HOOK_AGENT_KIND");
    blocked(await thin("claude-code", ls(), env(), ["--bogus"]), "ERR_USAGE");
    blocked(await thin("claude-code", ls(), env(), ["--agent"]), "ERR_USAGE");
    blocked(await thin("claude-code", ls(), { ...env(), WRIT_AGENT: "" }), "ERR_HOOK_IDENTITY");
    blocked(await thin("claude-code", ls(), env(), ["--agent", "a&env=prod"]), "ERR_HOOK_IDENTITY");
    blocked(await thin("claude-code", ls(), env(), ["--env", "dev x"]), "ERR_HOOK_IDENTITY");
    blocked(await thin("claude-code", ls(), env(), ["--agent", "a".repeat(257)]), "ERR_HOOK_IDENTITY");
    blocked(await thin("claude-code", ls(), { ...env(), WRIT_SERVER: "" }), "ERR_HOOK_SERVER", /no server/);
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: "file:///etc/passwd" }),
      "ERR_HOOK_SERVER",
    );
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: `${base}/?x=1` }),
      "ERR_HOOK_SERVER",
      /not the http\(s\) URL of a server/,
    );
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: base.replace("//", "//u:p@") }),
      "ERR_HOOK_SERVER",
    );
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: `${TOKEN}\nX-Other: 1` }),
      "ERR_HOOK_SERVER",
      /WRIT_PDP_TOKEN/,
    );
  });

  it("without curl", async () => {
    const r = await exec(["/bin/sh", THIN, "claude-code"], ls(), { ...env(), PATH: dir });
    blocked(r, "ERR_HOOK_SERVER", /curl is not installed/);
  });

  it("on the server's refusals: a wrong token, an input it cannot read, an unknown route", async () => {
    blocked(await thin("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: "wrong" }), "ERR_HOOK_SERVER", /401/);
    blocked(await thin("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: "" }), "ERR_HOOK_SERVER", /401/);
    blocked(
      await thin("claude-code", "not json", env()),
      "ERR_HOOK_SERVER",
      /400: the hook input is not JSON/,
    );
    blocked(
      await thin("claude-code", { ...ls(), cwd: "relative" }, env()),
      "ERR_HOOK_SERVER",
      /400: cwd: expected an absolute path/,
    );
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: `${base}/nowhere` }),
      "ERR_HOOK_SERVER",
      /404/,
    );
  });

  it("when no server answers, when the server is not writ, when it does not answer in time", async () => {
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: "http://127.0.0.1:9" }),
      "ERR_HOOK_SERVER",
      /curl: \(7\)/,
    );
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: await listen(page) }),
      "ERR_HOOK_SERVER",
      /not a hook answer/,
    );
    const t0 = Date.now();
    blocked(
      await thin("claude-code", ls(), { ...env(), WRIT_SERVER: await listen(silent) }),
      "ERR_HOOK_SERVER",
      /curl: \(28\)/,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9_000);
  }, 60_000);

  it("sends the PDP token as a header and never on curl's command line", async () => {
    // a curl first on the PATH that records its arguments, then runs the real one
    const real = (await exec(["sh", "-c", "command -v curl"], "", {})).stdout.trim();
    const log = join(dir, "argv.log");
    const shim = join(dir, "curl");
    await writeFile(shim, `#!/bin/sh\nprintf '%s\\n' "$@" >> '${log}'\nexec '${real}' "$@"\n`);
    await chmod(shim, 0o755);
    const r = await thin("claude-code", ls(), { ...env(), PATH: `${dir}:${process.env.PATH}` });
    expect(r.code, r.stderr).toBe(0);
    const argv = await readFile(log, "utf8");
    expect(argv).toContain("--url");
    expect(argv).not.toContain(TOKEN);
  });
});

describe("POST /hook/v1/<kind>/answer", () => {
  const post = (query: string, body: string) =>
    server.app.request(`/hook/v1/claude-code/answer?${query}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body,
    });
  const input = () => JSON.stringify(claude("PreToolUse", "Read", { file_path: p.secret }, p.src));

  it("answers the hook's stdout for the hook's JSON", async () => {
    const r = await post("agent=coder&env=dev", input());
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(await r.text()).hookSpecificOutput.permissionDecision).toBe("deny");
  });

  it("refuses a missing or bad identity and a bad allow_skips_prompt with a 400 problem", async () => {
    for (const q of [
      "env=dev",
      "agent=coder",
      "agent=a%20b&env=dev",
      "agent=coder&env=dev&allow_skips_prompt=yes",
    ]) {
      const r = await post(q, input());
      expect(r.status, q).toBe(400);
      expect(r.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect((await r.json()) as { reason: string }).toMatchObject({ reason: "invalid_request" });
    }
  });
});

describe("writ init --agent claude-code --server", () => {
  it("writes the thin client as the hook when curl is on the PATH, else writ hook with the server", async () => {
    const withCurl = await mkdtemp(join(tmpdir(), "writ-init-thin-"));
    const r = await runCli(["init", "--dir", withCurl, "--agent", "claude-code", "--server", base, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const settings = JSON.parse(await readFile(join(withCurl, ".claude", "settings.json"), "utf8"));
    const command = settings.hooks.PreToolUse[0].hooks[0].command as string;
    // shell-quote escapes the URL's `:`: the same word to the shell
    expect(command).toBe(
      quote(["sh", THIN, "claude-code", "--server", base, "--agent", "claude-code", "--env", "dev"]),
    );
    expect(command.startsWith(`sh ${THIN} claude-code --server `)).toBe(true);
    const noCurl = await mkdtemp(join(tmpdir(), "writ-init-thin-"));
    const r2 = await runCli(["init", "--dir", noCurl, "--agent", "claude-code", "--server", base], {
      env: { PATH: noCurl },
    });
    expect(r2.code, r2.stderr).toBe(0);
    const s2 = JSON.parse(await readFile(join(noCurl, ".claude", "settings.json"), "utf8"));
    expect(s2.hooks.PreToolUse[0].hooks[0].command).toBe(
      quote(["writ", "hook", "claude-code", "--server", base, "--agent", "claude-code", "--env", "dev"]),
    );
  });

  it("refuses a server that is not an http(s) URL, and --server for an agent without hooks", async () => {
    const d = await mkdtemp(join(tmpdir(), "writ-init-thin-"));
    for (const args of [
      ["--agent", "claude-code", "--server", "ftp://x"],
      ["--agent", "build-bot", "--server", base],
    ]) {
      const r = await runCli(["init", "--dir", d, ...args, "--json"]);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout + r.stderr)).toMatchObject({ error: { code: "ERR_USAGE" } });
    }
  });
});
