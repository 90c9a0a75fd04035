/**
 * A battery of bad input against `writ serve` over real HTTP, on the embedded store and on
 * PostgreSQL: NUL and other control characters, lone surrogates, over-long values and deep JSON in
 * every string field, path and query parameter of every API (AuthZEN, the broker's endpoints, the
 * approvals API, the admin API, the gateway's pins API and `/mcp`). Each case asserts its status and
 * documented reason (docs/reasons.md), and no case may answer 5xx: before the edge checks a NUL
 * reached SQL (500), a 2,001-character ticket or audience broke the store's limit (500), and deep
 * `context.arguments` broke the audit's (500).
 *
 * The boundaries are asserted too: a ticket and an audience of exactly 2,000 characters are issued.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, generateProof, type KeyPair } from "dpop";
import { type CryptoKey, importJWK, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signedAssertion } from "../broker/kit.js";
import { QUICKSTART } from "../broker/live.js";
import { createTempDatabase, postgresEnabled, type TempDatabase } from "../store/backends.js";
import { GATEWAY_YAML, PDP_TOKEN, quickstartCopy, type Served, serveInProcess } from "./support.js";

const RESOURCE = "https://k8s.acme.example";
/** An audience of exactly 2,000 characters, which dev allows (quickstart edited): the longest kept. */
const LONGEST_AUDIENCE = `${RESOURCE}/${"x".repeat(2000 - RESOURCE.length - 1)}`;
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const CIBA = "urn:openid:params:grant-type:ciba";

async function devKey(name: string): Promise<{ key: CryptoKey; kid: string }> {
  const { _warning, ...jwk } = JSON.parse(
    await readFile(join(QUICKSTART, "keys", `${name}.DEVELOPMENT-ONLY.private.jwk`), "utf8"),
  ) as JWK & { _warning?: string };
  return { key: (await importJWK(jwk, "EdDSA")) as CryptoKey, kid: jwk.kid! };
}

/** `{ a: { a: … 1 } }`, `levels` objects deep. */
function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

interface Case {
  readonly name: string;
  readonly run: () => Promise<Response>;
  readonly status: number;
  /** The documented reason: OAuth `reason`, a problem's `reason` or `code`. */
  readonly reason?: string;
}

function reasonOf(body: Record<string, unknown>): string | undefined {
  if (typeof body.reason === "string") return body.reason;
  if (typeof body.code === "string") return body.code;
  return undefined;
}

function battery(title: string, database: () => Promise<TempDatabase | undefined>) {
  describe(title, () => {
    let dir: string;
    let served: Served;
    let temp: TempDatabase | undefined;
    let base: string;
    let agentKey: { key: CryptoKey; kid: string };
    let bobKey: { key: CryptoKey; kid: string };
    let dpop: KeyPair;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "writ-bad-input-"));
      temp = await database();
      const config = await quickstartCopy(dir, GATEWAY_YAML, (yaml) =>
        yaml.replace(
          `audiences: ["${RESOURCE}"]`, // dev's, the first
          `audiences: ["${RESOURCE}", "${LONGEST_AUDIENCE}"]`,
        ),
      );
      served = await serveInProcess(config, {
        databaseUrl: temp?.url,
        pdpToken: PDP_TOKEN,
      });
      base = served.url;
      agentKey = await devKey("release-bot");
      bobKey = await devKey("approver-bob");
      dpop = await generateKeyPair("ES256");
    }, 60_000);

    afterAll(async () => {
      await served?.stop();
      await temp?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    // --- requests --------------------------------------------------------------------------------

    const clientAuth = async (env: string) => ({
      client_assertion_type: JWT_BEARER,
      client_assertion: await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: "EdDSA", kid: agentKey.kid })
        .setIssuer("release-bot")
        .setSubject("release-bot")
        .setAudience(`${base}/env/${env}`)
        .setIssuedAt()
        .setExpirationTime("1m")
        .sign(agentKey.key),
    });
    const form = (path: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(params),
      });
    const proof = (env: string) => generateProof(dpop, `${base}/env/${env}/token`, "POST");
    const baseline = async (): Promise<string> => {
      const r = await form(
        "/env/dev/token",
        { grant_type: "client_credentials", ...(await clientAuth("dev")) },
        { dpop: await proof("dev") },
      );
      expect(r.status).toBe(200);
      return ((await r.json()) as { access_token: string }).access_token;
    };
    /** A token exchange for rollback-service in dev (ticket required, any ticket: dev has no pattern). */
    const exchange = async (intent: Record<string, unknown>, resource = RESOURCE) =>
      form(
        "/env/dev/token",
        {
          grant_type: TOKEN_EXCHANGE,
          subject_token: await baseline(),
          subject_token_type: ACCESS_TOKEN,
          resource,
          authorization_details: JSON.stringify([
            {
              type: "writ_playbook",
              playbook: "rollback-service",
              parameters: { service: "checkout" },
              ticket: "CHG-1234",
              ...intent,
            },
          ]),
          ...(await clientAuth("dev")),
        },
        { dpop: await proof("dev") },
      );
    const bcAuthorize = async (params: Record<string, string>) =>
      form("/env/prod/bc-authorize", {
        login_hint: "bob@acme.example",
        authorization_details: JSON.stringify([
          {
            type: "writ_playbook",
            playbook: "rollback-service",
            parameters: { service: "checkout" },
            ticket: "CHG-1234",
          },
        ]),
        ...(await clientAuth("prod")),
        ...params,
      });
    const resourceServer = { authorization: `Bearer ${PDP_TOKEN}` };
    const authzen = (body: unknown, path = "/access/v1/evaluation") =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...resourceServer },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const evaluation = (over: {
      subject?: unknown;
      action?: unknown;
      resource?: unknown;
      context?: unknown;
    }) => ({
      subject: { type: "agent", id: "cost-analyst" },
      action: { name: "aws:s3:GetObject" },
      resource: { type: "aws", id: "arn:aws:s3:::acme-reports/a.csv" },
      context: { environment: "prod" },
      ...over,
    });
    const approverJwt = () => signedAssertion(bobKey, "bob@acme.example", `${base}/approvals`, {}, 120);
    const approvals = async (path: string, body?: string) =>
      fetch(`${base}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${await approverJwt()}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body }),
      });
    const admin = (path: string, body?: unknown) =>
      fetch(`${base}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${served.adminToken}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });

    const NUL = "\u0000";
    const LONE = "\ud800";
    const long = (n: number) => "x".repeat(n);

    // --- the battery -----------------------------------------------------------------------------

    const cases: Case[] = [
      // AuthZEN
      ...(
        [
          ["subject.id NUL", { subject: { type: "agent", id: `cost${NUL}analyst` } }, "value_invalid"],
          ["subject.id lone surrogate", { subject: { type: "agent", id: `cost${LONE}` } }, "value_invalid"],
          ["subject.id BEL", { subject: { type: "agent", id: "cost\u0007" } }, "value_invalid"],
          ["subject.id over 256", { subject: { type: "agent", id: long(257) } }, "value_too_long"],
          ["subject.type NUL", { subject: { type: `agent${NUL}`, id: "cost-analyst" } }, "value_invalid"],
          ["action.name NUL", { action: { name: `aws:s3:Get${NUL}` } }, "value_invalid"],
          ["action.name over 512", { action: { name: `aws:s3:${long(600)}` } }, "value_too_long"],
          ["resource.id C1 control", { resource: { type: "aws", id: "arn:\u0085" } }, "value_invalid"],
          ["resource.id over 4096", { resource: { type: "aws", id: long(4097) } }, "value_too_long"],
          ["context.environment NUL", { context: { environment: `prod${NUL}` } }, "value_invalid"],
          [
            "context.ticket over 2000",
            { context: { environment: "prod", ticket: long(2001) } },
            "value_too_long",
          ],
          ["context.writ_id NUL", { context: { environment: "prod", writ_id: `w${NUL}` } }, "value_invalid"],
          [
            "context.prompt_context_id line feed",
            { context: { environment: "prod", prompt_context_id: "a\nb" } },
            "value_invalid",
          ],
          [
            "context.arguments nested 65 levels",
            { context: { environment: "prod", arguments: nested(65) } },
            "nesting_too_deep",
          ],
          [
            "context.arguments holding NUL",
            { context: { environment: "prod", arguments: { note: `a${NUL}b` } } },
            "value_invalid",
          ],
          [
            "context.arguments key holding a lone surrogate",
            { context: { environment: "prod", arguments: { [`k${LONE}`]: 1 } } },
            "value_invalid",
          ],
        ] as const
      ).map(
        ([name, over, reason]): Case => ({
          name: `authzen: ${name}`,
          run: () => authzen(evaluation(over)),
          status: 400,
          reason,
        }),
      ),
      {
        name: "authzen: arguments nested 100,000 levels (raw text)",
        run: () =>
          authzen(
            `{"subject":{"type":"agent","id":"a"},"action":{"name":"x"},"resource":{"type":"t","id":"r"},"context":{"environment":"prod","arguments":${"[".repeat(100_000)}${"]".repeat(100_000)}}}`,
          ),
        status: 400,
        reason: "nesting_too_deep",
      },
      {
        name: "authzen batch: evaluations[1].subject.id NUL",
        run: () =>
          authzen(
            { evaluations: [evaluation({}), evaluation({ subject: { type: "agent", id: NUL } })] },
            "/access/v1/evaluations",
          ),
        status: 400,
        reason: "value_invalid",
      },
      {
        name: "authzen batch: a default subject with BEL",
        run: () =>
          authzen(
            { subject: { type: "agent", id: "\u0007" }, evaluations: [{ action: { name: "x" } }] },
            "/access/v1/evaluations",
          ),
        status: 400,
        reason: "value_invalid",
      },

      // the broker: token exchange
      {
        name: "exchange: ticket NUL",
        run: () => exchange({ ticket: `CHG-1${NUL}` }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: ticket lone surrogate",
        run: () => exchange({ ticket: `CHG-1${LONE}` }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: ticket tab",
        run: () => exchange({ ticket: "CHG-1\t" }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: ticket 2,001 characters",
        run: () => exchange({ ticket: long(2001) }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "exchange: ticket 2,000 characters is issued",
        run: () => exchange({ ticket: long(2000) }),
        status: 200,
      },
      {
        name: "exchange: ticket 60,000 characters",
        run: () => exchange({ ticket: long(60_000) }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "exchange: resource NUL",
        run: () => exchange({}, `${RESOURCE}/${NUL}`),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: resource 2,001 characters",
        run: () => exchange({}, `${RESOURCE}/${long(2001 - RESOURCE.length - 1)}`),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "exchange: resource 2,000 characters is issued",
        run: () => exchange({}, LONGEST_AUDIENCE),
        status: 200,
      },
      {
        name: "exchange: playbook NUL",
        run: () => exchange({ playbook: `rollback${NUL}` }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: environment over 256",
        run: () => exchange({ environment: long(257) }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "exchange: a parameter value holding NUL",
        run: () => exchange({ parameters: { service: `checkout${NUL}` } }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: parameters nested 65 levels",
        run: () => exchange({ parameters: nested(65) }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "exchange: subject_token NUL",
        run: async () =>
          form("/env/dev/token", {
            grant_type: TOKEN_EXCHANGE,
            subject_token: `a${NUL}`,
            subject_token_type: ACCESS_TOKEN,
            ...(await clientAuth("dev")),
          }),
        status: 400,
        reason: "parameter_invalid",
      },

      // the broker: other parameters and endpoints
      {
        name: "token: grant_type SOH",
        run: () => form("/env/dev/token", { grant_type: "client_credentials\u0001" }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "token: client_assertion NUL",
        run: () =>
          form("/env/dev/token", {
            grant_type: "client_credentials",
            client_assertion_type: JWT_BEARER,
            client_assertion: NUL,
          }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "token: client_assertion over 32 KiB",
        run: () =>
          form("/env/dev/token", {
            grant_type: "client_credentials",
            client_assertion_type: JWT_BEARER,
            client_assertion: long(33 * 1024),
          }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "client_credentials: resource NUL",
        run: async () =>
          form(
            "/env/dev/token",
            { grant_type: "client_credentials", resource: `${RESOURCE}${NUL}`, ...(await clientAuth("dev")) },
            { dpop: await proof("dev") },
          ),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "CIBA poll: auth_req_id NUL",
        run: async () =>
          form(
            "/env/prod/token",
            { grant_type: CIBA, auth_req_id: `ar_${NUL}`, ...(await clientAuth("prod")) },
            { dpop: await proof("prod") },
          ),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "bc-authorize: login_hint NUL",
        run: () => bcAuthorize({ login_hint: `bob${NUL}` }),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "bc-authorize: ticket 2,001 characters",
        run: () =>
          bcAuthorize({
            authorization_details: JSON.stringify([
              {
                type: "writ_playbook",
                playbook: "rollback-service",
                parameters: { service: "checkout" },
                ticket: long(2001),
              },
            ]),
          }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "introspect: token NUL",
        run: () => form("/env/dev/introspect", { token: `a${NUL}` }, resourceServer),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "introspect: token_type_hint ESC",
        run: () => form("/env/dev/introspect", { token: "a", token_type_hint: "\u001b[31m" }, resourceServer),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "revoke: token over 32 KiB",
        run: async () => form("/env/dev/revoke", { token: long(40_000), ...(await clientAuth("dev")) }),
        status: 400,
        reason: "parameter_too_long",
      },
      {
        name: "use: token NUL",
        run: () => form("/env/dev/use", { token: `a${NUL}` }, resourceServer),
        status: 400,
        reason: "parameter_invalid",
      },
      {
        name: "token: an environment path holding NUL",
        run: () => form("/env/%00/token", { grant_type: "client_credentials" }),
        status: 404,
      },
      {
        name: "jwks: an environment path holding a lone surrogate",
        run: () => fetch(`${base}/env/%ED%A0%80/jwks`),
        status: 404,
      },

      // the approvals API
      {
        name: "approvals: id NUL",
        run: () => approvals("/approvals/ar_%00"),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: id over 256",
        run: () => approvals(`/approvals/ar_${long(300)}`),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: ?env= NUL",
        run: () => approvals("/approvals?env=%00"),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: approve an id holding NUL",
        run: () => approvals("/approvals/ar_%00/approve", "{}"),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: deny with a reason holding NUL",
        run: () => approvals("/approvals/ar_x/deny", JSON.stringify({ reason: `no${NUL}` })),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: deny with a reason over 1000",
        run: () => approvals("/approvals/ar_x/deny", JSON.stringify({ reason: long(1001) })),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: approve with a body nested 65 levels",
        run: () => approvals("/approvals/ar_x/approve", JSON.stringify(nested(65))),
        status: 400,
        reason: "ERR_APPROVAL_INVALID",
      },
      {
        name: "approvals: a well-formed unknown id is still 404",
        run: () => approvals("/approvals/ar_unknown"),
        status: 404,
        reason: "ERR_APPROVAL_NOT_FOUND",
      },

      // the admin API
      {
        name: "admin: kill an agent holding NUL",
        run: () => admin("/admin/v1/kill", { scope: { kind: "agent", agent: `a${NUL}` }, by: "ops" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: lift an agent holding NUL",
        run: () => admin("/admin/v1/kill/lift", { scope: { kind: "agent", agent: `a${NUL}` }, by: "ops" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: lift an environment holding a lone surrogate",
        run: () =>
          admin("/admin/v1/kill/lift", { scope: { kind: "environment", environment: LONE }, by: "ops" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: lift a class holding BEL",
        run: () =>
          admin("/admin/v1/kill/lift", { scope: { kind: "class", runnerClass: "deploy\u0007" }, by: "ops" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: kill by someone holding ESC",
        run: () => admin("/admin/v1/kill", { scope: { kind: "all" }, by: "\u001b[2J" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: kill with a reason holding NUL",
        run: () =>
          admin("/admin/v1/kill", { scope: { kind: "agent", agent: "release-bot" }, by: "ops", reason: NUL }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: approvals ?env= NUL",
        run: () => admin("/admin/v1/approvals?env=%00"),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: keys ?env= NUL",
        run: () => admin("/admin/v1/keys?env=%00"),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: rotate an env holding NUL",
        run: () => admin("/admin/v1/keys/rotate", { env: NUL, maxTokenTtlSeconds: 60, by: "ops" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: decide an approval id holding NUL",
        run: () =>
          admin("/admin/v1/approvals/ar_%00/decision", { approver: "bob@acme.example", decision: "approve" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: decide as an approver holding NUL",
        run: () => admin("/admin/v1/approvals/ar_x/decision", { approver: `bob${NUL}`, decision: "approve" }),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },
      {
        name: "admin: a body nested 65 levels",
        run: () => admin("/admin/v1/kill", nested(65)),
        status: 400,
        reason: "ERR_OPERATOR_INPUT",
      },

      // the gateway
      {
        name: "pins: approve a server holding NUL",
        run: () =>
          admin("/admin/v1/gateway/tools/approve", { server: `w${NUL}`, tool: "weather", by: "ops" }),
        status: 400,
        reason: "ERR_USAGE",
      },
      {
        name: "pins: approve a tool holding a lone surrogate",
        run: () => admin("/admin/v1/gateway/tools/approve", { server: "weather", tool: LONE, by: "ops" }),
        status: 400,
        reason: "ERR_USAGE",
      },
      {
        name: "/mcp: a POST without a content type",
        run: () =>
          fetch(`${base}/mcp`, {
            method: "POST",
            body: new Blob(['{"jsonrpc":"2.0","id":1,"method":"ping"}']),
          }),
        status: 415,
        reason: "content_type",
      },
      {
        name: "/mcp: a POST as text/plain",
        run: () =>
          fetch(`${base}/mcp`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" }),
        status: 415,
        reason: "content_type",
      },

      // anywhere
      { name: "a path holding NUL", run: () => fetch(`${base}/%00`), status: 404 },
      {
        name: "a declared body over 4 MiB, on a path nobody reads",
        run: () => fetch(`${base}/nowhere`, { method: "POST", body: new Uint8Array(4 * 1024 * 1024 + 1) }),
        status: 413,
        reason: "body_too_large",
      },
    ];

    it.each(cases.map((c) => [c.name, c] as const))("%s", async (_, c) => {
      const r = await c.run();
      const text = await r.text();
      expect(r.status, text).toBeLessThan(500);
      expect(r.status, text).toBe(c.status);
      if (c.reason !== undefined) expect(reasonOf(JSON.parse(text)), text).toBe(c.reason);
      expect(text).not.toMatch(/at .*\.[jt]s:\d+/);
    });

    it("logged no failure while answering the battery", () => {
      expect(served.errors.filter((e) => e.includes("request_failed"))).toEqual([]);
    });
  });
}

battery("bad input over HTTP [pglite]", async () => undefined);
if (postgresEnabled) battery("bad input over HTTP [postgres]", () => createTempDatabase());
else describe.skip("bad input over HTTP [postgres] — skipped: PostgreSQL unreachable", () => {});
