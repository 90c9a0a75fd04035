/**
 * Downstream systems (issue 11), the part's public face: the issuers writ.yaml configures for each
 * environment, built once at start; the reaper that removes what outlived its writ; and the hooks
 * by which revocation and the kill switch reach every credential already handed out.
 *
 * Nothing here decides what a credential may do: each issuer scopes it to the writ's grants. This
 * module only routes — a writ of environment E to E's issuer of system S — and keeps the ledger
 * honest: a record is marked removed only once its issuer said the object is gone, and every
 * downstream call is audited (never with a secret). A failed removal is audited with its cause and
 * left in the ledger, where the reaper's next pass finds it again.
 */
import { type Agent, isWritError, q, type WritConfig, WritError } from "../core/index.js";
import {
  type AwsDownstreamConfig,
  type DownstreamAudit,
  type DownstreamConfig,
  type DownstreamIssuer,
  type DownstreamLedger,
  type DownstreamRecord,
  type DownstreamSystem,
  ERR_DOWNSTREAM_CONFIG,
  type GithubDownstreamConfig,
  type IssuerDeps,
  type KubernetesDownstreamConfig,
  type WritForIssuer,
} from "./types.js";

export { openIdConfiguration, type WebIdentitySigner, webIdentitySigner } from "./aws/web-identity.js";
export { type DownstreamOutcome, type DownstreamRefused, issued, refused } from "./refusal.js";
export {
  type DownstreamAudit,
  type DownstreamConfig,
  type DownstreamCredential,
  type DownstreamIssuer,
  type DownstreamLedger,
  type DownstreamReason,
  type DownstreamRecord,
  type DownstreamSystem,
  ERR_DOWNSTREAM_CONFIG,
  ERR_DOWNSTREAM_REFUSED,
  type IssuerDeps,
  type WritForIssuer,
} from "./types.js";

export const DOWNSTREAM_SYSTEMS: readonly DownstreamSystem[] = ["aws", "github", "kubernetes"];

export function isDownstreamSystem(s: string): s is DownstreamSystem {
  return (DOWNSTREAM_SYSTEMS as readonly string[]).includes(s);
}

/** The factories, one per system; tests pass their own to stand in for systems that cannot run here. */
export interface IssuerFactories {
  readonly aws: (cfg: AwsDownstreamConfig, deps: IssuerDeps) => Promise<DownstreamIssuer>;
  readonly github: (cfg: GithubDownstreamConfig, deps: IssuerDeps) => Promise<DownstreamIssuer>;
  readonly kubernetes: (cfg: KubernetesDownstreamConfig, deps: IssuerDeps) => Promise<DownstreamIssuer>;
}

/**
 * `awsIssuer` (./aws.js), `githubIssuer` (./github.js), `kubernetesIssuer` (./kubernetes.js), each
 * loaded only when writ.yaml configures its system: a server without downstream systems never
 * loads their SDKs.
 */
export const ISSUER_FACTORIES: IssuerFactories = {
  aws: async (cfg, deps) => (await import("./aws.js")).awsIssuer(cfg, deps),
  github: async (cfg, deps) => (await import("./github.js")).githubIssuer(cfg, deps),
  kubernetes: async (cfg, deps) => (await import("./kubernetes.js")).kubernetesIssuer(cfg, deps),
};

export interface ConfiguredIssuer {
  readonly environment: string;
  readonly system: DownstreamSystem;
  readonly issuer: DownstreamIssuer;
}

/** The issuers of every environment, built from writ.yaml's `downstream:` section. */
export interface DownstreamRegistry {
  issuer(environment: string, system: DownstreamSystem): DownstreamIssuer | undefined;
  /** Every configured issuer, in writ.yaml's order. */
  all(): readonly ConfiguredIssuer[];
}

/**
 * Builds every configured issuer (each reads and checks its own credentials). The first that cannot
 * start stops the server: `ERR_DOWNSTREAM_CONFIG` naming the environment and system.
 */
export async function buildRegistry(
  config: DownstreamConfig | undefined,
  deps: IssuerDeps,
  factories: IssuerFactories = ISSUER_FACTORIES,
): Promise<DownstreamRegistry> {
  const built: ConfiguredIssuer[] = [];
  for (const [environment, systems] of config?.environments ?? []) {
    for (const system of DOWNSTREAM_SYSTEMS) {
      const cfg = systems[system];
      if (cfg === undefined) continue;
      let issuer: DownstreamIssuer;
      try {
        issuer = await (factories[system] as (c: typeof cfg, d: IssuerDeps) => Promise<DownstreamIssuer>)(
          cfg,
          deps,
        );
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new WritError(ERR_DOWNSTREAM_CONFIG, `downstream.${environment}.${system}: ${why}`, {
          cause: err,
        });
      }
      if (issuer.system !== system)
        throw new WritError(
          ERR_DOWNSTREAM_CONFIG,
          `downstream.${environment}.${system}: the issuer built is for ${q(issuer.system)}`,
        );
      built.push({ environment, system, issuer });
    }
  }
  return {
    issuer: (environment, system) =>
      built.find((b) => b.environment === environment && b.system === system)?.issuer,
    all: () => built,
  };
}

/** A cause for the audit log: the error's code and message, bounded, never its stack. */
export function causeOf(err: unknown): string {
  const text = isWritError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** What the audit log says of a record: its identity, never its locator's values beyond names. */
function recordFields(r: DownstreamRecord): Record<string, unknown> {
  return {
    record: r.id,
    writ: r.writ,
    agent: r.agent,
    environment: r.environment,
    system: r.system,
    kind: r.kind,
  };
}

/** The writ as an issuer sees it: the stored writ, its runner class ceiling's denies and its agent's. */
export function writForIssuer(
  config: WritConfig,
  writ: {
    readonly id: string;
    readonly agent: string;
    readonly playbook: string;
    readonly environment: string;
    readonly params: Readonly<Record<string, unknown>>;
    readonly grants: WritForIssuer["grants"];
    readonly sponsor?: string | undefined;
    readonly ticket?: string | undefined;
    readonly issuedAt: Date;
    readonly expiresAt: Date;
  },
): WritForIssuer {
  const agent = config.agents.get(writ.agent);
  const ceiling = agent ? (config.runnerClasses.get(agent.runnerClass)?.ceiling.deny ?? []) : [];
  // the agent's own denies too: a credential never holds what the agent may not do
  const denies = [...ceiling, ...(agent?.deny ?? [])];
  return {
    id: writ.id,
    agent: writ.agent,
    playbook: writ.playbook,
    environment: writ.environment,
    params: writ.params,
    grants: writ.grants,
    denies: denies.map((d) => d.rule.text),
    sponsor: writ.sponsor,
    ticket: writ.ticket,
    issuedAt: writ.issuedAt,
    expiresAt: writ.expiresAt,
  };
}

export interface DownstreamDeps {
  readonly registry: DownstreamRegistry;
  readonly ledger: DownstreamLedger;
  readonly audit: DownstreamAudit;
  readonly clock?: (() => Date) | undefined;
}

export interface RemovalResult {
  readonly removed: number;
  readonly failed: number;
}

/**
 * Removes records: each through its issuer's `revoke`, then marked removed in the ledger. A failure
 * (no issuer any more, the system refusing or unreachable) is audited with its cause and left for
 * the reaper's next pass. `by` says who asked: `reaper`, `revocation`, `kill`.
 */
export async function removeRecords(
  deps: DownstreamDeps,
  records: readonly DownstreamRecord[],
  by: string,
): Promise<RemovalResult> {
  const now = deps.clock ?? (() => new Date());
  let removed = 0;
  let failed = 0;
  for (const record of records) {
    if (record.state === "removed") continue;
    try {
      const issuer = deps.registry.issuer(record.environment, record.system);
      if (!issuer)
        throw new WritError(
          ERR_DOWNSTREAM_CONFIG,
          `no ${record.system} issuer is configured for ${q(record.environment)} any more`,
        );
      await issuer.revoke(record, now());
      await deps.ledger.removed(record.id);
      removed++;
      await deps.audit("downstream.removed", { ...recordFields(record), by });
    } catch (err) {
      failed++;
      await deps
        .audit("downstream.remove_failed", { ...recordFields(record), by, cause: causeOf(err) })
        .catch(() => {});
    }
  }
  return { removed, failed };
}

/** After a writ's revocation is committed: every record of it is removed downstream. */
export async function revokeWrit(deps: DownstreamDeps, writ: string): Promise<RemovalResult> {
  try {
    return await removeRecords(deps, await deps.ledger.ofWrit(writ), "revocation");
  } catch (err) {
    // the ledger itself failed: the reaper finds the records once the store answers again
    await deps
      .audit("downstream.remove_failed", { writ, by: "revocation", cause: causeOf(err) })
      .catch(() => {});
    return { removed: 0, failed: 1 };
  }
}

/** What a kill switch scope means downstream: which issuers, and which `kill` scope each gets. */
export type DownstreamKillScope =
  | { readonly kind: "agent"; readonly agent: string }
  | { readonly kind: "class"; readonly runnerClass: string }
  | { readonly kind: "environment"; readonly environment: string }
  | { readonly kind: "all" };

function killTargets(
  scope: DownstreamKillScope,
  config: WritConfig,
  registry: DownstreamRegistry,
): { target: ConfiguredIssuer; scope: { agent?: string } }[] {
  const agentTargets = (agents: readonly Agent[]) =>
    agents.flatMap((a) =>
      registry
        .all()
        .filter((c) => a.environments.includes(c.environment))
        .map((target) => ({ target, scope: { agent: a.id } })),
    );
  switch (scope.kind) {
    case "all":
      return registry.all().map((target) => ({ target, scope: {} }));
    case "environment":
      return registry
        .all()
        .filter((c) => c.environment === scope.environment)
        .map((target) => ({ target, scope: {} }));
    case "agent": {
      const agent = config.agents.get(scope.agent);
      return agent ? agentTargets([agent]) : [];
    }
    case "class":
      return agentTargets([...config.agents.values()].filter((a) => a.runnerClass === scope.runnerClass));
  }
}

/**
 * After a kill switch's commit: each affected issuer's `kill` (everything it made for the agent,
 * or everything it made in the environment), all at once — once they return, credentials already
 * handed out no longer work. Then every record of the revoked writs is removed; that may be many
 * calls, so it is returned as a promise of its own for the caller to let run (`removal`).
 */
export async function killDownstream(
  deps: DownstreamDeps & { readonly config: WritConfig },
  scope: DownstreamKillScope,
  revoked: readonly { readonly id: string }[],
): Promise<{ killed: number; failed: number; removal: Promise<RemovalResult> }> {
  const now = deps.clock ?? (() => new Date());
  const outcomes = await Promise.all(
    killTargets(scope, deps.config, deps.registry).map(async ({ target, scope: issuerScope }) => {
      const fields = { environment: target.environment, system: target.system, ...issuerScope };
      try {
        await target.issuer.kill(issuerScope, now());
        await deps.audit("downstream.killed", fields);
        return true;
      } catch (err) {
        await deps.audit("downstream.kill_failed", { ...fields, cause: causeOf(err) }).catch(() => {});
        return false;
      }
    }),
  );
  const removal = (async () => {
    let removed = 0;
    let failed = 0;
    for (const w of revoked) {
      const r = await revokeWrit(deps, w.id);
      removed += r.removed;
      failed += r.failed;
    }
    return { removed, failed };
  })();
  return { killed: outcomes.filter(Boolean).length, failed: outcomes.filter((o) => !o).length, removal };
}

export interface Reaper {
  /** One pass now (also what each tick runs); passes never overlap. */
  pass(): Promise<RemovalResult>;
  /** Stops the timer and waits for a pass under way. */
  stop(): Promise<void>;
}

/** The reaper's period when writ.yaml says nothing: nothing outlives its writ by more than this. */
export const REAPER_PERIOD_MS = 30_000;

/**
 * Every `periodMs` (and once at start), every due record — expired, or its writ revoked, expired or
 * gone — is removed through its issuer. The timer is unref'd: it never keeps a process alive.
 */
export function startReaper(deps: DownstreamDeps, opts: { periodMs?: number } = {}): Reaper {
  const period = opts.periodMs ?? REAPER_PERIOD_MS;
  const now = deps.clock ?? (() => new Date());
  let running: Promise<RemovalResult> | undefined;
  let stopped = false;
  const pass = (): Promise<RemovalResult> => {
    if (running) return running;
    running = (async () => {
      try {
        return await removeRecords(deps, await deps.ledger.due(now()), "reaper");
      } catch (err) {
        await deps.audit("downstream.reap_failed", { cause: causeOf(err) }).catch(() => {});
        return { removed: 0, failed: 0 };
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const tick = () => {
    if (!stopped) void pass();
  };
  const timer = setInterval(tick, period);
  timer.unref();
  tick();
  return {
    pass,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
export { DOWNSTREAM_ERROR_CODES, type DownstreamErrorCode } from "./codes.js";
