/**
 * writ as a consumer gets it: `npm run build` and `npm pack` in a copy of the repository's files
 * (as a fresh clone has them), the tarball installed into a temporary
 * project, every documented entry point imported, a consumer file type-checked against the
 * `.d.ts`, `npx writ --version`, no private key in the tarball — and the "done when": the
 * installed `writ serve` started on a config with an MCP upstream, and a consumer script that
 * imports `createWritClient` from `writ/client`, gets a writ and calls the gateway with it.
 *
 * Installing: `npm install --offline` cannot resolve the dependencies here (the npm cache holds
 * their tarballs but not the registry's metadata: ENOTCACHED), and npm must never run over
 * symlinks into the repository's node_modules (it deletes through them). So the tarball is
 * unpacked into `node_modules/writ` as npm would, its bin linked into `node_modules/.bin`, and
 * each installed dependency linked package by package (scope folders are real folders) to the
 * repository's node_modules, read-only. What the tarball holds — `files`, `exports`, `bin`, the
 * `.d.ts` — is what is tested.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/cli.js";

const run = promisify(execFile);
const EVERYTHING_BIN = join(
  ROOT,
  "node_modules",
  "@modelcontextprotocol",
  "server-everything",
  "dist",
  "index.js",
);
const KEYS = join(ROOT, "examples", "quickstart", "keys");

/** The entry points docs/library.md documents, and a name each must export. */
const ENTRY_POINTS: Readonly<Record<string, readonly string[]>> = {
  writ: [
    "loadPolicy",
    "loadConfigFile",
    "decide",
    "decisionPoint",
    "createServer",
    "evaluate",
    "scanPaths",
    "sarifReport",
    "verifyExport",
    "createWritClient",
    "WritError",
    "isWritErrorCode",
  ],
  "writ/client": ["createWritClient", "WritRefusal", "isWritRefusal", "importAgentKey", "ERR_CLIENT_REFUSED"],
  "writ/aws": ["evaluate", "parsePolicy", "principalFromArn", "createCatalog", "analyzeUsage"],
  "writ/analyzer": [
    "scanPaths",
    "defaultPlugins",
    "Engine",
    "jsonReport",
    "sarifReport",
    "markdownReport",
    "htmlReport",
    "terminalReport",
  ],
  "writ/gateway": ["createStdioGateway", "isGatewayError", "REFUSAL_META", "MCP_PATH"],
};

let dir: string;
let consumer: string;
let tarball: string;
let listing: string[];

async function linkDependencies(modules: string): Promise<void> {
  const from = join(ROOT, "node_modules");
  for (const name of await readdir(from)) {
    if (name.startsWith(".")) continue;
    if (name.startsWith("@")) {
      await mkdir(join(modules, name), { recursive: true });
      for (const sub of await readdir(join(from, name)))
        await symlink(join(from, name, sub), join(modules, name, sub), "dir");
    } else await symlink(join(from, name), join(modules, name), "dir");
  }
}

/**
 * The repository's files (tracked, and new ones not ignored) copied to `into`, as a fresh clone
 * would have them: the build and the pack run there, so neither a stale `dist/` file nor a build
 * under other tests' feet (they run `dist/`) can change what is tested.
 */
async function cloneInto(into: string): Promise<void> {
  const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const file of stdout.split("\0")) {
    if (file === "" || file.startsWith("test/") || file.startsWith("bench/")) continue;
    const exists = await stat(join(ROOT, file)).catch(() => undefined);
    if (exists === undefined || !exists.isFile()) continue; // deleted in the work tree
    await mkdir(dirname(join(into, file)), { recursive: true });
    await copyFile(join(ROOT, file), join(into, file));
  }
  // the compiler and the types, read from the repository's node_modules (nothing installs here)
  await symlink(join(ROOT, "node_modules"), join(into, "node_modules"), "dir");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-pack-"));
  const clone = join(dir, "clone");
  await cloneInto(clone);
  await run("npm", ["run", "build"], { cwd: clone, timeout: 180_000 });
  const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], {
    cwd: clone,
    timeout: 120_000,
  });
  const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, info[0]!.filename);
  listing = info[0]!.files.map((f) => f.path);

  consumer = join(dir, "consumer");
  const modules = join(consumer, "node_modules");
  await mkdir(join(modules, "writ"), { recursive: true });
  await run("tar", ["-xzf", tarball, "--strip-components=1", "-C", join(modules, "writ")]);
  await linkDependencies(modules);
  await mkdir(join(modules, ".bin"));
  await symlink(join("..", "writ", "bin", "writ.js"), join(modules, ".bin", "writ"));
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { writ: "0.1.0" } }),
  );
}, 360_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  it("holds the bin, the fast paths' bundles the bin requires, and the thin hook client", () => {
    for (const f of [
      "bin/writ.cjs",
      "dist/cli/hook-fast.cjs",
      "dist/cli/creds-fast.cjs",
      "bin/writ-hook.sh",
      "bin/writ-hook-tcp.bash",
    ])
      expect(listing).toContain(f);
  });

  it("holds no private key: no *.private.jwk, and no file with a private JWK member", async () => {
    expect(listing.filter((f) => /private\.jwk$/.test(f))).toEqual([]);
    expect(listing).toContain("examples/quickstart/keys/release-bot.jwks.json");
    const privateJwk = /"d"\s*:\s*"[A-Za-z0-9_-]{20,}"/;
    const holding: string[] = [];
    const root = join(consumer, "node_modules", "writ");
    for (const file of listing) {
      const s = await stat(join(root, file));
      if (s.size > 4_000_000) continue;
      if (privateJwk.test(await readFile(join(root, file), "utf8"))) holding.push(file);
    }
    expect(holding).toEqual([]);
  });

  it("imports every documented entry point", async () => {
    const script = `
      const out = {};
      for (const [spec, names] of Object.entries(${JSON.stringify(ENTRY_POINTS)})) {
        const m = await import(spec);
        out[spec] = names.filter((n) => m[n] === undefined);
      }
      console.log(JSON.stringify(out));`;
    await writeFile(join(consumer, "entries.mjs"), script);
    const r = await run(process.execPath, ["entries.mjs"], { cwd: consumer, timeout: 60_000 });
    const missing = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, string[]>;
    expect(missing).toEqual(Object.fromEntries(Object.keys(ENTRY_POINTS).map((k) => [k, []])));
  }, 60_000);

  it("type-checks a consumer file against the .d.ts (and a misuse fails)", async () => {
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
        },
        include: ["consumer.ts"],
      }),
    );
    const good = `
import { createWritClient, isWritRefusal, type Writ, type WritProgress } from "writ/client";
import { evaluate, parsePolicy, principalFromArn, createCatalog } from "writ/aws";
import { scanPaths, defaultPlugins, sarifReport } from "writ/analyzer";
import { REFUSAL_META, type GatewayReason } from "writ/gateway";
import { loadPolicy, type AuthzenEvaluationRequest, type AuthzenEvaluationResponse, WritError } from "writ";

export async function agent(): Promise<number> {
  const c = createWritClient({ issuer: "http://127.0.0.1:8080/env/dev", agentId: "release-bot", key: "{}" });
  const progress: WritProgress[] = [];
  try {
    const w: Writ = await c.getWrit(
      { playbook: "echo", params: { a: 1 }, resource: "http://127.0.0.1:8080/mcp" },
      { onProgress: (e) => progress.push(e) },
    );
    const res: Response = await c.fetchWithWrit("http://127.0.0.1:8080/mcp", { method: "POST", body: "{}" });
    const until: Date = w.expiresAt;
    return res.status + until.getTime() + (await c.revoke());
  } catch (err) {
    if (isWritRefusal(err)) return err.retryAfter ?? err.status;
    if (err instanceof WritError) return err.code.length;
    throw err;
  }
}

export function aws(): string {
  const d = evaluate(
    { principal: principalFromArn("arn:aws:iam::111122223333:user/a"), action: "s3:GetObject", resource: "arn:aws:s3:::b/k", context: {} },
    { identity: [parsePolicy("identity", "p1", { Version: "2012-10-17", Statement: [] })] },
    { catalog: createCatalog() },
  );
  return d.decision;
}

export async function posture(): Promise<string> {
  return sarifReport(await scanPaths(["."], { plugins: defaultPlugins }));
}

export async function config(): Promise<number> {
  const loaded = await loadPolicy("writ.yaml");
  const ask: AuthzenEvaluationRequest = {
    subject: { type: "agent", id: "a" },
    action: { name: "aws:s3:GetObject" },
    resource: { type: "aws", id: "arn:aws:s3:::b/k" },
    context: { environment: "dev" },
  };
  const answer = (await (await fetch("http://127.0.0.1/access/v1/evaluation", { method: "POST", body: JSON.stringify(ask) })).json()) as AuthzenEvaluationResponse;
  const reason: GatewayReason = "unknown_tool";
  return loaded.problems.length + (answer.decision ? 1 : 0) + reason.length + REFUSAL_META.length;
}
`;
    await writeFile(join(consumer, "consumer.ts"), good);
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const ok = await run(process.execPath, [tsc, "-p", "."], { cwd: consumer, timeout: 120_000 }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(`${ok.stdout}${ok.stderr}`).toBe("");
    // the check can fail: a playbook that is not a string is refused by the declarations
    await writeFile(
      join(consumer, "consumer.ts"),
      `${good}\nexport const bad = createWritClient({ issuer: "x", agentId: "a", key: "{}" }).getWrit({ playbook: 1, resource: "r" });\n`,
    );
    const bad = await run(process.execPath, [tsc, "-p", "."], { cwd: consumer, timeout: 120_000 }).then(
      () => ({ stdout: "" }),
      (e: { stdout: string }) => e,
    );
    expect(bad.stdout).toMatch(/consumer\.ts\(\d+,\d+\): error TS2322/);
  }, 240_000);

  it("runs `npx writ --version`", async () => {
    const r = await run("npx", ["--no-install", "writ", "--version"], { cwd: consumer, timeout: 60_000 });
    expect(r.stdout.trim()).toBe("0.1.0");
  }, 60_000);
});

describe("a consumer project against the installed `writ serve`", () => {
  let server: ChildProcess | undefined;
  afterAll(async () => {
    if (server === undefined || server.exitCode !== null) return;
    server.kill("SIGTERM");
    await new Promise((r) => server!.once("exit", r));
  });

  it("imports createWritClient from writ/client, gets a writ and calls the gateway with it", async () => {
    const cfg = join(dir, "config");
    await mkdir(cfg);
    await writeFile(
      join(cfg, "writ.yaml"),
      `version: 1
environments:
  dev: {}
runnerClasses:
  assist:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "mcp:everything:*"
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Echoes for the package test
    runnerClass: assist
    environments: [dev]
    keys: { file: ${join(KEYS, "release-bot.jwks.json")} }
    tools: ["everything:echo"]
    playbooks: [echo]
playbooks:
  echo:
    description: Echo a message through the gateway
    risk: low
    environments: [dev]
    grants:
      - action: "mcp:everything:echo"
        resource: "-"
    ttl: 10m
    maxUses: 5
    ticket: none
gateway:
  upstreams:
    everything:
      command: ${process.execPath}
      args: ["${EVERYTHING_BIN}", "stdio"]
`,
    );
    const bin = join(consumer, "node_modules", "writ", "bin", "writ.cjs");
    const child = spawn(
      process.execPath,
      [
        bin,
        "serve",
        "--config",
        join(cfg, "writ.yaml"),
        "--port",
        "0",
        "--data",
        join(dir, "data"),
        "--json",
      ],
      { cwd: consumer, stdio: ["ignore", "pipe", "pipe"] },
    );
    server = child;
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
      createInterface({ input: child.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { listening: string }).listening);
      });
      child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });

    await writeFile(
      join(consumer, "agent.mjs"),
      `import { readFile } from "node:fs/promises";
import { createWritClient, isWritRefusal } from "writ/client";

const [base, keyFile] = process.argv.slice(2);
const mcp = base + "/mcp";
const client = createWritClient({ issuer: base + "/env/dev", agentId: "release-bot", key: await readFile(keyFile, "utf8") });
const call = (id) =>
  client.fetchWithWrit(mcp, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "everything__echo", arguments: { message: "hello from a consumer" } } }),
  });
let refused;
try {
  await client.getWrit({ playbook: "no-such-playbook", resource: mcp });
} catch (err) {
  refused = isWritRefusal(err) ? err.reason : String(err);
}
const writ = await client.getWrit({ playbook: "echo", resource: mcp }, { onProgress: () => {} });
const res = await call(1);
const body = await res.json();
const again = await client.getWrit({ playbook: "echo", resource: mcp });
console.log(JSON.stringify({ refused, writ: writ.id, reused: again.id === writ.id, status: res.status, result: body.result }));
`,
    );
    const r = await run(
      process.execPath,
      ["agent.mjs", base, join(KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk")],
      {
        cwd: consumer,
        timeout: 60_000,
      },
    );
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
      refused: string;
      writ: string;
      reused: boolean;
      status: number;
      result: { content: { type: string; text: string }[]; isError?: boolean };
    };
    expect(out.refused).toBe("unknown_playbook");
    expect(out.writ).toMatch(/^writ_/);
    expect(out.reused).toBe(true);
    expect(out.status).toBe(200);
    expect(out.result.isError ?? false).toBe(false);
    expect(out.result.content[0]!.text).toContain("hello from a consumer");
  }, 120_000);
});
