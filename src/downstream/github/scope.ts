/**
 * From a writ's `github:` grants to the body of GitHub's "create an installation access token"
 * request (`repositories` + `permissions`), never more than the writ grants (∩ ceiling − denies).
 *
 * Pure: no I/O. The issuer (`../github.ts`) supplies the installation's account and, when a grant's
 * resource is a pattern, the installation's repositories; this module decides what to ask for.
 *
 * GitHub gives one permission set to every repository of a token, so a token is a rectangle:
 * repositories × permissions. The writ's grants need not be one (`contents:write` on `acme/a`,
 * `issues:read` on `acme/b`), so the token gets, per permission, the lowest level the writ grants on
 * *every* one of its repositories — the largest rectangle inside the grants. What that leaves out is
 * said in the notes, never silently widened. `metadata: read` is the one exception GitHub imposes:
 * every installation token carries it on its repositories, whatever is asked.
 */
import {
  actionMatches,
  compileRule,
  escapeGlob,
  globContains,
  globMatches,
  parseGlob,
  q,
  type Rule,
  type RuleText,
  resourceMatches,
  ruleMatches,
  ruleOverlaps,
} from "../../core/index.js";

export type GithubLevel = "read" | "write" | "admin";
export const LEVELS: readonly GithubLevel[] = ["read", "write", "admin"];
const RANK: Readonly<Record<GithubLevel, number>> = { read: 0, write: 1, admin: 2 };

/**
 * GitHub App permissions that writ's vocabulary can grant, with the levels GitHub accepts for each
 * (from GitHub's OpenAPI description, `app-permissions`). Names in writ's vocabulary that are not
 * App permissions (`id_token`, `models`, `variables`) cannot be carried by an installation token.
 */
export const APP_PERMISSIONS: ReadonlyMap<string, readonly GithubLevel[]> = new Map<
  string,
  readonly GithubLevel[]
>([
  ["actions", ["read", "write"]],
  ["administration", ["read", "write"]],
  ["attestations", ["read", "write"]],
  ["checks", ["read", "write"]],
  ["codespaces", ["read", "write"]],
  ["contents", ["read", "write"]],
  ["dependabot_secrets", ["read", "write"]],
  ["deployments", ["read", "write"]],
  ["discussions", ["read", "write"]],
  ["environments", ["read", "write"]],
  ["issues", ["read", "write"]],
  ["metadata", ["read", "write"]],
  ["packages", ["read", "write"]],
  ["pages", ["read", "write"]],
  ["pull_requests", ["read", "write"]],
  ["repository_hooks", ["read", "write"]],
  ["repository_projects", ["read", "write", "admin"]],
  ["secret_scanning_alerts", ["read", "write"]],
  ["secrets", ["read", "write"]],
  ["security_events", ["read", "write"]],
  ["statuses", ["read", "write"]],
  ["vulnerability_alerts", ["read", "write"]],
  ["workflows", ["write"]],
  // organization permissions: they act on the account, not on the token's repositories
  ["members", ["read", "write"]],
  ["organization_administration", ["read", "write"]],
  ["organization_projects", ["read", "write", "admin"]],
  ["organization_secrets", ["read", "write"]],
]);

/** App permissions that apply to the installation's account rather than to repositories. */
export const ORGANIZATION_PERMISSIONS: ReadonlySet<string> = new Set([
  "members",
  "organization_administration",
  "organization_projects",
  "organization_secrets",
]);

/** writ vocabulary names that are not GitHub App permissions. */
const NOT_APP_PERMISSIONS = ["id_token", "models", "variables"] as const;

/** GitHub caps the `repositories` list of one token request. */
export const MAX_TOKEN_REPOSITORIES = 500;

export function levelAtLeast(have: GithubLevel, want: GithubLevel): boolean {
  return RANK[have] >= RANK[want];
}

/** What a writ's github grants need to be turned into a token request. */
export interface GithubScopeInput {
  readonly grants: readonly RuleText[];
  readonly denies: readonly RuleText[];
  /** The installation's account (`acme`): the owner of every repository a token can reach. */
  readonly account: string;
  /**
   * The installation's repositories (names, without the owner), when a grant's resource is a
   * pattern; `undefined` when every grant names its repositories literally.
   */
  readonly repositories?: readonly string[] | undefined;
  /**
   * The installation's permissions (`GET /app/installations/{id}`). A permission a grant names
   * literally must be there at the level asked (`downstream_permission_missing` otherwise); one
   * reached only through a pattern (`github:*:read`) is lowered to the installation's level, or left
   * out, with a note.
   */
  readonly installation?: Readonly<Record<string, GithubLevel>> | undefined;
}

export type GithubScope =
  | {
      readonly ok: true;
      /** Repository names (without the owner), sorted, never empty. */
      readonly repositories: readonly string[];
      /** App permission → level, never empty. */
      readonly permissions: Readonly<Record<string, GithubLevel>>;
      /** What the writ grants that the token does not carry, and why. */
      readonly notes: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: "downstream_no_grants" | "downstream_permission_missing" | "downstream_unavailable";
      readonly message: string;
      readonly notes: readonly string[];
    };

/** The compiled grants (or denies) that can apply to a GitHub request (provider `github`, `*`, …). */
export function githubRules(rules: readonly RuleText[]): Rule[] {
  return rules.map(compileRule).filter((r) => globMatches(r.provider.raw, "github"));
}

/** The highest level the grants cover for `permission` on `resource`, after the denies. */
function grantedLevel(
  grants: readonly Rule[],
  denies: readonly Rule[],
  permission: string,
  resource: string,
): GithubLevel | undefined {
  for (let i = LEVELS.length - 1; i >= 0; i--) {
    const level = LEVELS[i]!;
    const action = { provider: "github" as const, service: permission, action: level };
    if (!grants.some((g) => ruleMatches(g, action, resource, "cover"))) continue;
    // a deny of `read` also stops `write` and `admin` ("include"): go down to a level it spares
    if (denies.some((d) => ruleMatches(d, action, resource, "include"))) continue;
    return level;
  }
  return undefined;
}

/** The highest level GitHub accepts for `permission` that is not above `granted`. */
function requestableLevel(permission: string, granted: GithubLevel): GithubLevel | undefined {
  const accepted = APP_PERMISSIONS.get(permission) ?? [];
  let best: GithubLevel | undefined;
  for (const l of accepted) if (levelAtLeast(granted, l)) best = l;
  return best;
}

/**
 * An organization permission is granted only when a grant covers it on every repository of the
 * account (`acme/*` or wider) and no deny on it could touch any of them.
 */
function organizationLevel(
  grants: readonly Rule[],
  denies: readonly Rule[],
  permission: string,
  account: string,
): GithubLevel | undefined {
  const everything = `${escapeGlob(account.toLowerCase())}/*`;
  for (let i = LEVELS.length - 1; i >= 0; i--) {
    const level = LEVELS[i]!;
    const wanted = compileRule({ action: `github:${permission}:${level}`, resource: everything });
    const covered = grants.some((g) => coversEveryRepository(g, permission, level, account));
    if (!covered) continue;
    if (denies.some((d) => ruleOverlaps(wanted, d))) continue;
    return level;
  }
  return undefined;
}

function coversEveryRepository(g: Rule, permission: string, level: GithubLevel, account: string): boolean {
  const action = { provider: "github" as const, service: permission, action: level };
  if (!actionMatches(g, action, "cover")) return false;
  return globContains(g.resource.folded, parseGlob(`${escapeGlob(account.toLowerCase())}/*`));
}

/** The App permissions some grant names literally (`github:contents|issues:write` names two). */
export function namedPermissions(grants: readonly Rule[]): Set<string> {
  const out = new Set<string>();
  for (const g of grants) {
    for (const alt of g.service.github.alts) {
      if (alt.every((t) => t.t === "lit")) out.add(alt.map((t) => (t.t === "lit" ? t.c : "")).join(""));
    }
  }
  return out;
}

/** Does some github grant name its resources by a pattern (so the installation must be listed)? */
export function needsRepositoryList(grants: readonly RuleText[]): boolean {
  return githubRules(grants).some((g) => g.resource.raw.alts.some((alt) => alt.some((t) => t.t !== "lit")));
}

function literalAlternatives(g: Rule): string[] {
  const out: string[] = [];
  for (const alt of g.resource.raw.alts) {
    if (alt.every((t) => t.t === "lit")) out.push(alt.map((t) => (t.t === "lit" ? t.c : "")).join(""));
  }
  return out;
}

const REPO_NAME = /^[A-Za-z0-9._-]{1,100}$/;

type Refused = Extract<GithubScope, { ok: false }>;
type Refusal = Omit<Refused, "ok" | "notes">;

/** What the steps below share: the writ's rules, the account, and the notes they add to. */
interface Scoping {
  readonly input: GithubScopeInput;
  readonly grants: readonly Rule[];
  readonly denies: readonly Rule[];
  /** The account, lower case. */
  readonly account: string;
  readonly notes: string[];
}

/**
 * The token request for a writ's github grants, or why there is none. Ordered steps: the candidate
 * repositories, the permissions granted on each, the rectangle one token can carry, the
 * organization permissions, the installation's fit, the token's limits.
 */
export function githubScope(input: GithubScopeInput): GithubScope {
  const notes: string[] = [];
  const s: Scoping = {
    input,
    grants: githubRules(input.grants),
    denies: githubRules(input.denies),
    account: input.account.toLowerCase(),
    notes,
  };
  const refused = (r: Refusal): GithubScope => ({ ok: false, ...r, notes });
  if (s.grants.length === 0)
    return refused({ reason: "downstream_no_grants", message: "the writ grants nothing on github" });
  const candidates = candidateRepositories(s);
  if ("reason" in candidates) return refused(candidates);
  const { perRepository, bare } = permissionsPerRepository(s, candidates);
  const rect = rectangle(s, perRepository);
  const permissions = { ...rect.permissions, ...organizationPermissions(s) };
  const repositories = withOrganizationOnly(s, rect.repositories, bare, permissions);
  const unfit = fitToInstallation(s, permissions);
  if (unfit) return refused(unfit);
  const limits = tokenLimits(input, repositories, permissions);
  if (limits) return refused(limits);
  return { ok: true, repositories, permissions: sortKeys(permissions), notes };
}

/**
 * Candidate repositories (lower-case name → name as spelled): literal `account/name` alternatives,
 * and the installation's repositories a pattern matches; literals of another account are noted.
 */
function candidateRepositories(s: Scoping): Map<string, string> | Refusal {
  const candidates = new Map<string, string>();
  const foreign = new Set<string>();
  for (const g of s.grants) {
    for (const lit of literalAlternatives(g)) {
      const slash = lit.indexOf("/");
      const owner = slash < 0 ? "" : lit.slice(0, slash);
      const name = slash < 0 ? "" : lit.slice(slash + 1);
      if (owner.toLowerCase() !== s.account || !REPO_NAME.test(name)) {
        foreign.add(lit);
        continue;
      }
      if (!candidates.has(name.toLowerCase())) candidates.set(name.toLowerCase(), name);
    }
  }
  const patterned = s.grants.some((g) => g.resource.raw.alts.some((alt) => alt.some((t) => t.t !== "lit")));
  if (patterned) {
    if (s.input.repositories === undefined)
      return {
        reason: "downstream_unavailable",
        message:
          "a github grant names its repositories by a pattern, and the installation's repositories are not known",
      };
    for (const name of s.input.repositories) {
      if (!REPO_NAME.test(name)) continue;
      const full = `${s.account}/${name}`;
      // the installation's own spelling of the name
      if (s.grants.some((g) => resourceMatches(g, "github", full))) candidates.set(name.toLowerCase(), name);
    }
  }
  for (const f of [...foreign].sort())
    s.notes.push(
      `${q(f)} is not a repository of the installation's account ${q(s.input.account)}: not in the token`,
    );
  return candidates;
}

/**
 * Per candidate repository, the level of every App permission the grants cover there (after the
 * denies); `bare`: the candidates where none is granted. Permissions no installation token carries
 * are noted.
 */
function permissionsPerRepository(s: Scoping, candidates: ReadonlyMap<string, string>) {
  const perRepository = new Map<string, Map<string, GithubLevel>>();
  const unrequestable = new Set<string>();
  const bare: string[] = [];
  for (const [lower, name] of candidates) {
    const full = `${s.account}/${lower}`;
    const perms = new Map<string, GithubLevel>();
    for (const p of APP_PERMISSIONS.keys()) {
      if (ORGANIZATION_PERMISSIONS.has(p)) continue;
      const granted = grantedLevel(s.grants, s.denies, p, full);
      if (!granted) continue;
      const level = requestableLevel(p, granted);
      if (!level) {
        unrequestable.add(`${p}:${granted}`);
        continue;
      }
      perms.set(p, level);
    }
    for (const p of NOT_APP_PERMISSIONS) {
      const granted = grantedLevel(s.grants, s.denies, p, full);
      if (granted) unrequestable.add(`${p}:${granted}`);
    }
    if (perms.size === 0) bare.push(name);
    else perRepository.set(name, perms);
  }
  for (const u of [...unrequestable].sort())
    s.notes.push(`${q(u)} is not a permission a GitHub App installation token can carry: not in the token`);
  return { perRepository, bare };
}

/**
 * The rectangle: per permission, the lowest level granted on every repository (GitHub gives one
 * set of permissions to all of a token's repositories); what is granted beyond it is noted.
 */
function rectangle(s: Scoping, perRepository: ReadonlyMap<string, ReadonlyMap<string, GithubLevel>>) {
  const permissions: Record<string, GithubLevel> = {};
  const repositories = [...perRepository.keys()].sort((a, b) => a.localeCompare(b));
  if (repositories.length === 0) return { permissions, repositories };
  for (const [p, l0] of perRepository.get(repositories[0]!)!) {
    let level: GithubLevel | undefined = l0;
    for (const r of repositories) {
      const l = perRepository.get(r)!.get(p);
      if (!l) {
        level = undefined;
        break;
      }
      if (!levelAtLeast(l, level!)) level = l;
    }
    if (level) permissions[p] = level;
  }
  for (const r of repositories) {
    for (const [p, l] of perRepository.get(r)!) {
      const got = permissions[p];
      if (!got || !levelAtLeast(got, l))
        s.notes.push(
          `${q(`${p}:${l}`)} on ${q(`${s.input.account}/${r}`)} is ${got ? `${q(got)} in the token` : "not in the token"}: GitHub gives one set of permissions to all of a token's repositories, and not all of them are granted it`,
        );
    }
  }
  return { permissions, repositories };
}

/** Organization permissions: only those granted on every repository of the account. */
function organizationPermissions(s: Scoping): Record<string, GithubLevel> {
  const out: Record<string, GithubLevel> = {};
  for (const p of ORGANIZATION_PERMISSIONS) {
    const granted = organizationLevel(s.grants, s.denies, p, s.input.account);
    if (!granted) continue;
    const level = requestableLevel(p, granted);
    if (level) out[p] = level;
  }
  return out;
}

/**
 * The token's repositories: with organization permissions only, the granted ones still (a token
 * naming none would reach all; GitHub adds its `metadata: read` on them); otherwise the candidates
 * left bare by the denies are noted.
 */
function withOrganizationOnly(
  s: Scoping,
  repositories: readonly string[],
  bare: readonly string[],
  permissions: Readonly<Record<string, GithubLevel>>,
): readonly string[] {
  if (repositories.length === 0 && Object.keys(permissions).length > 0)
    return [...bare].sort((a, b) => a.localeCompare(b));
  for (const name of bare)
    s.notes.push(
      `nothing the writ grants on ${q(`${s.input.account}/${name}`)} survives its denies: not in the token`,
    );
  return repositories;
}

/**
 * The installation: a permission a grant names literally must be there at the level asked; one
 * reached only through a pattern is lowered to the installation's level, or left out (noted).
 * Changes `permissions` in place.
 */
function fitToInstallation(s: Scoping, permissions: Record<string, GithubLevel>): Refusal | undefined {
  const installation = s.input.installation;
  if (!installation) return undefined;
  const named = namedPermissions(s.grants);
  const missing: string[] = [];
  for (const [p, level] of Object.entries(permissions)) {
    const has = installation[p];
    if (has && levelAtLeast(has, level)) continue;
    const fitted = has ? requestableLevel(p, has) : undefined;
    if (named.has(p)) {
      missing.push(`${q(`${p}:${level}`)} (it has ${has ? q(`${p}:${has}`) : "none"})`);
    } else if (fitted) {
      permissions[p] = fitted;
      s.notes.push(
        `${q(`${p}:${level}`)} is granted by a pattern and the installation has ${q(`${p}:${has}`)}: the token carries ${q(`${p}:${fitted}`)}`,
      );
    } else {
      delete permissions[p];
      s.notes.push(
        `${q(`${p}:${level}`)} is granted by a pattern and the installation lacks it: not in the token`,
      );
    }
  }
  return missing.length === 0
    ? undefined
    : {
        reason: "downstream_permission_missing",
        message: `the GitHub App installation lacks ${missing.join(", ")}`,
      };
}

/** A token names at least one repository and one permission, and at most the repositories GitHub allows. */
function tokenLimits(
  input: GithubScopeInput,
  repositories: readonly string[],
  permissions: Readonly<Record<string, GithubLevel>>,
): Refusal | undefined {
  if (repositories.length === 0)
    return {
      reason: "downstream_no_grants",
      message: `no repository of the installation's account ${q(input.account)} is granted by the writ`,
    };
  if (Object.keys(permissions).length === 0)
    return {
      reason: "downstream_no_grants",
      message: "no GitHub App permission is granted on every repository of the writ",
    };
  if (repositories.length > MAX_TOKEN_REPOSITORIES)
    return {
      reason: "downstream_unavailable",
      message: `the writ's github grants match ${repositories.length} repositories: one installation token holds at most ${MAX_TOKEN_REPOSITORIES}`,
    };
  return undefined;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k]!;
  return out;
}
