/**
 * The agent's side of writ (docs/client.md), on oauth4webapi: a baseline token (client_credentials,
 * RFC 6749, with `private_key_jwt`, RFC 7523), exchanged with a playbook intent for a writ (token
 * exchange, RFC 8693, with RFC 9396 `authorization_details` and an RFC 8707 `resource`); when the
 * playbook needs approval, a CIBA request (poll mode) waited on; every request bound by DPoP
 * (RFC 9449) to one key pair made for this client, which never leaves the process.
 *
 * A server nonce (`use_dpop_nonce`) is taken and the request retried once; a 429 whose
 * `Retry-After` is short (`maxRetryAfter`) is waited out, up to three times; anything else the
 * broker refuses is a `WritRefusal` with its `reason`. Writs are kept per request (playbook,
 * parameters, ticket, resource) and handed out again until `reuseMargin` before they expire; the
 * baseline token likewise. No token is ever logged by this module.
 */
import { q, WritError } from "../core/errors.js";
import { Broker } from "./broker.js";
import { ERR_CLIENT_OPTIONS } from "./errors.js";
import type { AgentKeyInput } from "./key.js";
import { insecureCheck, Session } from "./session.js";
import { MAX_RETRY_AFTER } from "./wire.js";

export interface WritClientOptions {
  /** The environment's issuer: `<writ serve's public URL>/env/<environment>`. */
  readonly issuer: string | URL;
  /** The agent's id in writ.yaml (its OAuth `client_id`). */
  readonly agentId: string;
  /** The agent's private key, one of those writ.yaml registers for it (by `kid`). */
  readonly key: AgentKeyInput;
  /** Plain HTTP to a host other than this machine (loopback is always allowed). Default false. */
  readonly allowInsecureRequests?: boolean;
  /** The longest `Retry-After` (s) of a 429 waited out by the client itself. Default 10. */
  readonly maxRetryAfter?: number;
  /** A writ (and the baseline token) is reused until this long (s) before it expires. Default 30. */
  readonly reuseMargin?: number;
  /** Each HTTP request's timeout, ms. Default 30,000. */
  readonly timeoutMs?: number;
  /** Progress while waiting (approvals, slow-downs), unless `getWrit` is given its own. */
  readonly onProgress?: (event: WritProgress) => void;
  /** A fetch implementation (tests, proxies). Default the global `fetch`. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** What the agent asks a writ for: one run of one playbook, for one audience. */
export interface WritRequest {
  readonly playbook: string;
  readonly params?: Readonly<Record<string, unknown>>;
  /** The change ticket, where the environment or playbook asks for one. */
  readonly ticket?: string;
  /** The audience (RFC 8707): the resource server that will take the writ (the gateway, a downstream system, an API). */
  readonly resource: string;
  /** Whom the writ is on behalf of, for approvals (CIBA `login_hint`). */
  readonly sponsor?: string;
}

export interface GetWritOptions {
  /** Progress while waiting; overrides the client's. */
  readonly onProgress?: (event: WritProgress) => void;
  /** Stops waiting (approvals, slow-downs) and any request in flight. */
  readonly signal?: AbortSignal;
  /** The longest wait for approvers, s (default: until the approval request expires). */
  readonly approvalTimeout?: number;
  /** Hand out a writ already held for the same request (default true); false always asks anew. */
  readonly reuse?: boolean;
  /**
   * The broker already answered this request's token exchange with `approval_required` (the caller
   * asked it itself): go straight to the approval request (CIBA) instead of asking the token
   * exchange again, so that one request makes one approval request and one audit record.
   */
  readonly approvalRequired?: boolean;
}

export type WritProgress =
  | { readonly kind: "approval_requested"; readonly authReqId: string; readonly expiresIn: number }
  | { readonly kind: "approval_pending"; readonly authReqId: string; readonly nextPollIn: number }
  | { readonly kind: "approved"; readonly authReqId: string }
  | { readonly kind: "retrying"; readonly reason: string; readonly retryAfter: number };

/**
 * A writ as the broker issued it. `accessToken` is a secret: it is not enumerable, so
 * `JSON.stringify` and `console.log` of a writ leave it out.
 */
export interface Writ {
  readonly id: string;
  readonly accessToken: string;
  readonly tokenType: "DPoP";
  readonly expiresAt: Date;
  /** What bounded its lifetime: `playbook`, `ceiling`, `change_window`, `key`. */
  readonly ttlBound: string | undefined;
  readonly resource: string;
  /** As granted: the grants substituted, `max_uses`. */
  readonly authorizationDetails: readonly Readonly<Record<string, unknown>>[];
  readonly request: WritRequest;
}

export interface WritClient {
  readonly issuer: string;
  readonly agentId: string;
  /** A writ for `request`: reused while fresh, else asked for (and approvals waited on). */
  getWrit(request: WritRequest, options?: GetWritOptions): Promise<Writ>;
  /**
   * `fetch` with the writ (default: the last one `getWrit` returned): `Authorization: DPoP` and a
   * fresh proof bound to the token (`ath`); a `use_dpop_nonce` challenge is answered once. The
   * resource's answer comes back as it is, refusals included.
   */
  fetchWithWrit(
    url: string | URL,
    init?: WritFetchInit,
    options?: { readonly writ?: Pick<Writ, "accessToken"> },
  ): Promise<Response>;
  /** Revokes one writ (RFC 7009), or every writ this client holds; returns how many. */
  revoke(writ?: Writ): Promise<number>;
  /** What the broker says of one of this agent's writs (RFC 7662): `active`, `uses`, `max_uses` … */
  introspect(writ?: Writ): Promise<Readonly<Record<string, unknown>>>;
  /** This client's baseline token (its standing permissions), for `resource` when given. */
  baselineToken(resource?: string): Promise<string>;
}

export interface WritFetchInit {
  readonly method?: string;
  readonly headers?: ConstructorParameters<typeof Headers>[0];
  /** A body that can be sent again (a stream is sent once: no nonce retry). */
  readonly body?: string | Uint8Array | ArrayBuffer | URLSearchParams | ReadableStream | null;
  readonly signal?: AbortSignal;
}

function issuerUrl(value: string | URL, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(String(value).replace(/\/+$/, ""));
  } catch {
    throw new WritError(ERR_CLIENT_OPTIONS, `the issuer ${q(String(value))} is not a URL`);
  }
  insecureCheck(url, allowInsecure);
  return url;
}

/** The client of one agent in one environment: the options checked, then a `Session` over the `Broker`. */
export function createWritClient(options: WritClientOptions): WritClient {
  if (typeof options.agentId !== "string" || options.agentId === "")
    throw new WritError(ERR_CLIENT_OPTIONS, "`agentId` is required");
  const allowInsecure = options.allowInsecureRequests === true;
  const issuer = issuerUrl(options.issuer, allowInsecure).href.replace(/\/+$/, "");
  const broker = new Broker({
    issuer,
    agentId: options.agentId,
    key: options.key,
    allowInsecure,
    maxRetryAfter: options.maxRetryAfter ?? MAX_RETRY_AFTER,
    timeoutMs: options.timeoutMs ?? 30_000,
    fetch: options.fetch,
  });
  const session = new Session(broker, options, (options.reuseMargin ?? 30) * 1000);
  // a plain object of functions: the client's methods may be passed around unbound
  return {
    issuer,
    agentId: options.agentId,
    getWrit: (request, o) => session.getWrit(request, o),
    fetchWithWrit: (url, init, o) => session.fetchWithWrit(url, init, o),
    revoke: (writ) => session.revoke(writ),
    introspect: (writ) => session.introspect(writ),
    baselineToken: (resource) => session.baselineToken(resource),
  };
}
