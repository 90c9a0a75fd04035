/**
 * One agent's writs in the SDK: the state a client keeps (its baseline token, the writs it holds
 * per request, the ones being asked for, the last one handed out) and the steps over it — a
 * baseline token, the token exchange, the CIBA wait, a request with a writ, revocation and
 * introspection — each a method of a few lines on the `Broker`'s requests.
 */
import * as oauth from "oauth4webapi";
import { q, WritError } from "../core/errors.js";
import { type Broker, sleep, type Wait } from "./broker.js";
import type { GetWritOptions, Writ, WritClientOptions, WritFetchInit, WritRequest } from "./client.js";
import {
  ERR_CLIENT_APPROVAL_TIMEOUT,
  ERR_CLIENT_OPTIONS,
  ERR_CLIENT_PROTOCOL,
  ERR_CLIENT_UNREACHABLE,
  WritRefusal,
} from "./errors.js";
import { exchangeForm, LOOPBACK, TOKEN_EXCHANGE, writDetails } from "./wire.js";

export function insecureCheck(url: URL, allowInsecure: boolean): void {
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

const keyOf = (r: WritRequest) =>
  stableJson([r.playbook, r.params ?? {}, r.ticket ?? null, r.resource, r.sponsor ?? null]);

/** A token response as a writ; its token not enumerable, so a writ logged or serialised leaves it out. */
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
  return Object.defineProperty(writ, "accessToken", { value: t.access_token, enumerable: false }) as Writ;
}

export class Session {
  private baseline: { token: string; until: number } | undefined;
  private readonly held = new Map<string, Writ>();
  private readonly inFlight = new Map<string, Promise<Writ>>();
  private latest: Writ | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly options: WritClientOptions,
    /** A writ (and the baseline token) is reused until this long (ms) before it expires. */
    private readonly marginMs: number,
  ) {}

  private waitOf(o: GetWritOptions): Wait {
    return { signal: o.signal, progress: o.onProgress ?? this.options.onProgress };
  }

  /** A baseline token (the agent's standing permissions), for `resource` when given. */
  async baselineToken(resource?: string, wait: Wait = {}): Promise<string> {
    const kept = this.baseline;
    if (resource === undefined && kept !== undefined && kept.until > Date.now()) return kept.token;
    const { as, client, tokenEndpoint } = this.broker;
    const { auth, DPoP } = await this.broker.keys();
    const params: Record<string, string> = resource === undefined ? {} : { resource };
    const res = await this.broker.send(
      tokenEndpoint,
      () =>
        oauth.clientCredentialsGrantRequest(as, client, auth, params, {
          DPoP,
          ...this.broker.options(wait.signal),
        }),
      wait,
    );
    const t = await this.broker.processed(tokenEndpoint, () =>
      oauth.processClientCredentialsResponse(as, client, res),
    );
    if (resource === undefined)
      this.baseline = {
        token: t.access_token,
        until: Date.now() + (t.expires_in ?? 0) * 1000 - this.marginMs,
      };
    return t.access_token;
  }

  /** A writ for `request`: reused while fresh (unless `reuse: false`), else asked for. */
  async getWrit(request: WritRequest, o: GetWritOptions = {}): Promise<Writ> {
    if (typeof request?.playbook !== "string" || typeof request.resource !== "string")
      throw new TypeError("getWrit needs `playbook` and `resource`");
    const key = keyOf(request);
    const now = Date.now();
    for (const [k, w] of this.held) if (w.expiresAt.getTime() <= now) this.held.delete(k);
    if (o.reuse !== false) {
      const kept = this.held.get(key);
      if (kept !== undefined && kept.expiresAt.getTime() - this.marginMs > Date.now()) {
        this.latest = kept;
        return kept;
      }
      const pending = this.inFlight.get(key);
      if (pending !== undefined) return pending;
    }
    const asked = this.exchange(request, o);
    if (o.reuse !== false) this.inFlight.set(key, asked);
    try {
      const writ = await asked;
      this.held.set(key, writ);
      this.latest = writ;
      return writ;
    } finally {
      if (this.inFlight.get(key) === asked) this.inFlight.delete(key);
    }
  }

  /** The token exchange (RFC 8693); a playbook that needs approval goes on to the CIBA wait. */
  private async exchange(request: WritRequest, o: GetWritOptions): Promise<Writ> {
    if (o.approvalRequired === true) return this.approved(request, o);
    const wait = this.waitOf(o);
    const subject = await this.baselineToken(undefined, wait);
    const { as, client, tokenEndpoint } = this.broker;
    const { auth, DPoP } = await this.broker.keys();
    const params = exchangeForm(subject, request, request.resource);
    let res: Response;
    try {
      res = await this.broker.send(
        tokenEndpoint,
        () =>
          oauth.genericTokenEndpointRequest(as, client, auth, TOKEN_EXCHANGE, params, {
            DPoP,
            ...this.broker.options(o.signal),
          }),
        wait,
      );
    } catch (err) {
      if (err instanceof WritRefusal && err.reason === "approval_required") return this.approved(request, o);
      // a baseline token the broker no longer takes is not kept: the next call gets a fresh one
      if (err instanceof WritRefusal && err.error === "invalid_grant") this.baseline = undefined;
      throw err;
    }
    const t = await this.broker.processed(tokenEndpoint, () =>
      oauth.processGenericTokenEndpointResponse(as, client, res),
    );
    return writOf(t, request, tokenEndpoint);
  }

  /** CIBA, poll mode: ask, then poll at the interval until the approvers decide. */
  private async approved(request: WritRequest, o: GetWritOptions): Promise<Writ> {
    const { as, client } = this.broker;
    const { auth } = await this.broker.keys();
    const wait = this.waitOf(o);
    const where = as.backchannel_authentication_endpoint!;
    const params: Record<string, string> = {
      authorization_details: writDetails(request),
      resource: request.resource,
      ...(request.sponsor === undefined ? {} : { login_hint: request.sponsor }),
    };
    const res = await this.broker.send(
      where,
      () => oauth.backchannelAuthenticationRequest(as, client, auth, params, this.broker.options(o.signal)),
      wait,
    );
    const started = await this.broker.processed(where, () =>
      oauth.processBackchannelAuthenticationResponse(as, client, res),
    );
    wait.progress?.({
      kind: "approval_requested",
      authReqId: started.auth_req_id,
      expiresIn: started.expires_in,
    });
    return this.polled(request, o, started);
  }

  /** Polls an approval request at its interval (longer when told to slow down) until decided. */
  private async polled(
    request: WritRequest,
    o: GetWritOptions,
    started: oauth.BackchannelAuthenticationResponse,
  ): Promise<Writ> {
    const { as, client, tokenEndpoint } = this.broker;
    const { auth, DPoP } = await this.broker.keys();
    const wait = this.waitOf(o);
    const id = started.auth_req_id;
    let interval = started.interval ?? 5;
    const deadline =
      Date.now() + Math.min(started.expires_in, o.approvalTimeout ?? Number.POSITIVE_INFINITY) * 1000;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new WritError(ERR_CLIENT_APPROVAL_TIMEOUT, `no decision on approval request ${q(id)} in time`);
      const next = Math.min(interval * 1000, left);
      wait.progress?.({ kind: "approval_pending", authReqId: id, nextPollIn: Math.ceil(next / 1000) });
      await sleep(next, o.signal);
      try {
        const res = await this.broker.send(
          tokenEndpoint,
          () =>
            oauth.backchannelAuthenticationGrantRequest(as, client, auth, id, {
              DPoP,
              additionalParameters: { resource: request.resource },
              ...this.broker.options(o.signal),
            }),
          wait,
        );
        const t = await this.broker.processed(tokenEndpoint, () =>
          oauth.processBackchannelAuthenticationGrantResponse(as, client, res),
        );
        wait.progress?.({ kind: "approved", authReqId: id });
        return writOf(t, request, tokenEndpoint);
      } catch (err) {
        if (!(err instanceof WritRefusal)) throw err;
        if (err.error === "slow_down") interval = Math.max(interval + 5, err.retryAfter ?? 0);
        else if (err.error !== "authorization_pending") throw err;
      }
    }
  }

  /** `fetch` with a writ and a fresh DPoP proof bound to it; a nonce challenge answered once. */
  async fetchWithWrit(
    url: string | URL,
    init: WritFetchInit = {},
    o: { readonly writ?: Pick<Writ, "accessToken"> } = {},
  ): Promise<Response> {
    const writ = o.writ ?? this.latest;
    if (writ === undefined) throw new TypeError("fetchWithWrit: no writ yet: call getWrit first");
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new WritError(ERR_CLIENT_OPTIONS, `${q(String(url))} is not a URL`);
    }
    insecureCheck(target, this.broker.settings.allowInsecure);
    const { DPoP } = await this.broker.keys();
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
            ...this.broker.options(init.signal),
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

  /** Revokes one writ (RFC 7009), or every writ held; how many were revoked. */
  async revoke(writ?: Writ): Promise<number> {
    const targets = writ === undefined ? [...this.held.values()] : [writ];
    const { as, client } = this.broker;
    const { auth } = await this.broker.keys();
    const where = as.revocation_endpoint!;
    let n = 0;
    for (const w of targets) {
      if (w.expiresAt.getTime() > Date.now()) {
        const res = await this.broker.send(
          where,
          () => oauth.revocationRequest(as, client, auth, w.accessToken, this.broker.options(undefined)),
          {},
        );
        await this.broker.processed(where, () => oauth.processRevocationResponse(res));
        n++;
      }
      for (const [k, v] of this.held) if (v === w) this.held.delete(k);
      if (this.latest === w) this.latest = undefined;
    }
    return n;
  }

  /** What the broker says of one of this agent's writs (RFC 7662). */
  async introspect(writ?: Writ): Promise<Readonly<Record<string, unknown>>> {
    const w = writ ?? this.latest;
    if (w === undefined) throw new TypeError("introspect: no writ yet: call getWrit first");
    const { as, client } = this.broker;
    const { auth } = await this.broker.keys();
    const where = as.introspection_endpoint!;
    const res = await this.broker.send(
      where,
      () => oauth.introspectionRequest(as, client, auth, w.accessToken, this.broker.options(undefined)),
      {},
    );
    return this.broker.processed(where, () => oauth.processIntrospectionResponse(as, client, res));
  }
}
