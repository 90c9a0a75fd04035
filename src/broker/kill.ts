/**
 * The kill switch: one call stops issuance and revokes every outstanding writ in scope — an agent,
 * a runner class, an environment, or everything — and reports what it revoked. It stays engaged
 * until it is lifted for the same scope; issuance checks `blocking` before every writ.
 *
 * Engaging and revoking happen in one transaction: a kill either records itself and revokes, or
 * does neither. A runner-class kill revokes the writs of the agents the config puts in that class.
 */
import { randomBytes } from "node:crypto";
import { type Agent, q, type WritConfig, WritError } from "../core/index.js";
import type { KillRow, Store } from "../store/index.js";

export type KillScope =
  | { readonly kind: "agent"; readonly agent: string }
  | { readonly kind: "class"; readonly runnerClass: string }
  | { readonly kind: "environment"; readonly environment: string }
  | { readonly kind: "all" };

export interface EngagedKill {
  readonly id: string;
  readonly scope: KillScope;
  readonly reason: string | undefined;
  readonly engagedAt: Date;
  readonly engagedBy: string;
}

export interface RevokedWrit {
  readonly id: string;
  readonly agent: string;
  readonly playbook: string;
  readonly environment: string;
  readonly expiresAt: Date;
}

export interface EngageResult {
  readonly kill: EngagedKill;
  /** True when the same scope was already engaged (the revocation ran again all the same). */
  readonly already: boolean;
  readonly revoked: readonly RevokedWrit[];
}

export const ERR_KILL_SCOPE = "ERR_KILL_SCOPE";
export const ERR_KILL_NOT_ENGAGED = "ERR_KILL_NOT_ENGAGED";

function target(scope: KillScope): string {
  switch (scope.kind) {
    case "agent":
      return scope.agent;
    case "class":
      return scope.runnerClass;
    case "environment":
      return scope.environment;
    case "all":
      return "*";
  }
}

function scopeOf(kind: string, value: string): KillScope {
  switch (kind) {
    case "agent":
      return { kind, agent: value };
    case "class":
      return { kind, runnerClass: value };
    case "environment":
      return { kind, environment: value };
    default:
      return { kind: "all" };
  }
}

export function describeScope(scope: KillScope): string {
  return scope.kind === "all" ? "everything" : `${scope.kind} ${q(target(scope))}`;
}

function toKill(r: KillRow): EngagedKill {
  return {
    id: r.id,
    scope: scopeOf(r.scope, r.target),
    reason: r.reason ?? undefined,
    engagedAt: r.engagedAt,
    engagedBy: r.engagedBy,
  };
}

/** Checks that the scope names something the config declares. */
export function validateScope(scope: KillScope, config: WritConfig): void {
  const known =
    scope.kind === "all" ||
    (scope.kind === "agent" && config.agents.has(scope.agent)) ||
    (scope.kind === "class" && config.runnerClasses.has(scope.runnerClass)) ||
    (scope.kind === "environment" && config.environments.has(scope.environment));
  if (!known)
    throw new WritError(ERR_KILL_SCOPE, `unknown ${describeScope(scope)}: writ.yaml does not declare it`);
}

export interface KillSwitch {
  engage(
    scope: KillScope,
    opts: { by: string; reason?: string | undefined; config: WritConfig; now?: Date },
  ): Promise<EngageResult>;
  /** Lifts every engaged kill of exactly this scope; `ERR_KILL_NOT_ENGAGED` when there is none. */
  lift(scope: KillScope, opts: { by: string; now?: Date }): Promise<{ lifted: readonly EngagedKill[] }>;
  /** Every engaged kill. */
  engaged(): Promise<EngagedKill[]>;
  /** The engaged kill that stops this agent in this environment, if any. */
  blocking(agent: Pick<Agent, "id" | "runnerClass">, environment: string): Promise<EngagedKill | undefined>;
}

export interface KillSwitchOptions {
  /**
   * True when this process is the store's only user (the embedded store): the engaged kills are
   * then kept in memory and every check is answered from there, exactly, since only this object
   * can engage or lift one. Never for a shared PostgreSQL, where another process may engage a kill.
   */
  readonly exclusive?: boolean | undefined;
}

/** Whether one engaged kill stops this agent in this environment. */
export function blocks(
  kill: Pick<EngagedKill, "scope">,
  agent: Pick<Agent, "id" | "runnerClass">,
  environment: string,
): boolean {
  const s = kill.scope;
  return (
    s.kind === "all" ||
    (s.kind === "agent" && s.agent === agent.id) ||
    (s.kind === "class" && s.runnerClass === agent.runnerClass) ||
    (s.kind === "environment" && s.environment === environment)
  );
}

export function killSwitch(store: Pick<Store, "kills">, options: KillSwitchOptions = {}): KillSwitch {
  const rows = store.kills;
  // The engaged kills, oldest first, when exclusive; undefined until first read and after a change.
  let memo: Promise<EngagedKill[]> | undefined;
  const engagedNow = async (): Promise<EngagedKill[]> => (await rows.engaged()).map(toKill);
  const changed = () => {
    memo = undefined;
  };
  const remembered = (): Promise<EngagedKill[]> => {
    if (memo === undefined) {
      const loading = engagedNow();
      memo = loading;
      loading.catch(() => {
        if (memo === loading) memo = undefined;
      });
    }
    return memo;
  };
  return {
    async engage(scope, opts) {
      validateScope(scope, opts.config);
      const now = opts.now ?? new Date();
      changed();
      const runnerClass = scope.kind === "class" ? scope.runnerClass : undefined;
      const reach = {
        agent: scope.kind === "agent" ? scope.agent : undefined,
        environment: scope.kind === "environment" ? scope.environment : undefined,
        agents:
          runnerClass === undefined
            ? undefined
            : [...opts.config.agents.values()].filter((a) => a.runnerClass === runnerClass).map((a) => a.id),
      };
      const kill: KillRow = {
        id: `kill_${randomBytes(9).toString("base64url")}`,
        scope: scope.kind,
        target: target(scope),
        reason: opts.reason ?? null,
        engagedAt: now,
        engagedBy: opts.by,
      };
      return rows
        .engage(kill, reach, {
          revoked: (id) => `kill switch ${id}${opts.reason ? `: ${opts.reason}` : ""}`,
          descendants: (id) => `kill switch ${id}`,
        })
        .then((r) => ({ kill: toKill(r.kill), already: r.already, revoked: r.revoked }))
        .finally(changed);
    },

    async lift(scope, opts) {
      const now = opts.now ?? new Date();
      changed();
      try {
        const lifted = await rows.lift(scope.kind, target(scope), now, opts.by);
        if (lifted.length === 0) {
          throw new WritError(ERR_KILL_NOT_ENGAGED, `no kill switch is engaged for ${describeScope(scope)}`);
        }
        return { lifted: lifted.map(toKill) };
      } finally {
        changed();
      }
    },

    // exclusive: from memory (the gateway polls this every 200 ms; each read would be a statement)
    engaged: async () => (options.exclusive === true ? [...(await remembered())] : engagedNow()),

    async blocking(agent, environment) {
      if (options.exclusive === true) {
        return (await remembered()).find((k) => blocks(k, agent, environment));
      }
      const row = await rows.blocking(agent.id, agent.runnerClass, environment);
      return row ? toKill(row) : undefined;
    },
  };
}
