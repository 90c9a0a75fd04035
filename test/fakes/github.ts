/**
 * A fake GitHub REST API for the GitHub App endpoints writ's GitHub issuer uses, on 127.0.0.1:0,
 * driven in tests by the real `@octokit/auth-app`. There is no GitHub here, so this follows GitHub's
 * documented wire format (REST API 2022-11-28, its OpenAPI description and the "Generating a JSON
 * Web Token (JWT) for a GitHub App" page) and checks what GitHub checks:
 *
 * - the App JWT: three base64url parts, `alg` RS256 (anything else refused), the signature against
 *   the App's public key, `iss` = the App id (or its client id), integer `iat` not in the future,
 *   integer `exp` in the future and at most 10 minutes ahead, `exp - iat` at most 10 minutes;
 * - `GET /app/installations/{id}` (JWT): the installation, its account and its permissions;
 * - `POST /app/installations/{id}/access_tokens` (JWT): body `repositories` / `repository_ids` /
 *   `permissions`; 422 when a permission is unknown, at a level GitHub does not offer for it, or not
 *   granted to the installation ("The permissions requested are not granted to this installation."),
 *   422 when a repository is not the installation's, more than 500 repositories; 201 with `token`,
 *   `expires_at` (one hour), `permissions`, `repository_selection`, `repositories`;
 * - `GET /installation/repositories` (installation token): paginated (`per_page` ≤ 100, `page`);
 * - `DELETE /installation/token` (installation token): 204, the token is dead at once;
 * - uses of a token: `GET /repos/{owner}/{repo}` (metadata), `GET|PUT /repos/{owner}/{repo}/contents/{path}`
 *   (contents read/write): 401 "Bad credentials" for a dead, expired or unknown token, 404 for a
 *   repository outside the token, 403 "Resource not accessible by integration" for a missing permission;
 * - a request without `User-Agent` is refused (403), as GitHub does.
 *
 * docs/downstream-github.md lists what it does not reproduce (rate limits, the stateless token
 * format, GraphQL, the rest of the API, webhooks, exact error texts beyond those quoted above …).
 */
import { createPublicKey, type KeyObject, randomBytes, verify as verifySignature } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FakeLevel = "read" | "write" | "admin";

/** The levels GitHub accepts per App permission (OpenAPI `app-permissions`), kept apart from src/. */
const APP_PERMISSION_LEVELS: Readonly<Record<string, readonly FakeLevel[]>> = {
  actions: ["read", "write"],
  administration: ["read", "write"],
  artifact_metadata: ["read", "write"],
  attestations: ["read", "write"],
  checks: ["read", "write"],
  code_quality: ["read", "write"],
  codespaces: ["read", "write"],
  contents: ["read", "write"],
  dependabot_secrets: ["read", "write"],
  deployments: ["read", "write"],
  discussions: ["read", "write"],
  environments: ["read", "write"],
  issues: ["read", "write"],
  merge_queues: ["read", "write"],
  metadata: ["read", "write"],
  packages: ["read", "write"],
  pages: ["read", "write"],
  pull_requests: ["read", "write"],
  repository_custom_properties: ["read", "write"],
  repository_hooks: ["read", "write"],
  repository_projects: ["read", "write", "admin"],
  secret_scanning_alerts: ["read", "write"],
  secrets: ["read", "write"],
  security_events: ["read", "write"],
  single_file: ["read", "write"],
  statuses: ["read", "write"],
  vulnerability_alerts: ["read", "write"],
  workflows: ["write"],
  members: ["read", "write"],
  organization_administration: ["read", "write"],
  organization_projects: ["read", "write", "admin"],
  organization_secrets: ["read", "write"],
};
const RANK: Readonly<Record<FakeLevel, number>> = { read: 0, write: 1, admin: 2 };

const JWT_MAX_LIFETIME_S = 600;
const MAX_TOKEN_REPOSITORIES = 500;
const MAX_BODY = 1024 * 1024;

export interface FakeInstallation {
  readonly id: number;
  readonly account: string;
  readonly permissions: Readonly<Record<string, FakeLevel>>;
  readonly repositories: readonly string[];
  /** `all`: the App was installed on every repository of the account. Default `selected`. */
  readonly repositorySelection?: "all" | "selected";
}

export interface FakeGithubOptions {
  readonly appId: number;
  readonly clientId?: string;
  /** The App's public key (PEM or KeyObject): what GitHub keeps of the key pair. */
  readonly publicKey: string | KeyObject;
  readonly installations: readonly FakeInstallation[];
  /** Installation token lifetime; GitHub's is fixed at one hour. */
  readonly tokenLifetimeMs?: number;
  readonly now?: () => number;
  /** Awaited before each token is minted (tests: a slow GitHub, a kill while minting). */
  readonly beforeMint?: () => Promise<void>;
  /**
   * Rewrites the 201 answer of a token request and the token's real scope (tests only: a GitHub
   * that answers more than was asked, which the issuer must catch).
   */
  readonly tamper?: (answer: Record<string, unknown>, token: FakeToken) => FakeToken;
}

export interface FakeToken {
  readonly token: string;
  readonly installation: number;
  readonly permissions: Readonly<Record<string, FakeLevel>>;
  /** Lower-case repository names. */
  readonly repositories: ReadonlySet<string>;
  readonly expiresAt: number;
  revokedAt?: number;
  readonly createdAt: number;
}

export interface FakeCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly at: number;
  /** The parsed JSON body of POST/PUT requests. */
  readonly body?: unknown;
  /** The token used, for installation-token requests (tests only: real GitHub logs a hash). */
  readonly token?: string;
}

export interface FakeGithub {
  readonly url: string;
  readonly calls: FakeCall[];
  readonly tokens: ReadonlyMap<string, FakeToken>;
  /** Changes an installation's permissions (the owner accepting or narrowing them). */
  setInstallationPermissions(id: number, permissions: Record<string, FakeLevel>): void;
  /** Tokens minted and not revoked nor expired. */
  liveTokens(): FakeToken[];
  /**
   * What GitHub would answer to a use of `token` needing `permission` at `level` on `owner/repo`
   * (200, 401, 403 or 404), recorded in `calls` as `USE`; the HTTP routes do the same checks.
   */
  use(token: string, permission: string, level: FakeLevel, repository: string): number;
  close(): Promise<void>;
}

interface Repo {
  readonly id: number;
  readonly name: string;
}
interface Inst {
  readonly id: number;
  readonly account: string;
  readonly accountId: number;
  permissions: Record<string, FakeLevel>;
  readonly repositories: readonly Repo[];
  readonly selection: "all" | "selected";
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const DOCS = "https://docs.github.com/rest";

function b64urlJson(part: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error("not base64url");
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function githubTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export async function startFakeGithub(opts: FakeGithubOptions): Promise<FakeGithub> {
  const publicKey = typeof opts.publicKey === "string" ? createPublicKey(opts.publicKey) : opts.publicKey;
  const now = opts.now ?? Date.now;
  const lifetime = opts.tokenLifetimeMs ?? 3600_000;
  let nextId = 1000;
  const installations = new Map<number, Inst>();
  for (const i of opts.installations) {
    installations.set(i.id, {
      id: i.id,
      account: i.account,
      accountId: nextId++,
      permissions: { ...i.permissions, metadata: i.permissions.metadata ?? "read" },
      repositories: i.repositories.map((name) => ({ id: nextId++, name })),
      selection: i.repositorySelection ?? "selected",
    });
  }
  const tokens = new Map<string, FakeToken>();
  const calls: FakeCall[] = [];
  let url = "";

  function repoJson(inst: Inst, r: Repo): Record<string, unknown> {
    return {
      id: r.id,
      node_id: Buffer.from(`010:Repository${r.id}`).toString("base64"),
      name: r.name,
      full_name: `${inst.account}/${r.name}`,
      private: true,
      owner: { login: inst.account, id: inst.accountId, type: "Organization" },
      html_url: `https://github.com/${inst.account}/${r.name}`,
      url: `${url}/repos/${inst.account}/${r.name}`,
      default_branch: "main",
    };
  }

  function installationJson(inst: Inst): Record<string, unknown> {
    return {
      id: inst.id,
      account: { login: inst.account, id: inst.accountId, type: "Organization" },
      repository_selection: inst.selection,
      access_tokens_url: `${url}/app/installations/${inst.id}/access_tokens`,
      repositories_url: `${url}/installation/repositories`,
      app_id: opts.appId,
      target_id: inst.accountId,
      target_type: "Organization",
      permissions: { ...inst.permissions },
      events: [],
      created_at: "2026-01-01T00:00:00Z",
      updated_at: "2026-01-01T00:00:00Z",
      single_file_name: null,
      suspended_at: null,
      suspended_by: null,
    };
  }

  /** Checks the App JWT of `Authorization: Bearer <jwt>` as GitHub documents it. */
  function verifyAppJwt(req: IncomingMessage): void {
    const m = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!m) {
      throw new HttpError(401, "A JSON web token could not be decoded");
    }
    const parts = m[1]!.split(".");
    if (parts.length !== 3) throw new HttpError(401, "A JSON web token could not be decoded");
    let header: unknown;
    let payload: unknown;
    try {
      header = b64urlJson(parts[0]!);
      payload = b64urlJson(parts[1]!);
    } catch {
      throw new HttpError(401, "A JSON web token could not be decoded");
    }
    if (!isRecord(header) || !isRecord(payload))
      throw new HttpError(401, "A JSON web token could not be decoded");
    if (header.alg !== "RS256") {
      throw new HttpError(401, "A JSON web token could not be decoded (the algorithm must be RS256)");
    }
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const sig = Buffer.from(parts[2]!, "base64url");
    if (!verifySignature("RSA-SHA256", signed, publicKey, sig)) {
      throw new HttpError(401, "A JSON web token could not be decoded");
    }
    const iss = payload.iss;
    const issOk =
      (typeof iss === "number" && iss === opts.appId) ||
      (typeof iss === "string" &&
        (iss === String(opts.appId) || (opts.clientId !== undefined && iss === opts.clientId)));
    if (!issOk)
      throw new HttpError(401, "'Issuer' claim ('iss') must be an Integer or the client ID of the App");
    const t = Math.floor(now() / 1000);
    const { iat, exp } = payload;
    if (typeof iat !== "number" || !Number.isInteger(iat) || iat > t) {
      throw new HttpError(
        401,
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
      );
    }
    if (typeof exp !== "number" || !Number.isInteger(exp) || exp <= t) {
      throw new HttpError(
        401,
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
      );
    }
    if (exp - t > JWT_MAX_LIFETIME_S || exp - iat > JWT_MAX_LIFETIME_S) {
      throw new HttpError(401, "'Expiration time' claim ('exp') is too far in the future");
    }
  }

  /** The live installation token of `Authorization: token <t>` (or `Bearer <t>`). */
  function installationToken(req: IncomingMessage): FakeToken {
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!m) throw new HttpError(401, "Requires authentication");
    return liveToken(m[1]!);
  }

  function liveToken(value: string): FakeToken {
    const tok = tokens.get(value);
    if (!tok || tok.revokedAt !== undefined || now() >= tok.expiresAt)
      throw new HttpError(401, "Bad credentials");
    return tok;
  }

  function installationOf(idText: string): Inst {
    const id = Number(idText);
    const inst = Number.isSafeInteger(id) ? installations.get(id) : undefined;
    if (!inst) throw new HttpError(404, "Not Found");
    return inst;
  }

  function validation(message: string): HttpError {
    return new HttpError(422, message);
  }

  function createToken(inst: Inst, body: unknown): Record<string, unknown> {
    if (body !== undefined && !isRecord(body))
      throw validation("Invalid request.\n\nFor 'links/0/schema', is not an object.");
    const b = (body ?? {}) as Record<string, unknown>;
    // repositories
    let selected: Repo[] | undefined;
    if (b.repositories !== undefined || b.repository_ids !== undefined) {
      selected = [];
      const byName = new Map(inst.repositories.map((r) => [r.name.toLowerCase(), r]));
      const byId = new Map(inst.repositories.map((r) => [r.id, r]));
      if (b.repositories !== undefined) {
        if (!Array.isArray(b.repositories) || b.repositories.some((n) => typeof n !== "string")) {
          throw validation("Invalid request.\n\nFor 'properties/repositories', is not an array of strings.");
        }
        for (const n of b.repositories as string[]) {
          const r = byName.get(n.toLowerCase());
          if (!r) {
            throw validation(
              "There is at least one repository that does not exist or is not accessible to the parent installation.",
            );
          }
          selected.push(r);
        }
      }
      if (b.repository_ids !== undefined) {
        if (!Array.isArray(b.repository_ids) || b.repository_ids.some((n) => !Number.isInteger(n))) {
          throw validation(
            "Invalid request.\n\nFor 'properties/repository_ids', is not an array of integers.",
          );
        }
        for (const n of b.repository_ids as number[]) {
          const r = byId.get(n);
          if (!r) {
            throw validation(
              "There is at least one repository that does not exist or is not accessible to the parent installation.",
            );
          }
          selected.push(r);
        }
      }
      selected = [...new Map(selected.map((r) => [r.id, r])).values()];
      if (selected.length > MAX_TOKEN_REPOSITORIES) {
        throw validation(`Too many repositories: at most ${MAX_TOKEN_REPOSITORIES} can be listed.`);
      }
    }
    // permissions
    let permissions: Record<string, FakeLevel>;
    if (b.permissions !== undefined) {
      if (!isRecord(b.permissions))
        throw validation("Invalid request.\n\nFor 'properties/permissions', is not an object.");
      permissions = {};
      for (const [name, level] of Object.entries(b.permissions)) {
        const accepted = APP_PERMISSION_LEVELS[name];
        if (!accepted || typeof level !== "string" || !accepted.includes(level as FakeLevel)) {
          throw validation("The permissions requested are not granted to this installation.");
        }
        const has = inst.permissions[name];
        if (!has || RANK[has] < RANK[level as FakeLevel]) {
          throw validation("The permissions requested are not granted to this installation.");
        }
        permissions[name] = level as FakeLevel;
      }
      // every installation token can read metadata
      if (!permissions.metadata) permissions.metadata = "read";
    } else {
      permissions = { ...inst.permissions };
    }
    const token = `ghs_${randomBytes(27).toString("base64url").replace(/[-_]/g, "A").slice(0, 36)}`;
    const createdAt = now();
    const repos = selected ?? inst.repositories;
    const fake: FakeToken = {
      token,
      installation: inst.id,
      permissions,
      repositories: new Set(repos.map((r) => r.name.toLowerCase())),
      expiresAt: createdAt + lifetime,
      createdAt,
    };
    tokens.set(token, fake);
    const out: Record<string, unknown> = {
      token,
      expires_at: githubTime(fake.expiresAt),
      permissions,
      repository_selection: selected ? "selected" : inst.selection,
    };
    if (selected) out.repositories = selected.map((r) => repoJson(inst, r));
    if (opts.tamper) tokens.set(token, opts.tamper(out, fake));
    return out;
  }

  /** A use of an installation token on one repository, needing `permission` at `level`. */
  function use(
    req: IncomingMessage | string,
    owner: string,
    repo: string,
    permission: string,
    level: FakeLevel,
  ): Repo {
    const tok = typeof req === "string" ? liveToken(req) : installationToken(req);
    const inst = installations.get(tok.installation)!;
    const r = inst.repositories.find((x) => x.name.toLowerCase() === repo.toLowerCase());
    if (
      owner.toLowerCase() !== inst.account.toLowerCase() ||
      !r ||
      !tok.repositories.has(r.name.toLowerCase())
    ) {
      throw new HttpError(404, "Not Found");
    }
    const has = tok.permissions[permission];
    if (!has || RANK[has] < RANK[level]) throw new HttpError(403, "Resource not accessible by integration");
    return r;
  }

  const files = new Map<string, string>(); // `owner/repo/path` (lower-case repo) → base64 content

  async function route(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<[number, unknown]> {
    if (!req.headers["user-agent"]) {
      throw new HttpError(
        403,
        "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
      );
    }
    const u = new URL(req.url ?? "/", "http://x");
    const path = u.pathname;
    const method = req.method ?? "GET";
    const installationPath = /^\/app\/installations\/([^/]+)$/.exec(path);
    if (installationPath && method === "GET") {
      verifyAppJwt(req);
      return [200, installationJson(installationOf(installationPath[1]!))];
    }
    const tokensPath = /^\/app\/installations\/([^/]+)\/access_tokens$/.exec(path);
    if (tokensPath && method === "POST") {
      verifyAppJwt(req);
      const inst = installationOf(tokensPath[1]!);
      if (opts.beforeMint) await opts.beforeMint();
      return [201, createToken(inst, body)];
    }
    if (path === "/installation/repositories" && method === "GET") {
      const tok = installationToken(req);
      const inst = installations.get(tok.installation)!;
      const perPage = Math.min(100, Math.max(1, Number(u.searchParams.get("per_page") ?? 30) || 30));
      const page = Math.max(1, Number(u.searchParams.get("page") ?? 1) || 1);
      const all = inst.repositories.filter((r) => tok.repositories.has(r.name.toLowerCase()));
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const last = Math.max(1, Math.ceil(all.length / perPage));
      if (page < last) {
        res.setHeader(
          "link",
          `<${url}/installation/repositories?per_page=${perPage}&page=${page + 1}>; rel="next", <${url}/installation/repositories?per_page=${perPage}&page=${last}>; rel="last"`,
        );
      }
      return [
        200,
        {
          total_count: all.length,
          repository_selection: inst.selection,
          repositories: slice.map((r) => repoJson(inst, r)),
        },
      ];
    }
    if (path === "/installation/token" && method === "DELETE") {
      const tok = installationToken(req);
      tok.revokedAt = now();
      return [204, undefined];
    }
    const repoPath = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path);
    if (repoPath && method === "GET") {
      const inst = installations.get(installationToken(req).installation)!;
      const r = use(req, repoPath[1]!, repoPath[2]!, "metadata", "read");
      return [200, repoJson(inst, r)];
    }
    const contentsPath = /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/.exec(path);
    if (contentsPath) {
      const [, owner, repo, filePath] = contentsPath as unknown as [string, string, string, string];
      const key = `${owner.toLowerCase()}/${repo.toLowerCase()}/${filePath}`;
      if (method === "GET") {
        use(req, owner, repo, "contents", "read");
        const content = files.get(key);
        if (content === undefined) throw new HttpError(404, "Not Found");
        return [200, { type: "file", path: filePath, content, encoding: "base64" }];
      }
      if (method === "PUT") {
        use(req, owner, repo, "contents", "write");
        if (!isRecord(body) || typeof body.message !== "string" || typeof body.content !== "string") {
          throw validation('Invalid request.\n\n"message" and "content" wasn\'t supplied.');
        }
        const existed = files.has(key);
        files.set(key, body.content);
        return [existed ? 200 : 201, { content: { path: filePath }, commit: { message: body.message } }];
      }
    }
    throw new HttpError(404, "Not Found");
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () => {
      void (async () => {
        let status = 500;
        let payload: unknown;
        let parsed: unknown;
        try {
          if (size > MAX_BODY) throw new HttpError(413, "Payload too large");
          const text = Buffer.concat(chunks).toString("utf8");
          if (text.length > 0) {
            try {
              parsed = JSON.parse(text);
            } catch {
              throw new HttpError(400, "Problems parsing JSON");
            }
          }
          [status, payload] = await route(req, res, parsed);
        } catch (e) {
          if (e instanceof HttpError) {
            status = e.status;
            payload = { message: e.message, documentation_url: DOCS, status: String(e.status), ...e.extra };
          } else {
            status = 500;
            payload = { message: "Server Error" };
          }
        }
        const tokMatch = /^(?:token|bearer)\s+(ghs_\S+)$/i.exec(req.headers.authorization ?? "");
        calls.push({
          method: req.method ?? "GET",
          path: req.url ?? "/",
          status,
          at: now(),
          ...(parsed !== undefined ? { body: parsed } : {}),
          ...(tokMatch ? { token: tokMatch[1]! } : {}),
        });
        if (payload === undefined) {
          res.writeHead(status).end();
        } else {
          res
            .writeHead(status, { "content-type": "application/json; charset=utf-8" })
            .end(JSON.stringify(payload));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    calls,
    tokens,
    setInstallationPermissions(id, permissions) {
      const inst = installations.get(id);
      if (!inst) throw new Error(`no installation ${id}`);
      inst.permissions = { ...permissions, metadata: permissions.metadata ?? "read" };
    },
    use(token, permission, level, repository) {
      const [owner = "", repo = ""] = repository.split("/");
      let status = 200;
      try {
        use(token, owner, repo, permission, level);
      } catch (e) {
        if (!(e instanceof HttpError)) throw e;
        status = e.status;
      }
      calls.push({ method: "USE", path: `${repository} ${permission}:${level}`, status, at: now(), token });
      return status;
    },
    liveTokens() {
      const t = now();
      return [...tokens.values()].filter((k) => k.revokedAt === undefined && t < k.expiresAt);
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
