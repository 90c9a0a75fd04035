/**
 * The JSON Schema of writ.yaml (schema/writ.schema.json): the committed file is what
 * `npm run schema` writes from the loader's shapes, every config the loader accepts in the
 * repository validates, and configs the loader refuses for their shape (an unknown or missing key,
 * a wrong type) are refused by the schema too.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { init } from "../../src/cli/init.js";
import { loadConfigFile, loadConfigText } from "../../src/config/index.js";
import { SHAPES, schemaUrl, writConfigSchema } from "../../src/config/schema.js";

const ROOT = join(import.meta.dirname, "../..");
const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
const committed = JSON.parse(readFileSync(join(ROOT, "schema", "writ.schema.json"), "utf8")) as Record<
  string,
  unknown
>;

function compile() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats.default(ajv);
  return ajv.compile(committed);
}
const validate = compile();

/** Every YAML file in the repository's examples and test fixtures that is a writ.yaml. */
function configs(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === "node_modules") continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name) && /^runnerClasses:/m.test(readFileSync(p, "utf8"))) out.push(p);
    }
  };
  for (const d of ["examples", "test"]) walk(join(ROOT, d));
  return out;
}

/** The loader's codes for a map of the wrong shape: what the schema must refuse too. */
const SHAPE_CODES = new Set(["ERR_CONFIG_UNKNOWN_KEY", "ERR_CONFIG_REQUIRED", "ERR_CONFIG_TYPE"]);

const MINIMAL = `version: 1
environments:
  dev: {}
runnerClasses:
  ci:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "github:contents:read"
agents:
  bot:
    owner: ops@acme.example
    purpose: tests
    runnerClass: ci
    environments: [dev]
`;

describe("schema/writ.schema.json", () => {
  it("is what npm run schema writes from the loader's shapes (run it after changing src/config/schema.ts)", () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(writConfigSchema(version))));
    expect(committed.$id).toBe(schemaUrl(version));
  });

  it("compiles under ajv's strict mode, and every shape is one the loader checks maps with", () => {
    expect(typeof validate).toBe("function");
    const loader = ["load.ts", "gateway.ts", "downstream.ts", "agent-runs.ts", "hooks.ts"]
      .map((f) => readFileSync(join(ROOT, "src", "config", f), "utf8"))
      .join("\n");
    for (const name of Object.keys(SHAPES)) expect(loader, `SHAPES.${name}`).toContain(`SHAPES.${name}`);
    // maps are checked only through their shapes
    expect(loader).not.toMatch(/\bc\.keys\(/);
  });

  const files = configs();
  it("finds the repository's configs", () => {
    expect(files.length).toBeGreaterThan(40);
  });

  for (const f of files) {
    it(`agrees with the loader: ${relative(ROOT, f)}`, async () => {
      const r = await loadConfigFile(f);
      let doc: unknown;
      try {
        doc = parse(readFileSync(f, "utf8"), { maxAliasCount: 100 });
      } catch {
        expect(r.config).toBeUndefined();
        return;
      }
      const ok = validate(doc);
      if (r.config !== undefined) expect(validate.errors ?? [], "loader accepts, schema refuses").toEqual([]);
      const shapeErrors = r.problems.filter((p) => p.severity === "error" && SHAPE_CODES.has(p.code));
      if (shapeErrors.length > 0)
        expect(ok, shapeErrors.map((p) => `${p.code} ${p.path}`).join(", ")).toBe(false);
    });
  }

  const bad: [string, string, string][] = [
    ["an unknown top-level key", `${MINIMAL}agentz: {}\n`, "ERR_CONFIG_UNKNOWN_KEY"],
    [
      "an unknown key in an agent",
      MINIMAL.replace("purpose: tests", "purpose: tests\n    colour: red"),
      "ERR_CONFIG_UNKNOWN_KEY",
    ],
    [
      "a missing ceiling",
      MINIMAL.replace(/ {4}ceiling:[\s\S]*?agents:/, "    description: x\nagents:"),
      "ERR_CONFIG_REQUIRED",
    ],
    ["a missing owner", MINIMAL.replace("    owner: ops@acme.example\n", ""), "ERR_CONFIG_REQUIRED"],
    [
      "environments not a list",
      MINIMAL.replace("environments: [dev]", "environments: dev"),
      "ERR_CONFIG_TYPE",
    ],
    ["a duration without a unit", MINIMAL.replace("maxTtl: 1h", "maxTtl: 60"), "ERR_CONFIG_DURATION"],
    ["version 2", MINIMAL.replace("version: 1", "version: 2"), "ERR_CONFIG_VERSION"],
    ["an upper-case agent name", MINIMAL.replace("  bot:", "  Bot:"), "ERR_CONFIG_ID"],
    [
      "a limit of zero",
      MINIMAL.replace("    ceiling:", "    limits: { activeWrits: 0 }\n    ceiling:"),
      "ERR_CONFIG_LIMIT",
    ],
  ];
  for (const [what, text, code] of bad) {
    it(`refuses ${what}, as the loader does (${code})`, async () => {
      expect(validate(parse(text))).toBe(false);
      const r = await loadConfigText(text, { file: "writ.yaml" });
      expect(r.problems.map((p) => p.code)).toContain(code);
    });
  }

  const every = join(ROOT, "test", "fixtures", "every-section", "writ.yaml");
  it("accepts the config with every section (gateway, downstream, approvals …), as the loader does", async () => {
    const r = await loadConfigFile(every);
    expect(r.problems).toEqual([]);
    expect(validate(parse(readFileSync(every, "utf8"))), JSON.stringify(validate.errors)).toBe(true);
  });

  const everyText = readFileSync(every, "utf8");
  const deep: [string, string, string][] = [
    [
      "an unknown key in a gateway tool",
      everyText.replace("fetch: { untrusted: true,", "fetch: { untrusted: true, colour: red,"),
      "ERR_CONFIG_UNKNOWN_KEY",
    ],
    [
      "an http upstream with a stdio key",
      everyText.replace("headers: { X-Team: release }", "headers: { X-Team: release }\n      cwd: /tmp"),
      "ERR_CONFIG_UNKNOWN_KEY",
    ],
    [
      "AWS downstream without its region",
      everyText.replace("      region: eu-west-1\n", ""),
      "ERR_CONFIG_REQUIRED",
    ],
    [
      "a Kubernetes downstream's key misspelt",
      everyText.replace("serviceAccounts: {", "serviceAccount: {"),
      "ERR_CONFIG_UNKNOWN_KEY",
    ],
    ["an approval count of zero", everyText.replace("count: 2", "count: 0"), "ERR_CONFIG_APPROVAL"],
  ];
  for (const [what, text, code] of deep) {
    it(`refuses ${what}, as the loader does (${code})`, async () => {
      expect(text).not.toBe(everyText);
      expect(validate(parse(text))).toBe(false);
      const r = await loadConfigText(text, { file: every });
      expect(r.problems.map((p) => p.code)).toContain(code);
    });
  }

  it("accepts the minimal config, as the loader does", async () => {
    expect(validate(parse(MINIMAL)), JSON.stringify(validate.errors)).toBe(true);
    expect((await loadConfigText(MINIMAL, { file: "writ.yaml" })).config).toBeDefined();
  });

  it("writ init's starter names this version's schema in its first line, and validates against it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "writ-schema-init-"));
    try {
      const code = await init(
        { dir, agent: "ci-bot", owner: "ops@acme.example", force: false, json: true },
        { out: () => {}, err: () => {} },
        version,
      );
      expect(code).toBe(0);
      const text = readFileSync(join(dir, "writ.yaml"), "utf8");
      expect(text.split("\n")[0]).toBe(`# yaml-language-server: $schema=${schemaUrl(version)}`);
      expect(schemaUrl(version)).toBe(`https://unpkg.com/writ@${version}/schema/writ.schema.json`);
      expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
      expect((await loadConfigFile(join(dir, "writ.yaml"))).config).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
