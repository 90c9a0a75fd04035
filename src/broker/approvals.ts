/**
 * Approval requests: the out-of-band sign-off a playbook's policy asks for before a writ is issued
 * (CIBA poll mode: the request id is the `auth_req_id`). The service over the store's approval
 * repository (`store/approvals.ts`), one module function per operation:
 *
 *   createRequest  a pending request bound to (agent, playbook, params, environment, ticket)
 *   decide         one approver's approve or deny; re-evaluates the policy and closes the request
 *   status         what the poller sees, only with the request's binding
 *   pollTooFast    CIBA `slow_down`: the interval grows by 5 s each time the client polls too soon
 *   consume        approved → consumed, once, when the writ is issued
 *   listPending    what approvers have to look at
 *
 * Life of a request: pending → approved | denied | expired; approved → consumed | expired. Every
 * change of one request happens in a transaction holding its row (`select … for update`), so
 * concurrent deciders on any number of processes are serialised and none is lost.
 *
 * Refusals are `WritError`s with an `ERR_APPROVAL_*` code; failures of the database are
 * `ERR_STORE*`.
 */
import { createHash, randomBytes } from "node:crypto";
import { canonicalJson } from "../audit/index.js";
import {
  type ApprovalContext,
  type ApprovalEvaluation,
  type ApprovalPolicy,
  type ApprovalVerdict,
  approverGroupsOf,
  evaluateApproval,
  isSelfApproval,
  isWritError,
  normalizeIdentity,
  q,
  type WritConfig,
  WritError,
} from "../core/index.js";
import {
  type ApprovalDecisionRow,
  type ApprovalRepository,
  type ApprovalRequestInsert,
  type ApprovalRequestRow,
  type ApprovalRows,
  type LockedApproval,
  type Store,
  sqlState,
} from "../store/index.js";

/** No request with this id. */
export const ERR_APPROVAL_NOT_FOUND = "ERR_APPROVAL_NOT_FOUND";
/** The request expired before it was decided or used. */
export const ERR_APPROVAL_EXPIRED = "ERR_APPROVAL_EXPIRED";
/** The request is already approved, denied or consumed. */
export const ERR_APPROVAL_CLOSED = "ERR_APPROVAL_CLOSED";
/** The approver is in no group the policy names. */
export const ERR_APPROVAL_NOT_APPROVER = "ERR_APPROVAL_NOT_APPROVER";
/** The requester or the agent's owner tried to approve, and the playbook does not allow it. */
export const ERR_APPROVAL_SELF = "ERR_APPROVAL_SELF";
/** This approver has already decided this request. */
export const ERR_APPROVAL_DUPLICATE = "ERR_APPROVAL_DUPLICATE";
/** The caller's binding is not the request's: the approval is for another agent, playbook, params… */
export const ERR_APPROVAL_BINDING = "ERR_APPROVAL_BINDING";
/** Consuming a request that is pending or denied. */
export const ERR_APPROVAL_NOT_APPROVED = "ERR_APPROVAL_NOT_APPROVED";
/** The config no longer defines the agent, the playbook, or an approval policy for the environment. */
export const ERR_APPROVAL_NO_POLICY = "ERR_APPROVAL_NO_POLICY";
/** Malformed input: an empty approver, a deny without a reason, an expiry in the past… */
export const ERR_APPROVAL_INVALID = "ERR_APPROVAL_INVALID";

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "consumed";
const STATUSES: readonly ApprovalStatus[] = ["pending", "approved", "denied", "expired", "consumed"];

/** What a request is bound to; its hash is the binding. */
export interface ApprovalSubject {
  readonly agent: string;
  readonly playbook: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly environment: string;
  /** undefined: no ticket. */
  readonly ticket?: string | undefined;
  /** The audience (RFC 8707 `resource`) the writ will name; undefined for gateway holds. */
  readonly audience?: string | undefined;
}

/**
 * The binding of an approval: SHA-256 (hex) of the canonical JSON of
 * `{agent, environment, params, playbook, ticket}` (ticket `null` when absent), with `audience`
 * when the request names one. An approval for parameters A, or for audience A, never applies to B.
 */
export function approvalBinding(subject: ApprovalSubject): string {
  const doc = {
    agent: subject.agent,
    ...(subject.audience === undefined ? {} : { audience: subject.audience }),
    environment: subject.environment,
    params: subject.params,
    playbook: subject.playbook,
    ticket: subject.ticket ?? null,
  };
  return createHash("sha256").update(canonicalJson(doc), "utf8").digest("hex");
}

/** A fresh request id: `ar_` and 32 random bytes, base64url (never starts with `-`, so CLIs take it). */
export function newApprovalId(): string {
  return `ar_${randomBytes(32).toString("base64url")}`;
}

export interface NewApprovalRequest extends ApprovalSubject {
  /** Default: `newApprovalId()`. Give one only when it is as unguessable. */
  readonly id?: string | undefined;
  /** The sponsor who asked, or the agent when it asked for itself. */
  readonly requester: string;
  readonly expiresAt: Date;
  /** Seconds a poller must wait between polls (default 5). */
  readonly pollInterval?: number | undefined;
}

export interface ApprovalDecision {
  /** Normalised: trimmed, lower case. */
  readonly approver: string;
  readonly decision: ApprovalVerdict;
  readonly reason: string | undefined;
  readonly at: Date;
}

export interface ApprovalRequest {
  readonly kind: "approval-request";
  readonly id: string;
  readonly environment: string;
  readonly agent: string;
  readonly playbook: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly ticket: string | undefined;
  /** The audience the writ will name, fixed at the request (CIBA); undefined for gateway holds. */
  readonly audience: string | undefined;
  readonly binding: string;
  readonly requester: string;
  readonly status: ApprovalStatus;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** Seconds. */
  readonly pollInterval: number;
  readonly lastPolledAt: Date | undefined;
  readonly decidedAt: Date | undefined;
  readonly writId: string | undefined;
  /** In the order they were made. */
  readonly decisions: readonly ApprovalDecision[];
}

export interface DecisionInput {
  readonly approver: string;
  readonly decision: ApprovalVerdict;
  /** Required for a deny. */
  readonly reason?: string | undefined;
}

export interface DecideOptions {
  /** The config in force: the policy, groups and owner are read from it at decision time. */
  readonly config: WritConfig;
  readonly now?: Date | undefined;
}

export interface DecideResult {
  /** The request after this decision. */
  readonly request: ApprovalRequest;
  /** The policy evaluated over every decision, this one included. */
  readonly evaluation: ApprovalEvaluation;
}

export interface PollStatus {
  readonly status: ApprovalStatus;
  readonly expiresAt: Date;
  /** Seconds. */
  readonly pollInterval: number;
  readonly decidedAt: Date | undefined;
  readonly writId: string | undefined;
}

export interface PollPace {
  /** The client polled sooner than the interval allowed: answer `slow_down`. */
  readonly tooFast: boolean;
  /** The interval from now on, in seconds (5 more than before when `tooFast`). */
  readonly pollInterval: number;
}

/** Where the service records what happens; `openAuditLog(…)` fits. */
export interface ApprovalAudit {
  append(type: string, data: Readonly<Record<string, unknown>>): Promise<unknown>;
}

export interface ApprovalServiceOptions {
  /**
   * Receives `approval.request`, `approval.decision`, `approval.refused`, `approval.expired` and
   * `approval.consumed` records, after the change is committed. A failing append fails the call
   * (the change itself stays committed).
   */
  readonly audit?: ApprovalAudit | undefined;
}

export interface ApprovalService {
  createRequest(input: NewApprovalRequest, opts?: { now?: Date | undefined }): Promise<ApprovalRequest>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  /**
   * Records one approver's decision, re-evaluates the policy and moves the request to approved or
   * denied when it is settled. Refuses with `ERR_APPROVAL_NOT_FOUND`, `ERR_APPROVAL_EXPIRED` (and
   * marks the request expired), `ERR_APPROVAL_CLOSED`, `ERR_APPROVAL_NO_POLICY`,
   * `ERR_APPROVAL_NOT_APPROVER`, `ERR_APPROVAL_SELF`, `ERR_APPROVAL_DUPLICATE`, `ERR_APPROVAL_INVALID`.
   */
  decide(id: string, input: DecisionInput, opts: DecideOptions): Promise<DecideResult>;
  /**
   * What the poller sees. `ERR_APPROVAL_BINDING` unless `binding` is the request's (and the stored
   * request still hashes to it); an approved or pending request past its expiry becomes expired.
   */
  status(id: string, opts: { binding: string; now?: Date | undefined }): Promise<PollStatus>;
  /** Records this poll; says whether it came sooner than the interval (then the interval grows by 5 s). */
  pollTooFast(id: string, now?: Date): Promise<PollPace>;
  /**
   * approved → consumed by `writId`, exactly once. `ERR_APPROVAL_CLOSED` when already consumed (or
   * denied), `ERR_APPROVAL_NOT_APPROVED` while pending, `ERR_APPROVAL_EXPIRED`,
   * `ERR_APPROVAL_BINDING` when a binding is given and differs.
   */
  consume(
    id: string,
    writId: string,
    opts?: { binding?: string | undefined; now?: Date | undefined },
  ): Promise<ApprovalRequest>;
  /** Pending, unexpired requests, oldest first. */
  listPending(opts?: {
    environment?: string | undefined;
    now?: Date | undefined;
  }): Promise<ApprovalRequest[]>;
}

/** The policy a request is judged by, under `config`, and the context it is evaluated in. */
export function requestPolicy(
  config: WritConfig,
  request: Pick<ApprovalRequest, "id" | "agent" | "playbook" | "environment" | "requester">,
): { readonly policy: ApprovalPolicy; readonly ctx: ApprovalContext } {
  const playbook = config.playbooks.get(request.playbook);
  const agent = config.agents.get(request.agent);
  const where = `approval request ${q(request.id)}`;
  if (playbook === undefined)
    throw new WritError(
      ERR_APPROVAL_NO_POLICY,
      `${where}: the config has no playbook ${q(request.playbook)}`,
    );
  if (agent === undefined)
    throw new WritError(ERR_APPROVAL_NO_POLICY, `${where}: the config has no agent ${q(request.agent)}`);
  const policy = playbook.approval.get(request.environment);
  if (policy === undefined || policy.kind === "none") {
    throw new WritError(
      ERR_APPROVAL_NO_POLICY,
      `${where}: playbook ${q(request.playbook)} needs no approval in ${q(request.environment)} under the current config`,
    );
  }
  return {
    policy,
    ctx: {
      groups: config.approverGroups,
      requester: request.requester,
      owner: agent.owner,
      allowSelfApproval: playbook.allowSelfApproval,
    },
  };
}

/** Evaluates a stored request's decisions under `config` (see `requestPolicy`). */
export function evaluateRequest(config: WritConfig, request: ApprovalRequest): ApprovalEvaluation {
  const { policy, ctx } = requestPolicy(config, request);
  return evaluateApproval(policy, request.decisions, ctx);
}

function invalid(message: string): WritError {
  return new WritError(ERR_APPROVAL_INVALID, message);
}

function checkText(field: string, value: unknown, max = 200): asserts value is string {
  if (typeof value !== "string" || value.trim().length === 0 || value.length > max) {
    throw invalid(`approval ${field}: expected a non-empty string of at most ${max} characters`);
  }
}

function checkDate(field: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw invalid(`approval ${field}: expected a valid date`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** An approver id: no control characters or inner whitespace, compared normalised. */
function approverId(value: unknown): string {
  checkText("approver", value);
  const id = normalizeIdentity(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(id))
    throw invalid(`approver ${q(value)}: no spaces or control characters`);
  return id;
}

function corrupt(id: string, what: string): WritError {
  return new WritError("ERR_STORE_CORRUPT", `approval request ${q(id)}: ${what}`);
}

function decisionFromRow(row: ApprovalDecisionRow): ApprovalDecision {
  if (row.decision !== "approve" && row.decision !== "deny")
    throw corrupt(row.request_id, `unknown decision ${q(row.decision)}`);
  return { approver: row.approver, decision: row.decision, reason: row.reason ?? undefined, at: row.at };
}

function fromRow(row: ApprovalRequestRow, decisions: readonly ApprovalDecisionRow[]): ApprovalRequest {
  if (!STATUSES.includes(row.status as ApprovalStatus))
    throw corrupt(row.id, `unknown status ${q(row.status)}`);
  if (!isPlainObject(row.params)) throw corrupt(row.id, "params is not an object");
  return {
    kind: "approval-request",
    id: row.id,
    environment: row.environment,
    agent: row.agent,
    playbook: row.playbook,
    params: row.params,
    ticket: row.ticket ?? undefined,
    audience: row.audience ?? undefined,
    binding: row.binding,
    requester: row.requester,
    status: row.status as ApprovalStatus,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    pollInterval: row.poll_interval,
    lastPolledAt: row.last_polled_at ?? undefined,
    decidedAt: row.decided_at ?? undefined,
    writId: row.writ_id ?? undefined,
    decisions: [...decisions]
      .sort((a, b) => a.at.getTime() - b.at.getTime() || (a.approver < b.approver ? -1 : 1))
      .map(decisionFromRow),
  };
}

const fromRows = (rows: ApprovalRows): ApprovalRequest => fromRow(rows.request, rows.decisions);

function notFound(id: string): WritError {
  return new WritError(ERR_APPROVAL_NOT_FOUND, `approval request ${q(id)} not found`);
}

function expiredError(request: ApprovalRequest): WritError {
  return new WritError(
    ERR_APPROVAL_EXPIRED,
    `approval request ${q(request.id)} expired at ${request.expiresAt.toISOString()}`,
  );
}

function closedError(request: ApprovalRequest): WritError {
  const by =
    request.status === "consumed" && request.writId !== undefined ? ` by writ ${q(request.writId)}` : "";
  return new WritError(
    ERR_APPROVAL_CLOSED,
    `approval request ${q(request.id)} is already ${request.status}${by}`,
  );
}

/** Whether the stored request still hashes to its binding (a row edited in place does not). */
function intact(request: ApprovalRequest): boolean {
  try {
    return approvalBinding(request) === request.binding;
  } catch {
    return false;
  }
}

/**
 * A step's value, or its refusal: decided inside a transaction that must still commit (an expiry
 * flip), so returned to `decide`, which audits it and throws it to the caller.
 */
type Step<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WritError };

const refusal = (error: WritError): { readonly ok: false; readonly error: WritError } => ({
  ok: false,
  error,
});

/** What every operation of the service works with. */
interface Ctx {
  readonly rows: ApprovalRepository;
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<void>;
}

function bindingRefusal(id: string): WritError {
  return new WritError(
    ERR_APPROVAL_BINDING,
    `approval request ${q(id)} is for another agent, playbook, environment, ticket or parameters`,
  );
}

/** The checked row of a new request, and its binding. */
function newRequestRow(input: NewApprovalRequest, id: string, now: Date): ApprovalRequestInsert {
  checkText("id", id);
  checkText("agent", input.agent);
  checkText("playbook", input.playbook);
  checkText("environment", input.environment);
  checkText("requester", input.requester);
  if (input.ticket !== undefined) checkText("ticket", input.ticket);
  if (input.audience !== undefined) checkText("audience", input.audience, 2000);
  if (!isPlainObject(input.params)) throw invalid(`approval request ${q(id)}: params must be an object`);
  checkDate("expiresAt", input.expiresAt);
  if (input.expiresAt.getTime() <= now.getTime())
    throw invalid(`approval request ${q(id)}: expiresAt must be after now`);
  const pollInterval = input.pollInterval ?? 5;
  if (!Number.isSafeInteger(pollInterval) || pollInterval < 1 || pollInterval > 3600)
    throw invalid(`approval request ${q(id)}: pollInterval must be a whole number of seconds, 1 to 3600`);
  let binding: string;
  try {
    binding = approvalBinding(input);
  } catch (err) {
    throw invalid(`approval request ${q(id)}: params: ${(err as Error).message}`);
  }
  return {
    id,
    environment: input.environment,
    agent: input.agent,
    playbook: input.playbook,
    params: JSON.stringify(input.params),
    ticket: input.ticket ?? null,
    audience: input.audience ?? null,
    binding,
    requester: input.requester,
    created_at: now,
    expires_at: input.expiresAt,
    poll_interval: pollInterval,
    last_polled_at: null,
    decided_at: null,
    writ_id: null,
  };
}

async function createRequest(
  ctx: Ctx,
  input: NewApprovalRequest,
  opts: { now?: Date } = {},
): Promise<ApprovalRequest> {
  const now = opts.now ?? new Date();
  checkDate("now", now);
  const id = input.id ?? newApprovalId();
  const inserted = await ctx.rows.insert(newRequestRow(input, id, now));
  if ("refused" in inserted) {
    throw invalid(
      inserted.refused === "exists"
        ? `approval request ${q(id)} already exists`
        : `approval request ${q(id)}: params cannot be stored: ${inserted.message}`,
    );
  }
  const request = fromRows(inserted);
  if (!intact(request)) {
    // What was stored does not hash as what was asked (a value jsonb cannot keep as given).
    await ctx.rows.remove(id);
    throw invalid(`approval request ${q(id)}: params cannot be stored exactly as given`);
  }
  await ctx.audit("approval.request", {
    id,
    agent: request.agent,
    playbook: request.playbook,
    environment: request.environment,
    params: request.params,
    ticket: request.ticket ?? null,
    ...(request.audience === undefined ? {} : { audience: request.audience }),
    requester: request.requester,
    binding: request.binding,
    expiresAt: request.expiresAt.toISOString(),
  });
  return request;
}

/** The policy judging `request` when `approver` may decide it this way, or the refusal. */
function judge(
  request: ApprovalRequest,
  approver: string,
  decision: "approve" | "deny",
  config: WritConfig,
): Step<ReturnType<typeof requestPolicy>> {
  let judged: ReturnType<typeof requestPolicy>;
  try {
    judged = requestPolicy(config, request);
  } catch (err) {
    if (isWritError(err)) return refusal(err);
    throw err;
  }
  const { policy, ctx } = judged;
  const id = request.id;
  if (approverGroupsOf(policy, ctx.groups, approver).length === 0) {
    return refusal(
      new WritError(
        ERR_APPROVAL_NOT_APPROVER,
        `${q(approver)} is in no approver group the policy for ${q(request.playbook)} in ${q(request.environment)} names`,
      ),
    );
  }
  if (decision === "approve" && !ctx.allowSelfApproval && isSelfApproval(ctx, approver)) {
    const role =
      normalizeIdentity(ctx.requester) === approver ? "requested it" : `owns agent ${q(request.agent)}`;
    return refusal(
      new WritError(
        ERR_APPROVAL_SELF,
        `${q(approver)} cannot approve request ${q(id)}: they ${role} and playbook ${q(request.playbook)} does not allow self-approval`,
      ),
    );
  }
  if (request.decisions.some((d) => d.approver === approver)) {
    return refusal(
      new WritError(ERR_APPROVAL_DUPLICATE, `${q(approver)} has already decided request ${q(id)}`),
    );
  }
  return { ok: true, value: judged };
}

/** Inside the transaction holding the request's row: records the decision, closes when decided. */
async function decideLocked(
  locked: LockedApproval,
  id: string,
  approver: string,
  input: DecisionInput,
  reason: string | undefined,
  opts: DecideOptions & { now: Date },
): Promise<Step<DecideResult>> {
  const now = opts.now;
  if (locked.rows === undefined) return refusal(notFound(id));
  const request = fromRows(locked.rows);
  if (request.status === "expired") return refusal(expiredError(request));
  if (request.status !== "pending") return refusal(closedError(request));
  if (request.expiresAt.getTime() <= now.getTime()) {
    await locked.expire(now);
    return refusal(expiredError(request));
  }
  const judged = judge(request, approver, input.decision, opts.config);
  if (!judged.ok) return judged;
  await locked.addDecision({ approver, decision: input.decision, reason: reason ?? null, at: now });
  const decisions = [...request.decisions, { approver, decision: input.decision, reason, at: now }];
  const evaluation = evaluateApproval(judged.value.policy, decisions, judged.value.ctx);
  let status: ApprovalStatus = "pending";
  let decidedAt: Date | undefined;
  if (evaluation.state !== "pending") {
    status = evaluation.state;
    decidedAt = now;
    await locked.close(status, now);
  }
  return { ok: true, value: { request: { ...request, status, decidedAt, decisions }, evaluation } };
}

async function decide(
  ctx: Ctx,
  id: string,
  input: DecisionInput,
  opts: DecideOptions,
): Promise<DecideResult> {
  const now = opts.now ?? new Date();
  checkDate("now", now);
  const approver = approverId(input.approver);
  if (input.decision !== "approve" && input.decision !== "deny")
    throw invalid(`decision ${q(input.decision)}: expected \`approve\` or \`deny\``);
  if (input.reason !== undefined) checkText("reason", input.reason, 1000);
  if (input.decision === "deny" && input.reason === undefined)
    throw invalid(`deny ${q(id)}: a reason is required`);
  const reason = input.reason?.trim();

  const outcome = await ctx.rows
    .locked(id, (locked) => decideLocked(locked, id, approver, input, reason, { ...opts, now }))
    .catch((err: unknown) => {
      // Two deciders with the same id on a backend without the row lock's protection would meet
      // at the primary key; either way the second is a duplicate.
      if (isWritError(err) && sqlState(err.cause) === "23505") {
        throw new WritError(ERR_APPROVAL_DUPLICATE, `${q(approver)} has already decided request ${q(id)}`);
      }
      throw err;
    });

  if (!outcome.ok) {
    await ctx.audit("approval.refused", {
      id,
      approver,
      decision: input.decision,
      code: outcome.error.code,
      message: outcome.error.message,
    });
    if (outcome.error.code === ERR_APPROVAL_EXPIRED) await ctx.audit("approval.expired", { id });
    throw outcome.error;
  }
  const { request, evaluation } = outcome.value;
  await ctx.audit("approval.decision", {
    id,
    agent: request.agent,
    playbook: request.playbook,
    environment: request.environment,
    binding: request.binding,
    approver,
    decision: input.decision,
    reason: reason ?? null,
    status: request.status,
    counted: evaluation.counted,
    ...(evaluation.missing !== undefined ? { missing: evaluation.missing } : {}),
  });
  return outcome.value;
}

async function status(ctx: Ctx, id: string, opts: { binding: string; now?: Date }): Promise<PollStatus> {
  const now = opts.now ?? new Date();
  checkDate("now", now);
  const rows = await ctx.rows.load(id);
  if (rows === undefined) throw notFound(id);
  const request = fromRows(rows);
  if (typeof opts.binding !== "string" || opts.binding !== request.binding || !intact(request))
    throw bindingRefusal(id);
  let current = request.status;
  if ((current === "pending" || current === "approved") && request.expiresAt.getTime() <= now.getTime()) {
    if (await ctx.rows.expire(id, now)) await ctx.audit("approval.expired", { id });
    current = "expired";
  }
  return {
    status: current,
    expiresAt: request.expiresAt,
    pollInterval: request.pollInterval,
    decidedAt: request.decidedAt,
    writId: request.writId,
  };
}

async function pollTooFast(ctx: Ctx, id: string, now = new Date()): Promise<PollPace> {
  checkDate("now", now);
  let tooFast = false;
  const polled = await ctx.rows.recordPoll(id, now, ({ pollInterval, lastPolledAt }) => {
    tooFast = lastPolledAt !== undefined && now.getTime() - lastPolledAt.getTime() < pollInterval * 1000;
    return tooFast ? pollInterval + 5 : pollInterval;
  });
  if (polled === undefined) throw notFound(id);
  return { tooFast, pollInterval: polled.pollInterval };
}

async function consume(
  ctx: Ctx,
  id: string,
  writId: string,
  opts: { binding?: string; now?: Date } = {},
): Promise<ApprovalRequest> {
  const now = opts.now ?? new Date();
  checkDate("now", now);
  checkText("writId", writId);
  const loaded = await ctx.rows.load(id);
  if (loaded === undefined) throw notFound(id);
  const before = fromRows(loaded);
  if (opts.binding !== undefined && (opts.binding !== before.binding || !intact(before)))
    throw bindingRefusal(id);
  if (await ctx.rows.consume(id, writId, now)) {
    const consumed = fromRows((await ctx.rows.load(id))!);
    await ctx.audit("approval.consumed", { id, writId, binding: consumed.binding });
    return consumed;
  }
  // Nothing changed; say why. The status only moves forward, so reading it now gives the reason.
  const now_ = await ctx.rows.load(id);
  const current = now_ === undefined ? before : fromRows(now_);
  if (current.status === "pending" && current.expiresAt.getTime() > now.getTime())
    throw new WritError(ERR_APPROVAL_NOT_APPROVED, `approval request ${q(id)} is still pending`);
  if (current.status === "expired" || current.expiresAt.getTime() <= now.getTime()) {
    if (await ctx.rows.expire(id, now)) await ctx.audit("approval.expired", { id });
    throw expiredError(current);
  }
  throw closedError(current);
}

export function approvalService(
  store: Pick<Store, "approvals">,
  options: ApprovalServiceOptions = {},
): ApprovalService {
  const ctx: Ctx = {
    rows: store.approvals,
    audit: async (type, data) => {
      if (options.audit !== undefined) await options.audit.append(type, data);
    },
  };
  return {
    createRequest: (input, opts) => createRequest(ctx, input, opts),
    get: async (id) => {
      const rows = await ctx.rows.load(id);
      return rows === undefined ? undefined : fromRows(rows);
    },
    decide: (id, input, opts) => decide(ctx, id, input, opts),
    status: (id, opts) => status(ctx, id, opts),
    pollTooFast: (id, now) => pollTooFast(ctx, id, now),
    consume: (id, writId, opts) => consume(ctx, id, writId, opts),
    listPending: async (opts = {}) => {
      const now = opts.now ?? new Date();
      checkDate("now", now);
      return (await ctx.rows.listPending({ now, environment: opts.environment })).map(fromRows);
    },
  };
}
