/**
 * `writ approve`, `writ deny` and `writ approvals list`: decide approval requests from a terminal.
 *
 *   writ approve ID --as APPROVER [--reason TEXT] [--config FILE] [--data DIR] [--json]
 *   writ deny ID --as APPROVER --reason TEXT [--config FILE] [--data DIR] [--json]
 *   writ approvals list [--env E] [--config FILE] [--data DIR] [--json]
 *
 * The policy, the groups and the agent's owner come from writ.yaml (`--config`); the request and
 * its decisions from the store (the embedded one in `<DIR>/pg`, or PostgreSQL when the composition
 * root passes a database URL). These verbs never create or migrate a database. Each decision, and
 * each refused attempt, is appended to the audit log (without a checkpoint: `writ serve` signs
 * those).
 *
 * Trust: `--as` is not authenticated. Whoever can reach the store can already write to it, so the
 * CLI is for operators who hold that access; approvers without it use the authenticated HTTP
 * approvals API of `writ serve`. With the embedded store, the data folder is locked while
 * `writ serve` runs: the verbs then ask that server over its admin API (operator.ts), whose token
 * only readers of the data folder have.
 *
 * Exit codes: 0 decided or listed, 1 refused (self-approval, not an approver, expired, closed,
 * duplicate, unknown request…), 2 usage or input error, 3 the store failed.
 */
import type { Command } from "commander";
import { canonicalJson } from "../audit/index.js";
import { type ApprovalRequest, ERR_APPROVAL_INVALID, evaluateRequest } from "../broker/approvals.js";
import {
  type ApprovalEvaluation,
  type ApprovalVerdict,
  isWritError,
  q,
  type WritConfig,
} from "../core/index.js";
import { withToolApprovals } from "../gateway/holds.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { withOperator } from "./operator.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

/** What the composition root passes: defaults read from the environment there. */
export interface ApproveCliDefaults {
  /** The data folder when `--data` is not given (main.ts: `WRIT_DATA_DIR`, else `.writ`). */
  readonly dataDir?: string | undefined;
  /** PostgreSQL instead of the embedded store (main.ts: `WRIT_DATABASE_URL`). */
  readonly databaseUrl?: string | undefined;
  /** Who decides when `--as` is not given (main.ts: `WRIT_APPROVER`). */
  readonly approver?: string | undefined;
}

export interface DecideCliOptions {
  readonly config: string;
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly as?: string | undefined;
  readonly reason?: string | undefined;
  readonly json: boolean;
}

export interface ListCliOptions {
  readonly config: string;
  readonly data: string;
  readonly databaseUrl?: string | undefined;
  readonly env?: string | undefined;
  readonly json: boolean;
}

const TRUST_NOTE = `
Trust: --as is not authenticated. The CLI trusts whoever can reach the store (they could write to it
anyway); approvers without that access use the authenticated HTTP approvals API of \`writ serve\`.
While \`writ serve\` holds the embedded store, these verbs ask it (its admin API, token in the data folder).`;

/** Maps what the library throws to the CLI's exit codes. */
function asFailure(err: unknown): unknown {
  if (isWritError(err, ERR_APPROVAL_INVALID)) return new CliFailure(err.code, err.message, EXIT.usage);
  if (isWritError(err) && err.code.startsWith("ERR_APPROVAL"))
    return new CliFailure(err.code, err.message, EXIT.no);
  return err;
}

function subject(r: ApprovalRequest): string {
  const ticket = r.ticket === undefined ? "no ticket" : `ticket ${r.ticket}`;
  const audience = r.audience === undefined ? "" : `, for ${r.audience}`;
  return `${r.agent}: ${r.playbook} in ${r.environment} ${canonicalJson(r.params)}, ${ticket}${audience}`;
}

function requestJson(r: ApprovalRequest, evaluation: ApprovalEvaluation | undefined, problem?: string) {
  return {
    id: r.id,
    agent: r.agent,
    playbook: r.playbook,
    environment: r.environment,
    params: r.params,
    ticket: r.ticket ?? null,
    audience: r.audience ?? null,
    requester: r.requester,
    status: r.status,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    binding: r.binding,
    decisions: r.decisions.map((d) => ({
      approver: d.approver,
      decision: d.decision,
      reason: d.reason ?? null,
      at: d.at.toISOString(),
    })),
    missing: evaluation?.missing ?? null,
    needs: evaluation?.needs ?? null,
    counted: evaluation?.counted ?? [],
    ...(problem !== undefined ? { problem } : {}),
  };
}

export async function decideCli(
  id: string,
  decision: ApprovalVerdict,
  opts: DecideCliOptions,
  io: Io,
  defaults: ApproveCliDefaults = {},
): Promise<number> {
  const approver = opts.as ?? defaults.approver;
  if (approver === undefined || approver.trim() === "") {
    throw new CliFailure("ERR_USAGE", "who decides? pass `--as APPROVER` or set WRIT_APPROVER", EXIT.usage);
  }
  if (decision === "deny" && (opts.reason === undefined || opts.reason.trim() === "")) {
    throw new CliFailure("ERR_USAGE", "deny needs `--reason TEXT`", EXIT.usage);
  }
  const policy = await requirePolicy(opts.config, io, opts.json);
  return withOperator(opts, policy.config, { mapError: asFailure }, async (ops) => {
    const { request, evaluation } = await ops.decideApproval(id, { approver, decision, reason: opts.reason });
    const who = request.decisions.at(-1)?.approver ?? approver;
    emit(
      io,
      opts.json,
      { decision, approver: who, ...requestJson(request, evaluation), deniedBy: evaluation.deniedBy ?? [] },
      () => {
        const verb = decision === "approve" ? "approved" : "denied";
        const state =
          request.status === "pending"
            ? `still pending: ${evaluation.missing}`
            : request.status === "approved"
              ? `now approved (${evaluation.counted.map((c) => `${c.approver} for ${q(c.group)}`).join(", ")})`
              : `now ${request.status}`;
        return `${verb} ${q(request.id)} as ${who}: ${subject(request)}: ${state}`;
      },
    );
    return EXIT.ok;
  });
}

function describeMissing(
  config: WritConfig,
  r: ApprovalRequest,
): { evaluation?: ApprovalEvaluation; problem?: string } {
  try {
    return { evaluation: evaluateRequest(config, r) };
  } catch (err) {
    if (isWritError(err) || err instanceof TypeError) return { problem: err.message };
    throw err;
  }
}

export async function listApprovalsCli(opts: ListCliOptions, io: Io): Promise<number> {
  const policy = await requirePolicy(opts.config, io, opts.json);
  return withOperator(opts, policy.config, { mapError: asFailure }, async (ops) => {
    const pending = await ops.pendingApprovals(opts.env);
    const config = withToolApprovals(policy.config); // held tool calls: their tool's policy
    const rows = pending.map((r) => ({ request: r, ...describeMissing(config, r) }));
    emit(
      io,
      opts.json,
      { requests: rows.map((row) => requestJson(row.request, row.evaluation, row.problem)) },
      () => {
        if (rows.length === 0) {
          return `no pending approval requests${opts.env === undefined ? "" : ` in ${q(opts.env)}`}`;
        }
        return rows
          .map(({ request: r, evaluation, problem }) => {
            const approvedBy = r.decisions.filter((d) => d.decision === "approve").map((d) => d.approver);
            const missing = problem ?? evaluation?.missing ?? "nothing";
            return [
              `${r.id}  ${r.status}  expires ${r.expiresAt.toISOString()}`,
              `  ${subject(r)}`,
              `  requested by ${r.requester}; approved so far: ${approvedBy.length === 0 ? "nobody" : approvedBy.join(", ")}`,
              `  missing: ${missing}`,
            ].join("\n");
          })
          .join("\n");
      },
    );
    return EXIT.ok;
  });
}

function decideCommand(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: ApproveCliDefaults,
  decision: ApprovalVerdict,
): Command {
  const deny = decision === "deny";
  const command = program
    .command(`${decision} <id>`)
    .description(
      deny
        ? "deny an approval request: one member's deny settles it (with a reason)"
        : "approve an approval request; the policy says whether more approvals are needed",
    )
    .option("--as <approver>", "who decides (default: WRIT_APPROVER)")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--data <dir>", "the data folder", defaults.dataDir ?? ".writ")
    .option("--json", "print JSON", false)
    .addHelpText("after", TRUST_NOTE);
  if (deny) command.requiredOption("--reason <text>", "why (recorded and audited)");
  else command.option("--reason <text>", "why (recorded and audited)");
  return command.action(async (id: string, o: Omit<DecideCliOptions, "databaseUrl">) =>
    setExit(await decideCli(id, decision, { ...o, databaseUrl: defaults.databaseUrl }, io, defaults)),
  );
}

export function registerApprove(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: ApproveCliDefaults = {},
): Command {
  return decideCommand(program, io, setExit, defaults, "approve");
}

export function registerDeny(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: ApproveCliDefaults = {},
): Command {
  return decideCommand(program, io, setExit, defaults, "deny");
}

export function registerApprovals(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  defaults: ApproveCliDefaults = {},
): Command {
  const approvals = program.command("approvals").description("approval requests waiting for a decision");
  approvals
    .command("list")
    .addHelpText("after", TRUST_NOTE)
    .description(
      "pending requests: agent, playbook, parameters, ticket, requester, expiry and what is missing",
    )
    .option("--env <environment>", "only this environment")
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--data <dir>", "the data folder", defaults.dataDir ?? ".writ")
    .option("--json", "print JSON", false)
    .action(async (o: Omit<ListCliOptions, "databaseUrl">) =>
      setExit(await listApprovalsCli({ ...o, databaseUrl: defaults.databaseUrl }, io)),
    );
  return approvals;
}
