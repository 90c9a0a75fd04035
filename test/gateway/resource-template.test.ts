/**
 * Resource templates and the gateway's bounds, below the transport: templates are checked at load
 * (coded problems with line, column and the character), derived from arguments at call time
 * (typed resources, arrays expanded, absent arguments refused unless optional, values escaped so
 * they cannot widen a grant), and path globs where `*` stays inside one directory.
 */
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/index.js";
import { globMatches, parseGlob, type ResourceTemplate } from "../../src/core/index.js";
import { boundsCheck, parsePathGlob, pathGlobMatches } from "../../src/gateway/bounds.js";
import { deriveResources, isGatewayError } from "../../src/gateway/index.js";
import { ROOT } from "../support/cli.js";
import { configHead } from "./support.js";

const BASE = `${configHead('        - action: "mcp:*:*"')}
agents: {}
playbooks: {}
`;

async function load(gateway: string) {
  return loadConfigText(`${BASE}gateway:\n${gateway}`, { file: "writ.yaml" });
}

async function templates(...sources: string[]): Promise<ResourceTemplate[]> {
  const list = sources.map((s) => `          - ${JSON.stringify(s)}`).join("\n");
  const r = await load(
    `  upstreams:\n    t:\n      command: x\n      tools:\n        tool:\n          resource:\n${list}\n`,
  );
  if (!r.config) throw new Error(JSON.stringify(r.problems));
  return r.config.gateway!.upstreams.get("t")!.tools.get("tool")!.resources as ResourceTemplate[];
}

async function derive(sources: string[], args: Record<string, unknown>): Promise<string[]> {
  return deriveResources(await templates(...sources), args);
}

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isGatewayError(err)) return err.reason;
    throw err;
  }
  return "allowed";
}

let dir: string;
beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-tpl-")));
  await mkdir(join(dir, "root", "a", "b"), { recursive: true });
  await writeFile(join(dir, "root", "a", "b", "c.pem"), "x");
  await symlink(join(dir, "root", "a"), join(dir, "alias"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("templates at load", () => {
  it("accepts the documented forms", async () => {
    const r = await load(`  upstreams:
    jira:
      url: https://jira.example/mcp
      resource: "jira:site/acme"
      trustNewTools: true
      tools:
        create_issue: { resource: "jira:project/{key|split('-')[0]}" }
        get: { resource: "jira:project/{issue.key?|split('-')[0]|lower}" }
        send: { resource: ["mail:{to[*]|domain}", "file:{attachments[*].path|path('/srv')}", "web:{url|host}"] }
        pr: { resource: "github:{repo|repository}" }
        old: { resource: { from: path, as: path } }
`);
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
    const jira = r.config!.gateway!.upstreams.get("jira")!;
    expect(jira.resources.map((t) => t.source)).toEqual(["jira:site/acme"]);
    expect(jira.trustNewTools).toBe(true);
  });

  it("loads the examples of docs/gateway.md for common MCP servers", async () => {
    const md = await readFile(join(ROOT, "docs", "gateway.md"), "utf8");
    const block = /```yaml\n(upstreams:\n {2}filesystem:[\s\S]*?)```/.exec(md)?.[1];
    expect(block).toBeDefined();
    const r = await loadConfigText(
      `${BASE}approverGroups:\n  sre:\n    members: [alice@acme.example]\ngateway:\n${block!.replace(/^/gm, "  ")}`,
      { file: "writ.yaml" },
    );
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
    const k8s = r.config!.gateway!.upstreams.get("kubernetes")!.tools.get("resources_get")!;
    expect(
      await deriveResources(k8s.resources, { namespace: "prod", kind: "Deployment", name: "web" }),
    ).toEqual(["k8s:prod/deployment/web"]);
  });

  it("refuses a broken template with a code, the line and the character", async () => {
    const cases: [string, string][] = [
      ["jira:{key", "expected `|`, `?` or `}`"],
      ["jira:{key|split('-')}", "ends with a list"],
      ["jira:{key|index(0)}", "picks from a list"],
      ["jira:{key|upper}", "unknown filter"],
      ["jira:{a[*]}/{b[*]}", "one array"],
      ["jira:}", "unmatched"],
      ["jira:{key|path('rel')}", "must be absolute"],
      ["jira:{}", "expected an argument name"],
    ];
    for (const [source, message] of cases) {
      const r = await load(
        `  upstreams:\n    t:\n      command: x\n      tools:\n        tool: { resource: ${JSON.stringify(source)} }\n`,
      );
      const p = r.problems.find((x) => x.code === "ERR_CONFIG_GATEWAY_TEMPLATE");
      expect(p, source).toBeDefined();
      expect(p!.message, source).toContain(message);
      expect(p!.message).toMatch(/at character \d+/);
      expect(p!.line).toBe(17);
      expect(p!.path).toBe("gateway.upstreams.t.tools.tool.resource");
    }
  });

  it("refuses a taint that would end at once", async () => {
    const r = await load("  taintTtl: 10s\n  upstreams: {}\n");
    expect(r.problems.map((p) => [p.code, p.path])).toContainEqual(["ERR_CONFIG_VALUE", "gateway.taintTtl"]);
  });

  it("refuses bad bounds", async () => {
    const r = await load(
      `  bounds:\n    roots: ["rel/dir", "/srv/*"]\n    hosts: ["a/b"]\n    deny: ["*.pem"]\n  upstreams: {}\n`,
    );
    expect(r.problems.filter((p) => p.code === "ERR_CONFIG_GATEWAY_BOUNDS").map((p) => p.path)).toEqual([
      "gateway.bounds.roots[0]",
      "gateway.bounds.roots[1]",
      "gateway.bounds.hosts[0]",
      "gateway.bounds.deny[0]",
    ]);
  });
});

describe("templates at call time", () => {
  it("maps arguments to typed resources", async () => {
    expect(await derive(["jira:project/{key|split('-')[0]}"], { key: "OPS-123" })).toEqual([
      "jira:project/OPS",
    ]);
    expect(
      await derive(["k8s:{namespace}/{kind}/{name}"], { namespace: "prod", kind: "pods", name: "web-1" }),
    ).toEqual(["k8s:prod/pods/web-1"]);
    expect(await derive(["sql:warehouse"], {})).toEqual(["sql:warehouse"]);
    expect(await derive(["gh:{repo|repository}"], { repo: "Acme/Web" })).toEqual(["gh:acme/web"]);
    expect(await derive(["web:{url|host}"], { url: "https://Docs.Acme.example./x" })).toEqual([
      "web:docs.acme.example",
    ]);
    expect(await derive(["x:{a.b[1].c|lower}"], { a: { b: [{}, { c: "HI" }] } })).toEqual(["x:hi"]);
    expect(await derive(["n:{n}"], { n: 42 })).toEqual(["n:42"]);
  });

  it("expands arrays, several resources per call, each decided", async () => {
    const r = await derive(["mail:{to[*]|domain}", "file:{attachments[*].path|path}"], {
      to: ["a@acme.example", "b@evil.example"],
      attachments: [{ path: join(dir, "alias", "b", "c.pem") }],
    });
    expect(r).toEqual([
      "mail:acme.example",
      "mail:evil.example",
      `file:${join(dir, "root", "a", "b", "c.pem")}`,
    ]);
    expect(await derive(["mail:{to[*]|domain}"], { to: [] })).toEqual([]);
  });

  it("fails closed on an absent argument unless it is optional", async () => {
    expect(await refused(derive(["k8s:{namespace}/{name}"], { name: "x" }))).toBe("resource_invalid");
    expect(await refused(derive(["k8s:{namespace}/{name}"], { namespace: null, name: "x" }))).toBe(
      "resource_invalid",
    );
    expect(await derive(["file:{attachments[*].path?|path}"], {})).toEqual([]);
  });

  it("refuses values that cannot be mapped", async () => {
    for (const [tpl, args] of [
      ["k8s:{ns}", { ns: { a: 1 } }],
      ["k8s:{ns}", { ns: ["a"] }],
      ["k8s:{ns}", { ns: "" }],
      ["k8s:{ns}", { ns: ".." }],
      ["k8s:{ns.a}", { ns: "str" }],
      ["j:{key|split('-')[3]}", { key: "A-1" }],
      ["mail:{to|domain}", { to: "a@b.example, c@d.example" }],
      ["x:{v}", { v: "x".repeat(2000) }],
      ["x:{v}", { v: Number.NaN }],
      ["x:{v|split(',')[0]}", { v: "a,".repeat(40_000) }],
    ] as const) {
      expect(
        await refused(derive([tpl], args as Record<string, unknown>)),
        `${tpl} ${JSON.stringify(args)}`,
      ).toBe("resource_invalid");
    }
  });

  it("escapes values so they cannot widen the grant they are matched against", async () => {
    const r = async (ns: string) =>
      (await derive(["k8s:{namespace}/pods/{name}"], { namespace: ns, name: "x" }))[0];
    expect(await r("*")).toBe("k8s:%2A/pods/x");
    expect(await r("../kube-system")).toBe("k8s:..%2Fkube-system/pods/x");
    expect(await r("prod/secrets/y")).toBe("k8s:prod%2Fsecrets%2Fy/pods/x");
    expect(await r("a|b")).toBe("k8s:a%7Cb/pods/x");
    expect(await r("a\\*?")).toBe("k8s:a%5C%2A%3F/pods/x");
    expect(await r("50%")).toBe("k8s:50%25/pods/x");
    // the `__proto__` of the arguments is not an argument
    expect(await refused(derive(["x:{constructor}"], {}))).toBe("resource_invalid");
  });
});

describe("no value widens a grant (property)", () => {
  it("`k8s:{namespace}/pods/{name}` is inside `k8s:prod/*` exactly when namespace is `prod`", async () => {
    const [t] = await templates("k8s:{namespace}/pods/{name}");
    const grant = parseGlob("k8s:prod/*");
    const exact = parseGlob("k8s:prod/pods/web");
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string(), fc.constantFrom("prod", "prod/x", "*", "prod/..", "prod*", "pro?", "prod|x")),
        fc.oneof(fc.string(), fc.constantFrom("web", "web/x", "*", "w?b")),
        async (namespace, name) => {
          let resources: string[];
          try {
            resources = await deriveResources([t!], { namespace, name });
          } catch (err) {
            if (isGatewayError(err) && err.reason === "resource_invalid") return; // refused: fine
            throw err;
          }
          expect(resources).toHaveLength(1);
          expect(globMatches(grant, resources[0]!)).toBe(namespace === "prod");
          expect(globMatches(exact, resources[0]!)).toBe(namespace === "prod" && name === "web");
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("bounds", () => {
  it("path globs: `*` stays in one directory, `**` crosses", () => {
    const m = (g: string, v: string) => pathGlobMatches(parsePathGlob(g), v);
    expect(m("/srv/*.pem", "/srv/a.pem")).toBe(true);
    expect(m("/srv/*.pem", "/srv/a/b.pem")).toBe(false);
    expect(m("/srv/**/*.pem", "/srv/a.pem")).toBe(true);
    expect(m("/srv/**/*.pem", "/srv/a/b/c.pem")).toBe(true);
    expect(m("**/.ssh/**", "/home/u/.ssh/id_rsa")).toBe(true);
    expect(m("**/.ssh/**", "/home/u/.sshx/id_rsa")).toBe(false);
    expect(m("/srv/?", "/srv/a")).toBe(true);
    expect(m("/srv/?", "/srv//")).toBe(false);
    expect(m("/etc/**", "/etc")).toBe(false);
    expect(m("/a/\\*", "/a/*")).toBe(true);
    expect(m("/a/\\*", "/a/b")).toBe(false);
    // no exponential blow-up on hostile input
    expect(m("/*a*a*a*a*a*a*a*a*b", `/${"a".repeat(5000)}`)).toBe(false);
  });

  it("roots, denied globs, hosts and domains", async () => {
    const check = await boundsCheck({
      roots: [join(dir, "alias")],
      deny: ["**/*.pem"],
      hosts: ["*.acme.example"],
      domains: ["acme.example"],
    });
    const outcome = (kind: "path" | "host" | "domain", v: string) => {
      try {
        check(kind, v, "arg");
        return "ok";
      } catch (err) {
        return isGatewayError(err) ? err.reason : "error";
      }
    };
    expect(outcome("path", join(dir, "root", "a", "b", "x.txt"))).toBe("ok"); // the root, canonical
    expect(outcome("path", join(dir, "root", "a"))).toBe("ok");
    expect(outcome("path", join(dir, "root", "ab"))).toBe("outside_bounds");
    expect(outcome("path", join(dir, "root", "a", "b", "c.pem"))).toBe("outside_bounds");
    expect(outcome("host", "docs.acme.example")).toBe("ok");
    expect(outcome("host", "acme.example")).toBe("outside_bounds");
    expect(outcome("host", "acme.example.evil.example")).toBe("outside_bounds");
    expect(outcome("domain", "acme.example")).toBe("ok");
    expect(outcome("domain", "evil.example")).toBe("outside_bounds");
  });
});
