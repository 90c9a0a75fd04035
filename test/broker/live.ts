/**
 * A live `writ serve` app for broker tests: the given policy on a fresh embedded store, listening
 * on loopback, and agents driven by openid-client with their quickstart development keys.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { type CryptoKey, importJWK, type JWK } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, beforeEach, expect } from "vitest";
import { createServer, loadPolicy, type Policy, type Server } from "../../src/app.js";
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

/**
 * A copy of the quickstart in `<dir>/config` whose `deploy-service` also needs one SRE in dev (dev
 * has no change window, so tests of approvals run any day), loaded.
 */
export async function quickstartWithDevApproval(dir: string): Promise<Policy> {
  await cp(QUICKSTART, join(dir, "config"), { recursive: true });
  const file = join(dir, "config", "writ.yaml");
  const text = await readFile(file, "utf8");
  const patched = text.replace(
    "    approval:\n      prod:\n        allOf:",
    "    approval:\n      dev: { group: sre, count: 1 }\n      prod:\n        allOf:",
  );
  expect(patched).not.toBe(text);
  await writeFile(file, patched);
  const loaded = await loadPolicy(file);
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  return loaded.policy!;
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

/**
 * A live server for a test file's own writ.yaml (written beside a copy of the quickstart's keys),
 * started before the file's tests and stopped after them, with a clean slate before each test: no
 * slow-down block, no kill. `stateCache: false`, so tests may edit the store's tables. Returns
 * the server once started.
 */
export function liveFromYaml(
  name: string,
  writYaml: () => string | Promise<string>,
  opts: { pdpToken?: string; rewire?: (policy: Policy) => Policy } = {},
): () => Live {
  let dir: string | undefined;
  let live: Live | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `writ-${name}-`));
    const config = join(dir, "config");
    await cp(join(QUICKSTART, "keys"), join(config, "keys"), { recursive: true });
    await writeFile(join(config, "writ.yaml"), await writYaml());
    const loaded = await loadPolicy(join(config, "writ.yaml"));
    expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
    const policy = opts.rewire ? opts.rewire(loaded.policy!) : loaded.policy!;
    live = await startLive(policy, join(dir, "data"), {
      stateCache: false,
      ...(opts.pdpToken === undefined ? {} : { pdpToken: opts.pdpToken }),
    });
  }, 240_000);
  afterAll(async () => {
    await live?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await live!.server.store.db.deleteFrom("denial_counters").execute();
    await live!.server.store.db.deleteFrom("kill_switches").execute();
  });
  return () => {
    if (live === undefined) throw new Error("the live server has not started");
    return live;
  };
}
