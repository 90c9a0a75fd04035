/**
 * Introspection by a resource server holding the PDP token (no private_key_jwt): active tokens are
 * described, a wrong token is refused, a constant-time comparison guards it.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoKey, importJWK, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import * as broker from "../../src/broker/index.js";
import { WritError } from "../../src/core/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import { ROOT } from "../support/cli.js";

const BASE = "http://127.0.0.1:9";
const RS_TOKEN = "resource-server-token-0123456789";
let dir: string;
let store: Store;
let service: broker.BrokerService;
let baseline: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-introspect-"));
  store = await openStore({ dataDir: dir });
  await store.migrate();
  const { policy } = await loadPolicy(join(ROOT, "examples", "quickstart", "writ.yaml"));
  service = broker.brokerService({
    config: policy!.config,
    store,
    keys: broker.environmentKeys(store),
    replay: broker.replayCache(store),
    kill: broker.killSwitch(store),
    backoff: broker.denialBackoff(store),
    audit: async () => undefined,
    baseUrl: BASE,
    introspectionToken: RS_TOKEN,
  });
  const { _warning, ...jwk } = JSON.parse(
    await readFile(
      join(ROOT, "examples", "quickstart", "keys", "cost-analyst.DEVELOPMENT-ONLY.private.jwk"),
      "utf8",
    ),
  ) as JWK & { _warning?: string };
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", kid: jwk.kid! })
    .setIssuer("cost-analyst")
    .setSubject("cost-analyst")
    .setAudience(`${BASE}/env/dev`)
    .setIssuedAt()
    .setExpirationTime("1m")
    .setJti(randomUUID())
    .sign((await importJWK(jwk, "EdDSA")) as CryptoKey);
  const r = await service.token("dev", {
    form: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }),
    headers: {},
  });
  expect(r.status).toBe(200);
  baseline = r.body.access_token as string;
}, 60_000);

afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const introspect = (bearer: string, token: string, env = "dev") =>
  service.introspect(env, {
    form: new URLSearchParams({ token }),
    headers: { authorization: `Bearer ${bearer}` },
  });

describe("introspection with the resource servers' token", () => {
  it("describes an active token", async () => {
    const r = await introspect(RS_TOKEN, baseline);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      active: true,
      sub: "cost-analyst",
      client_id: "cost-analyst",
      scope: "writ:baseline",
      token_type: "Bearer",
    });
  });

  it("refuses a wrong bearer token", async () => {
    const r = await introspect(`${RS_TOKEN}x`, baseline);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe("invalid_client");
  });

  it("says inactive for garbage and for another environment's token", async () => {
    expect((await introspect(RS_TOKEN, "not-a-token")).body).toEqual({ active: false });
    expect((await introspect(RS_TOKEN, baseline, "prod")).body).toEqual({ active: false });
  });
});

describe("a store that fails while a token is checked", () => {
  it("is the server's failure, not an inactive or refused token", async () => {
    const { policy } = await loadPolicy(join(ROOT, "examples", "quickstart", "writ.yaml"));
    const keys = broker.environmentKeys(store);
    const failing = broker.brokerService({
      config: policy!.config,
      store,
      keys: {
        ...keys,
        verificationKey: async () => {
          throw new WritError("ERR_STORE_UNAVAILABLE", "the store did not answer");
        },
      },
      replay: broker.replayCache(store),
      kill: broker.killSwitch(store),
      backoff: broker.denialBackoff(store),
      audit: async () => undefined,
      baseUrl: BASE,
      introspectionToken: RS_TOKEN,
    });
    const req = {
      form: new URLSearchParams({ token: baseline }),
      headers: { authorization: `Bearer ${RS_TOKEN}` },
    };
    await expect(failing.introspect("dev", req)).rejects.toMatchObject({ code: "ERR_STORE_UNAVAILABLE" });
    await expect(failing.use("dev", req)).rejects.toMatchObject({ code: "ERR_STORE_UNAVAILABLE" });
  });
});
