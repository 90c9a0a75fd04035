/**
 * The broker: writs issued per second and latency — token exchange with a private_key_jwt client
 * assertion and a DPoP proof made per request, on the embedded store (each writ stored and
 * audited) — beside oidc-provider's plain client_credentials grant (client_secret_post, an opaque
 * token, in-memory) on the same machine, and beside the raw Ed25519 signing rate: every writ is at
 * least one signature, so that is the limit. All over loopback HTTP, one request at a time.
 */
import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { generateKeyPair as dpopKeyPair, generateProof } from "dpop";
import { type CryptoKey, importJWK, type JWK, SignJWT } from "jose";
import Provider from "oidc-provider";
import pg from "pg";
import { createServer, loadPolicy } from "../src/app.js";
import { measure, table } from "./harness.js";

const ROOT = join(import.meta.dirname, "..");
const QUICKSTART = join(ROOT, "examples", "quickstart");

/** A writ server on one store, and one token exchange against it as a benchmark operation. */
async function writServer(dir: string, databaseUrl?: string) {
  const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  const writ = await createServer({ policy: policy!, dataDir: dir, databaseUrl, version: "bench" });
  const writHttp = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: writ.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(writHttp.address() as AddressInfo).port}`;
  writ.setBaseUrl(base);
  const issuer = `${base}/env/dev`;
  const tokenUrl = `${issuer}/token`;
  const { _warning, ...jwk } = JSON.parse(
    await readFile(join(QUICKSTART, "keys", "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8"),
  ) as JWK & { _warning?: string };
  const agentKey = (await importJWK(jwk, "EdDSA")) as CryptoKey;
  const dpop = await dpopKeyPair("ES256");
  const assertion = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA", kid: jwk.kid! })
      .setIssuer("release-bot")
      .setSubject("release-bot")
      .setAudience(issuer)
      .setIssuedAt()
      .setExpirationTime("1m")
      .setJti(randomUUID())
      .sign(agentKey);
  const token = async (form: Record<string, string>) => {
    const res = await fetch(tokenUrl, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        dpop: await generateProof(dpop, tokenUrl, "POST"),
      },
      body: new URLSearchParams({
        ...form,
        client_id: "release-bot",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: await assertion(),
      }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw new Error(`writ token endpoint: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const baseline = (await token({ grant_type: "client_credentials" })).access_token as string;
  const exchange = {
    grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token: baseline,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    resource: "https://k8s.acme.example",
    authorization_details: JSON.stringify([
      {
        type: "writ_playbook",
        playbook: "deploy-service",
        parameters: { service: "checkout", tag: "v1.4.2" },
        ticket: "CHG-1",
      },
    ]),
  };

  return {
    jwk,
    exchange: () => token(exchange),
    async close() {
      await new Promise<void>((resolve) => writHttp.close(() => resolve()));
      await writ.close();
    },
  };
}

/** A fresh PostgreSQL database for the run, or why there is none. */
async function tempDatabase(): Promise<{ url: string; drop(): Promise<void> } | string> {
  const admin = process.env.WRIT_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `writ_bench_${process.pid}`;
  const run = async (text: string) => {
    const c = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 3000 });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  try {
    await run(`create database ${name}`);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
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

  const rows = await measure(
    [
      {
        name: "writ: token exchange + DPoP + private_key_jwt, stored and audited",
        op: embedded.exchange,
      },
      ...(onPostgres === undefined
        ? []
        : [{ name: "writ, the same on PostgreSQL (local, one server)", op: onPostgres.exchange }]),
      { name: "oidc-provider 9: client_credentials (client_secret_post)", op: opToken },
      { name: "raw Ed25519 signature (the limit)", op: () => sign(null, payload, signingKey) },
    ],
    { warmupMs: 500, budgetMs: 4000, rounds: 6, maxIterations: 50_000 },
  );
  const floor = rows[rows.length - 1]!;
  console.log(
    table("Writs issued (one request at a time, loopback HTTP, embedded store)", rows, floor, "per second"),
  );
  const w = rows[0];
  const o = rows[rows.length - 2];
  console.log(
    `\nwrit vs oidc-provider: ${(w!.opsPerSecond / o!.opsPerSecond).toFixed(2)}× the rate; writ's request also signs two JWTs on the client side (assertion, DPoP proof), verifies them, checks the intent, stores the writ and appends an audit record.`,
  );

  await embedded.close();
  await onPostgres?.close();
  if (typeof database !== "string") await database.drop();
  await new Promise<void>((resolve) => opServer.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
}
