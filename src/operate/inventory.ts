/**
 * The agents inventory: per agent, what writ.yaml declares (owner, purpose, runner class, ceiling,
 * baseline), the credentials writ knows it holds and when they expire, its last activity and its
 * open findings, with flags for dormant agents, credentials that outlive their use and agents the
 * store knows but writ.yaml does not. A pure function of the config and the store's state.
 */
import type { Agent, RuleText, WritConfig } from "../core/index.js";
import { formatDuration } from "../core/index.js";
import type { LiveDownstream, LiveWrit, OperationalState, StoredFindingSummary } from "./state.js";
import {
  configRef,
  groupBy,
  type Locate,
  type SourceRef,
  type StandingCredential,
  standingCredentials,
} from "./surface.js";

export const DEFAULT_DORMANT_DAYS = 30;
/** A live credential whose writ has not been used for this long outlives its use (one hour). */
export const DEFAULT_IDLE_SECONDS = 3600;

/** Finding statuses that still need someone: not `fixed`, not `risk-accepted`. */
export const UNRESOLVED_STATUSES: readonly string[] = ["open", "accepted"];

export interface InventoryOptions {
  readonly now: Date;
  readonly dormantDays?: number | undefined;
  readonly idleSeconds?: number | undefined;
  readonly locate?: Locate | undefined;
}

export interface WritCredential {
  readonly kind: "writ";
  readonly id: string;
  readonly playbook: string;
  readonly environment: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** undefined: unlimited uses. */
  readonly usesLeft: number | undefined;
  readonly lastUsedAt: Date | undefined;
  readonly source: SourceRef;
}

export interface DownstreamCredential {
  readonly kind: "downstream";
  readonly id: string;
  readonly system: string;
  readonly credentialKind: string;
  readonly environment: string;
  readonly writ: string;
  readonly expiresAt: Date;
  readonly writStatus: "active" | "revoked" | "expired" | "missing";
  /** An object its writ's end made (a deny), meant to outlive the writ. */
  readonly outlivesWrit: boolean;
  readonly lastUsedAt: Date | undefined;
  readonly source: SourceRef;
}

export type InventoryCredential = WritCredential | DownstreamCredential | StandingCredential;

export type InventoryFlagCode = "dormant" | "credential-outlives-use" | "undeclared";

export interface InventoryFlag {
  readonly code: InventoryFlagCode;
  readonly message: string;
  /** The credential the flag is about (a writ or downstream record id). */
  readonly credential?: string | undefined;
}

export interface InventoryGrant extends RuleText {
  readonly environments?: readonly string[] | undefined;
  readonly standingWrite?: string | undefined;
  readonly source: SourceRef;
}

export interface AgentCeiling {
  readonly runnerClass: string;
  readonly maxTtl: string;
  readonly maxTtlSeconds: number;
  readonly allow: readonly RuleText[];
  readonly deny: readonly RuleText[];
  readonly source: SourceRef;
}

export interface AgentEntry {
  readonly id: string;
  /** false: known to the store or the audit log only. */
  readonly declared: boolean;
  readonly owner: string | undefined;
  readonly purpose: string | undefined;
  readonly runnerClass: string | undefined;
  readonly environments: readonly string[];
  readonly ceiling: AgentCeiling | undefined;
  readonly baseline: readonly InventoryGrant[];
  readonly deny: readonly RuleText[];
  readonly playbooks: readonly string[];
  readonly tools: readonly string[];
  readonly credentials: readonly InventoryCredential[];
  readonly lastActivity: { readonly at: Date; readonly type: string } | undefined;
  /**
   * When `lastActivity` is undefined because only part of the audit log was read: its last activity
   * (if any) is older than this, the oldest record read. Undefined when the whole log was read.
   */
  readonly activityOlderThan: Date | undefined;
  /** Findings tied to the agent whose status is `open` or `accepted`. */
  readonly openFindings: readonly StoredFindingSummary[];
  readonly flags: readonly InventoryFlag[];
  readonly source: SourceRef | undefined;
}

export interface Inventory {
  readonly at: Date;
  readonly dormantDays: number;
  readonly idleSeconds: number;
  readonly agents: readonly AgentEntry[];
  /** Unresolved findings the scan tied to no agent. */
  readonly unattributedFindings: number;
}

const DAY = 86_400_000;

function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name}: expected a non-negative number, got ${v}`);
  return v;
}

function liveCredentials(
  state: OperationalState,
  writsOf: readonly LiveWrit[],
  downstreamOf: readonly LiveDownstream[],
): { writs: WritCredential[]; downstream: DownstreamCredential[] } {
  const writs = writsOf.map(
    (w): WritCredential => ({
      kind: "writ",
      id: w.id,
      playbook: w.playbook,
      environment: w.environment,
      issuedAt: w.issuedAt,
      expiresAt: w.expiresAt,
      usesLeft: w.maxUses === undefined ? undefined : w.maxUses - w.uses,
      lastUsedAt: state.writLastUse.get(w.id),
      source: { path: `writs/${w.id}` },
    }),
  );
  const downstream = downstreamOf.map(
    (d): DownstreamCredential => ({
      kind: "downstream",
      id: d.id,
      system: d.system,
      credentialKind: d.kind,
      environment: d.environment,
      writ: d.writ,
      expiresAt: d.expiresAt,
      writStatus:
        d.writStatus === "active" && d.writExpiresAt !== undefined && d.writExpiresAt <= state.at
          ? "expired"
          : d.writStatus,
      outlivesWrit: d.outlivesWrit,
      lastUsedAt: state.writLastUse.get(d.writ),
      source: { path: `downstream_records/${d.id}` },
    }),
  );
  return { writs, downstream };
}

function writEnded(d: DownstreamCredential): string | undefined {
  if (d.outlivesWrit) return undefined;
  if (d.writStatus === "missing") return "its writ is not in the store";
  if (d.writStatus === "revoked") return "its writ was revoked";
  if (d.writStatus === "expired") return "its writ expired";
  return undefined;
}

function outlivesFlags(
  at: Date,
  writs: readonly WritCredential[],
  downstream: readonly DownstreamCredential[],
  idleSeconds: number,
): InventoryFlag[] {
  const flags: InventoryFlag[] = [];
  const now = at.getTime();
  const idle = (since: Date) => (now - since.getTime()) / 1000;
  for (const w of writs) {
    const since = w.lastUsedAt ?? w.issuedAt;
    if (idle(since) >= idleSeconds) {
      flags.push({
        code: "credential-outlives-use",
        credential: w.id,
        message: `writ ${w.id} (${w.playbook}) ${w.lastUsedAt ? "last used" : "issued, never used,"} ${formatDuration(Math.round(idle(since)))} ago, alive until ${w.expiresAt.toISOString()}`,
      });
    }
  }
  for (const d of downstream) {
    const ended = writEnded(d);
    if (ended !== undefined) {
      flags.push({
        code: "credential-outlives-use",
        credential: d.id,
        message: `${d.system} ${d.credentialKind} ${d.id} is still alive until ${d.expiresAt.toISOString()}, but ${ended}`,
      });
      continue;
    }
    const since = d.lastUsedAt;
    if (since !== undefined && idle(since) >= idleSeconds) {
      flags.push({
        code: "credential-outlives-use",
        credential: d.id,
        message: `${d.system} ${d.credentialKind} ${d.id}: its writ ${d.writ} was last used ${formatDuration(Math.round(idle(since)))} ago, alive until ${d.expiresAt.toISOString()}`,
      });
    }
  }
  return flags;
}

function declaredEntry(
  config: WritConfig,
  agent: Agent,
  locate: Locate | undefined,
): Omit<AgentEntry, "credentials" | "lastActivity" | "activityOlderThan" | "openFindings" | "flags"> {
  const rc = config.runnerClasses.get(agent.runnerClass);
  return {
    id: agent.id,
    declared: true,
    owner: agent.owner,
    purpose: agent.purpose,
    runnerClass: agent.runnerClass,
    environments: agent.environments,
    ceiling: rc && {
      runnerClass: rc.id,
      maxTtl: formatDuration(rc.ceiling.maxTtlSeconds),
      maxTtlSeconds: rc.ceiling.maxTtlSeconds,
      allow: rc.ceiling.allow.map((r) => r.rule.text),
      deny: rc.ceiling.deny.map((r) => r.rule.text),
      source: configRef(config, locate, ["runnerClasses", rc.id, "ceiling"]),
    },
    baseline: agent.baseline.map((g) => ({
      ...g.rule.text,
      ...(g.environments ? { environments: g.environments } : {}),
      ...(g.standingWrite ? { standingWrite: g.standingWrite } : {}),
      source: configRef(config, locate, g.path),
    })),
    deny: agent.deny.map((d) => d.rule.text),
    playbooks: agent.playbooks,
    tools: agent.tools.map((t) => `${t.text.action.replace(/^mcp:/, "")}`),
    source: configRef(config, locate, ["agents", agent.id]),
  };
}

/** The inventory at `opts.now` (normally `state.at`). */
export function buildInventory(
  config: WritConfig,
  state: OperationalState,
  opts: InventoryOptions,
): Inventory {
  const dormantDays = positive("dormantDays", opts.dormantDays, DEFAULT_DORMANT_DAYS);
  const idleSeconds = positive("idleSeconds", opts.idleSeconds, DEFAULT_IDLE_SECONDS);
  const now = opts.now;
  const unresolved = state.findings.filter((f) => UNRESOLVED_STATUSES.includes(f.status));
  const ids = new Set<string>([...config.agents.keys()]);
  for (const a of state.storeAgents) ids.add(a);
  for (const f of unresolved) if (f.agent !== undefined) ids.add(f.agent);
  const writsBy = groupBy(state.liveWrits, (w) => w.agent);
  const downstreamBy = groupBy(state.liveDownstream, (d) => d.agent);
  const findingsBy = groupBy(unresolved, (f) => f.agent);
  const at = { ...state, at: now };
  const agents: AgentEntry[] = [];
  for (const id of [...ids].sort()) {
    const agent = config.agents.get(id);
    const { writs, downstream } = liveCredentials(at, writsBy.get(id) ?? [], downstreamBy.get(id) ?? []);
    const lastActivity = state.lastActivity.get(id);
    const scan = state.activityScan;
    const olderThan = lastActivity || scan.complete ? undefined : (scan.since ?? now);
    const flags: InventoryFlag[] = [];
    if (!agent) {
      flags.push({
        code: "undeclared",
        message: `agent \`${id}\` appears in the store or the audit log but not in ${config.file}`,
      });
    } else if (!lastActivity && olderThan === undefined) {
      flags.push({ code: "dormant", message: "no activity in the audit log" });
    } else if (!lastActivity) {
      // only the newest records were read: dormant when they reach back past the dormancy limit
      if (olderThan !== undefined && now.getTime() - olderThan.getTime() >= dormantDays * DAY)
        flags.push({
          code: "dormant",
          message: `no activity since ${olderThan.toISOString()} (the newest ${scan.records} audit records were read)`,
        });
    } else if (now.getTime() - lastActivity.at.getTime() >= dormantDays * DAY) {
      const days = Math.floor((now.getTime() - lastActivity.at.getTime()) / DAY);
      flags.push({
        code: "dormant",
        message: `no activity for ${days} days (last: ${lastActivity.type} at ${lastActivity.at.toISOString()})`,
      });
    }
    flags.push(...outlivesFlags(now, writs, downstream, idleSeconds));
    const base = agent
      ? declaredEntry(config, agent, opts.locate)
      : {
          id,
          declared: false,
          owner: undefined,
          purpose: undefined,
          runnerClass: undefined,
          environments: [],
          ceiling: undefined,
          baseline: [],
          deny: [],
          playbooks: [],
          tools: [],
          source: undefined,
        };
    agents.push({
      ...base,
      credentials: [
        ...writs,
        ...downstream,
        ...(agent ? standingCredentials(config, agent, opts.locate) : []),
      ],
      lastActivity,
      activityOlderThan: olderThan,
      openFindings: findingsBy.get(id) ?? [],
      flags,
    });
  }
  return {
    at: now,
    dormantDays,
    idleSeconds,
    agents,
    unattributedFindings: unresolved.filter((f) => f.agent === undefined).length,
  };
}
