/**
 * The broker: writs issued per second and latency — token exchange with a private_key_jwt client
 * assertion and a DPoP proof made per request, each writ stored and its issuance audited before
 * the answer — beside oidc-provider's plain client_credentials grant (client_secret_post, an opaque
 * token, in memory) on the same machine, in one run, interleaved:
 *
 *   one request at a time   writ's p50 against the 3 ms goal
 *   16 requests in flight   writ's rate against oidc-provider's (goal: at least 1×)
 *
 * Over loopback HTTP: the servers in this process, the load client in a process of its own
 * (bench/exchange-load.ts, through `measureTokenLoad`), which signs writ's assertions and proofs
 * with `node:crypto` before each slice, so that the CPU measured here is the servers' alone.
 */
import { generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import type { JWK } from "jose";
import Provider from "oidc-provider";
import { createServer, loadPolicy } from "../src/app.js";
import { exchangeClient } from "../test/broker/exchange-client.js";
import { type Measurement, measureTokenLoad, table, tempDatabase } from "./harness.js";

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

/**
 * `WRIT_BENCH_AGAINST=<another checkout>` adds that checkout's writ server (its own
 * `bench/broker.bench.ts`'s `writServer`, its own code) to the same run: an A/B comparison,
 * interleaved, on the same machine at the same moment.
 */
async function against(dir: string): Promise<Awaited<ReturnType<typeof writServer>> | undefined> {
  const other = process.env.WRIT_BENCH_AGAINST;
  if (other === undefined || other === "") return undefined;
  const mod = (await import(pathToFileURL(join(other, "bench", "broker.bench.ts")).href)) as {
    writServer: typeof writServer;
  };
  return mod.writServer(dir);
}

/**
 * The CPU of the signature work one exchange cannot skip, alone, in this process: the client
 * assertion's verification (Ed25519), the DPoP proof's (ES256) — fresh per request, so never
 * cached — and the access token's signature (Ed25519); the subject token, the same on every
 * request, is verified once. µs of CPU per exchange, on the event loop.
 */
function signatureFloor(n = 3000): number {
  const ed = generateKeyPairSync("ed25519");
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const assertion = Buffer.alloc(420, 0x61);
  const proof = Buffer.alloc(380, 0x62);
  const token = Buffer.alloc(900, 0x63);
  const assertionSig = sign(null, assertion, ed.privateKey);
  const proofSig = sign("sha256", proof, { key: ec.privateKey, dsaEncoding: "ieee-p1363" });
  const once = () => {
    verify(null, assertion, ed.publicKey, assertionSig);
    verify("sha256", proof, { key: ec.publicKey, dsaEncoding: "ieee-p1363" }, proofSig);
    sign(null, token, ed.privateKey);
  };
  for (let i = 0; i < 200; i++) once();
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) once();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "writ-bench-broker-"));
  const embedded = await writServer(join(dir, "embedded"));
  const other = await against(join(dir, "against"));
  const database = await tempDatabase();
  const onPostgres =
    typeof database === "string" ? undefined : await writServer(join(dir, "pg"), database.url);
  if (typeof database === "string") console.log(`(PostgreSQL unreachable, its row is left out: ${database})`);

  // oidc-provider, plain client_credentials
  const opServer = createHttpServer();
  await new Promise<void>((resolve) => opServer.listen(0, "127.0.0.1", resolve));
  const opUrl = `http://127.0.0.1:${(opServer.address() as AddressInfo).port}`;
  const secret = "bench-secret-bench-secret-bench-secret";
  const provider = new Provider(opUrl, {
    clients: [
      {
        client_id: "bench",
        client_secret: secret,
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  });
  opServer.on("request", provider.callback());

  const writCase = {
    name: "writ: token exchange + DPoP + private_key_jwt, stored and audited",
    target: { base: embedded.base },
  };
  const otherCase =
    other === undefined
      ? []
      : [{ name: `writ at ${process.env.WRIT_BENCH_AGAINST} (A/B)`, target: { base: other.base } }];
  const pgCase =
    onPostgres === undefined
      ? []
      : [{ name: "writ, the same on PostgreSQL (local, one server)", target: { base: onPostgres.base } }];
  const opCase = {
    name: "oidc-provider 9: client_credentials (client_secret_post)",
    target: {
      url: `${opUrl}/token`,
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: "bench",
        client_secret: secret,
      }).toString(),
    },
  };
  const cases = [writCase, ...otherCase, ...pgCase, opCase];
  const one = await measureTokenLoad(cases, { concurrency: 1, warmupMs: 500, budgetMs: 3000, rounds: 6 });
  const o1 = one[one.length - 1]!;
  console.log(table("Writs issued, one request at a time (loopback HTTP)", one, o1, "per second"));
  const many = await measureTokenLoad(cases, { concurrency: 16, warmupMs: 500, budgetMs: 3000, rounds: 6 });
  const o16 = many[many.length - 1]!;
  const floor = signatureFloor();
  console.log();
  console.log(table("Writs issued, 16 requests in flight (loopback HTTP)", many, o16, "per second"));
  const ms = (m: Measurement, p: "p50" | "p99") => `${(m[p] / 1000).toFixed(2)} ms`;
  const vs = (m: Measurement) =>
    `${m.opsPerSecond.toFixed(0)}/s = ${(m.opsPerSecond / o16.opsPerSecond).toFixed(2)}× oidc-provider (CPU per request ${(m.cpuPerOp! / 1000).toFixed(2)} ms, ${(o16.cpuPerOp! / m.cpuPerOp!).toFixed(2)}× oidc-provider's by CPU)`;
  console.log(
    [
      "",
      `concurrency 16, embedded store: writ ${vs(many[0]!)} (goal ≥ 1×); oidc-provider ${o16.opsPerSecond.toFixed(0)}/s, CPU per request ${(o16.cpuPerOp! / 1000).toFixed(2)} ms`,
      ...(other === undefined ? [] : [`concurrency 16, A/B: ${vs(many[1]!)}`]),
      ...(pgCase.length === 0 ? [] : [`concurrency 16, PostgreSQL: writ ${vs(many[cases.length - 2]!)}`]),
      `concurrency 1, embedded store: writ p50 ${ms(one[0]!, "p50")} (goal ≤ 3 ms), p99 ${ms(one[0]!, "p99")}${other === undefined ? "" : `; A/B p50 ${ms(one[1]!, "p50")}`}; oidc-provider p50 ${ms(o1, "p50")}`,
      `the signatures alone of one writ exchange (assertion and proof verified, token signed; node:crypto, this process, now): ${floor.toFixed(0)} µs of CPU = ${(floor / o16.cpuPerOp!).toFixed(2)}× oidc-provider's whole request at 16 in flight — at equal CPU, writ's rate could be at most ${(o16.cpuPerOp! / floor).toFixed(2)}× oidc-provider's with nothing else (no HTTP, checks, store or audit)`,
      "The servers are in this process, the load client in another (its signing done before each slice): the CPU is the servers' own.",
      "writ's request is verified twice more (assertion, proof) and once more (the subject token), checked against the intent, signed, stored and audited; oidc-provider's is a shared secret and an opaque token in memory.",
    ].join("\n"),
  );

  await embedded.close();
  await other?.close();
  await onPostgres?.close();
  if (typeof database !== "string") await database.drop();
  await new Promise<void>((resolve) => opServer.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
}
