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
import * as oauth from "oauth4webapi";
import { q, WritError } from "../core/errors.js";
import {
  ERR_CLIENT_APPROVAL_TIMEOUT,
  ERR_CLIENT_OPTIONS,
  ERR_CLIENT_PROTOCOL,
  ERR_CLIENT_UNREACHABLE,
  refusalFromResponse,
  WritRefusal,
} from "./errors.js";
import { type AgentKeyInput, type AgentSigningKey, importAgentKey } from "./key.js";
import {
  endpoints,
  exchangeForm,
  LOOPBACK,
  MAX_RETRY_AFTER,
  TOKEN_EXCHANGE,
  waitsOut,
  writDetails,
} from "./wire.js";

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

function insecureCheck(url: URL, allowInsecure: boolean): void {
  if (url.protocol === "https:") return;
  if (url.protocol !== "http:")
    throw new WritError(ERR_CLIENT_OPTIONS, `${q(url.href)} is not an http(s) URL`);
  if (!allowInsecure && !LOOPBACK.test(url.hostname))
    throw new WritError(
      ERR_CLIENT_OPTIONS,
      `${q(url.href)} is plain HTTP to another machine: use HTTPS (or allowInsecureRequests)`,
    );
}

/** JSON with object keys sorted: the same request is the same key. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value) ?? "null";
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function createWritClient(options: WritClientOptions): WritClient {
  if (typeof options.agentId !== "string" || options.agentId === "")
    throw new WritError(ERR_CLIENT_OPTIONS, "`agentId` is required");
  const allowInsecure = options.allowInsecureRequests === true;
  const issuer = issuerUrl(options.issuer, allowInsecure).href.replace(/\/+$/, "");
  const maxRetryAfter = options.maxRetryAfter ?? MAX_RETRY_AFTER;
  const marginMs = (options.reuseMargin ?? 30) * 1000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const at = endpoints(issuer);
  const as: oauth.AuthorizationServer = {
    issuer,
    token_endpoint: at.token,
    revocation_endpoint: at.revocation,
    introspection_endpoint: at.introspection,
    backchannel_authentication_endpoint: at.backchannel,
  };
  const client: oauth.Client = { client_id: options.agentId };

  let ready: Promise<{ auth: oauth.ClientAuth; DPoP: oauth.DPoPHandle }> | undefined;
  const setup = () => {
    ready ??= (async () => {
      const signing: AgentSigningKey = await importAgentKey(options.key);
      const pair = await oauth.generateKeyPair("ES256");
      return { auth: oauth.PrivateKeyJwt(signing), DPoP: oauth.DPoP(client, pair) };
    })();
    // a key that cannot be imported fails every call alike, not only the first
    ready.catch(() => {
      ready = undefined;
    });
    return ready;
  };

  const requestOptions = (signal: AbortSignal | undefined) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    return {
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      ...(allowInsecure || issuer.startsWith("http:") ? { [oauth.allowInsecureRequests]: true } : {}),
      ...(options.fetch === undefined
        ? {}
        : {
            [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) =>
              options.fetch!(url, init as RequestInit),
          }),
    };
  };

  /**
   * One request to the broker: a 2xx answer back; a nonce challenge retried once; a short 429
   * waited out; anything else thrown as the broker's refusal.
   */
  async function send(
    where: string,
    request: () => Promise<Response>,
    wait: { signal?: AbortSignal | undefined; progress?: ((e: WritProgress) => void) | undefined },
  ): Promise<Response> {
    let nonceRetried = false;
    for (let waits = 0; ; ) {
      let res: Response;
      try {
        res = await request();
      } catch (err) {
        if (wait.signal?.aborted) throw wait.signal.reason;
        throw new WritError(
          ERR_CLIENT_UNREACHABLE,
          `cannot reach ${q(where)}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
          { cause: err },
        );
      }
      if (res.ok) return res;
      const refusal = await refusalFromResponse(res, where);
      if (refusal.error === "use_dpop_nonce" && res.headers.has("dpop-nonce") && !nonceRetried) {
        nonceRetried = true;
        continue;
      }
      if (waitsOut(refusal, waits, maxRetryAfter)) {
        waits++;
        const retryAfter = refusal.retryAfter!;
        wait.progress?.({ kind: "retrying", reason: refusal.reason, retryAfter });
        await sleep(retryAfter * 1000, wait.signal);
        continue;
      }
      throw refusal;
    }
  }

  async function processed<T>(where: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw new WritError(
        ERR_CLIENT_PROTOCOL,
        `${q(where)} answered what OAuth does not allow: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  let baseline: { token: string; until: number } | undefined;

  async function baselineToken(
    resource?: string,
    wait: { signal?: AbortSignal; progress?: (e: WritProgress) => void } = {},
  ): Promise<string> {
    if (resource === undefined && baseline !== undefined && baseline.until > Date.now())
      return baseline.token;
    const { auth, DPoP } = await setup();
    const params: Record<string, string> = resource === undefined ? {} : { resource };
    const res = await send(
      as.token_endpoint!,
      () =>
        oauth.clientCredentialsGrantRequest(as, client, auth, params, {
          DPoP,
          ...requestOptions(wait.signal),
        }),
      wait,
    );
    const t = await processed(as.token_endpoint!, () =>
      oauth.processClientCredentialsResponse(as, client, res),
    );
    if (resource === undefined)
      baseline = { token: t.access_token, until: Date.now() + (t.expires_in ?? 0) * 1000 - marginMs };
    return t.access_token;
  }

  function writOf(t: oauth.TokenEndpointResponse, request: WritRequest, where: string): Writ {
    if (typeof t.writ_id !== "string" || typeof t.expires_in !== "number")
      throw new WritError(ERR_CLIENT_PROTOCOL, `${q(where)} answered a token that is not a writ`);
    const writ: Omit<Writ, "accessToken"> = {
      id: t.writ_id,
      tokenType: "DPoP",
      expiresAt: new Date(Date.now() + t.expires_in * 1000),
      ttlBound: typeof t.ttl_bound === "string" ? t.ttl_bound : undefined,
      resource: request.resource,
      authorizationDetails: (t.authorization_details ?? []) as Record<string, unknown>[],
      request,
    };
    // the token is not enumerable: a writ logged or serialised does not carry it
    return Object.defineProperty(writ, "accessToken", { value: t.access_token, enumerable: false }) as Writ;
  }

  /** CIBA, poll mode: ask, then poll at the interval until the approvers decide. */
  async function approved(request: WritRequest, o: GetWritOptions): Promise<Writ> {
    const { auth, DPoP } = await setup();
    const progress = o.onProgress ?? options.onProgress;
    const wait = { signal: o.signal, progress };
    const where = as.backchannel_authentication_endpoint!;
    const params: Record<string, string> = {
      authorization_details: writDetails(request),
      resource: request.resource,
      ...(request.sponsor === undefined ? {} : { login_hint: request.sponsor }),
    };
    const res = await send(
      where,
      () => oauth.backchannelAuthenticationRequest(as, client, auth, params, requestOptions(o.signal)),
      wait,
    );
    const started = await processed(where, () =>
      oauth.processBackchannelAuthenticationResponse(as, client, res),
    );
    const id = started.auth_req_id;
    let interval = started.interval ?? 5;
    const deadline =
      Date.now() + Math.min(started.expires_in, o.approvalTimeout ?? Number.POSITIVE_INFINITY) * 1000;
    progress?.({ kind: "approval_requested", authReqId: id, expiresIn: started.expires_in });
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new WritError(ERR_CLIENT_APPROVAL_TIMEOUT, `no decision on approval request ${q(id)} in time`);
      const next = Math.min(interval * 1000, left);
      progress?.({ kind: "approval_pending", authReqId: id, nextPollIn: Math.ceil(next / 1000) });
      await sleep(next, o.signal);
      try {
        const polled = await send(
          as.token_endpoint!,
          () =>
            oauth.backchannelAuthenticationGrantRequest(as, client, auth, id, {
              DPoP,
              additionalParameters: { resource: request.resource },
              ...requestOptions(o.signal),
            }),
          wait,
        );
        const t = await processed(as.token_endpoint!, () =>
          oauth.processBackchannelAuthenticationGrantResponse(as, client, polled),
        );
        progress?.({ kind: "approved", authReqId: id });
        return writOf(t, request, as.token_endpoint!);
      } catch (err) {
        if (!(err instanceof WritRefusal)) throw err;
        if (err.error === "slow_down") interval = Math.max(interval + 5, err.retryAfter ?? 0);
        else if (err.error !== "authorization_pending") throw err;
      }
    }
  }

  async function exchange(request: WritRequest, o: GetWritOptions): Promise<Writ> {
    const wait = { signal: o.signal, progress: o.onProgress ?? options.onProgress };
    const subject = await baselineToken(undefined, wait);
    const { auth, DPoP } = await setup();
    const params = exchangeForm(subject, request, request.resource);
    let res: Response;
    try {
      res = await send(
        as.token_endpoint!,
        () =>
          oauth.genericTokenEndpointRequest(as, client, auth, TOKEN_EXCHANGE, params, {
            DPoP,
            ...requestOptions(o.signal),
          }),
        wait,
      );
    } catch (err) {
      if (err instanceof WritRefusal && err.reason === "approval_required") return approved(request, o);
      // a baseline token the broker no longer takes is not kept: the next call gets a fresh one
      if (err instanceof WritRefusal && err.error === "invalid_grant") baseline = undefined;
      throw err;
    }
    const t = await processed(as.token_endpoint!, () =>
      oauth.processGenericTokenEndpointResponse(as, client, res),
    );
    return writOf(t, request, as.token_endpoint!);
  }

  const held = new Map<string, Writ>();
  const inFlight = new Map<string, Promise<Writ>>();
  let latest: Writ | undefined;

  const keyOf = (r: WritRequest) =>
    stableJson([r.playbook, r.params ?? {}, r.ticket ?? null, r.resource, r.sponsor ?? null]);

  async function getWrit(request: WritRequest, o: GetWritOptions = {}): Promise<Writ> {
    if (typeof request?.playbook !== "string" || typeof request.resource !== "string")
      throw new TypeError("getWrit needs `playbook` and `resource`");
    const key = keyOf(request);
    const now = Date.now();
    for (const [k, w] of held) if (w.expiresAt.getTime() <= now) held.delete(k);
    if (o.reuse !== false) {
      const kept = held.get(key);
      if (kept !== undefined && kept.expiresAt.getTime() - marginMs > Date.now()) {
        latest = kept;
        return kept;
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
    }
    const asked = exchange(request, o);
    if (o.reuse !== false) inFlight.set(key, asked);
    try {
      const writ = await asked;
      held.set(key, writ);
      latest = writ;
      return writ;
    } finally {
      if (inFlight.get(key) === asked) inFlight.delete(key);
    }
  }

  async function fetchWithWrit(
    url: string | URL,
    init: WritFetchInit = {},
    o: { readonly writ?: Pick<Writ, "accessToken"> } = {},
  ): Promise<Response> {
    const writ = o.writ ?? latest;
    if (writ === undefined) throw new TypeError("fetchWithWrit: no writ yet: call getWrit first");
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new WritError(ERR_CLIENT_OPTIONS, `${q(String(url))} is not a URL`);
    }
    insecureCheck(target, allowInsecure);
    const { DPoP } = await setup();
    const method = (init.method ?? "GET").toUpperCase();
    const body = init.body ?? undefined;
    const replayable = !(body instanceof ReadableStream);
    for (let attempt = 0; ; attempt++) {
      try {
        return await oauth.protectedResourceRequest(
          writ.accessToken,
          method,
          target,
          new Headers(init.headers),
          body as oauth.ProtectedResourceRequestBody,
          {
            DPoP,
            ...requestOptions(init.signal),
            ...(target.protocol === "http:" ? { [oauth.allowInsecureRequests]: true } : {}),
          },
        );
      } catch (err) {
        if (err instanceof oauth.WWWAuthenticateChallengeError) {
          if (attempt === 0 && replayable && oauth.isDPoPNonceError(err)) continue;
          return err.response;
        }
        if (init.signal?.aborted) throw init.signal.reason;
        throw new WritError(
          ERR_CLIENT_UNREACHABLE,
          `cannot reach ${q(target.origin)}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
  }

  async function revoke(writ?: Writ): Promise<number> {
    const targets = writ === undefined ? [...held.values()] : [writ];
    const { auth } = await setup();
    let n = 0;
    for (const w of targets) {
      if (w.expiresAt.getTime() > Date.now()) {
        const res = await send(
          as.revocation_endpoint!,
          () => oauth.revocationRequest(as, client, auth, w.accessToken, requestOptions(undefined)),
          {},
        );
        await processed(as.revocation_endpoint!, () => oauth.processRevocationResponse(res));
        n++;
      }
      for (const [k, v] of held) if (v === w) held.delete(k);
      if (latest === w) latest = undefined;
    }
    return n;
  }

  async function introspect(writ?: Writ): Promise<Readonly<Record<string, unknown>>> {
    const w = writ ?? latest;
    if (w === undefined) throw new TypeError("introspect: no writ yet: call getWrit first");
    const { auth } = await setup();
    const where = as.introspection_endpoint!;
    const res = await send(
      where,
      () => oauth.introspectionRequest(as, client, auth, w.accessToken, requestOptions(undefined)),
      {},
    );
    return processed(where, () => oauth.processIntrospectionResponse(as, client, res));
  }

  return {
    issuer,
    agentId: options.agentId,
    getWrit,
    fetchWithWrit,
    revoke,
    introspect,
    baselineToken: (resource?: string) => baselineToken(resource),
  };
}
