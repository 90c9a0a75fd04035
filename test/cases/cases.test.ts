/**
 * The decision corpus: every case in test/cases/*.yaml runs against the library and against the
 * `writ explain` CLI, and both must give the expected decision, code and reasons.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { decisionPoint, loadPolicy, type Policy } from "../../src/app.js";
import {
  type ActiveWrit,
  compileRule,
  type Decision,
  instantiateWrit,
  type Reason,
} from "../../src/core/index.js";
import { assertBuilt, runCli } from "../support/cli.js";

const HERE = dirname(fileURLToPath(import.meta.url));

interface WritSpec {
  id?: string;
  agent?: string;
  playbook?: string;
  environment?: string;
  issuedAt?: string;
  expiresAt?: string;
  usesLeft?: number;
  revoked?: boolean;
  grants: { action: string; resource?: string }[];
}
interface Case {
  name: string;
  agent: string;
  env: string;
  at: string;
  action: string;
  resource: string;
  withWrit?: { playbook: string; params: Record<string, unknown> };
  writ?: WritSpec;
  context?: Record<string, unknown>;
  expect: "allow" | "deny" | "usage-error";
  code?: string;
  reasons?: string[];
}
interface CaseFile {
  file: string;
  config: string;
  cases: Case[];
}

function loadCaseFiles(): CaseFile[] {
  return readdirSync(HERE)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => {
      const doc = parse(readFileSync(join(HERE, f), "utf8")) as {
        config: string;
        defaults?: Partial<Case>;
        cases: Case[];
      };
      return {
        file: f,
        config: resolve(HERE, doc.config),
        cases: doc.cases.map((c) => ({ ...doc.defaults, ...c }) as Case),
      };
    });
}

function reasonTag(r: Reason): string {
  if (r.kind === "grant") return `grant:${r.source}`;
  if (r.kind === "deny") return `deny:${r.source}`;
  return r.kind;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });

async function libraryDecision(policy: Policy, c: Case): Promise<Decision | "usage-error"> {
  const { config } = policy;
  const at = new Date(c.at);
  const writs: ActiveWrit[] = [];
  if (c.withWrit) {
    const pb = config.playbooks.get(c.withWrit.playbook)!;
    if (!ajv.validate(pb.parameters, c.withWrit.params)) return "usage-error";
    const rc = config.runnerClasses.get(config.agents.get(c.agent)!.runnerClass)!;
    const ttl = Math.min(pb.ttlSeconds, rc.ceiling.maxTtlSeconds);
    writs.push(
      instantiateWrit(pb, c.withWrit.params, {
        id: "case",
        agent: c.agent,
        environment: c.env,
        issuedAt: at,
        expiresAt: new Date(at.getTime() + ttl * 1000),
        usesLeft: pb.maxUses,
      }),
    );
  }
  if (c.writ) {
    const w = c.writ;
    writs.push({
      kind: "writ",
      id: w.id ?? "case",
      agent: w.agent ?? c.agent,
      playbook: w.playbook ?? "(none)",
      environment: w.environment ?? c.env,
      grants: w.grants.map((g, i) => ({
        kind: "grant",
        rule: compileRule({ action: g.action, resource: g.resource ?? "*" }),
        path: [i],
      })),
      issuedAt: new Date(w.issuedAt ?? c.at),
      expiresAt: new Date(w.expiresAt ?? at.getTime() + 900_000),
      usesLeft: w.usesLeft,
      revoked: w.revoked,
    });
  }
  await policy.prepare(c.action);
  return decisionPoint(policy).decideWith(
    {
      agent: c.agent,
      action: c.action,
      resource: c.resource,
      environment: c.env,
      now: at,
      context: c.context,
    },
    writs,
  );
}

function cliArgs(cf: CaseFile, c: Case): string[] {
  const args = [
    "explain",
    "--config",
    cf.config,
    "--agent",
    c.agent,
    "--action",
    c.action,
    "--resource",
    c.resource,
  ];
  args.push("--env", c.env, "--at", c.at, "--json");
  if (c.withWrit)
    args.push("--with-writ", c.withWrit.playbook, "--params", JSON.stringify(c.withWrit.params));
  if (c.writ) args.push("--writ", JSON.stringify(c.writ));
  if (c.context) args.push("--context", JSON.stringify(c.context));
  return args;
}

function checkDecision(c: Case, d: { allowed: boolean; code: string; reasons: readonly Reason[] }): void {
  expect(d.allowed ? "allow" : "deny", c.name).toBe(c.expect);
  if (c.code) expect(d.code, c.name).toBe(c.code);
  if (c.expect === "allow") expect(d.code).toBe("allowed");
  const tags = d.reasons.map(reasonTag);
  for (const want of c.reasons ?? []) expect(tags, `${c.name}: reasons`).toContain(want);
}

const files = loadCaseFiles();

describe("decision corpus", () => {
  it("has at least 40 cases", () => {
    expect(files.reduce((n, f) => n + f.cases.length, 0)).toBeGreaterThanOrEqual(40);
  });

  for (const cf of files) {
    describe(cf.file, () => {
      let policy: Policy;
      beforeAll(async () => {
        assertBuilt();
        const loaded = await loadPolicy(cf.config);
        expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
        policy = loaded.policy!;
      });

      for (const c of cf.cases) {
        it(`library: ${c.name}`, async () => {
          const d = await libraryDecision(policy, c);
          if (c.expect === "usage-error") expect(d).toBe("usage-error");
          else if (d === "usage-error") expect.fail(`${c.name}: parameters refused`);
          else checkDecision(c, d);
        });
        it.concurrent(`cli: ${c.name}`, async () => {
          const r = await runCli(cliArgs(cf, c));
          if (c.expect === "usage-error") {
            expect(r.code, r.stderr).toBe(2);
            expect(JSON.parse(r.stderr).error.code).toBe("ERR_USAGE");
            return;
          }
          expect(r.code, r.stderr).toBe(c.expect === "allow" ? 0 : 1);
          checkDecision(c, JSON.parse(r.stdout));
        });
      }
    });
  }
});
