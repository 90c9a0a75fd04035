/**
 * The agent's side of a redemption, for `writ creds`: a baseline token (client_credentials with
 * private_key_jwt, RFC 7523, and a DPoP proof, RFC 9449), a writ for one playbook intent (token
 * exchange, RFC 8693 with RFC 9396 `authorization_details`; when the playbook needs approval, a
 * CIBA request polled until it is decided), then the writ redeemed at
 * `POST /env/<env>/downstream/<system>` for the system's credential.
 *
 * The DPoP key is made fresh for each client and never leaves the process; every proof is new
 * (`jti`), and a server nonce (`use_dpop_nonce`) is taken and retried once, as is a short slow-down
 * block (429 `repeated_denial` with `Retry-After` up to 10 s) waited out. A refusal is a
 * `BrokerRefusal` carrying the broker's `reason`; a server that cannot be reached or answers
 * something else than the protocol says is a coded error. No token is ever printed by this module.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  sign,
} from "node:crypto";
import { q, WritError } from "../core/errors.js";
import type { DownstreamSystem } from "./types.js";

export const ERR_CREDS_REFUSED = "ERR_CREDS_REFUSED";
export const ERR_CREDS_UNREACHABLE = "ERR_CREDS_UNREACHABLE";
export const ERR_CREDS_PROTOCOL = "ERR_CREDS_PROTOCOL";
export const ERR_CREDS_KEY = "ERR_CREDS_KEY";

/** The broker said no: its OAuth `error`, its `reason` (docs/reasons.md) and its description. */
export class BrokerRefusal extends WritError {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string,
    readonly description: string,
  ) {
    super(ERR_CREDS_REFUSED, `refused: ${reason}: ${description}`);
  }
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface AgentKey {
  readonly key: KeyObject;
  readonly alg: "EdDSA" | "ES256" | "ES384" | "RS256";
  readonly kid: string | undefined;
}

/** The agent's private key from its JWK text (members starting with `_` are comments). */
export function agentKeyFromJwk(text: string): AgentKey {
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new WritError(ERR_CREDS_KEY, "the agent key is not JSON (expected a private JWK)");
  }
  if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk))
    throw new WritError(ERR_CREDS_KEY, "the agent key is not a JWK object");
  const clean = Object.fromEntries(Object.entries(jwk).filter(([k]) => !k.startsWith("_")));
  if (clean.d === undefined)
    throw new WritError(ERR_CREDS_KEY, "the agent key is a public key: give the private JWK");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: clean as JsonWebKey, format: "jwk" });
  } catch (err) {
    throw new WritError(
      ERR_CREDS_KEY,
      `the agent key is not a usable private JWK: ${(err as Error).message}`,
    );
  }
  const alg =
    clean.kty === "OKP" && clean.crv === "Ed25519"
      ? "EdDSA"
      : clean.kty === "EC" && clean.crv === "P-256"
        ? "ES256"
        : clean.kty === "EC" && clean.crv === "P-384"
          ? "ES384"
          : clean.kty === "RSA"
            ? "RS256"
            : undefined;
  if (alg === undefined)
    throw new WritError(
      ERR_CREDS_KEY,
      `the agent key's type ${q(`${clean.kty}/${clean.crv ?? ""}`)} is not supported`,
    );
  return { key, alg, kid: typeof clean.kid === "string" ? clean.kid : undefined };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function jws(header: Record<string, unknown>, claims: unknown, key: KeyObject, alg: AgentKey["alg"]): string {
  const input = `${b64({ ...header, alg })}.${b64(claims)}`;
  const data = Buffer.from(input);
  const signature =
    alg === "EdDSA"
      ? sign(null, data, key)
      : alg === "RS256"
        ? sign("sha256", data, key)
        : sign(alg === "ES384" ? "sha384" : "sha256", data, { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

export interface AgentClientOptions {
  /** The broker's public base URL (what `writ serve` was told with `--public-url`). */
  readonly server: string;
  readonly environment: string;
  readonly agent: string;
  readonly key: AgentKey;
  readonly fetch?: Fetch | undefined;
  /** A line of progress (waiting for approval), for stderr. */
  readonly progress?: ((line: string) => void) | undefined;
  /** How long to wait for an approval at most, ms (default: until the request expires). */
  readonly approvalTimeoutMs?: number | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

export interface Intent {
  readonly playbook: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly ticket?: string | undefined;
}

export interface Redeemed {
  readonly system: DownstreamSystem;
  readonly writ: string;
  readonly expiresAt: Date;
  readonly notes: readonly string[];
  readonly credential: Readonly<Record<string, unknown>>;
}

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const CIBA = "urn:openid:params:grant-type:ciba";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
/** The longest the client waits when told to retry later (a slow-down block, a poll interval). */
const MAX_WAIT_MS = 60_000;
/** The longest slow-down block (`repeated_denial`) the client waits out by itself before giving up. */
const MAX_SLOW_DOWN_S = 10;

export function agentClient(opts: AgentClientOptions) {
  const server = opts.server.replace(/\/+$/, "");
  const issuer = `${server}/env/${opts.environment}`;
  const doFetch: Fetch = opts.fetch ?? ((url, init) => fetch(url, init));
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const dpopKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = dpopKey.publicKey.export({ format: "jwk" });
  const dpopJwk = { kty, crv, x, y };
  let nonce: string | undefined;

  const proof = (url: string, accessToken?: string) =>
    jws(
      { typ: "dpop+jwt", jwk: dpopJwk },
      {
        jti: randomUUID(),
        htm: "POST",
        htu: url,
        iat: Math.floor(Date.now() / 1000),
        ...(nonce === undefined ? {} : { nonce }),
        ...(accessToken === undefined
          ? {}
          : { ath: createHash("sha256").update(accessToken, "ascii").digest("base64url") }),
      },
      dpopKey.privateKey,
      "ES256",
    );

  const assertion = () => {
    const iat = Math.floor(Date.now() / 1000);
    return jws(
      opts.key.kid === undefined ? {} : { kid: opts.key.kid },
      { iss: opts.agent, sub: opts.agent, aud: issuer, iat, exp: iat + 60, jti: randomUUID() },
      opts.key.key,
      opts.key.alg,
    );
  };

  /** One POST; JSON back. Retries once with a server nonce when asked to. */
  async function post(
    url: string,
    init: { form?: Record<string, string>; accessToken?: string; clientAuth?: boolean; dpop?: boolean },
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (init.dpop !== false) headers.dpop = proof(url, init.accessToken);
      if (init.accessToken !== undefined) headers.authorization = `DPoP ${init.accessToken}`;
      let body: string | undefined;
      if (init.form !== undefined) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        const form = { ...init.form };
        if (init.clientAuth !== false) {
          form.client_id = opts.agent;
          form.client_assertion_type = JWT_BEARER;
          form.client_assertion = assertion();
        }
        body = new URLSearchParams(form).toString();
      }
      let res: Response;
      try {
        res = await doFetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        throw new WritError(ERR_CREDS_UNREACHABLE, `cannot reach ${q(server)}: ${(err as Error).message}`);
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new WritError(
          ERR_CREDS_PROTOCOL,
          `${q(url)} answered ${res.status} without JSON: is ${q(server)} a writ server?`,
        );
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
        throw new WritError(
          ERR_CREDS_PROTOCOL,
          `${q(url)} answered ${res.status} with JSON that is not an object`,
        );
      const fresh = res.headers.get("dpop-nonce");
      if (fresh) nonce = fresh;
      const b = parsed as Record<string, unknown>;
      if (b.error === "use_dpop_nonce" && fresh && attempt === 0) continue;
      // slowed down after an earlier denial: waiting as told is enough, once, if it is short
      const retryAfter = Number(res.headers.get("retry-after"));
      if (res.status === 429 && attempt < 2 && retryAfter > 0 && retryAfter <= MAX_SLOW_DOWN_S) {
        opts.progress?.(`writ: the broker slows this agent down after a denial: retrying in ${retryAfter} s`);
        await sleep(retryAfter * 1000);
        continue;
      }
      return { status: res.status, body: b, headers: res.headers };
    }
  }

  function refusal(r: { status: number; body: Record<string, unknown> }): BrokerRefusal {
    const text = (v: unknown, fallback: string) => (typeof v === "string" && v !== "" ? v : fallback);
    return new BrokerRefusal(
      r.status,
      text(r.body.error, "server_error"),
      text(r.body.reason, text(r.body.error, "unknown")),
      text(r.body.error_description, text(r.body.detail, `HTTP ${r.status}`)),
    );
  }

  const waitMs = (headers: Headers, fallbackS: number) => {
    const s = Number(headers.get("retry-after") ?? headers.get("x-writ-retry-after") ?? fallbackS);
    return Math.min(MAX_WAIT_MS, Math.max(0, Number.isFinite(s) ? s : fallbackS) * 1000);
  };

  /** A baseline token (the agent's standing permissions), for `resource` when given. */
  async function baseline(resource?: string): Promise<string> {
    const form: Record<string, string> = { grant_type: "client_credentials" };
    if (resource !== undefined) form.resource = resource;
    const r = await post(`${issuer}/token`, { form });
    if (r.status !== 200 || typeof r.body.access_token !== "string") throw refusal(r);
    return r.body.access_token;
  }

  const detailsOf = (intent: Intent) =>
    JSON.stringify([
      {
        type: "writ_playbook",
        playbook: intent.playbook,
        parameters: intent.params,
        ...(intent.ticket === undefined ? {} : { ticket: intent.ticket }),
      },
    ]);

  /** Polls an approval request until it is decided (CIBA poll mode). */
  async function approved(intent: Intent, resource: string, retryAfterMs: number): Promise<string> {
    // the refusal that said "approval required" started a short slow-down block: wait it out
    await sleep(retryAfterMs);
    const ask = await post(`${issuer}/bc-authorize`, {
      form: { authorization_details: detailsOf(intent), resource },
      dpop: false,
    });
    if (ask.status !== 200 || typeof ask.body.auth_req_id !== "string") throw refusal(ask);
    const id = ask.body.auth_req_id;
    const expiresIn = typeof ask.body.expires_in === "number" ? ask.body.expires_in : 600;
    let interval = typeof ask.body.interval === "number" ? ask.body.interval : 5;
    const deadline =
      Date.now() + Math.min(expiresIn * 1000, opts.approvalTimeoutMs ?? Number.POSITIVE_INFINITY);
    opts.progress?.(
      `writ: playbook ${q(intent.playbook)} needs approval: waiting for request ${id} (up to ${Math.ceil((deadline - Date.now()) / 1000)} s); approvers: writ approve ${id}`,
    );
    for (;;) {
      await sleep(Math.min(MAX_WAIT_MS, interval * 1000));
      const r = await post(`${issuer}/token`, { form: { grant_type: CIBA, auth_req_id: id, resource } });
      if (r.status === 200 && typeof r.body.access_token === "string") {
        opts.progress?.(`writ: request ${id} approved`);
        return r.body.access_token;
      }
      if (r.body.error === "slow_down") interval += 5;
      else if (r.body.error !== "authorization_pending") throw refusal(r);
      if (Date.now() >= deadline)
        throw new BrokerRefusal(
          408,
          "expired_token",
          "approval_timeout",
          `no decision on request ${id} in time`,
        );
    }
  }

  /** The audience a writ needs to be redeemed for `system`. */
  const audienceOf = (system: DownstreamSystem) => `${issuer}/downstream/${system}`;

  /** A writ for `intent`, its audience the redemption endpoint of `system`. */
  const writ = (intent: Intent, system: DownstreamSystem) => writFor(intent, audienceOf(system));

  /** A writ for `intent` with the audience `resource`. */
  async function writFor(intent: Intent, resource: string): Promise<string> {
    const subject = await baseline();
    const r = await post(`${issuer}/token`, {
      form: {
        grant_type: TOKEN_EXCHANGE,
        subject_token: subject,
        subject_token_type: ACCESS_TOKEN,
        resource,
        authorization_details: detailsOf(intent),
      },
    });
    if (r.status === 200 && typeof r.body.access_token === "string") return r.body.access_token;
    if (r.body.reason === "approval_required") return approved(intent, resource, waitMs(r.headers, 1));
    throw refusal(r);
  }

  /** Redeems a writ for the system's credential. */
  async function redeem(system: DownstreamSystem, token: string): Promise<Redeemed> {
    const r = await post(`${issuer}/downstream/${system}`, { accessToken: token });
    if (r.status !== 200) throw refusal(r);
    const b = r.body;
    const expires = typeof b.expires_at === "string" ? new Date(b.expires_at) : undefined;
    const credential = b.credential;
    if (
      b.system !== system ||
      typeof b.writ !== "string" ||
      expires === undefined ||
      Number.isNaN(expires.getTime()) ||
      credential === null ||
      typeof credential !== "object"
    )
      throw new WritError(ERR_CREDS_PROTOCOL, "the redemption answer is not a credential");
    const notes = Array.isArray(b.notes) ? b.notes.filter((n): n is string => typeof n === "string") : [];
    return {
      system,
      writ: b.writ,
      expiresAt: expires,
      notes,
      credential: credential as Record<string, unknown>,
    };
  }

  return { baseline, writ, writFor, redeem, issuer, audienceOf };
}

export type AgentClient = ReturnType<typeof agentClient>;
