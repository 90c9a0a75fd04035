/**
 * `writ approve`, `writ deny`, `writ approvals list`, run as the built CLI against a temporary data
 * folder (and PostgreSQL, when reachable) seeded through the repository API.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openAuditLog } from "../../src/audit/index.js";
import {
  type ApprovalService,
  approvalService,
  type NewApprovalRequest,
} from "../../src/broker/approvals.js";
import { openStore, type Store } from "../../src/store/index.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { assertBuilt, type CliResult, runCli } from "../support/cli.js";

const CONFIG = join(import.meta.dirname, "..", "fixtures", "approvals", "writ.yaml");
const HOUR = 3600_000;

function request(over: Partial<NewApprovalRequest> = {}): NewApprovalRequest {
  return {
    agent: "release-bot",
    playbook: "deploy-service",
    params: { service: "api", tag: "v1.2.3" },
    environment: "prod",
    ticket: "CHG-1234",
    requester: "rita@acme.example",
    expiresAt: new Date(Date.now() + HOUR),
    ...over,
  };
}

let root = "";
let data = "";
const ids: Record<string, string> = {};

/** Opens the data folder's store for the seeding or checking in `fn`, then closes it (the CLI needs the lock). */
async function withService<T>(fn: (svc: ApprovalService, store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ dataDir: data });
  try {
    return await fn(approvalService(store), store);
  } finally {
    await store.close();
  }
}

async function writ(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const run = await runCli([...args, "--config", CONFIG], {
    env: { WRIT_DATA_DIR: data, WRIT_DATABASE_URL: "", WRIT_APPROVER: "", ...env },
  });
  expect(run.stderr).not.toMatch(/\n\s+at /); // never a stack trace
  return run;
}

const errorCode = (run: CliResult) => (JSON.parse(run.stderr) as { error: { code: string } }).error.code;

beforeAll(async () => {
  assertBuilt();
  root = await mkdtemp(join(tmpdir(), "writ-approve-"));
  data = join(root, "data");
  await withService(async (svc, store) => {
    await store.migrate();
    const now = new Date();
    ids.and = (await svc.createRequest(request())).id;
    // asked through CIBA: the audience the writ will name is part of the request
    ids.owner = (await svc.createRequest(request({ audience: "https://k8s.acme.example" }))).id;
    ids.deny = (await svc.createRequest(request())).id;
    ids.env = (
      await svc.createRequest(request({ playbook: "rollback-service", params: { service: "web" } }))
    ).id;
    ids.dev = (
      await svc.createRequest(
        request({ playbook: "restart-pods", params: { service: "web" }, environment: "dev" }),
      )
    ).id;
    ids.expired = (
      await svc.createRequest(request({ expiresAt: new Date(now.getTime() - 1000) }), {
        now: new Date(now.getTime() - HOUR),
      })
    ).id;
  });
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("writ approve / deny", () => {
  it("AND of groups: one SRE leaves it pending, a manager approves it", async () => {
    const first = await writ(["approve", ids.and!, "--as", "bob@acme.example"]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`approved \`${ids.and}\` as bob@acme.example`);
    expect(first.stdout).toContain("still pending: 1 more from `managers`");

    const second = await writ(["approve", ids.and!, "--json"], { WRIT_APPROVER: "Carol@acme.example" });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      id: ids.and,
      decision: "approve",
      approver: "carol@acme.example",
      status: "approved",
      missing: null,
      counted: [
        { approver: "bob@acme.example", group: "sre" },
        { approver: "carol@acme.example", group: "managers" },
      ],
    });

    const closed = await writ(["approve", ids.and!, "--as", "dan@acme.example", "--json"]);
    expect(closed.code).toBe(1);
    expect(errorCode(closed)).toBe("ERR_APPROVAL_CLOSED");
  });

  it("self-approval by the agent's owner is refused: exit 1", async () => {
    const run = await writ(["approve", ids.owner!, "--as", "alice@acme.example"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^writ: `alice@acme\.example` cannot approve request .* owns agent `release-bot`/,
    );
    const json = await writ(["approve", ids.owner!, "--as", "alice@acme.example", "--json"]);
    expect(errorCode(json)).toBe("ERR_APPROVAL_SELF");
  });

  it("someone in no named group, a duplicate, an unknown id: exit 1 with the code", async () => {
    const outsider = await writ(["approve", ids.owner!, "--as", "o3@acme.example", "--json"]);
    expect([outsider.code, errorCode(outsider)]).toEqual([1, "ERR_APPROVAL_NOT_APPROVER"]);
    expect((await writ(["approve", ids.owner!, "--as", "bob@acme.example"])).code).toBe(0);
    const again = await writ(["approve", ids.owner!, "--as", "bob@acme.example", "--json"]);
    expect([again.code, errorCode(again)]).toEqual([1, "ERR_APPROVAL_DUPLICATE"]);
    const unknown = await writ(["approve", "ar_nothing", "--as", "bob@acme.example", "--json"]);
    expect([unknown.code, errorCode(unknown)]).toEqual([1, "ERR_APPROVAL_NOT_FOUND"]);
  });

  it("an expired request is refused and marked expired", async () => {
    const run = await writ(["approve", ids.expired!, "--as", "bob@acme.example", "--json"]);
    expect([run.code, errorCode(run)]).toEqual([1, "ERR_APPROVAL_EXPIRED"]);
    expect((await withService((svc) => svc.get(ids.expired!)))?.status).toBe("expired");
  });

  it("deny needs --reason (exit 2); with one, it denies", async () => {
    const bare = await writ(["deny", ids.deny!, "--as", "dan@acme.example"]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("--reason");
    const run = await writ(["deny", ids.deny!, "--as", "dan@acme.example", "--reason", "release freeze"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`denied \`${ids.deny}\` as dan@acme.example`);
    expect(run.stdout).toContain("now denied");
    const stored = await withService((svc) => svc.get(ids.deny!));
    expect(stored?.status).toBe("denied");
    expect(stored?.decisions[0]).toMatchObject({ decision: "deny", reason: "release freeze" });
  });

  it("usage errors: no approver, a missing config", async () => {
    const noOne = await writ(["approve", ids.env!]);
    expect(noOne.code).toBe(2);
    expect(noOne.stderr).toContain("--as APPROVER");
    const noConfig = await runCli(
      ["approve", ids.env!, "--as", "bob@acme.example", "--config", join(root, "nope.yaml")],
      {
        env: { WRIT_DATA_DIR: data, WRIT_DATABASE_URL: "" },
      },
    );
    expect(noConfig.code).toBe(2);
  });

  it("a data folder without a store: exit 3", async () => {
    const run = await runCli(["approvals", "list", "--config", CONFIG], {
      env: { WRIT_DATA_DIR: join(root, "empty"), WRIT_DATABASE_URL: "" },
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^writ: no embedded database/);
  });

  it("decisions land in the audit log", async () => {
    const records = await withService((_svc, store) => openAuditLog({ repo: store.audit }).tail(100));
    const types = records.map((r) => `${r.type}:${String(r.data.code ?? r.data.status)}`);
    expect(types).toContain("approval.decision:approved");
    expect(types).toContain("approval.refused:ERR_APPROVAL_SELF");
    expect(types).toContain("approval.decision:denied");
  });
});

describe("writ approvals list", () => {
  it("lists pending requests with what is missing, filtered by environment", async () => {
    const run = await writ(["approvals", "list", "--json"]);
    expect(run.code).toBe(0);
    const { requests } = JSON.parse(run.stdout) as { requests: Record<string, unknown>[] };
    const byId = new Map(requests.map((r) => [r.id, r]));
    expect(byId.has(ids.and)).toBe(false); // approved
    expect(byId.has(ids.deny)).toBe(false); // denied
    expect(byId.has(ids.expired)).toBe(false);
    expect(byId.get(ids.owner)).toMatchObject({
      agent: "release-bot",
      playbook: "deploy-service",
      environment: "prod",
      params: { service: "api", tag: "v1.2.3" },
      ticket: "CHG-1234",
      audience: "https://k8s.acme.example",
      requester: "rita@acme.example",
      status: "pending",
      missing: "1 more from `managers`",
    });
    expect(byId.get(ids.env)).toMatchObject({ missing: "1 more from `sre` or 1 more from `managers`" });
    // restart-pods needs no approval in dev: the list says so instead of failing.
    expect(byId.get(ids.dev)).toMatchObject({
      missing: null,
      problem: expect.stringContaining("needs no approval"),
    });

    const prod = await writ(["approvals", "list", "--env", "prod"]);
    expect(prod.code).toBe(0);
    expect(prod.stdout).toContain(ids.owner);
    expect(prod.stdout).toContain(
      'release-bot: deploy-service in prod {"service":"api","tag":"v1.2.3"}, ticket CHG-1234, for https://k8s.acme.example',
    );
    expect(prod.stdout).toContain("approved so far: bob@acme.example");
    expect(prod.stdout).toContain("missing: 1 more from `managers`");
    expect(prod.stdout).not.toContain(ids.dev);

    const none = await writ(["approvals", "list", "--env", "staging"]);
    expect([none.code, none.stdout.trim()]).toEqual([0, "no pending approval requests in `staging`"]);
  });
});

describe.skipIf(!postgresEnabled)("writ approve on PostgreSQL (WRIT_DATABASE_URL)", () => {
  let temp: TempDatabase;
  let id = "";
  beforeAll(async () => {
    temp = await createTempDatabase();
    const store = await openStore({ databaseUrl: temp.url });
    try {
      await store.migrate();
      id = (
        await approvalService(store).createRequest(
          request({ playbook: "restart-pods", params: { service: "api" } }),
        )
      ).id;
    } finally {
      await store.close();
    }
  });
  afterAll(() => temp?.drop());

  it("two SREs approve restart-pods", async () => {
    const env = { WRIT_DATABASE_URL: temp.url };
    const one = await writ(["approve", id, "--as", "bob@acme.example"], env);
    expect([one.code, one.stdout]).toEqual([0, expect.stringContaining("still pending: 1 more from `sre`")]);
    const two = await writ(["approve", id, "--as", "ian@acme.example", "--json"], env);
    expect(two.code).toBe(0);
    expect(JSON.parse(two.stdout)).toMatchObject({ status: "approved" });
  });
});
