/**
 * Shared pieces of the broker's authentication tests: a writ.yaml whose agents use the quickstart's
 * development key pairs (and one agent with two generated ES256 keys without `kid`), and a
 * loopback HTTP server that real OAuth clients talk to.
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { loadConfigText } from "../../src/config/index.js";
import type { WritConfig } from "../../src/core/index.js";

export const QUICKSTART = join(dirname(fileURLToPath(import.meta.url)), "../../examples/quickstart");

export interface AgentKey {
  /** The private key, as a CryptoKey, for jose and openid-client. */
  readonly key: CryptoKey;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly kid?: string | undefined;
  readonly alg: string;
}

export interface Fixture {
  readonly config: WritConfig;
  readonly releaseBot: AgentKey;
  readonly opsAssistant: AgentKey;
  /** The two keys registered for `es-bot` (ES256, no `kid`). */
  readonly esBot: readonly [AgentKey, AgentKey];
}

async function quickstartKey(agent: string): Promise<AgentKey> {
  const text = await readFile(join(QUICKSTART, "keys", `${agent}.DEVELOPMENT-ONLY.private.jwk`), "utf8");
  const { _warning, ...privateJwk } = JSON.parse(text) as JWK & { _warning?: string };
  const key = (await importJWK(privateJwk, "EdDSA")) as CryptoKey;
  const { d: _d, ...publicJwk } = privateJwk;
  return { key, privateJwk, publicJwk, kid: privateJwk.kid, alg: "EdDSA" };
}

async function generatedKey(alg: "ES256"): Promise<AgentKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    key: privateKey,
    privateJwk: await exportJWK(privateKey),
    publicJwk: await exportJWK(publicKey),
    alg,
  };
}

export async function loadFixture(): Promise<Fixture> {
  const releaseBot = await quickstartKey("release-bot");
  const opsAssistant = await quickstartKey("ops-assistant");
  const esBot = [await generatedKey("ES256"), await generatedKey("ES256")] as const;
  const text = `version: 1
environments:
  prod: {}
runnerClasses:
  deploy:
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get|patch"
          resource: "*"
agents:
  release-bot:
    owner: alice@acme.example
    purpose: Rolls services forward
    runnerClass: deploy
    environments: [prod]
    keys: { file: keys/release-bot.jwks.json }
  ops-assistant:
    owner: bob@acme.example
    purpose: Helps on call
    runnerClass: deploy
    environments: [prod]
    keys: { file: keys/ops-assistant.jwks.json }
  es-bot:
    owner: carol@acme.example
    purpose: Signs with ES256 keys that have no kid
    runnerClass: deploy
    environments: [prod]
    keys:
      jwks: ${JSON.stringify({ keys: esBot.map((k) => k.publicJwk) })}
  rotating-bot:
    owner: dan@acme.example
    purpose: Holds two keys with kids, as during a key rotation
    runnerClass: deploy
    environments: [prod]
    keys:
      jwks: ${JSON.stringify({ keys: [releaseBot.publicJwk, opsAssistant.publicJwk] })}
`;
  const result = await loadConfigText(text, {
    file: join(QUICKSTART, "broker-test.yaml"),
    baseDir: QUICKSTART,
  });
  if (!result.config) {
    throw new Error(`fixture does not load: ${result.problems.map((p) => p.message).join("; ")}`);
  }
  return { config: result.config, releaseBot, opsAssistant, esBot };
}

export interface LoopbackRequest {
  readonly method: string;
  /** The path and query, as received. */
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
  /** Every value of each header, for headers that may repeat (`DPoP`). */
  readonly headersDistinct: IncomingMessage["headersDistinct"];
  readonly body: string;
}

export interface LoopbackResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json: unknown;
}

export interface Loopback {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  close(): Promise<void>;
}

/** An HTTP server on a free loopback port that answers every request with `handle`. */
export async function startLoopback(
  handle: (req: LoopbackRequest) => Promise<LoopbackResponse>,
): Promise<Loopback> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        headersDistinct: req.headersDistinct,
        body: Buffer.concat(chunks).toString("utf8"),
      })
        .then((out) => {
          res.writeHead(out.status, { "content-type": "application/json", ...out.headers });
          res.end(JSON.stringify(out.json));
        })
        .catch((err: unknown) => {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: "server_error", error_description: String(err) }));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** The `code` a promise rejects with (`"no error"` when it resolves). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return "no error";
}
