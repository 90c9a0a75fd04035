import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { quote } from "shell-quote";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { hookCommand } from "../../src/cli/init-hooks.js";
import { assertBuilt, BIN, ROOT, runCli } from "../support/cli.js";
import { claude, gemini, type HookRun, makeProject, type Project, runHookProcess } from "./fixture.js";
import { codex, cursor } from "./tables.js";

const THIN = join(ROOT, "bin", "writ-hook.sh");
const TOKEN = "thin-client-pdp-token";

const exec = runHookProcess;

/** The thin client as `writ init` writes it: by sh with curl, or by bash speaking HTTP itself. */
type Client = (kind: string, input: unknown, env: NodeJS.ProcessEnv, extra?: string[]) => Promise<HookRun>;
const viaCurl: Client = (kind, input, env, extra = []) => exec(["sh", THIN, kind, ...extra], input, env);
const viaBash: Client = (kind, input, env, extra = []) =>
  exec(["bash", "-p", THIN, kind, ...extra], input, env);
const CLIENTS: [string, Client][] = [
  ["sh + curl", viaCurl],
  ["bash on /dev/tcp", viaBash],
];
const thin = viaCurl;
const node = (kind: string, input: unknown, env: NodeJS.ProcessEnv, extra: string[] = []) =>
  exec([process.execPath, BIN, "hook", kind, ...extra], input, env);

let p: Project;
let server: Server;
let http: ReturnType<typeof serve> | undefined;
let base: string;
let dir: string;

/** What a raw server answers to one request (its head and body): bytes to send, or close at once. */
type Answer = (head: string, body: Buffer) => string | "close";
const json = (status: string, body: string, type = "application/json") =>
  `HTTP/1.1 ${status}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
/** Servers that are not writ, each answering one way; `silent` never answers. */
const ANSWERS = {
  page: () => "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 15\r\n\r\n<html>{}</html>",
  silent: undefined,
  short: () =>
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"continue":true}',
  closed: () => "close",
  garbage: () => 'hello there\r\n\r\n{"continue":true}',
  huge: () => json("200 OK", `{"a":"${"x".repeat(70_000)}"}`),
  unsized: () => 'HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{"continue":true}',
  teapot: () =>
    json("418 I'm a teapot", '{"detail":"short and stout","status":418}', "application/problem+json"),
  whole: () => json("200 OK", '{"continue":true}', "Application/JSON; charset=utf-8"),
  // the whole answer, and the connection left open (a server slow to close it)
  lingering: () => json("200 OK", '{"continue":true}'),
  echo: (head: string, body: Buffer) => json("200 OK", JSON.stringify({ head, body: body.toString("utf8") })),
} satisfies Record<string, Answer | undefined>;
const servers = {} as Record<keyof typeof ANSWERS, string>;
const raw: NetServer[] = [];

/**
 * A server on loopback that reads one request (its head, then Content-Length bytes) and answers;
 * `lingering` answers and leaves the connection open until the client closes it.
 */
function rawServer(answer: Answer | undefined, lingering = false): Promise<string> {
  const s = createNetServer((c) => {
    let got = Buffer.alloc(0);
    c.on("error", () => {});
    c.on("data", (d) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf("\r\n\r\n");
      if (end < 0 || answer === undefined) return;
      const head = got.subarray(0, end).toString("latin1");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const body = got.subarray(end + 4);
      if (body.length < length) return;
      const out = answer(head, body);
      if (out === "close") c.destroy();
      else if (lingering) c.write(out);
      else c.end(out);
    });
  });
  raw.push(s);
  return new Promise((resolve) =>
    s.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
  );
}

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
  for (const [name, answer] of Object.entries(ANSWERS)) {
    servers[name as keyof typeof ANSWERS] = await rawServer(answer, name === "lingering");
  }
}, 120_000);

afterAll(async () => {
  http?.close();
  for (const s of raw) s.close();
  await server?.close();
});

const blocked = (r: HookRun, code: string, detail?: RegExp) => {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr.startsWith(`writ hook: ${code}: `), r.stderr).toBe(true);
  if (detail) expect(r.stderr.trimEnd()).toMatch(detail);
};

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
      const b = await node(kind, input(), { ...env(), ...extraEnv }, args);
      for (const [how, client] of CLIENTS) {
        const a = await client(kind, input(), { ...env(), ...extraEnv }, args);
        expect(a.code, `${how}: ${a.stderr}`).toBe(0);
        expect(a, how).toEqual(b);
        expect(a.stdout.endsWith("}\n")).toBe(true);
      }
    });
  }

  for (const [how, client] of CLIENTS) {
    it(`${how}: the cases above cover allow, deny and ask`, async () => {
      const deny = await client(
        "claude-code",
        claude("PreToolUse", "Read", { file_path: p.secret }, p.src),
        env(),
      );
      expect(JSON.parse(deny.stdout).hookSpecificOutput.permissionDecision).toBe("deny");
      const ask = await client(
        "claude-code",
        claude("PreToolUse", "Bash", { command: "npm test" }, p.src),
        env(),
      );
      expect(JSON.parse(ask.stdout).hookSpecificOutput.permissionDecision).toBe("ask");
      const allow = await client(
        "claude-code",
        claude("PreToolUse", "Bash", { command: "ls" }, p.src),
        env(),
        ["--allow-skips-prompt"],
      );
      expect(JSON.parse(allow.stdout).hookSpecificOutput.permissionDecision).toBe("allow");
    });
  }

  it("bash needs no curl and no other process: the answer with an empty PATH", async () => {
    const bash = (await exec(["sh", "-c", "command -v bash"], "", {})).stdout.trim();
    const input = claude("PreToolUse", "Read", { file_path: p.secret }, p.src);
    const r = await exec([bash, "-p", THIN, "claude-code"], input, { ...env(), PATH: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r).toEqual(await node("claude-code", input, env()));
    // and with sh, the same PATH has no curl
    blocked(
      await exec(["/bin/sh", THIN, "claude-code"], input, { ...env(), PATH: dir }),
      "ERR_HOOK_SERVER",
      /curl is not installed/,
    );
  });

  it("bash reaches the server as localhost, and takes a body of any bytes but NUL", async () => {
    const local = { ...env(), WRIT_SERVER: base.replace("127.0.0.1", "localhost") };
    const input = claude(
      "PreToolUse",
      "Write",
      { file_path: "b.ts", content: `é\u2028"\\\r\n${"x".repeat(200_000)}` },
      p.src,
    );
    const a = await viaBash("claude-code", input, local);
    expect(a.code, a.stderr).toBe(0);
    expect(a).toEqual(await node("claude-code", input, env()));
  });
});

describe("the thin hook client fails closed", () => {
  const env = () => ({ WRIT_SERVER: base, WRIT_AGENT: "coder", WRIT_ENV: "dev", WRIT_PDP_TOKEN: TOKEN });
  const ls = () => claude("PreToolUse", "Bash", { command: "ls" }, p.src);

  for (const [how, client] of CLIENTS) {
    it(`${how}: on its own arguments: the kind, the identity, the server's URL, the token`, async () => {
      blocked(await client("aider", ls(), env()), "ERR_HOOK_AGENT_KIND");
      blocked(await client("claude-code", ls(), env(), ["gemini-cli"]), "ERR_HOOK_AGENT_KIND");
      blocked(await client("claude-code", ls(), env(), ["--bogus"]), "ERR_USAGE");
      blocked(await client("claude-code", ls(), env(), ["--agent"]), "ERR_USAGE");
      blocked(await client("claude-code", ls(), { ...env(), WRIT_AGENT: "" }), "ERR_HOOK_IDENTITY");
      blocked(await client("claude-code", ls(), env(), ["--agent", "a&env=prod"]), "ERR_HOOK_IDENTITY");
      blocked(await client("claude-code", ls(), env(), ["--env", "dev x"]), "ERR_HOOK_IDENTITY");
      blocked(await client("claude-code", ls(), env(), ["--agent", "a".repeat(257)]), "ERR_HOOK_IDENTITY");
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_SERVER: "" }),
        "ERR_HOOK_SERVER",
        /no server/,
      );
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_SERVER: "file:///etc/passwd" }),
        "ERR_HOOK_SERVER",
      );
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_SERVER: `${base}/?x=1` }),
        "ERR_HOOK_SERVER",
        /not the http\(s\) URL of a server/,
      );
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_SERVER: base.replace("//", "//u:p@") }),
        "ERR_HOOK_SERVER",
      );
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: `${TOKEN}\r\nX-Other: 1` }),
        "ERR_HOOK_SERVER",
        /WRIT_PDP_TOKEN/,
      );
    });

    it(`${how}: on the server's refusals: a wrong token, an input it cannot read, an unknown route`, async () => {
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: "wrong" }),
        "ERR_HOOK_SERVER",
        /401/,
      );
      blocked(await client("claude-code", ls(), { ...env(), WRIT_PDP_TOKEN: "" }), "ERR_HOOK_SERVER", /401/);
      blocked(
        await client("claude-code", "not json", env()),
        "ERR_HOOK_SERVER",
        /400: the hook input is not JSON/,
      );
      blocked(
        await client("claude-code", { ...ls(), cwd: "relative" }, env()),
        "ERR_HOOK_SERVER",
        /400: cwd: expected an absolute path/,
      );
      blocked(
        await client("claude-code", ls(), { ...env(), WRIT_SERVER: `${base}/nowhere` }),
        "ERR_HOOK_SERVER",
        /404: no route for POST \/nowhere\/hook\/v1\/claude-code\/answer/,
      );
    });

    it(`${how}: when no server answers, when the server is not writ, when it does not answer in time`, async () => {
      const at = (s: string) => ({ ...env(), WRIT_SERVER: s });
      blocked(
        await client("claude-code", ls(), at("http://127.0.0.1:9")),
        "ERR_HOOK_SERVER",
        how === "sh + curl" ? /curl: \(7\)/ : /: cannot connect: Connection refused$/,
      );
      blocked(await client("claude-code", ls(), at(servers.page)), "ERR_HOOK_SERVER", /not a hook answer/);
      const t0 = Date.now();
      blocked(
        await client("claude-code", ls(), at(servers.silent)),
        "ERR_HOOK_SERVER",
        how === "sh + curl" ? /curl: \(28\)/ : /: no answer within 10 s$/,
      );
      expect(Date.now() - t0).toBeGreaterThanOrEqual(9_000);
    }, 60_000);
  }

  it("bash on /dev/tcp: an answer cut short, closed, not HTTP, too large or without its length", async () => {
    const at = (s: string) => ({ ...env(), WRIT_SERVER: s });
    const cases: [string, RegExp][] = [
      [servers.short, /: the server's answer is incomplete$/],
      [servers.closed, /: the server closed the connection without an answer$/],
      [servers.garbage, /: the server's answer is not HTTP$/],
      [servers.huge, /: the server's answer is over 64 KiB$/],
      [servers.unsized, /: the server's answer is not a hook answer$/],
      [servers.teapot, /: the server answered 418: short and stout$/],
    ];
    for (const [s, reason] of cases)
      blocked(await viaBash("claude-code", ls(), at(s)), "ERR_HOOK_SERVER", reason);
    // the same answers complete are taken: what the cases above refuse is only what they lack
    const r = await viaBash("claude-code", ls(), at(servers.whole));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('{"continue":true}\n');
    // an answer is whole at its Content-Length: taken without waiting for the server to close (a
    // client that read to the connection's end would wait here until its 10 s bound, and refuse)
    const open = await viaBash("claude-code", ls(), at(servers.lingering));
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toBe('{"continue":true}\n');
  });

  it("bash on /dev/tcp: a hook input over the server's limit is refused before connecting", async () => {
    const r = await viaBash("claude-code", { ...ls(), pad: "x".repeat(1024 * 1024 + 4096) }, env());
    blocked(r, "ERR_HOOK_SERVER", /the hook input is larger than the server takes/);
  });

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
    await rm(shim);
  });

  it("bash on /dev/tcp: sends the PDP token as a header, in an HTTP/1.0 request of the body's length", async () => {
    const input = JSON.stringify({ ...ls(), note: "é" });
    const r = await viaBash("claude-code", input, { ...env(), WRIT_SERVER: servers.echo });
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { head: string; body: string };
    expect(seen.head.split("\r\n")).toEqual([
      "POST /hook/v1/claude-code/answer?agent=coder&env=dev HTTP/1.0",
      `Host: ${servers.echo.slice("http://".length)}`,
      "Content-Type: application/json",
      `Content-Length: ${Buffer.byteLength(input)}`,
      `Authorization: Bearer ${TOKEN}`,
    ]);
    expect(seen.body).toBe(input);
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
  it("writes the thin client by bash for a plain-http server on loopback (bash on the PATH)", async () => {
    const d = await mkdtemp(join(tmpdir(), "writ-init-thin-"));
    const r = await runCli(["init", "--dir", d, "--agent", "claude-code", "--server", base, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const settings = JSON.parse(await readFile(join(d, ".claude", "settings.json"), "utf8"));
    const command = settings.hooks.PreToolUse[0].hooks[0].command as string;
    // shell-quote escapes the URL's `:`: the same word to the shell
    expect(command).toBe(
      quote(["bash", "-p", THIN, "claude-code", "--server", base, "--agent", "claude-code", "--env", "dev"]),
    );
    expect(command.startsWith(`bash -p ${THIN} claude-code --server `)).toBe(true);
  });

  it("else sh with curl on the PATH, else writ hook with the server", async () => {
    const paths: Record<string, string> = {};
    for (const [name, tools] of Object.entries({
      both: ["bash", "curl"],
      curl: ["curl"],
      bash: ["bash"],
      none: [],
    })) {
      const d = await mkdtemp(join(tmpdir(), `writ-init-path-${name}-`));
      for (const t of tools) {
        await symlink((await exec(["sh", "-c", `command -v ${t}`], "", {})).stdout.trim(), join(d, t));
      }
      paths[name] = d;
    }
    const who = ["--agent", "claude-code", "--env", "dev"];
    const command = (server: string, path: string) =>
      hookCommand(
        "claude-code",
        { agent: "claude-code", environment: "dev", config: "writ.yaml", server },
        path,
      );
    const cases: [string, string, string[]][] = [
      [base, paths.both!, ["bash", "-p", THIN]],
      ["http://[::1]:8080", paths.bash!, ["bash", "-p", THIN]],
      ["http://localhost/writ", paths.both!, ["bash", "-p", THIN]],
      [base, paths.curl!, ["sh", THIN]],
      ["https://127.0.0.1:8443", paths.both!, ["sh", THIN]],
      ["http://10.0.0.5:8080", paths.both!, ["sh", THIN]],
      ["http://127.0.0.1.example:8080", paths.both!, ["sh", THIN]],
      ["https://writ.example", paths.bash!, ["writ", "hook"]],
      [base, paths.none!, ["writ", "hook"]],
    ];
    for (const [server, path, start] of cases) {
      expect(command(server, path), `${server} ${path}`).toBe(
        quote([...start, "claude-code", "--server", server, ...who]),
      );
    }
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
