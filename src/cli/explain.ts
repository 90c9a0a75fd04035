/** `writ explain`: one decision with its reasons, optionally as if a playbook's writ were active. */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { Command } from "commander";
import { decisionPoint } from "../app.js";
import { checkDelegation, type DelegationVerdict } from "../broker/index.js";
import {
  type ActiveWrit,
  compileRule,
  type Decision,
  type Grant,
  instantiateWrit,
  isWritError,
  q,
  type Reason,
  ruleToString,
} from "../core/index.js";
import type { PdpContext } from "../pdp/index.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

export interface ExplainOptions {
  readonly config: string;
  readonly agent: string;
  readonly action: string;
  readonly resource: string;
  readonly env?: string;
  readonly at?: string;
  readonly withWrit?: string;
  readonly param: string[];
  readonly params?: string;
  readonly writ?: string;
  readonly context?: string;
  readonly delegate?: string;
  readonly json: boolean;
}

const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true });

function parseParams(o: ExplainOptions): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (o.params !== undefined) {
    try {
      const parsed: unknown = JSON.parse(o.params);
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      params = parsed as Record<string, unknown>;
    } catch (e) {
      throw new CliFailure("ERR_USAGE", `--params: expected a JSON object: ${(e as Error).message}`);
    }
  }
  for (const kv of o.param) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new CliFailure("ERR_USAGE", `--param ${q(kv)}: expected \`name=value\``);
    params[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return params;
}

const CONTEXT_KEYS = ["ticket", "writId", "tainted", "arguments", "promptContextId"];

function parseContext(text: string | undefined): PdpContext | undefined {
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CliFailure("ERR_USAGE", `--context: expected a JSON object: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw new CliFailure("ERR_USAGE", "--context: expected a JSON object");
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !CONTEXT_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new CliFailure(
      "ERR_USAGE",
      `--context: unknown key ${q(unknown[0])}: expected ${CONTEXT_KEYS.join(", ")}`,
    );
  }
  const str = (k: string) => {
    if (o[k] !== undefined && typeof o[k] !== "string")
      throw new CliFailure("ERR_USAGE", `--context: \`${k}\` must be a string`);
    return o[k] as string | undefined;
  };
  if (o.tainted !== undefined && typeof o.tainted !== "boolean")
    throw new CliFailure("ERR_USAGE", "--context: `tainted` must be true or false");
  if (
    o.arguments !== undefined &&
    (!o.arguments || typeof o.arguments !== "object" || Array.isArray(o.arguments))
  ) {
    throw new CliFailure("ERR_USAGE", "--context: `arguments` must be an object");
  }
  return {
    ticket: str("ticket"),
    writId: str("writId"),
    promptContextId: str("promptContextId"),
    tainted: o.tainted as boolean | undefined,
    arguments: o.arguments as Record<string, unknown> | undefined,
  };
}

function parseDate(v: unknown, what: string, fallback: Date): Date {
  if (v === undefined) return fallback;
  const d = new Date(String(v));
  if (Number.isNaN(d.getTime()))
    throw new CliFailure("ERR_USAGE", `--writ: ${what} ${q(v)} is not an ISO 8601 time`);
  return d;
}

/** An issued writ as JSON: `{"playbook":"p","grants":[{"action":"…","resource":"…"}],"expiresAt":"…"}`. */
function parseWrit(text: string, agent: string, env: string, at: Date): ActiveWrit {
  let raw: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
    raw = parsed as Record<string, unknown>;
  } catch (e) {
    throw new CliFailure("ERR_USAGE", `--writ: expected a JSON object: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw.grants) || raw.grants.length === 0) {
    throw new CliFailure("ERR_USAGE", "--writ: needs a non-empty `grants` list of {action, resource}");
  }
  const grants: Grant[] = raw.grants.map((g: unknown, i: number) => {
    const o = g as { action?: unknown; resource?: unknown };
    if (!o || typeof o.action !== "string" || (o.resource !== undefined && typeof o.resource !== "string")) {
      throw new CliFailure("ERR_USAGE", `--writ: grants[${i}] needs a string \`action\` and \`resource\``);
    }
    try {
      return {
        kind: "grant",
        rule: compileRule({ action: o.action, resource: o.resource ?? "*" }),
        path: ["writ", "grants", i],
      };
    } catch (e) {
      if (isWritError(e)) throw new CliFailure(e.code, `--writ: grants[${i}]: ${e.message}`);
      throw e;
    }
  });
  const issuedAt = parseDate(raw.issuedAt, "issuedAt", at);
  const usesLeft = raw.usesLeft;
  if (
    usesLeft !== undefined &&
    (typeof usesLeft !== "number" || !Number.isInteger(usesLeft) || usesLeft < 0)
  ) {
    throw new CliFailure("ERR_USAGE", "--writ: usesLeft must be a whole number");
  }
  return {
    kind: "writ",
    id: typeof raw.id === "string" ? raw.id : "what-if",
    agent: typeof raw.agent === "string" ? raw.agent : agent,
    playbook: typeof raw.playbook === "string" ? raw.playbook : "(none)",
    environment: typeof raw.environment === "string" ? raw.environment : env,
    grants,
    issuedAt,
    expiresAt: parseDate(raw.expiresAt, "expiresAt", new Date(issuedAt.getTime() + 15 * 60_000)),
    usesLeft: usesLeft as number | undefined,
    revoked: raw.revoked === true,
  };
}

interface DelegateOptions {
  /** The sub-agent. */
  readonly to: string;
  /** What the child asks for (default: the parent's grants). */
  readonly grants?: { action: string; resource: string }[];
  /** The agents holding the writs above the parent, its parent's first (default: none, a root). */
  readonly above?: string[];
}

function parseDelegate(text: string): DelegateOptions {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CliFailure("ERR_USAGE", `--delegate: expected a JSON object: ${(e as Error).message}`);
  }
  const o = raw as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || Array.isArray(o) || typeof o.to !== "string") {
    throw new CliFailure(
      "ERR_USAGE",
      '--delegate: expected {"to": "<sub-agent>", "grants"?: […], "above"?: […]}',
    );
  }
  const grants = o.grants;
  if (
    grants !== undefined &&
    (!Array.isArray(grants) ||
      grants.some(
        (g) =>
          !g || typeof g.action !== "string" || (g.resource !== undefined && typeof g.resource !== "string"),
      ))
  ) {
    throw new CliFailure("ERR_USAGE", "--delegate: `grants` must be a list of {action, resource}");
  }
  const above = o.above;
  if (above !== undefined && (!Array.isArray(above) || above.some((a) => typeof a !== "string"))) {
    throw new CliFailure("ERR_USAGE", "--delegate: `above` must be a list of agent ids");
  }
  return {
    to: o.to,
    grants: (grants as { action: string; resource?: string }[] | undefined)?.map((g) => ({
      action: g.action,
      resource: g.resource ?? "*",
    })),
    above: above as string[] | undefined,
  };
}

/** The child writ `--delegate` asks for, as the broker would judge it; the parent is the one writ given. */
function delegated(
  o: ExplainOptions,
  config: Parameters<typeof checkDelegation>[0],
  writs: readonly ActiveWrit[],
  env: string,
): { verdict: DelegationVerdict; child?: ActiveWrit } {
  const d = parseDelegate(o.delegate!);
  const parent = writs[0];
  if (parent === undefined || writs.length !== 1) {
    throw new CliFailure(
      "ERR_USAGE",
      "--delegate: give the parent writ with exactly one of --with-writ or --writ",
    );
  }
  const verdict = checkDelegation(config, {
    holders: [o.agent, ...(d.above ?? [])],
    environment: env,
    parentGrants: parent.grants.map((g) => g.rule.text),
    actor: d.to,
    grants: d.grants,
  });
  if (!verdict.ok) return { verdict };
  const child: ActiveWrit = {
    ...parent,
    id: `${parent.id}:delegated`,
    agent: d.to,
    grants: verdict.grants.map((g, i) => ({
      kind: "grant",
      rule: compileRule(g),
      path: ["delegate", "grants", i],
    })),
  };
  return { verdict, child };
}

function delegationLines(v: DelegationVerdict, to: string): string {
  if (v.ok) return `DELEGATED to ${to} (depth ${v.depth}): ${v.grants.map(ruleToString).join(", ")}`;
  const excess = v.excess === undefined ? [] : v.excess.map((g) => `  excess    ${ruleToString(g)}`);
  return [`REFUSED delegation to ${to}`, `  ${v.reason}: ${v.message}`, ...excess].join("\n");
}

function reasonLine(r: Reason): string {
  switch (r.kind) {
    case "grant":
      return r.source === "baseline"
        ? `grant     baseline[${r.index}]: ${ruleToString(r.rule)}`
        : `grant     writ ${r.writ} (playbook ${r.playbook}) grants[${r.index}]: ${ruleToString(r.rule)}`;
    case "ceiling-allow":
      return `ceiling   ${r.runnerClass} allow[${r.index}]: ${ruleToString(r.rule)}`;
    case "deny":
      return `deny      ${r.source === "ceiling" ? `ceiling ${r.owner}` : `agent ${r.owner}`} deny[${r.index}]: ${ruleToString(r.rule)}`;
    case "writ-inactive":
      return `ignored   writ ${r.writ}: ${r.why}`;
    case "guardrail":
      return `guardrail ${r.policy}: ${r.effect}`;
    case "error":
      return `error     ${r.message}`;
  }
}

export function renderDecision(
  d: Decision,
  ctx: { agent: string; action: string; resource: string; env: string; at: Date },
): string {
  const lines = [
    `${d.allowed ? "ALLOW" : "DENY"}  ${ctx.action} on ${ctx.resource}`,
    `  agent ${ctx.agent} in ${ctx.env} at ${ctx.at.toISOString()}`,
    `  ${d.code}: ${d.message}`,
  ];
  if (d.reasons.length > 0) lines.push("  reasons:", ...d.reasons.map((r) => `    ${reasonLine(r)}`));
  if (d.shadow !== undefined && d.shadow.length > 0) {
    lines.push(
      "  would have denied (rules in shadow mode; not enforced):",
      ...d.shadow.map((s) => `    ${s.rule} [${s.reason}]: ${s.message}`),
    );
  }
  return lines.join("\n");
}

export async function explain(o: ExplainOptions, io: Io): Promise<number> {
  const at = o.at === undefined ? new Date() : new Date(o.at);
  if (Number.isNaN(at.getTime()))
    throw new CliFailure("ERR_USAGE", `--at ${q(o.at)}: expected an ISO 8601 time`);
  const context = parseContext(o.context);
  const policy = await requirePolicy(o.config, io, o.json);
  const { config } = policy;
  await policy.prepare(o.action);
  const agent = config.agents.get(o.agent);
  let env = o.env;
  if (env === undefined) {
    if (agent?.environments.length === 1) env = agent.environments[0]!;
    else {
      throw new CliFailure(
        "ERR_USAGE",
        agent
          ? `give --env: agent ${q(o.agent)} is registered in ${agent.environments.join(", ")}`
          : "give --env",
      );
    }
  }
  const writs: ActiveWrit[] = [];
  if (o.withWrit !== undefined) {
    const pb = config.playbooks.get(o.withWrit);
    if (!pb) throw new CliFailure("ERR_USAGE", `--with-writ: unknown playbook ${q(o.withWrit)}`);
    if (agent && !agent.playbooks.includes(pb.id)) {
      throw new CliFailure(
        "ERR_USAGE",
        `--with-writ: agent ${q(agent.id)} may not request playbook ${q(pb.id)}`,
      );
    }
    const params = parseParams(o);
    const validate = ajv.compile(pb.parameters);
    if (!validate(params)) {
      const why = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
      throw new CliFailure(
        "ERR_USAGE",
        `--with-writ ${pb.id}: parameters do not match the playbook's schema: ${why}`,
      );
    }
    const rc = agent ? config.runnerClasses.get(agent.runnerClass) : undefined;
    const ttl = Math.min(pb.ttlSeconds, rc?.ceiling.maxTtlSeconds ?? pb.ttlSeconds);
    try {
      writs.push(
        instantiateWrit(pb, params, {
          id: `what-if:${pb.id}`,
          agent: o.agent,
          environment: env,
          issuedAt: at,
          expiresAt: new Date(at.getTime() + ttl * 1000),
          usesLeft: pb.maxUses,
        }),
      );
    } catch (e) {
      if (isWritError(e)) throw new CliFailure(e.code, `--with-writ ${pb.id}: ${e.message}`);
      throw e;
    }
  }
  if (o.writ !== undefined) writs.push(parseWrit(o.writ, o.agent, env, at));
  let asAgent = o.agent;
  let delegation: DelegationVerdict | undefined;
  if (o.delegate !== undefined) {
    const { verdict, child } = delegated(o, config, writs, env);
    delegation = verdict;
    const to = verdict.ok ? verdict.actor.id : parseDelegate(o.delegate).to;
    if (child === undefined) {
      emit(io, o.json, { delegation: verdict }, () => delegationLines(verdict, to));
      return EXIT.no;
    }
    // the request is decided as the sub-agent holding the child
    asAgent = child.agent;
    writs.splice(0, writs.length, child);
  }
  const d = decisionPoint(policy).decideWith(
    { agent: asAgent, action: o.action, resource: o.resource, environment: env, now: at, context },
    writs,
  );
  const ctx = { agent: asAgent, action: o.action, resource: o.resource, env, at };
  const text = () =>
    delegation === undefined
      ? renderDecision(d, ctx)
      : `${delegationLines(delegation, asAgent)}\n${renderDecision(d, ctx)}`;
  emit(
    io,
    o.json,
    { ...d, request: { ...ctx, at: at.toISOString() }, ...(delegation ? { delegation } : {}) },
    text,
  );
  return d.allowed ? EXIT.ok : EXIT.no;
}

export function registerExplain(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("explain")
    .description("decide one request and show the rules that made the decision")
    .requiredOption("--agent <id>", "the agent asking")
    .requiredOption("--action <action>", "provider:service:action, e.g. aws:s3:GetObject")
    .requiredOption("--resource <resource>", "what it touches, e.g. arn:aws:s3:::reports/q3.csv")
    .option("--env <environment>", "the environment (default: the agent's only one)")
    .option("--at <time>", "decide as of this ISO 8601 time (default: now)")
    .option("--with-writ <playbook>", "as if the agent held a writ for this playbook")
    .option(
      "--param <name=value>",
      "a parameter of --with-writ (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--params <json>", "the parameters of --with-writ as a JSON object")
    .option(
      "--writ <json>",
      "as if this issued writ were held: {playbook, grants: [{action, resource}], expiresAt, …}",
    )
    .option(
      "--context <json>",
      "what the guardrails see: {ticket, writId, tainted, arguments, promptContextId}",
    )
    .option(
      "--delegate <json>",
      'as the broker would delegate that writ to a sub-agent: {"to": "<agent>", "grants"?: […], "above"?: […]}',
    )
    .option("-c, --config <file>", "the config file", DEFAULT_CONFIG)
    .option("--json", "print JSON", false)
    .action(async (o: ExplainOptions) => setExit(await explain(o, io)));
}
