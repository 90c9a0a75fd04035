/**
 * `maxUses` over HTTP: a resource server (holding the resource servers' token) spends a writ's uses
 * at `/env/<env>/use`; introspection reports what is left; a spent writ is refused and reads as
 * inactive. The quickstart's `rollback-service` is copied with `maxUses: 1` — a one-run writ.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { agentClient, type Live, QUICKSTART, requestWrit, startLive } from "./live.js";

const RS_TOKEN = "resource-server-token-uses-0123456789";
let dir: string;
let live: Live;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-uses-"));
  const config = join(dir, "config");
  await cp(QUICKSTART, config, { recursive: true });
  const yaml = await readFile(join(config, "writ.yaml"), "utf8");
  const oneRun = yaml.replace(/(rollback-service:[\s\S]*?maxUses: )3/, "$11");
  expect(oneRun).not.toBe(yaml);
  await writeFile(join(config, "writ.yaml"), oneRun);
  const { policy } = await loadPolicy(join(config, "writ.yaml"));
  live = await startLive(policy!, join(dir, "data"), { pdpToken: RS_TOKEN });
}, 60_000);

afterAll(async () => {
  await live.stop();
  await rm(dir, { recursive: true, force: true });
});

const post = (path: string, form: Record<string, string>, bearer?: string) =>
  fetch(`${live.base}/env/dev/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
    },
    body: new URLSearchParams(form),
  });

const writ = async (playbook: string, parameters: Record<string, unknown>) =>
  requestWrit(await agentClient(live.base, "dev"), {
    playbook,
    parameters,
    environment: "dev",
    ticket: "CHG-1234",
  });

describe("spending uses", () => {
  it("a one-run writ is spent after one use, then refused and inactive", async () => {
    const w = await writ("rollback-service", { service: "checkout" });
    const before = (await (await post("introspect", { token: w.access_token }, RS_TOKEN)).json()) as Record<
      string,
      unknown
    >;
    expect(before).toMatchObject({ active: true, max_uses: 1, uses: 0, uses_left: 1 });
    // the stored writ says what it was issued under, to whom, bound to which key
    const stored = await live.server.store.writs.get(w.writ_id as string);
    expect(stored).toMatchObject({
      ticket: "CHG-1234",
      audience: "https://k8s.acme.example",
      jkt: (before.cnf as { jkt: string }).jkt,
      sponsor: undefined,
      maxUses: 1,
    });

    const first = await post("use", { token: w.access_token }, RS_TOKEN);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ writ: w.writ_id, uses: 1, uses_left: 0 });

    const second = await post("use", { token: w.access_token }, RS_TOKEN);
    expect(second.status).toBe(400);
    expect(await second.json()).toMatchObject({ error: "invalid_token", reason: "writ_exhausted" });
    const after = (await (await post("introspect", { token: w.access_token }, RS_TOKEN)).json()) as Record<
      string,
      unknown
    >;
    expect(after).toEqual({ active: false });
  });

  it("counts down a writ of several uses, and concurrent spenders never pass the limit", async () => {
    const w = await writ("deploy-service", { service: "checkout", tag: "v1.4.2" });
    const results = await Promise.all(
      Array.from({ length: 14 }, () => post("use", { token: w.access_token }, RS_TOKEN)),
    );
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBe(10); // deploy-service: maxUses 10
    expect(results.filter((r) => r.status === 400).length).toBe(4);
  });

  it("refuses without the resource servers' token, with a wrong one, and for a baseline token", async () => {
    const w = await writ("rollback-service", { service: "payments" });
    const none = await post("use", { token: w.access_token });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ reason: "resource_server_required" });
    const wrong = await post("use", { token: w.access_token }, "not-the-token-not-the-token");
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ reason: "introspection_token_invalid" });
    const missing = await post("use", {}, RS_TOKEN);
    expect(await missing.json()).toMatchObject({ error: "invalid_request", reason: "token_missing" });
    const garbage = await post("use", { token: "a.b.c" }, RS_TOKEN);
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { reason: string }).reason).toMatch(/^token_/);
  });

  it("a revoked writ has no uses to spend", async () => {
    const c = await agentClient(live.base, "dev");
    const w = await requestWrit(c, {
      playbook: "rollback-service",
      parameters: { service: "search" },
      environment: "dev",
      ticket: "CHG-1234",
    });
    await live.server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "alice" });
    const r = await post("use", { token: w.access_token }, RS_TOKEN);
    expect(await r.json()).toMatchObject({ error: "invalid_token", reason: "writ_revoked" });
    await live.server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "alice" });
  });

  it("audits every use and every refused use", async () => {
    const records = await live.server.audit.tail(200);
    const used = records.filter((r) => r.type === "broker.writ_used");
    const refused = records.filter((r) => r.type === "broker.use_refused");
    expect(used.length).toBe(11);
    expect(refused.map((r) => (r.data as { reason: string }).reason)).toEqual(
      expect.arrayContaining(["writ_exhausted", "writ_revoked"]),
    );
    expect(JSON.stringify(records)).not.toContain("eyJ"); // no token in the log
  });
});
