/**
 * The decision point: the core decision first, then the guardrails.
 *
 * If the core denies, that is the answer — nothing in Cedar can allow what the core denied. If the
 * core allows and there are guardrails, Cedar is asked: a satisfied forbid denies with
 * `guardrail_forbid` naming the policy; any evaluation error denies with `guardrail_error` (fail
 * closed). When both happen, the forbid is reported and the errors ride along as reasons.
 */

import { formatProblem } from "../config/index.js";
import {
  type ActiveWrit,
  type Decision,
  decide,
  q,
  type Reason,
  type Vocabulary,
  type WritConfig,
  WritError,
  type WritSet,
} from "../core/index.js";
import { compileGuardrails } from "./compile.js";
import type { CompiledGuardrails } from "./guardrails.js";
import type { PdpRequest } from "./request.js";

/** An agent's active writs: a list (scanned in order), or an indexed set (`WritIndex`). */
export type Writs = readonly ActiveWrit[] | WritSet;

/** Where active writs come from: the writ index over the store (`writ serve`); a list, in tests. */
export type WritSource = Writs | ((agent: string) => Promise<Writs> | Writs);

export interface DecisionPointOptions {
  readonly vocab?: Vocabulary;
  /**
   * Compiled guardrails. When omitted and the config has guardrails, they are compiled here, and a
   * guardrail error throws `ERR_CEDAR_GUARDRAILS` (load-time checks belong to the config's edge).
   */
  readonly guardrails?: CompiledGuardrails | undefined;
  readonly writs?: WritSource;
}

export class DecisionPoint {
  readonly config: WritConfig;
  readonly vocab: Vocabulary;
  readonly guardrails: CompiledGuardrails | undefined;
  readonly #writs: WritSource;

  constructor(config: WritConfig, opts: DecisionPointOptions = {}) {
    this.config = config;
    this.vocab = opts.vocab ?? {};
    this.#writs = opts.writs ?? [];
    if (opts.guardrails !== undefined || !config.guardrails) {
      this.guardrails = opts.guardrails;
    } else {
      const { problems, guardrails } = compileGuardrails(config, { vocab: this.vocab });
      const first = problems.find((p) => p.severity === "error");
      if (first) throw new WritError("ERR_CEDAR_GUARDRAILS", `guardrails: ${formatProblem(first)}`);
      this.guardrails = guardrails;
    }
  }

  /** Decides with the writs from the configured source. */
  async decide(req: PdpRequest): Promise<Decision> {
    const source = this.#writs;
    const writs = typeof source === "function" ? await source(req.agent) : source;
    return this.decideWith(req, writs);
  }

  /** Decides with explicit active writs. Synchronous and pure but for Cedar's cache. */
  decideWith(req: PdpRequest, writs: Writs): Decision {
    const core = decide(this.config, writs, req, this.vocab);
    if (!core.allowed || !this.guardrails) return core;
    const outcome = this.guardrails.evaluate(req);
    if (outcome.kind === "pass") return core;
    const errors: Reason[] = [];
    for (const message of outcome.errors) errors.push({ kind: "error", message });
    if (outcome.kind === "forbid") {
      const forbids: Reason[] = [];
      for (const policy of outcome.policies) forbids.push({ kind: "guardrail", policy, effect: "forbid" });
      return {
        kind: "decision",
        allowed: false,
        code: "guardrail_forbid",
        message: `${q(req.action)} on ${q(req.resource)} is forbidden by guardrail ${q(outcome.policies[0])}`,
        reasons: [...forbids, ...errors, ...core.reasons],
      };
    }
    return {
      kind: "decision",
      allowed: false,
      code: "guardrail_error",
      message: `${q(req.action)} on ${q(req.resource)} is denied: a guardrail failed to evaluate: ${outcome.errors[0]}`,
      reasons: [...errors, ...core.reasons],
    };
  }
}
