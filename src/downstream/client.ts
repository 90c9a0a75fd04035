/**
 * The agent's side of a redemption, for `writ creds`: a writ for one playbook intent whose audience
 * is the system's redemption endpoint, from the agent SDK (`client/`: baseline token, token
 * exchange, CIBA when the playbook needs approval, DPoP, `private_key_jwt`, nonces and short
 * slow-downs handled there), then redeemed at `POST /env/<env>/downstream/<system>` with a proof
 * bound to it for the system's credential. A refusal is the SDK's `WritRefusal` carrying the
 * broker's `reason`; a server that cannot be reached or answers something else than the protocol
 * says is a coded error (`ERR_CLIENT_UNREACHABLE`, `ERR_CLIENT_PROTOCOL`). No token is ever printed
 * by this module.
 */
import { createPrivateKey, type JsonWebKey, type KeyObject } from "node:crypto";
import {
  createWritClient,
  ERR_CLIENT_OPTIONS,
  ERR_CLIENT_PROTOCOL,
  refusalFromResponse,
  type WritProgress,
} from "../client/index.js";
import { isWritError, q, WritError } from "../core/errors.js";
import type { DownstreamSystem } from "./types.js";

export const ERR_CREDS_KEY = "ERR_CREDS_KEY";
export const ERR_CREDS_INSECURE_SERVER = "ERR_CREDS_INSECURE_SERVER";

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
  /**
   * Plain HTTP to a server that is not this machine (`--insecure-http`). Default false: an `http:`
   * server must be loopback, as the agent SDK holds it; anything else is `ERR_CREDS_INSECURE_SERVER`.
   */
  readonly allowInsecureHttp?: boolean | undefined;
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

/** The progress the SDK reports, as the lines `writ creds` prints on stderr. */
function progressLine(
  playbook: string,
  approvalTimeoutMs: number | undefined,
  e: WritProgress,
): string | undefined {
  switch (e.kind) {
    case "retrying":
      return `writ: the broker slows this agent down after a denial: retrying in ${e.retryAfter} s`;
    case "approval_requested": {
      const upTo = Math.min(e.expiresIn, (approvalTimeoutMs ?? Number.POSITIVE_INFINITY) / 1000);
      return `writ: playbook ${q(playbook)} needs approval: waiting for request ${e.authReqId} (up to ${Math.ceil(upTo)} s); approvers: writ approve ${e.authReqId}`;
    }
    case "approved":
      return `writ: request ${e.authReqId} approved`;
    default:
      return undefined;
  }
}

export function agentClient(opts: AgentClientOptions) {
  const server = opts.server.replace(/\/+$/, "");
  const issuer = `${server}/env/${opts.environment}`;
  const jwk = opts.key.key.export({ format: "jwk" });
  const allowInsecure = opts.allowInsecureHttp === true;
  let client: ReturnType<typeof createWritClient>;
  try {
    client = createWritClient({
      issuer,
      agentId: opts.agent,
      key: { ...jwk, ...(opts.key.kid === undefined ? {} : { kid: opts.key.kid }) } as JsonWebKey & {
        kty: string;
        d: string;
      },
      // the SDK's rule: plain HTTP to loopback only, unless allowed knowingly
      allowInsecureRequests: allowInsecure,
      ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
    });
  } catch (err) {
    // the SDK refuses an http: issuer only when it is another machine's
    if (!allowInsecure && isWritError(err) && err.code === ERR_CLIENT_OPTIONS && /^http:/i.test(server))
      throw new WritError(
        ERR_CREDS_INSECURE_SERVER,
        `the server ${q(server)} is plain HTTP to another machine: use https, or pass --insecure-http to allow it knowingly`,
      );
    throw err;
  }

  /** A baseline token (the agent's standing permissions), for `resource` when given. */
  const baseline = (resource?: string): Promise<string> => client.baselineToken(resource);

  /** The audience a writ needs to be redeemed for `system`. */
  const audienceOf = (system: DownstreamSystem) => `${issuer}/downstream/${system}`;

  /** A writ for `intent` with the audience `resource`: always a new one (each redemption spends a use). */
  async function writFor(intent: Intent, resource: string): Promise<string> {
    const writ = await client.getWrit(
      {
        playbook: intent.playbook,
        params: intent.params,
        ...(intent.ticket === undefined ? {} : { ticket: intent.ticket }),
        resource,
      },
      {
        reuse: false,
        ...(opts.approvalTimeoutMs === undefined ? {} : { approvalTimeout: opts.approvalTimeoutMs / 1000 }),
        onProgress: (e) => {
          const line = progressLine(intent.playbook, opts.approvalTimeoutMs, e);
          if (line !== undefined) opts.progress?.(line);
        },
      },
    );
    return writ.accessToken;
  }

  /** A writ for `intent`, its audience the redemption endpoint of `system`. */
  const writ = (intent: Intent, system: DownstreamSystem) => writFor(intent, audienceOf(system));

  /** Redeems a writ for the system's credential. */
  async function redeem(system: DownstreamSystem, token: string): Promise<Redeemed> {
    const where = `${issuer}/downstream/${system}`;
    const res = await client.fetchWithWrit(where, { method: "POST" }, { writ: { accessToken: token } });
    if (res.status !== 200) throw await refusalFromResponse(res, where);
    let b: Record<string, unknown>;
    try {
      b = (await res.json()) as Record<string, unknown>;
    } catch {
      throw new WritError(
        ERR_CLIENT_PROTOCOL,
        `${q(where)} answered 200 without JSON: is ${q(server)} a writ server?`,
      );
    }
    const expires = typeof b.expires_at === "string" ? new Date(b.expires_at) : undefined;
    const credential = b.credential;
    if (
      b === null ||
      b.system !== system ||
      typeof b.writ !== "string" ||
      expires === undefined ||
      Number.isNaN(expires.getTime()) ||
      credential === null ||
      typeof credential !== "object"
    )
      throw new WritError(ERR_CLIENT_PROTOCOL, "the redemption answer is not a credential");
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
