/**
 * `writ creds`'s client (src/downstream/client.ts) holds plain HTTP to the agent SDK's rule: an
 * `http:` server must be this machine (loopback), unless `allowInsecureHttp` (`--insecure-http`)
 * is given; refused with `ERR_CREDS_INSECURE_SERVER` before any request is made.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isWritError } from "../../src/core/errors.js";
import { agentClient, agentKeyFromJwk, ERR_CREDS_INSECURE_SERVER } from "../../src/downstream/client.js";

const key = agentKeyFromJwk(
  JSON.stringify({ ...generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" }), kid: "k1" }),
);

/** A fetch that records each URL and fails like an unreachable host. */
function recording() {
  const urls: string[] = [];
  const fetch = async (url: string) => {
    urls.push(url);
    throw new TypeError("fetch failed");
  };
  return { urls, fetch };
}

const client = (server: string, allowInsecureHttp?: boolean) => {
  const r = recording();
  const make = () =>
    agentClient({ server, environment: "dev", agent: "release-bot", key, fetch: r.fetch, allowInsecureHttp });
  return { ...r, make };
};

describe("writ creds and plain HTTP", () => {
  for (const server of ["http://writ.acme.example", "http://10.0.0.7:8080", "http://0.0.0.0:8080"]) {
    it(`refuses ${server} without the flag, before any request`, () => {
      const c = client(server);
      let caught: unknown;
      try {
        c.make();
      } catch (err) {
        caught = err;
      }
      expect(isWritError(caught, ERR_CREDS_INSECURE_SERVER), String(caught)).toBe(true);
      expect((caught as Error).message).toContain("--insecure-http");
      expect(c.urls).toEqual([]);
    });
  }

  it("asks a plain-HTTP server on another machine when allowed", async () => {
    const c = client("http://writ.acme.example", true);
    await expect(c.make().baseline()).rejects.toMatchObject({ code: "ERR_CLIENT_UNREACHABLE" });
    expect(c.urls[0]).toBe("http://writ.acme.example/env/dev/token");
  });

  for (const server of [
    "http://127.0.0.1:8080",
    "http://localhost:8080",
    "http://[::1]:8080",
    "https://writ.acme.example",
  ]) {
    it(`asks ${server} without the flag (loopback, or https)`, async () => {
      const c = client(server);
      await expect(c.make().baseline()).rejects.toMatchObject({ code: "ERR_CLIENT_UNREACHABLE" });
      expect(c.urls[0]).toBe(`${server}/env/dev/token`);
    });
  }
});
