/**
 * A third-party resource server accepts writ's tokens: oauth4webapi discovers an environment's
 * issuer over a real loopback HTTP server (RFC 8414 metadata at the path-inserted well-known URL,
 * the JWKS at `jwks_uri`) and runs `validateJwtAccessToken` on bearer and DPoP-bound tokens. And
 * it refuses what writ refuses: another environment's token, a token past its expiry.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as dpop from "dpop";
import { SignJWT } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvironmentKeys, environmentKeys } from "../../src/broker/keys.js";
import {
  authorizationServerMetadata,
  issuerFor,
  metadataPath,
  metadataUrl,
} from "../../src/broker/metadata.js";
import { mintAccessToken } from "../../src/broker/tokens.js";
import { openStore, type Store } from "../../src/store/index.js";

const AUD = "https://gateway.example/mcp";

let dir = "";
let store: Store;
let keys: EnvironmentKeys;
let server: Server;
let base = "";
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-interop-"));
  store = await openStore({ dataDir: dir });
  await store.migrate();
  keys = environmentKeys(store);
  server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push(path);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const meta = /^\/\.well-known\/oauth-authorization-server\/env\/([a-z0-9._-]+)$/.exec(path);
    if (meta !== null && meta[1] !== undefined) {
      return send(200, authorizationServerMetadata(issuerFor(base, meta[1])));
    }
    const jwks = /^\/env\/([a-z0-9._-]+)\/jwks$/.exec(path);
    if (jwks !== null && jwks[1] !== undefined) {
      keys.jwks(jwks[1]).then(
        (set) => {
          res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify(set));
        },
        () => send(500, {}),
      );
      return;
    }
    send(404, { error: "not_found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const insecure = { [oauth.allowInsecureRequests]: true } as const;

async function discover(env: string): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(issuerFor(base, env));
  const response = await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure });
  return oauth.processDiscoveryResponse(issuer, response);
}

async function mint(env: string, extra: { jkt?: string; ttl?: number } = {}) {
  const key = await keys.activeKey(env);
  const nowS = Math.floor(Date.now() / 1000);
  return mintAccessToken(key, {
    iss: issuerFor(base, env),
    sub: "alice@example.com",
    aud: AUD,
    iat: nowS - (extra.ttl !== undefined && extra.ttl < 0 ? 600 : 0),
    exp: nowS + (extra.ttl ?? 300),
    client_id: "release-bot",
    act: { sub: "release-bot" },
    ...(extra.jkt === undefined ? {} : { cnf: { jkt: extra.jkt } }),
    authorization_details: [{ type: "writ_playbook", playbook: "restart-service", environment: env }],
    writ: "w-42",
  });
}

describe("oauth4webapi as a resource server", () => {
  it("discovers the environment's issuer at the RFC 8414 path-inserted URL", async () => {
    const as = await discover("prod");
    expect(requests).toContain(metadataPath("prod"));
    expect(metadataUrl(issuerFor(base, "prod"))).toBe(`${base}${metadataPath("prod")}`);
    expect(as.issuer).toBe(`${base}/env/prod`);
    expect(as.jwks_uri).toBe(`${base}/env/prod/jwks`);
    expect(as.grant_types_supported).toContain("urn:ietf:params:oauth:grant-type:token-exchange");
  });

  it("validateJwtAccessToken accepts a minted bearer token", async () => {
    const as = await discover("prod");
    const token = await mint("prod");
    const request = new Request(AUD, { headers: { authorization: `Bearer ${token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, AUD, insecure);
    expect(claims).toMatchObject({
      iss: as.issuer,
      sub: "alice@example.com",
      aud: AUD,
      client_id: "release-bot",
      act: { sub: "release-bot" },
      writ: "w-42",
      authorization_details: [{ type: "writ_playbook", playbook: "restart-service", environment: "prod" }],
    });
  });

  it("validateJwtAccessToken accepts a DPoP-bound token with the holder's proof, and refuses it without", async () => {
    const as = await discover("prod");
    const holder = await dpop.generateKeyPair("ES256");
    const jkt = await dpop.calculateThumbprint(holder.publicKey);
    const token = await mint("prod", { jkt });
    const proof = await dpop.generateProof(holder, AUD, "GET", undefined, token);
    const bound = new Request(AUD, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
    const claims = await oauth.validateJwtAccessToken(as, bound, AUD, insecure);
    expect(claims.cnf).toEqual({ jkt });

    const bare = new Request(AUD, { headers: { authorization: `Bearer ${token}` } });
    await expect(oauth.validateJwtAccessToken(as, bare, AUD, insecure)).rejects.toThrow();
    const thief = await dpop.generateKeyPair("ES256");
    const stolen = new Request(AUD, {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await dpop.generateProof(thief, AUD, "GET", undefined, token),
      },
    });
    await expect(oauth.validateJwtAccessToken(as, stolen, AUD, insecure)).rejects.toThrow();
  });

  it("refuses a dev token against prod's metadata and JWKS, and an expired token", async () => {
    const prod = await discover("prod");
    await keys.activeKey("prod");
    const devToken = await mint("dev");
    const asDev = new Request(AUD, { headers: { authorization: `Bearer ${devToken}` } });
    await expect(oauth.validateJwtAccessToken(prod, asDev, AUD, insecure)).rejects.toThrow();
    // Even claiming prod's issuer, a token signed with dev's key finds no key in prod's JWKS.
    const devKey = await keys.activeKey("dev");
    const nowS = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({
      iss: prod.issuer,
      sub: "alice@example.com",
      aud: AUD,
      iat: nowS,
      exp: nowS + 60,
      jti: "j",
      client_id: "release-bot",
    })
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: devKey.kid })
      .sign(devKey.privateKey);
    const crossed = new Request(AUD, { headers: { authorization: `Bearer ${forged}` } });
    await expect(oauth.validateJwtAccessToken(prod, crossed, AUD, insecure)).rejects.toThrow(
      /no applicable keys/,
    );
    // The same token is fine where it belongs.
    const dev = await discover("dev");
    await expect(oauth.validateJwtAccessToken(dev, asDev, AUD, insecure)).resolves.toMatchObject({
      iss: dev.issuer,
    });

    const expired = await mint("prod", { ttl: -120 });
    const late = new Request(AUD, { headers: { authorization: `Bearer ${expired}` } });
    await expect(oauth.validateJwtAccessToken(prod, late, AUD, insecure)).rejects.toThrow(/exp/);
    const other = new Request(AUD, { headers: { authorization: `Bearer ${await mint("prod")}` } });
    await expect(
      oauth.validateJwtAccessToken(prod, other, "https://elsewhere.example", insecure),
    ).rejects.toThrow(/aud/);
  });
});
