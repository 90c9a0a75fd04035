/**
 * Questions asked of rules at load time: does it only read, is it a wildcard grant, does it name
 * actions that exist. Answers fail closed: what writ cannot prove read-only counts as a write.
 */
import { q } from "./errors.js";
import { type Alt, type Glob, globMatches, literalPrefix } from "./pattern.js";
import type { Rule } from "./permission.js";
import {
  GITHUB_PERMISSIONS,
  K8S_READ_VERBS,
  K8S_VERBS,
  type Provider,
  RULES,
  type Vocabulary,
} from "./vocabulary.js";

/** MCP tool names that read by convention. Tools declared to the gateway can say more. */
const MCP_READ_TOOL = /^(read|get|list|search|find|describe|view|show|query|stat|head)(_|-|$)/i;
/** A coding agent's tools that only read (`writ hook`): `WebFetch` reaches out, so it counts as a write. */
const AGENT_READ_TOOL = /^(Read|NotebookRead|Glob|Grep|LS)$/;
const GCP_READ_VERB = /\.(get|list|search|query|lookup|getIamPolicy|testIamPermissions)$/;

function altText(alt: Alt): string {
  return alt.map((t) => (t.t === "lit" ? t.c : t.t === "star" ? "*" : "?")).join("");
}

function literals(g: Glob): string[] | undefined {
  if (!g.literal) return undefined;
  return g.alts.map((a) => a.map((t) => (t.t === "lit" ? t.c : "")).join(""));
}

/**
 * Is every action the rule can grant a read? `undefined` result never happens: unknown means no.
 */
export function isReadOnly(rule: Rule, vocab: Vocabulary): boolean {
  const provider = rule.literalProvider;
  if (!provider) return false;
  const services = literals(rule.service.raw);
  switch (provider) {
    case "k8s":
      return K8S_VERBS.filter((v) => globMatches(rule.action.raw, v)).every((v) => K8S_READ_VERBS.has(v));
    case "github":
      return (
        !globMatches(rule.action.folded, "write", true) && !globMatches(rule.action.folded, "admin", true)
      );
    case "aws": {
      if (!services || !vocab.aws) return false;
      return services.every((s) => {
        const actions = vocab.aws?.actions(s.toLowerCase());
        if (!actions) return false;
        for (const [lower, info] of actions) {
          if (
            globMatches(rule.action.folded, lower, true) &&
            info.accessLevel !== "Read" &&
            info.accessLevel !== "List"
          ) {
            return false;
          }
        }
        return true;
      });
    }
    case "mcp": {
      const tools = literals(rule.action.raw);
      return tools !== undefined && tools.every((t) => MCP_READ_TOOL.test(t));
    }
    case "gcp": {
      const actions = literals(rule.action.raw);
      return actions !== undefined && actions.every((a) => GCP_READ_VERB.test(a));
    }
    case "agent": {
      const tools = literals(rule.action.raw);
      return tools !== undefined && tools.every((t) => AGENT_READ_TOOL.test(t));
    }
  }
}

/**
 * A wildcard grant reaches beyond one scope: a wildcard anywhere in the action, or a resource whose
 * scope-defining part is a wildcard (an ARN's account or service, the start of its resource part; a
 * Kubernetes namespace; a GitHub owner; a bare `*`).
 */
export function wildcardProblem(rule: Rule): string | undefined {
  if (!rule.provider.raw.literal || !rule.service.raw.literal || !rule.action.raw.literal) {
    return `action ${q(rule.text.action)} holds a wildcard`;
  }
  for (const alt of rule.resource.raw.alts) {
    if (alt.every((t) => t.t !== "lit")) return `resource ${q(rule.text.resource)} matches everything`;
    const prefix = literalPrefix(alt);
    const whole = alt.every((t) => t.t === "lit");
    if (whole) continue;
    const scoped = scopeIsFixed(rule.literalProvider, prefix);
    if (!scoped) {
      return prefix.length === 0
        ? `resource ${q(rule.text.resource)} starts with a wildcard`
        : `resource ${q(rule.text.resource)} has a wildcard in its scope, after ${q(prefix)}`;
    }
  }
  return undefined;
}

function scopeIsFixed(provider: Provider | undefined, prefix: string): boolean {
  switch (provider) {
    case "aws": {
      // arn:partition:service:region:account:resource — fixed through the account, and at least
      // one character of the resource part.
      const parts = prefix.split(":");
      return parts.length >= 6 && (parts[5] ?? "").length > 0;
    }
    case "k8s":
    case "github":
      // namespace/… or owner/…: the first segment must be complete
      return prefix.includes("/");
    case "gcp":
      return prefix.split("/").length >= 4;
    default:
      // mcp: more than a bare `/` (a path root) before the first wildcard
      return prefix.length > 1;
  }
}

/**
 * Checks the action segments of a rule against the vocabulary. Literal names must exist; a
 * wildcard must match at least one known name where the names are known.
 */
export function actionProblems(rule: Rule, vocab: Vocabulary): string[] {
  const provider = rule.literalProvider;
  if (!provider) return [];
  const problems: string[] = [];
  const rules = RULES[provider];
  const services = literals(rule.service.raw);
  for (const s of services ?? []) {
    if (!rules.serviceShape.test(s)) problems.push(`${q(s)} is not a ${provider} service`);
  }
  const actionNames = literals(rule.action.raw);
  if (actionNames) {
    for (const a of actionNames)
      if (!rules.actionShape.test(a)) problems.push(`${q(a)} is not a ${provider} action`);
  }
  if (problems.length > 0) return problems;
  switch (provider) {
    case "k8s":
      for (const alt of rule.action.raw.alts) {
        const one = { ...rule.action.raw, alts: [alt] };
        if (!K8S_VERBS.some((v) => globMatches(one, v))) {
          problems.push(`${q(altText(alt))} matches no Kubernetes verb (${K8S_VERBS.join(", ")})`);
        }
      }
      break;
    case "github":
      for (const s of services ?? []) {
        if (!GITHUB_PERMISSIONS.has(s.toLowerCase().replace(/-/g, "_"))) {
          problems.push(`${q(s)} is not a GitHub token permission`);
        }
      }
      break;
    case "aws": {
      if (!vocab.aws || !services) break;
      for (const s of services) {
        const actions = vocab.aws.actions(s.toLowerCase());
        if (!actions) {
          problems.push(`${q(s)} is not an AWS service`);
          continue;
        }
        rule.action.folded.alts.forEach((alt, i) => {
          const one = { ...rule.action.folded, alts: [alt] };
          let hit = false;
          for (const lower of actions.keys()) {
            if (globMatches(one, lower, true)) {
              hit = true;
              break;
            }
          }
          if (!hit)
            problems.push(`${q(altText(rule.action.raw.alts[i] ?? alt))} matches no action of AWS ${q(s)}`);
        });
      }
      break;
    }
    default:
      break;
  }
  return problems;
}
