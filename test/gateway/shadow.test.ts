/**
 * Shadow mode at the gateway, in process on the real store, with the reference filesystem and
 * everything MCP servers: bounds in `mode: shadow`, a tool's constraints and taint rule in
 * `mode: shadow`, and a shadow guardrail. Each would-have-denied is on the call's audit record and
 * the call reaches the upstream; an enforcing rule still refuses, the shadow records alongside.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ShadowRecord } from "../../src/core/index.js";
import type { GatewayIdentity } from "../../src/gateway/index.js";
import { QUICKSTART } from "../broker/live.js";
import { type InProcess, inProcessGateway } from "./inprocess.js";
import { configHead, EVERYTHING_BIN, FS_BIN, refusal, text } from "./support.js";

let dir: string;
let root: string;
/** fsx's enforcing constraint on `path`: longer paths are refused. */
const MAX_PATH = 60;
let gw: InProcess;
const bot: GatewayIdentity = { agent: "release-bot", environment: "dev", transport: "stdio" };

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "writ-gw-shadow-")));
  root = join(dir, "root");
  await mkdir(join(root, "notes"), { recursive: true });
  await writeFile(join(root, "notes", "todo.txt"), "buy milk\n");
  await writeFile(join(root, "notes", "server.pem"), "-----BEGIN PRIVATE KEY-----\n");
  await writeFile(join(root, "draft.txt"), "a draft\n");
  await writeFile(join(dir, "outside.txt"), "outside\n");
  const node = process.execPath;
  const yaml = `${configHead('        - action: "mcp:*:*"')}
agents:
  release-bot:
    owner: erin@acme.example
    purpose: Reads notes and sums numbers
    runnerClass: assist
    environments: [dev]
    keys:
      file: ${join(QUICKSTART, "keys", "release-bot.jwks.json")}
    baseline:
      - action: "mcp:fs:read_text_file"
        resource: "${root}/*"
      - action: "mcp:everything:echo|get-env|get-sum"
        standingWrite: test
      - action: "mcp:fsx:get_file_info"
        resource: "${root}/*"
      - action: "mcp:fsp:get_file_info"
        resource: "${root}/*"
    tools: ["fs:*", "everything:*", "fsx:*", "fsp:*"]
playbooks: {}
guardrails:
  - mode: shadow
    inline: |
      @id("no-drafts")
      forbid (principal, action == Writ::Action::"mcp:fs:read_text_file", resource)
      when { resource.id like "*draft*" };
      @id("no-draft-info-fsx")
      forbid (principal, action == Writ::Action::"mcp:fsx:get_file_info", resource)
      when { resource.id like "*draft*" };
      @id("no-draft-info-fsp")
      forbid (principal, action == Writ::Action::"mcp:fsp:get_file_info", resource)
      when { resource.id like "*draft*" };
gateway:
  taintTtl: 1h
  bounds:
    mode: shadow
    roots: ["${root}/notes"]
    deny: ["**/*.pem"]
  upstreams:
    fs:
      command: ${node}
      args: ["${FS_BIN}", "${dir}"]
      tools:
        read_text_file: { resource: { from: path, as: path } }
    everything:
      command: ${node}
      args: ["${EVERYTHING_BIN}", "stdio"]
      tools:
        echo:
          untrusted: true
          constraints: { message: { maxLength: 40 } }
        get-env: { privileged: true, mode: shadow }
        get-sum:
          mode: shadow
          constraints: { a: { maximum: 10 } }
    # the same server twice: fsx with an enforcing constraint, fsp without, each under its own
    # shadow guardrail; what fsp records of a call is what fsx must record even when it refuses
    fsx:
      command: ${node}
      args: ["${FS_BIN}", "${dir}"]
      tools:
        get_file_info:
          resource: { from: path, as: path }
          constraints: { path: { maxLength: ${MAX_PATH} } }
    fsp:
      command: ${node}
      args: ["${FS_BIN}", "${dir}"]
      tools:
        get_file_info: { resource: { from: path, as: path } }
`;
  await writeFile(join(dir, "writ.yaml"), yaml);
  gw = await inProcessGateway(join(dir, "writ.yaml"), join(dir, "data"));
}, 180_000);

afterAll(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

const call = async (name: string, args: Record<string, unknown>, ctx?: string) => {
  const s = gw.gateway.openSession(bot);
  try {
    return await gw.gateway.callTool(s.id, name, args, ctx === undefined ? {} : { promptContextId: ctx });
  } finally {
    gw.gateway.endSession(s.id, "done");
  }
};

/** The shadow records of the newest `gateway.call` record. */
async function lastShadow(): Promise<{ allowed: boolean; code: string; shadow: ShadowRecord[] | undefined }> {
  const row = await gw.store.db
    .selectFrom("audit_records")
    .select("data")
    .where("type", "=", "gateway.call")
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirstOrThrow();
  const data = row.data as { decision: { allowed: boolean; code: string }; shadow?: ShadowRecord[] };
  return { ...data.decision, shadow: data.shadow };
}

describe("shadow mode at the gateway", () => {
  it("bounds in shadow: a path outside the roots, or matching a denied glob, is read and recorded", async () => {
    const draft = await call("fs__read_text_file", { path: join(root, "draft.txt") });
    expect(refusal(draft)).toBeUndefined();
    expect(text(draft)).toContain("a draft");
    const a = await lastShadow();
    expect(a.allowed).toBe(true);
    expect(a.shadow?.map((s) => [s.rule, s.kind, s.reason])).toEqual([
      ["gateway:bounds", "bounds", "outside_bounds"],
      // the decision point's own shadow records ride on the same record
      ["guardrail:no-drafts", "guardrail", "guardrail_forbid"],
    ]);

    const pem = await call("fs__read_text_file", { path: join(root, "notes", "server.pem") });
    expect(text(pem)).toContain("BEGIN PRIVATE KEY");
    const b = await lastShadow();
    expect(b.shadow).toEqual([expect.objectContaining({ rule: "gateway:bounds", reason: "outside_bounds" })]);
    expect(b.shadow![0]!.message).toContain("**/*.pem");

    // inside the bounds and no shadow rule touched: no records
    const todo = await call("fs__read_text_file", { path: join(root, "notes", "todo.txt") });
    expect(text(todo)).toContain("buy milk");
    expect((await lastShadow()).shadow).toBeUndefined();
  });

  it("an enforcing deny still refuses, the shadow bounds recorded alongside", async () => {
    const out = await call("fs__read_text_file", { path: join(dir, "outside.txt") });
    expect(refusal(out)?.reason).toBe("no_grant");
    expect(text(out)).not.toContain("outside\n");
    const a = await lastShadow();
    expect(a).toMatchObject({ allowed: false, code: "no_grant" });
    expect(a.shadow?.map((s) => s.rule)).toEqual(["gateway:bounds"]);
  });

  it("a tool's constraints in shadow: the call goes on and is recorded; an enforcing constraint refuses", async () => {
    const sum = await call("everything__get-sum", { a: 50, b: 1 });
    expect(refusal(sum)).toBeUndefined();
    expect(text(sum)).toContain("51");
    const a = await lastShadow();
    expect(a.shadow).toEqual([
      expect.objectContaining({
        rule: "tool:everything:get-sum",
        kind: "tool",
        reason: "argument_constraint",
      }),
    ]);

    const long = await call("everything__echo", { message: "x".repeat(60) });
    expect(refusal(long)?.reason).toBe("argument_constraint");
    expect((await lastShadow()).shadow).toBeUndefined();
  });

  it("a privileged tool's taint rule in shadow: a tainted context's call goes on and is recorded", async () => {
    expect(refusal(await call("everything__echo", { message: "from the web" }, "p-1"))).toBeUndefined();
    const env = await call("everything__get-env", {}, "p-1");
    expect(refusal(env)).toBeUndefined();
    const a = await lastShadow();
    expect(a.allowed).toBe(true);
    expect(a.shadow).toEqual([
      expect.objectContaining({ rule: "tool:everything:get-env", kind: "tool", reason: "tainted_session" }),
    ]);
    // an untainted context: nothing to record
    expect(refusal(await call("everything__get-env", {}, "p-2"))).toBeUndefined();
    expect((await lastShadow()).shadow).toBeUndefined();
  });

  it("an enforcing refusal before the shadow rules are reached still records every one that would deny", async () => {
    // refused by fsx's enforcing constraint (a long path) before bounds and the decision point ran
    const deep = join(root, "a-rather-long-folder-name-for-the-test", "draft.txt");
    const refused = await call("fsx__get_file_info", { path: deep });
    expect(refusal(refused)?.reason).toBe("argument_constraint");
    const a = await lastShadow();
    expect(a).toMatchObject({ allowed: false, code: "argument_constraint" });
    expect(a.shadow?.map((s) => [s.rule, s.reason])).toEqual([
      ["gateway:bounds", "outside_bounds"],
      ["guardrail:no-draft-info-fsx", "guardrail_forbid"],
    ]);
  });

  it("property: a refused call records what the same call records when nothing refuses it, and is never allowed by it", async () => {
    const names = ["notes/todo.txt", "draft.txt", "notes/server.pem", "notes/draft-2.txt", "missing.txt"];
    const paths = fc.oneof(
      fc.constantFrom(...names).map((n) => join(root, n)),
      fc
        .tuple(fc.constantFrom("notes", "a-rather-long-folder-name-for-the-test"), fc.constantFrom(...names))
        .map(([d, n]) => join(root, d, n)),
      fc.constantFrom(join(dir, "outside.txt"), join(dir, "draft-outside.txt")),
    );
    const seen = { refusedWithRecords: 0, allowed: 0 };
    await fc.assert(
      fc.asyncProperty(paths, async (path) => {
        const plain = await call("fsp__get_file_info", { path });
        const p = await lastShadow();
        const strict = await call("fsx__get_file_info", { path });
        const x = await lastShadow();
        const tooLong = path.length > MAX_PATH;
        // the constraint only adds a refusal: never an allow where the plain call is refused
        expect(x.allowed).toBe(p.allowed && !tooLong);
        if (!tooLong) expect(refusal(strict)?.reason).toBe(refusal(plain)?.reason);
        else expect(refusal(strict)?.reason).toBe("argument_constraint");
        // the same shadow rules, whichever refused first
        const rules = (r: typeof x) =>
          (r.shadow ?? []).map((s) => `${s.rule.replace("-fsp", "-fsx")}:${s.reason}`);
        expect(rules(x)).toEqual(rules(p));
        if (!x.allowed && x.shadow !== undefined) seen.refusedWithRecords++;
        if (x.allowed) seen.allowed++;
      }),
      { numRuns: 40 },
    );
    // the generator reached both cases that matter
    expect(seen.refusedWithRecords).toBeGreaterThan(0);
    expect(seen.allowed).toBeGreaterThan(0);
  }, 240_000);
});
