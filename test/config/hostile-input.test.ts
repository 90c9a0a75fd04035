/**
 * Issue 10, item 5: `writ check` ends in a list of coded problems, never in ERR_INTERNAL or a hang,
 * whatever writ.yaml and the files it names hold. Each named case runs through the CLI (exit code
 * and code) and its neighbours through the library.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { type ConfigProblem, loadConfigFile } from "../../src/config/index.js";
import { cedar } from "../../src/pdp/cedar.js";
import { ROOT, runCli } from "../support/cli.js";

let dir: string;
let base: string;
let socket: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-hostile-"));
  await cp(join(ROOT, "examples", "quickstart"), dir, { recursive: true });
  base = await readFile(join(dir, "writ.yaml"), "utf8");
  execFileSync("mkfifo", [join(dir, "fifo")]);
  await mkdir(join(dir, "a-directory"));
  await symlink("loop-b", join(dir, "loop-a"));
  await symlink("loop-a", join(dir, "loop-b"));
  socket = createServer();
  await new Promise<void>((done) => socket.listen(join(dir, "socket"), done));
});

afterAll(async () => {
  await new Promise((done) => socket.close(done));
  await rm(dir, { recursive: true, force: true });
});

/** writ.yaml of the quickstart with one replacement, written beside its keys and guardrails. */
async function variant(name: string, from: string, to: string): Promise<string> {
  expect(base).toContain(from);
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, base.replace(from, to));
  return file;
}

const GUARDRAIL = "file: guardrails.cedar";
const DEV_DESCRIPTION = "description: Development cluster and the sandbox AWS account";
const KEY = "file: keys/release-bot.jwks.json";
const BASELINE_RESOURCE = 'resource: "/srv/reports/*"\n    tools';

interface CheckJson {
  ok: boolean;
  problems: ConfigProblem[];
}

async function check(file: string): Promise<{ code: number; out?: CheckJson; error?: { code: string } }> {
  const r = await runCli(["check", "--config", file, "--json"]);
  if (r.code === 2)
    return { code: r.code, error: (JSON.parse(r.stderr) as { error: { code: string } }).error };
  expect(r.stderr).not.toContain("ERR_INTERNAL");
  return { code: r.code, out: JSON.parse(r.stdout) as CheckJson };
}

function errors(problems: readonly ConfigProblem[]): { code: string; path: string }[] {
  return problems.filter((p) => p.severity === "error").map((p) => ({ code: p.code, path: p.path }));
}

describe("writ check on hostile input (CLI)", () => {
  it("a 10,000-character pattern is a pattern error, not a stack overflow", async () => {
    const file = await variant(
      "long-pattern",
      BASELINE_RESOURCE,
      `resource: "/srv/reports/${"a".repeat(10_000)}"\n    tools`,
    );
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(errors(r.out!.problems)).toEqual([
      { code: "ERR_CONFIG_PATTERN", path: "agents.cost-analyst.baseline[4].resource" },
    ]);
    expect(r.out!.problems[0]!.message).toContain("at most 4096");
  });

  it("a guardrail nested 2,000 parentheses deep is refused with its position", async () => {
    const deep = `forbid (principal, action, resource)\nwhen { ${"(".repeat(2000)}true${")".repeat(2000)} };\n`;
    await writeFile(join(dir, "deep.cedar"), deep);
    const r = await check(await variant("deep-guardrail", GUARDRAIL, "file: deep.cedar"));
    expect(r.code).toBe(1);
    // the brace of `when` is the first level: the 32nd parenthesis is the 33rd
    expect(r.out!.problems).toMatchObject([
      { code: "ERR_CEDAR_TOO_DEEP", file: join(dir, "deep.cedar"), line: 2, column: 8 + 31 },
    ]);
  });

  it.each([
    ["a FIFO", "fifo"],
    ["/dev/zero", "/dev/zero"],
    ["a directory", "a-directory"],
    ["a socket", "socket"],
  ])("a guardrail file that is %s is refused at once", async (_, target) => {
    const r = await check(
      await variant(`guardrail-${target.replace(/\W/g, "")}`, GUARDRAIL, `file: ${target}`),
    );
    expect(r.code).toBe(1);
    expect(errors(r.out!.problems)).toEqual([{ code: "ERR_CONFIG_NOT_FILE", path: "guardrails[0].file" }]);
  });

  it.each([
    ["a FIFO", "fifo"],
    ["/dev/zero", "/dev/zero"],
    ["a directory", "a-directory"],
  ])("a key file that is %s is refused at once", async (_, target) => {
    const r = await check(await variant(`keys-${target.replace(/\W/g, "")}`, KEY, `file: ${target}`));
    expect(r.code).toBe(1);
    expect(errors(r.out!.problems)).toEqual([
      { code: "ERR_CONFIG_NOT_FILE", path: "agents.release-bot.keys.file" },
    ]);
  });

  it.each([
    ["a FIFO", "fifo", "ERR_CONFIG_NOT_FILE"],
    ["/dev/zero", "/dev/zero", "ERR_CONFIG_NOT_FILE"],
    ["a directory", "a-directory", "ERR_CONFIG_NOT_FILE"],
    ["a symlink loop", "loop-a", "ERR_CONFIG_FILE"],
  ])("writ.yaml that is %s is an input error (exit 2)", async (_, target, code) => {
    const r = await check(target.startsWith("/") ? target : join(dir, target));
    expect(r).toEqual({ code: 2, error: expect.objectContaining({ code }) });
  });

  it("writ.yaml over 4 MiB is an input error (exit 2)", async () => {
    const file = join(dir, "huge.yaml");
    await writeFile(file, `${base}\n# ${"x".repeat(4 * 1024 * 1024)}\n`);
    expect(await check(file)).toEqual({
      code: 2,
      error: expect.objectContaining({ code: "ERR_CONFIG_TOO_LARGE" }),
    });
  });
});

describe("a Cedar failure does not break Cedar for the process", () => {
  it("after a 2,000-deep guardrail, the next check in the same process works", async () => {
    const deep = await loadPolicy(await variant("deep-inline", GUARDRAIL, "file: deep.cedar"));
    expect(errors(deep.problems)).toEqual([{ code: "ERR_CEDAR_TOO_DEEP", path: "guardrails[0]" }]);
    const normal = await loadPolicy(join(dir, "writ.yaml"));
    expect(normal.problems).toEqual([]);
    expect(normal.policy?.guardrails?.policies.length).toBeGreaterThan(0);
  });

  it("when Cedar itself traps, the instance is replaced and pre-parsed guardrails still decide", async () => {
    const before = await loadPolicy(join(dir, "writ.yaml"));
    const guardrails = before.policy!.guardrails!;
    const request = {
      agent: "ops-assistant",
      action: "mcp:pagerduty:add_note",
      resource: "INC-1",
      environment: "prod",
      now: new Date("2026-01-07T10:00:00Z"),
      context: { tainted: true },
    };
    expect(guardrails.evaluate(request)).toMatchObject({ kind: "forbid" });
    // past writ's own depth check, straight into Cedar: its stack runs out
    const restarts = cedar.restarts();
    expect(() =>
      cedar.policySetTextToParts(
        `forbid (principal, action, resource) when { ${"(".repeat(2000)}true${")".repeat(2000)} };`,
      ),
    ).toThrowError(expect.objectContaining({ code: "ERR_CEDAR_ENGINE" }));
    expect(cedar.restarts()).toBe(restarts + 1);
    expect(guardrails.evaluate(request)).toMatchObject({ kind: "forbid" });
    expect(guardrails.evaluate({ ...request, context: { tainted: false } })).toEqual({ kind: "pass" });
    const after = await loadPolicy(join(dir, "writ.yaml"));
    expect(after.problems).toEqual([]);
  });

  it("chains of operators and deep syntax trees are refused before validation", async () => {
    const chain = (n: number, op: string) =>
      Array.from({ length: n }, () => "context.tainted").join(` ${op} `);
    const cases: [string, string][] = [
      [`forbid (principal, action, resource) when { ${chain(200, "&&")} };`, "operators along one path"],
      [`forbid (principal, action, resource) when { ${chain(60, "||")} };`, "levels deep"],
      [
        `forbid (principal, action, resource) when { context.arguments${".a".repeat(100)} == 1 };`,
        "levels deep",
      ],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      await writeFile(join(dir, `chain-${i}.cedar`), text);
      const r = await loadPolicy(await variant(`chain-${i}`, GUARDRAIL, `file: chain-${i}.cedar`));
      expect(r.problems, text.slice(0, 80)).toMatchObject([
        { code: "ERR_CEDAR_TOO_DEEP", message: expect.stringContaining(message) },
      ]);
    }
    // a real allow-list of 30 alternatives is well inside the limits
    const allowList = Array.from({ length: 30 }, (_, i) => `context.arguments.note like "*${i}*"`).join(
      " || ",
    );
    await writeFile(join(dir, "allow.cedar"), `forbid (principal, action, resource) when { ${allowList} };`);
    const ok = await loadPolicy(await variant("allow-list", GUARDRAIL, "file: allow.cedar"));
    expect(errors(ok.problems)).toEqual([]);
  });
});

describe("neighbouring cases (library)", () => {
  async function load(name: string, from: string, to: string): Promise<{ code: string; path: string }[]> {
    return errors((await loadConfigFile(await variant(name, from, to))).problems);
  }

  it("a symlink loop as a key file", async () => {
    expect(await load("keys-loop", KEY, "file: loop-a")).toEqual([
      { code: "ERR_CONFIG_KEYS", path: "agents.release-bot.keys.file" },
    ]);
  });

  it("guardrail and key files that are not UTF-8, or hold a NUL, are refused; a BOM is dropped", async () => {
    await writeFile(join(dir, "latin1.cedar"), Buffer.from([0x2f, 0x2f, 0x20, 0xe9, 0x0a]));
    expect(await load("latin1", GUARDRAIL, "file: latin1.cedar")).toEqual([
      { code: "ERR_CONFIG_ENCODING", path: "guardrails[0].file" },
    ]);
    await writeFile(join(dir, "nul.cedar"), "// a\u0000b\n");
    expect(await load("nul-guardrail", GUARDRAIL, "file: nul.cedar")).toEqual([
      { code: "ERR_CONFIG_ENCODING", path: "guardrails[0].file" },
    ]);
    const guardrails = await readFile(join(dir, "guardrails.cedar"), "utf8");
    await writeFile(join(dir, "bom.cedar"), `\uFEFF${guardrails}`);
    const keys = await readFile(join(dir, "keys", "release-bot.jwks.json"), "utf8");
    await writeFile(join(dir, "keys", "bom.jwks.json"), `\uFEFF${keys}`);
    const withBom = base.replace(GUARDRAIL, "file: bom.cedar").replace(KEY, "file: keys/bom.jwks.json");
    await writeFile(join(dir, "bom.yaml"), `\uFEFF${withBom}`);
    const policy = await loadPolicy(join(dir, "bom.yaml"));
    expect(policy.problems).toEqual([]);
  });

  it("guardrails over 4 MiB together, in files each under the cap", async () => {
    const chunk = `// ${"x".repeat(1000 * 1024)}\n`;
    const files = Array.from({ length: 5 }, (_, i) => `part-${i}.cedar`);
    for (const f of files) await writeFile(join(dir, f), chunk);
    const list = files.map((f) => `  - file: ${f}`).join("\n");
    expect(await load("many-guardrails", `guardrails:\n  - ${GUARDRAIL}`, `guardrails:\n${list}`)).toEqual([
      { code: "ERR_CONFIG_TOO_LARGE", path: "guardrails[4].file" },
    ]);
  });

  it("a key set of more than 100 keys", async () => {
    const keys = JSON.parse(await readFile(join(dir, "keys", "release-bot.jwks.json"), "utf8")) as {
      keys: unknown[];
    };
    await writeFile(
      join(dir, "keys", "many.jwks.json"),
      JSON.stringify({ keys: Array(101).fill(keys.keys[0]) }),
    );
    expect(await load("many-keys", KEY, "file: keys/many.jwks.json")).toEqual([
      { code: "ERR_CONFIG_KEYS", path: "agents.release-bot.keys.file" },
    ]);
  });

  it("brackets and operators inside strings and comments do not count towards the depth", async () => {
    const text = `// ${"(".repeat(200)}\nforbid (principal, action, resource) when { context.arguments has note && context.arguments.note like "${"(&&.".repeat(200)}*" };\n`;
    await writeFile(join(dir, "quoted.cedar"), text);
    const r = await loadPolicy(await variant("quoted", GUARDRAIL, "file: quoted.cedar"));
    expect(errors(r.problems)).toEqual([]);
  });

  it("a guardrail file over 1 MiB", async () => {
    await writeFile(join(dir, "big.cedar"), `// ${"x".repeat(1024 * 1024)}\n`);
    expect(await load("big-guardrail", GUARDRAIL, "file: big.cedar")).toEqual([
      { code: "ERR_CONFIG_TOO_LARGE", path: "guardrails[0].file" },
    ]);
  });

  it("control characters in writ.yaml: raw ones with their position, escaped ones with their path", async () => {
    const raw = await loadConfigFile(await variant("nul-raw", "purpose: Weekly", "purpose: Week\u0000ly"));
    const line = base.slice(0, base.indexOf("purpose: Weekly")).split("\n").length;
    const column = base.split("\n")[line - 1]!.indexOf("purpose: Weekly") + "purpose: Week".length + 1;
    expect(raw.problems).toMatchObject([{ code: "ERR_CONFIG_ENCODING", line, column }]);
    expect(await load("nul-escaped", "purpose: Weekly cost", 'purpose: "Weekly\\0 cost"\n    x: 1')).toEqual([
      { code: "ERR_CONFIG_VALUE", path: "agents.cost-analyst.purpose" },
    ]);
  });

  it("nesting past 64 levels, an alias that holds itself and the billion laughs", async () => {
    const nested = `${"[".repeat(70)}1${"]".repeat(70)}`;
    const deep = await load("deep-yaml", DEV_DESCRIPTION, `description: ${nested}`);
    expect(deep.map((p) => p.code)).toEqual(["ERR_CONFIG_TOO_DEEP"]);
    const deeper = await load(
      "deeper-yaml",
      DEV_DESCRIPTION,
      `description: ${"[".repeat(5000)}${"]".repeat(5000)}`,
    );
    expect(deeper.map((p) => p.code)).toContain("ERR_CONFIG_TOO_DEEP");
    const self = await load("self-alias", DEV_DESCRIPTION, "description: &x [*x]");
    expect(self.map((p) => p.code)).toEqual(["ERR_CONFIG_TOO_DEEP"]);
    const laughs = Array.from(
      { length: 9 },
      (_, i) => `  l${i + 1}: &l${i + 1} [${Array(9).fill(`*l${i}`).join(", ")}]`,
    ).join("\n");
    const bomb = await load("laughs", "version: 1\n", `version: 1\nx-laughs:\n  l0: &l0 lol\n${laughs}\n`);
    expect(bomb).toEqual([{ code: "ERR_CONFIG_YAML", path: "" }]);
  });

  it("numbers out of range", async () => {
    expect(await load("ttl-number", "ttl: 20m", "ttl: 1e308")).toEqual([
      { code: "ERR_CONFIG_DURATION", path: "playbooks.deploy-service.ttl" },
    ]);
    expect(await load("ttl-huge", "ttl: 20m", "ttl: 99999999999999999999d")).toEqual([
      { code: "ERR_CONFIG_DURATION", path: "playbooks.deploy-service.ttl" },
    ]);
    expect(await load("ttl-negative", "ttl: 20m", "ttl: -5m")).toEqual([
      { code: "ERR_CONFIG_DURATION", path: "playbooks.deploy-service.ttl" },
    ]);
    for (const [i, uses] of ["1e308", "-1", "0.5", "2147483648"].entries()) {
      expect(await load(`uses-${i}`, "maxUses: 10", `maxUses: ${uses}`)).toEqual([
        { code: "ERR_CONFIG_VALUE", path: "playbooks.deploy-service.maxUses" },
      ]);
    }
  });

  it("duplicate keys, each reported", async () => {
    const r = await loadConfigFile(
      await variant("dup", DEV_DESCRIPTION, "description: a\n    description: b"),
    );
    expect(r.problems).toMatchObject([{ code: "ERR_CONFIG_YAML", line: 8, column: 5 }]);
  });

  it("2,000 agents, each with an unknown runner class, are all reported", async () => {
    const agents = Array.from(
      { length: 2000 },
      (_, i) =>
        `  bot-${i}:\n    owner: o\n    purpose: p\n    runnerClass: analyts\n    environments: [dev]\n`,
    ).join("");
    const r = await loadConfigFile(await variant("many", "agents:\n", `agents:\n${agents}`));
    expect(r.problems.filter((p) => p.code === "ERR_CONFIG_UNKNOWN_REF")).toHaveLength(2000);
  });
});
