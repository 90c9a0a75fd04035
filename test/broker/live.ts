/**
 * A live `writ serve` app for broker tests: the given policy on a fresh embedded store, listening
 * on loopback, and agents driven by openid-client with their quickstart development keys.
 */
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { type CryptoKey, importJWK, type JWK } from "jose";
import * as client from "openid-client";
import { createServer, type Policy, type Server } from "../../src/app.js";
import { ROOT } from "../support/cli.js";

export const QUICKSTART = join(ROOT, "examples", "quickstart");

export interface Live {
  readonly server: Server;
  readonly base: string;
  stop(): Promise<void>;
}

/** `stateCache: false` for tests that write the store's tables directly between cases. */
export async function startLive(
  policy: Policy,
  dataDir: string,
  opts: { stateCache?: boolean; pdpToken?: string; dpopNonce?: "accept" | "require" } = {},
): Promise<Live> {
  const server = await createServer({ policy, dataDir, version: "test", ...opts });
  let http: ReturnType<typeof serve> | undefined;
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  const base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  return {
    server,
    base,
    async stop() {
      await new Promise<void>((resolve) => http!.close(() => resolve()));
      await server.close();
    },
  };
}

/** A quickstart private key (agents: `release-bot`; approvers: `approver-bob`). */
export async function quickstartKey(name: string): Promise<{ key: CryptoKey; kid: string }> {
  const { _warning, ...jwk } = JSON.parse(
    await readFile(join(QUICKSTART, "keys", `${name}.DEVELOPMENT-ONLY.private.jwk`), "utf8"),
  ) as JWK & { _warning?: string };
  return { key: (await importJWK(jwk, "EdDSA")) as CryptoKey, kid: jwk.kid! };
}

/** openid-client configured for one environment's issuer, with a fresh ES256 DPoP key. */
export async function agentClient(base: string, env: string, agent = "release-bot") {
  const { key, kid } = await quickstartKey(agent);
  const config = await client.discovery(
    new URL(`${base}/env/${env}`),
    agent,
    undefined,
    client.PrivateKeyJwt({ key, kid }),
    {
      algorithm: "oauth2",
      execute: [client.allowInsecureRequests],
    },
  );
  const dpopKeys = await client.randomDPoPKeyPair("ES256");
  return { config, DPoP: client.getDPoPHandle(config, dpopKeys), dpopKeys };
}

/**
 * Baseline token, then a writ for one `writ_playbook` intent (token exchange, DPoP-bound), through
 * openid-client. `details` is the intent, or the raw `authorization_details` text.
 */
export async function requestWrit(
  c: Awaited<ReturnType<typeof agentClient>>,
  details: Record<string, unknown> | string,
  resource = "https://k8s.acme.example",
) {
  const baseline = await client.clientCredentialsGrant(c.config, {}, { DPoP: c.DPoP });
  return client.genericGrantRequest(
    c.config,
    "urn:ietf:params:oauth:grant-type:token-exchange",
    {
      subject_token: baseline.access_token,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      resource,
      authorization_details:
        typeof details === "string" ? details : JSON.stringify([{ type: "writ_playbook", ...details }]),
    },
    { DPoP: c.DPoP },
  );
}
