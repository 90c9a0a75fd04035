/**
 * `writ serve`'s log over a whole broker flow, run as the CLI runs it (serveCommand, its stderr
 * captured): a baseline token and a token exchange with private_key_jwt and DPoP, a refused
 * exchange, AuthZEN decisions under the PDP token, a use spent by a resource server, introspection,
 * the admin API and a scrape of /metrics. Every secret the flow used — the tokens issued, the
 * client assertions, the DPoP proofs, the agent's and the DPoP key's private material, the PDP and
 * admin tokens — must appear nowhere in the log; every request has its line with the method, the
 * path (no query), the status, the duration, the agent, the writ and the refusal's reason.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, lineDestination } from "../../src/http/log.js";
import { ROOT } from "../support/cli.js";
import { PDP_TOKEN, quickstartCopy, type Served, serveInProcess } from "./support.js";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
function jws(header: unknown, claims: unknown, hash: string | null, key: KeyObject): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const options = hash === null ? key : { key, dsaEncoding: "ieee-p1363" as const };
  return `${input}.${sign(hash, Buffer.from(input), options).toString("base64url")}`;
}

/** Every secret the flow handles, to look for in the log. */
const secrets = new Map<string, string>();
const keep = (what: string, value: string) => {
  secrets.set(`${what} #${secrets.size}`, value);
  return value;
};

let dir: string;
let served: Served;
let lines: Record<string, unknown>[];
let raw: string;
let writId: string;

/** A release-bot client whose every assertion and proof is kept. */
async function releaseBot(base: string) {
  const { _warning, ...jwk } = JSON.parse(
    await readFile(
      join(ROOT, "examples", "quickstart", "keys", "release-bot.DEVELOPMENT-ONLY.private.jwk"),
      "utf8",
    ),
  ) as Record<string, string>;
  keep("agent private key d", jwk.d!);
  const agentKey = createPrivateKey({ key: jwk, format: "jwk" });
  const dpop = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const dpopJwk = dpop.privateKey.export({ format: "jwk" });
  keep("dpop private key d", dpopJwk.d!);
  const { kty, crv, x, y } = dpopJwk;
  const issuer = `${base}/env/dev`;
  return async (endpoint: string, form: Record<string, string>) => {
    const url = `${issuer}/${endpoint}`;
    const iat = Math.floor(Date.now() / 1000);
    const proof = keep(
      "dpop proof",
      jws(
        { typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } },
        { jti: randomUUID(), htm: "POST", htu: url, iat },
        "sha256",
        dpop.privateKey,
      ),
    );
    const assertion = keep(
      "client assertion",
      jws(
        { alg: "EdDSA", kid: jwk.kid },
        { iss: "release-bot", sub: "release-bot", aud: issuer, iat, exp: iat + 60, jti: randomUUID() },
        null,
        agentKey,
      ),
    );
    const res = await fetch(`${url}?client_assertion=${assertion}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", dpop: proof },
      body: new URLSearchParams({
        ...form,
        client_id: "release-bot",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: assertion,
      }).toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (typeof body.access_token === "string") keep("access token", body.access_token);
    return { status: res.status, body };
  };
}

const intent = (playbook: string, parameters: Record<string, unknown>) =>
  JSON.stringify([{ type: "writ_playbook", playbook, parameters, ticket: "CHG-7" }]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-request-log-"));
  keep("pdp token", PDP_TOKEN);
  served = await serveInProcess(await quickstartCopy(dir), { pdpToken: PDP_TOKEN });
  keep("admin token", served.adminToken);
  const post = await releaseBot(served.url);

  const baseline = await post("token", { grant_type: "client_credentials" });
  expect(baseline.status).toBe(200);
  const exchange = (details: string) =>
    post("token", {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: baseline.body.access_token as string,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      resource: "https://k8s.acme.example",
      authorization_details: details,
    });
  const writ = await exchange(intent("deploy-service", { service: "checkout", tag: "v1.4.2" }));
  expect(writ.status).toBe(200);
  writId = writ.body.writ_id as string;
  // refused: release-bot may not run restart-pods
  const refused = await exchange(intent("restart-pods", { namespace: "checkout" }));
  expect(refused.status).toBe(400);

  // a resource server spends a use and introspects, under the PDP token
  const rs = (path: string, form: Record<string, string>) =>
    fetch(`${served.url}/env/dev/${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${PDP_TOKEN}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(form).toString(),
    });
  expect((await rs("use", { token: writ.body.access_token as string })).status).toBe(200);
  expect((await rs("introspect", { token: writ.body.access_token as string })).status).toBe(200);

  // AuthZEN: one allowed, one denied
  const decide = (action: string) =>
    fetch(`${served.url}/access/v1/evaluation`, {
      method: "POST",
      headers: { authorization: `Bearer ${PDP_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        subject: { type: "agent", id: "cost-analyst" },
        action: { name: action },
        resource: { type: "aws", id: "arn:aws:s3:::acme-reports/a.csv" },
        context: { environment: "prod" },
      }),
    });
  expect(((await (await decide("aws:s3:GetObject")).json()) as { decision: boolean }).decision).toBe(true);
  expect(((await (await decide("aws:s3:DeleteObject")).json()) as { decision: boolean }).decision).toBe(
    false,
  );

  const admin = { authorization: `Bearer ${served.adminToken}` };
  expect((await fetch(`${served.url}/admin/v1/kill`, { headers: admin })).status).toBe(200);
  expect((await fetch(`${served.url}/metrics`, { headers: admin })).status).toBe(200);
  expect((await fetch(`${served.url}/metrics?token=${served.adminToken}`)).status).toBe(401);

  expect(await served.stop()).toBe(0);
  raw = served.errors.join("\n");
  lines = served.errors.map((l) => JSON.parse(l) as Record<string, unknown>);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const requestLines = () => lines.filter((l) => l.event === "http.request");

describe("the log of a full broker flow", () => {
  it("holds none of the secrets the flow used, whole or in part", () => {
    expect(secrets.size).toBe(12);
    for (const [what, value] of secrets) {
      expect(raw.includes(value), `${what} is in the log`).toBe(false);
      // no part of a JWS (its payload names the agent and the jti; its signature is the secret)
      const parts = value.split(".");
      if (parts.length === 3) {
        expect(raw.includes(parts[1]!), `${what}'s payload is in the log`).toBe(false);
        expect(raw.includes(parts[2]!), `${what}'s signature is in the log`).toBe(false);
      }
    }
    expect(raw).not.toMatch(/authorization|bearer |dpop\+jwt|client_assertion/i);
  });

  it("has one line per request, with method, path without query, status and duration", () => {
    const requests = requestLines();
    // the scrape answered 200 is routine: at debug, below the default level
    expect(requests.length).toBe(9);
    for (const r of requests) {
      expect(r).toMatchObject({ level: "info", method: expect.any(String), status: expect.any(Number) });
      expect(typeof r.durationMs).toBe("number");
      expect(r.durationMs as number).toBeGreaterThanOrEqual(0);
      expect(r.path as string).not.toContain("?");
      expect(typeof r.time).toBe("string");
    }
    expect(requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ["POST", "/env/dev/token", 200],
      ["POST", "/env/dev/token", 200],
      ["POST", "/env/dev/token", 400],
      ["POST", "/env/dev/use", 200],
      ["POST", "/env/dev/introspect", 200],
      ["POST", "/access/v1/evaluation", 200],
      ["POST", "/access/v1/evaluation", 200],
      ["GET", "/admin/v1/kill", 200],
      ["GET", "/metrics", 401],
    ]);
  });

  it("names the agent, the writ (jti) and the refusal's reason code", () => {
    const [baseline, exchange, refused, use, , allowed, denied] = requestLines();
    expect(baseline).toMatchObject({ agent: "release-bot", writ: expect.any(String) });
    expect(exchange).toMatchObject({ agent: "release-bot", writ: writId });
    expect(exchange!.reason).toBeUndefined();
    expect(refused).toMatchObject({ agent: "release-bot", reason: "playbook_not_allowed" });
    expect(use).toMatchObject({ writ: writId });
    expect(allowed).toMatchObject({ agent: "cost-analyst" });
    expect(allowed!.reason).toBeUndefined();
    expect(denied).toMatchObject({ agent: "cost-analyst", reason: expect.stringMatching(/^[a-z_]+$/) });
    const unauthorized = requestLines()[8];
    expect(unauthorized).toMatchObject({ path: "/metrics", status: 401, reason: "metrics_unauthorized" });
  });

  it("has the start line (listen address, env names, store, config) and the stop lines", () => {
    const start = lines.find((l) => l.event === "server.start");
    expect(start).toMatchObject({
      level: "info",
      listen: served.url,
      store: "pglite",
      config: expect.stringContaining("writ.yaml"),
      configDigest: expect.stringMatching(/^sha256:/),
      env: expect.any(Array),
    });
    expect(lines.findIndex((l) => l.event === "server.start")).toBeLessThan(
      lines.findIndex((l) => l.event === "http.request"),
    );
    expect(lines.at(-1)).toMatchObject({ event: "server.stop" });
    expect(lines.some((l) => l.event === "server.stopping")).toBe(true);
  });
});

describe("the logger", () => {
  it("censors secret-bearing fields should a caller ever pass one", async () => {
    const out: string[] = [];
    const logger = await createLogger({ destination: lineDestination((l) => out.push(l)) });
    logger.info({
      authorization: "Bearer s3cr3t-1",
      headers: { authorization: "Bearer s3cr3t-2" },
      form: { client_assertion: "s3cr3t-3", subject_token: "s3cr3t-4" },
      adminToken: "s3cr3t-5",
    });
    expect(out).toHaveLength(1);
    expect(out[0]).not.toMatch(/s3cr3t/);
    expect(JSON.parse(out[0]!)).toMatchObject({ authorization: "[redacted]", adminToken: "[redacted]" });
  });

  it("writes nothing below its level", async () => {
    const out: string[] = [];
    const logger = await createLogger({ level: "warn", destination: lineDestination((l) => out.push(l)) });
    logger.info({ event: "x" });
    logger.warn({ event: "y" });
    expect(out.map((l) => JSON.parse(l).event)).toEqual(["y"]);
  });
});
