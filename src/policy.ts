/**
 * writ.yaml as the decision point needs it: loaded, validated and its Cedar guardrails compiled
 * (`loadPolicy`), and the decision point over it (`decisionPoint`). Apart from the composition root
 * (app.ts re-exports both) so that the offline hook decides without importing the server.
 */
import {
  type ConfigProblem,
  collectAwsServices,
  type LoadableAwsCatalog,
  loadConfigFile,
} from "./config/index.js";
import type { Path, Vocabulary, WritConfig } from "./core/index.js";
// the decision point's files, not its face (which carries the AuthZEN routes and the writ index)
import { compileGuardrails } from "./pdp/compile.js";
import { DecisionPoint, type WritSource } from "./pdp/decision-point.js";
import type { CompiledGuardrails } from "./pdp/guardrails.js";

export interface Policy {
  readonly file: string;
  readonly config: WritConfig;
  readonly vocab: Vocabulary;
  readonly guardrails: CompiledGuardrails | undefined;
  /** `sha256:<hex>` of writ.yaml as it was loaded (the server's start record names it). */
  readonly digest: string;
  /** Where a model path sits in writ.yaml (line, column), for evidence that cites the file. */
  readonly locate: (path: Path) => { line?: number; column?: number };
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
      digest: loaded.digest ?? "",
      locate: loaded.locate ?? (() => ({})),
      prepare: preparer(loaded.catalog),
    },
    problems,
  };
}

/** Most actions remembered as prepared: a decision's action is usually one seen before. */
const PREPARED_ACTIONS = 4096;

/** `Policy.prepare` over `catalog`: an action once prepared is not looked at again (a bounded memo). */
function preparer(catalog: LoadableAwsCatalog): (action: string) => Promise<void> {
  const prepared = new Set<string>();
  return async (action) => {
    if (typeof action !== "string" || action.length > 256 || prepared.has(action)) return;
    await catalog.load(collectAwsServices(`${action}:`));
    if (prepared.size >= PREPARED_ACTIONS) prepared.clear();
    prepared.add(action);
  };
}

export function decisionPoint(policy: Policy, writs?: WritSource): DecisionPoint {
  return new DecisionPoint(policy.config, {
    vocab: policy.vocab,
    guardrails: policy.guardrails,
    ...(writs ? { writs } : {}),
  });
}
