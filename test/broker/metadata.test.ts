/** RFC 8414 metadata of an environment's issuer, and where it is served. */
import { describe, expect, it } from "vitest";
import {
  authorizationServerMetadata,
  issuerFor,
  metadataPath,
  metadataUrl,
} from "../../src/broker/metadata.js";

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
      token_endpoint_auth_signing_alg_values_supported: ["EdDSA", "ES256", "PS256", "RS256"],
      introspection_endpoint_auth_methods_supported: ["private_key_jwt"],
      introspection_endpoint_auth_signing_alg_values_supported: ["EdDSA", "ES256", "PS256", "RS256"],
      revocation_endpoint_auth_methods_supported: ["private_key_jwt"],
      revocation_endpoint_auth_signing_alg_values_supported: ["EdDSA", "ES256", "PS256", "RS256"],
      dpop_signing_alg_values_supported: ["EdDSA", "ES256", "PS256", "RS256"],
      authorization_details_types_supported: ["writ_playbook"],
      backchannel_token_delivery_modes_supported: ["poll"],
      backchannel_user_code_parameter_supported: false,
      tls_client_certificate_bound_access_tokens: false,
    });
  });

  it("takes the algorithms the server accepts and a documentation link", () => {
    const doc = authorizationServerMetadata("https://writ.example.com/env/dev", {
      clientAuthSigningAlgorithms: ["EdDSA", "Ed25519", "ES256"],
      dpopSigningAlgorithms: ["ES256", "Ed25519"],
      serviceDocumentation: "https://writ.example.com/docs",
    });
    expect(doc.token_endpoint_auth_signing_alg_values_supported).toEqual(["EdDSA", "Ed25519", "ES256"]);
    expect(doc.dpop_signing_alg_values_supported).toEqual(["ES256", "Ed25519"]);
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
