/**
 * The redemption endpoint end to end, against a live `writ serve` app with the test system standing
 * in for AWS, GitHub and Kubernetes: the agent's own client (src/downstream/client.ts) gets a writ
 * whose audience is the endpoint and redeems it; every row of docs/reasons.md's "Downstream
 * reasons" is provoked and the endpoint's source answers with nothing else; revocation (RFC 7009)
 * and the kill switch reach the credentials already handed out; the reaper removes what a crash
 * left behind and retries what failed.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentClient, agentClient, agentKeyFromJwk } from "../../src/downstream/client.js";
import { ROOT } from "../support/cli.js";
import { type DownstreamLive, QUICKSTART_KEYS, startDownstreamLive } from "./fixture.js";

let live: DownstreamLive;
let bot: AgentClient;
let ops: AgentClient;

async function client(agent: string, environment = "dev"): Promise<AgentClient> {
  const key = agentKeyFromJwk(
    await readFile(join(QUICKSTART_KEYS, `${agent}.DEVELOPMENT-ONLY.private.jwk`), "utf8"),
  );
  return agentClient({ server: live.base, environment, agent, key });
}

beforeAll(async () => {
  live = await startDownstreamLive();
  bot = await client("release-bot");
  ops = await client("ops-assistant");
}, 60_000);
afterAll(() => live?.stop());

const restart = { playbook: "restart", params: {} };

async function auditOf(type: string): Promise<Record<string, unknown>[]> {
  const rows = await live.server.store.db
    .selectFrom("audit_records")
    .select(["type", "data"])
    .where("type", "=", type)
    .orderBy("seq")
    .execute();
  return rows.map((r) => r.data as Record<string, unknown>);
}

async function allAuditText(): Promise<string> {
  const rows = await live.server.store.db.selectFrom("audit_records").select("data").execute();
  return JSON.stringify(rows.map((r) => r.data));
}

/** POST to the endpoint by hand: `headers` as given. */
function raw(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${live.base}${path}`, { method: "POST", headers });
}

describe("redeeming a writ", () => {
  it("answers a Kubernetes token scoped to the writ, uncached, audited without the secret", async () => {
    const token = await bot.writ(restart, "kubernetes");
    const r = await bot.redeem("kubernetes", token);
    expect(r.system).toBe("kubernetes");
    expect(r.credential).toMatchObject({ server: "https://k8s.acme.example:6443" });
    const secret = r.credential.token as string;
    expect(live.system.works(secret)).toBe(true);
    const call = live.system.calls.find((c) => c.op === "issue" && c.writ === r.writ);
    expect(call).toMatchObject({ system: "kubernetes", agent: "release-bot", environment: "dev" });
    const issued = (await auditOf("downstream.issued")).find((d) => d.writ === r.writ);
    expect(issued).toEqual({
      environment: "dev",
      agent: "release-bot",
      writ: r.writ,
      system: "kubernetes",
      kind: "serviceaccount-token",
      expiresAt: r.expiresAt.toISOString(),
    });
    expect(await allAuditText()).not.toContain(secret);
    const records = await live.server.store.downstream.ofWrit(r.writ);
    expect(records.map((x) => x.state)).toEqual(["created"]);
  });

  it("answers AWS and GitHub credentials in their own shapes, with no-store", async () => {
    const aws = await bot.redeem(
      "aws",
      await bot.writ({ playbook: "fetch", params: { version: "v1.2" } }, "aws"),
    );
    expect(Object.keys(aws.credential).sort()).toEqual([
      "accessKeyId",
      "expiration",
      "secretAccessKey",
      "sessionToken",
    ]);
    const gh = await bot.redeem("github", await bot.writ({ playbook: "push", params: {} }, "github"));
    expect(gh.credential).toMatchObject({
      repositories: ["acme/checkout"],
      permissions: { contents: "write" },
    });
    // the headers, by hand
    const token = await bot.writ(restart, "kubernetes");
    const res = await fetch(`${live.base}/env/dev/downstream/kubernetes`, {
      method: "POST",
      headers: { authorization: `DPoP ${token}` },
    });
    expect(res.headers.get("cache-control")).toBe("no-store");
  });
});

// --- the reasons table ---------------------------------------------------------------------------

interface Row {
  readonly reason: string;
  readonly error: string;
  readonly status: number;
}

async function downstreamRows(): Promise<Row[]> {
  const md = await readFile(join(ROOT, "docs", "reasons.md"), "utf8");
  const lines = md.split("\n");
  const start = lines.findIndex((l) => l.trim() === "## Downstream reasons");
  expect(start).toBeGreaterThan(0);
  const rows: Row[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("## ")) break;
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 6 || !cells[1]!.startsWith("`")) continue;
    rows.push({
      reason: cells[1]!.replaceAll("`", ""),
      error: cells[2]!.replaceAll("`", ""),
      status: Number(cells[3]),
    });
  }
  return rows;
}

/** Whether a row (`token_*` is a family) covers a reason. */
const covers = (row: Row, reason: string) =>
  row.reason.endsWith("_*") ? reason.startsWith(row.reason.slice(0, -1)) : row.reason === reason;

type Scenario = [reason: string, run: () => Promise<Response>];

const SCENARIOS: Scenario[] = [
  ["downstream_not_configured", async () => raw("/env/prod/downstream/kubernetes")],
  ["token_missing", async () => raw("/env/dev/downstream/kubernetes")],
  [
    "token_malformed",
    async () => raw("/env/dev/downstream/kubernetes", { authorization: "DPoP not a token!" }),
  ],
  [
    "dpop_required",
    async () =>
      raw("/env/dev/downstream/kubernetes", {
        authorization: `Bearer ${await bot.writ(restart, "kubernetes")}`,
      }),
  ],
  [
    "token_audience",
    // a writ for another resource server is not redeemable
    async () => {
      const t = await bot.writFor(restart, "https://k8s.acme.example");
      return raw("/env/dev/downstream/kubernetes", { authorization: `DPoP ${t}` });
    },
  ],
  [
    "dpop_missing",
    async () =>
      raw("/env/dev/downstream/kubernetes", {
        authorization: `DPoP ${await bot.writ(restart, "kubernetes")}`,
      }),
  ],
  [
    "dpop_key_mismatch",
    // a stolen token presented with the thief's own proof
    async () => {
      const stolen = await bot.writ(restart, "kubernetes");
      const thief = await client("release-bot");
      return fetchRedeem(thief, "kubernetes", stolen);
    },
  ],
  [
    "not_a_writ",
    async () => fetchRedeem(bot, "kubernetes", await bot.baseline(bot.audienceOf("kubernetes"))),
  ],
  [
    "writ_revoked",
    async () => {
      const t = await bot.writ(restart, "kubernetes");
      await revoke(bot, t);
      return fetchRedeem(bot, "kubernetes", t);
    },
  ],
  [
    "downstream_no_grants",
    async () =>
      fetchRedeem(bot, "kubernetes", await bot.writ({ playbook: "push", params: {} }, "kubernetes")),
  ],
  ...(
    [
      "downstream_scope_exceeds_writ",
      "downstream_permission_missing",
      "downstream_policy_too_large",
      "downstream_unavailable",
    ] as const
  ).map(
    (reason): Scenario => [
      reason,
      async () => {
        const t = await bot.writ(restart, "kubernetes");
        live.system.refuseNext = reason;
        return fetchRedeem(bot, "kubernetes", t);
      },
    ],
  ),
];

/** Redeems through the client's own proof, answering the raw response. */
async function fetchRedeem(
  c: AgentClient,
  system: "aws" | "github" | "kubernetes",
  token: string,
): Promise<Response> {
  try {
    await c.redeem(system, token);
    return new Response(JSON.stringify({ ok: true }), { status: 200 });
  } catch (err) {
    const e = err as { status?: number; error?: string; reason?: string; description?: string };
    if (e.status === undefined) throw err;
    return new Response(
      JSON.stringify({ error: e.error, reason: e.reason, error_description: e.description }),
      {
        status: e.status,
      },
    );
  }
}

/** RFC 7009 by the agent itself. */
async function revoke(c: AgentClient, token: string): Promise<void> {
  const { key, kid } = agentKeyFromJwk(
    await readFile(join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  );
  const { sign } = await import("node:crypto");
  const issuer = c.issuer;
  const iat = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: "EdDSA", kid })}.${b64({ iss: "release-bot", sub: "release-bot", aud: issuer, iat, exp: iat + 60, jti: randomUUID() })}`;
  const assertion = `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`;
  const res = await fetch(`${issuer}/revoke`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      token,
      client_id: "release-bot",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }).toString(),
  });
  expect(res.status).toBe(200);
}

describe("the downstream reasons", () => {
  it("lists every reason the endpoint's source can answer with", async () => {
    const rows = await downstreamRows();
    expect(rows.length).toBeGreaterThanOrEqual(13);
    const emitted = new Set<string>();
    for (const file of ["src/downstream/routes.ts", "src/broker/bound-token.ts"]) {
      const text = await readFile(join(ROOT, file), "utf8");
      for (const m of text.matchAll(/"((?:downstream|token|dpop|not|writ)_[a-z_]+)"/g)) emitted.add(m[1]!);
    }
    // the families: the token's and the proof's checks, and the writ's use
    for (const family of ["token_", "dpop_", "writ_"]) emitted.add(`${family}*`);
    const missing = [...emitted].filter(
      (r) => !rows.some((row) => (r.endsWith("_*") ? row.reason === r : covers(row, r))),
    );
    expect(missing).toEqual([]);
  });

  it("has a scenario for every row", async () => {
    const rows = await downstreamRows();
    const uncovered = rows.filter((row) => !SCENARIOS.some(([reason]) => covers(row, reason)));
    expect(uncovered.map((r) => r.reason)).toEqual([]);
  });

  for (const [reason, run] of SCENARIOS) {
    it(`answers ${reason} as its row says`, async () => {
      const rows = await downstreamRows();
      // a reason's own row before the family that would also cover it (`dpop_key_mismatch`, `dpop_*`)
      const row = rows.find((r) => r.reason === reason) ?? rows.find((r) => covers(r, reason))!;
      const res = await run();
      const body = (await res.json()) as Record<string, unknown>;
      expect({ status: res.status, error: body.error, reason: body.reason }, JSON.stringify(body)).toEqual({
        status: row.status,
        error: row.error,
        reason,
      });
      if (res.status === 401 && res.headers.get("www-authenticate") !== null)
        expect(res.headers.get("www-authenticate")).toMatch(/^DPoP error="/);
    });
  }

  it("spends a use per redemption: a one-use writ is redeemed once", async () => {
    const t = await bot.writ({ playbook: "once", params: {} }, "kubernetes");
    await bot.redeem("kubernetes", t);
    const second = await fetchRedeem(bot, "kubernetes", t);
    expect(second.status).toBe(401);
    expect(((await second.json()) as { reason: string }).reason).toBe("writ_exhausted");
  });

  it("answers 401 with a DPoP challenge on the wire", async () => {
    const res = await raw("/env/dev/downstream/kubernetes", {
      authorization: `DPoP ${await bot.writ(restart, "kubernetes")}`,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("audits refusals with the writ and the reason", async () => {
    const t = await bot.writ({ playbook: "push", params: {} }, "kubernetes");
    await fetchRedeem(bot, "kubernetes", t);
    const refused = await auditOf("downstream.refused");
    expect(refused.some((d) => d.reason === "downstream_no_grants" && d.system === "kubernetes")).toBe(true);
  });
});

describe("revocation and the kill switch reach downstream", () => {
  it("RFC 7009 revocation revokes the writ's records: the credential stops working at once", async () => {
    const token = await bot.writ(restart, "kubernetes");
    const r = await bot.redeem("kubernetes", token);
    const secret = r.credential.token as string;
    expect(live.system.works(secret)).toBe(true);
    await revoke(bot, token);
    expect(live.system.works(secret)).toBe(false);
    expect((await live.server.store.downstream.ofWrit(r.writ)).map((x) => x.state)).toEqual(["removed"]);
    const removed = (await auditOf("downstream.removed")).filter((d) => d.writ === r.writ);
    expect(removed).toEqual([expect.objectContaining({ by: "revocation", system: "kubernetes" })]);
  });

  it("an agent kill kills that agent's credentials everywhere and removes its records, others untouched", async () => {
    const mine = await bot.redeem("kubernetes", await bot.writ(restart, "kubernetes"));
    const theirs = await ops.redeem("kubernetes", await ops.writ(restart, "kubernetes"));
    const result = await live.server.operator.engageKill(
      { kind: "agent", agent: "ops-assistant" },
      { by: "test" },
    );
    expect(result.revoked.map((w) => w.id)).toContain(theirs.writ);
    expect(live.system.works(theirs.credential.token as string)).toBe(false);
    expect(live.system.works(mine.credential.token as string)).toBe(true);
    expect(live.system.calls.filter((c) => c.op === "kill")).toEqual(
      expect.arrayContaining([expect.objectContaining({ agent: "ops-assistant" })]),
    );
    // the records are removed behind the kill's answer
    await live.server.downstreamSettled();
    expect((await live.server.store.downstream.ofWrit(theirs.writ)).map((x) => x.state)).toEqual(["removed"]);
    // and the writ is refused at the endpoint from then on
    await live.server.operator.liftKill({ kind: "agent", agent: "ops-assistant" }, { by: "test" });
  });

  it("an environment kill calls every issuer of the environment", async () => {
    const r = await bot.redeem(
      "aws",
      await bot.writ({ playbook: "fetch", params: { version: "v9" } }, "aws"),
    );
    const before = live.system.calls.length;
    await live.server.operator.engageKill({ kind: "environment", environment: "dev" }, { by: "test" });
    const kills = live.system.calls.slice(before).filter((c) => c.op === "kill");
    expect(kills.map((k) => k.system).sort()).toEqual(["aws", "github", "kubernetes"]);
    expect(live.system.works(r.credential.secretAccessKey as string)).toBe(false);
    await live.server.operator.liftKill({ kind: "environment", environment: "dev" }, { by: "test" });
  });
});

describe("the reaper", () => {
  it("removes what a crash between intent and creation left, once its writ is revoked", async () => {
    const token = await bot.writ(restart, "kubernetes");
    live.system.crashAfterIntent = true;
    const res = await fetchRedeem(bot, "kubernetes", token);
    live.system.crashAfterIntent = false;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { reason: string }).reason).toBe("downstream_unavailable");
    const writ = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).writ as string;
    expect((await live.server.store.downstream.ofWrit(writ)).map((x) => x.state)).toEqual(["intended"]);
    expect((await auditOf("downstream.issue_failed")).some((d) => d.writ === writ)).toBe(true);
    // not due while its writ is alive
    await live.server.reaper!.pass();
    expect((await live.server.store.downstream.ofWrit(writ)).map((x) => x.state)).toEqual(["intended"]);
    await live.server.store.writs.revoke(writ, "test");
    await live.server.reaper!.pass();
    expect((await live.server.store.downstream.ofWrit(writ)).map((x) => x.state)).toEqual(["removed"]);
    expect((await auditOf("downstream.removed")).some((d) => d.writ === writ && d.by === "reaper")).toBe(
      true,
    );
  });

  it("audits a failed removal with its cause and retries it on the next pass", async () => {
    const r = await bot.redeem("kubernetes", await bot.writ(restart, "kubernetes"));
    live.system.failRevoke = true;
    await live.server.store.writs.revoke(r.writ, "test: direct, so no hook runs");
    const first = await live.server.reaper!.pass();
    expect(first.failed).toBeGreaterThanOrEqual(1);
    const failed = (await auditOf("downstream.remove_failed")).filter((d) => d.writ === r.writ);
    expect(failed[0]).toMatchObject({ by: "reaper", cause: "the test system is unreachable" });
    expect(live.system.works(r.credential.token as string)).toBe(true);
    live.system.failRevoke = false;
    await live.server.reaper!.pass();
    expect(live.system.works(r.credential.token as string)).toBe(false);
    expect((await live.server.store.downstream.ofWrit(r.writ)).map((x) => x.state)).toEqual(["removed"]);
  });
});
