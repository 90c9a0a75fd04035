/** RFC 8414 metadata of an environment's issuer, and where it is served. */
import { describe, expect, it } from "vitest";
import { ASYMMETRIC_ALGORITHMS } from "../../src/broker/asymmetric-jws.js";
import {
  authorizationServerMetadata,
  issuerFor,
  metadataPath,
  metadataUrl,
  SIGNING_ALGORITHMS,
} from "../../src/broker/metadata.js";

/** What the verifiers of client assertions and DPoP proofs accept (src/broker/asymmetric-jws.ts). */
const ALL = ["EdDSA", "Ed25519", "ES256", "ES384", "PS256", "RS256"];

describe("authorization server metadata", () => {
  it("describes one environment's issuer and its endpoints", () => {
    const issuer = issuerFor("http://127.0.0.1:8080", "prod");
    expect(issuer).toBe("http://127.0.0.1:8080/env/prod");
    expect(authorizationServerMetadata(issuer)).toEqual({
      issuer,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      introspection_endpoint: `${issuer}/introspect`,
      revocation_endpoint: `${issuer}/revoke`,
      backchannel_authentication_endpoint: `${issuer}/bc-authorize`,
      response_types_supported: [],
      grant_types_supported: [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:openid:params:grant-type:ciba",
      ],
      token_endpoint_auth_methods_supported: ["private_key_jwt"],
      token_endpoint_auth_signing_alg_values_supported: ALL,
      introspection_endpoint_auth_methods_supported: ["private_key_jwt"],
      introspection_endpoint_auth_signing_alg_values_supported: ALL,
      revocation_endpoint_auth_methods_supported: ["private_key_jwt"],
      revocation_endpoint_auth_signing_alg_values_supported: ALL,
      dpop_signing_alg_values_supported: ALL,
      authorization_details_types_supported: ["writ_playbook"],
      backchannel_token_delivery_modes_supported: ["poll"],
      backchannel_user_code_parameter_supported: false,
      tls_client_certificate_bound_access_tokens: false,
    });
  });

  it("advertises exactly the algorithms the verifiers accept, for every signature it checks", () => {
    expect(SIGNING_ALGORITHMS).toEqual(ASYMMETRIC_ALGORITHMS);
    const doc = authorizationServerMetadata("https://writ.example.com/env/dev", {
      serviceDocumentation: "https://writ.example.com/docs",
    }) as unknown as Record<string, unknown>;
    const fields = Object.keys(doc).filter((k) => k.endsWith("_signing_alg_values_supported"));
    expect(fields.sort()).toEqual([
      "dpop_signing_alg_values_supported",
      "introspection_endpoint_auth_signing_alg_values_supported",
      "revocation_endpoint_auth_signing_alg_values_supported",
      "token_endpoint_auth_signing_alg_values_supported",
    ]);
    for (const f of fields) expect(doc[f], f).toEqual([...ASYMMETRIC_ALGORITHMS]);
    // openid-client signs with `Ed25519`; the metadata once left it (and ES384) out
    expect(doc.token_endpoint_auth_signing_alg_values_supported).toContain("Ed25519");
    expect(doc.dpop_signing_alg_values_supported).toContain("ES384");
    expect(doc.service_documentation).toBe("https://writ.example.com/docs");
  });

  it("is served at the well-known URL with the issuer's path appended (RFC 8414 §3.1)", () => {
    expect(metadataPath("prod")).toBe("/.well-known/oauth-authorization-server/env/prod");
    expect(metadataUrl(issuerFor("http://127.0.0.1:8080", "prod"))).toBe(
      "http://127.0.0.1:8080/.well-known/oauth-authorization-server/env/prod",
    );
    // Behind a path prefix, the well-known segment still goes first.
    const prefixed = issuerFor("https://auth.example.com/writ/", "dev");
    expect(prefixed).toBe("https://auth.example.com/writ/env/dev");
    expect(metadataUrl(prefixed)).toBe(
      "https://auth.example.com/.well-known/oauth-authorization-server/writ/env/dev",
    );
  });

  it("refuses issuers RFC 8414 does not allow, and environment ids writ.yaml does not", () => {
    expect(() => issuerFor("http://writ.example.com", "prod")).toThrow(TypeError); // http off loopback
    expect(() => issuerFor("https://writ.example.com?x=1", "prod")).toThrow(TypeError);
    expect(() => issuerFor("https://writ.example.com#f", "prod")).toThrow(TypeError);
    expect(() => issuerFor("not a url", "prod")).toThrow(TypeError);
    expect(() => issuerFor("https://writ.example.com", "../admin")).toThrow(TypeError);
    expect(() => metadataPath("Prod")).toThrow(TypeError);
    expect(() => authorizationServerMetadata("ftp://writ.example.com/env/prod")).toThrow(TypeError);
  });
});
