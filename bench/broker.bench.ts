/**
 * The broker: writs issued per second and latency — token exchange with a private_key_jwt client
 * assertion and a DPoP proof made per request, each writ stored and its issuance audited before
 * the answer — beside oidc-provider's plain client_credentials grant (client_secret_post, an opaque
 * token, in memory) on the same machine, in one run, interleaved:
 *
 *   one request at a time   writ's p50 against the 3 ms goal, and the raw Ed25519 signing rate
 *                           (every writ is at least one signature: the limit)
 *   16 requests in flight   writ's rate against oidc-provider's (goal: at least 1×)
 *
 * Over loopback HTTP, client and servers in this process; the client signs its assertion and proof
 * with `node:crypto` (test/broker/exchange-client.ts) so that the load it adds is small.
 */
import { createPrivateKey, sign } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { JWK } from "jose";
import Provider from "oidc-provider";
import { createServer, loadPolicy } from "../src/app.js";
import { exchangeClient } from "../test/broker/exchange-client.js";
import { type Measurement, measure, measureConcurrent, table, tempDatabase } from "./harness.js";

const ROOT = join(import.meta.dirname, "..");
const QUICKSTART = join(ROOT, "examples", "quickstart");

/** A writ server on one store, and one token exchange against it as a benchmark operation. */
export async function writServer(dir: string, databaseUrl?: string) {
  const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  // thousands of writs a minute for one agent: lift the runner classes' per-agent limits
  const runnerClasses = new Map(
    [...policy!.config.runnerClasses].map(([id, rc]) => [
      id,
      { ...rc, limits: { activeWrits: 1_000_000, issuancePerMinute: 1_000_000 } },
    ]),
  );
  const unlimited = { ...policy!, config: { ...policy!.config, runnerClasses } };
  const writ = await createServer({ policy: unlimited, dataDir: dir, databaseUrl, version: "bench" });
  const writHttp = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: writ.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(writHttp.address() as AddressInfo).port}`;
  writ.setBaseUrl(base);
  const { _warning, ...jwk } = JSON.parse(
    await readFile(join(QUICKSTART, "keys", "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  ) as JWK & { _warning?: string };
  const client = await exchangeClient(base);
  const exchange = async () => {
    const r = await client.exchange();
    if (r.status !== 200) throw new Error(`writ token endpoint: ${r.status} ${JSON.stringify(r.body)}`);
  };

  return {
    base,
    jwk,
    exchange,
    async close() {
      await new Promise<void>((resolve) => writHttp.close(() => resolve()));
      await writ.close();
    },
  };
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-broker-"));
  const embedded = await writServer(join(dir, "embedded"));
  const database = await tempDatabase();
  const onPostgres =
    typeof database === "string" ? undefined : await writServer(join(dir, "pg"), database.url);
  if (typeof database === "string") console.log(`(PostgreSQL unreachable, its row is left out: ${database})`);
  const { jwk } = embedded;

  // oidc-provider, plain client_credentials
  const opServer = createHttpServer();
  await new Promise<void>((resolve) => opServer.listen(0, "127.0.0.1", resolve));
  const opUrl = `http://127.0.0.1:${(opServer.address() as AddressInfo).port}`;
  const provider = new Provider(opUrl, {
    clients: [
      {
        client_id: "bench",
        client_secret: "bench-secret-bench-secret-bench-secret",
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  });
  opServer.on("request", provider.callback());
  const opToken = async () => {
    const res = await fetch(`${opUrl}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: "bench",
        client_secret: "bench-secret-bench-secret-bench-secret",
      }),
    });
    if (res.status !== 200) throw new Error(`oidc-provider: ${res.status} ${await res.text()}`);
    await res.json();
  };

  // the limit: one Ed25519 signature over a token-sized payload
  const signingKey = createPrivateKey({
    key: jwk as unknown as import("node:crypto").JsonWebKey,
    format: "jwk",
  });
  const payload = Buffer.alloc(700, 7);

  const writCase = {
    name: "writ: token exchange + DPoP + private_key_jwt, stored and audited",
    op: embedded.exchange,
  };
  const pgCase =
    onPostgres === undefined
      ? []
      : [{ name: "writ, the same on PostgreSQL (local, one server)", op: onPostgres.exchange }];
  const opCase = { name: "oidc-provider 9: client_credentials (client_secret_post)", op: opToken };
  const one = await measure(
    [
      writCase,
      ...pgCase,
      opCase,
      { name: "raw Ed25519 signature (the limit)", op: () => sign(null, payload, signingKey) },
    ],
    { warmupMs: 500, budgetMs: 3000, rounds: 6, maxIterations: 50_000 },
  );
  const floor = one[one.length - 1]!;
  console.log(table("Writs issued, one request at a time (loopback HTTP)", one, floor, "per second"));
  const many = await measureConcurrent([writCase, ...pgCase, opCase], {
    concurrency: 16,
    warmupMs: 500,
    budgetMs: 3000,
    rounds: 6,
  });
  console.log();
  console.log(
    table("Writs issued, 16 requests in flight (loopback HTTP)", many, many[many.length - 1]!, "per second"),
  );
  const ms = (m: Measurement, p: "p50" | "p99") => `${(m[p] / 1000).toFixed(2)} ms`;
  const w1 = one[0]!;
  const w16 = many[0]!;
  const o16 = many[many.length - 1]!;
  console.log(
    [
      "",
      `concurrency 16, embedded store: writ ${w16.opsPerSecond.toFixed(0)}/s vs oidc-provider ${o16.opsPerSecond.toFixed(0)}/s = ${(w16.opsPerSecond / o16.opsPerSecond).toFixed(2)}× (goal ≥ 1×); by CPU per request (client included) ${(o16.cpuPerOp! / w16.cpuPerOp!).toFixed(2)}×`,
      ...(pgCase.length === 0
        ? []
        : [
            `concurrency 16, PostgreSQL: writ ${many[1]!.opsPerSecond.toFixed(0)}/s = ${(many[1]!.opsPerSecond / o16.opsPerSecond).toFixed(2)}× oidc-provider`,
          ]),
      `concurrency 1, embedded store: writ p50 ${ms(w1, "p50")} (goal ≤ 3 ms), p99 ${ms(w1, "p99")}; oidc-provider p50 ${ms(one[pgCase.length + 1]!, "p50")}`,
      "writ's request is verified twice more (assertion, proof) and once more (the subject token), checked against the intent, signed, stored and audited; oidc-provider's is a shared secret and an opaque token in memory.",
    ].join("\n"),
  );

  await embedded.close();
  await onPostgres?.close();
  if (typeof database !== "string") await database.drop();
  await new Promise<void>((resolve) => opServer.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
}
