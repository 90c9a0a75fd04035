/**
 * What an operator does to a running broker: pull or lift the kill switch, rotate a signing key,
 * decide an approval request, list keys and pending requests. One interface, two ways to reach it:
 *
 *   - `operator(deps)` works on the store directly (the CLI when it can open the store, and the
 *     server itself, with its own kill switch and key objects so their in-memory state follows);
 *   - `remoteOperator(url, token)` calls a running `writ serve` over its admin API
 *     (admin-api.ts), for when the server holds the embedded store's lock.
 *
 * Every kill, lift and rotation is audited here; decisions are audited by the approval service.
 */
import type { ApprovalVerdict, WritConfig } from "../core/index.js";
import { q, WritError } from "../core/index.js";
import type { ApprovalRequest, ApprovalService, DecideResult } from "./approvals.js";
import type { EnvironmentKeys, KeyAlg, KeyInfo } from "./keys.js";
import {
  describeScope,
  type EngagedKill,
  type EngageResult,
  type KillScope,
  type KillSwitch,
} from "./kill.js";

export interface RotationReport {
  readonly environment: string;
  readonly retired: KeyInfo | undefined;
  readonly created: KeyInfo;
}

export interface Operator {
  engageKill(scope: KillScope, opts: { by: string; reason?: string | undefined }): Promise<EngageResult>;
  liftKill(scope: KillScope, opts: { by: string }): Promise<{ lifted: readonly EngagedKill[] }>;
  engagedKills(): Promise<readonly EngagedKill[]>;
  /** Rotates one family of `env`'s keys: EdDSA (default, writ's tokens) or ES256 (AWS web identity). */
  rotateKey(
    env: string,
    opts: { maxTokenTtlSeconds: number; by: string; alg?: KeyAlg | undefined },
  ): Promise<RotationReport>;
  listKeys(env?: string): Promise<readonly KeyInfo[]>;
  decideApproval(
    id: string,
    input: { approver: string; decision: ApprovalVerdict; reason?: string | undefined },
  ): Promise<DecideResult>;
  pendingApprovals(env?: string): Promise<readonly ApprovalRequest[]>;
}

export interface OperatorDeps {
  /** writ.yaml; only listing keys works without it. */
  readonly config?: WritConfig | undefined;
  readonly kill: KillSwitch;
  readonly keys: EnvironmentKeys;
  /** The ES256 family (AWS web-identity tokens); default: the same store as `keys`, built by the caller. */
  readonly webIdentityKeys?: EnvironmentKeys | undefined;
  readonly approvals: ApprovalService;
  /** The audit log. Never given a secret. */
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  readonly clock?: (() => Date) | undefined;
}

export const ERR_OPERATOR_INPUT = "ERR_OPERATOR_INPUT";

function needConfig(config: WritConfig | undefined): WritConfig {
  if (config === undefined) throw new WritError(ERR_OPERATOR_INPUT, "this needs writ.yaml (`--config`)");
  return config;
}

function checkEnvironment(config: WritConfig | undefined, env: string): void {
  if (config !== undefined && !config.environments.has(env)) {
    throw new WritError(ERR_OPERATOR_INPUT, `unknown environment ${q(env)}: writ.yaml does not declare it`);
  }
}

function scopeRecord(scope: KillScope): Record<string, string> {
  switch (scope.kind) {
    case "agent":
      return { scope: "agent", agent: scope.agent };
    case "class":
      return { scope: "class", runnerClass: scope.runnerClass };
    case "environment":
      return { scope: "environment", environment: scope.environment };
    case "all":
      return { scope: "all" };
  }
}

export function operator(deps: OperatorDeps): Operator {
  const now = () => (deps.clock ? deps.clock() : new Date());
  return {
    async engageKill(scope, opts) {
      const r = await deps.kill.engage(scope, {
        by: opts.by,
        reason: opts.reason,
        config: needConfig(deps.config),
        now: now(),
      });
      await deps.audit("kill.engaged", {
        kill: r.kill.id,
        ...scopeRecord(scope),
        by: opts.by,
        reason: opts.reason,
        already: r.already,
        revoked: r.revoked.map((w) => ({
          writ: w.id,
          agent: w.agent,
          playbook: w.playbook,
          environment: w.environment,
        })),
      });
      return r;
    },

    async liftKill(scope, opts) {
      const r = await deps.kill.lift(scope, { by: opts.by, now: now() });
      await deps.audit("kill.lifted", {
        ...scopeRecord(scope),
        by: opts.by,
        kills: r.lifted.map((k) => k.id),
        what: describeScope(scope),
      });
      return r;
    },

    engagedKills: () => deps.kill.engaged(),

    async rotateKey(env, opts) {
      const config = needConfig(deps.config);
      checkEnvironment(config, env);
      const alg = opts.alg ?? "EdDSA";
      const family = alg === "EdDSA" ? deps.keys : deps.webIdentityKeys;
      if (alg !== "EdDSA" && config.downstream?.environments.get(env)?.aws?.mode !== "web-identity") {
        throw new WritError(
          ERR_OPERATOR_INPUT,
          `environment ${q(env)} has no ${alg} key: only AWS web-identity mode (\`downstream.${env}.aws.mode\`) signs with one`,
        );
      }
      if (family === undefined) throw new TypeError(`no ${alg} key family was given to the operator`);
      const result = await family.rotate(env, { maxTokenTtlSeconds: opts.maxTokenTtlSeconds });
      const created = (await deps.keys.list(env)).find((k) => k.kid === result.created.kid);
      if (created === undefined) throw new Error(`the new key ${result.created.kid} is not listed`);
      await deps.audit("keys.rotate", {
        environment: env,
        by: opts.by,
        alg,
        retired: result.retired?.kid ?? null,
        retiredPublishedUntil: result.retired?.publishUntil.toISOString() ?? null,
        created: result.created.kid,
        signUntil: result.created.signUntil.toISOString(),
      });
      return { environment: env, retired: result.retired, created };
    },

    listKeys(env) {
      if (env !== undefined) checkEnvironment(deps.config, env);
      return deps.keys.list(env);
    },

    decideApproval(id, input) {
      return deps.approvals.decide(id, input, { config: needConfig(deps.config), now: now() });
    },

    pendingApprovals(env) {
      return deps.approvals.listPending({ environment: env, now: now() });
    },
  };
}
