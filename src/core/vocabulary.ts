/**
 * The permission vocabulary: `provider:service:action` on a resource. This file is the one place
 * where the per-provider matching rules live; docs/permissions.md describes the same table for
 * operators and test/cases/ checks it.
 *
 * | provider | service                        | action                  | case rules                                        |
 * |----------|--------------------------------|-------------------------|---------------------------------------------------|
 * | aws      | IAM service prefix (`s3`)      | IAM action (`GetObject`)| service and action case-insensitive; ARN exact    |
 * | k8s      | `group/resource[/sub]`         | verb (`get`, `patch`)   | everything exact (Kubernetes is case-sensitive)   |
 * | github   | permission (`contents`)        | `read`, `write`, `admin`| case-insensitive, `-` = `_`; `owner/repo` too     |
 * | mcp      | server name                    | tool name               | everything exact                                  |
 * | gcp      | service (`storage`)            | `resource.verb`         | everything exact                                  |
 * | agent    | agent kind (`claude-code`)     | tool (`Read`, `Bash`)   | everything exact                                  |
 *
 * GitHub levels imply each other: `admin` ⊇ `write` ⊇ `read`. A grant of `write` covers a `read`
 * request; a deny of `read` also stops a `write` request (it would include a read).
 */
import { q, WritError } from "./errors.js";

export const PROVIDERS = ["aws", "k8s", "github", "mcp", "gcp", "agent"] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface ProviderRules {
  readonly provider: Provider;
  /** Service and action segments are compared case-insensitively. */
  readonly foldAction: boolean;
  /** Resources are compared case-insensitively. */
  readonly foldResource: boolean;
  /** Normalisation applied to a service name before comparison (after folding). */
  readonly normalizeService?: (s: string) => string;
  readonly serviceShape: RegExp;
  readonly actionShape: RegExp;
}

const dashToUnderscore = (s: string): string => s.replace(/-/g, "_");

export const RULES: Readonly<Record<Provider, ProviderRules>> = {
  aws: {
    provider: "aws",
    foldAction: true,
    foldResource: false,
    serviceShape: /^[a-z0-9-]+$/i,
    actionShape: /^[A-Za-z0-9]+$/,
  },
  k8s: {
    provider: "k8s",
    foldAction: false,
    foldResource: false,
    // group/resource or group/resource/subresource; the core API group is spelled `core`
    serviceShape: /^[a-z0-9.-]+\/[a-z0-9.-]+(\/[a-z0-9.-]+)?$/,
    actionShape: /^[a-z]+$/,
  },
  github: {
    provider: "github",
    foldAction: true,
    foldResource: true,
    normalizeService: dashToUnderscore,
    serviceShape: /^[a-z_-]+$/i,
    actionShape: /^(read|write|admin)$/i,
  },
  mcp: {
    provider: "mcp",
    foldAction: false,
    foldResource: false,
    serviceShape: /^[A-Za-z0-9_.-]+$/,
    actionShape: /^[A-Za-z0-9_.\-/]+$/,
  },
  gcp: {
    provider: "gcp",
    foldAction: false,
    foldResource: false,
    serviceShape: /^[a-z0-9]+$/,
    actionShape: /^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+$/,
  },
  // a coding agent's own tools through its hooks (`writ hook`, docs/hooks.md): resources are
  // canonical paths, hosts, program names, or `-`
  agent: {
    provider: "agent",
    foldAction: false,
    foldResource: false,
    serviceShape: /^[a-z0-9][a-z0-9-]*$/,
    actionShape: /^[A-Za-z0-9_.-]+$/,
  },
};

export function isProvider(p: string): p is Provider {
  return (PROVIDERS as readonly string[]).includes(p);
}

/** The verbs of an ordinary Kubernetes resource: what an RBAC `*` stands for on one. */
export const K8S_RESOURCE_VERBS = [
  "get",
  "list",
  "watch",
  "create",
  "update",
  "patch",
  "delete",
  "deletecollection",
] as const;

/** Kubernetes verbs, from the API server's authorizer and RBAC docs. */
export const K8S_VERBS = [
  ...K8S_RESOURCE_VERBS,
  "impersonate",
  "bind",
  "escalate",
  "use",
  "approve",
  "sign",
  "proxy",
  "attest",
] as const;
export const K8S_READ_VERBS: ReadonlySet<string> = new Set(["get", "list", "watch"]);

/**
 * GitHub token permissions (GITHUB_TOKEN `permissions:` keys and GitHub App permissions), with
 * `-` folded to `_`. The one list: `writ check` validates `github:` rules against it and the
 * analyzer reads workflows' `permissions:` blocks and proposes new ones from it, so a block the
 * analyzer proposes is always one `writ check` accepts.
 */
export const GITHUB_PERMISSION_LIST = [
  "actions",
  "administration",
  "artifact_metadata",
  "attestations",
  "checks",
  "code_quality",
  "codespaces",
  "contents",
  "dependabot_secrets",
  "deployments",
  "discussions",
  "environments",
  "id_token",
  "issues",
  "members",
  "metadata",
  "models",
  "organization_administration",
  "organization_projects",
  "organization_secrets",
  "packages",
  "pages",
  "pull_requests",
  "repository_hooks",
  "repository_projects",
  "secret_scanning_alerts",
  "secrets",
  "security_events",
  "statuses",
  "variables",
  "vulnerability_alerts",
  "workflows",
] as const;

export const GITHUB_PERMISSIONS: ReadonlySet<string> = new Set(GITHUB_PERMISSION_LIST);

const GITHUB_LEVELS = ["read", "write", "admin"] as const;

/**
 * The actions whose grant covers a request for `action` (GitHub level implication). For every
 * other provider it is the action itself.
 */
export function coveringActions(provider: Provider, action: string): readonly string[] {
  if (provider !== "github") return [action];
  const i = GITHUB_LEVELS.indexOf(action.toLowerCase() as (typeof GITHUB_LEVELS)[number]);
  return i < 0 ? [action] : GITHUB_LEVELS.slice(i);
}

/** The actions a request for `action` includes (what a deny on any of them also stops). */
export function includedActions(provider: Provider, action: string): readonly string[] {
  if (provider !== "github") return [action];
  const i = GITHUB_LEVELS.indexOf(action.toLowerCase() as (typeof GITHUB_LEVELS)[number]);
  return i < 0 ? [action] : GITHUB_LEVELS.slice(0, i + 1);
}

/** What writ knows of AWS actions: loaded at the edge from the IAM catalog, handed in explicitly. */
export interface AwsCatalog {
  /**
   * The actions of a service keyed by lower-case name, or `undefined` when the service is unknown
   * (or was not loaded: callers load every service they mention before asking).
   */
  actions(service: string): ReadonlyMap<string, AwsActionInfo> | undefined;
}
export interface AwsActionInfo {
  readonly name: string;
  readonly accessLevel: "Read" | "List" | "Write" | "Tagging" | "Permissions management";
}

export interface Vocabulary {
  readonly aws?: AwsCatalog;
}

export interface ParsedAction {
  readonly provider: Provider;
  readonly service: string;
  readonly action: string;
}

/** Splits a concrete request action; throws `ERR_UNKNOWN_PROVIDER` or `ERR_MALFORMED_ACTION`. */
export function parseRequestAction(text: string): ParsedAction {
  // every decision parses its action, and decisions repeat a few actions: each parsed once (a
  // bounded memo of the ones that parse, emptied when full)
  const known = parsedActions.get(text);
  if (known !== undefined) return known;
  const parsed = parseAction(text);
  if (parsedActions.size >= MAX_PARSED_ACTIONS) parsedActions.clear();
  parsedActions.set(text, parsed);
  return parsed;
}

const MAX_PARSED_ACTIONS = 4096;
const parsedActions = new Map<string, ParsedAction>();

function parseAction(text: string): ParsedAction {
  const parts = text.split(":");
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw new WritError(
      "ERR_MALFORMED_ACTION",
      `action ${q(text)}: expected \`provider:service:action\`, e.g. \`aws:s3:GetObject\``,
    );
  }
  const [rawProvider, service, action] = parts as [string, string, string];
  const provider = rawProvider.toLowerCase();
  if (!isProvider(provider)) {
    throw new WritError(
      "ERR_UNKNOWN_PROVIDER",
      `action ${q(text)}: unknown provider ${q(rawProvider)}: expected one of ${PROVIDERS.join(", ")}`,
    );
  }
  const rules = RULES[provider];
  if (!rules.serviceShape.test(service)) {
    throw new WritError(
      "ERR_MALFORMED_ACTION",
      `action ${q(text)}: ${q(service)} is not a ${provider} service`,
    );
  }
  if (!rules.actionShape.test(action)) {
    throw new WritError(
      "ERR_MALFORMED_ACTION",
      `action ${q(text)}: ${q(action)} is not a ${provider} action`,
    );
  }
  return Object.freeze({ provider, service, action });
}

/**
 * Checks that a concrete action exists in the vocabulary. Returns an error message, or undefined
 * when the action is known. AWS actions are checked only when a catalog is given.
 */
export function unknownActionProblem(a: ParsedAction, vocab: Vocabulary): string | undefined {
  switch (a.provider) {
    case "k8s":
      return (K8S_VERBS as readonly string[]).includes(a.action)
        ? undefined
        : `${q(a.action)} is not a Kubernetes verb: expected one of ${K8S_VERBS.join(", ")}`;
    case "github":
      return GITHUB_PERMISSIONS.has(dashToUnderscore(a.service.toLowerCase()))
        ? undefined
        : `${q(a.service)} is not a GitHub token permission`;
    case "aws": {
      if (!vocab.aws) return undefined;
      const actions = vocab.aws.actions(a.service.toLowerCase());
      if (!actions) return `${q(a.service)} is not an AWS service`;
      return actions.has(a.action.toLowerCase())
        ? undefined
        : `${q(a.action)} is not an action of AWS ${q(a.service)}`;
    }
    default:
      return undefined;
  }
}
