/**
 * The Prometheus metrics of one `writ serve` (docs/metrics.md has each one's exact definition):
 * a prom-client `Registry` of its own (never the library's global one), fed three ways —
 *
 *   - every HTTP request (`observeRequest`, from the HTTP app): counts and latencies per route;
 *   - every audit record this process appends (`observeAudit`, from the composition root's wrap of
 *     the audit log): judgements and denials by reason and runner class, tool calls per agent, writ
 *     reuse drift, and the append's own latency;
 *   - at scrape time, the store's aggregates (store/metrics.ts) and writ.yaml's (practice.ts).
 *
 * Counters count from this process's start (Prometheus' `rate()` and `increase()` handle restarts);
 * with several `writ serve` processes on one PostgreSQL, sum them across instances. Gauges read
 * from the store are the same on every instance.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { SHADOW_KINDS, type WritConfig } from "../core/index.js";
import { challenge, problem } from "../http/problem.js";
import type { StoreFigures } from "../store/index.js";
import { credentialFigures, productionEnvironments } from "./practice.js";

export interface MetricsOptions {
  readonly config: WritConfig;
  /** The store's aggregates at scrape time (`store.metrics.figures`). */
  readonly figures: (opts: {
    now: Date;
    windowSeconds: number;
    production: readonly string[];
  }) => Promise<StoreFigures>;
  /** A writ's agent and playbook, for writs issued before this process started (reuse drift). */
  readonly writOf?: ((id: string) => Promise<{ agent: string; playbook: string } | undefined>) | undefined;
  /** The environments counted as production (default: productionEnvironments). */
  readonly production?: readonly string[] | undefined;
  /** How far back the windowed gauges look (default 30 days). */
  readonly windowSeconds?: number | undefined;
  /**
   * How old the store's figures may be when a scrape serves them (default 10 s; 0: read the store on
   * every scrape). An older value is served once more while a fresh one is read in the background;
   * the first scrape waits for its read.
   */
  readonly maxAgeSeconds?: number | undefined;
  readonly clock?: (() => Date) | undefined;
}

export interface Metrics {
  readonly registry: Registry;
  observeRequest(r: { route: string; method: string; status: number; seconds: number }): void;
  /** One committed audit record (`seconds`: how long its append took). */
  observeAudit(type: string, data: Readonly<Record<string, unknown>>, seconds: number): void;
  /** Reads the store and writ.yaml into the gauges, then renders every metric (text format 0.0.4). */
  scrape(): Promise<string>;
  /** Resolves when the drift lookups started so far are done (tests). */
  settled(): Promise<void>;
}

const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Bounds of the in-memory state behind drift (writs remembered, resources per writ). */
const MAX_WRITS = 20_000;
const MAX_RESOURCES = 1_000;
const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);

const SHADOW_KIND_SET: ReadonlySet<string> = new Set(SHADOW_KINDS);

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** A label value bounded to what writ.yaml declares (anything else is `other`): no cardinality blow-up. */
function bounded(known: ReadonlySet<string>, v: unknown): string {
  const s = str(v);
  return s !== undefined && known.has(s) ? s : "other";
}

/** A reason code as a label: writ's codes are short snake_case; anything else is `other`. */
function reasonLabel(v: unknown): string {
  const s = str(v);
  return s !== undefined && /^[a-z][a-z0-9_]{0,63}$/.test(s) ? s : "other";
}

interface DriftState {
  /** The newest writ of this agent and playbook that was used, and the resources it was used on. */
  current?: { writ: string; issuedOrder: number; resources: Set<string> };
  /** The one used before it. */
  previous?: Set<string>;
}

type Registers = Registry[];

/** Counters and histograms fed by requests and audit records. */
function eventMetrics(registers: Registers) {
  return {
    // ── requests ──
    requests: new Counter({
      name: "writ_http_requests_total",
      help: "HTTP requests answered, by route, method and status",
      labelNames: ["route", "method", "status"],
      registers,
    }),
    latency: new Histogram({
      name: "writ_http_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by route",
      labelNames: ["route"],
      buckets: LATENCY,
      registers,
    }),
    appendLatency: new Histogram({
      name: "writ_audit_append_duration_seconds",
      help: "Time an audit record takes to commit (group commit included)",
      buckets: LATENCY,
      registers,
    }),
    records: new Counter({
      name: "writ_audit_records_total",
      help: "Audit records this process committed, by type",
      labelNames: ["type"],
      registers,
    }),

    // ── judgements, denials, tool calls, drift ──
    judgements: new Counter({
      name: "writ_judgements_total",
      help: "Requests judged (writs asked for, AuthZEN decisions, tool calls), by source, runner class and outcome",
      labelNames: ["source", "runner_class", "outcome"],
      registers,
    }),
    denials: new Counter({
      name: "writ_denials_total",
      help: "Requests refused, by source, reason code and runner class",
      labelNames: ["source", "reason", "runner_class"],
      registers,
    }),
    toolCalls: new Counter({
      name: "writ_tool_calls_total",
      help: "Tool calls judged by the gateway, by agent and outcome",
      labelNames: ["agent", "outcome"],
      registers,
    }),
    shadow: new Counter({
      name: "writ_shadow_would_deny_total",
      help: "Denials rules in shadow mode would have made (the requests went on, or were denied by an enforcing rule), by rule kind, reason code and outcome",
      labelNames: ["kind", "reason", "outcome"],
      registers,
    }),
    drift: new Counter({
      name: "writ_reuse_drift_total",
      help: "Resources a writ was used on that the previous used writ of the same agent and playbook was not",
      labelNames: ["agent", "playbook"],
      registers,
    }),
  };
}

type EventMetrics = ReturnType<typeof eventMetrics>;

/** Gauges set at scrape time from writ.yaml and the store. */
function gaugeMetrics(registers: Registers) {
  return {
    agents: new Gauge({
      name: "writ_agents",
      help: "Agents in writ.yaml, by whether every credential they use is short-lived",
      labelNames: ["credentials"],
      registers,
    }),
    shortLivedRatio: new Gauge({
      name: "writ_agents_short_lived_ratio",
      help: "Share of agents whose credentials are all short-lived (no standing secret known to writ)",
      registers,
    }),
    shared: new Gauge({
      name: "writ_shared_identity_privileged_agents",
      help: "Shared identities in privileged paths: agents reaching each upstream called with a static credential",
      labelNames: ["upstream"],
      registers,
    }),
    playbookActions: new Gauge({
      name: "writ_playbook_actions",
      help: "Privileged actions executed through approved playbooks: uses spent on writs, by playbook and environment",
      labelNames: ["playbook", "environment"],
      registers,
    }),
    lifetime: new Gauge({
      name: "writ_lifetime_seconds",
      help: "Writ lifetime over the window: issued TTL, and first to last use, at the 0.5 and 0.9 quantiles",
      labelNames: ["kind", "quantile"],
      registers,
    }),
    lifetimeCount: new Gauge({
      name: "writ_lifetime_writs",
      help: "Writs the lifetime quantiles are over (issued in the window; used: those used at least once)",
      labelNames: ["kind"],
      registers,
    }),
    prodWrits: new Gauge({
      name: "writ_prod_writs",
      help: "Writs issued in production environments over the window",
      registers,
    }),
    prodBacked: new Gauge({
      name: "writ_prod_writs_ticket_or_approver_ratio",
      help: "Share of production writs over the window issued with a linked ticket or an approval",
      registers,
    }),
    approveMean: new Gauge({
      name: "writ_prod_approval_seconds_mean",
      help: "Mean time from request to approval of production approval requests approved over the window",
      registers,
    }),
    approvals: new Gauge({
      name: "writ_prod_approvals",
      help: "Production approval requests approved over the window",
      registers,
    }),
    findings: new Gauge({
      name: "writ_findings",
      help: "Findings in the store's queue, by category and status",
      labelNames: ["category", "status"],
      registers,
    }),
    crbs: new Gauge({
      name: "writ_scan_cluster_role_bindings",
      help: "ClusterRoleBindings in the latest stored scan",
      registers,
    }),
    workflowsRatio: new Gauge({
      name: "writ_scan_workflows_explicit_permissions_ratio",
      help: "Share of workflows in the latest stored scan that set their token permissions explicitly",
      registers,
    }),
    workflows: new Gauge({
      name: "writ_scan_workflows",
      help: "Workflows in the latest stored scan",
      registers,
    }),
    scanAt: new Gauge({
      name: "writ_scan_timestamp_seconds",
      help: "When the latest stored scan ran (Unix time)",
      registers,
    }),
    scrapeSeconds: new Gauge({
      name: "writ_metrics_scrape_store_seconds",
      help: "Time the last read of the store's figures took",
      registers,
    }),
    figuresAge: new Gauge({
      name: "writ_metrics_store_age_seconds",
      help: "Age of the store's figures this scrape serves",
      registers,
    }),
  };
}

type GaugeMetrics = ReturnType<typeof gaugeMetrics>;

interface KnownWrit {
  readonly agent: string;
  readonly playbook: string;
  readonly order: number;
}

/** Drift: per agent and playbook, the resources of the newest used writ and of the one before. */
class DriftTracker {
  readonly #writs = new Map<string, KnownWrit>();
  #order = 0;
  readonly #state = new Map<string, DriftState>();

  constructor(
    private readonly counter: Counter<"agent" | "playbook">,
    private readonly agents: ReadonlySet<string>,
    private readonly playbooks: ReadonlySet<string>,
  ) {}

  get(id: string): KnownWrit | undefined {
    return this.#writs.get(id);
  }

  /** Remembers a writ's agent and playbook in issue order (bounded: the oldest is forgotten first). */
  remember(id: string, agent: string, playbook: string): KnownWrit {
    const known = this.#writs.get(id);
    if (known) return known;
    if (this.#writs.size >= MAX_WRITS) this.#writs.delete(this.#writs.keys().next().value!);
    const w = { agent, playbook, order: ++this.#order };
    this.#writs.set(id, w);
    return w;
  }

  /** A writ used on resources: counts those the previous used writ of its agent and playbook was not. */
  used(id: string, w: KnownWrit, resources: readonly string[]): void {
    const key = `${w.agent}\u0000${w.playbook}`;
    const s = this.#state.get(key) ?? {};
    this.#state.set(key, s);
    if (s.current === undefined || (s.current.writ !== id && w.order > s.current.issuedOrder)) {
      s.previous = s.current?.resources;
      s.current = { writ: id, issuedOrder: w.order, resources: new Set() };
    } else if (s.current.writ !== id) return; // an older writ used late: judged against nothing newer
    for (const r of resources) {
      if (s.current.resources.has(r)) continue;
      if (s.current.resources.size < MAX_RESOURCES) s.current.resources.add(r);
      if (s.previous !== undefined && !s.previous.has(r)) {
        this.counter.inc({
          agent: bounded(this.agents, w.agent),
          playbook: bounded(this.playbooks, w.playbook),
        });
      }
    }
  }
}

/** The store's figures, read at most every `maxAge` seconds; an older value is served while a fresh one is read. */
class FiguresCache {
  #cached: { figures: StoreFigures; at: Date } | undefined;
  #reading: Promise<void> | undefined;

  constructor(
    private readonly readFigures: (now: Date) => Promise<StoreFigures>,
    private readonly clock: () => Date,
    private readonly maxAge: number,
    private readonly scrapeSeconds: Gauge,
  ) {}

  private async read(): Promise<{ figures: StoreFigures; at: Date }> {
    const at = this.clock();
    const started = performance.now();
    const figures = await this.readFigures(at);
    this.scrapeSeconds.set((performance.now() - started) / 1000);
    return { figures, at };
  }

  async get(now: Date): Promise<{ figures: StoreFigures; at: Date }> {
    const maxAge = this.maxAge;
    const cached = this.#cached;
    const age =
      cached === undefined ? Number.POSITIVE_INFINITY : (now.getTime() - cached.at.getTime()) / 1000;
    if (cached === undefined || maxAge === 0) this.#cached = await this.read();
    else if (age > maxAge && this.#reading === undefined) {
      this.#reading = this.read()
        .then((f) => {
          this.#cached = f;
        })
        .catch(() => {}) // the next scrape tries again, and waits once the value is too old
        .finally(() => {
          this.#reading = undefined;
        });
      if (age > maxAge * 6) {
        await this.#reading;
        if (this.#cached!.at.getTime() < now.getTime() - maxAge * 6 * 1000) this.#cached = await this.read();
      }
    }
    return this.#cached!;
  }

  /** Resolves when a background read is done. */
  async settled(): Promise<void> {
    await this.#reading;
  }
}

/** writ.yaml's figures and the store's into the gauges. */
function setGauges(g: GaugeMetrics, creds: ReturnType<typeof credentialFigures>, f: StoreFigures): void {
  g.agents.set({ credentials: "short_lived" }, creds.shortLived);
  g.agents.set({ credentials: "standing" }, creds.agents - creds.shortLived);
  g.shortLivedRatio.set(creds.agents === 0 ? 1 : creds.shortLived / creds.agents);
  g.shared.reset();
  for (const [upstream, n] of creds.sharedPrivileged) g.shared.set({ upstream }, n);

  g.playbookActions.reset();
  for (const u of f.usesByPlaybook) {
    g.playbookActions.set({ playbook: u.playbook, environment: u.environment }, u.uses);
  }
  g.lifetime.reset();
  for (const [kind, q] of [
    ["issued", f.lifetimeIssued],
    ["used", f.lifetimeUsed],
  ] as const) {
    g.lifetimeCount.set({ kind }, q.count);
    if (q.p50 !== undefined) g.lifetime.set({ kind, quantile: "0.5" }, q.p50);
    if (q.p90 !== undefined) g.lifetime.set({ kind, quantile: "0.9" }, q.p90);
  }
  g.prodWrits.set(f.prodWrits);
  g.prodBacked.set(f.prodWrits === 0 ? 0 : f.prodWritsTicketOrApprover / f.prodWrits);
  g.approvals.set(f.prodApprovals);
  g.approveMean.set(f.prodApprovalMeanSeconds ?? 0);
  g.findings.reset();
  for (const x of f.findings) g.findings.set({ category: x.category, status: x.status }, x.count);
  if (f.latestScan) {
    g.crbs.set(f.latestScan.clusterRoleBindings);
    g.workflows.set(f.latestScan.workflows);
    g.workflowsRatio.set(
      f.latestScan.workflows === 0 ? 0 : f.latestScan.workflowsExplicit / f.latestScan.workflows,
    );
    g.scanAt.set(f.latestScan.at.getTime() / 1000);
  }
}

/** What feeding an audit record needs beyond the record. */
interface AuditFeed {
  readonly m: EventMetrics;
  readonly config: WritConfig;
  readonly agents: ReadonlySet<string>;
  readonly drift: DriftTracker;
  readonly writOf: MetricsOptions["writOf"];
  /** Drift lookups under way. */
  readonly pending: Set<Promise<void>>;
}

function classOf(config: WritConfig, agent: unknown): string {
  const a = str(agent);
  return (a !== undefined && config.agents.get(a)?.runnerClass) || "unknown";
}

function judged(feed: AuditFeed, source: string, agent: unknown, allowed: boolean, reason: unknown): void {
  const runner_class = classOf(feed.config, agent);
  feed.m.judgements.inc({ source, runner_class, outcome: allowed ? "allowed" : "denied" });
  if (!allowed) feed.m.denials.inc({ source, reason: reasonLabel(reason), runner_class });
}

/** Shadow rules' would-be denials; labels bounded: the five kinds, reason codes as snake_case, two outcomes. */
function observeShadow(
  m: EventMetrics,
  type: string,
  data: Readonly<Record<string, unknown>>,
  decision: { allowed?: unknown } | undefined,
): void {
  if (!Array.isArray(data.shadow)) return;
  const outcome = type === "broker.denied" || decision?.allowed === false ? "denied" : "allowed";
  for (const r of data.shadow as { kind?: unknown; reason?: unknown }[]) {
    const kind = typeof r?.kind === "string" && SHADOW_KIND_SET.has(r.kind) ? r.kind : "other";
    m.shadow.inc({ kind, reason: reasonLabel(r?.reason), outcome });
  }
}

/** A gateway call: judged, counted per agent, and its resources fed to drift (looking the writ up if need be). */
function observeToolCall(
  feed: AuditFeed,
  data: Readonly<Record<string, unknown>>,
  decision: { allowed?: unknown; code?: unknown } | undefined,
): void {
  const allowed = decision?.allowed === true;
  judged(feed, "gateway", data.agent, allowed, decision?.code);
  feed.m.toolCalls.inc({ agent: bounded(feed.agents, data.agent), outcome: allowed ? "allowed" : "denied" });
  const id = str(data.writ);
  if (!allowed || id === undefined) return;
  const resources = (Array.isArray(data.resources) ? data.resources : [])
    .map((r) => (typeof r === "string" ? r : str((r as { resource?: unknown })?.resource)))
    .filter((r): r is string => r !== undefined);
  const known = feed.drift.get(id);
  if (known) feed.drift.used(id, known, resources);
  else if (feed.writOf) {
    const lookup = feed
      .writOf(id)
      .then((w) => {
        if (w) feed.drift.used(id, feed.drift.remember(id, w.agent, w.playbook), resources);
      })
      .catch(() => {})
      .finally(() => feed.pending.delete(lookup));
    feed.pending.add(lookup);
  }
}

function observeAudit(
  feed: AuditFeed,
  type: string,
  data: Readonly<Record<string, unknown>>,
  seconds: number,
): void {
  feed.m.appendLatency.observe(seconds);
  feed.m.records.inc({ type: /^[a-z][a-z0-9_.]{0,63}$/.test(type) ? type : "other" });
  const decision = data.decision as { allowed?: unknown; code?: unknown } | undefined;
  observeShadow(feed.m, type, data, decision);
  switch (type) {
    case "broker.writ_issued": {
      judged(feed, "broker", data.agent, true, undefined);
      const id = str(data.writ);
      const agent = str(data.agent);
      const playbook = str(data.playbook);
      if (id && agent && playbook) feed.drift.remember(id, agent, playbook);
      break;
    }
    case "broker.denied":
      judged(feed, "broker", data.agent, false, data.reason);
      break;
    case "pdp.decision":
      judged(feed, "authzen", data.agent, decision?.allowed === true, decision?.code);
      break;
    case "gateway.call":
      observeToolCall(feed, data, decision);
      break;
  }
}

export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const clock = opts.clock ?? (() => new Date());
  const config = opts.config;
  const agents = new Set(config.agents.keys());
  const production = opts.production ?? productionEnvironments(config);
  const windowSeconds = opts.windowSeconds ?? 30 * 86_400;

  const events = eventMetrics(registers);
  const gauges = gaugeMetrics(registers);
  const cache = new FiguresCache(
    (now) => opts.figures({ now, windowSeconds, production }),
    clock,
    opts.maxAgeSeconds ?? 10,
    gauges.scrapeSeconds,
  );
  // writ.yaml does not change while the process runs: its figures once
  const creds = credentialFigures(config);
  const feed: AuditFeed = {
    m: events,
    config,
    agents,
    drift: new DriftTracker(events.drift, agents, new Set(config.playbooks.keys())),
    writOf: opts.writOf,
    pending: new Set(),
  };

  return {
    registry,
    observeRequest(r) {
      const method = METHODS.has(r.method) ? r.method : "other";
      events.requests.inc({ route: r.route, method, status: String(r.status) });
      events.latency.observe({ route: r.route }, r.seconds);
    },
    observeAudit(type, data, seconds) {
      observeAudit(feed, type, data, seconds);
    },
    async scrape() {
      const now = clock();
      const { figures, at } = await cache.get(now);
      gauges.figuresAge.set(Math.max(0, (now.getTime() - at.getTime()) / 1000));
      setGauges(gauges, creds, figures);
      return registry.metrics();
    },
    async settled() {
      while (feed.pending.size > 0) await Promise.all([...feed.pending]);
      await cache.settled();
    },
  };
}

/**
 * `GET /metrics`: the scrape, for a caller presenting one of `tokens` as a bearer token (compared in
 * constant time). 401 otherwise; 503 when the store cannot be read.
 */
export function metricsRoutes(metrics: Metrics, tokens: readonly string[]): Hono {
  const digest = (t: string) => createHash("sha256").update(t, "utf8").digest();
  const expected = tokens.filter((t) => t.length > 0).map(digest);
  if (expected.length === 0) throw new TypeError("metrics need at least one non-empty token");
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const given = /^Bearer ([\x21-\x7e]+)$/.exec(c.req.header("authorization") ?? "")?.[1];
    const d = given === undefined ? undefined : digest(given);
    // every token compared, so the time taken does not say which one came close
    let ok = false;
    for (const e of expected) if (d !== undefined && timingSafeEqual(d, e)) ok = true;
    if (!ok) {
      return problem({
        status: 401,
        reason: "metrics_unauthorized",
        detail: "send `Authorization: Bearer <metrics or admin token>`",
        headers: { "www-authenticate": challenge("Bearer", { realm: "writ-metrics" }) },
      });
    }
    let body: string;
    try {
      body = await metrics.scrape();
    } catch (err) {
      c.error = err instanceof Error ? err : new Error(String(err));
      return problem({
        status: 503,
        reason: "metrics_unavailable",
        detail: "the store could not be read for the metrics",
        retryAfter: 5,
      });
    }
    return new Response(body, {
      headers: { "content-type": metrics.registry.contentType, "cache-control": "no-store" },
    });
  });
  return app;
}
