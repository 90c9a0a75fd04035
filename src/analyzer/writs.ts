/**
 * Writ attribution: the loop from writ's downstream credentials back into `writ scan`. A request
 * made with a writ's AWS role session, or authorised by a writ's Kubernetes binding, is the writ's
 * use — not the standing use of the role or service account it ran as — and is judged against the
 * writ's own playbook in writ.yaml (category 2), with evidence naming the writ, its playbook and
 * its sponsor.
 *
 * What ties an event to a writ is what the downstream system itself recorded:
 *   AWS        — the `sts:AssumeRole` record whose session tags carry `writ:id`, `writ:agent`,
 *                `writ:playbook` (`writ:sponsor`) made the session; the session's calls are
 *                matched to it by access key id, else by session ARN, and must carry the same
 *                source identity (writ sets the agent id there) and the session name writ gives
 *                (the writ id);
 *   Kubernetes — the RBAC authorizer's reason (`authorization.k8s.io/reason`) names the
 *                RoleBinding or ClusterRoleBinding `writ-writ-…` that allowed the request; the
 *                binding's create (audit level Request or RequestResponse) or a manifest of it
 *                carries the annotations `writ.dev/writ-id`, `writ.dev/agent-id`,
 *                `writ.dev/playbook` (`writ.dev/expires-at`).
 * Events are held until every file is read (records arrive in any order); those whose credential
 * names no writ, or whose records disagree, are the identity's own use after all, with a warning.
 * Each writ use is then judged against its playbook, its writ's lifetime and, with traces, the
 * tool call that made it.
 */
import { compileRule, type Rule, ruleContains } from "../core/index.js";
import { DeclaredMatcher } from "./declared.js";
import { problem } from "./input.js";
import type {
  CredentialRef,
  DeclaredWork,
  EvidenceStep,
  Finding,
  InputProblem,
  ObservedEvent,
  ProviderObject,
  Severity,
  SourceRef,
  ToolCall,
  WritIssue,
  WritRef,
} from "./model.js";
import { writBindingIssue } from "./providers/k8s/index.js";

const WRIT_ID = /^writ_[A-Za-z0-9_-]{1,80}$/;
/** STS's RoleSessionName: writ uses the writ id itself when it is one (src/downstream/aws/names.ts). */
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
/** Agent and playbook ids as writ.yaml has them (src/config/load.ts). */
const CONFIG_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A sponsor: 1–254 characters, none of them space or control (as the broker takes `login_hint`). */
const SPONSOR = /^[^\s\p{Cc}]{1,254}$/u;

/**
 * Is what a record claims a writ's identity in writ's own shapes? The values come from logs and
 * manifests anyone could write: a record naming a writ in another shape (or with control
 * characters that would reach a terminal) names no writ.
 */
export function validWritIssue(i: {
  readonly writ: string;
  readonly agent: string;
  readonly playbook: string;
  readonly sponsor?: string | undefined;
}): boolean {
  return (
    WRIT_ID.test(i.writ) &&
    CONFIG_ID.test(i.agent) &&
    CONFIG_ID.test(i.playbook) &&
    (i.sponsor === undefined || SPONSOR.test(i.sponsor))
  );
}

/** One use made with a writ's credential. */
export interface WritUse {
  readonly event: ObservedEvent;
  readonly writ: WritRef;
  /** How the writ was read (`session tags of sts:AssumeRole …`). */
  readonly how: string;
  /** Where the issuing record is. */
  readonly issuedAt?: SourceRef | undefined;
  /** The writ's expiry (ms), when its record says. */
  readonly expiresAt?: number | undefined;
}

export interface Attributed {
  readonly uses: readonly WritUse[];
  /** Held events that turned out not to be a writ's: the identity's own use. */
  readonly standing: readonly ObservedEvent[];
  readonly problems: readonly InputProblem[];
}

interface Known {
  readonly issue: WritIssue;
  readonly source: SourceRef;
}

const SEVERITY_RANK: Readonly<Record<Severity, number>> = { critical: 4, high: 3, medium: 2, low: 1 };

export class WritAttribution {
  private readonly byKey = new Map<string, Known[]>();
  private readonly held: ObservedEvent[] = [];

  /** An event whose credential may be a writ's: kept whole until `resolve`. */
  hold(e: ObservedEvent): void {
    this.held.push(e);
  }

  /** A record of a writ's credential being made (ignored unless in writ's shapes: `validWritIssue`). */
  issue(issue: WritIssue, source: SourceRef): void {
    if (!validWritIssue(issue)) return;
    const keys = [keyOf(issue.credential.kind, issue.credential.key)];
    if (issue.credential.accessKeyId) keys.push(`akid:${issue.credential.accessKeyId}`);
    for (const k of keys) {
      const list = this.byKey.get(k) ?? this.byKey.set(k, []).get(k)!;
      if (!list.some((x) => sameWrit(x.issue, issue))) list.push({ issue, source });
    }
  }

  /** Writ bindings in manifests (`kubectl get rolebindings -o yaml` while the writ lived). */
  fromObjects(objects: readonly ProviderObject[]): void {
    for (const o of objects) {
      if (o.provider !== "k8s" || (o.type !== "RoleBinding" && o.type !== "ClusterRoleBinding")) continue;
      const v = o.value as { metadata?: { name?: unknown; namespace?: unknown; annotations?: unknown } };
      const meta = v?.metadata;
      const ann = (meta?.annotations ?? {}) as Record<string, unknown>;
      const name = typeof meta?.name === "string" ? meta.name : undefined;
      const ns = typeof meta?.namespace === "string" ? meta.namespace : undefined;
      const issue = writBindingIssue(o.type, ns, name, ann, "manifest");
      if (issue) this.issue(issue, o.source);
    }
  }

  /** Every held event: a writ's use, or the identity's own. */
  resolve(): Attributed {
    const uses: WritUse[] = [];
    const standing: ObservedEvent[] = [];
    const problems: InputProblem[] = [];
    const warned = new Set<string>();
    const warn = (key: string, code: string, at: SourceRef, message: string) => {
      if (warned.has(key)) return;
      warned.add(key);
      problems.push(problem(code, at, message, "warning"));
    };
    for (const e of this.held) {
      const via = e.via!;
      const candidates =
        (via.accessKeyId ? this.byKey.get(`akid:${via.accessKeyId}`) : undefined) ??
        this.byKey.get(keyOf(via.kind, via.key)) ??
        [];
      const writs = new Set(candidates.map((c) => c.issue.writ));
      if (writs.size > 1) {
        warn(
          via.key,
          "WARN_WRIT_ATTRIBUTION_AMBIGUOUS",
          e.source,
          `${describe(via)} is claimed by several writs (${[...writs].sort().join(", ")}): its events are counted as the identity's own use`,
        );
        standing.push(e);
        continue;
      }
      const known = candidates[0];
      if (!known) {
        if (via.kind === "k8s-binding")
          warn(
            via.key,
            "WARN_WRIT_UNRESOLVED",
            e.source,
            `${describe(via)} authorised requests but no input names its writ (its create at audit level Request or RequestResponse, or a manifest of it): they are counted as the service account's own use`,
          );
        else
          warn(
            via.key,
            "WARN_WRIT_UNRESOLVED",
            e.source,
            `${describe(via)} looks like a writ's but its sts:AssumeRole record (with the writ's session tags) is not in the input: its calls are counted as the role's own use`,
          );
        standing.push(e);
        continue;
      }
      const k = known.issue;
      // writ sets SourceIdentity to the agent id: a session whose identity says otherwise is not the writ's.
      const identities = [
        ...new Set([via.sourceIdentity, k.credential.sourceIdentity].filter((x) => x !== undefined)),
      ];
      // …and names the session after the writ id (when the id is a valid session name, as the
      // broker's always are): tags claiming writ X on a session named for writ Y are not X's.
      const session = via.key.slice(via.key.lastIndexOf("/") + 1);
      if (via.kind === "aws-session" && SESSION_NAME.test(k.writ) && session !== k.writ) {
        warn(
          via.key,
          "WARN_WRIT_ATTRIBUTION_MISMATCH",
          e.source,
          `${describe(via)}: session tags name writ \`${k.writ}\`, but writ names its sessions after the writ id: not attributed to the writ`,
        );
        standing.push(e);
        continue;
      }
      if (via.kind === "aws-session" && (identities.length === 0 || identities.some((x) => x !== k.agent))) {
        warn(
          via.key,
          "WARN_WRIT_ATTRIBUTION_MISMATCH",
          e.source,
          `${describe(via)}: session tags name writ \`${k.writ}\` of agent \`${k.agent}\` but the source identity is \`${identities.join("`/`") || "(none)"}\`: not attributed to the writ`,
        );
        standing.push(e);
        continue;
      }
      uses.push({
        event: e,
        writ: {
          id: k.writ,
          agent: k.agent,
          playbook: k.playbook,
          ...(k.sponsor ? { sponsor: k.sponsor } : {}),
        },
        how: k.how,
        issuedAt: known.source,
        ...(k.expiresAt !== undefined ? { expiresAt: k.expiresAt } : {}),
      });
    }
    return { uses, standing, problems };
  }
}

function sameWrit(a: WritIssue, b: WritIssue): boolean {
  return a.writ === b.writ && a.agent === b.agent && a.playbook === b.playbook && a.sponsor === b.sponsor;
}

function keyOf(kind: CredentialRef["kind"], key: string): string {
  return `${kind}:${key}`;
}

function describe(via: CredentialRef): string {
  if (via.kind === "aws-session") return `role session \`${via.key}\``;
  return `\`${via.key.replace(/^k8s:/, "").replace(":", " ")}\``;
}

/** The node id of the findings about one playbook's writ use: stable across writs and scans. */
export function writWorkloadId(agent: string, playbook: string): string {
  return `writ:${agent}/${playbook}`;
}

/**
 * How long after its writ's expiry a credential may still be seen working: one reaper period
 * (30 s by default, `writ serve`) and a margin for the clocks of writ and the target system.
 */
export const EXPIRY_GRACE_MS = 60_000;

/** The tool call an event was joined to, and the untrusted read that tainted its prompt context. */
export interface Correlated {
  readonly call: ToolCall;
  readonly taint?: ToolCall | undefined;
}

interface WritVerdict {
  readonly use: WritUse;
  readonly reasons: readonly string[];
  /** Outside the playbook's declared work. */
  readonly scope: boolean;
  /** After the writ's expiry. */
  readonly late: boolean;
  readonly joined?: Correlated | undefined;
}

/**
 * Category 2 for writ use: each allowed use is judged against its writ's playbook alone (its
 * grants, parameters widened as `writ check` does); neither the agent's baseline nor its other
 * playbooks justify it, as the writ's credential was scoped to that playbook. A use inside the
 * playbook, through a declared tool, while the writ lived, is never category 2; an untrusted read
 * earlier in its conversation only qualifies a use outside (issue 12). One finding per playbook,
 * action and resource.
 */
export function judgeWritUses(
  uses: readonly WritUse[],
  declared: ReadonlyMap<string, DeclaredWork>,
  risk: (provider: string, action: string, resource: string) => Severity,
  findingId: (workload: string, action: string, resource: string) => string,
  correlate: (agent: string, e: ObservedEvent) => Correlated | undefined = () => undefined,
): { findings: Finding[]; outside: Set<ObservedEvent> } {
  const outside = new Set<ObservedEvent>();
  const matchers = new Map<string, DeclaredMatcher>();
  const toolMatchers = new Map<string, DeclaredMatcher>();
  const groups = new Map<string, WritVerdict[]>();
  for (const u of uses) {
    if (u.event.outcome !== "allowed") continue;
    const { agent, playbook } = u.writ;
    const work = declared.get(agent);
    const reasons: string[] = [];
    if (!work) reasons.push(`agent \`${agent}\` is not in writ.yaml`);
    else if (!work.playbooks.includes(playbook))
      reasons.push(`playbook \`${playbook}\` is not among the playbooks of agent \`${agent}\` in writ.yaml`);
    else {
      const mk = `${agent}\u0000${playbook}`;
      let m = matchers.get(mk);
      if (!m) {
        m = new DeclaredMatcher({
          ...work,
          grants: work.grants.filter((g) => g.from === `playbook:${playbook}`),
        });
        matchers.set(mk, m);
      }
      if (m.covering(u.event.action, u.event.resource).length === 0)
        reasons.push(
          `\`${u.event.action}\` on \`${u.event.resource}\` is outside the grants of playbook \`${playbook}\` in writ.yaml`,
        );
    }
    const scope = reasons.length > 0;
    // The tool call behind the use, as for standing use: an undeclared tool, a call that claims
    // another playbook, a prompt context tainted by an untrusted read.
    const joined = correlate(agent, u.event);
    if (joined) {
      let tools = toolMatchers.get(agent);
      if (work && !tools) {
        tools = new DeclaredMatcher(work);
        toolMatchers.set(agent, tools);
      }
      if (tools && !tools.toolDeclared(joined.call.tool))
        reasons.push(`tool \`${joined.call.tool}\` is not among the agent's declared tools`);
      if (joined.call.playbook && joined.call.playbook !== playbook)
        reasons.push(
          `the tool call claims playbook \`${joined.call.playbook}\`, but the credential is writ \`${u.writ.id}\`'s, for \`${playbook}\``,
        );
    }
    const late = u.expiresAt !== undefined && u.event.at > u.expiresAt + EXPIRY_GRACE_MS;
    if (late && u.expiresAt !== undefined)
      reasons.push(
        `used at ${new Date(u.event.at).toISOString()}, after writ \`${u.writ.id}\` expired at ${new Date(u.expiresAt).toISOString()}: its credential outlived it (the reaper removes writ's objects within one period)`,
      );
    // Inside the playbook, through a declared tool, while the writ lived: declared work covers it,
    // and an untrusted read earlier in its conversation does not make it category 2 (issue 12).
    if (reasons.length === 0) continue;
    if (joined?.taint)
      reasons.push(
        `prompt context \`${joined.call.context}\` read untrusted input earlier (tool \`${joined.taint.tool}\`)`,
      );
    outside.add(u.event);
    // One finding per playbook, action and resource, each citing its own use.
    const gk = `${writWorkloadId(agent, playbook)}\u0000${u.event.action}\u0000${u.event.resource}`;
    (groups.get(gk) ?? groups.set(gk, []).get(gk)!).push({ use: u, reasons, scope, late, joined });
  }
  const out: Finding[] = [];
  for (const verdicts of groups.values()) {
    // The use to cite: a tainted one first (the likely injection), else the first.
    const first = verdicts.find((v) => v.joined?.taint) ?? verdicts[0]!;
    const { event: e, writ } = first.use;
    const wid = writWorkloadId(writ.agent, writ.playbook);
    const writs: WritRef[] = [];
    for (const v of verdicts) if (!writs.some((w) => w.id === v.use.writ.id)) writs.push(v.use.writ);
    const evidence: EvidenceStep[] = [
      {
        kind: "event",
        ref: e.requestId ?? `${e.source.file}:${e.source.line ?? ""}`,
        label: `${new Date(e.at).toISOString()} ${e.via?.key ?? e.principal} ${e.action} ${e.resource} (${e.outcome})`,
        source: e.source,
      },
      ...joinedSteps(first.joined),
      {
        kind: "note",
        ref: writ.id,
        label: `writ \`${writ.id}\`: playbook \`${writ.playbook}\`, agent \`${writ.agent}\`, sponsor ${writ.sponsor ? `\`${writ.sponsor}\`` : "none"}; from the ${first.use.how}`,
        source: first.use.issuedAt,
      },
      ...first.reasons.map((r): EvidenceStep => ({ kind: "note", ref: "reason", label: r })),
    ];
    if (verdicts.length > 1)
      evidence.push({
        kind: "note",
        ref: "count",
        label: `${verdicts.length} such use(s) by ${writs.length} writ(s): ${writs
          .slice(0, 5)
          .map((w) => w.id)
          .join(", ")}${writs.length > 5 ? ", …" : ""}`,
      });
    const base = risk(e.provider, e.action, e.resource);
    const floor: Severity = verdicts.some((v) => v.joined?.taint) ? "high" : "medium";
    const severity: Severity = SEVERITY_RANK[base] >= SEVERITY_RANK[floor] ? base : floor;
    const what = first.scope
      ? "outside the playbook's declared work"
      : first.late
        ? "after the writ expired"
        : "through a tool call outside the agent's declared work";
    const system = e.provider === "aws" ? "the role (and its session policy)" : "the writ's Role";
    out.push({
      kind: "finding",
      id: findingId(wid, e.action, e.resource),
      category: "unjustified-use",
      severity,
      title: `writ ${writ.id} (playbook ${writ.playbook}, agent ${writ.agent}${writ.sponsor ? `, sponsor ${writ.sponsor}` : ""}) used ${e.action} ${what}`,
      workload: {
        id: wid,
        label: `playbook ${writ.playbook} of agent ${writ.agent} (writ credentials)`,
        agent: writ.agent,
      },
      permission: { action: e.action, resource: e.resource },
      location: e.source,
      evidence,
      reduction: {
        kind: "narrow-downstream",
        summary: `the writ's ${e.provider} credential allowed what playbook \`${writ.playbook}\` does not declare: narrow ${system} to the playbook's grants, or declare the work in the playbook if it is legitimate`,
        files: [],
      },
      misclassification:
        "if treated as unused excess of the role or service account, the writ's legitimate uses of it break; the credential was made for this playbook, so what it did outside the playbook is the question",
      confidence: 0.9,
      writs,
    });
  }
  return { findings: out, outside };
}

function joinedSteps(j: Correlated | undefined): EvidenceStep[] {
  if (!j) return [];
  const out: EvidenceStep[] = [
    {
      kind: "tool-call",
      ref: j.call.spanId,
      label: `tool call \`${j.call.tool}\` by \`${j.call.agent}\` at ${new Date(j.call.start).toISOString()}${j.call.playbook ? ` claiming playbook \`${j.call.playbook}\`` : ""}`,
      source: j.call.source,
    },
  ];
  if (j.call.context)
    out.push({
      kind: "context",
      ref: j.call.context,
      label: `prompt context \`${j.call.context}\`${j.taint ? ` (tainted by \`${j.taint.tool}\` at ${new Date(j.taint.start).toISOString()})` : ""}`,
      source: j.taint?.source,
    });
  return out;
}

/**
 * The grants of the playbooks whose writs used an identity: a grant of that identity inside one of
 * them is needed by declared work, even when no writ used it in the window.
 */
export function playbookRules(
  playbooks: ReadonlySet<string>,
  declared: ReadonlyMap<string, DeclaredWork> | undefined,
): Rule[] {
  const out: Rule[] = [];
  if (!declared) return out;
  for (const key of playbooks) {
    const [agent, playbook] = key.split("\u0000") as [string, string];
    for (const g of declared.get(agent)?.grants ?? []) {
      if (g.from !== `playbook:${playbook}`) continue;
      try {
        out.push(compileRule({ action: g.action, resource: g.resource }));
      } catch {
        // writ.yaml was checked at load
      }
    }
  }
  return out;
}

export function insideAny(rules: readonly Rule[], grant: Rule): boolean {
  return rules.some((r) => ruleContains(r, grant));
}
