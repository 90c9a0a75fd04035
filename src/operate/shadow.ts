/**
 * The shadow report (docs/shadow.md): what rules in `mode: shadow` would have blocked since a time,
 * grouped by rule, agent and reason, with counts, first and last seen and the newest example — read
 * from the audit records' `shadow` lists (decisions, tool calls, writs issued or refused).
 *
 * Bounded: one read of at most `MAX_SCAN` records, the newest, at or after `since`; the groups are
 * counted in the database (a record with several shadow entries counts once per entry), at most
 * `MAX_GROUPS` of them returned, the largest first. `complete: false` says older records in the
 * period were not read.
 */
import type { Store } from "../store/index.js";

export const MAX_SCAN = 100_000;
export const MAX_GROUPS = 500;

export interface ShadowExample {
  readonly seq: number;
  readonly at: string;
  /** The audit record's type: `pdp.decision`, `gateway.call`, `broker.writ_issued`, `broker.denied`. */
  readonly type: string;
  readonly action?: string | undefined;
  readonly resource?: string | undefined;
  readonly tool?: string | undefined;
  readonly playbook?: string | undefined;
  readonly environment?: string | undefined;
  /** Whether the request went on (`allowed`) or an enforcing rule denied it as well (`denied`). */
  readonly outcome: "allowed" | "denied";
  readonly message: string;
}

export interface ShadowGroup {
  readonly rule: string;
  readonly kind: string;
  readonly agent: string;
  readonly reason: string;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly example: ShadowExample;
}

export interface ShadowReport {
  readonly since: string;
  readonly at: string;
  /** Would-have-denied entries in the period (the sum of the groups' counts, all groups). */
  readonly total: number;
  readonly groups: readonly ShadowGroup[];
  /** More groups than `MAX_GROUPS`: the smallest are left out. */
  readonly groupsOmitted: number;
  /** false: the period holds more than `MAX_SCAN` records, and the oldest were not read. */
  readonly complete: boolean;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

function exampleOf(
  seq: number,
  at: Date,
  type: string,
  data: Record<string, unknown>,
  rule: string,
): ShadowExample {
  const decision = data.decision as { allowed?: unknown } | undefined;
  const entries = Array.isArray(data.shadow) ? (data.shadow as { rule?: unknown; message?: unknown }[]) : [];
  const entry = entries.find((e) => e?.rule === rule);
  const resources = Array.isArray(data.resources) ? data.resources.filter((r) => typeof r === "string") : [];
  return {
    seq,
    at: at.toISOString(),
    type,
    action: str(data.action),
    resource: str(data.resource) ?? (resources.length > 0 ? resources.join(", ") : undefined),
    tool: str(data.tool),
    playbook: str(data.playbook),
    environment: str(data.environment),
    outcome: type === "broker.denied" || decision?.allowed === false ? "denied" : "allowed",
    message: str(entry?.message) ?? "",
  };
}

/** The report over the records at or after `since` (the newest `MAX_SCAN` of them). */
export async function readShadowReport(
  store: Pick<Store, "shadow">,
  opts: { since: Date; now: Date; maxScan?: number; maxGroups?: number },
): Promise<ShadowReport> {
  const maxScan = opts.maxScan ?? MAX_SCAN;
  const maxGroups = opts.maxGroups ?? MAX_GROUPS;
  const { complete, groups: all } = await store.shadow.groups(opts.since, maxScan);
  const kept = all.slice(0, maxGroups);
  const examples = await store.shadow.records([...new Set(kept.map((g) => g.lastSeq))]);
  const groups: ShadowGroup[] = kept.map((g) => {
    const seq = g.lastSeq;
    const ex = examples.get(seq);
    return {
      rule: g.rule,
      kind: g.kind,
      agent: g.agent,
      reason: g.reason,
      count: g.count,
      firstSeen: g.firstAt.toISOString(),
      lastSeen: g.lastAt.toISOString(),
      example: ex
        ? exampleOf(seq, ex.at, ex.type, ex.data, g.rule)
        : { seq, at: g.lastAt.toISOString(), type: "", outcome: "allowed", message: "" },
    };
  });
  return {
    since: opts.since.toISOString(),
    at: opts.now.toISOString(),
    total: all.reduce((n, g) => n + g.count, 0),
    groups,
    groupsOmitted: all.length - kept.length,
    complete,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length));

/** The report as text, one block per group. */
export function shadowReportText(r: ShadowReport): string {
  const lines = [`Shadow report: what rules in shadow mode would have blocked, ${r.since} to ${r.at}`];
  if (r.groups.length === 0) {
    lines.push("", "Nothing: no rule in shadow mode would have denied a request in this period.");
  } else {
    lines.push(`${r.total} would-have-denied in ${r.groups.length + r.groupsOmitted} groups`, "");
    for (const g of r.groups) {
      const e = g.example;
      const what = [e.action, e.tool && e.tool !== e.action ? e.tool : undefined, e.resource, e.playbook]
        .filter((x) => x !== undefined)
        .join(" ");
      lines.push(
        `${pad(String(g.count), 6)} ${g.rule}  agent ${g.agent || "-"}  ${g.reason}`,
        `       first ${g.firstSeen}  last ${g.lastSeen}`,
        `       e.g. #${e.seq} ${e.type} ${what} (${e.outcome === "allowed" ? "went on" : "denied by an enforcing rule too"})`,
        ...(e.message ? [`       ${e.message}`] : []),
      );
    }
    if (r.groupsOmitted > 0) lines.push("", `${r.groupsOmitted} smaller groups left out`);
  }
  if (!r.complete) lines.push("", `Only the newest ${MAX_SCAN} records of the period were read.`);
  return lines.join("\n");
}
