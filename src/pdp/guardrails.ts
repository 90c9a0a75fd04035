/**
 * Compiled guardrails: the forbid policies, pre-parsed once into Cedar's cache, and everything a
 * decision needs to ask Cedar about one request (entities, context) without further parsing.
 *
 * Evaluation runs only after the core has allowed a request. Cedar sees the guardrails plus one
 * implicit `permit(principal, action, resource)`, so the answer is deny exactly when a forbid holds.
 * Any error — a policy that fails to evaluate, a request Cedar refuses, an exception — is reported as
 * such, and the decision point denies on it.
 */
import {
  type Agent,
  localTime,
  parseRequestAction,
  q,
  type RuleMode,
  type Vocabulary,
  WEEKDAYS,
  type WritConfig,
  WritError,
} from "../core/index.js";
import { actionKey, actionParents, canonicalAction } from "./actions.js";
import {
  type CedarValueJson,
  cedar,
  type EntityJson,
  type EntityUidJson,
  type SchemaJson,
  type StatefulAuthorizationCall,
} from "./cedar.js";
import type { ActionScopes, Reads } from "./reads.js";
import type { PdpRequest } from "./request.js";
import { type ActionTable, NAMESPACE } from "./schema.js";

/** The id of the implicit permit-all policy. */
export const PERMIT_ALL = "writ:permit-all";

export interface GuardrailPolicy {
  readonly kind: "guardrail-policy";
  /** From `@id("...")`, else `file:line`. */
  readonly id: string;
  readonly effect: "forbid";
  /** `shadow`: in the shadow set, asked apart; never in the set that decides. */
  readonly mode: RuleMode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly text: string;
}

export type GuardrailOutcome =
  | { readonly kind: "pass" }
  | { readonly kind: "forbid"; readonly policies: readonly string[]; readonly errors: readonly string[] }
  | { readonly kind: "error"; readonly errors: readonly string[] };

const AGENT = `${NAMESPACE}::Agent`;
const ACTION = `${NAMESPACE}::Action`;
/** The type of action entities, as policies name it. */
export const ACTION_TYPE = ACTION;
const RESOURCE = `${NAMESPACE}::Resource`;
const MAX_DEPTH = 32;
const ACTION_CACHE = 4096;

/** Tool arguments as a Cedar value: integers stay Longs, other numbers become strings, nulls go. */
export function toCedarValue(value: unknown, depth = 0): CedarValueJson | undefined {
  if (depth > MAX_DEPTH)
    throw new WritError("ERR_GUARDRAIL_INPUT", `arguments nest deeper than ${MAX_DEPTH} levels`);
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isSafeInteger(value) ? value : String(value);
    case "object": {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        const out: CedarValueJson[] = [];
        for (const v of value) {
          const c = toCedarValue(v, depth + 1);
          if (c !== undefined) out.push(c);
        }
        return out;
      }
      const out: Record<string, CedarValueJson> = {};
      for (const [k, v] of Object.entries(value)) {
        // Cedar reads these keys as entity references and extension calls: never from callers
        if (k === "__entity" || k === "__extn" || k === "__expr") continue;
        const c = toCedarValue(v, depth + 1);
        if (c !== undefined) out[k] = c;
      }
      return out;
    }
    default:
      return undefined;
  }
}

function weekday(i: number): string {
  return WEEKDAYS[i] ?? "sun";
}

interface LocalClock {
  minute: number;
  value: Record<string, CedarValueJson>;
}

/** Wall-clock time in a zone changes only with the minute (zone offsets are whole minutes). */
function localRecord(
  now: Date,
  timezone: string,
  cache: Map<string, LocalClock>,
): Record<string, CedarValueJson> {
  const minute = Math.floor(now.getTime() / 60_000);
  const hit = cache.get(timezone);
  if (hit && hit.minute === minute) return hit.value;
  const local = localTime(now, timezone);
  const value = {
    timezone,
    hour: Math.floor(local.minute / 60),
    minute: local.minute % 60,
    weekday: weekday(local.weekday),
  };
  cache.set(timezone, { minute, value });
  return value;
}

function timeRecord(
  now: Date,
  timezone: string,
  cache: Map<string, LocalClock>,
): Record<string, CedarValueJson> {
  const ms = now.getTime();
  if (!Number.isFinite(ms))
    throw new WritError("ERR_GUARDRAIL_INPUT", "the request time is not a valid date");
  return {
    unix: Math.floor(ms / 1000),
    iso: now.toISOString(),
    hour: now.getUTCHours(),
    minute: now.getUTCMinutes(),
    weekday: weekday(now.getUTCDay()),
    local: localRecord(now, timezone, cache),
  };
}

function only(
  attrs: Record<string, CedarValueJson>,
  read: ReadonlySet<string>,
): Record<string, CedarValueJson> {
  return Object.fromEntries(Object.entries(attrs).filter(([k]) => read.has(k)));
}

function agentEntity(agent: Agent, read: ReadonlySet<string>): EntityJson {
  const attrs = {
    owner: agent.owner,
    purpose: agent.purpose,
    runnerClass: agent.runnerClass,
    environments: [...agent.environments],
  };
  return { uid: { type: AGENT, id: agent.id }, attrs: only(attrs, read), parents: [] };
}

interface ActionEntity {
  /** The action's id and its parents' ids, as Cedar is given them. */
  readonly id: string;
  readonly parentIds: readonly string[];
  readonly uid: EntityUidJson;
  readonly entity: EntityJson;
  readonly provider: string;
  readonly service: string;
}

export class CompiledGuardrails {
  readonly kind = "compiled-guardrails";
  /** The id of the pre-parsed policy set in Cedar's cache: the enforcing policies. */
  readonly policySetId: string;
  /** The shadow policies' own set, when there are any (docs/shadow.md). */
  readonly shadowSetId: string | undefined;
  readonly policies: readonly GuardrailPolicy[];
  /** The schema the policies were validated against. */
  readonly schema: SchemaJson<string>;
  readonly #table: ActionTable;
  readonly #vocab: Vocabulary;
  readonly #agents = new Map<string, EntityJson>();
  readonly #zones = new Map<string, string>();
  readonly #actions = new Map<string, ActionEntity>();
  readonly #clock = new Map<string, LocalClock>();
  readonly #reads: Reads;
  readonly #scopes: ActionScopes;
  /** Some policy enforces (else the set that decides is the permit-all alone). */
  readonly #enforcing: boolean;

  /** @internal Use `compileGuardrails`, which checks and pre-parses the policies. */
  constructor(init: {
    config: WritConfig;
    policySetId: string;
    shadowSetId?: string | undefined;
    policies: readonly GuardrailPolicy[];
    schema: SchemaJson<string>;
    table: ActionTable;
    vocab: Vocabulary;
    reads: Reads;
    /** The actions the policies can apply to (default: any). */
    scopes?: ActionScopes | undefined;
  }) {
    this.#scopes = init.scopes ?? { any: true, equal: new Set(), within: new Set() };
    this.policySetId = init.policySetId;
    this.shadowSetId = init.shadowSetId;
    this.#enforcing = init.policies.some((p) => p.mode !== "shadow");
    this.policies = init.policies;
    this.schema = init.schema;
    this.#table = init.table;
    this.#vocab = init.vocab;
    this.#reads = init.reads;
    for (const agent of init.config.agents.values()) {
      this.#agents.set(agent.id, agentEntity(agent, init.reads.attrs));
    }
    for (const env of init.config.environments.values()) {
      this.#zones.set(env.id, env.changeWindows[0]?.timezone ?? "UTC");
    }
  }

  #action(text: string): ActionEntity {
    const cached = this.#actions.get(text);
    if (cached) return cached;
    const a = parseRequestAction(text);
    const spell = (id: string) => this.#table.ids.get(actionKey(id)) ?? id;
    const id = spell(canonicalAction(a, this.#vocab));
    const uid = { type: ACTION, id };
    const parents = actionParents(a);
    const parentIds = parents.map(spell);
    const entity = { uid, attrs: {}, parents: parentIds.map((p) => ({ type: ACTION, id: p })) };
    // the service as the service group spells it: `aws:s3` → `s3`
    const made = {
      id,
      parentIds,
      uid,
      entity,
      provider: a.provider,
      service: parents[0]!.slice(a.provider.length + 1),
    };
    if (this.#actions.size >= ACTION_CACHE) this.#actions.clear();
    this.#actions.set(text, made);
    return made;
  }

  /** The exact Cedar call a decision makes for a request (for diagnostics and benchmarks). */
  cedarCall(req: PdpRequest, policySetId = this.policySetId): StatefulAuthorizationCall {
    const principal = this.#agents.get(req.agent);
    if (!principal) throw new WritError("ERR_GUARDRAIL_INPUT", `agent ${q(req.agent)} is not declared`);
    const action = this.#action(req.action);
    const resourceUid = { type: RESOURCE, id: req.resource };
    const read = this.#reads.attrs;
    const resourceAttrs: Record<string, CedarValueJson> = {};
    if (read.has("provider")) resourceAttrs.provider = action.provider;
    if (read.has("service")) resourceAttrs.service = action.service;
    if (read.has("id")) resourceAttrs.id = req.resource;
    return {
      principal: principal.uid,
      action: action.uid,
      resource: resourceUid,
      context: this.#context(req),
      preparsedPolicySetId: policySetId,
      entities: [principal, action.entity, { uid: resourceUid, attrs: resourceAttrs, parents: [] }],
    };
  }

  #context(req: PdpRequest): Record<string, CedarValueJson> {
    const wanted = this.#reads.context;
    const wants = (key: string) => wanted === "all" || wanted.has(key);
    const ctx = req.context ?? {};
    const context: Record<string, CedarValueJson> = {};
    if (wants("environment")) context.environment = req.environment;
    if (wants("time")) {
      context.time = timeRecord(req.now, this.#zones.get(req.environment) ?? "UTC", this.#clock);
    }
    if (wants("tainted")) context.tainted = ctx.tainted === true;
    if (wants("arguments")) context.arguments = toCedarValue(ctx.arguments ?? {}) ?? {};
    if (wants("ticket") && ctx.ticket !== undefined) context.ticket = ctx.ticket;
    if (wants("writId") && ctx.writId !== undefined) context.writId = ctx.writId;
    if (wants("promptContextId") && ctx.promptContextId !== undefined) {
      context.promptContextId = ctx.promptContextId;
    }
    return context;
  }

  /**
   * Throws what building the Cedar call would throw, without building it (a request no policy can
   * apply to still fails closed on them): an undeclared agent, a time that is not a date, arguments
   * nested too deep — each only where the call would read it.
   */
  #checkInputs(req: PdpRequest): void {
    if (!this.#agents.has(req.agent)) {
      throw new WritError("ERR_GUARDRAIL_INPUT", `agent ${q(req.agent)} is not declared`);
    }
    const wanted = this.#reads.context;
    const wants = (key: string) => wanted === "all" || wanted.has(key);
    if (wants("time") && !Number.isFinite(req.now.getTime())) {
      throw new WritError("ERR_GUARDRAIL_INPUT", "the request time is not a valid date");
    }
    const args = req.context?.arguments;
    if (args !== undefined && wants("arguments")) toCedarValue(args);
  }

  /** Can any policy's scope match this action (the entity Cedar would be given)? */
  #mayApply(action: ActionEntity): boolean {
    const s = this.#scopes;
    if (s.any) return true;
    return s.equal.has(action.id) || s.within.has(action.id) || action.parentIds.some((p) => s.within.has(p));
  }

  /**
   * Asks Cedar, unless no policy's action scope can match the request's action (then no policy can
   * forbid it, and none would be evaluated). Never throws: a failure is an `error` outcome.
   */
  evaluate(req: PdpRequest): GuardrailOutcome {
    // every policy in shadow mode: the enforcing set is the permit-all alone, nothing to ask
    return this.#enforcing ? this.#ask(req, this.policySetId) : { kind: "pass" };
  }

  /** The shadow policies' outcome: what they would decide, asked apart (pass when there are none). */
  evaluateShadow(req: PdpRequest): GuardrailOutcome {
    return this.shadowSetId === undefined ? { kind: "pass" } : this.#ask(req, this.shadowSetId);
  }

  #ask(req: PdpRequest, policySetId: string): GuardrailOutcome {
    let answer: ReturnType<typeof cedar.statefulIsAuthorized>;
    try {
      // the scope first: a request no policy can apply to costs no entities, context or call
      if (!this.#mayApply(this.#action(req.action))) {
        this.#checkInputs(req);
        return { kind: "pass" };
      }
      answer = cedar.statefulIsAuthorized(this.cedarCall(req, policySetId));
    } catch (err) {
      return { kind: "error", errors: [err instanceof Error ? err.message : String(err)] };
    }
    if (answer.type === "failure") {
      const errors = answer.errors.map((e) => e.message);
      return { kind: "error", errors: errors.length > 0 ? errors : ["cedar refused the request"] };
    }
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `policy ${q(e.policyId)}: ${e.error.message}`);
    const forbids = diagnostics.reason.filter((id) => id !== PERMIT_ALL);
    if (decision === "deny" && forbids.length > 0) return { kind: "forbid", policies: forbids, errors };
    if (errors.length > 0) return { kind: "error", errors };
    if (decision !== "allow") return { kind: "error", errors: ["cedar denied without naming a policy"] };
    return { kind: "pass" };
  }
}
