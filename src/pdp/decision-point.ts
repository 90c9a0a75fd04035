/**
 * The decision point: the core decision first, then the guardrails.
 *
 * If the core denies, that is the answer — nothing in Cedar can allow what the core denied. If the
 * core allows and there are guardrails, Cedar is asked: a satisfied forbid denies with
 * `guardrail_forbid` naming the policy; any evaluation error denies with `guardrail_error` (fail
 * closed). When both happen, the forbid is reported and the errors ride along as reasons.
 *
 * Shadow mode (docs/shadow.md): the outcome is the decision with every shadow rule removed — the
 * core leaves a shadow ceiling out, and only the enforcing guardrails' policy set is asked. What the
 * shadow rules would have denied is computed apart (the core's ceiling records, the shadow policy
 * set asked on its own) and added as `shadow` records, which nothing reads to decide.
 */

import { formatProblem } from "../config/index.js";
import {
  type ActiveWrit,
  type Decision,
  decide,
  q,
  type Reason,
  type RegionRequest,
  type RegionView,
  regionView,
  type ShadowRecord,
  shadowRuleId,
  type Vocabulary,
  type WritConfig,
  WritError,
  type WritSet,
  withShadow,
} from "../core/index.js";
import { compileGuardrails } from "./compile.js";
import type { CompiledGuardrails } from "./guardrails.js";
import type { PdpRequest } from "./request.js";

/** An agent's active writs: a list (scanned in order), or an indexed set (`WritIndex`). */
export type Writs = readonly ActiveWrit[] | WritSet;

/** Where active writs come from: the writ index over the store (`writ serve`); a list, in tests. */
export type WritSource = Writs | ((agent: string) => Promise<Writs> | Writs);

/** Decisions the core reached on its rules: the shadow guardrails are asked about these only. */
const JUDGED: ReadonlySet<Decision["code"]> = new Set([
  "allowed",
  "explicit_deny",
  "no_grant",
  "outside_ceiling",
]);

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
    const { shadow, ...judged } = core;
    const guarded = judged.allowed ? this.#guarded(judged, req) : judged;
    return withShadow(guarded, [...(shadow ?? []), ...this.#shadowGuardrails(core, req)]);
  }

  /**
   * What the rules say of every resource a glob can name (core/region.ts). Guardrails cannot be
   * asked about a region: with enforcing guardrails, nothing is `granted` on a region.
   */
  async region(req: RegionRequest): Promise<RegionView> {
    const source = this.#writs;
    const writs = typeof source === "function" ? await source(req.agent) : source;
    const view = regionView(this.config, writs, req, this.vocab);
    return this.guardrails === undefined ? view : { denies: view.denies, granted: false };
  }

  /** What the shadow guardrails would deny, for a request the core judged on its rules. */
  #shadowGuardrails(core: Decision, req: PdpRequest): readonly ShadowRecord[] {
    if (this.guardrails?.shadowSetId === undefined || !JUDGED.has(core.code)) return [];
    const outcome = this.guardrails.evaluateShadow(req);
    if (outcome.kind === "pass") return [];
    const out: ShadowRecord[] = [];
    if (outcome.kind === "forbid") {
      for (const policy of outcome.policies) {
        out.push({
          rule: shadowRuleId.guardrail(policy),
          kind: "guardrail",
          reason: "guardrail_forbid",
          message: `${q(req.action)} on ${q(req.resource)} would be forbidden by guardrail ${q(policy)}`,
        });
      }
    }
    for (const message of outcome.errors) {
      out.push({
        rule: shadowRuleId.guardrail("error"),
        kind: "guardrail",
        reason: "guardrail_error",
        message: `a shadow guardrail failed to evaluate: ${message}`,
      });
    }
    return out;
  }

  /** The core's decision, then the enforcing guardrails when it allowed. */
  #guarded(core: Decision, req: PdpRequest): Decision {
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
