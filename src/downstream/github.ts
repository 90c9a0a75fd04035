/**
 * The GitHub downstream issuer (issue 11): a writ with `github:` grants is redeemed for a GitHub App
 * installation token (`POST /app/installations/{id}/access_tokens`, through `@octokit/auth-app`)
 * restricted to the writ's repositories and the writ's GitHub permission subset, never more
 * (`github/scope.ts` decides what to ask for; the answer is checked again before it is handed out).
 *
 * - The App's private key is read and checked when the issuer starts (`ERR_DOWNSTREAM_CONFIG`).
 * - The installation's account and permissions come from `GET /app/installations/{id}` (cached a
 *   minute): a writ asking for a permission the installation lacks is refused
 *   (`downstream_permission_missing`) with a reason naming it, before anything is minted.
 * - A grant naming repositories by a pattern (`acme/*-svc`) is resolved against the installation's
 *   repositories, listed with `GET /installation/repositories` by a token that can only read
 *   metadata, revoked as soon as the list is read. The token request always names its
 *   repositories: a pattern never widens to "all repositories".
 * - Every token is recorded in the ledger before it is minted (`intended`) and after (`created`,
 *   with GitHub's `hashed_token` form: base64 SHA-256, never the token). Revoking needs the token
 *   itself (`DELETE /installation/token` authenticates with it), so tokens are kept in this
 *   process's memory only, keyed by record id. After a restart they cannot be revoked: they end at
 *   GitHub's fixed one-hour lifetime, and the reaper marks their records removed then.
 * - The credential expires at min(GitHub's `expires_at`, the writ's expiry); when GitHub's token
 *   would outlive the writ the notes say so, and the reaper's revocation ends it at the writ's expiry.
 */
import { createHash, createPrivateKey, type KeyObject, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import { q, WritError } from "../core/index.js";
import {
  type GithubLevel,
  githubRules,
  githubScope,
  LEVELS,
  levelAtLeast,
  needsRepositoryList,
} from "./github/scope.js";
import { writIntent } from "./intent.js";
import {
  type DownstreamOutcome,
  DownstreamRefusal,
  type DownstreamRefused,
  issued,
  refused,
  refusedFrom,
  thrown,
} from "./refusal.js";
import {
  type DownstreamCredential,
  type DownstreamIssuer,
  type DownstreamReason,
  type DownstreamRecord,
  ERR_DOWNSTREAM_CONFIG,
  type GithubDownstreamConfig,
  type IssuerDeps,
  type WritForIssuer,
} from "./types.js";

/** GitHub's fixed lifetime of an installation token. */
export const INSTALLATION_TOKEN_LIFETIME_MS = 3600_000;
/** Slack for the clocks of writ and GitHub when bounding a token we no longer hold. */
const CLOCK_SLACK_MS = 5 * 60_000;
/** How long the installation's permissions and repository list are trusted. */
const INSTALLATION_CACHE_MS = 60_000;
/** Every call to GitHub is abandoned after this long. */
const REQUEST_TIMEOUT_MS = 10_000;
/** `GET /installation/repositories` pages read at most (100 repositories each). */
const MAX_LIST_PAGES = 100;
const KIND = "installation-token";

/** GitHub's `hashed_token` form (its audit log): base64 of the token's SHA-256. */
export function hashedToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64");
}

interface Held {
  readonly token: string;
  readonly writ: string;
  readonly agent: string;
  readonly expiresAt: Date;
}

interface InstallationInfo {
  readonly account: string;
  readonly permissions: Readonly<Record<string, GithubLevel>>;
  readonly at: number;
}

/**
 * `@octokit/auth-app` shares concurrent token requests with the same installation, repositories and
 * permissions (one promise, one token). Two writs must never share a token — revoking one would
 * end the other — so minting is serialised per installation, across every issuer of this process.
 */
const mintQueues = new Map<number, Promise<void>>();
async function serialized<T>(installation: number, fn: () => Promise<T>): Promise<T> {
  const prev = mintQueues.get(installation) ?? Promise.resolve();
  const run = prev.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  mintQueues.set(installation, tail);
  try {
    return await run;
  } finally {
    if (mintQueues.get(installation) === tail) mintQueues.delete(installation);
  }
}

function configError(message: string): WritError {
  return new WritError(ERR_DOWNSTREAM_CONFIG, `downstream github: ${message}`);
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function checkApiUrl(apiUrl: string): string {
  let u: URL;
  try {
    u = new URL(apiUrl);
  } catch {
    throw configError(`apiUrl ${q(apiUrl)} is not a URL`);
  }
  if (u.protocol !== "https:" && !(u.protocol === "http:" && LOOPBACK.has(u.hostname))) {
    throw configError(`apiUrl ${q(apiUrl)} must be https (plain http only on the loopback interface)`);
  }
  if (u.username || u.password || u.search || u.hash) {
    throw configError(`apiUrl ${q(apiUrl)} must not carry credentials, a query or a fragment`);
  }
  return u.toString().replace(/\/+$/, "");
}

/** Reads the App's private key (file or environment variable) and checks it is an RSA key. */
async function loadPrivateKey(
  source: GithubDownstreamConfig["privateKey"],
  env: Readonly<Record<string, string | undefined>>,
): Promise<KeyObject> {
  let pem: string;
  let where: string;
  if (source && "file" in source && typeof source.file === "string") {
    where = `file ${q(source.file)}`;
    try {
      pem = await readFile(source.file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw configError(`the App's private key ${where} cannot be read (${code})`);
    }
  } else if (source && "env" in source && typeof source.env === "string") {
    where = `environment variable ${q(source.env)}`;
    const value = env[source.env];
    if (value === undefined || value.trim() === "") {
      throw configError(`the App's private key ${where} is not set`);
    }
    // keys in environment variables often carry `\n` escapes instead of line breaks
    pem = value.replace(/\\n/g, "\n");
  } else {
    throw configError("privateKey must name a `file` or an `env` variable");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw configError(`the App's private key (${where}) is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw configError(
      `the App's private key (${where}) is a ${key.asymmetricKeyType ?? "non-RSA"} key: GitHub Apps sign with RSA (RS256)`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048)
    throw configError(`the App's private key (${where}) has ${bits} bits: at least 2048 are needed`);
  return key;
}

/**
 * GitHub's status and `message` from an octokit error; no status when GitHub did not answer
 * (octokit reports a network failure or a timeout as a 500 without a response).
 */
function githubError(e: unknown): { status?: number; message: string } {
  const err = e as {
    response?: { status?: unknown; data?: { message?: unknown } };
    message?: unknown;
  };
  const res = err?.response;
  if (res && typeof res.status === "number") {
    const message = typeof res.data?.message === "string" ? res.data.message.slice(0, 300) : "no message";
    return { status: res.status, message };
  }
  return { message: typeof err?.message === "string" ? err.message.slice(0, 200) : "no answer" };
}

function isLevel(v: unknown): v is GithubLevel {
  return typeof v === "string" && (LEVELS as readonly string[]).includes(v);
}

export async function githubIssuer(cfg: GithubDownstreamConfig, deps: IssuerDeps): Promise<DownstreamIssuer> {
  if (typeof cfg.appId !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(cfg.appId)) {
    throw configError(`appId ${q(cfg.appId)} is not a GitHub App id or client id`);
  }
  if (!Number.isSafeInteger(cfg.installationId) || cfg.installationId <= 0) {
    throw configError(`installationId ${q(cfg.installationId)} must be a positive integer`);
  }
  const baseUrl = checkApiUrl(cfg.apiUrl);
  const key = await loadPrivateKey(cfg.privateKey, deps.env ?? process.env);
  const installationId = cfg.installationId;
  const clock = deps.clock ?? (() => new Date());

  const request = octokitRequest.defaults({
    baseUrl,
    headers: { "user-agent": "writ-downstream-github", "x-github-api-version": "2022-11-28" },
    request: {
      fetch: (url: string | URL, init?: RequestInit) =>
        fetch(url, { ...init, redirect: "error", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
    },
  });
  const appAuth = createAppAuth({
    appId: cfg.appId,
    privateKey: key.export({ type: "pkcs8", format: "pem" }).toString(),
    installationId,
    request,
    // no token cache: every writ gets a token of its own, and this module is the only holder
    cache: { get: () => "", set: () => undefined },
    log: { warn: () => undefined },
  });

  return new GithubIssuer(installationId, clock, deps, request, appAuth);
}

type Request = typeof octokitRequest;
type Scope = Extract<ReturnType<typeof githubScope>, { ok: true }>;
type AppAuth = ReturnType<typeof createAppAuth>;

class GithubIssuer implements DownstreamIssuer {
  readonly system = "github" as const;
  private readonly ledger: IssuerDeps["ledger"];
  private readonly audit: IssuerDeps["audit"];
  /** The installation tokens this process minted and still holds, by record id (revocable). */
  private readonly held = new Map<string, Held>();
  /** Kills thrown so far: a token minted while one was thrown for its writ is revoked at once. */
  private readonly kills: { readonly writ?: string | undefined; readonly agent?: string | undefined }[] = [];
  private readonly reportedUnrevocable = new Set<string>();
  private installation: InstallationInfo | undefined;
  private repositoryList: { readonly names: readonly string[]; readonly at: number } | undefined;

  constructor(
    private readonly installationId: number,
    private readonly clock: () => Date,
    deps: IssuerDeps,
    private readonly request: Request,
    private readonly appAuth: AppAuth,
  ) {
    this.ledger = deps.ledger;
    this.audit = deps.audit;
  }

  /** The refusal of an issue for `writ`, audited. */
  private async refuse(
    writ: WritForIssuer,
    reason: DownstreamReason,
    message: string,
  ): Promise<DownstreamRefused> {
    await this.audit("downstream.refused", {
      system: "github",
      writ: writ.id,
      agent: writ.agent,
      installation: this.installationId,
      reason,
      message,
    });
    return refused(reason, message);
  }

  private unavailable(what: string, e: unknown): DownstreamRefused {
    const { status, message } = githubError(e);
    return refused(
      "downstream_unavailable",
      `GitHub ${status === undefined ? "did not answer" : `answered ${status}`} to ${what}: ${message}`,
    );
  }

  private async installationInfo(fresh = false): Promise<DownstreamOutcome<InstallationInfo>> {
    const t = this.clock().getTime();
    if (!fresh && this.installation && t - this.installation.at < INSTALLATION_CACHE_MS)
      return issued(this.installation);
    let data: { account?: { login?: unknown } | null; permissions?: Record<string, unknown> };
    try {
      const { token } = await this.appAuth({ type: "app" });
      const res = await this.request("GET /app/installations/{installation_id}", {
        installation_id: this.installationId,
        headers: { authorization: `bearer ${token}` },
      });
      data = res.data as typeof data;
    } catch (e) {
      return this.unavailable(`GET /app/installations/${this.installationId}`, e);
    }
    const login = data.account?.login;
    if (typeof login !== "string" || !/^[A-Za-z0-9_.-]{1,100}$/.test(login)) {
      return refused(
        "downstream_unavailable",
        `GitHub's answer for this.installation ${this.installationId} names no account`,
      );
    }
    const permissions: Record<string, GithubLevel> = {};
    for (const [p, l] of Object.entries(data.permissions ?? {})) if (isLevel(l)) permissions[p] = l;
    this.installation = { account: login, permissions, at: t };
    return issued(this.installation);
  }

  /** Mints one token (serialised per installation); the caller has recorded the intent. */
  private async mint(
    repositoryNames: readonly string[] | undefined,
    permissions: Readonly<Record<string, GithubLevel>>,
  ) {
    return serialized(this.installationId, () =>
      this.appAuth({
        type: "installation",
        installationId: this.installationId,
        ...(repositoryNames ? { repositoryNames: [...repositoryNames] } : {}),
        permissions: { ...permissions },
        refresh: true,
      }),
    );
  }

  /** `DELETE /installation/token`; true when revoked now or already dead (401), throws otherwise. */
  private async deleteToken(token: string): Promise<void> {
    try {
      await this.request("DELETE /installation/token", { headers: { authorization: `token ${token}` } });
    } catch (e) {
      if (githubError(e).status === 401) return; // revoked or expired already
      throw thrown(this.unavailable("DELETE /installation/token", e));
    }
  }

  /**
   * The installation's repository names, read with a token that can only read metadata, recorded
   * in the ledger under the writ that needed it and revoked as soon as the list is read.
   */
  private async listRepositories(
    writ: WritForIssuer,
    now: Date,
  ): Promise<DownstreamOutcome<readonly string[]>> {
    const t = this.clock().getTime();
    if (this.repositoryList && t - this.repositoryList.at < INSTALLATION_CACHE_MS)
      return issued(this.repositoryList.names);
    const rec = await this.ledger.intend(
      writIntent(writ, {
        id: randomUUID(),
        system: "github",
        kind: KIND,
        locator: {
          installation: this.installationId,
          purpose: "list-repositories",
          permissions: { metadata: "read" },
        },
        expiresAt: new Date(now.getTime() + INSTALLATION_TOKEN_LIFETIME_MS + CLOCK_SLACK_MS),
      }),
    );
    let token: string;
    let expiresAt: Date;
    try {
      const auth = await this.mint(undefined, { metadata: "read" });
      token = auth.token;
      expiresAt = new Date(auth.expiresAt);
    } catch (e) {
      const err = this.unavailable(`POST /app/installations/${this.installationId}/access_tokens`, e);
      const status = githubError(e).status;
      if (status !== undefined && status >= 400 && status < 500) await this.ledger.removed(rec.id);
      return err;
    }
    this.held.set(rec.id, { token, writ: writ.id, agent: writ.agent, expiresAt });
    let names: DownstreamOutcome<string[]>;
    try {
      names = await this.readRepositories(writ, rec.id, token, expiresAt);
    } catch (e) {
      // the reaper retries through the ledger record if this revocation fails too
      await this.revokeHeld(rec.id, this.clock()).catch(() => undefined);
      throw e;
    }
    if (!names.ok) {
      await this.revokeHeld(rec.id, this.clock()).catch(() => undefined);
      return names;
    }
    try {
      await this.revokeHeld(rec.id, this.clock());
    } catch (e) {
      if (e instanceof DownstreamRefusal) return refusedFrom(e);
      throw e;
    }
    this.repositoryList = { names: names.value, at: t };
    return names;
  }

  /** The list-repositories token recorded as created and audited, then the installation's repositories read with it. */
  private async readRepositories(
    writ: WritForIssuer,
    id: string,
    token: string,
    expiresAt: Date,
  ): Promise<DownstreamOutcome<string[]>> {
    const names: string[] = [];
    await this.ledger.created(id, {
      installation: this.installationId,
      purpose: "list-repositories",
      permissions: { metadata: "read" },
      hashedToken: hashedToken(token),
      tokenExpiresAt: expiresAt.toISOString(),
    });
    await this.audit("downstream.issued", {
      system: "github",
      kind: KIND,
      purpose: "list-repositories",
      record: id,
      writ: writ.id,
      agent: writ.agent,
      installation: this.installationId,
      permissions: { metadata: "read" },
      hashedToken: hashedToken(token),
      tokenExpiresAt: expiresAt.toISOString(),
    });
    for (let page = 1; page <= MAX_LIST_PAGES; page++) {
      let res: Awaited<ReturnType<typeof octokitRequest>>;
      try {
        res = await this.request("GET /installation/repositories", {
          per_page: 100,
          page,
          headers: { authorization: `token ${token}` },
        });
      } catch (e) {
        return this.unavailable("GET /installation/repositories", e);
      }
      const data = res.data as { total_count?: unknown; repositories?: { name?: unknown }[] };
      const repos = Array.isArray(data.repositories) ? data.repositories : [];
      for (const r of repos) if (typeof r?.name === "string") names.push(r.name);
      const total = typeof data.total_count === "number" ? data.total_count : names.length;
      if (repos.length === 0 || names.length >= total) break;
      if (page === MAX_LIST_PAGES) {
        return refused(
          "downstream_unavailable",
          `the installation has more than ${MAX_LIST_PAGES * 100} repositories: name them literally in the playbook`,
        );
      }
    }
    return issued(names);
  }

  private async revokeHeld(id: string, now: Date): Promise<void> {
    const h = this.held.get(id);
    if (!h) return;
    await this.deleteToken(h.token);
    this.held.delete(id);
    await this.ledger.removed(id);
    await this.audit("downstream.revoked", {
      system: "github",
      record: id,
      writ: h.writ,
      agent: h.agent,
      installation: this.installationId,
      hashedToken: hashedToken(h.token),
      at: now.toISOString(),
    });
  }

  /** Drops tokens GitHub has expired from memory; their records go when the reaper next asks. */
  private forgetDead(now: Date): void {
    for (const [id, h] of this.held) {
      if (h.expiresAt.getTime() + CLOCK_SLACK_MS < now.getTime()) this.held.delete(id);
    }
  }

  private killedSince(from: number, writ: WritForIssuer): boolean {
    for (let i = from; i < this.kills.length; i++) {
      const k = this.kills[i]!;
      if ((k.writ === undefined || k.writ === writ.id) && (k.agent === undefined || k.agent === writ.agent)) {
        return true;
      }
    }
    return false;
  }

  /**
   * An installation token for the writ, in order: scoped (the installation read, its repositories
   * listed when a pattern needs them, the writ's grants fitted to one token), intent recorded,
   * minted, GitHub's answer checked (exactly what was asked, no kill thrown meanwhile), handed out.
   */
  async issue(writ: WritForIssuer, now: Date): Promise<DownstreamOutcome<DownstreamCredential>> {
    const killMark = this.kills.length;
    this.forgetDead(now);
    const scoped = await this.scoped(writ, now);
    if (!scoped.ok) return scoped;
    const { inst, scope } = scoped.value;
    const { rec, locator } = await this.intent(writ, now, inst, scope);
    const auth = await this.minted(writ, inst, scope, rec);
    if (!auth.ok) return auth;
    const answered = await this.answered(writ, now, scope, rec, auth.value, killMark);
    if (!answered.ok) return answered;
    const { token, ghExpiry } = answered.value;
    return issued(await this.handedOut(writ, scope, inst, rec, locator, token, ghExpiry));
  }

  /** The installation and the token's scope for the writ, or its refusal (audited). */
  private async scoped(
    writ: WritForIssuer,
    now: Date,
  ): Promise<DownstreamOutcome<{ inst: InstallationInfo; scope: Scope }>> {
    if (githubRules(writ.grants).length === 0) {
      return this.refuse(writ, "downstream_no_grants", "the writ grants nothing on github");
    }
    if (writ.expiresAt.getTime() <= now.getTime()) {
      return this.refuse(writ, "downstream_no_grants", `the writ expired at ${writ.expiresAt.toISOString()}`);
    }
    const read = await this.installationInfo();
    if (!read.ok) return this.refuse(writ, read.reason, read.detail);
    let inst = read.value;
    let repositories: readonly string[] | undefined;
    if (needsRepositoryList(writ.grants)) {
      const listed = await this.listRepositories(writ, now);
      if (!listed.ok) return this.refuse(writ, listed.reason, listed.detail);
      repositories = listed.value;
    }
    const scopeFor = (i: InstallationInfo) =>
      githubScope({
        grants: writ.grants,
        denies: writ.denies,
        account: i.account,
        repositories,
        installation: i.permissions,
      });
    let scope = scopeFor(inst);
    if (!scope.ok && scope.reason === "downstream_permission_missing") {
      // the installation may have been granted more since it was read: read it again before refusing
      const again = await this.installationInfo(true);
      if (!again.ok) return this.refuse(writ, again.reason, again.detail);
      inst = again.value;
      scope = scopeFor(inst);
    }
    if (!scope.ok) {
      const detail =
        scope.reason === "downstream_permission_missing"
          ? scope.message.replace("installation lacks", `installation ${this.installationId} lacks`)
          : scope.message;
      return this.refuse(writ, scope.reason, detail);
    }

    return issued({ inst, scope });
  }

  /** The token's record, before it is minted: GitHub's one hour from about now, at most the writ's life. */
  private async intent(writ: WritForIssuer, now: Date, inst: InstallationInfo, scope: Scope) {
    // GitHub's token lives one hour from its creation, a moment after this: the record allows for it
    const intentExpiry = Math.min(
      writ.expiresAt.getTime(),
      now.getTime() + INSTALLATION_TOKEN_LIFETIME_MS + CLOCK_SLACK_MS,
    );
    const locator = {
      installation: this.installationId,
      account: inst.account,
      repositories: scope.repositories,
      permissions: scope.permissions,
    };
    const rec = await this.ledger.intend(
      writIntent(writ, {
        id: randomUUID(),
        system: "github",
        kind: KIND,
        locator,
        expiresAt: new Date(intentExpiry),
      }),
    );

    return { rec, locator };
  }

  /** The token minted; a refusal by GitHub (4xx) removes the intent, anything else leaves it to the reaper. */
  private async minted(
    writ: WritForIssuer,
    inst: InstallationInfo,
    scope: Scope,
    rec: DownstreamRecord,
  ): Promise<DownstreamOutcome<Awaited<ReturnType<GithubIssuer["mint"]>>>> {
    try {
      return issued(await this.mint(scope.repositories, scope.permissions));
    } catch (e) {
      const { status, message } = githubError(e);
      // GitHub refused the request (4xx): nothing was created. Otherwise the record stays for the reaper.
      if (status !== undefined && status >= 400 && status < 500) await this.ledger.removed(rec.id);
      this.installation = undefined; // re-read the this.installation next time
      if (status === 422) {
        const what = /permission/i.test(message)
          ? `permissions ${q(scope.permissions)}`
          : `repositories ${q(scope.repositories.map((r) => `${inst.account}/${r}`))}`;
        return this.refuse(
          writ,
          "downstream_permission_missing",
          `GitHub refused ${what} for this.installation ${this.installationId}: ${message}`,
        );
      }
      return this.refuse(
        writ,
        "downstream_unavailable",
        this.unavailable(`POST /app/installations/${this.installationId}/access_tokens`, e).detail,
      );
    }
  }

  /** The token held, GitHub's answer checked against what was asked and against kills thrown meanwhile. */
  private async answered(
    writ: WritForIssuer,
    now: Date,
    scope: Scope,
    rec: DownstreamRecord,
    auth: Awaited<ReturnType<GithubIssuer["mint"]>>,
    killMark: number,
  ): Promise<DownstreamOutcome<{ token: string; ghExpiry: Date }>> {
    const ghExpiry = new Date(auth.expiresAt);
    const token = auth.token;
    this.held.set(rec.id, {
      token,
      writ: writ.id,
      agent: writ.agent,
      expiresAt: Number.isNaN(ghExpiry.getTime())
        ? new Date(now.getTime() + INSTALLATION_TOKEN_LIFETIME_MS)
        : ghExpiry,
    });

    // GitHub's answer must be what was asked: no other repository, no other permission or level
    const problem = answerProblem(auth, scope.repositories, scope.permissions, ghExpiry, now);
    const killed = this.killedSince(killMark, writ);
    if (problem || killed) {
      await this.revokeHeld(rec.id, this.clock()).catch(() => undefined);
      if (killed)
        return this.refuse(
          writ,
          "downstream_unavailable",
          "the kill switch was thrown while the token was minted",
        );
      return this.refuse(writ, "downstream_scope_exceeds_writ", problem!);
    }

    return issued({ token, ghExpiry });
  }

  /** The record's result, the notes on the token's life, the audit, the credential; else revoked. */
  private async handedOut(
    writ: WritForIssuer,
    scope: Scope,
    inst: InstallationInfo,
    rec: DownstreamRecord,
    locator: Record<string, unknown>,
    token: string,
    ghExpiry: Date,
  ): Promise<DownstreamCredential> {
    try {
      await this.ledger.created(rec.id, {
        ...locator,
        hashedToken: hashedToken(token),
        tokenExpiresAt: ghExpiry.toISOString(),
      });
      const expiration = new Date(Math.min(ghExpiry.getTime(), writ.expiresAt.getTime()));
      const notes = [...scope.notes];
      if (ghExpiry.getTime() > writ.expiresAt.getTime()) {
        notes.push(
          `GitHub's token would live until ${ghExpiry.toISOString()}: writ revokes it when the writ expires at ${writ.expiresAt.toISOString()}`,
        );
      } else if (ghExpiry.getTime() < writ.expiresAt.getTime()) {
        notes.push(
          `GitHub installation tokens live one hour: redeem the writ again after ${ghExpiry.toISOString()}`,
        );
      }
      await this.audit("downstream.issued", {
        system: "github",
        kind: KIND,
        record: rec.id,
        writ: writ.id,
        agent: writ.agent,
        playbook: writ.playbook,
        installation: this.installationId,
        repositories: scope.repositories.map((r) => `${inst.account}/${r}`),
        permissions: scope.permissions,
        hashedToken: hashedToken(token),
        expiresAt: expiration.toISOString(),
        tokenExpiresAt: ghExpiry.toISOString(),
      });
      return {
        system: "github",
        token,
        expiration,
        repositories: scope.repositories.map((r) => `${inst.account}/${r}`),
        permissions: scope.permissions,
        notes,
      };
    } catch (e) {
      // no record or no audit, no credential
      await this.revokeHeld(rec.id, this.clock()).catch(() => undefined);
      throw e;
    }
  }

  async revoke(record: DownstreamRecord, now: Date): Promise<void> {
    if (record.system !== "github" || record.state === "removed") return;
    if (this.held.has(record.id)) {
      await this.revokeHeld(record.id, now);
      return;
    }
    // Not held by this process (it restarted): the token cannot be revoked without itself, and
    // ends at GitHub's one-hour lifetime. The record stays until then.
    const recorded = record.locator.tokenExpiresAt;
    const bound =
      typeof recorded === "string" && !Number.isNaN(Date.parse(recorded))
        ? Date.parse(recorded)
        : record.createdAt.getTime() + INSTALLATION_TOKEN_LIFETIME_MS + CLOCK_SLACK_MS;
    if (now.getTime() >= bound) {
      await this.ledger.removed(record.id);
      await this.audit("downstream.expired", {
        system: "github",
        record: record.id,
        writ: record.writ,
        agent: record.agent,
        installation: this.installationId,
      });
      return;
    }
    if (!this.reportedUnrevocable.has(record.id)) {
      this.reportedUnrevocable.add(record.id);
      await this.audit("downstream.unrevocable", {
        system: "github",
        record: record.id,
        writ: record.writ,
        agent: record.agent,
        installation: this.installationId,
        endsAt: new Date(bound).toISOString(),
        why: "the token is not held by this process (it restarted): it ends at GitHub's one-hour lifetime",
      });
    }
  }

  async kill(scope: { readonly writ?: string; readonly agent?: string }, now: Date): Promise<void> {
    this.kills.push({ writ: scope.writ, agent: scope.agent });
    const targets = [...this.held.entries()].filter(
      ([, h]) =>
        (scope.writ === undefined || h.writ === scope.writ) &&
        (scope.agent === undefined || h.agent === scope.agent),
    );
    const results = await Promise.allSettled(targets.map(([id]) => this.revokeHeld(id, now)));
    const failed = results.filter((r) => r.status === "rejected").length;
    // for one writ the ledger also knows the tokens this process no longer holds (minted before a
    // restart): they cannot be revoked and end at GitHub's one-hour lifetime
    const unrevocable =
      scope.writ === undefined
        ? undefined
        : (await this.ledger.ofWrit(scope.writ)).filter(
            (r) =>
              r.system === "github" &&
              r.state !== "removed" &&
              !this.held.has(r.id) &&
              (scope.agent === undefined || r.agent === scope.agent),
          ).length;
    await this.audit("downstream.killed", {
      system: "github",
      installation: this.installationId,
      scope: { ...(scope.writ ? { writ: scope.writ } : {}), ...(scope.agent ? { agent: scope.agent } : {}) },
      revoked: targets.length - failed,
      failed,
      ...(unrevocable !== undefined ? { unrevocable } : {}),
    });
    if (failed > 0) {
      const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected")!;
      const why = first.reason instanceof Error ? first.reason.message : "unknown";
      throw new DownstreamRefusal(
        "downstream_unavailable",
        `${failed} of ${targets.length} GitHub tokens could not be revoked (${why}); they end within an hour`,
      );
    }
  }
}

/** Why GitHub's answer differs from the request, or undefined when it is exactly it. */
function answerProblem(
  auth: { permissions?: Record<string, string>; repositoryNames?: string[] | undefined; token?: unknown },
  repositories: readonly string[],
  permissions: Readonly<Record<string, GithubLevel>>,
  expiry: Date,
  now: Date,
): string | undefined {
  if (typeof auth.token !== "string" || auth.token.length === 0) return "GitHub answered without a token";
  if (Number.isNaN(expiry.getTime())) return "GitHub answered without a valid `expires_at`";
  if (expiry.getTime() > now.getTime() + INSTALLATION_TOKEN_LIFETIME_MS + CLOCK_SLACK_MS) {
    return `GitHub's token expires at ${expiry.toISOString()}, later than its documented one-hour lifetime`;
  }
  const asked = new Set(repositories.map((r) => r.toLowerCase()));
  const got = auth.repositoryNames;
  if (!got || got.length === 0)
    return "GitHub's answer names no repositories: the token may reach all of them";
  for (const r of got) {
    if (!asked.has(r.toLowerCase())) return `GitHub's token reaches ${q(r)}, which was not asked for`;
  }
  for (const [p, l] of Object.entries(auth.permissions ?? {})) {
    const want = permissions[p];
    if (p === "metadata" && l === "read") continue; // every installation token reads metadata
    if (!isLevel(l) || !want || !levelAtLeast(want, l)) {
      return `GitHub's token carries ${q(`${p}:${l}`)}, which was not asked for`;
    }
  }
  return undefined;
}
