/**
 * Approval policies, evaluated. Pure: the policy, the decisions so far and who asked are all
 * arguments; the answer says what counted, what was ignored and why, and what is still missing.
 *
 * Rules (docs/approvals.md):
 *   - `none` is approved at once.
 *   - `{group, count}` needs `count` distinct approvers who are members of `group`.
 *   - `all` (allOf) needs every branch, `any` (anyOf) at least one; they nest.
 *   - One person counts once across the whole policy: someone in both `sre` and `managers` cannot
 *     satisfy `allOf: [sre, managers]` alone. Solved exactly: the policy is expanded into its
 *     alternatives (sums of per-group needs), and each alternative is a bipartite matching of
 *     approvers to the seats it needs.
 *   - The requester and the agent's owner do not count unless `allowSelfApproval`.
 *   - An explicit deny by a member of any group the policy names denies the request, whatever the
 *     approvals — one veto is enough. Self-denial counts: refusing is never an escalation.
 *   - Identities are compared case-insensitively, surrounding spaces ignored.
 */
import { q, WritError } from "./errors.js";
import type { ApprovalPolicy, ApproverGroup } from "./model.js";

/** The policy expands into more alternatives than writ will evaluate. */
export const ERR_APPROVAL_POLICY_TOO_LARGE = "ERR_APPROVAL_POLICY_TOO_LARGE";

/** Distinct alternatives a policy may expand to; one needing more is refused (an evaluation error is a deny). */
const MAX_ALTERNATIVES = 1024;

export type ApprovalVerdict = "approve" | "deny";
export type ApprovalState = "approved" | "denied" | "pending";

export interface ApprovalVote {
  readonly approver: string;
  readonly decision: ApprovalVerdict;
  readonly at: Date;
}

export interface ApprovalContext {
  readonly groups: ReadonlyMap<string, ApproverGroup>;
  /** Who asked: the sponsor, or the agent when it asked for itself. */
  readonly requester: string;
  /** The agent's owner. */
  readonly owner: string;
  readonly allowSelfApproval: boolean;
}

/** An approval that counts, and the group seat it fills. */
export interface CountedApproval {
  readonly approver: string;
  readonly group: string;
}

/** What one group still has to give. */
export interface ApprovalNeed {
  readonly group: string;
  readonly count: number;
}

export type IgnoredReason = "self" | "not-an-approver" | "repeated";

export interface IgnoredVote {
  readonly approver: string;
  readonly decision: ApprovalVerdict;
  readonly reason: IgnoredReason;
}

export interface ApprovalEvaluation {
  readonly state: ApprovalState;
  /** Pending only, for people: "1 more from `managers`", alternatives joined with "or". */
  readonly missing?: string | undefined;
  /** Pending only: the alternatives closest to approval, each as what its groups still need. */
  readonly needs?: readonly (readonly ApprovalNeed[])[] | undefined;
  /**
   * The approvals that count: for `approved`, the seats of the alternative that was satisfied; for
   * `pending`, of the closest one; for `denied`, of the closest one as well (informational).
   */
  readonly counted: readonly CountedApproval[];
  /** Denied only: the members whose deny decided it. */
  readonly deniedBy?: readonly string[] | undefined;
  /** Decisions that were not taken into account, with the reason. */
  readonly ignored: readonly IgnoredVote[];
}

/** The canonical form identities are compared in: trimmed, lower case. */
export function normalizeIdentity(id: string): string {
  return id.trim().toLowerCase();
}

/** Every group the policy names, in order of first appearance. */
export function approvalGroups(policy: ApprovalPolicy): string[] {
  const seen = new Set<string>();
  const walk = (p: ApprovalPolicy): void => {
    switch (p.kind) {
      case "none":
        return;
      case "group":
        seen.add(p.group);
        return;
      case "all":
      case "any":
        for (const child of p.of) walk(child);
        return;
      default:
        throw new TypeError(`approval policy: unknown kind ${q((p as { kind?: unknown }).kind)}`);
    }
  };
  walk(policy);
  return [...seen];
}

function memberOf(groups: ReadonlyMap<string, ApproverGroup>, group: string, who: string): boolean {
  const g = groups.get(group);
  return g !== undefined && g.members.some((m) => normalizeIdentity(m) === who);
}

/** The groups named by `policy` that `approver` belongs to. */
export function approverGroupsOf(
  policy: ApprovalPolicy,
  groups: ReadonlyMap<string, ApproverGroup>,
  approver: string,
): string[] {
  const who = normalizeIdentity(approver);
  return approvalGroups(policy).filter((g) => memberOf(groups, g, who));
}

/** True when `approver` is the requester or the agent's owner. */
export function isSelfApproval(ctx: Pick<ApprovalContext, "requester" | "owner">, approver: string): boolean {
  const who = normalizeIdentity(approver);
  return who === normalizeIdentity(ctx.requester) || who === normalizeIdentity(ctx.owner);
}

/** An alternative: how many distinct approvers each group must give. Groups in policy order. */
type Alternative = ReadonlyMap<string, number>;

function key(alt: Alternative): string {
  return [...alt.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([g, n]) => `${g}\u0000${n}`)
    .join("\u0001");
}

/** `a` asks at least as much as `b` from every group (so `a` is never easier than `b`). */
function dominates(a: Alternative, b: Alternative): boolean {
  for (const [g, n] of b) if ((a.get(g) ?? 0) < n) return false;
  return true;
}

function tooLarge(): WritError {
  return new WritError(
    ERR_APPROVAL_POLICY_TOO_LARGE,
    `approval policy: more than ${MAX_ALTERNATIVES} ways to satisfy it: simplify the allOf/anyOf nesting`,
  );
}

/** Keeps unique alternatives that no other (easier) alternative makes redundant. */
function prune(alts: readonly Alternative[]): Alternative[] {
  const unique = new Map<string, Alternative>();
  for (const a of alts) {
    const k = key(a);
    if (!unique.has(k)) unique.set(k, a);
  }
  if (unique.size > MAX_ALTERNATIVES) throw tooLarge();
  const list = [...unique.values()];
  return list.filter((a, i) => !list.some((b, j) => j !== i && dominates(a, b) && !dominates(b, a)));
}

function expand(policy: ApprovalPolicy): Alternative[] {
  switch (policy.kind) {
    case "none":
      return [new Map()];
    case "group": {
      if (!Number.isSafeInteger(policy.count) || policy.count < 1) {
        throw new TypeError(`approval policy: count for ${q(policy.group)} must be a positive integer`);
      }
      return [new Map([[policy.group, policy.count]])];
    }
    case "any":
      if (policy.of.length === 0) throw new TypeError("approval policy: `any` needs at least one branch");
      return prune(policy.of.flatMap(expand));
    case "all": {
      let acc: Alternative[] = [new Map()];
      for (const child of policy.of) {
        const rights = expand(child);
        if (acc.length * rights.length > MAX_ALTERNATIVES * 16) throw tooLarge();
        const next: Alternative[] = [];
        for (const left of acc) {
          for (const right of rights) {
            const merged = new Map(left);
            for (const [g, n] of right) merged.set(g, (merged.get(g) ?? 0) + n);
            next.push(merged);
          }
        }
        acc = prune(next);
      }
      return acc;
    }
    default:
      throw new TypeError(`approval policy: unknown kind ${q((policy as { kind?: unknown }).kind)}`);
  }
}

interface Match {
  readonly counted: CountedApproval[];
  readonly short: ApprovalNeed[];
  readonly missing: number;
}

/**
 * Maximum bipartite matching (augmenting paths) of approvers to the seats `alt` needs; seats are
 * filled group by group in policy order, so the same votes always give the same answer.
 */
function match(alt: Alternative, approvers: readonly string[], eligible: (g: string, a: string) => boolean) {
  const seats: string[] = [];
  for (const [g, n] of alt) {
    const possible = approvers.filter((a) => eligible(g, a)).length;
    for (let i = 0; i < Math.min(n, possible); i++) seats.push(g);
  }
  const holder = new Map<string, number>(); // approver → seat index
  const assign = (seat: number, visited: Set<string>): boolean => {
    const g = seats[seat]!;
    for (const a of approvers) {
      if (!eligible(g, a) || visited.has(a)) continue;
      visited.add(a);
      const other = holder.get(a);
      if (other === undefined || assign(other, visited)) {
        holder.set(a, seat);
        return true;
      }
    }
    return false;
  };
  for (let seat = 0; seat < seats.length; seat++) assign(seat, new Set());
  const filled = new Map<string, number>();
  const bySeat = [...holder.entries()].sort(([, x], [, y]) => x - y);
  const counted = bySeat.map(([approver, seat]) => {
    const group = seats[seat]!;
    filled.set(group, (filled.get(group) ?? 0) + 1);
    return { approver, group };
  });
  const short: ApprovalNeed[] = [];
  let missing = 0;
  for (const [group, n] of alt) {
    const lack = n - (filled.get(group) ?? 0);
    if (lack > 0) {
      short.push({ group, count: lack });
      missing += lack;
    }
  }
  return { counted, short, missing } satisfies Match;
}

function describeNeeds(needs: readonly (readonly ApprovalNeed[])[]): string {
  return needs.map((alt) => alt.map((n) => `${n.count} more from ${q(n.group)}`).join(" and ")).join(" or ");
}

/**
 * Evaluates `policy` over the decisions so far. Throws a `TypeError` for a malformed policy and
 * `ERR_APPROVAL_POLICY_TOO_LARGE` for one with too many alternatives; callers treat both as deny.
 */
export function evaluateApproval(
  policy: ApprovalPolicy,
  decisions: readonly ApprovalVote[],
  ctx: ApprovalContext,
): ApprovalEvaluation {
  const alternatives = expand(policy);
  const named = approvalGroups(policy);
  const ordered = [...decisions].sort(
    (a, b) =>
      a.at.getTime() - b.at.getTime() || (a.approver < b.approver ? -1 : a.approver > b.approver ? 1 : 0),
  );
  const ignored: IgnoredVote[] = [];
  const deniedBy: string[] = [];
  const approvers: string[] = [];
  const seen = new Set<string>();
  for (const vote of ordered) {
    const who = normalizeIdentity(vote.approver);
    const ignore = (reason: IgnoredReason) =>
      ignored.push({ approver: who, decision: vote.decision, reason });
    if (!named.some((g) => memberOf(ctx.groups, g, who))) {
      ignore("not-an-approver");
    } else if (vote.decision === "deny") {
      if (!deniedBy.includes(who)) deniedBy.push(who);
      else ignore("repeated");
    } else if (vote.decision !== "approve") {
      throw new TypeError(`approval decision: expected \`approve\` or \`deny\`, got ${q(vote.decision)}`);
    } else if (!ctx.allowSelfApproval && isSelfApproval(ctx, who)) {
      ignore("self");
    } else if (seen.has(who)) {
      ignore("repeated");
    } else {
      seen.add(who);
      approvers.push(who);
    }
  }
  const eligible = (g: string, a: string) => memberOf(ctx.groups, g, a);
  const matches = alternatives.map((alt) => match(alt, approvers, eligible));
  const satisfied = matches.find((m) => m.missing === 0);
  if (deniedBy.length > 0) {
    const closest = satisfied ?? matches.reduce((best, m) => (m.missing < best.missing ? m : best));
    return { state: "denied", counted: closest.counted, deniedBy, ignored };
  }
  if (satisfied !== undefined) return { state: "approved", counted: satisfied.counted, ignored };
  const fewest = Math.min(...matches.map((m) => m.missing));
  const best = matches.filter((m) => m.missing === fewest);
  const needs = best.map((m) => m.short);
  return { state: "pending", missing: describeNeeds(needs), needs, counted: best[0]!.counted, ignored };
}
