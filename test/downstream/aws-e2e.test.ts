/**
 * The whole path with the real AWS issuer: `writ serve`'s composition (default factories) against
 * the fake STS/IAM, the store's own ledger, and the agent's client: a writ redeemed for a role
 * session whose generated session policy allows the writ's grant and nothing else; RFC 7009
 * revocation and the kill switch attach the documented "revoke older sessions" deny, so the session
 * is refused at once.
 */
import { readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { type AgentClient, agentClient, agentKeyFromJwk } from "../../src/downstream/client.js";
import { type FakeAws, startFakeAws } from "../fakes/aws.js";
import { ACCOUNT, awsConfigDir, BROKER, RELEASES_ROLE, ROLE_POLICY, TRUST } from "../fakes/aws-account.js";
import { QUICKSTART_KEYS } from "./fixture.js";

const ROLE = RELEASES_ROLE;

let fake: FakeAws;
let server: Server;
let http: ReturnType<typeof serve>;
let dir: string;
let bot: AgentClient;

beforeAll(async () => {
  fake = await startFakeAws({
    account: ACCOUNT,
    broker: BROKER,
    roles: [{ arn: ROLE, trust: TRUST, policies: [ROLE_POLICY] }],
  });
  let file: string;
  ({ dir, file } = await awsConfigDir({ endpoint: fake.endpoint }));
  const loaded = await loadPolicy(file);
  expect(loaded.problems).toEqual([]);
  server = await createServer({
    policy: loaded.policy!,
    dataDir: join(dir, "data"),
    version: "test",
    stateCache: false,
    env: { AWS_ACCESS_KEY_ID: BROKER.accessKeyId, AWS_SECRET_ACCESS_KEY: BROKER.secretAccessKey },
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
  await fake?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const fetchV1 = { playbook: "fetch", params: { version: "v1.4" } };

describe("AWS, end to end", () => {
  it("a redeemed session may do the writ's grant and nothing else", async () => {
    const r = await bot.redeem("aws", await bot.writ(fetchV1, "aws"));
    const id = r.credential.accessKeyId as string;
    expect(fake.use(id, "s3:GetObject", "arn:aws:s3:::acme-releases/v1.4/app.tgz").allowed).toBe(true);
    expect(fake.use(id, "s3:GetObject", "arn:aws:s3:::acme-releases/v2.0/app.tgz").allowed).toBe(false);
    expect(fake.use(id, "s3:PutObject", "arn:aws:s3:::acme-releases/v1.4/app.tgz").allowed).toBe(false);
    const records = await server.store.downstream.ofWrit(r.writ);
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((x) => x.state === "created")).toBe(true);
  });

  it("the kill switch: the session is refused as soon as the kill is engaged, by an explicit deny", async () => {
    const r = await bot.redeem("aws", await bot.writ(fetchV1, "aws"));
    const id = r.credential.accessKeyId as string;
    await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
    const refused = fake.use(id, "s3:GetObject", "arn:aws:s3:::acme-releases/v1.4/app.tgz");
    expect(refused.allowed).toBe(false);
    expect(refused.reason).toMatch(/explicitly denied/);
    await server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "test" });
  });
});
