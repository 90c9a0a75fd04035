/**
 * A token-exchange client for load in tests: the quickstart's release-bot, a private_key_jwt
 * assertion and a DPoP proof signed per request with `node:crypto`, against any `fetch` (a real
 * server's, or a Hono app's in process).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../support/cli.js";

type Fetch = (url: string, init: RequestInit) => Promise<Response> | Response;

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function jws(header: unknown, claims: unknown, hash: string | null, key: KeyObject): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const options = hash === null ? key : { key, dsaEncoding: "ieee-p1363" as const };
  return `${input}.${sign(hash, Buffer.from(input), options).toString("base64url")}`;
}

/** A POST ready to send: its URL, headers (the DPoP proof) and form body (the client assertion). */
export interface PreparedRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface ExchangeClient {
  /** The agent's baseline token (client credentials, DPoP-bound to this client's key). */
  readonly baseline: string;
  /** One token exchange for `deploy-service`: the HTTP status and the body. */
  exchange(): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  /**
   * One token exchange's request, signed now and not sent (a load generator signs ahead, so that
   * its own signing is not in the measured time).
   */
  prepareExchange(): PreparedRequest;
  /** Revokes one of the agent's tokens (RFC 7009): the HTTP status. */
  revoke(token: string): Promise<number>;
  /** Any form to the environment's `token` or `bc-authorize` endpoint, authenticated and with a proof. */
  post(
    form: Record<string, string>,
    endpoint?: "token" | "bc-authorize",
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
}

/** `as`: another agent id, signing with the quickstart key `key` (default: release-bot's own). */
export async function exchangeClient(
  base: string,
  fetcher: Fetch = fetch,
  as: { agent: string; key: string } = { agent: "release-bot", key: "release-bot" },
): Promise<ExchangeClient> {
  const { _warning, ...jwk } = JSON.parse(
    await readFile(
      join(ROOT, "examples", "quickstart", "keys", `${as.key}.DEVELOPMENT-ONLY.private.jwk`),
      "utf8",
    ),
  ) as Record<string, string>;
  const clientId = as.agent;
  const agentKey = createPrivateKey({ key: jwk, format: "jwk" });
  const dpop = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = dpop.publicKey.export({ format: "jwk" });
  const issuer = `${base}/env/dev`;
  const tokenUrl = `${issuer}/token`;
  const prepare = (form: Record<string, string>, url = tokenUrl): PreparedRequest => {
    const iat = Math.floor(Date.now() / 1000);
    return {
      url,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: jws(
          { typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } },
          { jti: randomUUID(), htm: "POST", htu: url, iat },
          "sha256",
          dpop.privateKey,
        ),
      },
      body: new URLSearchParams({
        ...form,
        client_id: clientId,
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: jws(
          { alg: "EdDSA", kid: jwk.kid },
          { iss: clientId, sub: clientId, aud: issuer, iat, exp: iat + 60, jti: randomUUID() },
          null,
          agentKey,
        ),
      }).toString(),
    };
  };
  const post = async (form: Record<string, string>, url = tokenUrl) => {
    const { headers, body } = prepare(form, url);
    const res = await fetcher(url, { method: "POST", headers, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
  const baseline = await post({ grant_type: "client_credentials" });
  if (baseline.status !== 200) throw new Error(`baseline token: ${JSON.stringify(baseline.body)}`);
  const form = {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: baseline.body.access_token as string,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    resource: "https://k8s.acme.example",
    authorization_details: JSON.stringify([
      {
        type: "writ_playbook",
        playbook: "deploy-service",
        parameters: { service: "checkout", tag: "v1.4.2" },
        ticket: "CHG-1",
      },
    ]),
  };
  return {
    baseline: baseline.body.access_token as string,
    exchange: () => post(form),
    prepareExchange: () => prepare(form),
    revoke: async (token) => (await post({ token }, `${issuer}/revoke`)).status,
    post: (f, endpoint = "token") => post(f, `${issuer}/${endpoint}`),
  };
}
