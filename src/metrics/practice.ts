/**
 * What writ.yaml alone says about standing credentials (docs/metrics.md#credentials): an agent's
 * credentials are all short-lived unless it can reach a gateway upstream that the gateway calls
 * with a static credential of its own — a header or an environment variable filled from
 * `${env:NAME}`, the same for every agent — instead of one minted per writ (`credentials:`). Such an
 * upstream is a shared identity; it is in a privileged path when one of its tools is marked
 * `privileged` or `irreversible`.
 */
import {
  type Agent,
  actionMatches,
  parseRequestAction,
  type Upstream,
  type WritConfig,
} from "../core/index.js";

export interface CredentialFigures {
  readonly agents: number;
  /** Agents none of whose reachable upstreams holds a static credential. */
  readonly shortLived: number;
  /** Shared identities in privileged paths: upstream → the agents that reach it. */
  readonly sharedPrivileged: ReadonlyMap<string, number>;
}

/** Whether the gateway calls `u` with a static credential of its own (not minted per writ). */
function staticCredential(u: Upstream): boolean {
  if (u.credentials !== undefined) return false;
  if (u.kind === "http-upstream") return [...u.headers.values()].some((t) => t.env.length > 0);
  return [...u.env.values()].some((t) => t.env.length > 0);
}

function privileged(u: Upstream): boolean {
  return [...u.tools.values()].some((t) => t.privileged || t.irreversible);
}

/** Whether some `tools:` rule of the agent lets it call a tool of `u` (a configured one, or any). */
function reaches(agent: Agent, u: Upstream): boolean {
  const names = [...u.tools.keys(), "writ-any-tool"];
  for (const name of names) {
    let a: ReturnType<typeof parseRequestAction>;
    try {
      a = parseRequestAction(`mcp:${u.id}:${name}`);
    } catch {
      continue;
    }
    if (agent.tools.some((t) => actionMatches(t, a, "cover"))) return true;
  }
  return false;
}

export function credentialFigures(config: WritConfig): CredentialFigures {
  const upstreams = [...(config.gateway?.upstreams.values() ?? [])].filter(staticCredential);
  const sharedPrivileged = new Map<string, number>();
  for (const u of upstreams) if (privileged(u)) sharedPrivileged.set(u.id, 0);
  let shortLived = 0;
  for (const agent of config.agents.values()) {
    const reached = upstreams.filter((u) => reaches(agent, u));
    if (reached.length === 0) shortLived++;
    for (const u of reached) {
      const n = sharedPrivileged.get(u.id);
      if (n !== undefined) sharedPrivileged.set(u.id, n + 1);
    }
  }
  return { agents: config.agents.size, shortLived, sharedPrivileged };
}

/** Environments counted as production when writ.yaml does not say: `prod`, `production`, `prod-*`, `prod_*`. */
export function productionEnvironments(config: WritConfig): string[] {
  return [...config.environments.keys()].filter((e) => /^(prod|production)([-_].*)?$/i.test(e));
}
