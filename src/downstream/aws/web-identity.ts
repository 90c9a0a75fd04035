/**
 * AWS web identity: writ's environment issuer as the OpenID Connect provider an IAM OIDC identity
 * provider trusts (docs/downstream-aws.md, "Web-identity mode").
 *
 * AWS STS's AssumeRoleWithWebIdentity takes the token's `iss`, finds the IAM OIDC provider
 * registered for it, fetches `<iss>/.well-known/openid-configuration` and the `jwks_uri` it names,
 * and verifies the token: an RSA or ECDSA signature (RS256…RS512, ES256…ES512; not EdDSA), `aud`
 * among the provider's client ids, `exp` in the future, `sub` and `iat` present. So each environment
 * configuring web identity gets a key of its own, ES256 (`broker/keys.ts`, family `ES256`), a
 * discovery document and a JWKS holding that family only, and tokens minted with it here.
 *
 * The token carries the agent as `sub` and as AWS's source identity claim, and the writ's session
 * tags as AWS's tags claim, so CloudTrail ties the session back to the writ as in role-session mode.
 */
import { SignJWT } from "jose";
import type { EnvironmentKeys } from "../../broker/index.js";

/** The audience AWS documents for tokens meant for STS (the provider's client id). */
export const DEFAULT_WEB_IDENTITY_AUDIENCE = "sts.amazonaws.com";
/** The algorithm of the environments' web-identity keys. */
export const WEB_IDENTITY_ALG = "ES256";
/** AWS's claim for the session's source identity. */
export const SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity";
/** AWS's claim for session tags (`principal_tags`: key → [value]). */
export const TAGS_CLAIM = "https://aws.amazon.com/tags";
/** The token is spent at once, on the broker's own AssumeRoleWithWebIdentity: a short life. */
export const WEB_IDENTITY_TOKEN_SECONDS = 300;
/** STS's bound on `WebIdentityToken` (characters). */
export const WEB_IDENTITY_TOKEN_MAX = 20_000;

/** Where the discovery document and the JWKS of an issuer are (AWS appends the first to `iss`). */
export function openIdConfigurationUrl(issuer: string): string {
  return `${issuer}/.well-known/openid-configuration`;
}
export function webIdentityJwksUrl(issuer: string): string {
  return `${issuer}/.well-known/web-identity-jwks.json`;
}

/** OpenID Connect Discovery 1.0 §3, the members AWS reads (as Kubernetes' service-account issuer serves them). */
export function openIdConfiguration(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: webIdentityJwksUrl(issuer),
    response_types_supported: ["id_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [WEB_IDENTITY_ALG],
    claims_supported: ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", SOURCE_IDENTITY_CLAIM, TAGS_CLAIM],
  };
}

export interface WebIdentityClaims {
  readonly subject: string;
  readonly audience: string;
  readonly sourceIdentity: string;
  readonly tags: readonly { readonly Key: string; readonly Value: string }[];
  readonly jti: string;
  /** No later than the writ's expiry. */
  readonly expiresAt: Date;
}

/** Signs web-identity tokens under each environment's issuer; the composition root builds it. */
export interface WebIdentitySigner {
  /** The environment's issuer URL: the token's `iss`, the IAM OIDC provider's URL. */
  issuer(environment: string): string;
  /** A compact ES256 JWS with the environment's web-identity key. */
  sign(environment: string, claims: WebIdentityClaims, now: Date): Promise<string>;
}

export function webIdentitySigner(
  keys: Pick<EnvironmentKeys, "activeKey">,
  issuer: (environment: string) => string,
): WebIdentitySigner {
  return {
    issuer,
    async sign(environment, claims, now) {
      const key = await keys.activeKey(environment);
      if (key.alg !== WEB_IDENTITY_ALG)
        throw new TypeError(`the web-identity key family must be ${WEB_IDENTITY_ALG}`);
      const iat = Math.floor(now.getTime() / 1000);
      const exp = Math.min(
        iat + WEB_IDENTITY_TOKEN_SECONDS,
        Math.floor(claims.expiresAt.getTime() / 1000),
        Math.floor(key.signUntil.getTime() / 1000),
      );
      const principalTags: Record<string, string[]> = {};
      for (const t of claims.tags) principalTags[t.Key] = [t.Value];
      return new SignJWT({
        [SOURCE_IDENTITY_CLAIM]: claims.sourceIdentity,
        [TAGS_CLAIM]: { principal_tags: principalTags, transitive_tag_keys: [] },
      })
        .setProtectedHeader({ alg: WEB_IDENTITY_ALG, kid: key.kid, typ: "JWT" })
        .setIssuer(issuer(environment))
        .setSubject(claims.subject)
        .setAudience(claims.audience)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(claims.jti)
        .sign(key.privateKey);
    },
  };
}
