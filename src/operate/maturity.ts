/**
 * The maturity check: each agent scored against the practices writ is built on, each answer pass,
 * fail or unknown with its evidence (writ.yaml line or store record) and what to change. A pure
 * function of the config, the store's state and the audit log's verification; where writ.yaml
 * cannot express a practice the answer is `unknown` with the reason, never a guess.
 * docs/maturity.md defines every rule.
 */
import {
  type Agent,
  type ApprovalPolicy,
  compileRule,
  formatDuration,
  globIntersects,
  isWritError,
  parseGlob,
  type Rule,
  ruleToString,
  type WritConfig,
  widenTemplate,
  wildcardProblem,
} from "../core/index.js";
import { UNRESOLVED_STATUSES } from "./inventory.js";
import type { LiveDownstream, LiveWrit, OperationalState, StoredFindingSummary } from "./state.js";
import {
  type AgentTool,
  agentTools,
  configRef,
  groupBy,
  keyFingerprint,
  type Locate,
  reachableUpstreams,
  type SourceRef,
  standingCredentials,
} from "./surface.js";

export const PRACTICES = [
  "own-identity",
  "read-only-baseline",
  "resource-scoped-grants",
  "sandbox-egress",
  "human-gate-irreversible",
  "untrusted-separated",
  "tamper-resistant-log",
  "short-lived-credentials",
  "no-open-category-2",
] as const;
export type Practice = (typeof PRACTICES)[number];

export const PRACTICE_TITLE: Readonly<Record<Practice, string>> = {
  "own-identity": "own identity (nothing shared)",
  "read-only-baseline": "read-only baseline",
  "resource-scoped-grants": "resource-scoped grants",
  "sandbox-egress": "sandbox and egress declared",
  "human-gate-irreversible": "human gate on irreversible actions",
  "untrusted-separated": "untrusted reading separated from privileged acting",
  "tamper-resistant-log": "tamper-resistant log",
  "short-lived-credentials": "short-lived credentials only",
  "no-open-category-2": "no open category-2 findings",
};

export type AnswerStatus = "pass" | "fail" | "unknown";

export interface Evidence {
  readonly source: SourceRef;
  readonly note: string;
}

export interface Answer {
  readonly practice: Practice;
  readonly title: string;
  readonly status: AnswerStatus;
  /** One line: why this answer. */
  readonly summary: string;
  readonly evidence: readonly Evidence[];
  /** What to change (fail), or what would let writ answer (unknown). */
  readonly fix?: string | undefined;
}

export interface AgentMaturity {
  readonly agent: string;
  readonly owner: string;
  /** Practices passed, of all of them, as a whole percentage. */
  readonly score: number;
  readonly passed: number;
  readonly failed: number;
  readonly unknown: number;
  readonly answers: readonly Answer[];
}

export interface MaturityReport {
  readonly at: Date;
  readonly file: string;
  readonly agents: readonly AgentMaturity[];
}

/** What verifying the audit log found (`openAuditLog(...).verify`), or why it was not checked. */
export type AuditEvidence =
  | {
      readonly kind: "verified";
      readonly ok: boolean;
      readonly records: number;
      readonly checkpoints: number;
      readonly lastCheckpointSeq: number | undefined;
      readonly unsigned: number;
      readonly firstBad?:
        | { readonly seq: number; readonly problem: string; readonly message: string }
        | undefined;
      /** Where the trusted keys came from, for the evidence. */
      readonly keys: readonly string[];
    }
  | { readonly kind: "not-checked"; readonly reason: string };

export interface MaturityOptions {
  readonly now: Date;
  readonly locate?: Locate | undefined;
  /** Credentials living longer than this are not short-lived (default 3600 s). */
  readonly maxTtlSeconds?: number | undefined;
}

export const DEFAULT_MAX_TTL_SECONDS = 3600;
/** The server signs a checkpoint every 100 records (and at stop): more unsigned means signing fails. */
export const MAX_UNSIGNED = 100;

/** Tool names that change or destroy something no approval can take back. */
const DESTRUCTIVE_TOOL =
  /^(delete|remove|rm|drop|destroy|purge|terminate|kill|deploy|send|pay|transfer|publish|merge|revoke|truncate|wipe|shutdown|force_push)(_|-|$)/i;
/** Tool names that act (write, run, change) rather than read. */
const ACTING_TOOL =
  /^(write|create|update|delete|remove|rm|patch|put|post|send|deploy|exec|execute|run|apply|push|merge|move|rename|set|edit|insert|drop|destroy|terminate|kill|pay|transfer|publish|revoke|restart|scale|rollback|approve|upload|commit)(_|-|$)/i;
/** Actions of writ's vocabulary that delete or terminate. */
const DESTRUCTIVE_ACTION =
  /(^|[:|])(delete|deletecollection|Delete[A-Za-z]*|Terminate[A-Za-z]*|Destroy[A-Za-z]*)($|\|)/;

type Builder = {
  ev: Evidence[];
  add(source: SourceRef, note: string): void;
};

function builder(): Builder {
  const ev: Evidence[] = [];
  return { ev, add: (source, note) => ev.push({ source, note }) };
}

function answer(
  practice: Practice,
  status: AnswerStatus,
  summary: string,
  evidence: readonly Evidence[],
  fix?: string,
): Answer {
  return {
    practice,
    title: PRACTICE_TITLE[practice],
    status,
    summary,
    evidence,
    ...(fix === undefined ? {} : { fix }),
  };
}

interface Ctx {
  readonly config: WritConfig;
  readonly state: OperationalState;
  readonly locate: Locate | undefined;
  readonly maxTtl: number;
  readonly ref: (path: readonly (string | number)[]) => SourceRef;
  readonly writsOf: (agent: string) => readonly LiveWrit[];
  readonly downstreamOf: (agent: string) => readonly LiveDownstream[];
  /** Unresolved category-2 findings. */
  readonly cat2: readonly StoredFindingSummary[];
  /** Agents by the upstreams their `tools` reach. */
  readonly reaching: ReadonlyMap<string, readonly string[]>;
}

function ownIdentity(c: Ctx, agent: Agent): Answer {
  const b = builder();
  const fails = builder();
  if (agent.keys.length === 0) {
    return answer(
      "own-identity",
      "unknown",
      "no client keys declared: writ cannot tell what the agent authenticates as",
      [{ source: c.ref(["agents", agent.id]), note: "no `keys`" }],
      "give the agent its own key pair (`keys: { file: … }`) so it signs in with private_key_jwt",
    );
  }
  const mine = agent.keys.map(keyFingerprint);
  const sa = (s: { namespace: string; name: string }) => parseGlob(`${s.namespace}/${s.name}`);
  for (const other of c.config.agents.values()) {
    if (other.id === agent.id) continue;
    other.keys.forEach((k, i) => {
      const j = mine.indexOf(keyFingerprint(k));
      if (j >= 0)
        fails.add(
          c.ref(["agents", agent.id, "keys", j]),
          `the same public key as agent \`${other.id}\` (${c.config.file} agents.${other.id}.keys[${i}])`,
        );
    });
    agent.runs?.serviceAccounts.forEach((s, i) => {
      const hit = other.runs?.serviceAccounts.find((o) => globIntersects(sa(s), sa(o)));
      if (hit)
        fails.add(
          c.ref(["agents", agent.id, "serviceAccounts", i]),
          `service account \`${s.namespace}/${s.name}\` is also agent \`${other.id}\`'s (\`${hit.namespace}/${hit.name}\`)`,
        );
    });
    agent.runs?.cloudIdentities.forEach((id, i) => {
      if (other.runs?.cloudIdentities.includes(id))
        fails.add(
          c.ref(["agents", agent.id, "cloudIdentities", i]),
          `cloud identity \`${id}\` is also agent \`${other.id}\`'s`,
        );
    });
  }
  for (const up of reachableUpstreams(c.config, agent)) {
    const secret = standingCredentials(c.config, agent, c.locate).find(
      (s) => s.type === "upstream-secret" && s.name === up.id,
    );
    if (!secret) continue;
    const sharers = (c.reaching.get(up.id) ?? []).filter((o) => o !== agent.id).map((id) => ({ id }));
    if (sharers.length > 0)
      fails.add(
        secret.source,
        `upstream \`${up.id}\` acts for this agent and ${sharers.map((s) => `\`${s.id}\``).join(", ")} with one static credential`,
      );
  }
  if (fails.ev.length > 0) {
    return answer(
      "own-identity",
      "fail",
      `${fails.ev.length} identit${fails.ev.length === 1 ? "y" : "ies"} shared with other agents`,
      fails.ev,
      "give each agent its own key pair, service account and cloud role; put `credentials: { downstream: … }` on shared upstreams so each call carries a per-writ credential",
    );
  }
  for (let i = 0; i < agent.keys.length; i++)
    b.add(c.ref(["agents", agent.id, "keys", i]), "a public key no other agent declares");
  return answer("own-identity", "pass", "its keys and runtime identities are its own", b.ev);
}

function readOnlyBaseline(c: Ctx, agent: Agent): Answer {
  const writes = agent.baseline.filter((g) => g.standingWrite !== undefined);
  if (writes.length > 0) {
    return answer(
      "read-only-baseline",
      "fail",
      `${writes.length} standing write grant${writes.length === 1 ? "" : "s"} in the baseline`,
      writes.map((g) => ({
        source: c.ref(g.path),
        note: `\`${ruleToString(g.rule.text)}\` writes (standingWrite: ${g.standingWrite})`,
      })),
      "move the write into a playbook so it is held only for one approved run, with a TTL",
    );
  }
  return answer(
    "read-only-baseline",
    "pass",
    agent.baseline.length === 0
      ? "no baseline grants"
      : `${agent.baseline.length} baseline grants, all read-only`,
    [{ source: c.ref(["agents", agent.id, "baseline"]), note: "no grant carries `standingWrite`" }],
  );
}

function resourceScoped(c: Ctx, agent: Agent): Answer {
  const fails = builder();
  const check = (rule: Rule, path: readonly (string | number)[], reviewed?: string) => {
    const p = wildcardProblem(rule);
    if (p) fails.add(c.ref(path), `${p}${reviewed ? ` (reviewed exception: ${reviewed})` : ""}`);
  };
  for (const g of agent.baseline) check(g.rule, g.path);
  for (const id of agent.playbooks) {
    const pb = c.config.playbooks.get(id);
    if (!pb) continue;
    const props = pb.parameters.properties;
    const schemas = (props && typeof props === "object" ? props : {}) as Record<
      string,
      Record<string, unknown>
    >;
    for (const g of pb.grants) {
      try {
        const actions = widenTemplate(g.action, schemas);
        const resources = widenTemplate(g.resource, schemas);
        const wide = actions.flatMap((action) =>
          resources.map((resource) => compileRule({ action, resource })),
        );
        const first = wide.find((r) => wildcardProblem(r) !== undefined);
        if (first) check(first, g.path, g.reviewedException);
      } catch (err) {
        if (!isWritError(err)) throw err;
        fails.add(c.ref(g.path), `cannot be widened: ${err.message}`);
      }
    }
  }
  const rc = c.config.runnerClasses.get(agent.runnerClass);
  for (const r of rc?.ceiling.allow ?? []) check(r.rule, r.path);
  if (fails.ev.length > 0) {
    return answer(
      "resource-scoped-grants",
      "fail",
      `${fails.ev.length} grant${fails.ev.length === 1 ? "" : "s"} reach beyond one scope`,
      fails.ev,
      "name the namespace, repository, account or path in each grant (a parameter constrained by `enum` or an anchored `pattern` is scoped)",
    );
  }
  return answer(
    "resource-scoped-grants",
    "pass",
    "baseline, playbook grants and ceiling name their resources",
    [{ source: c.ref(["runnerClasses", agent.runnerClass, "ceiling", "allow"]), note: "no wildcard scope" }],
  );
}

type BoundKind = "roots" | "hosts" | "domains";

function boundKinds(t: AgentTool): Set<BoundKind> {
  const out = new Set<BoundKind>();
  for (const r of t.declared?.resources ?? []) {
    if (r.kind === "resource-rule") {
      if (r.as === "path") out.add("roots");
      else if (r.as === "url-host") out.add("hosts");
      else if (r.as === "email-domain") out.add("domains");
    } else {
      for (const part of r.parts) {
        if (typeof part === "string") continue;
        for (const f of part.filters) {
          if (f.f === "path") out.add("roots");
          else if (f.f === "host") out.add("hosts");
          else if (f.f === "domain") out.add("domains");
        }
      }
    }
  }
  return out;
}

function sandboxEgress(c: Ctx, agent: Agent, tools: readonly AgentTool[]): Answer {
  const outside =
    "writ.yaml cannot declare where the agent itself runs or its network egress outside the gateway";
  if (tools.length === 0) {
    return answer(
      "sandbox-egress",
      "unknown",
      `the agent calls no gateway tools; ${outside}`,
      [{ source: c.ref(["agents", agent.id, "tools"]), note: "no tool the gateway knows" }],
      "route its tools through `writ gateway` and declare `gateway.bounds` (roots, hosts, domains); confine the runtime (container, NetworkPolicy) outside writ",
    );
  }
  const bounds = c.config.gateway?.bounds;
  const have = (k: BoundKind) => bounds?.[k] !== undefined;
  const fails = builder();
  const ok = builder();
  for (const t of tools) {
    for (const k of boundKinds(t)) {
      const where = c.ref(t.declared?.path ?? ["gateway", "upstreams", t.server]);
      if (have(k)) ok.add(where, `\`${t.server}:${t.tool}\` is held to \`gateway.bounds.${k}\``);
      else
        fails.add(
          where,
          `\`${t.server}:${t.tool}\` derives ${k === "roots" ? "paths" : k} but \`gateway.bounds.${k}\` is not declared`,
        );
    }
  }
  if (fails.ev.length > 0) {
    return answer(
      "sandbox-egress",
      "fail",
      "tools reach paths, hosts or domains no bound limits",
      fails.ev,
      "declare `gateway.bounds` with `roots` (paths), `hosts` (egress) and `domains` (mail) for what the tools reach",
    );
  }
  if (ok.ev.length === 0) {
    return answer(
      "sandbox-egress",
      "unknown",
      `its tools derive no path, host or mail-domain resource for bounds to hold; ${outside}`,
      tools.map((t) => ({
        source: c.ref(t.declared?.path ?? ["gateway", "upstreams", t.server]),
        note: `\`${t.server}:${t.tool}\``,
      })),
      "declare each tool's `resource` (as: path, url-host, email-domain) and `gateway.bounds`",
    );
  }
  return answer(
    "sandbox-egress",
    "pass",
    `every path, host and domain its tools reach is bounded (${outside})`,
    ok.ev,
  );
}

function gated(policy: ApprovalPolicy | undefined): boolean {
  return policy !== undefined && policy.kind !== "none";
}

function humanGate(c: Ctx, agent: Agent, tools: readonly AgentTool[]): Answer {
  const fails = builder();
  const ok = builder();
  for (const t of tools) {
    const where = c.ref(t.declared?.path ?? ["gateway", "upstreams", t.server]);
    if (t.declared?.irreversible) {
      ok.add(where, `\`${t.server}:${t.tool}\` is irreversible: every call is held for approval`);
      continue;
    }
    const hinted = t.annotations?.destructiveHint === true;
    if (hinted || DESTRUCTIVE_TOOL.test(t.tool)) {
      fails.add(
        where,
        `\`${t.server}:${t.tool}\` ${hinted ? "is annotated destructiveHint: true" : "is named as a destructive tool"} but not marked \`irreversible\``,
      );
    }
  }
  for (const id of agent.playbooks) {
    const pb = c.config.playbooks.get(id);
    if (!pb) continue;
    for (const g of pb.grants) {
      if (!DESTRUCTIVE_ACTION.test(g.action)) continue;
      for (const env of pb.environments.filter((e) => agent.environments.includes(e))) {
        if (gated(pb.approval.get(env))) ok.add(c.ref(g.path), `\`${g.action}\` needs approval in ${env}`);
        else
          fails.add(c.ref(g.path), `playbook \`${pb.id}\` grants \`${g.action}\` in ${env} without approval`);
      }
    }
  }
  if (fails.ev.length > 0) {
    return answer(
      "human-gate-irreversible",
      "fail",
      `${fails.ev.length} irreversible action${fails.ev.length === 1 ? "" : "s"} without a human gate`,
      fails.ev,
      "mark destructive tools `irreversible: true` with an `approval`, and give playbooks that delete an `approval` policy in every environment",
    );
  }
  return answer(
    "human-gate-irreversible",
    "pass",
    ok.ev.length === 0
      ? "no destructive tool or playbook grant found"
      : "every irreversible tool and destructive grant needs approval",
    ok.ev.length > 0 ? ok.ev : [{ source: c.ref(["agents", agent.id]), note: "tools and playbooks checked" }],
  );
}

function acts(t: AgentTool): boolean {
  const d = t.declared;
  return (
    d?.irreversible === true ||
    d?.privileged === true ||
    t.annotations?.destructiveHint === true ||
    t.annotations?.readOnlyHint === false ||
    ACTING_TOOL.test(t.tool)
  );
}

function untrustedSeparated(c: Ctx, agent: Agent, tools: readonly AgentTool[]): Answer {
  if (tools.length === 0) {
    return answer(
      "untrusted-separated",
      "unknown",
      "the agent calls no gateway tools: what it reads and does is outside writ's view",
      [{ source: c.ref(["agents", agent.id, "tools"]), note: "no tool the gateway knows" }],
      "route its tools through `writ gateway`, mark readers of the outside world `untrusted` and tools that change systems `privileged`",
    );
  }
  const where = (t: AgentTool) => c.ref(t.declared?.path ?? ["gateway", "upstreams", t.server]);
  const fails = builder();
  for (const t of tools) {
    if (t.annotations?.openWorldHint === true && !t.declared?.untrusted)
      fails.add(
        where(t),
        `\`${t.server}:${t.tool}\` is annotated openWorldHint: true but not marked \`untrusted\``,
      );
  }
  const readers = tools.filter((t) => t.declared?.untrusted || t.annotations?.openWorldHint === true);
  const actors = tools.filter((t) => acts(t) && !t.declared?.untrusted);
  if (readers.length > 0) {
    for (const t of actors) {
      if (!t.declared?.privileged)
        fails.add(
          where(t),
          `\`${t.server}:${t.tool}\` acts but is not \`privileged\`: a tainted session can still call it`,
        );
    }
  }
  if (fails.ev.length > 0) {
    return answer(
      "untrusted-separated",
      "fail",
      "a session that read untrusted content can still act",
      fails.ev,
      "mark readers of the outside world `untrusted: true` and tools that change systems `privileged: true` (whenTainted: refuse or hold)",
    );
  }
  const ev: Evidence[] =
    readers.length === 0
      ? [
          {
            source: c.ref(["agents", agent.id, "tools"]),
            note: "no tool it calls is untrusted or open-world",
          },
        ]
      : [
          ...readers.map((t) => ({ source: where(t), note: `\`${t.server}:${t.tool}\` taints the session` })),
          ...actors.map((t) => ({
            source: where(t),
            note: `\`${t.server}:${t.tool}\` is privileged (${t.declared?.whenTainted ?? "refuse"} when tainted)`,
          })),
        ];
  return answer(
    "untrusted-separated",
    "pass",
    readers.length === 0
      ? "it reads nothing marked untrusted"
      : "tools that act are refused or held in a tainted session",
    ev,
  );
}

function tamperResistant(audit: AuditEvidence): Answer {
  const src: SourceRef = { path: "audit_records" };
  if (audit.kind === "not-checked") {
    return answer(
      "tamper-resistant-log",
      "unknown",
      `the audit log was not verified: ${audit.reason}`,
      [{ source: src, note: audit.reason }],
      "run `writ maturity` with the data folder holding the audit signing key's public half, or `--audit-key FILE`",
    );
  }
  const keys = audit.keys.join(", ");
  if (!audit.ok) {
    const bad = audit.firstBad;
    return answer(
      "tamper-resistant-log",
      "fail",
      `the chain does not verify${bad ? `: ${bad.problem} at record ${bad.seq}` : ""}`,
      [{ source: { path: `audit_records/${bad?.seq ?? "?"}` }, note: bad?.message ?? "damaged" }],
      "investigate with `writ audit verify`; restore the log from an export",
    );
  }
  if (audit.records === 0) {
    return answer("tamper-resistant-log", "unknown", "the audit log is empty", [
      { source: src, note: "0 records" },
    ]);
  }
  if (audit.checkpoints === 0) {
    return answer(
      "tamper-resistant-log",
      "fail",
      "no signed checkpoint: the chain alone can be recomputed by whoever can write the database",
      [{ source: src, note: `${audit.records} records, 0 checkpoints verified with ${keys}` }],
      "run `writ serve` with its audit signing key (it signs every 100 records and at stop); check `--audit-key`",
    );
  }
  if (audit.unsigned > MAX_UNSIGNED) {
    return answer(
      "tamper-resistant-log",
      "fail",
      `${audit.unsigned} records after the last signed checkpoint (more than ${MAX_UNSIGNED}: signing is failing)`,
      [
        {
          source: { path: `audit_checkpoints/${audit.lastCheckpointSeq}` },
          note: `last checkpoint at seq ${audit.lastCheckpointSeq}`,
        },
      ],
      "look for `audit.checkpoint_failed` in the server's log; the signing key must stay in the data folder",
    );
  }
  return answer(
    "tamper-resistant-log",
    "pass",
    `the chain verifies: ${audit.records} records, ${audit.checkpoints} signed checkpoints, ${audit.unsigned} unsigned`,
    [{ source: { path: `audit_checkpoints/${audit.lastCheckpointSeq}` }, note: `verified with ${keys}` }],
  );
}

function shortLived(c: Ctx, agent: Agent): Answer {
  const fails = builder();
  const standing = standingCredentials(c.config, agent, c.locate);
  for (const s of standing.filter((s) => s.secret)) fails.add(s.source, s.detail);
  const rc = c.config.runnerClasses.get(agent.runnerClass);
  const ceilingTtl = rc?.ceiling.maxTtlSeconds ?? 0;
  for (const id of agent.playbooks) {
    const pb = c.config.playbooks.get(id);
    if (!pb) continue;
    const ttl = Math.min(pb.ttlSeconds, ceilingTtl || pb.ttlSeconds);
    if (ttl > c.maxTtl)
      fails.add(
        c.ref(["playbooks", pb.id, "ttl"]),
        `playbook \`${pb.id}\` writs live ${formatDuration(ttl)}, longer than ${formatDuration(c.maxTtl)}`,
      );
  }
  for (const w of c.writsOf(agent.id)) {
    const life = Math.round((w.expiresAt.getTime() - w.issuedAt.getTime()) / 1000);
    if (life > c.maxTtl) fails.add({ path: `writs/${w.id}` }, `live writ issued for ${formatDuration(life)}`);
  }
  for (const d of c.downstreamOf(agent.id)) {
    const life = Math.round((d.expiresAt.getTime() - d.createdAt.getTime()) / 1000);
    if (life > c.maxTtl)
      fails.add(
        { path: `downstream_records/${d.id}` },
        `live ${d.system} ${d.kind} lives ${formatDuration(life)}`,
      );
  }
  if (fails.ev.length > 0) {
    return answer(
      "short-lived-credentials",
      "fail",
      `${fails.ev.length} credential${fails.ev.length === 1 ? "" : "s"} that live long or never expire`,
      fails.ev,
      `give upstreams \`credentials: { downstream: … }\` instead of static headers, and keep playbook ttls and the ceiling's maxTtl at ${formatDuration(c.maxTtl)} or less`,
    );
  }
  const runtime = standing.filter((s) => s.type === "runtime-identity");
  if (runtime.length > 0) {
    return answer(
      "short-lived-credentials",
      "unknown",
      "writ's own credentials are short-lived, but the agent also runs as identities whose credentials writ does not issue",
      runtime.map((s) => ({ source: s.source, note: `${s.detail}: \`${s.name}\`` })),
      "have the workload get cloud and cluster access through `writ creds` only, and scan those identities (`writ scan`) for standing grants",
    );
  }
  return answer(
    "short-lived-credentials",
    "pass",
    `no standing secret; writs live at most ${formatDuration(ceilingTtl)} (the ceiling's maxTtl)`,
    [
      {
        source: c.ref(["runnerClasses", agent.runnerClass, "ceiling", "maxTtl"]),
        note: `ceiling maxTtl ${formatDuration(ceilingTtl)}`,
      },
    ],
  );
}

function noCategory2(c: Ctx, agent: Agent): Answer {
  const source: SourceRef = { path: "analyzer_findings" };
  if (!c.state.scanRecorded) {
    return answer(
      "no-open-category-2",
      "unknown",
      "no scan recorded in the store",
      [{ source, note: "the findings queue is empty" }],
      "run `writ scan … --store` with the agent's activity (traces, audit logs)",
    );
  }
  const cat2 = c.cat2;
  const mine = cat2.filter((f) => f.agent === agent.id);
  if (mine.length > 0) {
    return answer(
      "no-open-category-2",
      "fail",
      `${mine.length} open category-2 finding${mine.length === 1 ? "" : "s"}`,
      mine.map((f) => ({ source: { path: `analyzer_findings/${f.id}` }, note: `${f.status}: ${f.title}` })),
      "add the generated gateway guardrail for each (`writ findings show ID`), then mark it fixed",
    );
  }
  const untied = cat2.filter((f) => f.agent === undefined);
  if (untied.length > 0) {
    return answer(
      "no-open-category-2",
      "unknown",
      `none tied to this agent, but ${untied.length} open category-2 finding${untied.length === 1 ? " is" : "s are"} tied to no agent`,
      untied.slice(0, 20).map((f) => ({ source: { path: `analyzer_findings/${f.id}` }, note: f.title })),
      "declare the agent's `workloads`, `serviceAccounts` or `cloudIdentities` so the scan ties its findings to it",
    );
  }
  return answer("no-open-category-2", "pass", "no open category-2 finding", [
    { source, note: "the latest scans left none open for this agent" },
  ]);
}

/** Scores every agent of writ.yaml. */
export function assessMaturity(
  config: WritConfig,
  state: OperationalState,
  audit: AuditEvidence,
  opts: MaturityOptions,
): MaturityReport {
  const maxTtl = opts.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS;
  if (!Number.isFinite(maxTtl) || maxTtl <= 0)
    throw new TypeError(`maxTtlSeconds: expected a positive number`);
  const by = <T extends { readonly agent: string }>(items: readonly T[]) => {
    const m = groupBy(items, (t) => t.agent);
    return (agent: string): readonly T[] => m.get(agent) ?? [];
  };
  const reaching = new Map<string, string[]>();
  for (const a of config.agents.values())
    for (const up of reachableUpstreams(config, a))
      reaching.set(up.id, [...(reaching.get(up.id) ?? []), a.id]);
  const c: Ctx = {
    config,
    state,
    locate: opts.locate,
    maxTtl,
    ref: (path) => configRef(config, opts.locate, path),
    writsOf: by(state.liveWrits),
    downstreamOf: by(state.liveDownstream),
    cat2: state.findings.filter(
      (f) => f.category === "unjustified-use" && UNRESOLVED_STATUSES.includes(f.status),
    ),
    reaching,
  };
  const log = tamperResistant(audit);
  const agents = [...config.agents.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((agent): AgentMaturity => {
      const tools = agentTools(config, agent, state.toolPins);
      const answers = [
        ownIdentity(c, agent),
        readOnlyBaseline(c, agent),
        resourceScoped(c, agent),
        sandboxEgress(c, agent, tools),
        humanGate(c, agent, tools),
        untrustedSeparated(c, agent, tools),
        log,
        shortLived(c, agent),
        noCategory2(c, agent),
      ];
      const passed = answers.filter((a) => a.status === "pass").length;
      const failed = answers.filter((a) => a.status === "fail").length;
      return {
        agent: agent.id,
        owner: agent.owner,
        score: Math.round((passed / PRACTICES.length) * 100),
        passed,
        failed,
        unknown: answers.length - passed - failed,
        answers,
      };
    });
  return { at: opts.now, file: config.file, agents };
}
