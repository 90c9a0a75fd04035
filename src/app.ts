/**
 * The composition root: the one place that puts the parts together (and, with src/cli/main.ts, the
 * only place that reads the environment).
 *
 *   loadPolicy  writ.yaml → config + compiled Cedar guardrails, every problem at once
 *   createServer policy + store + audit log + decision point → the HTTP app `writ serve` listens with
 */
import { createHash, randomBytes } from "node:crypto";
import { homedir } from "node:os";
import type { Hono } from "hono";
import type { AuditLog } from "./audit/index.js";
import type { KillSwitch, Operator } from "./broker/index.js";
import { q, type WritConfig, WritError } from "./core/index.js";
import { ERR_DOWNSTREAM_CONFIG } from "./downstream/types.js";
import type { DownstreamIssuers, Gateway } from "./gateway/index.js";
import {
  type AuthzenRecord,
  authzenRoutes,
  type DecisionPoint,
  type PdpRequest,
  WritIndex,
} from "./pdp/index.js";
import { decisionPoint, type Policy } from "./policy.js";
import type { Store } from "./store/index.js";

export { decisionPoint, loadPolicy, type Policy, type PolicyLoad } from "./policy.js";

/**
 * The writ index over a store: the decision point's active writs, in memory, kept exact by the
 * store's change feed (pdp/writ-index.ts).
 */
async function writIndex(store: Store): Promise<WritIndex> {
  const { toActiveWrit } = await import("./store/index.js");
  return new WritIndex({
    load: async (agent, now) => (await store.writs.listUnexpired(agent, now)).map(toActiveWrit),
    changes: store.writChanges,
  });
}

/**
 * The kill switch revokes writs with its own statement; its engagement returns only once the
 * revocations have reached this process's writ index, so no decision after it sees a revoked writ.
 */
function followKills(kill: KillSwitch, store: Store): KillSwitch {
  return {
    async engage(scope, opts) {
      const result = await kill.engage(scope, opts);
      await store.writChanges.sync();
      return result;
    },
    lift: (scope, opts) => kill.lift(scope, opts),
    engaged: () => kill.engaged(),
    blocking: (agent, environment) => kill.blocking(agent, environment),
  };
}

/**
 * After a kill's commit (and its revocations reaching the writ index), the downstream systems: each
 * affected issuer's kill, then every record of the revoked writs removed. Failures are audited by
 * the downstream part and left for its reaper; the kill itself stands either way.
 */
function reachDownstream(
  kill: KillSwitch,
  downstream:
    | ((scope: Parameters<KillSwitch["engage"]>[0], revoked: readonly { id: string }[]) => Promise<unknown>)
    | undefined,
): KillSwitch {
  if (downstream === undefined) return kill;
  return {
    ...kill,
    async engage(scope, opts) {
      const result = await kill.engage(scope, opts);
      await downstream(scope, result.revoked).catch(() => {});
      return result;
    },
  };
}

/** Work left running after an answer (a kill's record removals): tracked so that `close` waits for it. */
function backgroundWork(): { run(work: Promise<unknown>): void; settled(): Promise<void> } {
  const pending = new Set<Promise<unknown>>();
  return {
    run(work) {
      const tracked = work.catch(() => {}).finally(() => pending.delete(tracked));
      pending.add(tracked);
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

type DownstreamModule = typeof import("./downstream/index.js");

interface DownstreamWiring {
  readonly deps: import("./downstream/index.js").DownstreamDeps;
  /** Whether writ.yaml configures any downstream system. */
  readonly configured: boolean;
  /** The kill switch given, wrapped so that a kill reaches the issuers (itself when none is configured). */
  readonly kill: KillSwitch;
  /** A kill's record removals, left running after its answer: `close` waits for them. */
  readonly background: ReturnType<typeof backgroundWork>;
  /** The issuers by environment and system, for the gateway's upstreams with per-writ credentials. */
  readonly issuers: DownstreamIssuers;
  /** Starts the reaper when a system is configured (nothing created outlives its writ by a period). */
  startReaper(periodMs?: number): import("./downstream/index.js").Reaper | undefined;
}

/**
 * The downstream part `serve` and `gateway --stdio` both run, wired once: the issuers writ.yaml
 * configures (each checks its own credentials now: a bad one stops the start), the kill switch
 * wrapped so that a kill — from the CLI, the admin API or either process's own operator — reaches
 * them (their kills awaited, so nothing handed out works once it answers; the record removals run
 * behind), and the reaper.
 */
async function wireDownstream(
  downstreamPart: DownstreamModule,
  config: WritConfig,
  issuerDeps: import("./downstream/index.js").IssuerDeps,
  kill: KillSwitch,
  factories?: import("./downstream/index.js").IssuerFactories,
): Promise<DownstreamWiring> {
  const registry = await downstreamPart.buildRegistry(config.downstream, issuerDeps, factories);
  const deps = { registry, ledger: issuerDeps.ledger, audit: issuerDeps.audit };
  const configured = registry.all().length > 0;
  const background = backgroundWork();
  return {
    deps,
    configured,
    background,
    kill: reachDownstream(
      kill,
      configured
        ? async (scope, revoked) => {
            const r = await downstreamPart.killDownstream({ ...deps, config }, scope, revoked);
            background.run(r.removal);
          }
        : undefined,
    ),
    issuers: (environment, system) => registry.issuer(environment, system),
    startReaper: (periodMs) => (configured ? downstreamPart.startReaper(deps, { periodMs }) : undefined),
  };
}

/** The code of a public base URL no issuer can be built on. */
export const ERR_PUBLIC_URL = "ERR_PUBLIC_URL";

/**
 * `url` without trailing slashes when every environment's issuer (`<url>/env/<env>`) is valid —
 * https, or http on a loopback host only (RFC 8414 §2, and the broker mints nothing else) — else a
 * coded `ERR_PUBLIC_URL`. Checked when the URL is set, so no request can meet a bad one.
 */
export async function checkPublicUrl(url: string, config: WritConfig): Promise<string> {
  const { issuerFor } = await import("./broker/index.js");
  return publicUrlOf(url, config, issuerFor);
}

function publicUrlOf(
  url: string,
  config: WritConfig,
  issuerFor: (base: string, env: string) => string,
): string {
  const base = url.replace(/\/+$/, "");
  try {
    for (const env of config.environments.keys()) issuerFor(base, env);
  } catch (err) {
    throw new WritError(
      ERR_PUBLIC_URL,
      `public URL ${q(url)}: ${(err as Error).message.replace(/^issuer `[^`]*`: /, "")}`,
    );
  }
  return base;
}

export interface ServerOptions {
  readonly policy: Policy;
  /** The data folder: the embedded database (`<dir>/pg`) and the audit signing key (`<dir>/keys`). */
  readonly dataDir: string;
  /** PostgreSQL instead of the embedded database. */
  readonly databaseUrl?: string | undefined;
  /** Bearer token AuthZEN callers must present. */
  readonly pdpToken?: string | undefined;
  /**
   * The public base URL: the PDP's identifier in the AuthZEN metadata, and the root of every
   * environment's OAuth issuer (`<baseUrl>/env/<env>`). Without it, `setBaseUrl` must be called
   * once the server listens, before any request.
   */
  readonly baseUrl?: string | undefined;
  readonly version: string;
  /** Audit checkpoint interval in records (default 100). */
  readonly checkpointEvery?: number | undefined;
  /**
   * The audit log sends the appends that arrived while a group commit ran before answering its
   * callers (`AuditLogOptions.sendNextFirst`). Default: on PostgreSQL (12–18 % more audited
   * AuthZEN decisions per second in the bench, its load client in a process of its own), off on
   * the embedded store, where the next commit would run on this thread ahead of the answers.
   */
  readonly auditSendNextFirst?: boolean | undefined;
  /**
   * Keep the state every request reads (signing keys, engaged kills, slow-down blocks) in memory
   * instead of reading the store each time. Exact only while this process is the store's one
   * writer, so the default is: on the embedded store (which one process holds under a lock), off on
   * PostgreSQL. Turn it off to write to the embedded store's tables behind the server's back.
   */
  readonly stateCache?: boolean | undefined;
  /**
   * DPoP server nonces (RFC 9449 §8): `accept` (default) hands them out and checks any a proof
   * carries; `require` refuses proofs without one (`use_dpop_nonce`, and the client retries with
   * the nonce given). The nonce secret is random per process.
   */
  readonly dpopNonce?: "accept" | "require" | undefined;
  /** What `${env:NAME}` in the gateway's upstream configuration reads (default: the process's). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * The server's log (http/log.ts `createLogger`): one line per request, the cause of every failed
   * request (5xx) and of every failed periodic audit checkpoint (default: errors only, to stderr).
   */
  readonly logger?: import("./http/log.js").Logger | undefined;
  /**
   * A bearer token `GET /metrics` accepts besides the admin token (`WRIT_METRICS_TOKEN`), for a
   * Prometheus that should not hold the operator's secret.
   */
  readonly metricsToken?: string | undefined;
  /**
   * The metrics' production environments (default: `prod`, `production`, `prod-*`), window (30
   * days) and how old the store's figures a scrape serves may be (10 s; 0: read on every scrape).
   */
  readonly metrics?:
    | {
        readonly production?: readonly string[] | undefined;
        readonly windowSeconds?: number | undefined;
        readonly maxAgeSeconds?: number | undefined;
      }
    | undefined;
  /**
   * Downstream systems (docs/downstream.md): the issuer factories (default: the AWS, GitHub and
   * Kubernetes issuers; tests stand in for systems that cannot run here) and the reaper's period
   * (default 30 s).
   */
  readonly downstream?:
    | {
        readonly factories?: import("./downstream/index.js").IssuerFactories | undefined;
        readonly reaperPeriodMs?: number | undefined;
      }
    | undefined;
}

export interface Server {
  readonly app: Hono;
  readonly store: Store;
  readonly audit: AuditLog;
  /** Kill switch, key rotation and approvals on this server's own objects (their caches follow). */
  readonly operator: Operator;
  /** The secret of the admin API (`/admin/v1`), for `<data>/serve.json`; never logged. */
  readonly adminToken: string;
  /** The Prometheus metrics served at `/metrics` (docs/metrics.md). */
  readonly metrics: import("./metrics/index.js").Metrics;
  /** The MCP gateway, when writ.yaml has a `gateway` section. */
  readonly gateway?: Gateway | undefined;
  /** The downstream reaper, when writ.yaml configures downstream systems: `pass()` runs one now. */
  readonly reaper?: import("./downstream/index.js").Reaper | undefined;
  /** Resolves once the downstream work a kill left running (its record removals) is done. */
  downstreamSettled(): Promise<void>;
  /**
   * Sets the public base URL when it was not known at creation (a port chosen at listen time);
   * throws `ERR_PUBLIC_URL` (and keeps the old one) when no issuer can be built on it.
   */
  setBaseUrl(url: string): void;
  /** Checkpoints the audit log and closes the store. */
  close(): Promise<void>;
}

/** What lands in the audit log for one decision: never raw tool arguments, only their digest. */
export function decisionAuditRecord(
  r: AuthzenRecord,
  digest: (value: unknown) => string,
): Record<string, unknown> {
  const ctx = r.request.context;
  return {
    source: r.source,
    requestId: r.requestId,
    agent: r.request.agent,
    action: r.request.action,
    resource: r.request.resource,
    environment: r.request.environment,
    at: r.request.now.toISOString(),
    context: ctx && {
      ticket: ctx.ticket,
      writId: ctx.writId,
      tainted: ctx.tainted,
      promptContextId: ctx.promptContextId,
      argumentsDigest: ctx.arguments === undefined ? undefined : digest(ctx.arguments),
    },
    decision: { allowed: r.decision.allowed, code: r.decision.code, reasons: r.decision.reasons },
    ...(r.decision.shadow === undefined ? {} : { shadow: r.decision.shadow }),
  };
}

type GatewayModule = typeof import("./gateway/index.js");

/** The log line for a periodic audit checkpoint that failed (damage found, or the store failing). */
export function checkpointFailureLine(err: { code: string; message: string }, now = new Date()): string {
  return JSON.stringify({
    level: "error",
    event: "audit.checkpoint_failed",
    time: now.toISOString(),
    error: { code: err.code, message: err.message.slice(0, 500) },
  });
}

/** `sha256:<hex>` of a value's canonical JSON: how arguments appear in the audit log. */
function digestOf(
  audit: Pick<typeof import("./audit/index.js"), "canonicalJson" | "toJsonValue">,
): (value: unknown) => string {
  return (value) =>
    `sha256:${createHash("sha256")
      .update(audit.canonicalJson(audit.toJsonValue(value)))
      .digest("hex")}`;
}

/** The gateway's dependencies from the server's own objects: one wiring for `serve` and `gateway --stdio`. */
function gatewayDeps(
  opts: Pick<ServerOptions, "policy" | "env" | "version">,
  parts: {
    pdp: DecisionPoint;
    store: Store;
    audit: AuditLog;
    approvals: import("./broker/index.js").ApprovalService;
    kill: import("./broker/index.js").KillSwitch;
    digest: (value: unknown) => string;
    /** The downstream registry: the issuers upstreams with per-writ credentials redeem writs with. */
    issuers: DownstreamIssuers;
  },
  gatewayPart: GatewayModule,
  upstreamStderr?: "inherit" | "ignore",
): import("./gateway/index.js").GatewayDeps {
  const audit = (type: string, data: Record<string, unknown>) => parts.audit.append(type, data);
  return {
    config: opts.policy.config,
    pdp: parts.pdp,
    store: parts.store,
    audit,
    approvals: parts.approvals,
    kill: parts.kill,
    digest: parts.digest,
    spendUse: gatewayPart.storeSpendUse(parts.store, audit),
    resolve: gatewayPart.envResolver(opts.env ?? process.env),
    version: opts.version,
    upstreamStderr,
    downstream: parts.issuers,
  };
}

/**
 * Refuses to start a gateway whose upstream names a downstream system that writ.yaml's `downstream:`
 * does not configure in an environment writs are issued in: its calls could only be refused, or
 * worse, forwarded bare. Checked before anything is opened; an issuer that cannot start stops the
 * start later, when the registry builds it.
 */
function checkDownstream(config: WritConfig, gatewayPart: GatewayModule): void {
  const missing = gatewayPart.missingIssuers(
    config,
    (environment, system) => config.downstream?.environments.get(environment)?.[system],
  );
  if (missing.length === 0) return;
  throw new WritError(
    ERR_DOWNSTREAM_CONFIG,
    `gateway upstreams need downstream issuers that are not configured: ${missing
      .map((m) => `${q(m.upstream)} (${m.system}) in environment ${q(m.environment)}`)
      .join(", ")} — configure \`downstream: { <env>: { ${missing[0]!.system}: … } }\` in writ.yaml`,
  );
}

export interface StdioGatewayOptions {
  readonly policy: Policy;
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly version: string;
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Where upstreams' stderr goes (stdout is the MCP channel, so never there). */
  readonly upstreamStderr?: "inherit" | "ignore" | undefined;
  /** As `ServerOptions.downstream`: the issuer factories and the reaper's period. */
  readonly downstream?: ServerOptions["downstream"];
}

export interface StdioGateway {
  readonly gateway: Gateway;
  readonly store: Store;
  /**
   * The operator channel of this process: the admin API (kill, approvals, keys) and the tool pins'
   * routes, under `adminToken`, for the CLI to reach while this process holds the embedded store.
   */
  readonly admin: Hono;
  readonly adminToken: string;
  /** Resolves once the downstream work a kill left running (its record removals) is done. */
  downstreamSettled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway alone, for `writ gateway --stdio`: the store (migrated), the audit log, the decision
 * point, approvals and the kill switch, without HTTP. The store must not be held by a `writ serve`
 * (the embedded one is locked): use PostgreSQL, or another data folder.
 */
export async function createStdioGateway(opts: StdioGatewayOptions): Promise<StdioGateway> {
  const [
    { canonicalJson, loadSigningKey, openAuditLog, toJsonValue },
    { openStore },
    broker,
    gatewayPart,
    downstreamPart,
  ] = await Promise.all([
    import("./audit/index.js"),
    import("./store/index.js"),
    import("./broker/index.js"),
    import("./gateway/index.js"),
    import("./downstream/index.js"),
  ]);
  // before anything is opened: an upstream that could only be refused (or forwarded bare) stops here
  checkDownstream(opts.policy.config, gatewayPart);
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  try {
    await store.migrate();
    const audit = openAuditLog({
      repo: store.audit,
      signer: await loadSigningKey(opts.dataDir),
      onCheckpointError: (err) => process.stderr.write(`${checkpointFailureLine(err)}\n`),
    });
    const index = await writIndex(store);
    const pdp = decisionPoint(opts.policy, (agent) => index.writsOf(agent));
    const digest = digestOf({ canonicalJson, toJsonValue });
    const approvals = broker.approvalService(store, { audit });
    // the issuers writ.yaml configures, for upstreams with per-writ credentials; what they create is
    // in the ledger, this process's reaper removes it when due, and a kill through this process's
    // admin API reaches them (as `writ serve`'s do). No issuer is served here: AWS web identity
    // refuses to mint.
    const downstream = await wireDownstream(
      downstreamPart,
      opts.policy.config,
      { ledger: store.downstream, audit: (type, data) => audit.append(type, data), env: opts.env },
      followKills(broker.killSwitch(store), store),
      opts.downstream?.factories,
    );
    const kill = downstream.kill;
    const reaper = downstream.startReaper(opts.downstream?.reaperPeriodMs);
    let gateway: Gateway;
    try {
      gateway = await gatewayPart.createGateway(
        gatewayDeps(
          opts,
          {
            pdp,
            store,
            audit,
            approvals,
            kill,
            digest,
            issuers: downstream.issuers,
          },
          gatewayPart,
          opts.upstreamStderr,
        ),
      );
    } catch (err) {
      await reaper?.stop();
      throw err;
    }
    const operator = broker.operator({
      config: gatewayPart.withToolApprovals(opts.policy.config),
      kill,
      keys: broker.environmentKeys(store),
      webIdentityKeys: broker.environmentKeys(store, { alg: "ES256" }),
      approvals,
      audit: (type, data) => audit.append(type, data),
    });
    const adminToken = randomBytes(32).toString("base64url");
    const { Hono } = await import("hono");
    const admin = new Hono()
      .route("/", gatewayPart.pinsApi(gatewayPart.pinStore(store), gateway, adminToken))
      .route("/", broker.adminApi(operator, adminToken));
    return {
      gateway,
      store,
      admin,
      adminToken,
      downstreamSettled: () => downstream.background.settled(),
      async close() {
        try {
          await reaper?.stop();
          await downstream.background.settled();
          await gateway.close();
          await audit.checkpoint().catch(() => {});
          await audit.settled(); // no periodic checkpoint still reading when the store closes
        } finally {
          await store.close();
        }
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

const text = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** The rules of a record's `shadow` list, for its request's log line: `guardrail:x,ceiling:build`. */
function shadowRules(v: unknown): string | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const rules = new Set<string>();
  for (const r of v)
    if (typeof (r as { rule?: unknown })?.rule === "string") rules.add((r as { rule: string }).rule);
  return [...rules].join(",");
}

/**
 * The audit log as the server uses it: each record first names its agent, writ and refusal reason
 * on the request being handled (its log line), and once committed feeds the metrics.
 */
function observedAudit(
  log: AuditLog,
  requests: import("./http/log.js").RequestContext,
  metrics: import("./metrics/index.js").Metrics,
): AuditLog {
  return {
    ...log,
    async append(type, data, o) {
      const decision = data.decision as { allowed?: unknown; code?: unknown } | undefined;
      const context = data.context as { writId?: unknown } | undefined;
      requests.annotate({
        agent: text(data.agent),
        writ: text(data.writ) ?? text(data.jti) ?? text(context?.writId),
        reason: text(data.reason) ?? (decision?.allowed === false ? text(decision.code) : undefined),
        shadow: shadowRules(data.shadow),
      });
      const started = performance.now();
      const record = await log.append(type, data, o);
      metrics.observeAudit(type, data, (performance.now() - started) / 1000);
      return record;
    },
  };
}

/** A promise that rejects after `ms` (a readiness check must answer, not hang). */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * `/readyz`: the store answers, its schema is this build's (no migration pending), and every
 * environment has a signing key (created now if there is none, as the first token would).
 */
async function readiness(
  store: Store,
  keys: Pick<import("./broker/index.js").EnvironmentKeys, "activeKey">,
  config: WritConfig,
): Promise<import("./http/app.js").Readiness> {
  const checks: Record<string, string> = { store: "unchecked", migrations: "unchecked", keys: "unchecked" };
  const fail = (reason: string, detail: string) => ({ ready: false, checks, reason, detail });
  let pending: string[];
  try {
    pending = await within(2000, "store", store.pendingMigrations());
    checks.store = "ok";
  } catch (err) {
    checks.store = "failed";
    return fail("store_unreachable", `the store does not answer: ${(err as Error).message.slice(0, 300)}`);
  }
  if (pending.length > 0) {
    checks.migrations = "pending";
    return fail("migrations_pending", `migrations not applied: ${pending.join(", ")}`);
  }
  checks.migrations = "ok";
  for (const env of config.environments.keys()) {
    try {
      await within(2000, `signing key of ${env}`, keys.activeKey(env));
    } catch (err) {
      checks.keys = "failed";
      return fail(
        "keys_unavailable",
        `no signing key for environment ${q(env)}: ${(err as Error).message.slice(0, 300)}`,
      );
    }
  }
  checks.keys = "ok";
  return { ready: true, checks };
}

/** The parts `createServer` wires, loaded here, not at the top: `writ check` and `writ explain` never pay for the store. */
async function loadServerParts() {
  const [
    auditPart,
    http,
    storePart,
    broker,
    gatewayPart,
    downstreamPart,
    routes,
    log,
    metricsPart,
    consolePart,
  ] = await Promise.all([
    import("./audit/index.js"),
    import("./http/app.js"),
    import("./store/index.js"),
    import("./broker/index.js"),
    import("./gateway/index.js"),
    import("./downstream/index.js"),
    import("./downstream/routes.js"),
    import("./http/log.js"),
    import("./metrics/index.js"),
    import("./console/index.js"),
  ]);
  return {
    auditPart,
    http,
    storePart,
    broker,
    gatewayPart,
    downstreamPart,
    downstreamRoutes: routes.downstreamRoutes,
    log,
    metricsPart,
    consolePart,
  };
}
type ServerParts = Awaited<ReturnType<typeof loadServerParts>>;

/** The server's public base URL: given at start or set later (`setBaseUrl`), checked each time it is set. */
function baseUrlHolder(opts: ServerOptions, parts: ServerParts) {
  const check = (url: string) => publicUrlOf(url, opts.policy.config, parts.broker.issuerFor);
  let value = opts.baseUrl === undefined ? undefined : check(opts.baseUrl);
  return {
    get: (): string => {
      if (value === undefined) throw new Error("the server's public base URL is not set");
      return value;
    },
    set: (url: string): void => {
      value = check(url);
    },
  };
}
type BaseUrlHolder = ReturnType<typeof baseUrlHolder>;

/**
 * Whether the server's audit log sends the appends that arrived during a group commit before it
 * answers that commit's callers: as told, else on PostgreSQL and not on the embedded store.
 */
export function sendsNextFirst(opts: Pick<ServerOptions, "auditSendNextFirst" | "databaseUrl">): boolean {
  return opts.auditSendNextFirst ?? opts.databaseUrl !== undefined;
}

/** The log, the metrics and the audit log (observed by both), its first record written. */
async function openObservedAudit(opts: ServerOptions, parts: ServerParts, store: Store) {
  const signer = await parts.auditPart.loadSigningKey(opts.dataDir);
  const logger = opts.logger ?? (await parts.log.createLogger({ level: "error" }));
  const requests = parts.log.requestContext();
  const metrics = parts.metricsPart.createMetrics({
    config: opts.policy.config,
    figures: (o) => store.metrics.figures(o),
    writOf: async (id) => {
      const w = await store.writs.get(id);
      return w && { agent: w.agent, playbook: w.playbook };
    },
    production: opts.metrics?.production,
    windowSeconds: opts.metrics?.windowSeconds,
    maxAgeSeconds: opts.metrics?.maxAgeSeconds,
  });
  const audit = observedAudit(
    parts.auditPart.openAuditLog({
      repo: store.audit,
      signer,
      checkpointEvery: opts.checkpointEvery,
      sendNextFirst: sendsNextFirst(opts),
      onCheckpointError: (err) =>
        logger.error({
          event: "audit.checkpoint_failed",
          error: { code: err.code, message: err.message.slice(0, 500) },
        }),
    }),
    requests,
    metrics,
  );
  await audit.append("server.start", {
    version: opts.version,
    config: opts.policy.file,
    configDigest: opts.policy.digest,
    store: store.backend,
  });
  return { logger, requests, metrics, audit };
}

/** The decision point over the writ index, its AuthZEN routes and the coding agents' hook routes. */
async function decisionRoutes(
  opts: ServerOptions,
  parts: ServerParts,
  store: Store,
  audit: AuditLog,
  digest: (v: unknown) => string,
  baseUrl: BaseUrlHolder,
  log: Pick<Awaited<ReturnType<typeof openObservedAudit>>, "logger" | "requests">,
) {
  const index = await writIndex(store);
  const pdp = decisionPoint(opts.policy, (agent) => index.writsOf(agent));
  const decider = {
    decide: async (req: PdpRequest) => {
      await opts.policy.prepare(req.action);
      return pdp.decide(req);
    },
  };
  const authzen = authzenRoutes(decider, {
    token: opts.pdpToken,
    baseUrl: baseUrl.get,
    onDecision: async (record) => {
      await audit.append("pdp.decision", decisionAuditRecord(record, digest));
    },
  });
  // coding agents' hooks decide through the same decider, taint and audit (docs/hooks.md)
  const { hookEngine, hookRoutes } = await import("./hook/index.js");
  authzen.route(
    "/",
    hookRoutes({
      token: opts.pdpToken,
      logger: log.logger,
      requests: log.requests,
      engine: hookEngine({
        decide: decider.decide,
        region: async (req) => {
          await opts.policy.prepare(req.action);
          return pdp.region(req);
        },
        taints: parts.gatewayPart.taints(store),
        audit: (type, data) => audit.append(type, data),
        hooks: opts.policy.config.hooks,
        home: homedir(),
      }),
    }),
  );
  return { pdp, authzen };
}

/** The broker's state and service, the downstream issuers (with the kill switch they follow) and the operator. */
async function brokerSide(
  opts: ServerOptions,
  parts: ServerParts,
  store: Store,
  audit: AuditLog,
  baseUrl: BaseUrlHolder,
) {
  const { broker, downstreamPart, gatewayPart } = parts;
  // The embedded store has one process (it is locked): state read on every request may then
  // live in memory, exactly. A shared PostgreSQL is read each time.
  const exclusive = opts.stateCache ?? store.backend === "pglite";
  const keys = broker.environmentKeys(store, { exclusive });
  // AWS web identity: a key family of its own (ES256), published at the issuer for AWS STS
  const webIdentityKeys = broker.environmentKeys(store, { exclusive, alg: "ES256" });
  const replay = broker.replayCache(store, { exclusive });
  const approvals = broker.approvalService(store, { audit });
  const appendAudit = (type: string, data: Record<string, unknown>) => audit.append(type, data);
  const downstream = await wireDownstream(
    downstreamPart,
    opts.policy.config,
    {
      ledger: store.downstream,
      audit: appendAudit,
      env: opts.env,
      webIdentity: downstreamPart.webIdentitySigner(webIdentityKeys, (env) =>
        broker.issuerFor(baseUrl.get(), env),
      ),
    },
    followKills(broker.killSwitch(store, { exclusive }), store),
    opts.downstream?.factories,
  );
  // approvers decide held tool calls by the tool's policy (gateway/holds.ts)
  const approvalConfig = gatewayPart.withToolApprovals(opts.policy.config);
  const operator = broker.operator({
    config: approvalConfig,
    kill: downstream.kill,
    keys,
    webIdentityKeys,
    approvals,
    audit: appendAudit,
  });
  // the runner classes' limits: counted in memory when no other process writes writs
  const writLoad = exclusive ? store.writLoadCounter() : undefined;
  const service = broker.brokerService({
    config: opts.policy.config,
    store,
    writLoad: writLoad?.load,
    keys,
    replay,
    kill: downstream.kill,
    backoff: broker.denialBackoff(store, { exclusive }),
    audit: appendAudit,
    storeIssued: async (writ, record) => {
      // stored with its record, not by the repository: the writ index hears of it all the same
      const done = store.writs.announce(writ);
      let stored = false;
      try {
        const appended = await audit.append("broker.writ_issued", record, {
          with: parts.storePart.writRow(writ),
        });
        stored = true;
        return appended;
      } finally {
        done(stored);
      }
    },
    get baseUrl() {
      return baseUrl.get();
    },
    introspectionToken: opts.pdpToken,
    approvals,
    nonce: broker.createNonceService(randomBytes(32)),
    requireDpopNonce: opts.dpopNonce === "require",
    onRevoked: downstream.configured
      ? async (writ) => {
          await downstreamPart.revokeWrit(downstream.deps, writ);
        }
      : undefined,
  });
  return {
    keys,
    webIdentityKeys,
    replay,
    approvals,
    appendAudit,
    downstream,
    approvalConfig,
    operator,
    writLoad,
    service,
  };
}
type BrokerSide = Awaited<ReturnType<typeof brokerSide>>;

/** The console's revocation: what the RFC 7009 endpoint does, for an operator. */
function consoleRevocation(parts: ServerParts, store: Store, audit: AuditLog, b: BrokerSide) {
  return async (id: string, by: string) => {
    const r = await store.writs.revoke(id, `revoked by ${by}`);
    if (!r.alreadyRevoked) {
      await audit.append("broker.writ_revoked", {
        environment: r.writ.environment,
        agent: r.writ.agent,
        writ: id,
        by,
        ...(r.descendants.length > 0 ? { descendants: r.descendants.map((d) => d.id) } : {}),
      });
      if (b.downstream.configured) {
        for (const w of [id, ...r.descendants.map((d) => d.id)]) {
          await parts.downstreamPart.revokeWrit(b.downstream.deps, w);
        }
      }
      await store.writChanges.sync();
    }
    return r;
  };
}

interface Wired {
  readonly store: Store;
  readonly observed: Awaited<ReturnType<typeof openObservedAudit>>;
  readonly authzen: ReturnType<typeof authzenRoutes>;
  readonly b: BrokerSide;
  readonly gateway: Gateway | undefined;
  readonly baseUrl: BaseUrlHolder;
  readonly adminToken: string;
  readonly digest: (v: unknown) => string;
}

/** The HTTP app: every part's routes mounted, with the log, the metrics and readiness. */
function serverApp(opts: ServerOptions, parts: ServerParts, w: Wired) {
  const { store, b, gateway, adminToken } = w;
  const { audit, logger, requests, metrics } = w.observed;
  const { broker, gatewayPart } = parts;
  const baseUrl = w.baseUrl.get;
  return parts.http.httpApp({
    authzen: w.authzen,
    console: parts.consolePart.consoleRoutes({
      config: b.approvalConfig,
      store,
      audit,
      approvals: b.approvals,
      operator: b.operator,
      replay: b.replay,
      adminToken,
      baseUrl,
      revokeWrit: consoleRevocation(parts, store, audit, b),
      digest: w.digest,
      locate: opts.policy.locate,
    }),
    gateway:
      gateway &&
      gatewayPart
        .gatewayRoutes({
          gateway,
          config: opts.policy.config,
          keys: b.keys,
          replay: b.replay,
          store,
          baseUrl,
          version: opts.version,
        })
        .route("/", gatewayPart.pinsApi(gatewayPart.pinStore(store), gateway, adminToken)),
    broker: broker
      .brokerRoutes({ service: b.service, keys: b.keys, baseUrl })
      .route(
        "/",
        broker.approvalsApi({ config: b.approvalConfig, approvals: b.approvals, replay: b.replay, baseUrl }),
      )
      .route("/", broker.adminApi(b.operator, adminToken))
      .route(
        "/",
        parts.downstreamRoutes({
          config: opts.policy.config,
          registry: b.downstream.deps.registry,
          keys: b.keys,
          webIdentityKeys: b.webIdentityKeys,
          replay: b.replay,
          store,
          audit: b.appendAudit,
          baseUrl,
        }),
      ),
    version: opts.version,
    logger,
    requests,
    observe: (r) => metrics.observeRequest(r),
    metrics: parts.metricsPart.metricsRoutes(metrics, [
      adminToken,
      ...(opts.metricsToken ? [opts.metricsToken] : []),
    ]),
    ready: async () => {
      await audit.head();
      return true;
    },
    readiness: () => readiness(store, b.keys, opts.policy.config),
  });
}

/** The running server's handle; `close` stops in order, the store last. */
function serverHandle(opts: ServerOptions, w: Wired, app: Hono): Server {
  const { store, b, gateway, adminToken } = w;
  const { audit, metrics } = w.observed;
  // nothing created downstream outlives its writ by more than one period, also after a crash
  const reaper = b.downstream.startReaper(opts.downstream?.reaperPeriodMs);
  let closed = false;
  return {
    app,
    store,
    audit,
    operator: b.operator,
    adminToken,
    metrics,
    gateway,
    reaper,
    downstreamSettled: () => b.downstream.background.settled(),
    setBaseUrl(url: string) {
      w.baseUrl.set(url);
    },
    async close() {
      if (closed) return;
      closed = true;
      b.writLoad?.close();
      try {
        await reaper?.stop();
        await b.downstream.background.settled();
        await gateway?.close();
        await b.replay.flush();
        await audit.append("server.stop", {});
        await audit.checkpoint();
        await audit.settled(); // no periodic checkpoint still reading when the store closes
      } finally {
        await store.close();
      }
    },
  };
}

/**
 * The calls an offline hook decided on its snapshot and left in its signed spool (hook/local.ts,
 * docs/hooks.md), imported into the audit log and the taints. A spool that does not verify stays
 * where it is, and the server starts: the log says why (`hook.spool_rejected`).
 */
async function importHookSpool(
  opts: ServerOptions,
  parts: ServerParts,
  store: Store,
  observed: Awaited<ReturnType<typeof openObservedAudit>>,
): Promise<void> {
  const { importSpool, markSpooledTaint } = await import("./hook/local.js");
  const taints = parts.gatewayPart.taints(store);
  try {
    await importSpool(
      opts.dataDir,
      await parts.auditPart.loadSigningKey(opts.dataDir),
      parts.auditPart.canonicalJson,
      {
        append: (type, data) => observed.audit.append(type, data),
        taint: markSpooledTaint(taints),
        settled: () => observed.audit.settled(),
      },
    );
  } catch (err) {
    if (!(err instanceof Error && (err as { code?: unknown }).code === "ERR_HOOK_SPOOL")) throw err;
    observed.logger.error({
      event: "hook.spool_rejected",
      error: { code: "ERR_HOOK_SPOOL", message: err.message.slice(0, 500) },
    });
  }
}

/** Opens the store (migrating it), the audit log and the decision point, and builds the HTTP app. */
export async function createServer(opts: ServerOptions): Promise<Server> {
  const parts = await loadServerParts();
  const digest = digestOf(parts.auditPart);
  // before anything is opened: an upstream that could only be refused (or forwarded bare) stops here
  checkDownstream(opts.policy.config, parts.gatewayPart);
  const store = await parts.storePart.openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  try {
    await store.migrate();
    const observed = await openObservedAudit(opts, parts, store);
    const { audit } = observed;
    await importHookSpool(opts, parts, store, observed);
    const baseUrl = baseUrlHolder(opts, parts);
    const { pdp, authzen } = await decisionRoutes(opts, parts, store, audit, digest, baseUrl, observed);
    const b = await brokerSide(opts, parts, store, audit, baseUrl);
    const adminToken = randomBytes(32).toString("base64url");
    const gateway =
      opts.policy.config.gateway === undefined
        ? undefined
        : await parts.gatewayPart.createGateway(
            gatewayDeps(
              opts,
              {
                pdp,
                store,
                audit,
                approvals: b.approvals,
                kill: b.downstream.kill,
                digest,
                issuers: b.downstream.issuers,
              },
              parts.gatewayPart,
            ),
          );
    const wired: Wired = { store, observed, authzen, b, gateway, baseUrl, adminToken, digest };
    return serverHandle(opts, wired, serverApp(opts, parts, wired));
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
