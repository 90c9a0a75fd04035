/**
 * Shadow mode at the gateway, in process on the real store, with the reference filesystem and
 * everything MCP servers: bounds in `mode: shadow`, a tool's constraints and taint rule in
 * `mode: shadow`, and a shadow guardrail. Each would-have-denied is on the call's audit record and
 * the call reaches the upstream; an enforcing rule still refuses, the shadow records alongside.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ShadowRecord } from "../../src/core/index.js";
import type { GatewayIdentity } from "../../src/gateway/index.js";
import { QUICKSTART } from "../broker/live.js";
import { type InProcess, inProcessGateway } from "./inprocess.js";
import { configHead, EVERYTHING_BIN, FS_BIN, refusal, text } from "./support.js";

let dir: string;
let root: string;
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
    tools: ["fs:*", "everything:*"]
playbooks: {}
guardrails:
  - mode: shadow
    inline: |
      @id("no-drafts")
      forbid (principal, action == Writ::Action::"mcp:fs:read_text_file", resource)
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
});
