/**
 * The agent SDK's requests to the broker, on oauth4webapi: the agent's keys (its signing key for
 * `private_key_jwt`, a DPoP key pair made for this client), each request's options (timeout,
 * plain HTTP to loopback, a caller's fetch), and one request's rules — a nonce challenge retried
 * once, a short 429 waited out, anything else the broker's refusal.
 */
import * as oauth from "oauth4webapi";
import { q, WritError } from "../core/errors.js";
import type { WritProgress } from "./client.js";
import { ERR_CLIENT_PROTOCOL, ERR_CLIENT_UNREACHABLE, refusalFromResponse } from "./errors.js";
import { type AgentKeyInput, type AgentSigningKey, importAgentKey } from "./key.js";
import { endpoints, waitsOut } from "./wire.js";

export interface BrokerSettings {
  /** The environment's issuer, checked, without a trailing slash. */
  readonly issuer: string;
  readonly agentId: string;
  readonly key: AgentKeyInput;
  readonly allowInsecure: boolean;
  readonly maxRetryAfter: number;
  readonly timeoutMs: number;
  readonly fetch?: ((url: string, init: RequestInit) => Promise<Response>) | undefined;
}

/** What a wait (approvals, slow-downs) reports to and is stopped by. */
export interface Wait {
  readonly signal?: AbortSignal | undefined;
  readonly progress?: ((e: WritProgress) => void) | undefined;
}

export interface AgentKeys {
  readonly auth: oauth.ClientAuth;
  readonly DPoP: oauth.DPoPHandle;
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
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

export class Broker {
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  private ready: Promise<AgentKeys> | undefined;

  constructor(readonly settings: BrokerSettings) {
    const at = endpoints(settings.issuer);
    this.as = {
      issuer: settings.issuer,
      token_endpoint: at.token,
      revocation_endpoint: at.revocation,
      introspection_endpoint: at.introspection,
      backchannel_authentication_endpoint: at.backchannel,
    };
    this.client = { client_id: settings.agentId };
  }

  get tokenEndpoint(): string {
    return this.as.token_endpoint!;
  }

  /** The agent's keys, made once; a key that cannot be imported fails every call alike. */
  keys(): Promise<AgentKeys> {
    this.ready ??= (async () => {
      const signing: AgentSigningKey = await importAgentKey(this.settings.key);
      const pair = await oauth.generateKeyPair("ES256");
      return { auth: oauth.PrivateKeyJwt(signing), DPoP: oauth.DPoP(this.client, pair) };
    })();
    this.ready.catch(() => {
      this.ready = undefined;
    });
    return this.ready;
  }

  /** One request's options: its timeout (and the caller's signal), plain HTTP, the caller's fetch. */
  options(signal: AbortSignal | undefined) {
    const s = this.settings;
    const timeout = AbortSignal.timeout(s.timeoutMs);
    return {
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      ...(s.allowInsecure || s.issuer.startsWith("http:") ? { [oauth.allowInsecureRequests]: true } : {}),
      ...(s.fetch === undefined
        ? {}
        : {
            [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) =>
              s.fetch!(url, init as RequestInit),
          }),
    };
  }

  /**
   * One request to the broker: a 2xx answer back; a nonce challenge retried once; a short 429
   * waited out; anything else thrown as the broker's refusal.
   */
  async send(where: string, request: () => Promise<Response>, wait: Wait): Promise<Response> {
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
      if (waitsOut(refusal, waits, this.settings.maxRetryAfter)) {
        waits++;
        const retryAfter = refusal.retryAfter!;
        wait.progress?.({ kind: "retrying", reason: refusal.reason, retryAfter });
        await sleep(retryAfter * 1000, wait.signal);
        continue;
      }
      throw refusal;
    }
  }

  /** oauth4webapi's reading of an answer; what OAuth does not allow is `ERR_CLIENT_PROTOCOL`. */
  async processed<T>(where: string, run: () => Promise<T>): Promise<T> {
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
}
