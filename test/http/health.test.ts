/**
 * Health and the public URL: `/livez` answers while the process does; `/readyz` is 503 with a JSON
 * reason when the store does not answer, a migration is pending or a signing key cannot be had;
 * `WRIT_HOST`, `WRIT_PORT`, `WRIT_PUBLIC_URL` and `WRIT_LOG_LEVEL` stand beside their flags (a flag
 * wins, a bad value is a coded refusal naming the variable); and no metadata document reflects the
 * request's `Host` header — before, the AuthZEN metadata named whatever host the client sent.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy } from "../../src/app.js";
import type { CliFailure } from "../../src/cli/output.js";
import { createTempDatabase, postgresEnabled } from "../store/backends.js";
import { GATEWAY_YAML, quickstartCopy, rawConnection, rawJsonBody, serveInProcess } from "./support.js";

let dir: string;
let config: string;
let policy: Policy;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-health-"));
  config = await quickstartCopy(dir, GATEWAY_YAML);
  policy = (await loadPolicy(config)).policy!;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startCode(
  opts: Parameters<typeof serveInProcess>[1],
): Promise<{ code: string; message: string }> {
  try {
    const s = await serveInProcess(config, opts);
    await s.stop();
    return { code: "started", message: "" };
  } catch (err) {
    return { code: (err as CliFailure).code, message: (err as Error).message };
  }
}

/** One raw GET with a `Host` header of the client's choosing. */
async function getWithHost(port: number, path: string, host: string): Promise<Record<string, unknown>> {
  const raw = await rawConnection(port);
  raw.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const { status } = await raw.head();
  expect(status).toBe(200);
  return rawJsonBody(raw);
}

describe("health", () => {
  it("/livez and /readyz answer 200 on a healthy server, with every check named", async () => {
    const data = await mkdtemp(join(tmpdir(), "writ-health-data-"));
    const server = await createServer({ policy, dataDir: data, version: "test" });
    try {
      server.setBaseUrl("http://127.0.0.1:9");
      const live = await server.app.request("/livez");
      expect(live.status).toBe(200);
      expect(await live.json()).toEqual({ status: "ok", version: "test" });
      const ready = await server.app.request("/readyz");
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: "ok",
        version: "test",
        checks: { store: "ok", migrations: "ok", keys: "ok" },
      });

      // a migration this build knows that the database has not applied: not ready, and says which
      await sql`delete from kysely_migration where name = '0009_observability'`.execute(server.store.db);
      const pending = await server.app.request("/readyz");
      expect(pending.status).toBe(503);
      expect(await pending.json()).toMatchObject({
        status: "unavailable",
        reason: "migrations_pending",
        detail: expect.stringContaining("0009_observability"),
        checks: { store: "ok", migrations: "pending" },
      });
      // liveness does not depend on the store
      expect((await server.app.request("/livez")).status).toBe(200);
    } finally {
      await server.close();
      await rm(data, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(postgresEnabled)(
    "/readyz is 503 store_unreachable when PostgreSQL goes away (and answers, not hangs)",
    async () => {
      const data = await mkdtemp(join(tmpdir(), "writ-health-pg-"));
      const temp = await createTempDatabase();
      const server = await createServer({ policy, dataDir: data, databaseUrl: temp.url, version: "test" });
      try {
        server.setBaseUrl("http://127.0.0.1:9");
        expect((await server.app.request("/readyz")).status).toBe(200);
        await temp.drop();
        // a hang would be this test's timeout, not a 503
        const res = await server.app.request("/readyz");
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ reason: "store_unreachable", checks: { store: "failed" } });
      } finally {
        await server.close().catch(() => {});
        await rm(data, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

describe("metadata documents name the public URL, never the request's Host", () => {
  it("AuthZEN, OAuth AS (with its JWKS and CIBA endpoints) and protected resource metadata", async () => {
    const pub = "https://writ.example";
    const served = await serveInProcess(config, { flags: { publicUrl: pub } });
    try {
      const evil = "evil.example:8443";
      const authzen = await getWithHost(served.port, "/.well-known/authzen-configuration", evil);
      expect(authzen).toEqual({
        policy_decision_point: pub,
        access_evaluation_endpoint: `${pub}/access/v1/evaluation`,
        access_evaluations_endpoint: `${pub}/access/v1/evaluations`,
      });
      const as = await getWithHost(served.port, "/.well-known/oauth-authorization-server/env/prod", evil);
      expect(as).toMatchObject({
        issuer: `${pub}/env/prod`,
        jwks_uri: `${pub}/env/prod/jwks`,
        token_endpoint: `${pub}/env/prod/token`,
        backchannel_authentication_endpoint: `${pub}/env/prod/bc-authorize`,
      });
      const prm = await getWithHost(served.port, "/.well-known/oauth-protected-resource/mcp", evil);
      expect(prm).toMatchObject({ resource: `${pub}/mcp` });
      for (const doc of [authzen, as, prm]) expect(JSON.stringify(doc)).not.toContain("evil");
    } finally {
      await served.stop();
    }
  }, 120_000);
});

describe("environment variables beside the flags", () => {
  it("WRIT_PORT, WRIT_HOST and WRIT_PUBLIC_URL are used when no flag is given", async () => {
    const served = await serveInProcess(config, {
      flags: { host: undefined, port: undefined },
      defaults: { host: "127.0.0.1", port: "0", publicUrl: "https://env.writ.example" },
    });
    try {
      const as = await getWithHost(served.port, "/.well-known/authzen-configuration", "x.example");
      expect(as.policy_decision_point).toBe("https://env.writ.example");
    } finally {
      await served.stop();
    }
  }, 120_000);

  it("a flag wins over its variable", async () => {
    const served = await serveInProcess(config, {
      flags: { port: "0", publicUrl: "https://flag.writ.example" },
      defaults: { port: "not-a-port", publicUrl: "ftp://env.example" },
    });
    await served.stop();
    expect(await startCode({ flags: { logLevel: "debug" }, defaults: { logLevel: "loud" } })).toMatchObject({
      code: "started",
    });
  }, 120_000);

  it.each([
    [{ port: "65536" }, "WRIT_PORT"],
    [{ port: "eighty" }, "WRIT_PORT"],
    [{ host: "bad host" }, "WRIT_HOST"],
    [{ publicUrl: "ftp://writ.example" }, "WRIT_PUBLIC_URL"],
    [{ publicUrl: "https://writ.example/?q=1" }, "WRIT_PUBLIC_URL"],
    [{ logLevel: "loud" }, "WRIT_LOG_LEVEL"],
    [{ metricsToken: "short" }, "WRIT_METRICS_TOKEN"],
  ])("a bad value %j is ERR_USAGE naming %s", async (defaults, variable) => {
    const r = await startCode({
      flags: { host: undefined, port: undefined },
      defaults: { port: "0", ...defaults },
    });
    expect(r.code).toBe("ERR_USAGE");
    expect(r.message).toContain(variable);
  });

  it("an http public URL off loopback from WRIT_PUBLIC_URL is ERR_PUBLIC_URL", async () => {
    const r = await startCode({ defaults: { publicUrl: "http://writ.internal.example" } });
    expect(r.code).toBe("ERR_PUBLIC_URL");
  });
});
