/**
 * `writ aws simulate`: the evaluator corpus again, through the CLI with each case written out as a
 * policy folder (docs/aws.md), and the real iam-vulnerable authorization details.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { assertBuilt, runCli } from "../../support/cli.js";
import { corpus } from "../corpora.js";
import { loadCaseFiles, type RawCase, toDocument } from "./cases.js";

const tmp = mkdtempSync(join(tmpdir(), "writ-aws-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    out: (s: string) => {
      out += s;
    },
    err: (s: string) => {
      err += s;
    },
  };
  const code = await main(args, io, {});
  return { code, out, err };
}

function write(path: string, raw: unknown): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const doc = toDocument(raw);
  writeFileSync(path, typeof doc === "string" ? doc : JSON.stringify(doc));
}

/** Writes a case as a policy folder; undefined when the case needs what flags cannot say. */
function folderOf(c: RawCase, dir: string): boolean {
  if (typeof c.principal !== "string" || c.resourcePolicyRequired !== undefined) return false;
  for (const [i, p] of (c.identity ?? []).entries())
    write(join(dir, "identity", `${String(i).padStart(2, "0")}.json`), p);
  if (c.boundary !== undefined) write(join(dir, "boundary.json"), c.boundary);
  for (const [i, p] of (c.session ?? []).entries()) write(join(dir, "session", `${i}.json`), p);
  if (c.resourcePolicy !== undefined) write(join(dir, "resource.json"), c.resourcePolicy);
  const org = c.organization;
  if (org) {
    const scp = org.nodes.some((n) => n.scps);
    const rcp = org.nodes.some((n) => n.rcps);
    if (org.nodes.some((n) => (scp && !n.scps) || (rcp && !n.rcps))) return false;
    const byId = new Map(org.nodes.map((n) => [String(n.id), n]));
    const pathOf = (id: string): string => {
      const n = byId.get(id)!;
      return n.parent ? join(pathOf(String(n.parent)), id) : id;
    };
    const base = join(dir, "organization");
    mkdirSync(base, { recursive: true });
    writeFileSync(
      join(base, "organization.json"),
      JSON.stringify({
        managementAccountId: String(org.management),
        policyTypes: [...(scp ? ["SCP"] : []), ...(rcp ? ["RCP"] : [])],
      }),
    );
    for (const n of org.nodes) {
      const p = join(base, pathOf(String(n.id)));
      mkdirSync(join(p, "scps"), { recursive: true });
      mkdirSync(join(p, "rcps"), { recursive: true });
      for (const [i, s] of (n.scps ?? []).entries()) write(join(p, "scps", `${i}.json`), s);
      for (const [i, s] of (n.rcps ?? []).entries()) write(join(p, "rcps", `${i}.json`), s);
    }
  }
  mkdirSync(dir, { recursive: true });
  return true;
}

describe("writ aws simulate: the evaluator corpus through the CLI", () => {
  const cases = loadCaseFiles().flatMap((f) => f.cases.map((c) => ({ file: f.file, c })));
  let n = 0;
  for (const { file, c } of cases) {
    const dir = join(tmp, `case-${n++}`);
    if (!folderOf(c, dir)) continue;
    it(`${file}: ${c.name}`, async () => {
      const args = [
        "aws",
        "simulate",
        "--principal",
        c.principal as string,
        "--action",
        c.action,
        "--resource",
        c.resource,
        "--policies",
        dir,
        "--json",
      ];
      if (c.resourceAccount) args.push("--resource-account", String(c.resourceAccount));
      for (const [k, v] of Object.entries(c.context ?? {})) {
        args.push("--context", `${k}=${Array.isArray(v) ? JSON.stringify(v.map(String)) : String(v)}`);
      }
      const r = await run(args);
      if ((c.identity ?? []).some((p) => typeof p === "string")) {
        // A file that is not JSON is refused at the edge, naming the file.
        expect(r.code).toBe(2);
        expect(JSON.parse(r.err).error.code).toBe("ERR_AWS_IMPORT_JSON");
        return;
      }
      expect(r.err).toBe("");
      const d = JSON.parse(r.out) as { decision: string; deciding: unknown[]; errors: { code: string }[] };
      expect(d.decision).toBe(c.expect);
      expect(r.code).toBe(c.expect === "allow" ? 0 : 1);
      if (c.deciding) expect(d.deciding).toHaveLength(c.deciding.length);
      expect(d.errors.map((e) => e.code).sort()).toEqual([...(c.errors ?? [])].sort());
    });
  }
  it("covers most of the corpus", () => {
    expect(cases.filter(({ c }) => typeof c.principal === "string").length).toBeGreaterThan(200);
  });
});

describe("writ aws simulate with authorization details", () => {
  const details = corpus("aws-authz-details", "example.json");
  it("prints the deciding statement of an allow", async () => {
    const r = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:iam::200611803367:user/privesc4-CreateAccessKey-user",
      "--action",
      "iam:CreateAccessKey",
      "--resource",
      "arn:aws:iam::200611803367:user/admin",
      "--authz-details",
      details,
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^allow: allowed by an identity-based policy/);
    expect(r.out).toContain(
      "allow  identity policy `arn:aws:iam::200611803367:policy/privesc4-CreateAccessKey` statement 0",
    );
  });
  it("an explicit deny across two policies (fp2) exits 1 and names the deny", async () => {
    const r = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:iam::200611803367:user/fp2-allow-and-deny-multiple-policies-user",
      "--action",
      "iam:CreateUser",
      "--resource",
      "arn:aws:iam::200611803367:user/x",
      "--authz-details",
      details,
      "--json",
    ]);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.out);
    expect(d.decision).toBe("explicit-deny");
    expect(d.deciding[0].effect).toBe("Deny");
  });
  it("a role's trust policy decides sts:AssumeRole (the 2-hop chain's last hop)", async () => {
    const r = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:sts::200611803367:assumed-role/privesc-AssumeRole-intermediate-role/s",
      "--action",
      "sts:AssumeRole",
      "--resource",
      "arn:aws:iam::200611803367:role/privesc-AssumeRole-ending-role",
      "--authz-details",
      details,
      "--json",
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).deciding[0].policyId).toBe(
      "arn:aws:iam::200611803367:role/privesc-AssumeRole-ending-role/trust",
    );
  });
  it("usage errors exit 2 with a coded message", async () => {
    const unknown = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:iam::200611803367:user/nobody",
      "--action",
      "s3:GetObject",
      "--authz-details",
      details,
      "--json",
    ]);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.err).error.code).toBe("ERR_AWS_PRINCIPAL_NOT_FOUND");
    const bad = await run([
      "aws",
      "simulate",
      "--principal",
      "bob",
      "--action",
      "s3:GetObject",
      "--authz-details",
      details,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--principal");
    const none = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:iam::1:user/x",
      "--action",
      "s3:GetObject",
    ]);
    expect(none.code).toBe(2);
    const ctx = await run([
      "aws",
      "simulate",
      "--principal",
      "arn:aws:iam::200611803367:user/x",
      "--action",
      "s3:GetObject",
      "--policies",
      tmp,
      "--context",
      "novalue",
    ]);
    expect(ctx.code).toBe(2);
  });
});

describe("writ aws simulate through the built bin", () => {
  it("prints the decision and exits 0 on allow, 1 on deny, 2 on bad input", async () => {
    assertBuilt();
    const details = corpus("aws-authz-details", "example.json");
    const base = [
      "aws",
      "simulate",
      "--authz-details",
      details,
      "--action",
      "iam:CreateAccessKey",
      "--resource",
      "arn:aws:iam::200611803367:user/x",
    ];
    const allow = await runCli([
      ...base,
      "--principal",
      "arn:aws:iam::200611803367:user/privesc4-CreateAccessKey-user",
    ]);
    expect(allow.code).toBe(0);
    expect(allow.stdout).toContain("deciding statements:");
    const deny = await runCli([
      ...base,
      "--principal",
      "arn:aws:iam::200611803367:user/fp3-deny-iam-user",
      "--json",
    ]);
    expect(deny.code).toBe(1);
    expect(JSON.parse(deny.stdout).decision).toBe("explicit-deny");
    const bad = await runCli([
      "aws",
      "simulate",
      "--principal",
      "x",
      "--action",
      "s3:GetObject",
      "--policies",
      "/nonexistent",
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/at .*\.js:\d+/);
  }, 60_000);
});
