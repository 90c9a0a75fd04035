/**
 * A writ redeemed without the agent SDK, for a process that starts for one credential (`writ creds`
 * on a cache miss): node:http(s) and node:crypto only. The SDK's `fetch` (undici), WebCrypto and
 * oauth4webapi are most of such a process's start, several times what the requests themselves take
 * (bench/downstream-creds.bench.ts).
 *
 * The same three requests the SDK makes, in order: a baseline token (client_credentials), the token
 * exchange for a writ whose audience is the system's redemption endpoint, the redemption; each with
 * `private_key_jwt` (RFC 7523) where the broker authenticates the agent, and a DPoP proof (RFC 9449)
 * by one key pair made for this run. A nonce challenge is answered once and a short slow-down
 * waited out, as the SDK does (`client/wire.ts` holds what both say). A refusal is the SDK's
 * `WritRefusal`. Left to the SDK, as `undefined` before any request: a server URL the SDK would
 * refuse or this path does not speak; and `"approval"`: the playbook needs approvers (CIBA, where the
 * SDK waits, told not to ask the token exchange again: `getWrit`'s `approvalRequired`).
 * No token is ever printed by this module.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import type { IncomingMessage, RequestOptions } from "node:http";
import {
  ERR_CLIENT_PROTOCOL,
  ERR_CLIENT_UNREACHABLE,
  refusalOf,
  type WritRefusal,
} from "../client/errors.js";
import {
  endpoints,
  exchangeForm,
  JWT_BEARER,
  LOOPBACK,
  MAX_RETRY_AFTER,
  TOKEN_EXCHANGE,
  waitsOut,
} from "../client/wire.js";
import { q, WritError } from "../core/errors.js";
import {
  type AgentKey,
  type Intent,
  issuerOf,
  type Redeemed,
  redeemedOf,
  redemptionEndpoint,
  retryingLine,
} from "./agent.js";
import type { DownstreamSystem } from "./types.js";

export interface DirectOptions {
  readonly server: string;
  readonly environment: string;
  readonly agent: string;
  readonly key: AgentKey;
  /** Plain HTTP to a server that is not this machine (`--insecure-http`). */
  readonly allowInsecureHttp?: boolean | undefined;
  /** A line of progress (a slow-down waited out), for stderr. */
  readonly progress?: ((line: string) => void) | undefined;
}

/** Each request's timeout, as the SDK's. */
const TIMEOUT_MS = 30_000;
/** The largest answer read (a credential is a few kB). */
const MAX_ANSWER = 1024 * 1024;

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly header: (name: string) => string | null;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A compact JWS (RFC 7515) signed by `key` with `alg`. */
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

/** One POST over node:http(s); the answer read whole (up to `MAX_ANSWER`). */
async function post(url: URL, headers: Record<string, string>, body: string): Promise<Answer> {
  const { request } = url.protocol === "https:" ? await import("node:https") : await import("node:http");
  const options: RequestOptions = {
    method: "POST",
    headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  };
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER) req.destroy(new Error(`the answer is over ${MAX_ANSWER} bytes`));
        else chunks.push(c);
      });
      res.on("error", reject);
      res.on("end", () => {
        const h = res.headers;
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString("utf8"),
          header: (name) => {
            const v = h[name.toLowerCase()];
            return typeof v === "string" ? v : Array.isArray(v) ? v.join(", ") : null;
          },
        });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The server as the SDK would take it, or `undefined` when the SDK should judge it (and say why). */
function serverUrl(server: string, allowInsecure: boolean): URL | undefined {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return undefined;
  }
  if (url.protocol === "https:") return url;
  return url.protocol === "http:" && (allowInsecure || LOOPBACK.test(url.hostname)) ? url : undefined;
}

/** One run's requests: the agent's assertion, the DPoP key and the server's last nonce. */
class Requests {
  private readonly dpop = generateKeyPairSync("ec", { namedCurve: "P-256" });
  private readonly dpopJwk: Record<string, unknown>;
  private nonce: string | undefined;

  constructor(
    private readonly o: DirectOptions,
    private readonly issuer: string,
  ) {
    const { kty, crv, x, y } = this.dpop.publicKey.export({ format: "jwk" });
    this.dpopJwk = { kty, crv, x, y };
  }

  /** A DPoP proof for a POST to `url`, bound to `accessToken` when given (`ath`). */
  private proof(url: string, accessToken: string | undefined): string {
    return jws(
      { typ: "dpop+jwt", jwk: this.dpopJwk },
      {
        jti: randomUUID(),
        htm: "POST",
        htu: url,
        iat: Math.floor(Date.now() / 1000),
        ...(this.nonce === undefined ? {} : { nonce: this.nonce }),
        ...(accessToken === undefined
          ? {}
          : { ath: createHash("sha256").update(accessToken, "ascii").digest("base64url") }),
      },
      this.dpop.privateKey,
      "ES256",
    );
  }

  /** `private_key_jwt`: the agent's assertion, its audience the issuer. */
  private assertion(): Record<string, string> {
    const iat = Math.floor(Date.now() / 1000);
    const k = this.o.key;
    return {
      client_id: this.o.agent,
      client_assertion_type: JWT_BEARER,
      client_assertion: jws(
        k.kid === undefined ? {} : { kid: k.kid },
        { iss: this.o.agent, sub: this.o.agent, aud: this.issuer, iat, exp: iat + 60, jti: randomUUID() },
        k.key,
        k.alg,
      ),
    };
  }

  /**
   * A POST answered 2xx (its answer), else the refusal thrown; a nonce challenge answered once, a
   * short slow-down (token endpoint) waited out. `form` goes to the token endpoint with the
   * agent's assertion; `accessToken` makes it a request to a resource with the writ.
   */
  async send(url: string, what: { form: Record<string, string> } | { accessToken: string }): Promise<Answer> {
    const accessToken = "accessToken" in what ? what.accessToken : undefined;
    let nonceRetried = false;
    for (let waits = 0; ; ) {
      const headers: Record<string, string> = { dpop: this.proof(url, accessToken) };
      let body = "";
      if ("form" in what) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        body = new URLSearchParams({ ...what.form, ...this.assertion() }).toString();
      } else headers.authorization = `DPoP ${what.accessToken}`;
      let a: Answer;
      try {
        a = await post(new URL(url), headers, body);
      } catch (err) {
        throw new WritError(ERR_CLIENT_UNREACHABLE, `cannot reach ${q(url)}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      const fresh = a.header("dpop-nonce");
      if (fresh) this.nonce = fresh;
      if (a.status >= 200 && a.status < 300) return a;
      const refusal: WritRefusal = refusalOf(a.status, a.text, a.header, url);
      const nonceAsked =
        refusal.error === "use_dpop_nonce" || /use_dpop_nonce/.test(a.header("www-authenticate") ?? "");
      if (nonceAsked && fresh && !nonceRetried) {
        nonceRetried = true;
        continue;
      }
      if ("form" in what && waitsOut(refusal, waits, MAX_RETRY_AFTER)) {
        waits++;
        this.o.progress?.(retryingLine(refusal.retryAfter!));
        await new Promise((r) => setTimeout(r, refusal.retryAfter! * 1000));
        continue;
      }
      throw refusal;
    }
  }
}

/** The access token of a token endpoint's 200 answer. */
function accessTokenOf(a: Answer, where: string): string {
  let token: unknown;
  try {
    token = (JSON.parse(a.text) as { access_token?: unknown }).access_token;
  } catch {
    // below
  }
  if (typeof token !== "string" || token === "")
    throw new WritError(ERR_CLIENT_PROTOCOL, `${q(where)} answered a token response without a token`);
  return token;
}

/**
 * A writ for `intent` redeemed for `system`'s credential: the credential; `"approval"` when the
 * playbook needs approvers; `undefined` when the SDK should make this redemption (see the top).
 */
export async function redeemDirect(
  o: DirectOptions,
  intent: Intent,
  system: DownstreamSystem,
): Promise<Redeemed | "approval" | undefined> {
  const server = o.server.replace(/\/+$/, "");
  if (serverUrl(server, o.allowInsecureHttp === true) === undefined) return undefined;
  const issuer = issuerOf(server, o.environment);
  const token = endpoints(issuer).token;
  const where = redemptionEndpoint(issuer, system);
  const requests = new Requests(o, issuer);
  const baseline = accessTokenOf(
    await requests.send(token, { form: { grant_type: "client_credentials" } }),
    token,
  );
  let writ: string;
  try {
    const form = { grant_type: TOKEN_EXCHANGE, ...exchangeForm(baseline, intent, where) };
    writ = accessTokenOf(await requests.send(token, { form }), token);
  } catch (err) {
    if ((err as Partial<WritRefusal>).reason === "approval_required") return "approval";
    throw err;
  }
  return redeemedOf((await requests.send(where, { accessToken: writ })).text, system, where);
}
