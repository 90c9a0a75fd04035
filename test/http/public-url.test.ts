/**
 * The public URL is the root of every issuer, and an issuer is https, or http on a loopback host
 * (RFC 8414 §2; the broker mints nothing else). Before, `writ serve --public-url http://<not
 * loopback>` (or `--host 0.0.0.0` without one) started, and then every token request and every
 * metadata document was a 500: `issuerFor` threw a TypeError on each. Now the URL is refused where
 * it is given: at start (`ERR_PUBLIC_URL`), and by `createServer` / `setBaseUrl`, so no request can
 * meet it.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, generateProof } from "dpop";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy } from "../../src/app.js";
import type { CliFailure } from "../../src/cli/output.js";
import { isWritError } from "../../src/core/index.js";
import { quickstartKey } from "../broker/live.js";
import { PDP_TOKEN, quickstartCopy, serveInProcess } from "./support.js";

let dir: string;
let config: string;
let policy: Policy;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-public-url-"));
  config = await quickstartCopy(dir);
  policy = (await loadPolicy(config)).policy!;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startCode(opts: Parameters<typeof serveInProcess>[1]): Promise<string> {
  try {
    const s = await serveInProcess(config, opts);
    await s.stop();
    return "started";
  } catch (err) {
    return (err as CliFailure).code;
  }
}

describe("writ serve refuses at start", () => {
  it.each(["http://writ.internal.example:8080", "http://10.1.2.3", "http://[2001:db8::1]:8080"])(
    "--public-url %s: ERR_PUBLIC_URL",
    async (publicUrl) => {
      expect(await startCode({ flags: { publicUrl } })).toBe("ERR_PUBLIC_URL");
    },
  );

  it("--host 0.0.0.0 without --public-url: ERR_PUBLIC_URL", async () => {
    expect(await startCode({ pdpToken: PDP_TOKEN, flags: { host: "0.0.0.0" } })).toBe("ERR_PUBLIC_URL");
  });
});

describe("writ serve with an https public URL", () => {
  it("issues tokens for the https issuer", async () => {
    const pub = "https://writ.example";
    const served = await serveInProcess(config, { flags: { publicUrl: pub } });
    try {
      const meta = await fetch(`${served.url}/.well-known/oauth-authorization-server/env/dev`);
      expect(meta.status).toBe(200);
      expect(await meta.json()).toMatchObject({ issuer: `${pub}/env/dev` });
      const { key, kid } = await quickstartKey("release-bot");
      const assertion = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: "EdDSA", kid })
        .setIssuer("release-bot")
        .setSubject("release-bot")
        .setAudience(`${pub}/env/dev`)
        .setIssuedAt()
        .setExpirationTime("1m")
        .sign(key);
      const r = await fetch(`${served.url}/env/dev/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          dpop: await generateProof(await generateKeyPair("ES256"), `${pub}/env/dev/token`, "POST"),
        },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: assertion,
        }),
      });
      expect(r.status, await r.clone().text()).toBe(200);
    } finally {
      await served.stop();
    }
  }, 60_000);
});

describe("createServer and setBaseUrl refuse a base URL no issuer can have", () => {
  it("createServer({ baseUrl: http://<not loopback> }): ERR_PUBLIC_URL", async () => {
    const data = await mkdtemp(join(tmpdir(), "writ-public-url-data-"));
    try {
      const err = await createServer({
        policy,
        dataDir: data,
        version: "test",
        baseUrl: "http://writ.example",
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWritError(err, "ERR_PUBLIC_URL")).toBe(true);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  }, 60_000);

  it("setBaseUrl throws and keeps the URL it had", async () => {
    const data = await mkdtemp(join(tmpdir(), "writ-public-url-data-"));
    const server = await createServer({ policy, dataDir: data, version: "test" });
    try {
      server.setBaseUrl("http://127.0.0.1:9");
      let thrown: unknown;
      try {
        server.setBaseUrl("http://writ.example");
      } catch (err) {
        thrown = err;
      }
      expect(isWritError(thrown, "ERR_PUBLIC_URL")).toBe(true);
      const meta = await server.app.request("/.well-known/oauth-authorization-server/env/dev");
      expect(meta.status).toBe(200);
      expect(await meta.json()).toMatchObject({ issuer: "http://127.0.0.1:9/env/dev" });
    } finally {
      await server.close();
      await rm(data, { recursive: true, force: true });
    }
  }, 60_000);
});
