/**
 * The composition root: the one place that puts the parts together (and, with src/cli/main.ts, the
 * only place that reads the environment).
 *
 *   loadPolicy  writ.yaml → config + compiled Cedar guardrails, every problem at once
 *   createApp   policy + store + audit log → the HTTP app `writ serve` listens with
 */
import {
  type ConfigProblem,
  collectAwsServices,
  type LoadableAwsCatalog,
  loadConfigFile,
} from "./config/index.js";
import type { Vocabulary, WritConfig } from "./core/index.js";
import { type CompiledGuardrails, compileGuardrails, DecisionPoint, type WritSource } from "./pdp/index.js";

export interface Policy {
  readonly file: string;
  readonly config: WritConfig;
  readonly vocab: Vocabulary;
  readonly guardrails: CompiledGuardrails | undefined;
  /**
   * Loads what the vocabulary needs to judge `action` (the AWS service's catalog). Call it before a
   * decision: an AWS service writ.yaml never names is otherwise unknown to the decision point.
   */
  prepare(action: string): Promise<void>;
}

export interface PolicyLoad {
  /** Present when there are no errors. */
  readonly policy?: Policy | undefined;
  readonly problems: readonly ConfigProblem[];
}

export async function loadPolicy(file: string): Promise<PolicyLoad> {
  const loaded = await loadConfigFile(file);
  if (!loaded.config) return { problems: loaded.problems };
  const compiled = compileGuardrails(loaded.config, {
    sources: loaded.guardrailSources,
    vocab: loaded.vocab,
  });
  const problems = [...loaded.problems, ...compiled.problems];
  if (problems.some((p) => p.severity === "error")) return { problems };
  return {
    policy: {
      file,
      config: loaded.config,
      vocab: loaded.vocab,
      guardrails: compiled.guardrails,
      prepare: (action) => prepareAction(loaded.catalog, action),
    },
    problems,
  };
}

async function prepareAction(catalog: LoadableAwsCatalog, action: string): Promise<void> {
  if (typeof action !== "string" || action.length > 256) return;
  await catalog.load(collectAwsServices(`${action}:`));
}

export function decisionPoint(policy: Policy, writs?: WritSource): DecisionPoint {
  return new DecisionPoint(policy.config, {
    vocab: policy.vocab,
    guardrails: policy.guardrails,
    ...(writs ? { writs } : {}),
  });
}
