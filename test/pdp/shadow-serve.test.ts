/**
 * Shadow mode through a real server in this process (createServer over the embedded store): the
 * quickstart with the `analyst` runner class's ceiling in `mode: shadow` and a second guardrail
 * source in shadow. Each would-have-denied is in the AuthZEN response's context, in the decision's
 * audit record, on the request's log line and in the metrics; an enforcing deny still denies with
 * the shadow records alongside; `writ report shadow` (run as the CLI runs it, on the data folder)
 * groups them by rule, agent and reason.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { main } from "../../src/cli/main.js";
import { createLogger, lineDestination } from "../../src/http/log.js";
import { exchangeClient } from "../broker/exchange-client.js";
import { quickstartCopy } from "../http/support.js";

const BASE = "http://127.0.0.1:9";
const PDP_TOKEN = "shadow-test-pdp-token-0123456789";

const SHADOW_GUARDRAIL = `  - mode: shadow
    inline: |
      @id("no-q4-reads")
      forbid (principal, action == Writ::Action::"aws:s3:GetObject", resource)
      when { resource.id like "*q4*" };
      @id("no-notes-at-all")
      forbid (principal, action == Writ::Action::"mcp:pagerduty:add_note", resource);
`;

interface Shadow {
  rule: string;
  kind: string;
  reason: string;
  message: string;
}
interface Answer {
  decision: boolean;
  context: { reason_code: string; shadow?: Shadow[] };
}

let dir: string;
let server: Server;
const lines: Record<string, unknown>[] = [];

async function evaluate(
  agent: string,
  action: string,
  resource: string,
  context: Record<string, unknown> = {},
) {
  const res = await server.app.request(`${BASE}/access/v1/evaluation`, {
    method: "POST",
    headers: { authorization: `Bearer ${PDP_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({
      subject: { type: "agent", id: agent },
      action: { name: action },
      resource: { type: "any", id: resource },
      context: { environment: "dev", ...context },
    }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Answer;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-shadow-"));
  const file = await quickstartCopy(dir, "", (yaml) =>
    yaml
      // the analyst ceiling on trial
      .replace(
        "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n",
        "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n    mode: shadow\n",
      )
      // a standing grant the analyst ceiling does not hold: allowed, and recorded
      .replace(
        '      - action: "aws:ce:GetCostAndUsage|GetCostForecast"\n      - action: "aws:cloudwatch:GetMetricData|ListMetrics"\n',
        '      - action: "aws:ce:GetCostAndUsage|GetCostForecast"\n      - action: "aws:cloudwatch:GetMetricData|ListMetrics"\n      - action: "aws:s3:GetObject"\n        resource: "arn:aws:s3:::acme-finance/*"\n',
      )
      .replace(
        "guardrails:\n  - file: guardrails.cedar\n",
        `guardrails:\n  - file: guardrails.cedar\n${SHADOW_GUARDRAIL}`,
      )
      // the deploy playbook's parameter schema and ticket requirement on trial
      .replace("    ttl: 20m\n    maxUses: 10\n", "    ttl: 20m\n    maxUses: 10\n    mode: shadow\n"),
  );
  const { policy, problems } = await loadPolicy(file);
  expect(problems.filter((p) => p.severity === "error")).toEqual([]);
  expect(policy!.config.runnerClasses.get("analyst")!.mode).toBe("shadow");
  const logger = await createLogger({
    level: "info",
    destination: lineDestination((l) => lines.push(JSON.parse(l))),
  });
  server = await createServer({
    policy: policy!,
    dataDir: dir,
    pdpToken: PDP_TOKEN,
    metricsToken: "shadow-test-metrics-token-0123456789",
    version: "test",
    logger,
  });
  server.setBaseUrl(BASE);
}, 180_000);

afterAll(async () => {
  await server?.close().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe("shadow mode through AuthZEN", () => {
  it("a call outside a shadow ceiling is allowed by its grant, and recorded as would-have-denied", async () => {
    const a = await evaluate("cost-analyst", "aws:s3:GetObject", "arn:aws:s3:::acme-finance/ledger.csv");
    expect(a.decision).toBe(true);
    expect(a.context.reason_code).toBe("allowed");
    expect(a.context.shadow).toEqual([
      expect.objectContaining({ rule: "ceiling:analyst", kind: "ceiling", reason: "outside_ceiling" }),
    ]);
  });

  it("a shadow ceiling grants nothing: no grant still denies, its deny and bound recorded alongside", async () => {
    const a = await evaluate("cost-analyst", "aws:iam:CreateUser", "*");
    expect(a.decision).toBe(false);
    expect(a.context.reason_code).toBe("no_grant");
    expect(a.context.shadow?.map((s) => s.reason).sort()).toEqual(["explicit_deny", "outside_ceiling"]);
  });

  it("a shadow guardrail records its forbid and the call proceeds", async () => {
    const a = await evaluate("cost-analyst", "aws:s3:GetObject", "arn:aws:s3:::acme-reports/q4.csv");
    expect(a.decision).toBe(true);
    expect(a.context.shadow).toEqual([
      expect.objectContaining({
        rule: "guardrail:no-q4-reads",
        kind: "guardrail",
        reason: "guardrail_forbid",
      }),
    ]);
    // no shadow rule touches this one: no shadow field at all
    const clean = await evaluate("cost-analyst", "aws:s3:GetObject", "arn:aws:s3:::acme-reports/q3.csv");
    expect(clean.decision).toBe(true);
    expect(clean.context.shadow).toBeUndefined();
  });

  it("an enforcing guardrail still denies, the shadow guardrail that would too recorded alongside", async () => {
    const a = await evaluate("ops-assistant", "mcp:pagerduty:add_note", "INC-1", {
      arguments: { note: "the password is hunter2" },
    });
    expect(a.decision).toBe(false);
    expect(a.context.reason_code).toBe("guardrail_forbid");
    expect(a.context.shadow).toEqual([
      expect.objectContaining({ rule: "guardrail:no-notes-at-all", reason: "guardrail_forbid" }),
    ]);
    // the same call without the enforcing guardrail's trigger goes on, recorded
    const ok = await evaluate("ops-assistant", "mcp:pagerduty:add_note", "INC-1", {
      arguments: { note: "restarted" },
    });
    expect(ok.decision).toBe(true);
    expect(ok.context.shadow?.map((s) => s.rule)).toEqual(["guardrail:no-notes-at-all"]);
  });

  it("a shadow playbook issues a writ its schema and ticket rule would refuse, the record on broker.writ_issued", async () => {
    const agent = await exchangeClient(BASE, (url, init) => server.app.request(url, init));
    const baseline = await agent.post({ grant_type: "client_credentials" });
    const res = await agent.post({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: baseline.body.access_token as string,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      resource: "https://k8s.acme.example",
      authorization_details: JSON.stringify([
        {
          type: "writ_playbook",
          playbook: "deploy-service",
          parameters: { service: "checkout", tag: "latest" },
        },
      ]),
    });
    expect(res.status).toBe(200);
    const issued = await server.store.db
      .selectFrom("audit_records")
      .select("data")
      .where("type", "=", "broker.writ_issued")
      .executeTakeFirstOrThrow();
    expect((issued.data as { shadow: Shadow[] }).shadow.map((x) => `${x.rule} ${x.reason}`)).toEqual([
      "playbook:deploy-service invalid_parameters",
      "playbook:deploy-service ticket_required",
    ]);
  });

  it("audits each record, puts the rules on the log line, and counts them by kind", async () => {
    const rows = await server.store.db
      .selectFrom("audit_records")
      .select(["type", "data"])
      .where("type", "=", "pdp.decision")
      .orderBy("seq")
      .execute();
    const withShadow = rows.filter((r) => (r.data as { shadow?: unknown }).shadow !== undefined);
    expect(withShadow.length).toBe(5);
    expect((withShadow[0]!.data as { shadow: Shadow[] }).shadow[0]).toMatchObject({
      rule: "ceiling:analyst",
      kind: "ceiling",
      reason: "outside_ceiling",
    });
    const logged = lines.filter((l) => typeof l.shadow === "string");
    expect(logged.map((l) => l.shadow)).toContain("ceiling:analyst");
    expect(logged.map((l) => l.shadow)).toContain("guardrail:no-q4-reads");

    const metrics = await (
      await server.app.request(`${BASE}/metrics`, {
        headers: { authorization: "Bearer shadow-test-metrics-token-0123456789" },
      })
    ).text();
    expect(metrics).toContain(
      'writ_shadow_would_deny_total{kind="ceiling",reason="outside_ceiling",outcome="allowed"} 1',
    );
    expect(metrics).toContain(
      'writ_shadow_would_deny_total{kind="ceiling",reason="explicit_deny",outcome="denied"} 1',
    );
    expect(metrics).toContain(
      'writ_shadow_would_deny_total{kind="guardrail",reason="guardrail_forbid",outcome="allowed"} 2',
    );
    expect(metrics).toContain(
      'writ_shadow_would_deny_total{kind="guardrail",reason="guardrail_forbid",outcome="denied"} 1',
    );
    expect(metrics).toContain(
      'writ_shadow_would_deny_total{kind="playbook",reason="ticket_required",outcome="allowed"} 1',
    );
  });

  it("writ report shadow groups them by rule, agent and reason, with counts, first and last seen and an example", async () => {
    await server.close();
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    const code = await main(["report", "shadow", "--since", "24h", "--data", dir, "--json"], io, {});
    expect(code).toBe(0);
    const report = JSON.parse(out.join("")) as {
      total: number;
      complete: boolean;
      groups: {
        rule: string;
        agent: string;
        reason: string;
        count: number;
        firstSeen: string;
        lastSeen: string;
        example: { type: string; action?: string; resource?: string; outcome: string; message: string };
      }[];
    };
    expect(report.complete).toBe(true);
    expect(report.total).toBe(8);
    const group = (rule: string, reason: string) =>
      report.groups.find((g) => g.rule === rule && g.reason === reason);
    expect(group("ceiling:analyst", "outside_ceiling")).toMatchObject({ agent: "cost-analyst", count: 2 });
    expect(group("guardrail:no-notes-at-all", "guardrail_forbid")).toMatchObject({
      agent: "ops-assistant",
      count: 2,
      example: { type: "pdp.decision", action: "mcp:pagerduty:add_note", outcome: "allowed" },
    });
    expect(group("playbook:deploy-service", "ticket_required")).toMatchObject({
      agent: "release-bot",
      count: 1,
      example: { type: "broker.writ_issued", playbook: "deploy-service", outcome: "allowed" },
    });
    const q4 = group("guardrail:no-q4-reads", "guardrail_forbid")!;
    expect(q4.example).toMatchObject({ resource: "arn:aws:s3:::acme-reports/q4.csv", outcome: "allowed" });
    expect(q4.example.message).toContain("no-q4-reads");
    expect(Date.parse(q4.firstSeen)).toBeLessThanOrEqual(Date.parse(q4.lastSeen));

    // the text form names each group; a bad --since is a usage error
    out.length = 0;
    expect(await main(["report", "shadow", "--data", dir], io, {})).toBe(0);
    expect(out.join("\n")).toContain("ceiling:analyst");
    out.length = 0;
    expect(await main(["report", "shadow", "--since", "soon", "--data", dir, "--json"], io, {})).toBe(2);
    expect(out.join("")).toContain("ERR_USAGE");
  });
});
