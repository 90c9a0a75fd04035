/**
 * The broker's reason registry (the "Broker reasons" table of docs/reasons.md) against the broker:
 *
 *   - the table is parsed, `prefix_*` rows expanded by the suffixes in their parentheses;
 *   - the reasons the broker's source can answer with are collected (string literals given as the
 *     `reason` of a refusal, and the `reasonOf(code)` families: client authentication, DPoP,
 *     access tokens, approvals, writ uses, the intent checks) and must all be in the table, with
 *     the same `error` and status where the source fixes them;
 *   - every table row is provoked over HTTP against a live `writ serve` app, and the answer's
 *     `reason`, `error` and status must be the row's. A row no request can reach names why in
 *     `CANNOT_PROVOKE`, and that list is checked as strictly as the scenarios.
 *
 * The policy is this file's own writ.yaml: `dev` (no ticket pattern, no window), `prod` (a ticket
 * pattern and an approval, no window, so it is open every day), `frozen` (one change window, on the
 * weekday three days from now, so it is closed whenever the test runs). Two agents are re-wired after
 * loading into what the loader refuses, to reach the broker's own safeguards: `cost-analyst` under a
 * runner class whose ceiling no longer covers its playbook (`grant_outside_ceiling`), `orphan-bot`
 * under a runner class that is not declared (`unknown_agent`).
 */

import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPair, generateProof, type KeyPair } from "dpop";
import { type CryptoKey, exportJWK, generateKeyPair as joseKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Policy, Server } from "../../src/app.js";
import {
  approvalService,
  CLIENT_AUTH_ERRORS,
  DELEGATION_OAUTH_ERROR,
  DPOP_ERRORS,
  environmentKeys,
  INTENT_OAUTH_ERROR,
  mintAccessToken,
  type OAuthErrorMapping,
  type SigningKey,
} from "../../src/broker/index.js";
import * as tokens from "../../src/broker/tokens.js";
import { ROOT } from "../support/cli.js";
import {
  APPROVAL_PLAYBOOKS_YAML,
  APPROVERS_YAML,
  type AssertionOptions,
  approverJwt as approverJwtAt,
  nowS,
  signedAssertion,
} from "./kit.js";
import { liveFromYaml, quickstartKey } from "./live.js";
import { ADMIN_CODES, APPROVALS_CODES, keyOf, NAME, REGISTRY, type Row } from "./registry.js";

// --- the registry --------------------------------------------------------------------------------

// --- what the source can answer with ---------------------------------------------------------------

interface Emission {
  readonly reason: string;
  /** Set when the source fixes them at the call. */
  readonly error?: string | undefined;
  readonly status?: number | undefined;
  readonly where: string;
}

const BROKER_SRC = join(ROOT, "src", "broker");

/** The arguments of the call whose `(` is at `open`, split at top-level commas (strings skipped). */
function callArguments(text: string, open: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let current = "";
  const templates: number[] = []; // brace depth at which each open template's `${` began
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      current += text.slice(i, j + 1);
      i = j;
      continue;
    }
    if (c === "`" || (c === "}" && templates.at(-1) === depth)) {
      if (c === "}") templates.pop();
      let j = i + 1;
      while (text[j] !== "`" && !(text[j] === "$" && text[j + 1] === "{")) j += text[j] === "\\" ? 2 : 1;
      if (text[j] === "$") {
        templates.push(depth);
        current += text.slice(i, j + 2);
        i = j + 1;
      } else {
        current += text.slice(i, j + 1);
        i = j;
      }
      continue;
    }
    if (c === "(" || c === "[" || c === "{") {
      depth++;
      if (depth === 1) continue;
    } else if (c === ")" || c === "]" || c === "}") {
      depth--;
      if (depth === 0) {
        if (current.trim() !== "") args.push(current.trim());
        return { args, end: i };
      }
    } else if (c === "," && depth === 1) {
      args.push(current.trim());
      current = "";
      continue;
    }
    current += c;
  }
  throw new Error("unbalanced call");
}

const lineAt = (text: string, index: number) => text.slice(0, index).split("\n").length;
const codeToReason = (code: string) => code.replace(/^ERR_/, "").toLowerCase();

/**
 * The codes a `reasonOf(err.code)` can see, by what the enclosing `try` block calls. Where the call's
 * options decide whether a check runs at all (an audience, an access token, server nonces), a code
 * counts only when the call passes that option.
 */
function derivedFamily(tryBlock: string, serviceText: string): { family: string; codes: string[] } {
  const families: { family: string; codes: () => string[]; marker: RegExp }[] = [
    {
      family: "client authentication",
      marker: /\b(authenticateClient|checkClient)\(/,
      codes: () => Object.keys(CLIENT_AUTH_ERRORS),
    },
    {
      family: "DPoP proof",
      marker: /\b(verifyDpopProof|checkDpopProof)\(/,
      codes: () => {
        const call = callArguments(
          tryBlock,
          tryBlock.indexOf("(", tryBlock.search(/\b(verifyDpopProof|checkDpopProof)\(/)),
        );
        const opts = call.args.slice(1).join(",");
        return Object.keys(DPOP_ERRORS).filter(
          (c) =>
            (c !== "ERR_DPOP_ATH" || /\baccessToken\b/.test(opts)) &&
            (c !== "ERR_DPOP_NONCE" || /\bnonce\b/.test(opts)),
        );
      },
    },
    {
      family: "access token",
      marker: /\b(verifyAccessToken|checkAccessToken)\(/,
      codes: () => {
        const call = callArguments(
          tryBlock,
          tryBlock.indexOf("(", tryBlock.search(/\b(verifyAccessToken|checkAccessToken)\(/)),
        );
        const opts = call.args.slice(1).join(",");
        return Object.keys(tokens)
          .filter((k) => k.startsWith("ERR_TOKEN_"))
          .filter((c) => c !== "ERR_TOKEN_AUDIENCE" || /\baudience\b/.test(opts));
      },
    },
    {
      family: "approval status",
      marker: /\bapprovals\.status\(/,
      codes: () => {
        // what ApprovalService.status throws: its own codes, and notFound()
        const body = approvalsFunction("status");
        const codes = [...body.matchAll(/\bERR_APPROVAL_[A-Z_]+\b/g)].map((m) => m[0]);
        if (/\bnotFound\(/.test(body)) codes.push("ERR_APPROVAL_NOT_FOUND");
        return [...new Set(codes)];
      },
    },
    {
      family: "writ use",
      marker: /\bspendWritUse\(/,
      codes: () => {
        const set = /USE_REFUSALS\s*=\s*new Set\(\[([^\]]*)\]/.exec(serviceText)?.[1] ?? "";
        return [...set.matchAll(/\bERR_WRIT_[A-Z_]+\b/g)].map((m) => m[0]);
      },
    },
  ];
  const found = families.filter((f) => f.marker.test(tryBlock));
  if (found.length !== 1) {
    throw new Error(
      `reasonOf in a try block that calls ${found.length === 0 ? "nothing known" : found.map((f) => f.family).join(" and ")}`,
    );
  }
  const codes = found[0]!.codes();
  if (codes.length === 0) throw new Error(`no codes found for the ${found[0]!.family} family`);
  return { family: found[0]!.family, codes };
}

/** Every reason the broker's source can put in a refusal, with where it comes from. */
function emittedReasons(): Emission[] {
  const out: Emission[] = [];
  const serviceText = readFileSync(join(BROKER_SRC, "service.ts"), "utf8");
  // grants/ holds a file per grant type: the whole folder, recursively
  for (const file of readdirSync(BROKER_SRC, { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith(".ts"),
  )) {
    const text = readFileSync(join(BROKER_SRC, file), "utf8");
    for (const m of text.matchAll(/(?<!function )\b(refuse|oauthError)\(/g)) {
      const { args } = callArguments(text, m.index + m[0].length - 1);
      if (args.length < 4) continue; // the coded refusals of client-auth, dpop, tokens, intent
      const where = `src/broker/${file}:${lineAt(text, m.index)}`;
      const [statusArg, errorArg, , reasonArg] = args as [string, string, string, string];
      const status = /^\d{3}$/.test(statusArg) ? Number(statusArg) : undefined;
      const error = /^"([a-z_]+)"$/.exec(errorArg)?.[1];
      const literal = /^"([^"]+)"$/.exec(reasonArg)?.[1];
      if (literal !== undefined) {
        out.push({ reason: literal, error, status, where });
      } else if (/^reasonOf\(/.test(reasonArg)) {
        // the refusal of a verifier: returned by its `check…` call (or thrown into a try/catch)
        const tryAt = Math.max(text.lastIndexOf("try {", m.index), text.lastIndexOf("await check", m.index));
        if (tryAt < 0) throw new Error(`${where}: reasonOf after no verifier call nor try/catch`);
        const { family, codes } = derivedFamily(text.slice(tryAt, m.index), serviceText);
        for (const code of codes) {
          // client authentication and DPoP answer with their modules' own mapping of each code
          const mapped =
            (CLIENT_AUTH_ERRORS as Record<string, OAuthErrorMapping>)[code] ??
            (DPOP_ERRORS as Record<string, OAuthErrorMapping>)[code];
          out.push({
            reason: codeToReason(code),
            error: error ?? mapped?.error,
            status: status ?? mapped?.status,
            where: `${where} (${family})`,
          });
        }
      } else if (/^verdict\.reason$/.test(reasonArg)) {
        for (const [reason, err] of Object.entries(DELEGATION_OAUTH_ERROR))
          out.push({ reason, error: err, status, where: `${where} (delegation checks)` });
      } else if (/^(outcome\.)?reason$/.test(reasonArg)) {
        for (const reason of Object.keys(INTENT_OAUTH_ERROR))
          out.push({ reason, where: `${where} (intent checks)` });
      } else {
        throw new Error(`${where}: a reason this test cannot read: ${reasonArg}`);
      }
    }
    // response bodies written out in full (routes.ts), and the audit of a denial
    for (const m of text.matchAll(/\breason:\s*"([^"]+)"/g)) {
      out.push({ reason: m[1]!, where: `src/broker/${file}:${lineAt(text, m.index)}` });
    }
  }
  return out;
}

// --- the live server -----------------------------------------------------------------------------

const RS_TOKEN = "resource-servers-token-for-the-reasons-test";
const RESOURCE = "https://k8s.acme.example";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const CIBA = "urn:openid:params:grant-type:ciba";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** The quickstart key each agent of this file signs with. */
const KEY_FILE: Readonly<Record<string, string>> = {
  "release-bot": "release-bot",
  "ops-assistant": "ops-assistant",
  "cost-analyst": "cost-analyst",
  "orphan-bot": "approver-dan",
  "busy-bot": "approver-alice",
  "eager-bot": "approver-carol",
};
/** The weekday three days from now: `frozen`'s only change window is then. */
const FROZEN_DAY = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][(new Date().getUTCDay() + 3) % 7]!;

const WRIT_YAML = `version: 1
environments:
  dev:
    description: no ticket pattern, no change window
    audiences: ["https://k8s.acme.example"]
  prod:
    description: a ticket pattern and approvals, no change window (open every day)
    ticket: { pattern: "^CHG-[0-9]+$" }
    audiences: ["https://k8s.acme.example"]
  frozen:
    description: one change window, on a day that is not today
    audiences: ["https://k8s.acme.example"]
    changeWindows:
      - { days: [${FROZEN_DAY}], hours: "00:00-24:00", timezone: UTC }
runnerClasses:
  deploy:
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get|patch"
          resource: "checkout/*|payments/*"
    delegation: { actors: [deploy, narrow], maxDepth: 1 }
  tight:
    description: one active writ per agent
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get"
          resource: "payments/*"
    limits: { activeWrits: 1 }
  hasty:
    description: one writ per agent per minute
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get"
          resource: "payments/*"
    limits: { issuancePerMinute: 1 }
  narrow:
    description: what cost-analyst is moved under after loading (no agent of it here)
    ceiling:
      maxTtl: 30m
      allow:
        - action: "k8s:apps/deployments:get"
          resource: "payments/*"
approverGroups:
  sre: { members: [bob@acme.example, carol@acme.example] }
${APPROVERS_YAML}agents:
  release-bot:
    owner: alice@acme.example
    purpose: asks for every kind of writ
    runnerClass: deploy
    environments: [dev, prod, frozen]
    keys: { file: keys/release-bot.jwks.json }
    playbooks: [deploy, dev-only, one-shot, sponsored, twice]
  ops-assistant:
    owner: bob@acme.example
    purpose: registered in dev only, and holds no deploy playbook
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/ops-assistant.jwks.json }
    playbooks: [one-shot]
  cost-analyst:
    owner: erin@acme.example
    purpose: moved under the narrow class after loading
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/cost-analyst.jwks.json }
    playbooks: [deploy]
  orphan-bot:
    owner: dan@acme.example
    purpose: moved under an undeclared class after loading
    runnerClass: deploy
    environments: [dev]
    keys: { file: keys/approver-dan.jwks.json }
    playbooks: [deploy]
  busy-bot:
    owner: alice@acme.example
    purpose: holds one active writ at most
    runnerClass: tight
    environments: [dev]
    keys: { file: keys/approver-alice.jwks.json }
    playbooks: [one-shot]
  eager-bot:
    owner: carol@acme.example
    purpose: is issued one writ a minute at most
    runnerClass: hasty
    environments: [dev]
    keys: { file: keys/approver-carol.jwks.json }
    playbooks: [one-shot]
playbooks:
  deploy:
    description: patch one deployment
    risk: high
    environments: [dev, prod, frozen]
    parameters:
      type: object
      properties:
        service: { type: string, enum: [checkout, payments] }
      required: [service]
      additionalProperties: false
    grants:
      - action: "k8s:apps/deployments:get|patch"
        resource: "\${service}/\${service}"
    ttl: 10m
    ticket: required
    approval:
      prod: sre
  dev-only:
    description: runs in dev only
    risk: low
    environments: [dev]
    grants:
      - action: "k8s:apps/deployments:get"
        resource: "checkout/checkout"
    ttl: 5m
${APPROVAL_PLAYBOOKS_YAML}  one-shot:
    description: one use
    risk: low
    environments: [dev]
    grants:
      - action: "k8s:apps/deployments:get"
        resource: "payments/payments"
    ttl: 5m
    maxUses: 1
`;

/** The loaded policy with two agents moved where the loader would never let them be. */
function rewired(policy: Policy): Policy {
  const agents = new Map(policy.config.agents);
  for (const [id, runnerClass] of [
    ["cost-analyst", "narrow"],
    ["orphan-bot", "retired"],
  ] as const) {
    const agent = agents.get(id);
    if (agent === undefined) throw new Error(`no agent ${id}`);
    agents.set(id, { ...agent, runnerClass });
  }
  return { ...policy, config: { ...policy.config, agents } };
}

const current = liveFromYaml("reasons", () => WRIT_YAML, { pdpToken: RS_TOKEN, rewire: rewired });
let server: Server;
let base: string;
beforeAll(() => {
  ({ server, base } = current());
});

// --- requests ------------------------------------------------------------------------------------

const issuer = (env: string) => `${base}/env/${env}`;

async function agentKey(agent: string): Promise<{ key: CryptoKey; kid: string }> {
  return quickstartKey(KEY_FILE[agent] ?? agent);
}

/** A client assertion; `claims` and `header` override (undefined removes), `key` signs instead. */
async function assertion(agent: string, env: string, opts: AssertionOptions = {}): Promise<string> {
  return signedAssertion(await agentKey(agent), agent, issuer(env), opts);
}

async function clientAuth(agent: string, env: string): Promise<Record<string, string>> {
  return { client_assertion_type: JWT_BEARER, client_assertion: await assertion(agent, env) };
}

/** A POST to `/env/<env>/<path>` with a form body. */
function post(
  env: string,
  path: string,
  form: Record<string, string> | URLSearchParams,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${issuer(env)}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: form instanceof URLSearchParams ? form : new URLSearchParams(form),
  });
}

const proof = (pair: KeyPair, env: string, nonce?: string) =>
  generateProof(pair, `${issuer(env)}/token`, "POST", nonce);

/** A proof signed with jose, for headers and claims the dpop library never produces. */
async function handMadeProof(
  env: string,
  header: Record<string, unknown>,
  claims: Record<string, unknown> = {},
  signWith?: CryptoKey | Uint8Array,
): Promise<string> {
  const { privateKey, publicKey } = await joseKeyPair("ES256", { extractable: true });
  const payload = { jti: randomUUID(), htm: "POST", htu: `${issuer(env)}/token`, iat: nowS(), ...claims };
  const h: Record<string, unknown> = {
    alg: "ES256",
    typ: "dpop+jwt",
    jwk: await exportJWK(publicKey),
    ...header,
  };
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  return new SignJWT(payload).setProtectedHeader(h as { alg: string }).sign(signWith ?? privateKey);
}

/** client_credentials, with a valid client assertion and the given DPoP header (if any). */
async function baselineRequest(
  agent: string,
  env: string,
  dpop: string | undefined,
  extra: Record<string, string> = {},
) {
  return post(
    env,
    "token",
    { grant_type: "client_credentials", ...(await clientAuth(agent, env)), ...extra },
    dpop === undefined ? {} : { dpop },
  );
}

/** A baseline token, DPoP-bound to `pair`. */
async function baseline(agent: string, env: string, pair: KeyPair): Promise<string> {
  const r = await baselineRequest(agent, env, await proof(pair, env));
  const body = (await r.json()) as { access_token?: string };
  if (r.status !== 200 || !body.access_token) throw new Error(`no baseline token: ${JSON.stringify(body)}`);
  return body.access_token;
}

interface Intent {
  readonly playbook: string;
  readonly parameters?: Record<string, unknown>;
  readonly environment?: string;
  readonly ticket?: string;
}

const deploy = (extra: Partial<Intent> = {}): Intent => ({
  playbook: "deploy",
  parameters: { service: "checkout" },
  ticket: "CHG-1",
  ...extra,
});
const details = (intent: Intent) => JSON.stringify([{ type: "writ_playbook", ...intent }]);

/**
 * A token exchange by `agent` in `env`: its own DPoP-bound baseline token, `intent`, the resource;
 * `form` overrides (undefined removes a parameter).
 */
async function exchange(
  agent: string,
  env: string,
  intent: Intent | undefined,
  form: Record<string, string | undefined> = {},
  opts: { pair?: KeyPair; dpop?: string | null } = {},
): Promise<Response> {
  const pair = opts.pair ?? (await generateKeyPair("ES256"));
  const all: Record<string, string | undefined> = {
    grant_type: TOKEN_EXCHANGE,
    subject_token: "subject_token" in form ? undefined : await baseline(agent, env, pair),
    subject_token_type: ACCESS_TOKEN,
    resource: RESOURCE,
    authorization_details: intent === undefined ? undefined : details(intent),
    ...(await clientAuth(agent, env)),
    ...form,
  };
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== undefined) body.set(k, v);
  const dpop = opts.dpop === undefined ? await proof(pair, env) : opts.dpop;
  return post(env, "token", body, dpop === null ? {} : { dpop });
}

/** release-bot's `dev-only` writ in dev, bound to `pair`: a parent to delegate. */
async function parentWrit(pair: KeyPair): Promise<{ token: string; id: string }> {
  const r = await exchange("release-bot", "dev", { playbook: "dev-only" }, {}, { pair });
  const body = (await r.json()) as { access_token?: string; writ_id?: string };
  if (r.status !== 200 || !body.access_token || !body.writ_id)
    throw new Error(`no writ: ${JSON.stringify(body)}`);
  return { token: body.access_token, id: body.writ_id };
}

/**
 * A delegation (token exchange with an actor token) by `holder` of its writ `parent` (bound to
 * `pair`) to `actor`'s DPoP-bound baseline token; `form` overrides (undefined removes).
 */
async function delegation(
  form: Record<string, string | undefined> = {},
  opts: { holder?: string; actor?: string; pair?: KeyPair; parent?: { token: string } } = {},
): Promise<Response> {
  const holder = opts.holder ?? "release-bot";
  const pair = opts.pair ?? (await generateKeyPair("ES256"));
  const parent = opts.parent ?? (await parentWrit(pair));
  const all: Record<string, string | undefined> = {
    grant_type: TOKEN_EXCHANGE,
    subject_token: parent.token,
    subject_token_type: ACCESS_TOKEN,
    actor_token:
      "actor_token" in form
        ? undefined
        : await baseline(opts.actor ?? "ops-assistant", "dev", await generateKeyPair("ES256")),
    actor_token_type: ACCESS_TOKEN,
    ...(await clientAuth(holder, "dev")),
    ...form,
  };
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== undefined) body.set(k, v);
  return post("dev", "token", body, { dpop: await proof(pair, "dev") });
}

/** A CIBA backchannel authentication request (for the one allowed audience unless `form` says). */
async function bcAuthorize(agent: string, env: string, form: Record<string, string>): Promise<Response> {
  return post(env, "bc-authorize", { resource: RESOURCE, ...(await clientAuth(agent, env)), ...form });
}

/** A pending approval request for release-bot's `intent` (deploy) in prod; its `auth_req_id`. */
async function approvalRequest(intent: Intent = deploy()): Promise<string> {
  const r = await bcAuthorize("release-bot", "prod", { authorization_details: details(intent) });
  const body = (await r.json()) as { auth_req_id?: string };
  if (r.status !== 200 || !body.auth_req_id) throw new Error(`no approval request: ${JSON.stringify(body)}`);
  return body.auth_req_id;
}

/** A CIBA poll at prod's token endpoint; `auth_req_id` undefined leaves it out. */
async function poll(authReqId: string | undefined, resource = RESOURCE): Promise<Response> {
  const pair = await generateKeyPair("ES256");
  return post(
    "prod",
    "token",
    {
      grant_type: CIBA,
      ...(authReqId === undefined ? {} : { auth_req_id: authReqId }),
      resource,
      ...(await clientAuth("release-bot", "prod")),
    },
    { dpop: await proof(pair, "prod") },
  );
}

/** Edits a stored approval request behind the broker's back (nothing is cached: `stateCache: false`). */
const editApproval = (
  id: string,
  set: { created_at?: Date; expires_at?: Date; params?: string; last_polled_at?: null },
) => server.store.db.updateTable("approval_requests").set(set).where("id", "=", id).execute();

/** Edits a stored writ behind the broker's back; its token stays as it was. */
const editWrit = (id: string, set: { issued_at: Date; expires_at: Date }) =>
  server.store.db.updateTable("writs").set(set).where("id", "=", id).execute();

const ago = (ms: number) => new Date(Date.now() - ms);

const decide = (id: string, decision: "approve" | "deny") =>
  server.operator.decideApproval(id, {
    approver: "bob@acme.example",
    decision,
    reason: decision === "deny" ? "not now" : undefined,
  });

/** A writ for release-bot in dev (one-shot: one use); its token and id. */
async function writ(playbook = "one-shot"): Promise<{ token: string; id: string }> {
  const r = await exchange("release-bot", "dev", { playbook });
  const body = (await r.json()) as { access_token?: string; writ_id?: string };
  if (r.status !== 200 || !body.access_token || !body.writ_id)
    throw new Error(`no writ: ${JSON.stringify(body)}`);
  return { token: body.access_token, id: body.writ_id };
}

const use = (token: string, env = "dev") =>
  post(env, "use", { token }, { authorization: `Bearer ${RS_TOKEN}` });

// --- access tokens that do not verify ----------------------------------------------------------

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const parts = (jwt: string) => jwt.split(".") as [string, string, string];
const decode = (part: string) =>
  JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>;

/** The environment's signing key, as the server signs with it. */
const signingKey = (env: string): Promise<SigningKey> => environmentKeys(server.store).activeKey(env);

/** A token signed by the environment's own key, with any claims and header. */
async function signedByEnv(
  env: string,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const key = await signingKey(env);
  const payload = {
    iss: issuer(env),
    sub: "release-bot",
    aud: issuer(env),
    client_id: "release-bot",
    scope: "writ:baseline",
    iat: nowS(),
    exp: nowS() + 300,
    jti: randomUUID(),
    ...claims,
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: key.kid, ...header })
    .sign(key.privateKey);
}

/**
 * One way to make each `token_*` refusal: a function from the environment to the subject token.
 * The token is release-bot's (a real baseline token altered, or one signed with the environment's
 * key), so nothing but the named check fails first.
 */
const BAD_TOKENS: Readonly<Record<string, (env: string) => Promise<string>>> = {
  malformed: async () => "not-a-jwt",
  type: async (env) => {
    const [, p, s] = parts(await baseline("release-bot", env, await generateKeyPair("ES256")));
    const key = await signingKey(env);
    return `${b64({ alg: "EdDSA", typ: "JWT", kid: key.kid })}.${p}.${s}`;
  },
  alg: async (env) => {
    const [h, p, s] = parts(await baseline("release-bot", env, await generateKeyPair("ES256")));
    return `${b64({ ...decode(h), alg: "HS256" })}.${p}.${s}`;
  },
  key: async (env) => baseline("release-bot", env === "dev" ? "prod" : "dev", await generateKeyPair("ES256")),
  signature: async (env) => {
    const [h, p, s] = parts(await baseline("release-bot", env, await generateKeyPair("ES256")));
    return `${h}.${b64({ ...decode(p), scope: "writ:everything" })}.${s}`;
  },
  expired: async (env) => signedByEnv(env, { iat: nowS() - 900, exp: nowS() - 600 }),
  not_yet_valid: async (env) => signedByEnv(env, { iat: nowS() + 600, exp: nowS() + 900 }),
  issuer: async (env) => {
    const key = await signingKey(env);
    return mintAccessToken(key, {
      iss: `https://elsewhere.example/env/${env}`,
      sub: "release-bot",
      aud: issuer(env),
      exp: nowS() + 300,
      client_id: "release-bot",
      scope: "writ:baseline",
    });
  },
  key_life: async (env) => {
    // expires after the key's publication ends: no writ-minted token can
    const key = await signingKey(env);
    return signedByEnv(env, { exp: Math.floor(key.signUntil.getTime() / 1000) + 86_400 });
  },
};

// --- scenarios -------------------------------------------------------------------------------------

interface Scenario {
  readonly reason: string;
  /** Needed when the reason is in more than one row (the same reason with another `error`). */
  readonly error?: string;
  readonly run: () => Promise<Response>;
}

/** Client assertions that fail one check each (at dev's token endpoint, client_credentials). */
const BAD_ASSERTIONS: Readonly<Record<string, () => Promise<Record<string, string>>>> = {
  missing: async () => ({}),
  type: async () => ({
    client_assertion_type: "urn:example:password",
    client_assertion: await assertion("release-bot", "dev"),
  }),
  malformed: async () => ({ client_assertion_type: JWT_BEARER, client_assertion: "not-a-jws" }),
  typ: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { header: { typ: "at+jwt" } }),
  }),
  alg: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", {
      header: { alg: "HS256", kid: undefined },
      key: new TextEncoder().encode("a shared secret is never enough, however long it is"),
    }),
  }),
  issuer: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { claims: { iss: "ops-assistant" } }),
  }),
  client_id: async () => ({
    client_id: "ops-assistant",
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev"),
  }),
  unknown_client: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { claims: { iss: "nobody", sub: "nobody" } }),
  }),
  signature: async () => ({
    client_assertion_type: JWT_BEARER,
    // release-bot's claims and kid, ops-assistant's key
    client_assertion: await assertion("release-bot", "dev", { key: (await agentKey("ops-assistant")).key }),
  }),
  audience: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { claims: { aud: issuer("prod") } }),
  }),
  expired: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", {
      claims: { iat: nowS() - 900, exp: nowS() - 600 },
    }),
  }),
  lifetime: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { claims: { exp: nowS() + 3600 } }),
  }),
  not_yet_valid: async () => ({
    client_assertion_type: JWT_BEARER,
    client_assertion: await assertion("release-bot", "dev", { claims: { iat: nowS() + 120 } }),
  }),
};

/** DPoP headers that fail one check each (at dev's token endpoint, client_credentials). */
const BAD_PROOFS: Readonly<Record<string, () => Promise<string>>> = {
  missing: async () => "",
  multiple: async () => {
    const pair = await generateKeyPair("ES256");
    return `${await proof(pair, "dev")}, ${await proof(pair, "dev")}`;
  },
  malformed: async () => "not-a-jws",
  typ: async () => handMadeProof("dev", { typ: "JWT" }),
  alg: async () =>
    handMadeProof(
      "dev",
      { alg: "HS256" },
      {},
      new TextEncoder().encode("a shared secret, never a proof key"),
    ),
  jwk: async () => handMadeProof("dev", { jwk: undefined }),
  signature: async () => {
    const other = await joseKeyPair("ES256");
    return handMadeProof("dev", {}, {}, other.privateKey);
  },
  htm: async () => handMadeProof("dev", {}, { htm: "GET" }),
  htu: async () => handMadeProof("dev", {}, { htu: `${issuer("dev")}/revoke` }),
  iat: async () => handMadeProof("dev", {}, { iat: nowS() - 3600 }),
  nonce: async () => handMadeProof("dev", {}, { nonce: "a-nonce-this-server-never-handed-out" }),
};

const SCENARIOS: Scenario[] = [
  {
    reason: "unsupported_grant_type",
    run: async () =>
      post("dev", "token", { grant_type: "password", ...(await clientAuth("release-bot", "dev")) }),
  },
  {
    reason: "content_type",
    run: () =>
      fetch(`${issuer("dev")}/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credentials" }),
      }),
  },
  {
    reason: "body_too_large",
    run: () => post("dev", "token", { grant_type: "client_credentials", padding: "x".repeat(65 * 1024) }),
  },
  {
    reason: "parameter_invalid",
    run: () => post("dev", "token", { grant_type: "client_credentials\u0000" }),
  },
  {
    reason: "parameter_too_long",
    run: () =>
      post("dev", "token", { grant_type: "client_credentials", resource: `${RESOURCE}/${"a".repeat(2000)}` }),
  },
  {
    reason: "repeated_parameter",
    run: () => post("dev", "token", new URLSearchParams("grant_type=client_credentials&grant_type=password")),
  },

  // agent authentication
  ...Object.entries(BAD_ASSERTIONS).map(
    ([suffix, auth]): Scenario => ({
      reason: `client_assertion_${suffix}`,
      run: async () => post("dev", "token", { grant_type: "client_credentials", ...(await auth()) }),
    }),
  ),
  {
    reason: "client_assertion_replay",
    run: async () => {
      const form = { grant_type: "client_credentials", ...(await clientAuth("release-bot", "dev")) };
      const first = await post("dev", "token", form);
      expect(first.status).toBe(200);
      return post("dev", "token", form);
    },
  },
  {
    reason: "client_secret_refused",
    run: () =>
      post(
        "dev",
        "token",
        { grant_type: "client_credentials" },
        { authorization: `Basic ${Buffer.from("release-bot:hunter2").toString("base64")}` },
      ),
  },
  {
    reason: "environment_not_allowed",
    error: "unauthorized_client",
    run: () => baselineRequest("ops-assistant", "prod", undefined),
  },

  // DPoP
  {
    reason: "dpop_required",
    run: () => exchange("release-bot", "dev", deploy(), {}, { dpop: null }),
  },
  ...Object.entries(BAD_PROOFS).map(
    ([suffix, bad]): Scenario => ({
      reason: `dpop_${suffix}`,
      run: async () => baselineRequest("release-bot", "dev", await bad()),
    }),
  ),
  {
    reason: "dpop_replay",
    run: async () => {
      const dpop = await proof(await generateKeyPair("ES256"), "dev");
      expect((await baselineRequest("release-bot", "dev", dpop)).status).toBe(200);
      return baselineRequest("release-bot", "dev", dpop);
    },
  },

  // the subject token
  {
    reason: "subject_token_type",
    run: () => exchange("release-bot", "dev", deploy(), { subject_token_type: undefined }),
  },
  {
    reason: "subject_token_missing",
    run: () => exchange("release-bot", "dev", deploy(), { subject_token: undefined }),
  },
  ...Object.entries(BAD_TOKENS).map(
    ([suffix, bad]): Scenario => ({
      reason: `token_${suffix}`,
      error: "invalid_grant",
      run: async () => exchange("release-bot", "dev", deploy(), { subject_token: await bad("dev") }),
    }),
  ),
  {
    reason: "subject_token_mismatch",
    run: async () => {
      const pair = await generateKeyPair("ES256");
      const theirs = await baseline("ops-assistant", "dev", pair);
      return exchange("release-bot", "dev", deploy(), { subject_token: theirs }, { pair });
    },
  },
  {
    reason: "subject_token_binding",
    run: async () => {
      const bound = await baseline("release-bot", "dev", await generateKeyPair("ES256"));
      return exchange("release-bot", "dev", deploy(), { subject_token: bound });
    },
  },
  {
    reason: "resource_missing",
    run: () => exchange("release-bot", "dev", deploy(), { resource: undefined }),
  },
  {
    reason: "resource_invalid",
    run: () => exchange("release-bot", "dev", deploy(), { resource: "k8s.acme.example#prod" }),
  },
  {
    reason: "resource_not_allowed",
    run: () => exchange("release-bot", "dev", deploy(), { resource: "https://attacker.example" }),
  },
  {
    reason: "resource_mismatch",
    run: async () => poll(await approvalRequest(), "https://elsewhere.acme.example"),
  },

  // the intent, in the order of the checks
  { reason: "intent_missing", run: () => exchange("release-bot", "dev", undefined) },
  {
    reason: "intent_malformed",
    run: () => exchange("release-bot", "dev", undefined, { authorization_details: "[{not json" }),
  },
  {
    reason: "environment_mismatch",
    run: () => exchange("release-bot", "dev", deploy({ environment: "prod" })),
  },
  { reason: "unknown_playbook", run: () => exchange("release-bot", "dev", { playbook: "rotate-cert" }) },
  {
    reason: "playbook_not_allowed",
    run: () => exchange("ops-assistant", "dev", deploy()),
  },
  {
    reason: "environment_not_allowed",
    error: "access_denied",
    run: () => exchange("release-bot", "prod", { playbook: "dev-only", ticket: "CHG-1" }),
  },
  {
    reason: "invalid_parameters",
    run: () => exchange("release-bot", "dev", deploy({ parameters: { service: "billing" } })),
  },
  {
    reason: "grant_outside_ceiling",
    run: () => exchange("cost-analyst", "dev", deploy()),
  },
  {
    reason: "unknown_agent",
    run: () => exchange("orphan-bot", "dev", deploy()),
  },
  {
    reason: "ticket_required",
    run: () => exchange("release-bot", "prod", deploy({ ticket: undefined })),
  },
  {
    reason: "ticket_invalid",
    run: () => exchange("release-bot", "prod", deploy({ ticket: "JIRA-1" })),
  },
  {
    reason: "outside_change_window",
    run: () => exchange("release-bot", "frozen", deploy()),
  },
  {
    reason: "kill_switch_engaged",
    run: async () => {
      // a baseline token from before the kill: the exchange is refused all the same
      const pair = await generateKeyPair("ES256");
      const subject = await baseline("release-bot", "dev", pair);
      await server.operator.engageKill({ kind: "agent", agent: "release-bot" }, { by: "reasons-test" });
      return exchange("release-bot", "dev", deploy(), { subject_token: subject }, { pair });
    },
  },
  {
    reason: "writ_limit_active",
    run: async () => {
      expect((await exchange("busy-bot", "dev", { playbook: "one-shot" })).status).toBe(200);
      return exchange("busy-bot", "dev", { playbook: "one-shot" });
    },
  },
  {
    reason: "writ_limit_rate",
    run: async () => {
      // the first writ is revoked, so only the issuance rate stands in the way of the second
      const first = (await (await exchange("eager-bot", "dev", { playbook: "one-shot" })).json()) as {
        access_token: string;
      };
      const revoked = await post("dev", "revoke", {
        token: first.access_token,
        ...(await clientAuth("eager-bot", "dev")),
      });
      expect(revoked.status).toBe(200);
      return exchange("eager-bot", "dev", { playbook: "one-shot" });
    },
  },
  { reason: "approval_required", run: () => exchange("release-bot", "prod", deploy()) },
  {
    reason: "repeated_denial",
    run: async () => {
      const denied = await exchange("release-bot", "dev", { playbook: "rotate-cert" });
      expect(denied.status).toBe(400);
      return exchange("release-bot", "dev", deploy());
    },
  },

  // approvals over CIBA
  {
    reason: "approval_not_needed",
    run: () => bcAuthorize("release-bot", "dev", { authorization_details: details(deploy()) }),
  },
  {
    reason: "login_hint_invalid",
    run: () =>
      bcAuthorize("release-bot", "prod", {
        authorization_details: details(deploy()),
        login_hint: "erin at acme",
      }),
  },
  {
    reason: "sponsor_required",
    run: () =>
      bcAuthorize("release-bot", "prod", { authorization_details: details({ playbook: "sponsored" }) }),
  },
  {
    reason: "sponsor_unknown",
    run: () =>
      bcAuthorize("release-bot", "prod", {
        authorization_details: details(deploy()),
        login_hint: "mallory@evil.example",
      }),
  },
  {
    reason: "sponsor_not_approver",
    run: () =>
      bcAuthorize("release-bot", "prod", {
        authorization_details: details({ playbook: "sponsored" }),
        login_hint: "alice@acme.example",
      }),
  },
  { reason: "auth_req_id_missing", run: () => poll(undefined) },
  { reason: "approval_not_found", run: () => poll("ar_no-such-request") },
  { reason: "approval_pending", run: async () => poll(await approvalRequest()) },
  {
    reason: "slow_down",
    run: async () => {
      const id = await approvalRequest();
      expect((await poll(id)).status).toBe(400);
      return poll(id);
    },
  },
  {
    reason: "approval_denied",
    run: async () => {
      const id = await approvalRequest();
      await decide(id, "deny");
      return poll(id);
    },
  },
  {
    reason: "approval_expired",
    run: async () => {
      const id = await approvalRequest();
      await editApproval(id, { created_at: ago(2000), expires_at: ago(1000) });
      return poll(id);
    },
  },
  {
    reason: "approval_consumed",
    run: async () => {
      const id = await approvalRequest();
      await decide(id, "approve");
      expect((await poll(id)).status).toBe(200);
      await editApproval(id, { last_polled_at: null }); // past the CIBA interval
      return poll(id);
    },
  },
  {
    reason: "approval_binding",
    run: async () => {
      // the stored request no longer hashes to its binding: someone edited it behind the broker
      const id = await approvalRequest();
      await editApproval(id, { params: JSON.stringify({ service: "payments" }) });
      return poll(id);
    },
  },

  // introspection, revocation, uses
  {
    reason: "introspection_token_invalid",
    run: () =>
      post("dev", "introspect", { token: "x" }, { authorization: "Bearer not-the-resource-servers-token" }),
  },
  {
    reason: "token_missing",
    run: async () => post("dev", "revoke", await clientAuth("release-bot", "dev")),
  },
  { reason: "resource_server_required", run: () => post("dev", "use", { token: "x" }) },
  ...Object.entries(BAD_TOKENS).map(
    ([suffix, bad]): Scenario => ({
      reason: `token_${suffix}`,
      error: "invalid_token",
      run: async () => use(await bad("dev")),
    }),
  ),
  {
    reason: "not_a_writ",
    run: async () => use(await baseline("release-bot", "dev", await generateKeyPair("ES256"))),
  },
  {
    reason: "writ_not_found",
    run: async () => {
      const w = await writ();
      await server.store.db.deleteFrom("writs").where("id", "=", w.id).execute();
      return use(w.token);
    },
  },
  {
    reason: "writ_revoked",
    run: async () => {
      const w = await writ();
      const revoked = await post("dev", "revoke", {
        token: w.token,
        ...(await clientAuth("release-bot", "dev")),
      });
      expect(revoked.status).toBe(200);
      return use(w.token);
    },
  },
  {
    reason: "writ_expired",
    run: async () => {
      const w = await writ();
      await editWrit(w.id, { issued_at: ago(2000), expires_at: ago(1000) });
      return use(w.token);
    },
  },
  {
    reason: "writ_not_yet_valid",
    run: async () => {
      const w = await writ();
      await editWrit(w.id, { issued_at: ago(-600_000), expires_at: ago(-900_000) });
      return use(w.token);
    },
  },
  { reason: "actor_token_type", run: () => delegation({ actor_token_type: "urn:x" }) },
  { reason: "actor_token_missing", run: () => delegation({ actor_token: undefined }) },
  { reason: "actor_token_invalid", run: () => delegation({ actor_token: "not.a.token" }) },
  {
    reason: "actor_token_unbound",
    run: async () => {
      const r = await baselineRequest("ops-assistant", "dev", undefined);
      const { access_token } = (await r.json()) as { access_token: string };
      return delegation({ actor_token: access_token });
    },
  },
  {
    reason: "parent_writ_inactive",
    run: async () => {
      const pair = await generateKeyPair("ES256");
      const parent = await parentWrit(pair);
      await server.store.writs.revoke(parent.id, "revoked by the reasons test");
      return delegation({}, { pair, parent });
    },
  },
  { reason: "delegation_actor_not_allowed", run: () => delegation({}, { actor: "busy-bot" }) },
  // cost-analyst runs under `narrow` (get on payments/* only): the parent's checkout grant is outside it
  { reason: "delegation_exceeds_actor_ceiling", run: () => delegation({}, { actor: "cost-analyst" }) },
  {
    reason: "delegation_exceeds_parent",
    run: () =>
      delegation({
        authorization_details: JSON.stringify([
          {
            type: "writ_delegation",
            grants: [{ action: "k8s:apps/deployments:patch", resource: "checkout/checkout" }],
          },
        ]),
      }),
  },
  {
    reason: "delegation_depth_exceeded",
    run: async () => {
      // release-bot → ops-assistant is 1 deep, the most `deploy` allows; ops-assistant cannot go on
      const actorPair = await generateKeyPair("ES256");
      const child = await delegation({ actor_token: await baseline("ops-assistant", "dev", actorPair) });
      const { access_token } = (await child.json()) as { access_token: string };
      return delegation(
        {},
        { holder: "ops-assistant", actor: "release-bot", pair: actorPair, parent: { token: access_token } },
      );
    },
  },
  {
    reason: "writ_exhausted",
    run: async () => {
      const w = await writ("one-shot");
      expect((await use(w.token)).status).toBe(200);
      return use(w.token);
    },
  },
];

/**
 * Table rows no request to `writ serve` can reach, and why. Each is a fact about the code, checked
 * as strictly as the scenarios: it must be a table row, and it must have no scenario.
 */
const CANNOT_PROVOKE: Readonly<Record<string, string>> = {
  "dpop_ath (invalid_dpop_proof)":
    "no broker endpoint takes an access token with its DPoP proof; `ath` is checked by resource servers",
  "signing_key_exhausted (temporarily_unavailable)":
    "the environment's key is replaced once less than its renewal margin (a day) is left, so the key never bounds a TTL to 0 s",
  "actor_unknown (invalid_grant)":
    "an actor token verifies only when this environment issued it, to a declared agent: reached when writ.yaml no longer declares it (a restart with another writ.yaml while the token lives)",
  "actor_environment (invalid_grant)":
    "an actor token verifies only when this environment issued it, to an agent registered here: reached when writ.yaml no longer registers it here (a restart while the token lives)",
  "approvals_unavailable (invalid_request)":
    "createServer always gives the broker its approval service; only a broker built without one answers it",
};

// --- the tests -----------------------------------------------------------------------------------

function rowFor(s: Scenario): Row {
  const rows = REGISTRY.filter(
    (r) => r.reason === s.reason && (s.error === undefined || r.error === s.error),
  );
  if (rows.length !== 1) {
    throw new Error(
      `scenario ${s.reason}${s.error ? ` (${s.error})` : ""} matches ${rows.length} table rows: ${rows.map(keyOf).join(", ") || "none"}`,
    );
  }
  return rows[0]!;
}

describe("the broker reasons registry", () => {
  it("parses: every reason and error a name, no row twice", () => {
    expect(REGISTRY.length).toBeGreaterThan(50);
    const keys = REGISTRY.map(keyOf);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
    for (const r of REGISTRY) expect(r.error, keyOf(r)).toMatch(NAME);
  });

  it("lists every reason the broker's source can answer with, with the source's error and status", () => {
    const emitted = emittedReasons();
    expect(emitted.length).toBeGreaterThan(50);
    const listed = new Set(REGISTRY.map((r) => r.reason));
    const missing = emitted.filter((e) => !listed.has(e.reason)).map((e) => `${e.reason} at ${e.where}`);
    expect.soft(missing, "reasons the source emits that docs/reasons.md does not list").toEqual([]);
    const disagreeing = emitted
      .filter((e) => e.error !== undefined && e.status !== undefined)
      .filter(
        (e) => !REGISTRY.some((r) => r.reason === e.reason && r.error === e.error && r.status === e.status),
      )
      .map((e) => `${e.reason}: ${e.error} ${e.status} at ${e.where}`);
    expect.soft(disagreeing, "source refusals whose error or status no table row has").toEqual([]);
  });

  it("has a scenario for every row, or says why no request can reach it", () => {
    const scenarioKeys = SCENARIOS.map((s) => keyOf(rowFor(s)));
    expect(
      scenarioKeys.filter((k, i) => scenarioKeys.indexOf(k) !== i),
      "rows with two scenarios",
    ).toEqual([]);
    const covered = new Set(scenarioKeys);
    const rows = new Set(REGISTRY.map(keyOf));
    for (const k of Object.keys(CANNOT_PROVOKE)) {
      expect(rows.has(k), `${k} is in CANNOT_PROVOKE but not a table row`).toBe(true);
      expect(covered.has(k), `${k} has a scenario and is in CANNOT_PROVOKE`).toBe(false);
    }
    const uncovered = REGISTRY.map(keyOf).filter((k) => !covered.has(k) && !(k in CANNOT_PROVOKE));
    expect(uncovered, "table rows with no scenario").toEqual([]);
  });
});

describe("each reason over HTTP", () => {
  it.each(
    SCENARIOS.map(
      (s) => [s.error === undefined ? s.reason : keyOf({ reason: s.reason, error: s.error }), s] as const,
    ),
  )("%s", async (_, scenario) => {
    const row = rowFor(scenario);
    const r = await scenario.run();
    const body = (await r.json()) as Record<string, unknown>;
    expect({ status: r.status, error: body.error, reason: body.reason }, JSON.stringify(body)).toEqual({
      status: row.status,
      error: row.error,
      reason: row.reason,
    });
    if (row.status === 429) expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    if (row.error === "use_dpop_nonce") expect(r.headers.get("dpop-nonce")).toMatch(/^[\w-]{20,}$/);
  });
});

// --- the approvals API and the admin API ---------------------------------------------------------

const codeKey = (r: { code: string; status: number }) => `${r.code} ${r.status}`;

/**
 * Client-authentication codes the approvals API cannot answer: it builds the assertion form itself
 * (`client_assertion_type` always jwt-bearer, no `client_id`, no Basic header, and its bearer
 * pattern needs at least one character).
 */
const APPROVER_UNREACHABLE: Readonly<Record<string, string>> = {
  ERR_CLIENT_ASSERTION_MISSING: "the bearer pattern requires a token",
  ERR_CLIENT_ASSERTION_TYPE: "the API sets the jwt-bearer assertion type itself",
  ERR_CLIENT_ASSERTION_CLIENT_ID: "the API passes no client_id",
  ERR_CLIENT_SECRET_REFUSED: "the API passes no Basic authorization",
};

/**
 * The text of one of approvals.ts's module functions (`[async] function name(` up to the closing
 * brace at the start of a line): its comments hold apostrophes, which callArguments would read as
 * strings.
 */
function approvalsFunction(name: string): string {
  const text = readFileSync(join(BROKER_SRC, "approvals.ts"), "utf8");
  const start = text.search(new RegExp(`\\n(async )?function ${name}\\(`));
  const end = text.indexOf("\n}\n", start + 1);
  if (start < 0 || end < 0) throw new Error(`approvals.ts: no function ${name}`);
  return text.slice(start, end);
}

/** The ERR_APPROVAL_* codes `ApprovalService.decide` can throw (what both APIs pass through). */
function decideCodes(): string[] {
  const text = readFileSync(join(BROKER_SRC, "approvals.ts"), "utf8");
  // decide, the checks it runs under the row's lock, and the judging of the approver
  const body = ["decide", "decideLocked", "judge"].map(approvalsFunction).join("\n");
  const codes = new Set([...body.matchAll(/\bERR_APPROVAL_[A-Z_]+\b/g)].map((m) => m[0]));
  if (/\bnotFound\(/.test(body)) codes.add("ERR_APPROVAL_NOT_FOUND");
  if (/\bexpiredError\(/.test(body)) codes.add("ERR_APPROVAL_EXPIRED");
  if (/\bclosedError\(/.test(body)) codes.add("ERR_APPROVAL_CLOSED");
  if (/\binvalid\(/.test(text)) codes.add("ERR_APPROVAL_INVALID");
  // requestPolicy refusals reach decide through its catch
  codes.add("ERR_APPROVAL_NO_POLICY");
  return [...codes];
}

/** Every (code, status) the approvals API's source can answer with. */
function approvalsApiEmissions(): { code: string; status?: number; where: string }[] {
  const file = "approvals-api.ts";
  const text = readFileSync(join(BROKER_SRC, file), "utf8");
  const out: { code: string; status?: number; where: string }[] = [];
  for (const m of text.matchAll(/\brefused\(\s*(\d{3}),\s*"(ERR_[A-Z0-9_]+)"/g)) {
    out.push({ code: m[2]!, status: Number(m[1]), where: `${file}:${lineAt(text, m.index)}` });
  }
  const table = /const STATUS[^{]*\{([^}]*)\}/.exec(text)?.[1] ?? "";
  for (const m of table.matchAll(/(ERR_[A-Z0-9_]+):\s*(\d{3})/g)) {
    out.push({ code: m[1]!, status: Number(m[2]), where: `${file} STATUS` });
  }
  if (/\bcheckClient\(/.test(text) && /refused\(401, who\.code/.test(text)) {
    for (const code of Object.keys(CLIENT_AUTH_ERRORS)) {
      if (!(code in APPROVER_UNREACHABLE)) out.push({ code, status: 401, where: `${file} (approver JWT)` });
    }
  }
  return out;
}

/** Every code the admin API's source can answer with (its status comes from `statusOf`). */
function adminApiEmissions(): { code: string; where: string }[] {
  const out: { code: string; where: string }[] = [];
  for (const file of ["admin-api.ts", "operator.ts", "kill.ts"]) {
    const text = readFileSync(join(BROKER_SRC, file), "utf8");
    for (const m of text.matchAll(/\bproblem\(\{[^}]*?\bcode: "(ERR_[A-Z0-9_]+)"/g))
      out.push({ code: m[1]!, where: `${file}:${lineAt(text, m.index)}` });
    for (const m of text.matchAll(/export const (ERR_(?:KILL|OPERATOR)_[A-Z0-9_]+)/g))
      out.push({ code: m[1]!, where: file });
  }
  for (const code of decideCodes()) out.push({ code, where: "approvals.ts decide" });
  return out;
}

const APPROVALS_URL = () => `${base}/approvals`;

const approverJwt = (who: string, opts: AssertionOptions = {}) => approverJwtAt(base, who, opts);

/** A call to the approvals API as `who` (a JWT, or an approver name). */
async function approvalsCall(
  path: string,
  bearer: string | undefined,
  body?: unknown,
  method: "GET" | "POST" = body === undefined && !path.includes("/a") ? "GET" : "POST",
): Promise<Response> {
  return fetch(`${APPROVALS_URL()}${path}`, {
    method,
    headers: {
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

const approveAs = async (id: string, who: string, body?: unknown) =>
  approvalsCall(`/${id}/approve`, await approverJwt(who), body, "POST");
const denyAs = async (id: string, who: string, body?: unknown) =>
  approvalsCall(`/${id}/deny`, await approverJwt(who), body, "POST");

/** A request for deploy in dev, where no policy asks approval (made behind the broker). */
async function policyLessRequest(): Promise<string> {
  const r = await approvalService(server.store).createRequest({
    agent: "release-bot",
    playbook: "deploy",
    params: { service: "checkout" },
    environment: "dev",
    requester: "release-bot",
    expiresAt: new Date(Date.now() + 600_000),
  });
  return r.id;
}

/** A pending request for deploy in prod that `sponsor` asked for (CIBA `login_hint`). */
async function sponsoredRequest(sponsor: string): Promise<string> {
  const r = await bcAuthorize("release-bot", "prod", {
    authorization_details: details(deploy()),
    login_hint: sponsor,
  });
  return ((await r.json()) as { auth_req_id: string }).auth_req_id;
}

async function expiredRequest(): Promise<string> {
  const id = await approvalRequest();
  await editApproval(id, { created_at: ago(2000), expires_at: ago(1000) });
  return id;
}

/** Approver JWTs that fail one check each. */
const BAD_APPROVER_JWTS: Readonly<Record<string, () => Promise<string>>> = {
  MALFORMED: async () => "not-a-jws",
  TYP: async () => approverJwt("bob", { header: { typ: "at+jwt" } }),
  ALG: async () =>
    approverJwt("bob", {
      header: { alg: "HS256", kid: undefined },
      key: new TextEncoder().encode("a shared secret is never enough, however long it is"),
    }),
  ISSUER: async () => approverJwt("bob", { claims: { iss: "carol@acme.example" } }),
  UNKNOWN_CLIENT: async () =>
    approverJwt("bob", { claims: { iss: "mallory@evil.example", sub: "mallory@evil.example" } }),
  SIGNATURE: async () => approverJwt("bob", { key: (await quickstartKey("approver-carol")).key }),
  AUDIENCE: async () => approverJwt("bob", { claims: { aud: issuer("prod") } }),
  EXPIRED: async () => approverJwt("bob", { claims: { iat: nowS() - 900, exp: nowS() - 600 } }),
  LIFETIME: async () => approverJwt("bob", { claims: { exp: nowS() + 3600 } }),
  NOT_YET_VALID: async () => approverJwt("bob", { claims: { iat: nowS() + 120 } }),
};

interface CodeScenario {
  readonly code: string;
  readonly status: number;
  readonly run: () => Promise<Response>;
}

const APPROVALS_SCENARIOS: CodeScenario[] = [
  { code: "ERR_APPROVER_UNAUTHENTICATED", status: 401, run: () => approvalsCall("", undefined) },
  ...Object.entries(BAD_APPROVER_JWTS).map(
    ([suffix, jwt]): CodeScenario => ({
      code: `ERR_CLIENT_ASSERTION_${suffix}`,
      status: 401,
      run: async () => approvalsCall("", await jwt()),
    }),
  ),
  {
    code: "ERR_CLIENT_ASSERTION_REPLAY",
    status: 401,
    run: async () => {
      const jwt = await approverJwt("bob");
      expect((await approvalsCall("", jwt)).status).toBe(200);
      return approvalsCall("", jwt);
    },
  },
  {
    code: "ERR_APPROVAL_INVALID",
    status: 400,
    run: async () => denyAs(await approvalRequest(), "bob"),
  },
  {
    code: "ERR_APPROVAL_INVALID",
    status: 413,
    run: async () => approveAs(await approvalRequest(), "bob", { reason: "x".repeat(5000) }),
  },
  {
    code: "ERR_APPROVAL_SELF",
    status: 403,
    run: async () => approveAs(await sponsoredRequest("carol@acme.example"), "carol"),
  },
  {
    code: "ERR_APPROVAL_NOT_APPROVER",
    status: 403,
    run: async () => approveAs(await approvalRequest(), "dan"),
  },
  { code: "ERR_APPROVAL_NOT_FOUND", status: 404, run: () => approveAs("ar_no-such-request", "bob") },
  {
    code: "ERR_APPROVAL_CLOSED",
    status: 409,
    run: async () => {
      const id = await approvalRequest();
      expect((await denyAs(id, "bob", { reason: "not now" })).status).toBe(200);
      return approveAs(id, "carol");
    },
  },
  {
    code: "ERR_APPROVAL_DUPLICATE",
    status: 409,
    run: async () => {
      const id = await approvalRequest({ playbook: "twice" });
      expect((await approveAs(id, "bob")).status).toBe(200);
      return approveAs(id, "bob");
    },
  },
  {
    code: "ERR_APPROVAL_NO_POLICY",
    status: 409,
    run: async () => approveAs(await policyLessRequest(), "bob"),
  },
  { code: "ERR_APPROVAL_EXPIRED", status: 410, run: async () => approveAs(await expiredRequest(), "bob") },
];

/** A call to the admin API with this server's token (or `token`; null: none). */
function admin(path: string, body?: unknown, token: string | null = server.adminToken): Promise<Response> {
  return fetch(`${base}/admin/v1${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

const adminDecide = (id: string, approver: string, decision: "approve" | "deny", reason?: string) =>
  admin(`/approvals/${id}/decision`, { approver, decision, ...(reason === undefined ? {} : { reason }) });

const ADMIN_SCENARIOS: CodeScenario[] = [
  { code: "ERR_ADMIN_TOKEN", status: 401, run: () => admin("/kill", undefined, null) },
  { code: "ERR_OPERATOR_INPUT", status: 400, run: () => admin("/kill", "{not json") },
  { code: "ERR_OPERATOR_INPUT", status: 413, run: () => admin("/kill", "x".repeat(65 * 1024)) },
  {
    code: "ERR_KILL_SCOPE",
    status: 400,
    run: () => admin("/kill", { scope: { kind: "agent", agent: "nobody" }, by: "reasons-test" }),
  },
  {
    code: "ERR_KILL_NOT_ENGAGED",
    status: 409,
    run: () => admin("/kill/lift", { scope: { kind: "agent", agent: "release-bot" }, by: "reasons-test" }),
  },
  {
    code: "ERR_APPROVAL_INVALID",
    status: 400,
    run: async () => adminDecide(await approvalRequest(), "bob@acme.example", "deny"),
  },
  {
    code: "ERR_APPROVAL_NOT_FOUND",
    status: 404,
    run: () => adminDecide("ar_nothing", "bob@acme.example", "approve"),
  },
  {
    code: "ERR_APPROVAL_EXPIRED",
    status: 409,
    run: async () => adminDecide(await expiredRequest(), "bob@acme.example", "approve"),
  },
  {
    code: "ERR_APPROVAL_CLOSED",
    status: 409,
    run: async () => {
      const id = await approvalRequest();
      expect((await adminDecide(id, "bob@acme.example", "deny", "no")).status).toBe(200);
      return adminDecide(id, "carol@acme.example", "approve");
    },
  },
  {
    code: "ERR_APPROVAL_SELF",
    status: 409,
    run: async () => adminDecide(await sponsoredRequest("bob@acme.example"), "bob@acme.example", "approve"),
  },
  {
    code: "ERR_APPROVAL_NOT_APPROVER",
    status: 409,
    run: async () => adminDecide(await approvalRequest(), "dan@acme.example", "approve"),
  },
  {
    code: "ERR_APPROVAL_DUPLICATE",
    status: 409,
    run: async () => {
      const id = await approvalRequest({ playbook: "twice" });
      expect((await adminDecide(id, "bob@acme.example", "approve")).status).toBe(200);
      return adminDecide(id, "bob@acme.example", "approve");
    },
  },
  {
    code: "ERR_APPROVAL_NO_POLICY",
    status: 409,
    run: async () => adminDecide(await policyLessRequest(), "bob@acme.example", "approve"),
  },
];

const ADMIN_CANNOT_PROVOKE: Readonly<Record<string, string>> = {
  "ERR_ADMIN_FAILED 500":
    "only when an operation fails inside the server (the store down): no request can cause it",
  "ERR_VALUE_UNSTORABLE 400":
    "the admin API checks every string before the store sees it; this is the store's safeguard behind that",
};

describe.each([
  ["approvals API", APPROVALS_CODES, APPROVALS_SCENARIOS, {} as Record<string, string>],
  ["admin API", ADMIN_CODES, ADMIN_SCENARIOS, ADMIN_CANNOT_PROVOKE],
] as const)("the %s codes", (name, table, scenarios, cannot) => {
  it("parse, each row once, and the source answers with nothing the table lacks", () => {
    const keys = table.map(codeKey);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
    const listed = new Set(table.map((r) => r.code));
    if (name === "approvals API") {
      const emitted = approvalsApiEmissions();
      expect(emitted.length).toBeGreaterThan(15);
      const missing = emitted
        .filter(
          (e) => !table.some((r) => r.code === e.code && (e.status === undefined || r.status === e.status)),
        )
        .map((e) => `${e.code} ${e.status ?? ""} at ${e.where}`);
      expect(missing, "codes the approvals API can answer that docs/reasons.md does not list").toEqual([]);
    } else {
      const emitted = adminApiEmissions();
      expect(emitted.length).toBeGreaterThan(8);
      const missing = emitted.filter((e) => !listed.has(e.code)).map((e) => `${e.code} at ${e.where}`);
      expect(missing, "codes the admin API can answer that docs/reasons.md does not list").toEqual([]);
    }
  });

  it("has a scenario for every row, or says why no request can reach it", () => {
    const covered = scenarios.map(codeKey);
    expect(
      covered.filter((k, i) => covered.indexOf(k) !== i),
      "rows with two scenarios",
    ).toEqual([]);
    for (const k of Object.keys(cannot)) expect(table.map(codeKey)).toContain(k);
    const uncovered = table.map(codeKey).filter((k) => !covered.includes(k) && !(k in cannot));
    expect(uncovered, "table rows with no scenario").toEqual([]);
    for (const k of covered) expect(table.map(codeKey), `scenario ${k} has no row`).toContain(k);
  });

  it.each(scenarios.map((s) => [codeKey(s), s] as const))("%s over HTTP", async (_, s) => {
    const r = await s.run();
    const body = (await r.json()) as { code?: string; status?: number };
    expect({ status: r.status, code: body.code }, JSON.stringify(body)).toEqual({
      status: s.status,
      code: s.code,
    });
    expect(r.headers.get("content-type")).toContain("application/problem+json");
  });
});
