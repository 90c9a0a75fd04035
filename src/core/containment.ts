/**
 * Load-time containment: prove, before any request, that no playbook can hand an agent more than
 * its ceiling, that wildcard grants were reviewed, and that standing writes were meant.
 */
import { actionProblems, isReadOnly, wildcardProblem } from "./classify.js";
import type { CoreErrorCode } from "./codes.js";
import { isWritError, q } from "./errors.js";
import type { Path, WritConfig } from "./model.js";
import {
  compileRule,
  type Rule,
  type RuleText,
  ruleContains,
  ruleOverlaps,
  ruleToString,
} from "./permission.js";
import { widenTemplate } from "./template.js";
import { formatDuration } from "./time.js";
import type { Vocabulary } from "./vocabulary.js";

export interface Problem {
  readonly code: CoreErrorCode;
  readonly severity: "error" | "warning";
  readonly path: Path;
  readonly message: string;
}

function paramSchemas(
  parameters: Readonly<Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  const props = parameters.properties;
  return props && typeof props === "object" ? (props as Record<string, Record<string, unknown>>) : {};
}

/**
 * Issuance-time containment of a delegated writ: the grants of `child` that no single grant of
 * `parent` contains (empty: the child is a subset). Sound, not complete: a grant covered only by
 * several parent grants together counts as excess, so a child can never hold more than its parent.
 * Throws the pattern errors of `compileRule` for a child grant that does not compile.
 */
export function excessGrants(parent: readonly RuleText[], child: readonly RuleText[]): RuleText[] {
  const outer = parent.map(compileRule);
  return child.filter((g) => {
    const inner = compileRule(g);
    return !outer.some((o) => ruleContains(o, inner));
  });
}

export function checkContainment(config: WritConfig, vocab: Vocabulary): Problem[] {
  const problems: Problem[] = [];
  const err = (code: CoreErrorCode, path: Path, message: string) =>
    problems.push({ code, severity: "error", path, message });
  const warn = (code: CoreErrorCode, path: Path, message: string) =>
    problems.push({ code, severity: "warning", path, message });

  // which runner classes can hold each playbook, and through which agent
  const holders = new Map<string, Map<string, string>>();
  for (const agent of config.agents.values()) {
    for (const pb of agent.playbooks) {
      const byClass = holders.get(pb) ?? new Map<string, string>();
      if (!byClass.has(agent.runnerClass)) byClass.set(agent.runnerClass, agent.id);
      holders.set(pb, byClass);
    }
  }

  for (const pb of config.playbooks.values()) {
    const schemas = paramSchemas(pb.parameters);
    for (const g of pb.grants) {
      let widened: Rule[];
      try {
        const actions = widenTemplate(g.action, schemas);
        const resources = widenTemplate(g.resource, schemas);
        widened = actions.flatMap((action) => resources.map((resource) => compileRule({ action, resource })));
      } catch (e) {
        if (!isWritError(e)) throw e;
        err("ERR_CONFIG_PATTERN", g.path, e.message);
        continue;
      }
      for (const rule of widened) {
        for (const p of actionProblems(rule, vocab))
          err("ERR_CONFIG_UNKNOWN_ACTION", [...g.path, "action"], p);
      }
      const wild = widened.map(wildcardProblem).find((p) => p !== undefined);
      if (wild && !g.reviewedException) {
        err(
          "ERR_CONFIG_WILDCARD_UNREVIEWED",
          g.path,
          `wildcard grant ${q(ruleToString(g))}: ${wild}; narrow it or add \`reviewedException: <reason>\``,
        );
      }
      for (const [rcId, agentId] of holders.get(pb.id) ?? []) {
        const rc = config.runnerClasses.get(rcId);
        if (!rc) continue;
        const ceilingName = `the ${q(rcId)} ceiling (held by agent ${q(agentId)})`;
        // a ceiling in shadow mode refuses nothing: what it would refuse is a warning, not an error
        const exceeds =
          rc.mode === "shadow"
            ? (_code: CoreErrorCode, path: Path, message: string) =>
                warn(
                  "WARN_CONFIG_SHADOW_CEILING",
                  path,
                  `${message}; the ceiling is in shadow mode, so its writs are issued and their use recorded as would-have-denied`,
                )
            : err;
        const outside = widened.find((r) => !rc.ceiling.allow.some((c) => ruleContains(c.rule, r)));
        if (outside) {
          const stars = (t: string) => t.split("*").length;
          const widenedNote =
            stars(outside.text.resource) > stars(g.resource) || stars(outside.text.action) > stars(g.action)
              ? ` (with parameters widened to ${q(ruleToString(outside.text))}; constrain them with \`enum\`, \`const\` or an anchored \`pattern\`)`
              : "";
          exceeds(
            "ERR_CONFIG_GRANT_EXCEEDS_CEILING",
            g.path,
            `grant ${q(ruleToString(g))} exceeds ${ceilingName}: no \`allow\` rule covers it${widenedNote}`,
          );
        }
        for (const d of rc.ceiling.deny) {
          if (widened.some((r) => ruleOverlaps(r, d.rule))) {
            exceeds(
              "ERR_CONFIG_GRANT_HITS_DENY",
              g.path,
              `grant ${q(ruleToString(g))} overlaps deny ${q(ruleToString(d.rule.text))} of ${ceilingName}`,
            );
          }
        }
        if (pb.ttlSeconds > rc.ceiling.maxTtlSeconds) {
          warn(
            "WARN_CONFIG_TTL_CAPPED",
            ["playbooks", pb.id, "ttl"],
            `ttl ${formatDuration(pb.ttlSeconds)} is longer than the ${q(rcId)} ceiling's maxTtl ${formatDuration(rc.ceiling.maxTtlSeconds)}: writs will be capped`,
          );
        }
      }
    }
  }

  for (const agent of config.agents.values()) {
    const rc = config.runnerClasses.get(agent.runnerClass);
    for (const g of agent.baseline) {
      for (const p of actionProblems(g.rule, vocab))
        err("ERR_CONFIG_UNKNOWN_ACTION", [...g.path, "action"], p);
      if (!g.standingWrite && !isReadOnly(g.rule, vocab)) {
        err(
          "ERR_CONFIG_BASELINE_WRITE",
          g.path,
          `baseline grant ${q(ruleToString(g.rule.text))} can write; baselines are read-only unless marked \`standingWrite: <reason>\``,
        );
      }
      if (rc && !rc.ceiling.allow.some((c) => ruleContains(c.rule, g.rule))) {
        warn(
          "WARN_CONFIG_BASELINE_CUT",
          g.path,
          `baseline grant ${q(ruleToString(g.rule.text))} is not wholly inside the ${q(rc.id)} ceiling: the ceiling will cut it`,
        );
      }
    }
  }
  for (const agent of config.agents.values())
    for (const need of agent.runs?.toolNeeds ?? [])
      for (const g of need.permissions)
        for (const p of actionProblems(g.rule, vocab))
          err("ERR_CONFIG_UNKNOWN_ACTION", [...g.path, "action"], p);
  for (const rc of config.runnerClasses.values()) {
    for (const rule of [...rc.ceiling.allow, ...rc.ceiling.deny]) {
      for (const p of actionProblems(rule.rule, vocab))
        err("ERR_CONFIG_UNKNOWN_ACTION", [...rule.path, "action"], p);
    }
  }
  return problems;
}
