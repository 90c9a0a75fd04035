/**
 * The GitHub downstream issuer against the fake GitHub (loopback HTTP, the real `@octokit/auth-app`):
 *
 *   (a) writ's redemption of a writ for an installation token: the grants mapped to a request, the
 *       ledger's intent, the App JWT and the mint, GitHub's answer checked, the ledger's `created`
 *       and the audit record;
 *   (b) the floor: the same token request through `@octokit/auth-app` alone (JWT + mint);
 *   then kill → first refused use of the token (401 from the fake), over 20 runs: p50 and p99.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { createAppAuth } from "@octokit/auth-app";
import { request } from "@octokit/request";
import { githubIssuer } from "../src/downstream/github.js";
import type { WritForIssuer } from "../src/downstream/types.js";
import { credentialOf } from "../test/downstream/outcome.js";
import { startFakeGithub } from "../test/fakes/github.js";
import { memoryLedger } from "../test/fakes/ledger.js";
import { measure, table } from "./harness.js";

const APP_ID = 424242;
const INSTALLATION = 7001;

export async function run(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const fake = await startFakeGithub({
    appId: APP_ID,
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
    installations: [
      {
        id: INSTALLATION,
        account: "acme",
        permissions: { contents: "write", deployments: "write", statuses: "write" },
        repositories: ["checkout", "payments", "search"],
      },
    ],
  });
  try {
    const issuer = await githubIssuer(
      { appId: String(APP_ID), installationId: INSTALLATION, privateKey: { env: "K" }, apiUrl: fake.url },
      { ledger: memoryLedger(), audit: async () => undefined, env: { K: privatePem } },
    );
    const sdk = createAppAuth({
      appId: APP_ID,
      privateKey: privatePem,
      request: request.defaults({ baseUrl: fake.url }),
      cache: { get: () => "", set: () => undefined },
    });
    const writ = (): WritForIssuer => {
      const now = Date.now();
      return {
        id: `writ-${randomUUID()}`,
        agent: "release-bot",
        playbook: "deploy-service",
        environment: "prod",
        params: {},
        grants: [{ action: "github:contents|deployments:read|write", resource: "acme/checkout" }],
        denies: [],
        issuedAt: new Date(now),
        expiresAt: new Date(now + 20 * 60_000),
      };
    };
    const rows = await measure(
      [
        {
          name: "(a) writ: redeem a writ for a token",
          op: () => credentialOf(issuer.issue(writ(), new Date())),
        },
        {
          name: "(b) floor: @octokit/auth-app mint alone",
          op: () =>
            sdk({
              type: "installation",
              installationId: INSTALLATION,
              repositoryNames: ["checkout"],
              permissions: { contents: "write", deployments: "write" },
              refresh: true,
            }),
        },
      ],
      { budgetMs: 2000, maxIterations: 3000, warmupMs: 300 },
    );
    console.log(table("GitHub installation token, against the fake GitHub", rows, rows[1]!, "tokens/s"));
    await issuer.kill({}, new Date());

    // kill → first refused use
    const use = async (token: string) => {
      const res = await fetch(`${fake.url}/repos/acme/checkout`, {
        headers: { authorization: `token ${token}`, "user-agent": "bench" },
      });
      await res.arrayBuffer();
      return res.status;
    };
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const w = writ();
      const c = await credentialOf(issuer.issue(w, new Date()));
      if (c.system !== "github" || (await use(c.token)) !== 200) throw new Error("the token does not work");
      const t0 = performance.now();
      await issuer.kill({ writ: w.id }, new Date());
      const status = await use(c.token);
      ms.push(performance.now() - t0);
      if (status !== 401) throw new Error(`use after kill answered ${status}`);
    }
    ms.sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.ceil((q / 100) * ms.length) - 1)]!;
    console.log(
      `\nkill → first refused use (401), 20 runs: p50 ${p(50).toFixed(2)} ms, p99 ${p(99).toFixed(2)} ms (target ≤ 1000 ms)`,
    );
  } finally {
    await fake.close();
  }
}
