/**
 * Per-call credentials for upstreams that name a downstream issuer (`credentials: { downstream: … }`
 * in writ.yaml, issue 11 §3). A call to such an upstream goes through a connection of the writ's
 * own: the session's writ is redeemed with the environment's issuer for that system, and the
 * credential is injected into the connection — never a static credential, never the agent's token.
 *
 *   - stdio: one process per writ, its environment holding the credential: GitHub `GH_TOKEN`,
 *     `GITHUB_TOKEN` and `GITHUB_PERSONAL_ACCESS_TOKEN`; AWS `AWS_ACCESS_KEY_ID`,
 *     `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (and `AWS_CREDENTIAL_EXPIRATION`); Kubernetes a
 *     `KUBECONFIG` file (0600, in a private 0700 directory removed with the process);
 *   - Streamable HTTP: one MCP session per writ, `Authorization: Bearer <token>` (GitHub,
 *     Kubernetes; AWS over HTTP is refused when writ.yaml loads).
 *
 * A writ's connection (and its credential) lives until the credential or the writ expires, the
 * writ is found revoked, a kill switch stops its agent, or the gateway closes; at most `maxWrits`
 * per upstream at once, past which a call is refused (`upstream_busy`). An issuer's refusal is the
 * call's refusal, under the issuer's reason (`downstream_*`); any other failure is
 * `downstream_unavailable`. Nothing falls back to the upstream's credential-less connection, which
 * only lists tools.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isWritError, q, type Upstream, type WritConfig } from "../core/index.js";
import type { DownstreamOutcome } from "../downstream/refusal.js";
import type {
  DownstreamCredential,
  DownstreamIssuer,
  DownstreamSystem,
  WritForIssuer,
} from "../downstream/types.js";
import { GatewayError } from "./errors.js";
import { type ConnectOptions, connectUpstream, type UpstreamConnection } from "./upstreams.js";

/** The environment's issuer for a system, or undefined when the system is not configured there. */
export type DownstreamIssuers = (
  environment: string,
  system: DownstreamSystem,
) => DownstreamIssuer | undefined;

/** The variables a stdio upstream receives, per system. */
export const INJECTED_ENV: Readonly<Record<DownstreamSystem, readonly string[]>> = {
  github: ["GH_TOKEN", "GITHUB_TOKEN", "GITHUB_PERSONAL_ACCESS_TOKEN"],
  aws: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"],
  kubernetes: ["KUBECONFIG"],
};

/**
 * A credential this close to its end (and ending before the writ) is replaced rather than used; a
 * short-lived one at three quarters of its life, so it is never replaced on every call.
 */
const RENEW_BEFORE_MS = 60_000;
const ISSUE_TIMEOUT_MS = 30_000;

/** A kubeconfig (JSON is YAML) holding one cluster, one user with the token, one context. */
function kubeconfig(c: Extract<DownstreamCredential, { system: "kubernetes" }>): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "writ",
        cluster: { server: c.server, ...(c.caData ? { "certificate-authority-data": c.caData } : {}) },
      },
    ],
    users: [{ name: "writ", user: { token: c.token } }],
    contexts: [{ name: "writ", context: { cluster: "writ", user: "writ" } }],
    "current-context": "writ",
  });
}

interface Injection {
  readonly inject: NonNullable<ConnectOptions["inject"]>;
  /** Removes what the injection left on disk. */
  readonly cleanup: () => Promise<void>;
}

/** How a credential reaches one upstream. */
export async function injectionFor(u: Upstream, c: DownstreamCredential): Promise<Injection> {
  const none = async () => {};
  if (u.kind === "http-upstream") {
    if (c.system === "aws") {
      throw new GatewayError(
        "gateway_error",
        `upstream ${q(u.id)}: AWS credentials cannot be sent over HTTP`,
      );
    }
    return { inject: { headers: { Authorization: `Bearer ${c.token}` } }, cleanup: none };
  }
  if (c.system === "github") {
    const env: Record<string, string> = {};
    for (const k of INJECTED_ENV.github) env[k] = c.token;
    return { inject: { env }, cleanup: none };
  }
  if (c.system === "aws") {
    return {
      inject: {
        env: {
          AWS_ACCESS_KEY_ID: c.accessKeyId,
          AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
          AWS_SESSION_TOKEN: c.sessionToken,
          AWS_CREDENTIAL_EXPIRATION: c.expiration.toISOString(),
        },
      },
      cleanup: none,
    };
  }
  // mkdtemp creates the directory 0700: only this user can reach the file inside
  const dir = await mkdtemp(join(tmpdir(), "writ-kube-"));
  const file = join(dir, "kubeconfig");
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await writeFile(file, kubeconfig(c), { mode: 0o600, flag: "wx" });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { inject: { env: { KUBECONFIG: file } }, cleanup };
}

interface Scope {
  readonly upstream: string;
  readonly writ: string;
  readonly agent: string;
  readonly environment: string;
  readonly system: DownstreamSystem;
  /** When this scope must be replaced (the credential's end, or the writ's). */
  expiresAt: number;
  /** When a credential that ends before the writ is replaced (never, when it lasts as long). */
  renewAt: number;
  readonly ready: Promise<{ conn: UpstreamConnection; credentialExpiresAt: Date }>;
  cleanup: () => Promise<void>;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

export interface ScopedUpstreams {
  /**
   * The writ's connection to `u`, started (and its credential minted) on first use. Refuses with a
   * `GatewayError`: `downstream_*` from the issuer, `upstream_busy` past `maxWrits`.
   */
  acquire(
    u: Upstream,
    writ: WritForIssuer,
    now: Date,
  ): Promise<{ conn: UpstreamConnection; credentialExpiresAt: Date }>;
  /** Stops every connection of the writs (or agents) matched. */
  closeWhere(match: (s: { writ: string; agent: string; environment: string }) => boolean, why: string): void;
  /** How many writ connections `upstream` has now. */
  count(upstream: string): number;
  /** The writs that have a connection now. */
  writs(): string[];
  close(): Promise<void>;
}

export interface ScopedOptions {
  readonly issuers: DownstreamIssuers | undefined;
  readonly connect: Omit<ConnectOptions, "inject" | "onToolsChanged">;
  readonly audit: (type: string, data: Record<string, unknown>) => Promise<unknown>;
  /** How long an issuer may take before the call is refused (`downstream_unavailable`; default 30 s). */
  readonly issueTimeoutMs?: number | undefined;
}

function refusalOf(err: unknown, system: DownstreamSystem): GatewayError {
  if (err instanceof GatewayError) return err;
  // the issuer's own message may name a URL or a status, never a secret; still, keep it short
  return new GatewayError(
    "downstream_unavailable",
    `no ${system} credential could be obtained for this writ: ${(err as Error)?.message ?? "error"}`.slice(
      0,
      500,
    ),
    { system },
  );
}

/** The issuer's credential for the writ, within the time limit, or the refusal (`downstream_*`). */
async function issueCredential(
  issuer: DownstreamIssuer | undefined,
  writ: WritForIssuer,
  system: DownstreamSystem,
  now: Date,
  limit: number,
): Promise<DownstreamCredential> {
  if (!issuer) {
    throw new GatewayError(
      "downstream_not_configured",
      `no ${system} issuer is configured for environment ${q(writ.environment)} (writ.yaml \`downstream:\`)`,
      { system },
    );
  }
  let out: DownstreamOutcome<DownstreamCredential>;
  let timer: NodeJS.Timeout | undefined;
  try {
    // a call never hangs on a slow issuer: refused once the limit passes
    out = await Promise.race([
      issuer.issue(writ, now),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the ${system} issuer did not answer within ${limit} ms`)),
          limit,
        );
      }),
    ]);
  } catch (err) {
    throw refusalOf(err, system);
  } finally {
    clearTimeout(timer);
  }
  // the issuer's refusal, its reason leading the message as the wire has always said it
  if (!out.ok) throw new GatewayError(out.reason, `${out.reason}: ${out.detail}`, { system });
  const credential = out.value;
  if (credential.system !== system) {
    throw new GatewayError(
      "downstream_unavailable",
      `the ${system} issuer answered a ${credential.system} credential`,
    );
  }
  return credential;
}

const stoppedWhileStarting = () =>
  new GatewayError("killed", "the writ's upstream was stopped while it started");

/** The writs' own connections, one per upstream and writ (a scope), each with its credential. */
class ScopedPool implements ScopedUpstreams {
  readonly #scopes = new Map<string, Scope>();
  readonly #o: ScopedOptions;

  constructor(o: ScopedOptions) {
    this.#o = o;
  }

  async acquire(
    u: Upstream,
    writ: WritForIssuer,
    now: Date,
  ): Promise<{ conn: UpstreamConnection; credentialExpiresAt: Date }> {
    if (!u.credentials)
      throw new GatewayError("gateway_error", `upstream ${q(u.id)} has no per-writ credentials`);
    const key = `${u.id}\0${writ.id}`;
    let s = this.#scopes.get(key);
    const t = now.getTime();
    // a credential ending before the writ does is replaced a little before its end
    if (s && (t >= s.expiresAt || t >= s.renewAt)) {
      this.#stop(key, s, "renewed");
      s = undefined;
    }
    if (!s) {
      if (t >= writ.expiresAt.getTime())
        throw new GatewayError("writ_expired", `writ ${q(writ.id)} has expired`);
      const max = u.credentials.maxWrits;
      if (this.count(u.id) >= max) {
        throw new GatewayError(
          "upstream_busy",
          `upstream ${q(u.id)} already runs for ${max} writs (\`credentials.maxWrits\`): retry when one ends`,
          { maxWrits: max },
        );
      }
      s = this.#start(u, writ, now, key);
      this.#scopes.set(key, s);
    }
    return s.ready;
  }

  closeWhere(match: (s: { writ: string; agent: string; environment: string }) => boolean, why: string): void {
    for (const [key, s] of [...this.#scopes]) if (match(s)) this.#stop(key, s, why);
  }

  writs(): string[] {
    return [...new Set([...this.#scopes.values()].map((s) => s.writ))];
  }

  count(upstream: string): number {
    let n = 0;
    for (const s of this.#scopes.values()) if (s.upstream === upstream) n++;
    return n;
  }

  async close(): Promise<void> {
    const all = [...this.#scopes];
    for (const [key, s] of all) this.#stop(key, s, "the gateway is shutting down");
    await Promise.allSettled(
      all.map(([, s]) => s.ready.then(({ conn }) => conn.close()).finally(() => s.cleanup())),
    );
  }

  #stop(key: string, s: Scope, why: string): void {
    if (s.closed) return;
    s.closed = true;
    if (s.timer) clearTimeout(s.timer);
    if (this.#scopes.get(key) === s) this.#scopes.delete(key);
    s.ready
      .then(
        ({ conn }) => conn.close(),
        () => {},
      )
      .catch(() => {})
      .finally(() => {
        s.cleanup().catch(() => {});
      });
    this.#o
      .audit("gateway.writ_upstream_stop", {
        server: s.upstream,
        writ: s.writ,
        agent: s.agent,
        system: s.system,
        why,
      })
      .catch(() => {});
  }

  #start(u: Upstream, writ: WritForIssuer, now: Date, key: string): Scope {
    const s: Scope = {
      upstream: u.id,
      writ: writ.id,
      agent: writ.agent,
      environment: writ.environment,
      system: u.credentials!.downstream,
      expiresAt: writ.expiresAt.getTime(),
      renewAt: Number.POSITIVE_INFINITY,
      cleanup: async () => {},
      timer: undefined,
      closed: false,
      ready: undefined as unknown as Scope["ready"],
    };
    const ready = this.#ready(s, u, writ, now, key);
    (s as { ready: Scope["ready"] }).ready = ready;
    // a failed start leaves nothing cached: the next call asks the issuer again
    ready.catch(() => {
      if (this.#scopes.get(key) === s) this.#scopes.delete(key);
      if (s.timer) clearTimeout(s.timer);
      s.closed = true;
    });
    return s;
  }

  /** Mints the credential, injects it, starts the writ's connection; stopped when either ends. */
  async #ready(
    s: Scope,
    u: Upstream,
    writ: WritForIssuer,
    now: Date,
    key: string,
  ): Promise<{ conn: UpstreamConnection; credentialExpiresAt: Date }> {
    const system = s.system;
    const issuer = this.#o.issuers?.(writ.environment, system);
    const credential = await issueCredential(
      issuer,
      writ,
      system,
      now,
      this.#o.issueTimeoutMs ?? ISSUE_TIMEOUT_MS,
    );
    const injection = await injectionFor(u, credential);
    s.cleanup = injection.cleanup;
    if (s.closed) {
      await injection.cleanup();
      throw stoppedWhileStarting();
    }
    const writExpiresAt = writ.expiresAt.getTime();
    const end = Math.min(credential.expiration.getTime(), writExpiresAt);
    s.expiresAt = end;
    if (end < writExpiresAt) s.renewAt = end - Math.min(RENEW_BEFORE_MS, (end - now.getTime()) / 4);
    // stopped when the credential (or the writ) ends: an expired writ leaves no process behind
    s.timer = setTimeout(
      () => this.#stop(key, s, "expired"),
      Math.min(2 ** 31 - 1, Math.max(0, end - now.getTime())),
    );
    s.timer.unref();
    const conn = await this.#connect(u, injection);
    if (s.closed) {
      await conn.close().catch(() => {});
      await injection.cleanup();
      throw stoppedWhileStarting();
    }
    await this.#o
      .audit("gateway.writ_upstream_start", {
        server: u.id,
        writ: writ.id,
        agent: writ.agent,
        system,
        transport: u.kind === "stdio-upstream" ? "stdio" : "http",
        credentialExpiresAt: credential.expiration.toISOString(),
      })
      .catch(() => {});
    return { conn, credentialExpiresAt: credential.expiration };
  }

  async #connect(u: Upstream, injection: Injection): Promise<UpstreamConnection> {
    try {
      return await connectUpstream(u, {
        ...this.#o.connect,
        inject: injection.inject,
        onToolsChanged: () => {},
      });
    } catch (err) {
      await injection.cleanup();
      throw err instanceof GatewayError
        ? err
        : new GatewayError(
            "upstream_unavailable",
            `upstream ${q(u.id)} could not be started for this writ: ${isWritError(err) ? err.message : "error"}`,
          );
    }
  }
}

export function scopedUpstreams(opts: ScopedOptions): ScopedUpstreams {
  return new ScopedPool(opts);
}

/**
 * At start (the composition root): every upstream with per-writ credentials must find its system
 * configured (`configured` answers truthy) in every environment writs are issued in (any playbook's). The problems, one per upstream
 * and environment; empty when all is configured.
 */
export function missingIssuers(
  config: WritConfig,
  configured: ((environment: string, system: DownstreamSystem) => unknown) | undefined,
): { upstream: string; system: DownstreamSystem; environment: string }[] {
  const out: { upstream: string; system: DownstreamSystem; environment: string }[] = [];
  const environments = new Set<string>();
  for (const p of config.playbooks.values()) for (const e of p.environments) environments.add(e);
  for (const u of config.gateway?.upstreams.values() ?? []) {
    if (!u.credentials) continue;
    for (const environment of [...environments].sort()) {
      if (!configured?.(environment, u.credentials.downstream)) {
        out.push({ upstream: u.id, system: u.credentials.downstream, environment });
      }
    }
  }
  return out;
}
