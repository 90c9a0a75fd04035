import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfigText } from "../../src/config/index.js";
import { cedar } from "../../src/pdp/cedar.js";
import { cedarSchemaFor, compileGuardrails, DecisionPoint } from "../../src/pdp/index.js";
import { BASE, FILE, load, withGuardrails } from "./fixture.js";

const codes = (problems: readonly { code: string; severity: string }[]) =>
  problems.filter((p) => p.severity === "error").map((p) => p.code);

afterEach(() => {
  vi.restoreAllMocks();
});

describe("compileGuardrails", () => {
  it("compiles forbid policies and honours @id", async () => {
    const { compiled } = await load(
      withGuardrails(`@id("no-prod-delete")
forbid(principal, action == Writ::Action::"aws:s3:DeleteObject", resource)
when { context.environment == "prod" };
forbid(principal, action in Writ::Action::"aws:s3", resource) when { resource.id like "arn:aws:s3:::secret*" };`),
    );
    expect(codes(compiled.problems)).toEqual([]);
    const ids = compiled.guardrails?.policies.map((p) => p.id);
    expect(ids?.[0]).toBe("no-prod-delete");
    // without @id the policy is named after where it is written
    expect(ids?.[1]).toMatch(/^writ\.yaml:\d+$/);
  });

  it("names policies without @id uniquely, even several on one line", async () => {
    const { compiled } = await load(
      withGuardrails(
        "forbid(principal, action, resource) when { context.tainted }; forbid(principal, action, resource) when { context.tainted };",
      ),
    );
    expect(codes(compiled.problems)).toEqual([]);
    const ids = compiled.guardrails!.policies.map((p) => p.id);
    expect(new Set(ids).size).toBe(2);
  });

  it("rejects a permit: guardrails may only restrict", async () => {
    const { compiled } = await load(withGuardrails(`@id("oops") permit(principal, action, resource);`));
    expect(codes(compiled.problems)).toEqual(["ERR_CEDAR_PERMIT"]);
    expect(compiled.guardrails).toBeUndefined();
  });

  it("rejects templates and duplicate ids", async () => {
    const { compiled } = await load(
      withGuardrails(
        `@id("a") forbid(principal == ?principal, action, resource);`,
        `@id("b") forbid(principal, action, resource) when { context.tainted };\n@id("b") forbid(principal, action, resource) when { context.tainted };`,
      ),
    );
    expect(codes(compiled.problems).sort()).toEqual(["ERR_CEDAR_DUPLICATE_ID", "ERR_CEDAR_TEMPLATE"]);
  });

  describe("syntax errors name the file, line and column", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-pdp-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("in a .cedar file", async () => {
      const policies = [
        "// guardrails for prod",
        '@id("ok") forbid(principal, action, resource) when { context.tainted };',
        "",
        '@id("broken")',
        'forbid(principal, action, resource) when { context.environment == "prod" &&& true };',
      ].join("\n");
      await writeFile(join(dir, "prod.cedar"), policies);
      const text = `${BASE}guardrails:\n  - file: prod.cedar\n`;
      const result = await loadConfigText(text, { file: join(dir, "writ.yaml"), baseDir: dir });
      expect(result.config).toBeDefined();
      const { problems, guardrails } = compileGuardrails(result.config!, {
        sources: result.guardrailSources,
        vocab: result.vocab,
      });
      expect(guardrails).toBeUndefined();
      const p = problems.find((x) => x.code === "ERR_CEDAR_SYNTAX");
      expect(p).toMatchObject({ file: join(dir, "prod.cedar"), line: 5, path: "guardrails[0]" });
      // the column of the stray `&`, counted in characters
      const line5 = policies.split("\n")[4]!;
      expect(p?.column).toBeGreaterThanOrEqual(line5.indexOf("&&&") + 1);
      expect(p?.column).toBeLessThanOrEqual(line5.indexOf("&&&") + 4);
    });

    it("counts columns in characters, not UTF-8 bytes", async () => {
      const policies = 'forbid(principal, action, resource) when { context.environment == "prød" && é };';
      await writeFile(join(dir, "utf8.cedar"), policies);
      const result = await loadConfigText(`${BASE}guardrails:\n  - file: utf8.cedar\n`, {
        file: join(dir, "writ.yaml"),
        baseDir: dir,
      });
      const { problems } = compileGuardrails(result.config!, { sources: result.guardrailSources });
      const p = problems.find((x) => x.code === "ERR_CEDAR_SYNTAX");
      expect(p).toMatchObject({ line: 1, column: policies.indexOf("é") + 1 });
    });

    it("inline in writ.yaml, on the line of writ.yaml", async () => {
      const text = withGuardrails(`@id("fine") forbid(principal, action, resource) when { context.tainted };
@id("broken") forbid(principal, action, resource) when { context.environment == };`);
      const result = await loadConfigText(text, { file: FILE });
      const { problems } = compileGuardrails(result.config!, { sources: result.guardrailSources });
      const p = problems.find((x) => x.code === "ERR_CEDAR_SYNTAX");
      const lines = text.split("\n");
      const expectedLine = lines.findIndex((l) => l.includes('@id("broken")')) + 1;
      // the column in writ.yaml, indentation included: the stray `}`
      const expectedColumn = lines[expectedLine - 1]!.indexOf("== }") + 4;
      expect(p).toMatchObject({
        file: FILE,
        line: expectedLine,
        column: expectedColumn,
        path: "guardrails[0].inline",
      });
    });
  });

  it("validates against the schema generated from the config", async () => {
    const { compiled } = await load(
      withGuardrails(
        `@id("typo") forbid(principal, action, resource) when { context.enviroment == "prod" };`,
        `@id("unguarded") forbid(principal, action, resource) when { context.ticket == "CHG-1" };`,
        `@id("no-such-action") forbid(principal, action == Writ::Action::"aws:s3:GetObjekt", resource);`,
        `@id("bad-attr") forbid(principal, action, resource) when { principal.team == "x" };`,
      ),
    );
    const errors = compiled.problems.filter((p) => p.severity === "error");
    expect(errors.map((p) => p.code)).toEqual(Array(4).fill("ERR_CEDAR_VALIDATION"));
    expect(errors.every((p) => p.line !== undefined && p.column !== undefined)).toBe(true);
  });

  it("accepts policies over attributes, groups, time and arguments", async () => {
    const { compiled } = await load(
      withGuardrails(`@id("attrs") forbid(principal, action, resource)
  when { principal.owner == "x" && principal.environments.contains("prod") && resource.service == "s3" };
@id("group") forbid(principal, action in Writ::Action::"aws", resource) when { resource.id like "arn:aws:s3:::prod-*" };
@id("nameless-in-config") forbid(principal, action == Writ::Action::"aws:ec2:TerminateInstances", resource);
@id("night") forbid(principal, action, resource)
  when { context.time.local.hour < 9 || context.time.weekday == "sun" || context.time.unix < 0 };
@id("ticket") forbid(principal, action, resource) when { context.environment == "prod" && !(context has ticket) };
@id("args") forbid(principal, action in Writ::Action::"mcp:filesystem", resource)
  when { context.arguments has path && context.arguments.path like "/etc/*" };
@id("taint") forbid(principal, action == Writ::Action::"mcp:filesystem:write_file", resource) when { context.tainted };`),
    );
    expect(codes(compiled.problems)).toEqual([]);
    expect(compiled.guardrails?.policies).toHaveLength(7);
  });

  it("pre-parses once, never per decision", async () => {
    const preparse = vi.spyOn(cedar, "preparsePolicySet");
    const authorize = vi.spyOn(cedar, "statefulIsAuthorized");
    const { load: loaded, compiled } = await load(
      withGuardrails(`@id("t") forbid(principal, action, resource) when { context.tainted };`),
    );
    expect(preparse).toHaveBeenCalledTimes(1);
    const pdp = new DecisionPoint(loaded.config!, { guardrails: compiled.guardrails, vocab: loaded.vocab });
    const now = new Date("2026-03-03T12:00:00Z");
    for (let i = 0; i < 50; i++) {
      const d = await pdp.decide({
        agent: "loader",
        action: "aws:s3:GetObject",
        resource: `arn:aws:s3:::reports/${i}`,
        environment: "dev",
        now,
      });
      expect(d.allowed).toBe(true);
    }
    expect(preparse).toHaveBeenCalledTimes(1);
    expect(authorize).toHaveBeenCalledTimes(50);
    const ids = new Set(authorize.mock.calls.map(([call]) => call.preparsedPolicySetId));
    expect([...ids]).toEqual([compiled.guardrails!.policySetId]);
  });

  it("skips Cedar for an action no policy's scope can match, and only then", async () => {
    const authorize = vi.spyOn(cedar, "statefulIsAuthorized");
    const { load: loaded, compiled } = await load(
      withGuardrails(`@id("fs") forbid(principal, action in Writ::Action::"mcp:filesystem", resource) when { context.tainted };
@id("put") forbid(principal, action == Writ::Action::"aws:s3:PutObject", resource) when { context.tainted };
@id("gh") forbid(principal, action in [Writ::Action::"aws:s3:DeleteObject", Writ::Action::"github"], resource) when { context.tainted };`),
    );
    const pdp = new DecisionPoint(loaded.config!, { guardrails: compiled.guardrails, vocab: loaded.vocab });
    const now = new Date("2026-03-03T12:00:00Z");
    const decide = (action: string, resource: string) =>
      pdp.decide({ agent: "loader", action, resource, environment: "dev", now, context: { tainted: true } });
    const cases: [string, string, string | undefined][] = [
      ["aws:s3:GetObject", "arn:aws:s3:::reports/a", undefined], // no scope matches: Cedar not asked
      ["aws:s3:PutObject", "arn:aws:s3:::reports/a", "put"], // `==`
      ["mcp:filesystem:read_text_file", "/srv/a", "fs"], // `in` a service group
      ["github:contents:write", "acme/site", "gh"], // `in` a list holding the provider
    ];
    for (const [action, resource, forbiddenBy] of cases) {
      authorize.mockClear();
      const d = await decide(action, resource);
      expect(authorize).toHaveBeenCalledTimes(forbiddenBy === undefined ? 0 : 1);
      expect(d.allowed, action).toBe(forbiddenBy === undefined);
      if (forbiddenBy !== undefined) expect(JSON.stringify(d.reasons)).toContain(forbiddenBy);
    }
  });

  it("an action no scope matches still fails closed on what the call would refuse", async () => {
    const authorize = vi.spyOn(cedar, "statefulIsAuthorized");
    const { compiled } = await load(
      withGuardrails(`@id("fs") forbid(principal, action in Writ::Action::"mcp:filesystem", resource)
  when { context.arguments has path && context.time.hour < 0 };`),
    );
    const guardrails = compiled.guardrails!;
    const base = {
      agent: "loader",
      action: "aws:s3:GetObject",
      resource: "arn:aws:s3:::reports/a",
      environment: "dev",
      now: new Date("2026-03-03T12:00:00Z"),
    };
    expect(guardrails.evaluate(base)).toEqual({ kind: "pass" });
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { a: deep };
    for (const [req, why] of [
      [{ ...base, agent: "mallory" }, "is not declared"],
      [{ ...base, now: new Date(Number.NaN) }, "not a valid date"],
      [{ ...base, context: { arguments: deep } }, "nest deeper"],
    ] as const) {
      const outcome = guardrails.evaluate(req);
      expect(outcome.kind).toBe("error");
      expect(JSON.stringify(outcome)).toContain(why);
    }
    expect(authorize).not.toHaveBeenCalled();
  });

  it("the DecisionPoint compiles the config's guardrails itself when not given them", async () => {
    const { load: loaded } = await load(
      withGuardrails(`forbid(principal, action, resource) when { context.tainted };`),
    );
    const pdp = new DecisionPoint(loaded.config!, { vocab: loaded.vocab });
    expect(pdp.guardrails?.policies).toHaveLength(1);
  });

  it("throws a coded error when the config's guardrails do not compile", async () => {
    const result = await loadConfigText(withGuardrails("permit(principal, action, resource);"), {
      file: FILE,
    });
    expect(() => new DecisionPoint(result.config!)).toThrow(
      expect.objectContaining({ code: "ERR_CEDAR_GUARDRAILS" }),
    );
  });
});

describe("cedarSchemaFor", () => {
  it("declares agents, resources, the config's actions and their groups", async () => {
    const result = await loadConfigText(BASE, { file: FILE });
    const schema = cedarSchemaFor(result.config!, { vocab: result.vocab }) as Record<
      string,
      { entityTypes: Record<string, unknown>; actions: Record<string, { memberOf?: { id: string }[] }> }
    >;
    const ns = schema.Writ!;
    expect(Object.keys(ns.entityTypes).sort()).toEqual(["Agent", "Resource"]);
    expect(ns.actions["aws:s3:PutObject"]?.memberOf?.map((m) => m.id)).toEqual(["aws:s3", "aws"]);
    expect(ns.actions["aws:s3"]?.memberOf?.map((m) => m.id)).toEqual(["aws"]);
    expect(ns.actions.aws).toEqual({});
    // GitHub levels: write is also in read
    expect(ns.actions["github:contents:write"]?.memberOf?.map((m) => m.id)).toContain("github:contents:read");
    expect(ns.actions["mcp:filesystem:write_file"]).toBeDefined();
    // the schema is one Cedar accepts
    const check = cedar.validate({ schema: schema as never, policies: { staticPolicies: "" } });
    expect(check.type).toBe("success");
  });
});
