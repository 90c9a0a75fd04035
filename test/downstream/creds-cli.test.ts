/**
 * `writ creds` end to end: the built CLI against a server process with the test system standing in
 * for AWS, GitHub and Kubernetes (serve-test-system.ts), driven the way the tools drive it — the
 * AWS JS SDK's `fromProcess` provider reading `credential_process` from an AWS config file, `git
 * credential fill` with `credential.helper`, kubectl's ExecCredential shape, `gh`'s GH_TOKEN — plus
 * the cache (0600, reused until a minute before expiry, dropped by `erase`), the approval wait
 * (CIBA with a progress line on stderr) and refusals (exit 1 with the broker's reason, no stack).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fromProcess } from "@aws-sdk/credential-provider-process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approverJwt } from "../broker/kit.js";
import { assertBuilt, BIN, ROOT, runCli } from "../support/cli.js";
import { configDir, QUICKSTART_KEYS } from "./fixture.js";
import type { IssuerCall } from "./test-issuer.js";

let dir: string;
let calls: string;
let url: string;
let child: ChildProcess;
let cache: string;
const KEY = join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk");

beforeAll(async () => {
  assertBuilt();
  const made = await configDir();
  dir = made.dir;
  calls = join(dir, "calls.jsonl");
  cache = join(dir, "cache");
  child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "test", "downstream", "serve-test-system.ts"),
      made.file,
      join(dir, "data"),
      calls,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 150_000);
    createInterface({ input: child.stdout! }).once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function issued(): Promise<IssuerCall[]> {
  const text = await readFile(calls, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as IssuerCall)
    .filter((c) => c.op === "issue");
}

/** Runs a program; its stdout, or a rejection with its stderr. */
function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

const common = () => ["--env", "dev", "--server", url, "--key", KEY, "--agent", "release-bot"];
const env = () => ({ WRIT_CACHE_DIR: cache });

describe("writ creds aws", () => {
  it("speaks credential_process: the AWS SDK's fromProcess reads it, and a second run is served from the cache", async () => {
    const awsConfig = join(dir, "aws-config");
    const command = [
      process.execPath,
      BIN,
      "creds",
      "aws",
      "--playbook",
      "fetch",
      "--param",
      "version=v1.2",
      ...common(),
    ]
      .map((a) => JSON.stringify(a))
      .join(" ");
    await writeFile(awsConfig, `[profile writ]\ncredential_process = ${command}\n`);
    const before = (await issued()).length;
    const savedEnv = { file: process.env.AWS_CONFIG_FILE, cache: process.env.WRIT_CACHE_DIR };
    process.env.AWS_CONFIG_FILE = awsConfig;
    process.env.WRIT_CACHE_DIR = cache;
    try {
      const creds = await fromProcess({ profile: "writ" })();
      expect(creds.accessKeyId).toMatch(/^ASIATEST/);
      expect(creds.secretAccessKey.length).toBeGreaterThan(10);
      expect(creds.sessionToken).toBe(`session-${creds.secretAccessKey}`);
      expect(creds.expiration!.getTime()).toBeGreaterThan(Date.now() + 5 * 60_000);
    } finally {
      process.env.AWS_CONFIG_FILE = savedEnv.file;
      process.env.WRIT_CACHE_DIR = savedEnv.cache;
      if (savedEnv.file === undefined) delete process.env.AWS_CONFIG_FILE;
      if (savedEnv.cache === undefined) delete process.env.WRIT_CACHE_DIR;
    }
    expect((await issued()).length).toBe(before + 1);

    const again = await runCli(
      ["creds", "aws", "--playbook", "fetch", "--param", "version=v1.2", ...common()],
      { env: env() },
    );
    expect(again.code, again.stderr).toBe(0);
    const out = JSON.parse(again.stdout) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual([
      "AccessKeyId",
      "Expiration",
      "SecretAccessKey",
      "SessionToken",
      "Version",
    ]);
    expect(out.Version).toBe(1);
    expect(out.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect((await issued()).length).toBe(before + 1); // cached
    for (const f of await readdir(cache)) expect((await stat(join(cache, f))).mode & 0o777).toBe(0o600);
    expect((await stat(cache)).mode & 0o777).toBe(0o700);

    // another parameter is another credential
    const other = await runCli(
      ["creds", "aws", "--playbook", "fetch", "--param", "version=v2", ...common()],
      { env: env() },
    );
    expect(other.code, other.stderr).toBe(0);
    expect((await issued()).length).toBe(before + 2);
  });

  it("--no-cache asks again every time", async () => {
    const before = (await issued()).length;
    for (let i = 0; i < 2; i++) {
      const r = await runCli(
        ["creds", "aws", "--playbook", "fetch", "--param", "version=v3", "--no-cache", ...common()],
        {
          env: env(),
        },
      );
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await issued()).length).toBe(before + 2);
  });
});

describe("writ creds kubectl", () => {
  it("is kubectl's exec credential plugin: kubectl sends the writ's token to the API server", async () => {
    // an API server stand-in over TLS (client-go sends exec credentials over TLS only) that records
    // the bearer token and answers /version
    const key = join(dir, "apiserver.key");
    const cert = join(dir, "apiserver.crt");
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ]);
    const seen: string[] = [];
    const api = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      seen.push(req.headers.authorization ?? "");
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ major: "1", minor: "30", gitVersion: "v1.30.0" }));
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    try {
      const port = (api.address() as { port: number }).port;
      const kubeconfig = join(dir, "kubeconfig");
      await writeFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [
            {
              name: "c",
              cluster: {
                server: `https://127.0.0.1:${port}`,
                "certificate-authority-data": (await readFile(cert)).toString("base64"),
              },
            },
          ],
          users: [
            {
              name: "writ",
              user: {
                exec: {
                  // v1beta1: read by every kubectl (Debian's is 1.20, before v1); writ answers the version asked
                  apiVersion: "client.authentication.k8s.io/v1beta1",
                  command: process.execPath,
                  args: [BIN, "creds", "kubectl", "--playbook", "restart", ...common()],
                  env: [{ name: "WRIT_CACHE_DIR", value: cache }],
                  interactiveMode: "Never",
                },
              },
            },
          ],
          contexts: [{ name: "x", context: { cluster: "c", user: "writ" } }],
          "current-context": "x",
        }),
      );
      const out = await run("kubectl", ["--kubeconfig", kubeconfig, "get", "--raw", "/version"]);
      expect(JSON.parse(out).gitVersion).toBe("v1.30.0");
      expect(seen.length).toBeGreaterThan(0);
      for (const h of seen) expect(h).toMatch(/^Bearer [\w-]{20,}$/);
    } finally {
      api.close();
    }
  });

  it("answers in the ExecCredential version kubectl asks for in KUBERNETES_EXEC_INFO, and refuses others", async () => {
    const ask = (apiVersion: string) =>
      runCli(["creds", "kubectl", "--playbook", "restart", ...common()], {
        env: {
          ...env(),
          KUBERNETES_EXEC_INFO: JSON.stringify({ kind: "ExecCredential", apiVersion, spec: {} }),
        },
      });
    for (const v of ["client.authentication.k8s.io/v1beta1", "client.authentication.k8s.io/v1"]) {
      const r = await ask(v);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).apiVersion).toBe(v);
    }
    const bad = await ask("client.authentication.k8s.io/v1alpha1");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/v1alpha1/);
    expect(bad.stdout).toBe("");
  });

  it("prints a client.authentication.k8s.io/v1 ExecCredential", async () => {
    const r = await runCli(["creds", "kubectl", "--playbook", "restart", ...common()], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { apiVersion: string; kind: string; status: Record<string, string> };
    expect(out.apiVersion).toBe("client.authentication.k8s.io/v1");
    expect(out.kind).toBe("ExecCredential");
    expect(Object.keys(out.status).sort()).toEqual(["expirationTimestamp", "token"]);
    expect(out.status.expirationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

/** `git credential <verb>` with writ as the helper, for `input`. */
function git(verb: string, input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const helper = `!${[process.execPath, BIN, "creds", "git", "--playbook", "push", ...common()].map((a) => `'${a}'`).join(" ")}`;
  return new Promise((resolve, reject) => {
    const p = spawn(
      "git",
      ["-c", "credential.helper=", "-c", `credential.helper=${helper}`, "credential", verb],
      {
        env: {
          ...process.env,
          ...env(),
          GIT_TERMINAL_PROMPT: "0",
          GIT_ASKPASS: "",
          SSH_ASKPASS: "",
          HOME: dir,
        },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input);
  });
}

describe("writ creds git", () => {
  it("answers `git credential fill` for github.com, and `reject` (erase) drops the cache", async () => {
    const before = (await issued()).length;
    const fill = await git("fill", "protocol=https\nhost=github.com\npath=acme/checkout.git\n\n");
    expect(fill.code, fill.stderr).toBe(0);
    const lines = new Map(
      fill.stdout
        .trim()
        .split("\n")
        .map((l) => l.split("=", 2) as [string, string]),
    );
    expect(lines.get("username")).toBe("x-access-token");
    expect(lines.get("password")!.length).toBeGreaterThan(10);
    expect(lines.get("host")).toBe("github.com");
    expect((await issued()).length).toBe(before + 1);

    const again = await git("fill", "protocol=https\nhost=github.com\n\n");
    expect(again.stdout).toContain(`password=${lines.get("password")}`);
    expect((await issued()).length).toBe(before + 1);

    const reject = await git(
      "reject",
      `protocol=https\nhost=github.com\nusername=x-access-token\npassword=${lines.get("password")}\n\n`,
    );
    expect(reject.code, reject.stderr).toBe(0);
    const fresh = await git("fill", "protocol=https\nhost=github.com\n\n");
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).not.toContain(`password=${lines.get("password")}`);
    expect((await issued()).length).toBe(before + 2);
  });

  it("gives nothing to another host or over plain http: git finds no credential", async () => {
    const before = (await issued()).length;
    for (const input of ["protocol=https\nhost=evil.example\n\n", "protocol=http\nhost=github.com\n\n"]) {
      const r = await git("fill", input);
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain("password=");
    }
    expect((await issued()).length).toBe(before);
  });
});

describe("writ creds github", () => {
  it("prints GH_TOKEN, and its export form", async () => {
    const plain = await runCli(["creds", "github", "--playbook", "push", ...common()], { env: env() });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^GH_TOKEN=[\w-]{20,}\n$/);
    const exported = await runCli(["creds", "github", "--playbook", "push", "--export", ...common()], {
      env: env(),
    });
    expect(exported.stdout).toBe(`export ${plain.stdout}`);
  });
});

describe("refusals and approvals", () => {
  it("a refusal exits 1 with the broker's reason, never a stack trace", async () => {
    const r = await runCli(["creds", "aws", "--playbook", "no-such-playbook", ...common()], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^writ: refused \(unknown_playbook\): /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const noGrants = await runCli(["creds", "aws", "--playbook", "restart", ...common()], { env: env() });
    expect(noGrants.code).toBe(1);
    // the first refusal slowed the agent down: the client waited as told, then got its answer
    const last = noGrants.stderr.trim().split("\n").at(-1);
    expect(last).toMatch(/^writ: refused \(downstream_no_grants\): /);
    expect(noGrants.stderr).not.toMatch(/\n\s+at /);
  });

  it("usage errors exit 2: a missing flag, a bad parameter, a missing key file, an unknown tool", async () => {
    for (const args of [
      ["creds", "aws", "--env", "dev", "--server", url, "--key", KEY, "--agent", "release-bot"],
      ["creds", "aws", "--playbook", "fetch", "--param", "no-equals", ...common()],
      [
        "creds",
        "aws",
        "--playbook",
        "fetch",
        "--env",
        "dev",
        "--server",
        url,
        "--key",
        join(dir, "nope.jwk"),
        "--agent",
        "release-bot",
      ],
      ["creds", "gcloud", "--playbook", "fetch", ...common()],
      ["creds", "git", "--playbook", "push", ...common()],
    ]) {
      const r = await runCli(args, { env: env() });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^writ: /);
    }
  });

  it("an unreachable server exits 3", async () => {
    const r = await runCli(
      [
        "creds",
        "aws",
        "--playbook",
        "fetch",
        "--param",
        "version=v1",
        "--env",
        "dev",
        "--server",
        "http://127.0.0.1:9",
        "--key",
        KEY,
        "--agent",
        "release-bot",
      ],
      { env: env() },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^writ: cannot reach/);
  });

  it("plain HTTP to another machine is refused before any request, unless --insecure-http", async () => {
    // 0.0.0.0 is not a loopback name (the SDK allows localhost, 127.x and [::1]); port 9 refuses at once
    const args = [
      "creds",
      "aws",
      "--playbook",
      "fetch",
      "--env",
      "dev",
      "--key",
      KEY,
      "--agent",
      "release-bot",
    ];
    const refused = await runCli([...args, "--server", "http://0.0.0.0:9", "--no-cache"], { env: env() });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(
      /^writ: the server `http:\/\/0\.0\.0\.0:9` is plain HTTP to another machine: .*--insecure-http/,
    );
    const allowed = await runCli([...args, "--server", "http://0.0.0.0:9", "--no-cache", "--insecure-http"], {
      env: env(),
    });
    expect(allowed.code, allowed.stderr).toBe(3);
    expect(allowed.stderr).toMatch(/^writ: cannot reach/);
  });

  it("waits for an approval with a progress line on stderr, then prints the credential", async () => {
    const p = spawn(process.execPath, [BIN, "creds", "kubectl", "--playbook", "guarded", ...common()], {
      env: { ...process.env, ...env() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((r) => p.on("close", r));
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no progress line")), 30_000);
      createInterface({ input: p.stderr }).on("line", (l) => {
        if (l.includes("needs approval")) {
          clearTimeout(timer);
          resolve(l);
        }
      });
    });
    const id = /request (\S+) /.exec(line)![1]!;
    const res = await fetch(`${url}/approvals/${id}/approve?env=dev`, {
      method: "POST",
      headers: { authorization: `Bearer ${await approverJwt(url, "bob@acme.example")}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await exited).toBe(0);
    expect(JSON.parse(stdout).kind).toBe("ExecCredential");
  }, 60_000);
});
