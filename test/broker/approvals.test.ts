/**
 * Approval requests over the store, on PGlite and PostgreSQL: every approval rule, binding,
 * expiry, duplicates, deny, concurrent deciders, consume-once and CIBA slow_down.
 */
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApprovalRequest,
  type ApprovalService,
  approvalBinding,
  approvalService,
  type DecisionInput,
  ERR_APPROVAL_BINDING,
  ERR_APPROVAL_CLOSED,
  ERR_APPROVAL_DUPLICATE,
  ERR_APPROVAL_EXPIRED,
  ERR_APPROVAL_INVALID,
  ERR_APPROVAL_NO_POLICY,
  ERR_APPROVAL_NOT_APPROVED,
  ERR_APPROVAL_NOT_APPROVER,
  ERR_APPROVAL_NOT_FOUND,
  ERR_APPROVAL_SELF,
  evaluateRequest,
  type NewApprovalRequest,
} from "../../src/broker/approvals.js";
import { loadConfigFile } from "../../src/config/index.js";
import { evaluateApproval, type WritConfig } from "../../src/core/index.js";
import { asAttacker, forEachBackend } from "../store/backends.js";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "approvals", "writ.yaml");

let config: WritConfig;
beforeAll(async () => {
  const loaded = await loadConfigFile(FIXTURE);
  if (!loaded.config) throw new Error(`fixture: ${JSON.stringify(loaded.problems)}`);
  config = loaded.config;
});

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function request(over: Partial<NewApprovalRequest> = {}): NewApprovalRequest {
  return {
    agent: "release-bot",
    playbook: "deploy-service",
    params: { service: "api", tag: "v1.2.3" },
    environment: "prod",
    ticket: "CHG-1234",
    requester: "rita@acme.example",
    expiresAt: at(600),
    ...over,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return "no error";
}

const approve = (approver: string, reason?: string): DecisionInput => ({
  approver,
  decision: "approve",
  reason,
});
const deny = (approver: string, reason = "not now"): DecisionInput => ({
  approver,
  decision: "deny",
  reason,
});

describe("approvalBinding", () => {
  const subject = {
    agent: "release-bot",
    playbook: "deploy-service",
    params: { service: "api", tag: "v1.2.3" },
    environment: "prod",
    ticket: "CHG-1",
  };

  it("is the SHA-256 of the canonical JSON, independent of key order", () => {
    const b = approvalBinding(subject);
    expect(b).toMatch(/^[0-9a-f]{64}$/);
    expect(approvalBinding({ ...subject, params: { tag: "v1.2.3", service: "api" } })).toBe(b);
  });

  it("changes with each bound field", () => {
    const b = approvalBinding(subject);
    expect(approvalBinding({ ...subject, params: { service: "api", tag: "v1.2.4" } })).not.toBe(b);
    expect(approvalBinding({ ...subject, params: { service: "api", tag: "v1.2.3", extra: 1 } })).not.toBe(b);
    expect(approvalBinding({ ...subject, agent: "other-bot" })).not.toBe(b);
    expect(approvalBinding({ ...subject, playbook: "rollback-service" })).not.toBe(b);
    expect(approvalBinding({ ...subject, environment: "dev" })).not.toBe(b);
    expect(approvalBinding({ ...subject, ticket: "CHG-2" })).not.toBe(b);
    expect(approvalBinding({ ...subject, ticket: undefined })).not.toBe(b);
  });
});

forEachBackend("approvals", (h) => {
  let svc: ApprovalService;
  const events: { type: string; data: Readonly<Record<string, unknown>> }[] = [];

  beforeAll(async () => {
    await h.setup();
    svc = approvalService(h.store, {
      audit: {
        append: async (type, data) => {
          events.push({ type, data });
        },
      },
    });
  });
  afterAll(() => h.teardown());

  const create = (over: Partial<NewApprovalRequest> = {}) => svc.createRequest(request(over), { now: T0 });
  const decide = (r: ApprovalRequest, input: DecisionInput, seconds = 1) =>
    svc.decide(r.id, input, { config, now: at(seconds) });

  describe("createRequest", () => {
    it("stores a pending request with an unguessable id and its binding", async () => {
      const r = await create();
      expect(r.id).toMatch(/^ar_[A-Za-z0-9_-]{43}$/);
      expect(r).toMatchObject({
        kind: "approval-request",
        status: "pending",
        agent: "release-bot",
        ticket: "CHG-1234",
        pollInterval: 5,
        decisions: [],
        binding: approvalBinding(request()),
      });
      expect(await svc.get(r.id)).toEqual(r);
      const other = await create();
      expect(other.id).not.toBe(r.id);
    });

    it("refuses malformed input with ERR_APPROVAL_INVALID", async () => {
      expect(await codeOf(create({ agent: "" }))).toBe(ERR_APPROVAL_INVALID);
      expect(await codeOf(create({ expiresAt: T0 }))).toBe(ERR_APPROVAL_INVALID);
      expect(await codeOf(create({ params: [] as unknown as Record<string, unknown> }))).toBe(
        ERR_APPROVAL_INVALID,
      );
      expect(await codeOf(create({ params: { x: undefined } }))).toBe(ERR_APPROVAL_INVALID);
      expect(await codeOf(create({ params: { x: "a\u0000b" } }))).toBe(ERR_APPROVAL_INVALID);
      expect(await codeOf(create({ pollInterval: 0 }))).toBe(ERR_APPROVAL_INVALID);
      const r = await create();
      expect(await codeOf(create({ id: r.id }))).toBe(ERR_APPROVAL_INVALID);
    });

    it("get of an unknown id is undefined", async () => {
      expect(await svc.get("ar_nope")).toBeUndefined();
    });
  });

  describe("AND of groups: deploy-service in prod needs sre AND managers", () => {
    it("one of each: approved", async () => {
      const r = await create();
      const first = await decide(r, approve("bob@acme.example"));
      expect(first.request.status).toBe("pending");
      expect(first.evaluation).toMatchObject({ state: "pending", missing: "1 more from `managers`" });
      const second = await decide(r, approve("carol@acme.example"), 2);
      expect(second.request).toMatchObject({ status: "approved", decidedAt: at(2) });
      expect((await svc.get(r.id))?.status).toBe("approved");
    });

    it("two SREs: still pending", async () => {
      const r = await create({ requester: "rita@acme.example" });
      await decide(r, approve("bob@acme.example"));
      const second = await decide(r, approve("ian@acme.example"), 2);
      expect(second.request.status).toBe("pending");
      expect(second.evaluation.missing).toBe("1 more from `managers`");
    });

    it("one person in both groups: still pending", async () => {
      const r = await create();
      const only = await decide(r, approve("sam@acme.example"));
      expect(only.request.status).toBe("pending");
      expect((await svc.get(r.id))?.status).toBe("pending");
      const next = await decide(r, approve("bob@acme.example"), 2);
      expect(next.request.status).toBe("approved");
    });
  });

  it("OR: either group approves rollback-service", async () => {
    const a = await create({ playbook: "rollback-service", params: { service: "api" } });
    expect((await decide(a, approve("dan@acme.example"))).request.status).toBe("approved");
    const b = await create({ playbook: "rollback-service", params: { service: "api" } });
    expect((await decide(b, approve("bob@acme.example"))).request.status).toBe("approved");
  });

  it("counts: restart-pods needs two distinct SREs", async () => {
    const r = await create({ playbook: "restart-pods", params: { service: "web" } });
    expect((await decide(r, approve("bob@acme.example"))).evaluation.missing).toBe("1 more from `sre`");
    expect((await decide(r, approve("sam@acme.example"), 2)).request.status).toBe("approved");
  });

  describe("self-approval", () => {
    it("the requester is refused with ERR_APPROVAL_SELF", async () => {
      const r = await create({ requester: "bob@acme.example" });
      expect(await codeOf(decide(r, approve("bob@acme.example")))).toBe(ERR_APPROVAL_SELF);
      expect(await codeOf(decide(r, approve(" BOB@acme.example ")))).toBe(ERR_APPROVAL_SELF);
      expect((await svc.get(r.id))?.decisions).toEqual([]);
    });

    it("the agent's owner is refused with ERR_APPROVAL_SELF", async () => {
      const r = await create(); // release-bot's owner is alice
      expect(await codeOf(decide(r, approve("alice@acme.example")))).toBe(ERR_APPROVAL_SELF);
    });

    it("allowed where the playbook says allowSelfApproval", async () => {
      const r = await create({
        playbook: "self-service",
        params: { service: "api" },
        requester: "bob@acme.example",
      });
      expect((await decide(r, approve("bob@acme.example"))).request.status).toBe("approved");
      const owned = await create({ playbook: "self-service", params: { service: "api" } });
      expect((await decide(owned, approve("alice@acme.example"))).request.status).toBe("approved");
    });

    it("the requester may still deny their own request", async () => {
      const r = await create({ requester: "bob@acme.example" });
      expect((await decide(r, deny("bob@acme.example", "withdrawn"))).request.status).toBe("denied");
    });
  });

  it("someone in no group the policy names is refused with ERR_APPROVAL_NOT_APPROVER", async () => {
    const r = await create();
    expect(await codeOf(decide(r, approve("o1@acme.example")))).toBe(ERR_APPROVAL_NOT_APPROVER);
    expect(await codeOf(decide(r, deny("mallory@evil.example")))).toBe(ERR_APPROVAL_NOT_APPROVER);
  });

  it("a second decision by the same approver is refused with ERR_APPROVAL_DUPLICATE", async () => {
    const r = await create();
    await decide(r, approve("bob@acme.example"));
    expect(await codeOf(decide(r, approve("bob@acme.example"), 2))).toBe(ERR_APPROVAL_DUPLICATE);
    expect(await codeOf(decide(r, approve("Bob@ACME.example"), 2))).toBe(ERR_APPROVAL_DUPLICATE);
    expect(await codeOf(decide(r, deny("bob@acme.example"), 2))).toBe(ERR_APPROVAL_DUPLICATE);
    expect((await svc.get(r.id))?.decisions).toHaveLength(1);
  });

  describe("deny", () => {
    it("wins: one member's deny denies, and the request is closed", async () => {
      const r = await create();
      await decide(r, approve("bob@acme.example"));
      const denied = await decide(r, deny("dan@acme.example", "release freeze"), 2);
      expect(denied.request.status).toBe("denied");
      expect(denied.evaluation.deniedBy).toEqual(["dan@acme.example"]);
      expect(await codeOf(decide(r, approve("carol@acme.example"), 3))).toBe(ERR_APPROVAL_CLOSED);
      const stored = await svc.get(r.id);
      expect(stored?.decisions.map((d) => [d.approver, d.decision, d.reason])).toEqual([
        ["bob@acme.example", "approve", undefined],
        ["dan@acme.example", "deny", "release freeze"],
      ]);
    });

    it("needs a reason", async () => {
      const r = await create();
      expect(
        await codeOf(svc.decide(r.id, { approver: "bob@acme.example", decision: "deny" }, { config })),
      ).toBe(ERR_APPROVAL_INVALID);
      expect(await codeOf(decide(r, deny("bob@acme.example", "   ")))).toBe(ERR_APPROVAL_INVALID);
    });
  });

  it("an approved request is closed to further decisions", async () => {
    const r = await create({ playbook: "rollback-service", params: { service: "api" } });
    await decide(r, approve("bob@acme.example"));
    expect(await codeOf(decide(r, approve("carol@acme.example"), 2))).toBe(ERR_APPROVAL_CLOSED);
    expect(await codeOf(decide(r, deny("carol@acme.example"), 2))).toBe(ERR_APPROVAL_CLOSED);
  });

  it("unknown request: ERR_APPROVAL_NOT_FOUND everywhere", async () => {
    expect(await codeOf(svc.decide("ar_missing", approve("bob@acme.example"), { config }))).toBe(
      ERR_APPROVAL_NOT_FOUND,
    );
    expect(await codeOf(svc.status("ar_missing", { binding: "0".repeat(64) }))).toBe(ERR_APPROVAL_NOT_FOUND);
    expect(await codeOf(svc.consume("ar_missing", "w-1"))).toBe(ERR_APPROVAL_NOT_FOUND);
    expect(await codeOf(svc.pollTooFast("ar_missing"))).toBe(ERR_APPROVAL_NOT_FOUND);
  });

  it("a playbook the config no longer asks approval for: ERR_APPROVAL_NO_POLICY", async () => {
    const r = await create({ environment: "dev" });
    expect(await codeOf(decide(r, approve("bob@acme.example")))).toBe(ERR_APPROVAL_NO_POLICY);
    const gone = await create({ playbook: "retired-playbook" });
    expect(await codeOf(decide(gone, approve("bob@acme.example")))).toBe(ERR_APPROVAL_NO_POLICY);
  });

  describe("expiry", () => {
    it("deciding after expiry is refused and marks the request expired", async () => {
      const r = await create({ expiresAt: at(60) });
      expect(await codeOf(decide(r, approve("bob@acme.example"), 60))).toBe(ERR_APPROVAL_EXPIRED);
      expect((await svc.get(r.id))?.status).toBe("expired");
      expect(await codeOf(decide(r, approve("carol@acme.example"), 61))).toBe(ERR_APPROVAL_EXPIRED);
      expect(await svc.status(r.id, { binding: r.binding, now: at(61) })).toMatchObject({
        status: "expired",
      });
    });

    it("an approval expires with its request: status says expired, consume is refused", async () => {
      const r = await create({ playbook: "rollback-service", params: { service: "api" }, expiresAt: at(60) });
      await decide(r, approve("bob@acme.example"));
      expect((await svc.status(r.id, { binding: r.binding, now: at(59) })).status).toBe("approved");
      expect(await codeOf(svc.consume(r.id, "w-late", { now: at(60) }))).toBe(ERR_APPROVAL_EXPIRED);
      expect((await svc.status(r.id, { binding: r.binding, now: at(61) })).status).toBe("expired");
      expect((await svc.get(r.id))?.status).toBe("expired");
    });
  });

  describe("binding", () => {
    it("status refuses a binding for other parameters", async () => {
      const r = await create({ playbook: "rollback-service", params: { service: "api" } });
      await decide(r, approve("bob@acme.example"));
      const other = approvalBinding(request({ playbook: "rollback-service", params: { service: "web" } }));
      expect(await codeOf(svc.status(r.id, { binding: other, now: at(2) }))).toBe(ERR_APPROVAL_BINDING);
      expect(await codeOf(svc.consume(r.id, "w-other", { binding: other, now: at(2) }))).toBe(
        ERR_APPROVAL_BINDING,
      );
      expect((await svc.status(r.id, { binding: r.binding, now: at(2) })).status).toBe("approved");
    });

    it("a request whose stored parameters were edited no longer matches its binding", async () => {
      const r = await create({ playbook: "rollback-service", params: { service: "api" } });
      await asAttacker(h.store.db, async (trx) => {
        await sql`update approval_requests set params = '{"service":"web"}'::jsonb where id = ${r.id}`.execute(
          trx,
        );
      });
      expect(await codeOf(svc.status(r.id, { binding: r.binding, now: at(1) }))).toBe(ERR_APPROVAL_BINDING);
    });
  });

  describe("consume", () => {
    it("approved → consumed exactly once", async () => {
      const r = await create({ playbook: "rollback-service", params: { service: "api" } });
      expect(await codeOf(svc.consume(r.id, "w-early", { now: at(1) }))).toBe(ERR_APPROVAL_NOT_APPROVED);
      await decide(r, approve("bob@acme.example"));
      const consumed = await svc.consume(r.id, "w-1", { binding: r.binding, now: at(2) });
      expect(consumed).toMatchObject({ status: "consumed", writId: "w-1" });
      expect(await codeOf(svc.consume(r.id, "w-2", { now: at(3) }))).toBe(ERR_APPROVAL_CLOSED);
      expect(await svc.status(r.id, { binding: r.binding, now: at(3) })).toMatchObject({
        status: "consumed",
        writId: "w-1",
      });
    });

    it("concurrent consumers: exactly one wins", async () => {
      const r = await create({ playbook: "rollback-service", params: { service: "api" } });
      await decide(r, approve("bob@acme.example"));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => svc.consume(r.id, `w-${i}`, { now: at(2) })),
      );
      expect(results.filter((x) => x.status === "fulfilled")).toHaveLength(1);
      for (const x of results) {
        if (x.status === "rejected") expect((x.reason as { code: string }).code).toBe(ERR_APPROVAL_CLOSED);
      }
    });

    it("a denied request cannot be consumed", async () => {
      const r = await create();
      await decide(r, deny("bob@acme.example"));
      expect(await codeOf(svc.consume(r.id, "w-x", { now: at(2) }))).toBe(ERR_APPROVAL_CLOSED);
    });
  });

  describe("concurrent decisions", () => {
    it("10 approvers at once on 3-of-10: exactly 3 count, the rest find it closed", async () => {
      const r = await create({ playbook: "scale-deployment", params: { service: "api" } });
      const other = h.second ? approvalService(await h.second()) : svc;
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? svc : other).decide(r.id, approve(`o${i}@acme.example`), { config, now: at(1) }),
        ),
      );
      const ok = results.filter((x) => x.status === "fulfilled");
      expect(ok).toHaveLength(3);
      for (const x of results) {
        if (x.status === "rejected") expect((x.reason as { code: string }).code).toBe(ERR_APPROVAL_CLOSED);
      }
      const stored = (await svc.get(r.id))!;
      expect(stored.status).toBe("approved");
      expect(stored.decisions).toHaveLength(3);
      expect(evaluateRequest(config, stored).state).toBe("approved");
    });

    it("approvals and denials at once end consistent with the decisions stored", async () => {
      for (let round = 0; round < 3; round++) {
        const r = await create();
        const votes = [
          approve("bob@acme.example"),
          approve("carol@acme.example"),
          deny("dan@acme.example"),
          approve("sam@acme.example"),
          deny("bob@acme.example"), // the same person again: at most one of bob's two lands
        ];
        await Promise.allSettled(votes.map((v) => svc.decide(r.id, v, { config, now: at(1) })));
        const stored = (await svc.get(r.id))!;
        const approvers = stored.decisions.map((d) => d.approver);
        expect(new Set(approvers).size).toBe(approvers.length);
        const policy = config.playbooks.get("deploy-service")!.approval.get("prod")!;
        const expected = evaluateApproval(policy, stored.decisions, {
          groups: config.approverGroups,
          requester: stored.requester,
          owner: "alice@acme.example",
          allowSelfApproval: false,
        });
        expect(stored.status).toBe(expected.state);
        expect(stored.status).not.toBe("pending");
      }
    });
  });

  describe("polling", () => {
    it("status reports pending with the interval; pollTooFast grows it by 5 s", async () => {
      const r = await create({ pollInterval: 5 });
      expect(await svc.status(r.id, { binding: r.binding, now: at(1) })).toMatchObject({
        status: "pending",
        pollInterval: 5,
        expiresAt: at(600),
      });
      expect(await svc.pollTooFast(r.id, at(0))).toEqual({ tooFast: false, pollInterval: 5 });
      expect(await svc.pollTooFast(r.id, at(5))).toEqual({ tooFast: false, pollInterval: 5 });
      expect(await svc.pollTooFast(r.id, at(7))).toEqual({ tooFast: true, pollInterval: 10 });
      expect(await svc.pollTooFast(r.id, at(12))).toEqual({ tooFast: true, pollInterval: 15 });
      expect(await svc.pollTooFast(r.id, at(27))).toEqual({ tooFast: false, pollInterval: 15 });
      expect((await svc.get(r.id))?.lastPolledAt).toEqual(at(27));
    });
  });

  it("listPending: pending and unexpired, oldest first, by environment", async () => {
    const svcNow = at(100_000);
    const later = (s: number) => new Date(svcNow.getTime() + s * 1000);
    const a = await svc.createRequest(request({ expiresAt: later(600) }), { now: later(0) });
    const b = await svc.createRequest(
      request({ environment: "dev", ticket: undefined, expiresAt: later(600) }),
      {
        now: later(1),
      },
    );
    const c = await svc.createRequest(request({ expiresAt: later(10) }), { now: later(2) });
    const d = await svc.createRequest(
      request({ playbook: "rollback-service", params: { service: "api" }, expiresAt: later(600) }),
      {
        now: later(3),
      },
    );
    await svc.decide(d.id, approve("bob@acme.example"), { config, now: later(4) });
    await svc.decide(a.id, approve("bob@acme.example"), { config, now: later(5) });
    const ids = (rs: ApprovalRequest[]) =>
      rs.map((x) => x.id).filter((id) => [a.id, b.id, c.id, d.id].includes(id));
    expect(ids(await svc.listPending({ now: later(20) }))).toEqual([a.id, b.id]);
    expect(ids(await svc.listPending({ environment: "prod", now: later(20) }))).toEqual([a.id]);
    const listed = (await svc.listPending({ environment: "prod", now: later(20) })).find(
      (x) => x.id === a.id,
    )!;
    expect(listed.decisions.map((x) => x.approver)).toEqual(["bob@acme.example"]);
    expect(evaluateRequest(config, listed).missing).toBe("1 more from `managers`");
  });

  it("every change is handed to the audit sink", async () => {
    events.length = 0;
    const r = await create({ playbook: "rollback-service", params: { service: "api" } });
    await codeOf(decide(r, approve("alice@acme.example"))); // owner: refused
    await decide(r, approve("bob@acme.example"), 2);
    await svc.consume(r.id, "w-audit", { now: at(3) });
    expect(events.map((e) => e.type)).toEqual([
      "approval.request",
      "approval.refused",
      "approval.decision",
      "approval.consumed",
    ]);
    expect(events[1]?.data).toMatchObject({
      id: r.id,
      approver: "alice@acme.example",
      code: ERR_APPROVAL_SELF,
    });
    expect(events[2]?.data).toMatchObject({
      approver: "bob@acme.example",
      status: "approved",
      binding: r.binding,
    });
  });
});
