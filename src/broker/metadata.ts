/**
 * Discovery (RFC 8414). Every environment is its own issuer, `${baseUrl}/env/${environment}`, with
 * its endpoints beneath it; its metadata document is at the well-known path with the issuer's path
 * appended (RFC 8414 §3.1): `/.well-known/oauth-authorization-server/env/${environment}`.
 *
 * Pure: the document is built from the issuer and options; the HTTP routes serve it.
 */
import { ASYMMETRIC_ALGORITHMS } from "./asymmetric-jws.js";

/** Grant types the broker serves: baseline tokens, writs by token exchange, approvals by CIBA poll. */
export const GRANT_TYPES = [
  "client_credentials",
  "urn:ietf:params:oauth:grant-type:token-exchange",
  "urn:openid:params:grant-type:ciba",
] as const;

/**
 * The JWS algorithms advertised for every signature the broker verifies — `private_key_jwt`
 * assertions at the token, introspection and revocation endpoints (RFC 7523) and DPoP proofs
 * (RFC 9449). It is the very list the verifiers accept (`asymmetric-jws.ts`), so the metadata can
 * neither promise an algorithm that is refused nor hide one that is taken. There are no request
 * objects, so no `request_object_signing_alg_values_supported`.
 */
export const SIGNING_ALGORITHMS: readonly string[] = ASYMMETRIC_ALGORITHMS;

/** The RFC 9396 `authorization_details` type of a writ request. */
export const WRIT_PLAYBOOK_TYPE = "writ_playbook";

const ENV_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface AuthorizationServerMetadata {
  readonly issuer: string;
  readonly token_endpoint: string;
  readonly jwks_uri: string;
  readonly introspection_endpoint: string;
  readonly revocation_endpoint: string;
  readonly backchannel_authentication_endpoint: string;
  /** REQUIRED by RFC 8414; empty, as there is no authorization endpoint. */
  readonly response_types_supported: readonly string[];
  readonly grant_types_supported: readonly string[];
  readonly token_endpoint_auth_methods_supported: readonly string[];
  readonly token_endpoint_auth_signing_alg_values_supported: readonly string[];
  readonly introspection_endpoint_auth_methods_supported: readonly string[];
  readonly introspection_endpoint_auth_signing_alg_values_supported: readonly string[];
  readonly revocation_endpoint_auth_methods_supported: readonly string[];
  readonly revocation_endpoint_auth_signing_alg_values_supported: readonly string[];
  readonly dpop_signing_alg_values_supported: readonly string[];
  readonly authorization_details_types_supported: readonly string[];
  readonly backchannel_token_delivery_modes_supported: readonly string[];
  readonly backchannel_user_code_parameter_supported: boolean;
  readonly tls_client_certificate_bound_access_tokens: boolean;
  readonly service_documentation?: string;
}

export interface MetadataOptions {
  readonly serviceDocumentation?: string | undefined;
}

/**
 * Checks an issuer identifier as RFC 8414 §2 requires: https (or http on a loopback host, for
 * development), no query, no fragment. Returns it without a trailing slash.
 */
function checkIssuer(issuer: string): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new TypeError(`issuer \`${issuer}\`: not a URL`);
  }
  const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new TypeError(`issuer \`${issuer}\`: must be https (http only on a loopback host)`);
  }
  if (url.search !== "" || url.hash !== "" || issuer.includes("?") || issuer.includes("#")) {
    throw new TypeError(`issuer \`${issuer}\`: must have no query and no fragment`);
  }
  return issuer.replace(/\/+$/, "");
}

/**
 * Issuers already built, by base URL and environment: a pure function of the two, asked several
 * times per token request (each parse of a URL costs more than the rest of the lookup). Only
 * issuers that passed their checks are kept; bounded, emptied when full.
 */
const issuers = new Map<string, string>();
const MAX_ISSUERS = 256;

/** The issuer of `environment`: `${baseUrl}/env/${environment}`. */
export function issuerFor(baseUrl: string, environment: string): string {
  const id = `${baseUrl}\n${environment}`;
  const hit = issuers.get(id);
  if (hit !== undefined) return hit;
  if (!ENV_ID.test(environment)) {
    throw new TypeError(`environment \`${environment}\`: expected a writ.yaml environment id`);
  }
  const issuer = checkIssuer(`${checkIssuer(baseUrl)}/env/${environment}`);
  if (issuers.size >= MAX_ISSUERS) issuers.clear();
  issuers.set(id, issuer);
  return issuer;
}

/** Where the metadata of `issuer` is served (RFC 8414 §3.1: the well-known segment goes first). */
export function metadataUrl(issuer: string): string {
  const url = new URL(checkIssuer(issuer));
  const path = url.pathname === "/" ? "" : url.pathname;
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

/** The path of `environment`'s metadata document on the server. */
export function metadataPath(environment: string): string {
  if (!ENV_ID.test(environment)) {
    throw new TypeError(`environment \`${environment}\`: expected a writ.yaml environment id`);
  }
  return `/.well-known/oauth-authorization-server/env/${environment}`;
}

/** The RFC 8414 authorization server metadata of one environment's issuer. */
export function authorizationServerMetadata(
  issuer: string,
  opts: MetadataOptions = {},
): AuthorizationServerMetadata {
  const iss = checkIssuer(issuer);
  const algs = () => [...SIGNING_ALGORITHMS];
  return {
    issuer: iss,
    token_endpoint: `${iss}/token`,
    jwks_uri: `${iss}/jwks`,
    introspection_endpoint: `${iss}/introspect`,
    revocation_endpoint: `${iss}/revoke`,
    backchannel_authentication_endpoint: `${iss}/bc-authorize`,
    response_types_supported: [],
    grant_types_supported: [...GRANT_TYPES],
    token_endpoint_auth_methods_supported: ["private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: algs(),
    introspection_endpoint_auth_methods_supported: ["private_key_jwt"],
    introspection_endpoint_auth_signing_alg_values_supported: algs(),
    revocation_endpoint_auth_methods_supported: ["private_key_jwt"],
    revocation_endpoint_auth_signing_alg_values_supported: algs(),
    dpop_signing_alg_values_supported: algs(),
    authorization_details_types_supported: [WRIT_PLAYBOOK_TYPE],
    backchannel_token_delivery_modes_supported: ["poll"],
    backchannel_user_code_parameter_supported: false,
    tls_client_certificate_bound_access_tokens: false,
    ...(opts.serviceDocumentation === undefined ? {} : { service_documentation: opts.serviceDocumentation }),
  };
}
