/**
 * A resource server's check of a DPoP-bound writ access token (RFC 9449 §7, RFC 9068): the
 * `Authorization: DPoP <token>` header, the token verified with its own environment's keys only
 * (the issuer names the environment) and for this resource's audience, and a fresh `DPoP` proof for
 * this request, carrying the token's hash and signed by the key the token is bound to.
 *
 * A refusal is returned, not thrown: a `BoundTokenRefusal` with the status, OAuth error and reason to answer
 * (`token_*` from the token's checks, `dpop_*` from the proof's), for the redemption endpoint of the
 * downstream systems (one environment each), the MCP gateway (every environment: the environment is
 * named by the token's issuer) and any other resource server of this process.
 */
import { q } from "../core/index.js";
import { checkDpopProof, DpopRefused } from "./dpop.js";
import type { EnvironmentKeys } from "./keys.js";
import type { ReplayCache } from "./replay.js";
import { type AccessTokenClaims, checkAccessToken, TokenRefused } from "./tokens.js";

/** Why a request's token or proof is refused, and how to answer it (RFC 6750 §3.1, RFC 9449 §7.1). */
export interface BoundTokenRefusal {
  readonly refused: true;
  readonly status: 401 | 403;
  readonly error: "invalid_request" | "invalid_token" | "invalid_dpop_proof";
  readonly reason: string;
  readonly message: string;
}

function refusal(
  status: 401 | 403,
  error: BoundTokenRefusal["error"],
  reason: string,
  message: string,
): BoundTokenRefusal {
  return { refused: true, status, error, reason, message };
}

export interface BoundTokenOptions {
  /**
   * The environment whose issuer must have minted the token; or, for a resource of every
   * environment, the environment named by the token's (unverified) `iss`, undefined when it is not
   * one of this writ's (`token_issuer`). Only that environment's keys then verify the token.
   */
  readonly env: string | ((iss: unknown) => string | undefined);
  /** That environment's issuer (`<base>/env/<env>`). */
  readonly issuer: string | ((env: string) => string);
  /** The audience the token must name: this resource. */
  readonly audience: string;
  /** The request's public URL (what the proof's `htu` must be) and method. */
  readonly url: string;
  readonly method: string;
  readonly keys: Pick<EnvironmentKeys, "verificationKey">;
  readonly replay: ReplayCache;
  readonly clock?: (() => Date) | undefined;
}

export interface BoundToken {
  readonly refused?: undefined;
  readonly claims: AccessTokenClaims;
  /** The environment whose keys verified it. */
  readonly env: string;
  /** The token itself (the proof's `ath` covers it). */
  readonly token: string;
  /** The proof key's thumbprint, equal to the token's `cnf.jkt`. */
  readonly jkt: string;
}

const reasonOf = (code: string) => code.replace(/^ERR_/, "").toLowerCase();

/** Checks the request's token and proof: the token, or the refusal to answer. */
export async function verifyBoundToken(
  headers: { get(name: string): string | null },
  opts: BoundTokenOptions,
): Promise<BoundToken | BoundTokenRefusal> {
  const auth = headers.get("authorization");
  if (!auth) return refusal(401, "invalid_request", "token_missing", "a writ access token is needed");
  const m = /^(DPoP|Bearer) ([A-Za-z0-9._~+/-]+=*)$/i.exec(auth);
  if (!m) return refusal(401, "invalid_token", "token_malformed", "the Authorization header is malformed");
  if (m[1]!.toLowerCase() !== "dpop")
    return refusal(
      401,
      "invalid_token",
      "dpop_required",
      "present the token with `Authorization: DPoP`: bearer tokens are not accepted",
    );
  const token = m[2]!;
  let env: string | undefined;
  if (typeof opts.env === "string") env = opts.env;
  else {
    let iss: unknown;
    try {
      iss = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")).iss;
    } catch {
      return refusal(401, "invalid_token", "token_malformed", "the token is not a JWT");
    }
    env = opts.env(iss);
    if (env === undefined)
      return refusal(401, "invalid_token", "token_issuer", "the token was not issued by this writ");
  }
  const claims = await checkAccessToken(token, {
    env,
    issuer: typeof opts.issuer === "string" ? opts.issuer : opts.issuer(env),
    keys: opts.keys,
    audience: opts.audience,
    clock: opts.clock,
  });
  if (claims instanceof TokenRefused)
    return refusal(401, "invalid_token", reasonOf(claims.code), claims.message);
  if (claims.cnf === undefined)
    return refusal(
      401,
      "invalid_token",
      "dpop_required",
      "the token is not DPoP-bound: ask the broker with a DPoP proof",
    );
  const proof = await checkDpopProof(headers.get("dpop"), {
    method: opts.method,
    url: opts.url,
    accessToken: token,
    replay: opts.replay,
    clock: opts.clock,
  });
  if (proof instanceof DpopRefused)
    return refusal(401, "invalid_dpop_proof", reasonOf(proof.code), proof.message);
  const jkt = proof.jkt;
  if (jkt !== claims.cnf.jkt)
    return refusal(
      401,
      "invalid_token",
      "dpop_key_mismatch",
      `the DPoP proof is signed by another key than the token ${q(claims.jti)} is bound to`,
    );
  return { claims, jkt, env, token };
}
