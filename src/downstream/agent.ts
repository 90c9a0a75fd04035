/**
 * The agent's side of a redemption, what both ways of making it share (`client.ts` on the agent
 * SDK, `direct.ts` without it): the agent's key from its JWK file, the intent, the redemption's
 * answer read into a `Redeemed`, and the progress lines `writ creds` prints on stderr. Imports
 * nothing heavy: `writ creds` loads it on every cold start.
 */
import { createPrivateKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { ERR_CLIENT_PROTOCOL } from "../client/errors.js";
import { q, WritError } from "../core/errors.js";
import type { DownstreamSystem } from "./types.js";

export const ERR_CREDS_KEY = "ERR_CREDS_KEY";
export const ERR_CREDS_INSECURE_SERVER = "ERR_CREDS_INSECURE_SERVER";

export interface AgentKey {
  readonly key: KeyObject;
  readonly alg: "EdDSA" | "ES256" | "ES384" | "RS256";
  readonly kid: string | undefined;
}

/** The JWS `alg` of a private JWK, when writ signs with its kind of key. */
function algOf(jwk: Record<string, unknown>): AgentKey["alg"] | undefined {
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "EC" && jwk.crv === "P-384") return "ES384";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

/** The agent's private key from its JWK text (members starting with `_` are comments). */
export function agentKeyFromJwk(text: string): AgentKey {
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new WritError(ERR_CREDS_KEY, "the agent key is not JSON (expected a private JWK)");
  }
  if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk))
    throw new WritError(ERR_CREDS_KEY, "the agent key is not a JWK object");
  const clean = Object.fromEntries(Object.entries(jwk).filter(([k]) => !k.startsWith("_")));
  if (clean.d === undefined)
    throw new WritError(ERR_CREDS_KEY, "the agent key is a public key: give the private JWK");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: clean as JsonWebKey, format: "jwk" });
  } catch (err) {
    throw new WritError(
      ERR_CREDS_KEY,
      `the agent key is not a usable private JWK: ${(err as Error).message}`,
    );
  }
  const alg = algOf(clean);
  if (alg === undefined)
    throw new WritError(
      ERR_CREDS_KEY,
      `the agent key's type ${q(`${clean.kty}/${clean.crv ?? ""}`)} is not supported`,
    );
  return { key, alg, kid: typeof clean.kid === "string" ? clean.kid : undefined };
}

export interface Intent {
  readonly playbook: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly ticket?: string | undefined;
}

export interface Redeemed {
  readonly system: DownstreamSystem;
  readonly writ: string;
  readonly expiresAt: Date;
  readonly notes: readonly string[];
  readonly credential: Readonly<Record<string, unknown>>;
}

/** The environment's issuer: `<server>/env/<environment>`. */
export const issuerOf = (server: string, environment: string) =>
  `${server.replace(/\/+$/, "")}/env/${environment}`;

/** Where a writ is redeemed for `system`'s credential; also the audience the writ needs. */
export const redemptionEndpoint = (issuer: string, system: DownstreamSystem) =>
  `${issuer}/downstream/${system}`;

/** The redemption's 200 answer (its body text) as a `Redeemed`; `ERR_CLIENT_PROTOCOL` if it is not one. */
export function redeemedOf(text: string, system: DownstreamSystem, where: string): Redeemed {
  let b: Record<string, unknown>;
  try {
    b = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new WritError(ERR_CLIENT_PROTOCOL, `${q(where)} answered 200 without JSON: is it a writ server?`);
  }
  const expires = typeof b?.expires_at === "string" ? new Date(b.expires_at) : undefined;
  const credential = b?.credential;
  if (
    b === null ||
    typeof b !== "object" ||
    b.system !== system ||
    typeof b.writ !== "string" ||
    expires === undefined ||
    Number.isNaN(expires.getTime()) ||
    credential === null ||
    typeof credential !== "object"
  )
    throw new WritError(ERR_CLIENT_PROTOCOL, "the redemption answer is not a credential");
  const notes = Array.isArray(b.notes) ? b.notes.filter((n): n is string => typeof n === "string") : [];
  return {
    system,
    writ: b.writ,
    expiresAt: expires,
    notes,
    credential: credential as Record<string, unknown>,
  };
}

/** The line `writ creds` prints while the broker slows the agent down. */
export const retryingLine = (retryAfter: number) =>
  `writ: the broker slows this agent down after a denial: retrying in ${retryAfter} s`;
