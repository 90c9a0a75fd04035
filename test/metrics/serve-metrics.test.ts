/**
 * `/metrics` of a running server after a known sequence of events, on both stores: token requests
 * (two writs issued, one refused), uses spent by a resource server, AuthZEN decisions (one
 * allowed, one denied), tool calls recorded through the server's audit log (reuse drift), and the
 * scrape itself guarded by the admin or metrics token. Each asserted value is what docs/metrics.md
 * defines; a wrong count, label or definition fails here.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { loadConfigText } from "../../src/config/index.js";
import { credentialFigures } from "../../src/metrics/index.js";
import { exchangeClient } from "../broker/exchange-client.js";
import { QUICKSTART } from "../broker/live.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";

const BASE = "http://127.0.0.1:9";
const PDP_TOKEN = "metrics-test-pdp-token-0123456789";
const METRICS_TOKEN = "metrics-test-scrape-token-0123456789";

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metric line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels` (undefined: none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1 && Object.keys(labels).length > 0) {
    const exact = found.filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
    if (exact.length === 1) return exact[0]!.value;
  }
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value;
}

function backends(): {
  name: string;
  open: () => Promise<{ databaseUrl?: string; drop(): Promise<void> }>;
}[] {
  const list: { name: string; open: () => Promise<{ databaseUrl?: string; drop(): Promise<void> }> }[] = [
    { name: "pglite", open: async () => ({ drop: async () => {} }) },
  ];
  if (postgresEnabled) {
    list.push({
      name: "postgres",
      open: async () => {
        const t: TempDatabase = await createTempDatabase();
        return { databaseUrl: t.url, drop: () => t.drop() };
      },
    });
  }
  return list;
}

for (const backend of backends()) {
  describe(`/metrics after a known sequence [${backend.name}]`, () => {
    let dir: string;
    let server: Server;
    let db: { databaseUrl?: string; drop(): Promise<void> };
    let samples: Sample[];
    let denialCode: string;
    const fetcher = (url: string, init: RequestInit) => server.app.request(url, init);
    const scrape = (token?: string) =>
      server.app.request(`${BASE}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-metrics-"));
      db = await backend.open();
      const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
      server = await createServer({
        policy: policy!,
        dataDir: dir,
        databaseUrl: db.databaseUrl,
        pdpToken: PDP_TOKEN,
        metricsToken: METRICS_TOKEN,
        version: "test",
      });
      server.setBaseUrl(BASE);

      // broker: a baseline (inside exchangeClient), two writs, another baseline, one refusal
      const agent = await exchangeClient(BASE, fetcher);
      const w1 = await agent.exchange();
      const w2 = await agent.exchange();
      expect([w1.status, w2.status]).toEqual([200, 200]);
      const baseline = await agent.post({ grant_type: "client_credentials" });
      const refused = await agent.post({
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: baseline.body.access_token as string,
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        resource: "https://k8s.acme.example",
        authorization_details: JSON.stringify([
          { type: "writ_playbook", playbook: "restart-pods", parameters: { namespace: "checkout" } },
        ]),
      });
      expect(refused.status).toBe(400);
      expect(refused.body.reason).toBe("playbook_not_allowed");

      // a resource server spends two uses of the first writ
      for (let i = 0; i < 2; i++) {
        const use = await server.app.request(`${BASE}/env/dev/use`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${PDP_TOKEN}`,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams({ token: w1.body.access_token as string }).toString(),
        });
        expect(use.status).toBe(200);
      }

      // AuthZEN: one allowed, one denied
      const decide = async (action: string) =>
        (await (
          await server.app.request(`${BASE}/access/v1/evaluation`, {
            method: "POST",
            headers: { authorization: `Bearer ${PDP_TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({
              subject: { type: "agent", id: "cost-analyst" },
              action: { name: action },
              resource: { type: "aws", id: "arn:aws:s3:::acme-reports/a.csv" },
              context: { environment: "prod" },
            }),
          })
        ).json()) as { decision: boolean; context: { reason_code: string } };
      expect((await decide("aws:s3:GetObject")).decision).toBe(true);
      const denied = await decide("aws:s3:DeleteObject");
      expect(denied.decision).toBe(false);
      denialCode = denied.context.reason_code;

      // tool calls as the gateway records them: the second writ used on a resource the first was not
      const call = (writ: unknown, resources: string[], allowed = true) =>
        server.audit.append("gateway.call", {
          session: "gws_test",
          agent: "release-bot",
          environment: "dev",
          writ,
          tool: "k8s:patch",
          resources,
          decision: allowed ? { allowed: true, code: "allowed" } : { allowed: false, code: "not_granted" },
        });
      await call(w1.body.writ_id, ["checkout/checkout", "checkout/rs-1"]);
      await call(w2.body.writ_id, ["checkout/checkout", "payments/payments"]);
      await call(w2.body.writ_id, ["payments/payments"]);
      await call(w2.body.writ_id, ["search/search"], false);
      await server.metrics.settled();

      const res = await scrape(server.adminToken);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      samples = parse(await res.text());
    }, 180_000);

    afterAll(async () => {
      await server?.close();
      await db?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    it("counts requests by route and status, with latencies", () => {
      expect(
        value(samples, "writ_http_requests_total", { route: "token", method: "POST", status: "200" }),
      ).toBe(4);
      expect(
        value(samples, "writ_http_requests_total", { route: "token", method: "POST", status: "400" }),
      ).toBe(1);
      expect(
        value(samples, "writ_http_requests_total", { route: "use", method: "POST", status: "200" }),
      ).toBe(2);
      expect(
        value(samples, "writ_http_requests_total", { route: "decision", method: "POST", status: "200" }),
      ).toBe(2);
      expect(value(samples, "writ_http_request_duration_seconds_count", { route: "token" })).toBe(5);
      expect(value(samples, "writ_http_request_duration_seconds_count", { route: "decision" })).toBe(2);
    });

    it("counts audit appends and their latency", () => {
      expect(value(samples, "writ_audit_records_total", { type: "broker.writ_issued" })).toBe(2);
      expect(value(samples, "writ_audit_records_total", { type: "broker.writ_used" })).toBe(2);
      expect(value(samples, "writ_audit_records_total", { type: "pdp.decision" })).toBe(2);
      expect(value(samples, "writ_audit_records_total", { type: "gateway.call" })).toBe(4);
      const appended = samples
        .filter((s) => s.name === "writ_audit_records_total")
        .reduce((n, s) => n + s.value, 0);
      expect(value(samples, "writ_audit_append_duration_seconds_count")).toBe(appended);
    });

    it("counts judgements and denials by source, reason and runner class", () => {
      const j = (source: string, runner_class: string, outcome: string) =>
        value(samples, "writ_judgements_total", { source, runner_class, outcome });
      expect(j("broker", "deploy", "allowed")).toBe(2);
      expect(j("broker", "deploy", "denied")).toBe(1);
      expect(j("authzen", "analyst", "allowed")).toBe(1);
      expect(j("authzen", "analyst", "denied")).toBe(1);
      expect(j("gateway", "deploy", "allowed")).toBe(3);
      expect(j("gateway", "deploy", "denied")).toBe(1);
      const d = (source: string, reason: string, runner_class: string) =>
        value(samples, "writ_denials_total", { source, reason, runner_class });
      expect(d("broker", "playbook_not_allowed", "deploy")).toBe(1);
      expect(d("authzen", denialCode, "analyst")).toBe(1);
      expect(d("gateway", "not_granted", "deploy")).toBe(1);
    });

    it("counts tool calls per agent and reuse drift", () => {
      expect(value(samples, "writ_tool_calls_total", { agent: "release-bot", outcome: "allowed" })).toBe(3);
      expect(value(samples, "writ_tool_calls_total", { agent: "release-bot", outcome: "denied" })).toBe(1);
      // the second writ reached payments/payments, which the first never did: one drift
      expect(
        value(samples, "writ_reuse_drift_total", { agent: "release-bot", playbook: "deploy-service" }),
      ).toBe(1);
    });

    it("reads the store's gauges: playbook actions, lifetimes, production share, credentials", () => {
      expect(
        value(samples, "writ_playbook_actions", { playbook: "deploy-service", environment: "dev" }),
      ).toBe(2);
      expect(value(samples, "writ_lifetime_writs", { kind: "issued" })).toBe(2);
      expect(value(samples, "writ_lifetime_writs", { kind: "used" })).toBe(1);
      // deploy-service's TTL is 20 minutes in dev
      expect(value(samples, "writ_lifetime_seconds", { kind: "issued", quantile: "0.5" })).toBeCloseTo(
        1200,
        0,
      );
      expect(value(samples, "writ_prod_writs")).toBe(0);
      // the quickstart has no gateway: nothing writ knows of is a standing secret
      expect(value(samples, "writ_agents", { credentials: "short_lived" })).toBe(3);
      expect(value(samples, "writ_agents_short_lived_ratio")).toBe(1);
      expect(value(samples, "writ_scan_cluster_role_bindings")).toBe(0);
    });

    it("refuses a scrape without the admin or metrics token, in constant time", async () => {
      expect((await scrape()).status).toBe(401);
      const wrong = await scrape("x".repeat(40));
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await scrape(METRICS_TOKEN)).status).toBe(200);
    });
  });
}

describe("credentials known to writ (writ.yaml)", () => {
  it("counts agents reaching an upstream called with a static credential, and the privileged ones", async () => {
    const yaml = await readFile(join(QUICKSTART, "writ.yaml"), "utf8");
    const r = await loadConfigText(
      `${yaml}
gateway:
  upstreams:
    pagerduty:
      url: https://pagerduty.example/mcp
      headers: { Authorization: "Bearer \${env:PD_TOKEN}" }
      tools:
        add_note: { privileged: true }
    runbooks:
      url: https://runbooks.example/mcp
      headers: { Authorization: "Bearer \${env:RB_TOKEN}" }
    filesystem:
      command: /bin/true
`,
      { file: join(QUICKSTART, "writ.yaml"), baseDir: QUICKSTART },
    );
    expect(r.problems.filter((p) => p.severity === "error")).toEqual([]);
    const f = credentialFigures(r.config!);
    // ops-assistant reaches pagerduty and runbooks (static tokens); the others reach none
    expect(f).toEqual({ agents: 3, shortLived: 2, sharedPrivileged: new Map([["pagerduty", 1]]) });
  });
});
