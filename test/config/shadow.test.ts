/**
 * `mode: enforce | shadow` in writ.yaml (docs/shadow.md): read on runner classes, agents' deny
 * entries, playbooks, guardrail sources, gateway tools and bounds; anything else is `ERR_CONFIG_VALUE` where it is written; a
 * playbook that exceeds a ceiling in shadow mode loads with `WARN_CONFIG_SHADOW_CEILING`, and the
 * same file with the ceiling enforcing does not load.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/index.js";
import { writConfigSchema } from "../../src/config/schema.js";
import { decide } from "../../src/core/index.js";
import { ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart", "writ.yaml");

async function load(edit: (t: string) => string) {
  return loadConfigText(edit(await readFile(QUICKSTART, "utf8")), { file: QUICKSTART });
}

/** cost-analyst's own denies: one in shadow, one enforcing (no mode). */
const DENIES =
  "    runnerClass: analyst\n    deny:\n" +
  '      - { action: "aws:s3:GetObject", resource: "arn:aws:s3:::acme-reports/private/*", mode: shadow }\n' +
  '      - { action: "aws:ce:GetCostForecast" }\n';

const GATEWAY = `
gateway:
  bounds:
    mode: shadow
    roots: ["/srv"]
  upstreams:
    fs:
      command: node
      tools:
        read_text_file: { mode: shadow, resource: { from: path, as: path } }
        write_file: { mode: enforce }
`;

describe("mode in writ.yaml", () => {
  it("is read on every kind of rule; absent is enforce", async () => {
    const r = await load(
      (t) =>
        t
          .replace("  analyst:\n    description:", "  analyst:\n    mode: shadow\n    description:")
          .replace("    ttl: 20m\n    maxUses: 10\n", "    ttl: 20m\n    maxUses: 10\n    mode: shadow\n")
          .replace("  - file: guardrails.cedar\n", "  - file: guardrails.cedar\n    mode: shadow\n")
          .replace("    runnerClass: analyst\n", DENIES) + GATEWAY,
    );
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
    const c = r.config!;
    expect(c.runnerClasses.get("analyst")!.mode).toBe("shadow");
    expect(c.runnerClasses.get("deploy")!.mode).toBeUndefined();
    expect(c.agents.get("cost-analyst")!.deny.map((d) => d.mode)).toEqual(["shadow", undefined]);
    expect(c.playbooks.get("deploy-service")!.mode).toBe("shadow");
    expect(c.playbooks.get("rollback-service")!.mode).toBeUndefined();
    expect(r.guardrailSources.map((g) => g.mode)).toEqual(["shadow"]);
    expect(c.guardrails!.sources!.map((s) => s.mode)).toEqual(["shadow"]);
    expect(c.gateway!.bounds!.mode).toBe("shadow");
    const tools = c.gateway!.upstreams.get("fs")!.tools;
    expect(tools.get("read_text_file")!.mode).toBe("shadow");
    expect(tools.get("write_file")!.mode).toBeUndefined();
  });

  it("refuses any other value where it is written", async () => {
    const r = await load((t) =>
      t.replace("  analyst:\n    description:", "  analyst:\n    mode: audit\n    description:"),
    );
    expect(r.config).toBeUndefined();
    const p = r.problems.find((x) => x.code === "ERR_CONFIG_VALUE");
    expect(p).toMatchObject({ path: "runnerClasses.analyst.mode" });
    expect(p!.message).toContain("`enforce` or `shadow`");
    expect(p!.line).toBeGreaterThan(0);
    const deny = await load((t) =>
      t.replace("    runnerClass: analyst\n", DENIES.replace("shadow }", "warn }")),
    );
    expect(deny.config).toBeUndefined();
    expect(deny.problems.find((x) => x.code === "ERR_CONFIG_VALUE")).toMatchObject({
      path: "agents.cost-analyst.deny[0].mode",
    });
  });

  it("an agent's deny in shadow refuses nothing and is recorded; its enforcing deny still refuses", async () => {
    const r = await load((t) => t.replace("    runnerClass: analyst\n", DENIES));
    const config = r.config!;
    const ask = (action: string, resource: string) =>
      decide(config, [], {
        agent: "cost-analyst",
        action,
        resource,
        environment: "dev",
        now: new Date("2026-03-02T10:00:00Z"),
      });
    const shadowed = ask("aws:s3:GetObject", "arn:aws:s3:::acme-reports/private/q4.csv");
    expect(shadowed).toMatchObject({ allowed: true, code: "allowed" });
    expect(shadowed.shadow).toEqual([
      expect.objectContaining({ rule: "deny:cost-analyst", kind: "deny", reason: "explicit_deny" }),
    ]);
    expect(ask("aws:s3:GetObject", "arn:aws:s3:::acme-reports/q4.csv").shadow).toBeUndefined();
    const enforced = ask("aws:ce:GetCostForecast", "*");
    expect(enforced).toMatchObject({ allowed: false, code: "explicit_deny" });
    expect(enforced.shadow).toBeUndefined();
  });

  it("a playbook exceeding a ceiling in shadow mode loads with a warning; enforcing, it is an error", async () => {
    const widen = (t: string) =>
      t.replace(
        '      - action: "github:deployments:write"\n        resource: "acme/${service}"\n',
        '      - action: "github:deployments:write"\n        resource: "acme/${service}"\n      - action: "k8s:core/configmaps:get"\n        resource: "${service}/*"\n',
      );
    const enforcing = await load(widen);
    expect(enforcing.config).toBeUndefined();
    expect(enforcing.problems.map((p) => p.code)).toContain("ERR_CONFIG_GRANT_EXCEEDS_CEILING");
    const shadow = await load((t) =>
      widen(t).replace("  deploy:\n    description:", "  deploy:\n    mode: shadow\n    description:"),
    );
    expect(shadow.config).toBeDefined();
    const warn = shadow.problems.find((p) => p.code === "WARN_CONFIG_SHADOW_CEILING");
    expect(warn).toMatchObject({ severity: "warning" });
    expect(warn!.message).toContain("shadow mode");
  });

  it("the published schema offers mode on each of them", () => {
    const defs = writConfigSchema("0.0.0").$defs as Record<string, { properties?: Record<string, unknown> }>;
    for (const shape of [
      "runnerClass",
      "agentDeny",
      "playbook",
      "guardrailFile",
      "guardrailInline",
      "tool",
      "bounds",
    ]) {
      expect(defs[shape]!.properties!.mode).toEqual({ $ref: "#/$defs/mode" });
    }
    expect((defs.mode as unknown as { enum: string[] }).enum).toEqual(["enforce", "shadow"]);
  });
});
