/**
 * The decision point's writ index (src/pdp/writ-index.ts) stays exact: through `writ serve`'s own
 * app (createServer, AuthZEN over `app.request`), on the embedded store and on PostgreSQL, a decision
 * sees every issuance, revocation, spent use, expiry and kill — this process's, SQL behind its back
 * (the writ_changes notifications), and another server's on the same PostgreSQL database. And the
 * answer and the audit record stay small whatever the number of writs.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy, type Server } from "../../src/app.js";
import { WritIndex } from "../../src/pdp/index.js";
import { openStore, type Store, toActiveWrit, WRIT_CHANGES_APPLICATION } from "../../src/store/index.js";
import { QUICKSTART } from "../broker/live.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";

const PDP_TOKEN = "writ-index-test-token";
const PATCH = "k8s:apps/deployments:patch";
const GRANTS = [{ action: "k8s:apps/deployments:get|patch", resource: "checkout/checkout" }];

let policy: Policy;
beforeAll(async () => {
  const loaded = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  policy = loaded.policy!;
});

interface Answer {
  readonly decision: boolean;
  readonly context: { reason_code: string; reasons: { kind: string; writ?: string }[] };
  readonly bytes: number;
}

async function decide(server: Server, resource = "checkout/checkout"): Promise<Answer> {
  const res = await server.app.request("/access/v1/evaluation", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${PDP_TOKEN}` },
    body: JSON.stringify({
      subject: { type: "agent", id: "release-bot" },
      action: { name: PATCH },
      resource: { type: "k8s", id: resource },
      context: { environment: "dev" },
    }),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return { ...(JSON.parse(text) as Omit<Answer, "bytes">), bytes: text.length };
}

/** Stores a writ for release-bot in dev, as the broker would. */
async function issue(
  server: Server,
  opts: { maxUses?: number; ttlMs?: number; id?: string } = {},
): Promise<string> {
  const id = opts.id ?? `writ_${randomUUID()}`;
  const now = new Date();
  await server.store.writs.insert({
    id,
    agent: "release-bot",
    playbook: "deploy-service",
    environment: "dev",
    params: { service: "checkout", tag: "v1.0.0" },
    grants: GRANTS,
    issuedAt: now,
    expiresAt: new Date(now.getTime() + (opts.ttlMs ?? 600_000)),
    maxUses: opts.maxUses,
  });
  return id;
}

const cites = (a: Answer) => a.context.reasons.filter((r) => r.kind === "grant" && r.writ).map((r) => r.writ);

interface Backend {
  readonly name: string;
  start(): Promise<Server>;
  cleanup(): Promise<void>;
}

function pglite(): Backend {
  const dirs: string[] = [];
  return {
    name: "pglite",
    async start() {
      const dir = await mkdtemp(join(tmpdir(), "writ-index-"));
      dirs.push(dir);
      return createServer({ policy, dataDir: dir, pdpToken: PDP_TOKEN, version: "test" });
    },
    async cleanup() {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

function postgres(): Backend & { second(): Promise<Server> } {
  const dirs: string[] = [];
  let db: TempDatabase | undefined;
  const start = async () => {
    db ??= await createTempDatabase();
    const dir = await mkdtemp(join(tmpdir(), "writ-index-pg-"));
    dirs.push(dir);
    return createServer({ policy, dataDir: dir, databaseUrl: db.url, pdpToken: PDP_TOKEN, version: "test" });
  };
  return {
    name: "postgres",
    start,
    second: start,
    async cleanup() {
      await db?.drop();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

const backends = [pglite(), ...(postgresEnabled ? [postgres()] : [])];

/** A server on `backend` for the enclosing describe block, closed after it. */
function serverFor(backend: Backend): () => Server {
  let server: Server | undefined;
  beforeAll(async () => {
    server = await backend.start();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await backend.cleanup();
  });
  return () => server!;
}

for (const backend of backends) {
  describe(`the writ index behind AuthZEN [${backend.name}]`, () => {
    const current = serverFor(backend);
    let server: Server;
    beforeAll(() => {
      server = current();
    });

    it("sees this process's issuance, spent uses, revocation and a kill at once", async () => {
      expect((await decide(server)).decision).toBe(false);
      const spendable = await issue(server, { maxUses: 2 });
      const allowed = await decide(server);
      expect(allowed.decision).toBe(true);
      expect(cites(allowed)).toEqual([spendable]);
      await server.store.writs.spendUse(spendable);
      expect((await decide(server)).decision).toBe(true);
      await server.store.writs.spendUse(spendable);
      expect((await decide(server)).context.reason_code).toBe("no_grant");

      const revocable = await issue(server);
      expect(cites(await decide(server))).toEqual([revocable]);
      await server.store.writs.revoke(revocable, "test");
      expect((await decide(server)).context.reason_code).toBe("no_grant");

      const killed = await issue(server);
      expect(cites(await decide(server))).toEqual([killed]);
      const kill = await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
      expect(kill.revoked.map((w) => w.id)).toContain(killed);
      expect((await decide(server)).context.reason_code).toBe("no_grant");
      await server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    });

    it("sees writs changed by SQL behind its back (the writ_changes notifications)", async () => {
      const id = await issue(server);
      expect(cites(await decide(server))).toEqual([id]);
      const now = new Date();
      await server.store.db
        .updateTable("writs")
        .set({ status: "revoked", revoked_at: now, revoked_reason: "by hand" })
        .where("id", "=", id)
        .execute();
      await server.store.writChanges.sync();
      expect((await decide(server)).context.reason_code).toBe("no_grant");

      // a writ inserted by someone else entirely, then shortened to expire in the past
      const other = `writ_${randomUUID()}`;
      await sql`
        insert into writs (id, agent, playbook, environment, grants, issued_at, expires_at)
        values (${other}, 'release-bot', 'deploy-service', 'dev', ${JSON.stringify(GRANTS)}::jsonb,
                ${new Date(now.getTime() - 1000)}, ${new Date(now.getTime() + 600_000)})`.execute(
        server.store.db,
      );
      await server.store.writChanges.sync();
      expect(cites(await decide(server))).toEqual([other]);
      await server.store.db
        .updateTable("writs")
        .set({ expires_at: new Date(now.getTime() - 1) })
        .where("id", "=", other)
        .execute();
      await server.store.writChanges.sync();
      expect((await decide(server)).context.reason_code).toBe("no_grant");
    });

    it("lets a writ expire by the clock", async () => {
      const id = await issue(server, { ttlMs: 1500 });
      expect(cites(await decide(server))).toEqual([id]);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await decide(server)).context.reason_code).toBe("no_grant");
    });
  });
}

if (postgresEnabled) {
  describe("two servers on one PostgreSQL database", () => {
    const backend = postgres();
    let a: Server;
    let b: Server;
    beforeAll(async () => {
      a = await backend.start();
      b = await backend.second();
    }, 60_000);
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await backend.cleanup();
    });

    it("see each other's issuance, revocations and kills through NOTIFY", async () => {
      expect((await decide(b)).decision).toBe(false); // b holds release-bot's writs from here on
      const id = await issue(a);
      await b.store.writChanges.sync();
      expect(cites(await decide(b))).toEqual([id]);
      await a.store.writs.revoke(id, "revoked on a");
      await b.store.writChanges.sync();
      expect((await decide(b)).context.reason_code).toBe("no_grant");

      const spent = await issue(a, { maxUses: 1 });
      await b.store.writChanges.sync();
      expect(cites(await decide(b))).toEqual([spent]);
      await a.store.writs.spendUse(spent);
      await b.store.writChanges.sync();
      expect((await decide(b)).context.reason_code).toBe("no_grant");

      const killed = await issue(b);
      expect(cites(await decide(b))).toEqual([killed]);
      await a.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test on a" });
      await b.store.writChanges.sync();
      expect((await decide(b)).context.reason_code).toBe("no_grant");
    });
  });
}

if (postgresEnabled) {
  describe("the PostgreSQL listener", () => {
    const current = serverFor(postgres());

    it("while its connection is down, decisions read the store; back, they follow notifications again", async () => {
      const server = current();
      const id = await issue(server);
      expect(cites(await decide(server))).toEqual([id]); // the first decision starts the listener
      while (!server.store.writChanges.live) await new Promise((r) => setTimeout(r, 20));
      expect(cites(await decide(server))).toEqual([id]);
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where application_name = ${WRIT_CHANGES_APPLICATION} and datname = current_database()`.execute(
        server.store.db,
      );
      while (server.store.writChanges.live) await new Promise((r) => setTimeout(r, 20));
      // revoked where the listener cannot hear it: the decision must not use what it held
      await server.store.db
        .updateTable("writs")
        .set({ status: "revoked", revoked_at: new Date(), revoked_reason: "while deaf" })
        .where("id", "=", id)
        .execute();
      expect((await decide(server)).context.reason_code).toBe("no_grant");
      while (!server.store.writChanges.live) await new Promise((r) => setTimeout(r, 50));
      const again = await issue(server);
      expect(cites(await decide(server))).toEqual([again]);
      await server.store.db
        .updateTable("writs")
        .set({ status: "revoked", revoked_at: new Date(), revoked_reason: "heard" })
        .where("id", "=", again)
        .execute();
      await server.store.writChanges.sync();
      expect((await decide(server)).context.reason_code).toBe("no_grant");
    });
  });
}

describe("many writs for one agent", () => {
  const current = serverFor(pglite());
  let server: Server;
  beforeAll(() => {
    server = current();
  });

  it("give a small answer and a small audit record: only the deciding writ is cited", async () => {
    const now = new Date();
    await sql`
      insert into writs (id, agent, playbook, environment, grants, issued_at, expires_at)
      select 'bulk-' || lpad(i::text, 5, '0'), 'release-bot', 'deploy-service', 'dev',
             ${JSON.stringify(GRANTS)}::jsonb, ${new Date(now.getTime() - 1000)}, ${new Date(now.getTime() + 600_000)}
      from generate_series(1, 3000) as i`.execute(server.store.db);
    const answer = await decide(server);
    expect(answer.decision).toBe(true);
    expect(cites(answer)).toEqual(["bulk-00001"]);
    expect(answer.context.reasons.length).toBeLessThanOrEqual(3);
    expect(answer.bytes).toBeLessThan(4096);
    const last = await sql<{ type: string; size: number }>`
      select type, length(data::text) as size from audit_records order by seq desc limit 1`.execute(
      server.store.db,
    );
    expect(last.rows[0]).toMatchObject({ type: "pdp.decision" });
    expect(last.rows[0]!.size).toBeLessThan(4096);
  });
});

describe("WritIndex over a store", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "writ-index-direct-"));
    store = await openStore({ dataDir: dir });
    await store.migrate();
  });
  afterAll(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads an agent's writs once, then follows changes and the clock without reading again", async () => {
    let now = new Date();
    let loads = 0;
    const index = new WritIndex({
      load: async (agent, at) => {
        loads++;
        return (await store.writs.listUnexpired(agent, at)).map(toActiveWrit);
      },
      changes: store.writChanges,
      clock: () => now,
    });
    const held = async () => {
      const writs = await index.writsOf("release-bot");
      return "size" in writs ? writs.size : writs.length;
    };
    await store.writChanges.sync();
    expect(await held()).toBe(0);
    await store.writChanges.sync();
    const base = {
      agent: "release-bot",
      playbook: "deploy-service",
      environment: "dev",
      params: {},
      grants: GRANTS,
    };
    await store.writs.insert({
      ...base,
      id: "w-short",
      issuedAt: now,
      expiresAt: new Date(now.getTime() + 60_000),
    });
    await store.writs.insert({
      ...base,
      id: "w-long",
      issuedAt: now,
      expiresAt: new Date(now.getTime() + 600_000),
    });
    expect(await held()).toBe(2);
    const loadsAfterIssuance = loads;
    for (let i = 0; i < 50; i++) expect(await held()).toBe(2);
    now = new Date(now.getTime() + 120_000);
    expect(await held()).toBe(1);
    expect(loads).toBe(loadsAfterIssuance);
    index.close();
  });
});
