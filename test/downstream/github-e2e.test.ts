/**
 * The whole path with a real issuer: `writ serve`'s composition with the GitHub issuer (its default
 * factory, no stand-in) against the fake GitHub, the store's own ledger, and the agent's client:
 * a writ redeemed for an installation token that works on the writ's repository at the writ's level
 * and nowhere else; RFC 7009 revocation and the kill switch make GitHub refuse it at once; a token
 * whose writ is revoked behind the server's back is removed by the reaper.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { type AgentClient, agentClient, agentKeyFromJwk } from "../../src/downstream/client.js";
import { type FakeGithub, startFakeGithub } from "../fakes/github.js";
import { QUICKSTART_KEYS } from "./fixture.js";
import { APP_ID, DEFAULT_INSTALLATION, INSTALLATION, KEY_FILE, KEYS } from "./github-fixture.js";

let fake: FakeGithub;
let server: Server;
let http: ReturnType<typeof serve>;
let dir: string;
let bot: AgentClient;

const yaml = (apiUrl: string) => `version: 1
environments:
  dev: {}
runnerClasses:
  deploy:
    ceiling:
      maxTtl: 30m
      allow:
        - action: "github:contents|pull_requests:read|write"
          resource: "acme/checkout|acme/payments"
agents:
  release-bot:
    owner: alice@acme.example
    purpose: pushes to checkout
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [push]
playbooks:
  push:
    description: write the checkout repository's contents
    risk: low
    environments: [dev]
    ttl: 10m
    grants:
      - action: "github:contents:write"
        resource: "acme/checkout"
downstream:
  dev:
    github:
      appId: ${APP_ID}
      installationId: ${INSTALLATION}
      privateKey: { file: ${KEY_FILE} }
      apiUrl: ${apiUrl}
`;

beforeAll(async () => {
  fake = await startFakeGithub({
    appId: APP_ID,
    publicKey: KEYS.publicPem,
    installations: [DEFAULT_INSTALLATION],
  });
  dir = await mkdtemp(join(tmpdir(), "writ-gh-e2e-"));
  await cp(QUICKSTART_KEYS, join(dir, "keys"), { recursive: true });
  await writeFile(join(dir, "writ.yaml"), yaml(fake.url));
  const loaded = await loadPolicy(join(dir, "writ.yaml"));
  expect(loaded.problems).toEqual([]);
  server = await createServer({
    policy: loaded.policy!,
    dataDir: join(dir, "data"),
    version: "test",
    stateCache: false,
  });
  const info = await new Promise<AddressInfo>((resolve) => {
    http = serve({ fetch: server.app.fetch, hostname: "127.0.0.1", port: 0 }, resolve);
  });
  const base = `http://127.0.0.1:${info.port}`;
  server.setBaseUrl(base);
  const key = agentKeyFromJwk(
    await readFile(join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  );
  bot = agentClient({ server: base, environment: "dev", agent: "release-bot", key });
}, 60_000);

afterAll(async () => {
  if (http) await new Promise<void>((r) => http.close(() => r()));
  await server?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const push = { playbook: "push", params: {} };

describe("GitHub, end to end", () => {
  it("a redeemed token works on the writ's repository at the writ's level, nowhere else", async () => {
    const r = await bot.redeem("github", await bot.writ(push, "github"));
    const token = r.credential.token as string;
    expect(r.credential.repositories).toEqual(["acme/checkout"]);
    expect(fake.use(token, "contents", "write", "acme/checkout")).toBe(200);
    expect(fake.use(token, "contents", "write", "acme/payments")).not.toBe(200);
    expect(fake.use(token, "pull_requests", "write", "acme/checkout")).not.toBe(200);
    expect((await server.store.downstream.ofWrit(r.writ)).map((x) => x.state)).toEqual(["created"]);
  });

  it("RFC 7009 revocation: GitHub refuses the token at once, and the record is removed", async () => {
    const writToken = await bot.writ(push, "github");
    const r = await bot.redeem("github", writToken);
    const token = r.credential.token as string;
    const res = await fetch(`${bot.issuer}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: writToken, ...(await clientAuth()) }).toString(),
    });
    expect(res.status).toBe(200);
    expect(fake.use(token, "contents", "write", "acme/checkout")).toBe(401);
    expect((await server.store.downstream.ofWrit(r.writ)).map((x) => x.state)).toEqual(["removed"]);
  });

  it("the kill switch: GitHub refuses the token as soon as the kill is engaged (the token is revoked)", async () => {
    const r = await bot.redeem("github", await bot.writ(push, "github"));
    const token = r.credential.token as string;
    await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    expect(fake.use(token, "contents", "write", "acme/checkout")).toBe(401);
    expect(fake.calls.some((x) => x.method === "DELETE" && x.token === token && x.status === 204)).toBe(true);
    await server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
  });

  it("the reaper removes a token whose writ was revoked behind the server's back", async () => {
    const r = await bot.redeem("github", await bot.writ(push, "github"));
    const token = r.credential.token as string;
    await server.store.writs.revoke(r.writ, "another process");
    expect(fake.use(token, "contents", "write", "acme/checkout")).toBe(200);
    await server.reaper!.pass();
    expect(fake.use(token, "contents", "write", "acme/checkout")).toBe(401);
    expect((await server.store.downstream.ofWrit(r.writ)).map((x) => x.state)).toEqual(["removed"]);
  });
});

/** private_key_jwt for the revocation endpoint, signed as the agent's client does it. */
async function clientAuth(): Promise<Record<string, string>> {
  const { sign, randomUUID } = await import("node:crypto");
  const { key, kid } = agentKeyFromJwk(
    await readFile(join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  );
  const iat = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: "EdDSA", kid })}.${b64({ iss: "release-bot", sub: "release-bot", aud: bot.issuer, iat, exp: iat + 60, jti: randomUUID() })}`;
  return {
    client_id: "release-bot",
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`,
  };
}
