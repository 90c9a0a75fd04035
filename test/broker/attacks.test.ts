/**
 * The broker's attack corpus: one table of attacks on a live `writ serve` (loopback HTTP, its own
 * writ.yaml), each crafted with real JOSE (jose) and answered with an HTTP status and a documented
 * `reason` (docs/reasons.md: the broker table for OAuth endpoints, the approvals and admin API code
 * tables for problems). Groups: client assertion, DPoP, cross-environment, intents and parameters,
 * audience, CIBA and approvals, admin API, rate limits, and the algorithms the metadata advertises.
 *
 * Every case runs on a clean slate: no slow-down block, no kill. A case whose answer is not in the
 * reasons registry fails the registry check at the end.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK } from "jose";
import * as client from "openid-client";
import { beforeAll, describe, expect, it } from "vitest";
import type { Server } from "../../src/app.js";
import {
  ACCESS_TOKEN_TYPE,
  blockSeconds,
  CIBA_GRANT,
  JWT_BEARER_ASSERTION_TYPE,
  TOKEN_EXCHANGE,
} from "../../src/broker/index.js";
import {
  APPROVAL_PLAYBOOKS_YAML,
  APPROVERS_YAML,
  type AssertionOptions,
  approverJwt as approverJwtAt,
  claimsOf,
  dpopProof,
  nowS,
  signedAssertion,
  unsigned,
} from "./kit.js";
import { liveFromYaml, QUICKSTART, quickstartKey } from "./live.js";
import { ADMIN_CODES, APPROVALS_CODES, REGISTRY } from "./registry.js";

const RESOURCE = "https://k8s.acme.example";
const NARROW = "https://payments.acme.example";
const CIBA = CIBA_GRANT;
const ACCESS_TOKEN = ACCESS_TOKEN_TYPE;
const JWT_BEARER = JWT_BEARER_ASSERTION_TYPE;

/** Every JWS algorithm an attacker might try; the broker must accept exactly those it advertises. */
const PROBE_ALGS = [
  "EdDSA",
  "Ed25519",
  "ES256",
  "ES384",
  "ES512",
  "PS256",
  "PS384",
  "RS256",
  "RS512",
] as const;
type ProbeAlg = (typeof PROBE_ALGS)[number];
/** The key an algorithm signs with (Ed25519 is EdDSA's fully specified name). */
const keyAlg = (alg: ProbeAlg): string => (alg === "Ed25519" ? "EdDSA" : alg);
/** What the metadata advertises, and so what must be accepted. */
const ADVERTISED: readonly string[] = ["EdDSA", "Ed25519", "ES256", "ES384", "PS256", "RS256"];

const WRIT_YAML = (multiKeys: JWK[]) => `version: 1
environments:
  dev:
    audiences: ["${RESOURCE}", "${NARROW}"]
  prod:
    ticket: { pattern: "^CHG-[0-9]+$" }
    audiences: ["${RESOURCE}"]
runnerClasses:
  deploy:
    ceiling:
      maxTtl: 1h
      allow:
        - { action: "k8s:apps/deployments:get|patch", resource: "checkout/*|payments/*" }
approverGroups:
  sre: { members: [alice@acme.example, bob@acme.example, carol@acme.example] }
${APPROVERS_YAML}agents:
  release-bot:
    owner: alice@acme.example
    purpose: the agent under attack, and the attacker
    runnerClass: deploy
    environments: [dev, prod]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [deploy, payments-only, sponsored, twice]
  ops-assistant:
    owner: dan@acme.example
    purpose: another agent, registered in dev only
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/ops-assistant.jwks.json }
    playbooks: [payments-only]
  multi-bot:
    owner: dan@acme.example
    purpose: holds one key of every kind, to probe the algorithms
    runnerClass: deploy
    environments: [dev]
    keys:
      jwks: ${JSON.stringify({ keys: multiKeys })}
playbooks:
  deploy:
    description: roll one service to a tag
    risk: high
    environments: [dev, prod]
    parameters:
      type: object
      properties:
        service: { type: string, enum: [checkout, payments] }
        tag: { type: string, pattern: "^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$", maxLength: 32 }
      required: [service, tag]
      additionalProperties: false
    grants:
      - action: "k8s:apps/deployments:get|patch"
        resource: "\${service}/\${service}"
    ttl: 10m
    ticket: optional
    approval:
      prod: sre
  payments-only:
    description: a writ only the payments API may accept
    risk: low
    environments: [dev]
    grants: [{ action: "k8s:apps/deployments:get", resource: "payments/payments" }]
    ttl: 5m
    audiences: ["${NARROW}"]
${APPROVAL_PLAYBOOKS_YAML}`;

/** multi-bot's private keys, one per algorithm family. */
const multi = new Map<string, { key: CryptoKey; kid: string }>();

async function writYaml(): Promise<string> {
  const publics: JWK[] = [];
  for (const alg of new Set(PROBE_ALGS.map(keyAlg))) {
    const pair = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
    });
    const kid = `multi-${alg}`;
    // a key for an algorithm writ refuses is not registered: the refusal comes before any key
    if (ADVERTISED.includes(alg)) publics.push({ ...(await exportJWK(pair.publicKey)), kid });
    multi.set(alg, { key: pair.privateKey, kid });
  }
  return WRIT_YAML(publics);
}

const current = liveFromYaml("attacks", writYaml);
let server: Server;
let base: string;
beforeAll(() => {
  ({ server, base } = current());
});

// --- requests ------------------------------------------------------------------------------------

const issuer = (env: string) => `${base}/env/${env}`;
const tokenUrl = (env: string) => `${issuer(env)}/token`;

/** release-bot's client assertion for `env` (or `aud`), with overrides. */
async function assertion(env: string, opts: AssertionOptions & { agent?: string; aud?: string } = {}) {
  const agent = opts.agent ?? "release-bot";
  const own = await quickstartKey(
    agent === "release-bot" || agent === "ops-assistant" ? agent : "release-bot",
  );
  return signedAssertion(own, agent, opts.aud ?? issuer(env), opts);
}

const auth = async (env: string, opts: Parameters<typeof assertion>[1] = {}) => ({
  client_assertion_type: JWT_BEARER,
  client_assertion: await assertion(env, opts),
});

function post(url: string, form: Record<string, string | undefined>, headers: Record<string, string> = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body,
  });
}

type Pair = { privateKey: CryptoKey; publicKey: CryptoKey };
const es256 = (): Promise<Pair> => generateKeyPair("ES256", { extractable: true });

/** client_credentials at `env` with a valid assertion; `dpop` a proof or null for none. */
async function baselineRequest(env = "dev", opts: { form?: Record<string, string>; pair?: Pair } = {}) {
  const pair = opts.pair ?? (await es256());
  return post(
    tokenUrl(env),
    { grant_type: "client_credentials", ...(await auth(env)), ...opts.form },
    { dpop: await dpopProof(tokenUrl(env), { key: pair }) },
  );
}

async function baseline(
  env = "dev",
  pair?: Pair,
  agent = "release-bot",
): Promise<{ token: string; pair: Pair }> {
  const p = pair ?? (await es256());
  const r = await post(
    tokenUrl(env),
    { grant_type: "client_credentials", ...(await auth(env, { agent })) },
    { dpop: await dpopProof(tokenUrl(env), { key: p }) },
  );
  const body = (await r.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no baseline: ${JSON.stringify(body)}`);
  return { token: body.access_token, pair: p };
}

type Intent = Record<string, unknown>;
const deployIntent = (extra: Intent = {}): Intent => ({
  playbook: "deploy",
  parameters: { service: "checkout", tag: "v1.2.3" },
  ...extra,
});
const detailsOf = (intent: Intent) => JSON.stringify([{ type: "writ_playbook", ...intent }]);

/**
 * A token exchange by release-bot: its own DPoP-bound baseline, `intent`, the allowed audience.
 * `form` overrides (undefined removes); `proof` replaces the DPoP header (null: none).
 */
async function exchange(
  env: string,
  intent: Intent | string | undefined,
  form: Record<string, string | undefined> = {},
  opts: { proof?: (pair: Pair) => Promise<string | null>; subject?: { token: string; pair: Pair } } = {},
) {
  const subject = opts.subject ?? (await baseline(env));
  const dpop = opts.proof
    ? await opts.proof(subject.pair)
    : await dpopProof(tokenUrl(env), { key: subject.pair });
  return post(
    tokenUrl(env),
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subject.token,
      subject_token_type: ACCESS_TOKEN,
      resource: RESOURCE,
      authorization_details:
        intent === undefined ? undefined : typeof intent === "string" ? intent : detailsOf(intent),
      ...(await auth(env)),
      ...form,
    },
    dpop === null ? {} : { dpop },
  );
}

const withParams = (parameters: Record<string, unknown>) => deployIntent({ parameters });

/** A writ for release-bot in dev; its token. */
async function writ(): Promise<string> {
  const r = await exchange("dev", deployIntent());
  const body = (await r.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no writ: ${JSON.stringify(body)}`);
  return body.access_token;
}

/** CIBA backchannel authentication by release-bot in prod. */
async function bcAuthorize(form: Record<string, string | undefined>) {
  return post(`${issuer("prod")}/bc-authorize`, {
    resource: RESOURCE,
    authorization_details: detailsOf(deployIntent()),
    ...(await auth("prod")),
    ...form,
  });
}

async function approvalRequest(form: Record<string, string | undefined> = {}): Promise<string> {
  const r = await bcAuthorize(form);
  const body = (await r.json()) as { auth_req_id?: string };
  if (!body.auth_req_id) throw new Error(`no approval request: ${JSON.stringify(body)}`);
  return body.auth_req_id;
}

/** A CIBA poll by `agent` (release-bot) at `env`'s token endpoint. */
async function poll(id: string, opts: { env?: string; agent?: string; resource?: string } = {}) {
  const env = opts.env ?? "prod";
  return post(
    tokenUrl(env),
    {
      grant_type: CIBA,
      auth_req_id: id,
      resource: opts.resource,
      ...(await auth(env, { agent: opts.agent ?? "release-bot" })),
    },
    { dpop: await dpopProof(tokenUrl(env)) },
  );
}

const editApproval = (id: string, set: Record<string, unknown>) =>
  server.store.db.updateTable("approval_requests").set(set).where("id", "=", id).execute();
const ago = (ms: number) => new Date(Date.now() - ms);

const approverJwt = (who: string, opts: AssertionOptions = {}) => approverJwtAt(base, who, opts);

function approvals(path: string, bearer: string | undefined, body?: unknown) {
  return fetch(`${base}/approvals${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

const decide = async (id: string, who: string, decision: "approve" | "deny" = "approve") =>
  approvals(`/${id}/${decision}`, await approverJwt(who), decision === "deny" ? { reason: "no" } : {});

function adminCall(path: string, authorization: string | undefined, body?: unknown) {
  return fetch(`${base}/admin/v1${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...(authorization === undefined ? {} : { authorization }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

/** Denied once (an unknown playbook), so the agent is now blocked in dev. */
async function deniedOnce(): Promise<void> {
  const r = await exchange("dev", { playbook: "no-such-playbook" });
  expect(r.status).toBe(400);
}

// --- the corpus ------------------------------------------------------------------------------------

/** What an attack must get: an OAuth refusal with its `reason`, or a problem with its `code`. */
type Expected =
  | { readonly status: number; readonly error: string; readonly reason: string }
  | { readonly status: number; readonly code: string }
  | { readonly status: 200 };

interface Attack {
  readonly group: string;
  readonly name: string;
  readonly expect: Expected;
  readonly run: () => Promise<Response>;
  /** Further checks on the answer (headers, state). */
  readonly check?: (r: Response) => void | Promise<void>;
}

const oauth = (status: number, error: string, reason: string): Expected => ({ status, error, reason });
const invalidClient = (reason: string) => oauth(401, "invalid_client", reason);
const badProof = (reason: string) => oauth(400, "invalid_dpop_proof", reason);
const badDetails = (reason: string) => oauth(400, "invalid_authorization_details", reason);
const problem = (status: number, code: string): Expected => ({ status, code });

/** client_credentials in dev with a hand-made assertion. */
const withAssertion = (make: () => Promise<string>) => async () =>
  post(
    tokenUrl("dev"),
    { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await make() },
    { dpop: await dpopProof(tokenUrl("dev")) },
  );

const SECRET = new TextEncoder().encode("a shared secret proves nothing about who signed this");

const CLIENT_ASSERTION: Attack[] = [
  [
    "audience of the prod issuer",
    () => assertion("dev", { aud: issuer("prod") }),
    "client_assertion_audience",
  ],
  [
    "audience of another server",
    () => assertion("dev", { aud: "https://evil.example/env/dev" }),
    "client_assertion_audience",
  ],
  [
    "audience of the approvals API",
    () => assertion("dev", { aud: `${base}/approvals` }),
    "client_assertion_audience",
  ],
  [
    "audience list without this issuer",
    () => assertion("dev", { claims: { aud: ["https://a.example", "https://b.example"] } }),
    "client_assertion_audience",
  ],
  [
    "expired",
    () => assertion("dev", { claims: { iat: nowS() - 900, exp: nowS() - 600 } }),
    "client_assertion_expired",
  ],
  ["living an hour", () => assertion("dev", { claims: { exp: nowS() + 3600 } }), "client_assertion_lifetime"],
  [
    "issued in the future",
    () => assertion("dev", { claims: { iat: nowS() + 120 } }),
    "client_assertion_not_yet_valid",
  ],
  [
    "alg none",
    async () => unsigned({ typ: "JWT" }, claimsOf(await assertion("dev"))),
    "client_assertion_alg",
  ],
  [
    "HS256 keyed with the agent's public key",
    async () => {
      const { kid } = await quickstartKey("release-bot");
      const pub = JSON.parse(readFileSync(join(QUICKSTART, "keys", "release-bot.jwks.json"), "utf8")) as {
        keys: JWK[];
      };
      return assertion("dev", {
        header: { alg: "HS256", kid },
        key: new TextEncoder().encode(JSON.stringify(pub.keys[0])),
      });
    },
    "client_assertion_alg",
  ],
  [
    "HS512 with a shared secret",
    () => assertion("dev", { header: { alg: "HS512", kid: undefined }, key: SECRET }),
    "client_assertion_alg",
  ],
  ["wrong kid", () => assertion("dev", { header: { kid: "no-such-kid" } }), "client_assertion_signature"],
  [
    "another agent's kid and key",
    async () => {
      const other = await quickstartKey("ops-assistant");
      return assertion("dev", { header: { kid: other.kid }, key: other.key });
    },
    "client_assertion_signature",
  ],
  [
    "an unregistered ES256 key",
    async () =>
      assertion("dev", { header: { alg: "ES256", kid: undefined }, key: (await es256()).privateKey }),
    "client_assertion_signature",
  ],
  [
    "a tampered payload",
    async () => {
      const [h, , s] = (await assertion("dev")).split(".");
      const p = Buffer.from(
        JSON.stringify({ ...claimsOf(await assertion("dev")), sub: "release-bot", extra: 1 }),
      ).toString("base64url");
      return `${h}.${p}.${s}`;
    },
    "client_assertion_signature",
  ],
  [
    "unknown client",
    () => assertion("dev", { claims: { iss: "nobody", sub: "nobody" } }),
    "client_assertion_unknown_client",
  ],
  ["iss is not sub", () => assertion("dev", { claims: { sub: "ops-assistant" } }), "client_assertion_issuer"],
  [
    "iss another agent",
    () => assertion("dev", { claims: { iss: "ops-assistant" } }),
    "client_assertion_issuer",
  ],
  ["typ at+jwt", () => assertion("dev", { header: { typ: "at+jwt" } }), "client_assertion_typ"],
  ["not a JWS", async () => "not-a-jws", "client_assertion_malformed"],
  ["five parts (a JWE shape)", async () => "a.b.c.d.e", "client_assertion_malformed"],
  ["no iss", () => assertion("dev", { claims: { iss: undefined } }), "client_assertion_malformed"],
].map(([name, make, reason]) => ({
  group: "client assertion",
  name: name as string,
  expect: invalidClient(reason as string),
  run: withAssertion(make as () => Promise<string>),
}));

CLIENT_ASSERTION.push(
  {
    group: "client assertion",
    name: "replayed jti",
    expect: invalidClient("client_assertion_replay"),
    run: async () => {
      const a = await assertion("dev");
      const make = withAssertion(async () => a);
      expect((await make()).status).toBe(200);
      return make();
    },
  },
  {
    group: "client assertion",
    name: "none at all",
    expect: invalidClient("client_assertion_missing"),
    run: async () =>
      post(tokenUrl("dev"), { grant_type: "client_credentials" }, { dpop: await dpopProof(tokenUrl("dev")) }),
  },
  {
    group: "client assertion",
    name: "a SAML assertion type",
    expect: invalidClient("client_assertion_type"),
    run: async () =>
      post(tokenUrl("dev"), {
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        client_assertion: await assertion("dev"),
      }),
  },
  {
    group: "client assertion",
    name: "client_id naming another agent",
    expect: invalidClient("client_assertion_client_id"),
    run: async () =>
      post(tokenUrl("dev"), {
        grant_type: "client_credentials",
        client_id: "ops-assistant",
        ...(await auth("dev")),
      }),
  },
  {
    group: "client assertion",
    name: "a client secret (HTTP Basic)",
    expect: invalidClient("client_secret_refused"),
    run: () =>
      post(
        tokenUrl("dev"),
        { grant_type: "client_credentials" },
        { authorization: `Basic ${Buffer.from("release-bot:hunter2").toString("base64")}` },
      ),
  },
  {
    group: "client assertion",
    name: "a client secret in the body",
    expect: invalidClient("client_secret_refused"),
    run: () =>
      post(tokenUrl("dev"), {
        grant_type: "client_credentials",
        client_id: "release-bot",
        client_secret: "hunter2",
      }),
  },
);

/** client_credentials in dev with a DPoP header made by `make`. */
const withProof = (make: () => Promise<string>) => async () =>
  post(tokenUrl("dev"), { grant_type: "client_credentials", ...(await auth("dev")) }, { dpop: await make() });

const DPOP: Attack[] = [
  ["an empty header", async () => "", "dpop_missing"],
  [
    "two proofs",
    async () => `${await dpopProof(tokenUrl("dev"))}, ${await dpopProof(tokenUrl("dev"))}`,
    "dpop_multiple",
  ],
  ["not a JWS", async () => "not-a-proof", "dpop_malformed"],
  ["typ JWT", () => dpopProof(tokenUrl("dev"), { header: { typ: "JWT" } }), "dpop_typ"],
  [
    "alg none",
    async () =>
      unsigned(
        { typ: "dpop+jwt", jwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" } },
        { jti: randomUUID(), htm: "POST", htu: tokenUrl("dev"), iat: nowS() },
      ),
    "dpop_alg",
  ],
  ["HS256", () => dpopProof(tokenUrl("dev"), { header: { alg: "HS256" }, signWith: SECRET }), "dpop_alg"],
  ["no jwk", () => dpopProof(tokenUrl("dev"), { header: { jwk: undefined } }), "dpop_jwk"],
  [
    "the private key in jwk",
    async () => {
      const pair = await es256();
      return dpopProof(tokenUrl("dev"), { key: pair, header: { jwk: await exportJWK(pair.privateKey) } });
    },
    "dpop_jwk",
  ],
  [
    "an RSA jwk for an ES256 proof",
    async () => {
      const rsa = await generateKeyPair("RS256", { extractable: true });
      return dpopProof(tokenUrl("dev"), { header: { jwk: await exportJWK(rsa.publicKey) } });
    },
    "dpop_jwk",
  ],
  [
    "signed by another key than its jwk",
    async () => dpopProof(tokenUrl("dev"), { signWith: (await es256()).privateKey }),
    "dpop_signature",
  ],
  ["htm GET", () => dpopProof(tokenUrl("dev"), { claims: { htm: "GET" } }), "dpop_htm"],
  [
    "htu of the revocation endpoint",
    () => dpopProof(tokenUrl("dev"), { claims: { htu: `${issuer("dev")}/revoke` } }),
    "dpop_htu",
  ],
  [
    "htu of the prod issuer",
    () => dpopProof(tokenUrl("dev"), { claims: { htu: tokenUrl("prod") } }),
    "dpop_htu",
  ],
  [
    "htu of another host",
    () => dpopProof(tokenUrl("dev"), { claims: { htu: "https://evil.example/env/dev/token" } }),
    "dpop_htu",
  ],
  ["iat an hour old", () => dpopProof(tokenUrl("dev"), { claims: { iat: nowS() - 3600 } }), "dpop_iat"],
  ["iat an hour ahead", () => dpopProof(tokenUrl("dev"), { claims: { iat: nowS() + 3600 } }), "dpop_iat"],
  ["no jti", () => dpopProof(tokenUrl("dev"), { claims: { jti: undefined } }), "dpop_malformed"],
  [
    "a nonce never handed out",
    () => dpopProof(tokenUrl("dev"), { claims: { nonce: "made-up-nonce" } }),
    "dpop_nonce",
  ],
].map(([name, make, reason]) => ({
  group: "DPoP",
  name: name as string,
  expect: reason === "dpop_nonce" ? oauth(400, "use_dpop_nonce", "dpop_nonce") : badProof(reason as string),
  run: withProof(make as () => Promise<string>),
}));

DPOP.push(
  {
    group: "DPoP",
    name: "missing on a token exchange",
    expect: oauth(400, "invalid_dpop_proof", "dpop_required"),
    run: () => exchange("dev", deployIntent(), {}, { proof: async () => null }),
  },
  {
    group: "DPoP",
    name: "replayed jti",
    expect: badProof("dpop_replay"),
    run: async () => {
      const proof = await dpopProof(tokenUrl("dev"));
      expect((await withProof(async () => proof)()).status).toBe(200);
      return withProof(async () => proof)();
    },
  },
  {
    group: "DPoP",
    name: "a key other than the baseline token's cnf",
    expect: oauth(400, "invalid_grant", "subject_token_binding"),
    run: () => exchange("dev", deployIntent(), {}, { proof: async () => dpopProof(tokenUrl("dev")) }),
  },
);

const CROSS_ENVIRONMENT: Attack[] = [
  {
    group: "cross-environment",
    name: "a dev baseline token exchanged in prod",
    expect: oauth(400, "invalid_grant", "token_key"),
    run: async () => exchange("prod", deployIntent(), {}, { subject: await baseline("dev") }),
  },
  {
    group: "cross-environment",
    name: "a prod baseline token exchanged in dev",
    expect: oauth(400, "invalid_grant", "token_key"),
    run: async () => exchange("dev", deployIntent(), {}, { subject: await baseline("prod") }),
  },
  {
    group: "cross-environment",
    name: "a dev writ spent at prod's use endpoint",
    expect: oauth(401, "invalid_client", "resource_server_required"),
    run: async () => post(`${issuer("prod")}/use`, { token: await writ() }),
  },
  {
    group: "cross-environment",
    name: "a dev client assertion at prod",
    expect: invalidClient("client_assertion_audience"),
    run: async () => post(tokenUrl("prod"), { grant_type: "client_credentials", ...(await auth("dev")) }),
  },
  {
    group: "cross-environment",
    name: "an agent registered in dev only asking prod",
    expect: oauth(400, "unauthorized_client", "environment_not_allowed"),
    run: async () =>
      post(tokenUrl("prod"), {
        grant_type: "client_credentials",
        ...(await auth("prod", { agent: "ops-assistant" })),
      }),
  },
  {
    group: "cross-environment",
    name: "an intent naming prod at the dev issuer",
    expect: badDetails("environment_mismatch"),
    run: () => exchange("dev", deployIntent({ environment: "prod" })),
  },
  {
    group: "cross-environment",
    name: "a dev-only playbook in prod",
    expect: oauth(400, "access_denied", "environment_not_allowed"),
    run: () => exchange("prod", { playbook: "payments-only" }, { resource: NARROW }),
  },
];

// NUL and control characters never reach the intent checks: the token endpoint's edge refuses them (routes.ts)
const AT_THE_EDGE = oauth(400, "invalid_request", "parameter_invalid");

const INJECTIONS: [string, unknown, Expected?][] = [
  ["a shell command in the tag", "v1.2.3; rm -rf /"],
  ["a newline in the tag", "v1.2.3\nv9.9.9"],
  ["a path traversal", "../../../etc/passwd"],
  ["an SQL injection", "v1.2.3' OR '1'='1"],
  ["a template reference", "${service}"],
  ["a wildcard", "*"],
  ["an alternative", "v1.2.3|v9.9.9"],
  ["a NUL byte", "v1.2.3\u0000", AT_THE_EDGE],
  ["full-width digits", "v１.２.３"],
  ["a very long value", `v1.2.${"3".repeat(5000)}`],
  ["a number", 123],
  ["an object", { $ne: null }],
  ["an array", ["v1.2.3"]],
];

const INTENTS: Attack[] = [
  ...INJECTIONS.map(
    ([name, tag, expect]): Attack => ({
      group: "intents and parameters",
      name: `tag outside its pattern: ${name}`,
      expect: expect ?? badDetails("invalid_parameters"),
      run: () => exchange("dev", withParams({ service: "checkout", tag })),
    }),
  ),
  ...(
    [
      ["a service outside its enum", { service: "billing", tag: "v1.2.3" }],
      ["a wildcard service", { service: "*", tag: "v1.2.3" }],
      ["a service widening the grant", { service: "checkout/*", tag: "v1.2.3" }],
      ["an extra parameter", { service: "checkout", tag: "v1.2.3", namespace: "kube-system" }],
      ["a prototype key", JSON.parse('{"service":"checkout","tag":"v1.2.3","__proto__":{"admin":true}}')],
      ["a required parameter missing", { service: "checkout" }],
    ] as const
  ).map(
    ([name, parameters]): Attack => ({
      group: "intents and parameters",
      name,
      expect: badDetails("invalid_parameters"),
      run: () => exchange("dev", withParams(parameters as Record<string, unknown>)),
    }),
  ),
  ...(
    [
      ["an unknown playbook", { playbook: "rotate-cert" }, badDetails("unknown_playbook")],
      [
        "parameters as an array",
        { playbook: "deploy", parameters: ["checkout"] },
        badDetails("intent_malformed"),
      ],
      ["a numeric environment", deployIntent({ environment: 7 }), badDetails("intent_malformed")],
      ["a numeric ticket", deployIntent({ ticket: 7 }), badDetails("intent_malformed")],
    ] as const
  )
    .filter(([, , e]) => e !== undefined)
    .map(
      ([name, intent, e]): Attack => ({
        group: "intents and parameters",
        name,
        expect: e!,
        run: () => exchange("dev", intent as Intent),
      }),
    ),
  ...(
    [
      ["details that are not JSON", "[{not json"],
      [
        "two intents",
        JSON.stringify([
          { type: "writ_playbook", playbook: "deploy" },
          { type: "writ_playbook", playbook: "deploy" },
        ]),
      ],
      ["another details type", JSON.stringify([{ type: "payment_initiation", playbook: "deploy" }])],
      ["an object, not a list", JSON.stringify({ type: "writ_playbook", playbook: "deploy" })],
      ["an empty list", "[]"],
    ] as const
  ).map(
    ([name, raw]): Attack => ({
      group: "intents and parameters",
      name,
      expect: badDetails("intent_malformed"),
      run: () => exchange("dev", raw),
    }),
  ),
  {
    group: "intents and parameters",
    name: "no intent",
    expect: oauth(400, "invalid_request", "intent_missing"),
    run: () => exchange("dev", undefined),
  },
  {
    group: "intents and parameters",
    name: "a ticket with a command after it",
    expect: oauth(400, "invalid_request", "ticket_invalid"),
    run: () => exchange("prod", deployIntent({ ticket: "CHG-1; DROP TABLE writs" })),
  },
  {
    group: "intents and parameters",
    name: "a ticket with a second line",
    expect: AT_THE_EDGE,
    run: () => exchange("prod", deployIntent({ ticket: "CHG-1\nCHG-2" })),
  },
  {
    group: "intents and parameters",
    name: "another agent's baseline token as subject",
    expect: oauth(400, "invalid_grant", "subject_token_mismatch"),
    run: async () =>
      exchange("dev", deployIntent(), {}, { subject: await baseline("dev", undefined, "ops-assistant") }),
  },
  {
    group: "intents and parameters",
    name: "a writ as subject token",
    expect: oauth(400, "invalid_grant", "subject_token_mismatch"),
    run: async () => {
      const pair = await es256();
      const b = await baseline("dev", pair);
      const r = await exchange("dev", deployIntent(), {}, { subject: b });
      const w = ((await r.json()) as { access_token: string }).access_token;
      return exchange("dev", deployIntent(), {}, { subject: { token: w, pair } });
    },
  },
  {
    group: "intents and parameters",
    name: "an unsigned subject token",
    expect: oauth(400, "invalid_grant", "token_alg"),
    run: async () => {
      const b = await baseline("dev");
      return exchange(
        "dev",
        deployIntent(),
        { subject_token: unsigned({ typ: "at+jwt" }, claimsOf(b.token)) },
        { subject: b },
      );
    },
  },
  {
    group: "intents and parameters",
    name: "a subject token with its scope widened",
    expect: oauth(400, "invalid_grant", "token_signature"),
    run: async () => {
      const b = await baseline("dev");
      const [h, , s] = b.token.split(".");
      const p = Buffer.from(JSON.stringify({ ...claimsOf(b.token), scope: "writ:everything" })).toString(
        "base64url",
      );
      return exchange("dev", deployIntent(), { subject_token: `${h}.${p}.${s}` }, { subject: b });
    },
  },
  {
    group: "intents and parameters",
    name: "a subject token of the wrong type",
    expect: oauth(400, "invalid_request", "subject_token_type"),
    run: () =>
      exchange("dev", deployIntent(), { subject_token_type: "urn:ietf:params:oauth:token-type:id_token" }),
  },
  {
    group: "intents and parameters",
    name: "the password grant",
    expect: oauth(400, "unsupported_grant_type", "unsupported_grant_type"),
    run: async () =>
      post(tokenUrl("dev"), { grant_type: "password", username: "release-bot", password: "x" }),
  },
  {
    group: "intents and parameters",
    name: "a parameter given twice",
    expect: oauth(400, "invalid_request", "repeated_parameter"),
    run: () =>
      fetch(tokenUrl("dev"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials&grant_type=urn:ietf:params:oauth:grant-type:token-exchange",
      }),
  },
  {
    group: "intents and parameters",
    name: "a JSON body",
    expect: oauth(400, "invalid_request", "content_type"),
    run: () =>
      fetch(tokenUrl("dev"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credentials" }),
      }),
  },
  {
    group: "intents and parameters",
    name: "a body over 64 KiB",
    expect: oauth(413, "invalid_request", "body_too_large"),
    run: () => post(tokenUrl("dev"), { grant_type: "client_credentials", pad: "x".repeat(70_000) }),
  },
  {
    group: "intents and parameters",
    name: "a playbook of another agent",
    expect: oauth(400, "access_denied", "playbook_not_allowed"),
    run: async () => {
      const b = await baseline("dev", undefined, "ops-assistant");
      return post(
        tokenUrl("dev"),
        {
          grant_type: TOKEN_EXCHANGE,
          subject_token: b.token,
          subject_token_type: ACCESS_TOKEN,
          resource: RESOURCE,
          authorization_details: detailsOf(deployIntent()),
          ...(await auth("dev", { agent: "ops-assistant" })),
        },
        { dpop: await dpopProof(tokenUrl("dev"), { key: b.pair }) },
      );
    },
  },
];

const AUDIENCE: Attack[] = [
  ...(
    [
      ["an attacker's server", "https://attacker.example"],
      ["the allowed host in upper case", "https://K8S.acme.example"],
      ["the allowed audience with a trailing slash", `${RESOURCE}/`],
      ["the allowed host as userinfo of another", "https://k8s.acme.example@evil.example"],
      ["the allowed audience with a path", `${RESOURCE}/api`],
      ["http instead of https", "http://k8s.acme.example"],
      ["the issuer itself", "ISSUER"],
      ["an allowed audience's host as a prefix of another", "https://payments.acme.example.evil"],
    ] as const
  ).map(
    ([name, resource]): Attack => ({
      group: "audience",
      name,
      expect: oauth(400, "invalid_target", "resource_not_allowed"),
      run: () =>
        exchange("dev", deployIntent(), { resource: resource === "ISSUER" ? issuer("dev") : resource }),
    }),
  ),
  {
    group: "audience",
    name: "an audience the environment allows but the playbook does not",
    expect: oauth(400, "invalid_target", "resource_not_allowed"),
    run: () => exchange("dev", { playbook: "payments-only" }, { resource: RESOURCE }),
  },
  {
    group: "audience",
    name: "an audience the playbook lists, in an environment that does not allow it",
    expect: oauth(400, "invalid_target", "resource_not_allowed"),
    run: () => exchange("prod", deployIntent(), { resource: NARROW }),
  },
  {
    group: "audience",
    name: "a fragment",
    expect: oauth(400, "invalid_target", "resource_invalid"),
    run: () => exchange("dev", deployIntent(), { resource: `${RESOURCE}#admin` }),
  },
  {
    group: "audience",
    name: "a relative reference",
    expect: oauth(400, "invalid_target", "resource_invalid"),
    run: () => exchange("dev", deployIntent(), { resource: "/mcp" }),
  },
  {
    group: "audience",
    name: "none",
    expect: oauth(400, "invalid_target", "resource_missing"),
    run: () => exchange("dev", deployIntent(), { resource: undefined }),
  },
  {
    group: "audience",
    name: "a baseline token for an attacker's server",
    expect: oauth(400, "invalid_target", "resource_not_allowed"),
    run: () => baselineRequest("dev", { form: { resource: "https://attacker.example" } }),
  },
  {
    group: "audience",
    name: "bc-authorize for an attacker's server",
    expect: oauth(400, "invalid_target", "resource_not_allowed"),
    run: () => bcAuthorize({ resource: "https://attacker.example" }),
  },
  {
    group: "audience",
    name: "bc-authorize without one",
    expect: oauth(400, "invalid_target", "resource_missing"),
    run: () => bcAuthorize({ resource: undefined }),
  },
  {
    group: "audience",
    name: "a CIBA poll choosing another audience than the approved one",
    expect: oauth(400, "invalid_target", "resource_mismatch"),
    run: async () => {
      const id = await approvalRequest();
      expect((await decide(id, "bob")).status).toBe(200);
      return poll(id, { resource: "https://attacker.example" });
    },
  },
];

const CIBA_AND_APPROVALS: Attack[] = [
  {
    group: "CIBA and approvals",
    name: "the sponsor approving their own request",
    expect: problem(403, "ERR_APPROVAL_SELF"),
    run: async () => decide(await approvalRequest({ login_hint: "bob@acme.example" }), "bob"),
  },
  {
    group: "CIBA and approvals",
    name: "the agent's owner approving",
    expect: problem(403, "ERR_APPROVAL_SELF"),
    run: async () => decide(await approvalRequest(), "alice"),
  },
  {
    group: "CIBA and approvals",
    name: "an approver in no group of the policy",
    expect: problem(403, "ERR_APPROVAL_NOT_APPROVER"),
    run: async () => decide(await approvalRequest(), "dan"),
  },
  {
    group: "CIBA and approvals",
    name: "bob's JWT signed with carol's key",
    expect: problem(401, "ERR_CLIENT_ASSERTION_SIGNATURE"),
    run: async () =>
      approvals(
        `/${await approvalRequest()}/approve`,
        await approverJwt("bob", { key: (await quickstartKey("approver-carol")).key }),
        {},
      ),
  },
  {
    group: "CIBA and approvals",
    name: "an approver JWT with a shared secret",
    expect: problem(401, "ERR_CLIENT_ASSERTION_ALG"),
    run: async () =>
      approvals(
        `/${await approvalRequest()}/approve`,
        await approverJwt("bob", { header: { alg: "HS256", kid: undefined }, key: SECRET }),
        {},
      ),
  },
  {
    group: "CIBA and approvals",
    name: "an agent signing in as an approver",
    expect: problem(401, "ERR_CLIENT_ASSERTION_UNKNOWN_CLIENT"),
    run: async () =>
      approvals(
        `/${await approvalRequest()}/approve`,
        await signedAssertion(await quickstartKey("release-bot"), "release-bot", `${base}/approvals`),
        {},
      ),
  },
  {
    group: "CIBA and approvals",
    name: "an agent's client assertion replayed at the approvals API",
    expect: problem(401, "ERR_CLIENT_ASSERTION_AUDIENCE"),
    run: async () => approvals("", await approverJwt("bob", { claims: { aud: issuer("prod") } })),
  },
  {
    group: "CIBA and approvals",
    name: "no JWT",
    expect: problem(401, "ERR_APPROVER_UNAUTHENTICATED"),
    run: async () => approvals(`/${await approvalRequest()}/approve`, undefined, {}),
  },
  {
    group: "CIBA and approvals",
    name: "an approver JWT used twice",
    expect: problem(401, "ERR_CLIENT_ASSERTION_REPLAY"),
    run: async () => {
      const jwt = await approverJwt("bob");
      expect((await approvals("", jwt)).status).toBe(200);
      return approvals("", jwt);
    },
  },
  {
    group: "CIBA and approvals",
    name: "approving twice (the first closed it)",
    expect: problem(409, "ERR_APPROVAL_CLOSED"),
    run: async () => {
      const id = await approvalRequest();
      expect((await decide(id, "bob")).status).toBe(200);
      return decide(id, "bob");
    },
  },
  {
    group: "CIBA and approvals",
    name: "approving twice (two approvals needed)",
    expect: problem(409, "ERR_APPROVAL_DUPLICATE"),
    run: async () => {
      const id = await approvalRequest({ authorization_details: detailsOf({ playbook: "twice" }) });
      expect((await decide(id, "bob")).status).toBe(200);
      return decide(id, "bob");
    },
  },
  {
    group: "CIBA and approvals",
    name: "approving after a veto",
    expect: problem(409, "ERR_APPROVAL_CLOSED"),
    run: async () => {
      const id = await approvalRequest();
      expect((await decide(id, "carol", "deny")).status).toBe(200);
      return decide(id, "bob");
    },
  },
  {
    group: "CIBA and approvals",
    name: "approving a request that does not exist",
    expect: problem(404, "ERR_APPROVAL_NOT_FOUND"),
    run: () => decide("ar_guessed", "bob"),
  },
  {
    group: "CIBA and approvals",
    name: "approving an expired request",
    expect: problem(410, "ERR_APPROVAL_EXPIRED"),
    run: async () => {
      const id = await approvalRequest();
      await editApproval(id, { created_at: ago(2000), expires_at: ago(1000) });
      return decide(id, "bob");
    },
  },
  {
    group: "CIBA and approvals",
    name: "polling another agent's auth_req_id",
    expect: oauth(400, "invalid_grant", "approval_not_found"),
    run: async () => {
      const id = await approvalRequest();
      return poll(id, { env: "dev", agent: "ops-assistant" });
    },
  },
  {
    group: "CIBA and approvals",
    name: "polling a prod request at the dev issuer",
    expect: oauth(400, "invalid_grant", "approval_not_found"),
    run: async () => poll(await approvalRequest(), { env: "dev" }),
  },
  {
    group: "CIBA and approvals",
    name: "polling a guessed auth_req_id",
    expect: oauth(400, "invalid_grant", "approval_not_found"),
    run: () => poll(`ar_${"A".repeat(43)}`),
  },
  {
    group: "CIBA and approvals",
    name: "polling faster than the interval",
    expect: oauth(400, "slow_down", "slow_down"),
    run: async () => {
      const id = await approvalRequest();
      expect((await poll(id)).status).toBe(400);
      return poll(id);
    },
  },
  {
    group: "CIBA and approvals",
    name: "polling an approval already used",
    expect: oauth(400, "invalid_grant", "approval_consumed"),
    run: async () => {
      const id = await approvalRequest();
      expect((await decide(id, "bob")).status).toBe(200);
      expect((await poll(id)).status).toBe(200);
      await editApproval(id, { last_polled_at: null });
      return poll(id);
    },
  },
  {
    group: "CIBA and approvals",
    name: "polling a denied request",
    expect: oauth(400, "access_denied", "approval_denied"),
    run: async () => {
      const id = await approvalRequest();
      expect((await decide(id, "bob", "deny")).status).toBe(200);
      return poll(id);
    },
  },
  {
    group: "CIBA and approvals",
    name: "a stored request edited to other parameters",
    expect: oauth(400, "invalid_grant", "approval_binding"),
    run: async () => {
      const id = await approvalRequest();
      await editApproval(id, { params: JSON.stringify({ service: "payments", tag: "v1.2.3" }) });
      return poll(id);
    },
  },
  {
    group: "CIBA and approvals",
    name: "a stored request edited to another audience",
    expect: oauth(400, "invalid_grant", "approval_binding"),
    run: async () => {
      const id = await approvalRequest();
      await editApproval(id, { audience: "https://attacker.example" });
      return poll(id);
    },
  },
  {
    group: "CIBA and approvals",
    name: "a sponsor declared nowhere",
    expect: oauth(400, "unknown_user_id", "sponsor_unknown"),
    run: () => bcAuthorize({ login_hint: "mallory@evil.example" }),
  },
  {
    group: "CIBA and approvals",
    name: "a sponsor who may not approve, where the playbook requires one",
    expect: oauth(400, "access_denied", "sponsor_not_approver"),
    run: () =>
      bcAuthorize({
        authorization_details: detailsOf({ playbook: "sponsored" }),
        login_hint: "dan@acme.example",
      }),
  },
  {
    group: "CIBA and approvals",
    name: "no sponsor, where the playbook requires one",
    expect: oauth(400, "invalid_request", "sponsor_required"),
    run: () => bcAuthorize({ authorization_details: detailsOf({ playbook: "sponsored" }) }),
  },
  {
    group: "CIBA and approvals",
    name: "a login_hint with spaces",
    expect: oauth(400, "invalid_request", "login_hint_invalid"),
    run: () => bcAuthorize({ login_hint: "bob@acme.example OR 1=1" }),
  },
  {
    group: "CIBA and approvals",
    name: "a token exchange around the approval",
    expect: oauth(400, "access_denied", "approval_required"),
    run: () => exchange("prod", deployIntent({ ticket: "CHG-9" })),
  },
];

const ADMIN: Attack[] = [
  ["no token", undefined],
  ["a wrong token", "Bearer not-the-admin-token-not-the-admin-token"],
  ["the admin token's first half", "HALF"],
  ["the admin token with Basic", "BASIC"],
  ["the admin token in lower-case bearer", "LOWER"],
  ["an agent's baseline-shaped token", "Bearer eyJhbGciOiJub25lIn0.e30."],
].map(
  ([name, authorization]): Attack => ({
    group: "admin API",
    name: name as string,
    expect: problem(401, "ERR_ADMIN_TOKEN"),
    run: async () => {
      const t = server.adminToken;
      const header =
        authorization === "HALF"
          ? `Bearer ${t.slice(0, t.length / 2)}`
          : authorization === "BASIC"
            ? `Basic ${t}`
            : authorization === "LOWER"
              ? `bearer ${t}`
              : authorization;
      const r = await adminCall("/kill", header, { scope: { kind: "all" }, by: "attacker" });
      return r;
    },
    check: async () => {
      // and nothing was engaged
      expect(await server.store.db.selectFrom("kill_switches").selectAll().execute()).toEqual([]);
    },
  }),
);

ADMIN.push(
  {
    group: "admin API",
    name: "a body that is not JSON",
    expect: problem(400, "ERR_OPERATOR_INPUT"),
    run: () => adminCall("/kill", `Bearer ${server.adminToken}`, "{not json"),
  },
  {
    group: "admin API",
    name: "a kill of an undeclared agent",
    expect: problem(400, "ERR_KILL_SCOPE"),
    run: () =>
      adminCall("/kill", `Bearer ${server.adminToken}`, {
        scope: { kind: "agent", agent: "nobody" },
        by: "x",
      }),
  },
  {
    group: "admin API",
    name: "a lift of a kill never engaged",
    expect: problem(409, "ERR_KILL_NOT_ENGAGED"),
    run: () =>
      adminCall("/kill/lift", `Bearer ${server.adminToken}`, {
        scope: { kind: "agent", agent: "release-bot" },
        by: "x",
      }),
  },
);

const RATE_LIMITS: Attack[] = [
  {
    group: "rate limits",
    name: "a refused exchange names the block it started",
    expect: badDetails("unknown_playbook"),
    run: () => exchange("dev", { playbook: "no-such-playbook" }),
    check: (r) => expect(r.headers.get("x-writ-retry-after")).toBe(String(blockSeconds(1))),
  },
  ...[2, 3, 4].map(
    (count): Attack => ({
      group: "rate limits",
      name: `asking again inside the block (denial ${count}): Retry-After ${blockSeconds(count)} s`,
      expect: oauth(429, "slow_down", "repeated_denial"),
      run: async () => {
        await deniedOnce();
        for (let i = 2; i < count; i++) expect((await exchange("dev", deployIntent())).status).toBe(429);
        return exchange("dev", deployIntent());
      },
      check: (r) => expect(r.headers.get("retry-after")).toBe(String(blockSeconds(count))),
    }),
  ),
  {
    group: "rate limits",
    name: "a valid request inside the block is not let through",
    expect: oauth(429, "slow_down", "repeated_denial"),
    run: async () => {
      await deniedOnce();
      return exchange("dev", deployIntent());
    },
  },
  {
    group: "rate limits",
    name: "bc-authorize inside the block",
    expect: oauth(429, "slow_down", "repeated_denial"),
    run: async () => {
      const r = await bcAuthorize({ authorization_details: detailsOf({ playbook: "no-such-playbook" }) });
      expect(r.status).toBe(400);
      return bcAuthorize({});
    },
  },
  {
    group: "rate limits",
    name: "a kill engaged: refused, but never blocked for it after the lift",
    expect: { status: 200 },
    run: async () => {
      const subject = await baseline("dev");
      await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "attacks" });
      for (let i = 0; i < 3; i++) {
        const r = await exchange("dev", deployIntent(), {}, { subject });
        expect(((await r.json()) as { reason: string }).reason).toBe("kill_switch_engaged");
      }
      await server.operator.liftKill({ kind: "agent", agent: "release-bot" }, { by: "attacks" });
      return exchange("dev", deployIntent(), {}, { subject });
    },
  },
  {
    group: "rate limits",
    name: "a baseline token while killed",
    expect: oauth(400, "access_denied", "kill_switch_engaged"),
    run: async () => {
      await server.operator.engageKill({ kind: "class", runnerClass: "deploy" }, { by: "attacks" });
      return baselineRequest("dev");
    },
  },
];

/**
 * Algorithms: multi-bot signs its client assertion and its DPoP proof with each; the broker must
 * take exactly those its metadata advertises (it once advertised four and took six).
 */
const ALGORITHMS: Attack[] = PROBE_ALGS.flatMap((alg): Attack[] => {
  const advertised = ADVERTISED.includes(alg);
  const family = keyAlg(alg);
  return [
    {
      group: "algorithms",
      name: `a client assertion signed ${alg}`,
      expect: advertised ? { status: 200 } : invalidClient("client_assertion_alg"),
      run: async () => {
        const own = multi.get(family)!;
        const a = await signedAssertion(own, "multi-bot", issuer("dev"), { header: { alg } });
        return post(tokenUrl("dev"), {
          grant_type: "client_credentials",
          client_assertion_type: JWT_BEARER,
          client_assertion: a,
        });
      },
    },
    {
      group: "algorithms",
      name: `a DPoP proof signed ${alg}`,
      expect: advertised ? { status: 200 } : badProof("dpop_alg"),
      run: async () => {
        const pair = await generateKeyPair(family, {
          extractable: true,
          ...(family === "EdDSA" ? { crv: "Ed25519" } : {}),
        });
        const proof = await dpopProof(tokenUrl("dev"), { key: pair, header: { alg } });
        return post(
          tokenUrl("dev"),
          { grant_type: "client_credentials", ...(await auth("dev")) },
          { dpop: proof },
        );
      },
    },
  ];
});

const CORPUS: readonly Attack[] = [
  ...CLIENT_ASSERTION,
  ...DPOP,
  ...CROSS_ENVIRONMENT,
  ...INTENTS,
  ...AUDIENCE,
  ...CIBA_AND_APPROVALS,
  ...ADMIN,
  ...RATE_LIMITS,
  ...ALGORITHMS,
];

// --- the tests -------------------------------------------------------------------------------------

describe("the attack corpus", () => {
  it("holds at least 100 attacks, each named once, in every group", () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(100);
    const names = CORPUS.map((a) => `${a.group}: ${a.name}`);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(new Set(CORPUS.map((a) => a.group)).size).toBe(9);
  });

  it("expects only answers docs/reasons.md lists, with their error and status", () => {
    const codes = [...APPROVALS_CODES, ...ADMIN_CODES];
    const missing = CORPUS.flatMap((a) => {
      const e = a.expect as { status: number; error?: string; reason?: string; code?: string };
      const listed =
        e.reason !== undefined
          ? REGISTRY.some((r) => r.reason === e.reason && r.error === e.error && r.status === e.status)
          : e.code === undefined || codes.some((r) => r.code === e.code && r.status === e.status);
      return listed ? [] : [`${a.group}: ${a.name} → ${JSON.stringify(e)}`];
    });
    expect(missing).toEqual([]);
  });

  it.each(CORPUS.map((a) => [`${a.group}: ${a.name}`, a] as const))("%s", async (_, attack) => {
    const r = await attack.run();
    const text = await r.clone().text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // a non-JSON answer fails below on its status or fields
    }
    const e = attack.expect;
    if ("reason" in e) {
      expect({ status: r.status, error: body.error, reason: body.reason }, text).toEqual(e);
      expect(body).not.toHaveProperty("access_token");
    } else if ("code" in e) {
      expect({ status: r.status, code: body.code }, text).toEqual(e);
    } else {
      expect(r.status, text).toBe(200);
    }
    expect(r.status, "never a server error").toBeLessThan(500);
    await attack.check?.(r);
  });
});

describe("the algorithms probed", () => {
  it("are split by what the served metadata advertises, for every signature it checks", async () => {
    const meta = (await (
      await fetch(`${base}/.well-known/oauth-authorization-server/env/dev`)
    ).json()) as Record<string, unknown>;
    for (const field of Object.keys(meta).filter((k) => k.endsWith("_signing_alg_values_supported"))) {
      expect(meta[field], field).toEqual(ADVERTISED);
    }
  });
});

describe("openid-client, the legitimate client, next to the attacks", () => {
  it("gets a baseline token and a writ for an allowed audience", async () => {
    const { key, kid } = await quickstartKey("release-bot");
    const config = await client.discovery(
      new URL(issuer("dev")),
      "release-bot",
      undefined,
      client.PrivateKeyJwt({ key, kid }),
      {
        algorithm: "oauth2",
        execute: [client.allowInsecureRequests],
      },
    );
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
    const b = await client.clientCredentialsGrant(config, {}, { DPoP });
    const w = await client.genericGrantRequest(
      config,
      TOKEN_EXCHANGE,
      {
        subject_token: b.access_token,
        subject_token_type: ACCESS_TOKEN,
        resource: RESOURCE,
        authorization_details: detailsOf(deployIntent()),
      },
      { DPoP },
    );
    expect(claimsOf(w.access_token).aud).toBe(RESOURCE);
    const meta = config.serverMetadata();
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toEqual(
      meta.dpop_signing_alg_values_supported,
    );
  });
});
