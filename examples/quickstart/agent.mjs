#!/usr/bin/env node
// An agent's side of writ, end to end, with openid-client (a real OAuth client, not writ code):
//   1. discover the environment's issuer and authenticate with private_key_jwt (its dev key)
//   2. get a DPoP-bound baseline token (client_credentials)
//   3. ask the decision point whether it may do the work: with the baseline alone, no
//   4. ask for a writ for one playbook run (token exchange); if the playbook needs approval,
//      ask through CIBA and wait while approvers decide (`writ approve ID` or POST /approvals/ID/approve)
//   5. ask the decision point again: the writ allows it; introspection shows the uses left
//
// Run `npm start` at the top of the repository first, then for example:
//   node examples/quickstart/agent.mjs --env dev --agent release-bot --playbook deploy-service \
//     --params '{"service":"checkout","tag":"v1.4.2"}' --ticket CHG-1234
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { importJWK } from "jose";
import * as client from "openid-client";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: o } = parseArgs({
  options: {
    server: { type: "string", default: "http://127.0.0.1:8080" },
    env: { type: "string", default: "dev" },
    agent: { type: "string", default: "release-bot" },
    playbook: { type: "string", default: "deploy-service" },
    params: { type: "string", default: '{"service":"checkout","tag":"v1.4.2"}' },
    ticket: { type: "string", default: "CHG-1234" },
    sponsor: { type: "string" },
    resource: { type: "string", default: "https://k8s.acme.example" },
    // what the agent wants to do with the writ (defaults fit the default playbook and parameters)
    action: { type: "string", default: "k8s:apps/deployments:patch" },
    target: { type: "string", default: "checkout/checkout" },
  },
});

const step = (n, text) => console.log(`\n${n}. ${text}`);
const fail = (text) => {
  console.error(`agent: ${text}`);
  process.exit(1);
};
const reasonOf = (err) => err?.cause?.reason ?? err?.error ?? err?.message;

let params;
try {
  params = JSON.parse(o.params);
} catch {
  fail(`--params must be a JSON object, got ${o.params}`);
}

// 1. discovery and the agent's key (a DEVELOPMENT key published with the quickstart)
const { _warning, ...jwk } = JSON.parse(
  await readFile(join(HERE, "keys", `${o.agent}.DEVELOPMENT-ONLY.private.jwk`), "utf8"),
);
const key = await importJWK(jwk, "EdDSA");
const issuer = new URL(`${o.server.replace(/\/+$/, "")}/env/${o.env}`);
step(1, `discover ${issuer.href} and sign in as ${o.agent} (private_key_jwt)`);
const config = await client.discovery(
  issuer,
  o.agent,
  undefined,
  client.PrivateKeyJwt({ key, kid: jwk.kid }),
  {
    algorithm: "oauth2",
    execute: issuer.protocol === "http:" ? [client.allowInsecureRequests] : [],
  },
);
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));

// 2. baseline token
const baseline = await client.clientCredentialsGrant(config, {}, { DPoP });
step(2, `baseline token: ${baseline.token_type}, ${baseline.expires_in} s, scope ${baseline.scope}`);

const decide = async () => {
  const res = await fetch(`${o.server.replace(/\/+$/, "")}/access/v1/evaluation`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      subject: { type: "agent", id: o.agent },
      action: { name: o.action },
      resource: { type: o.action.split(":")[0], id: o.target },
      context: { environment: o.env },
    }),
  });
  return res.json();
};

// 3. the baseline alone does not allow the work
const before = await decide();
step(
  3,
  `may ${o.agent} ${o.action} on ${o.target} now? ${before.decision ? "ALLOW" : "DENY"} (${before.context?.reason_code})`,
);

// 4. the writ
const intent = JSON.stringify([
  {
    type: "writ_playbook",
    playbook: o.playbook,
    parameters: params,
    ...(o.ticket ? { ticket: o.ticket } : {}),
  },
]);
let writ;
try {
  writ = await client.genericGrantRequest(
    config,
    "urn:ietf:params:oauth:grant-type:token-exchange",
    {
      subject_token: baseline.access_token,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      resource: o.resource,
      authorization_details: intent,
    },
    { DPoP },
  );
} catch (err) {
  if (reasonOf(err) !== "approval_required")
    fail(`writ refused: ${reasonOf(err)}: ${err.error_description ?? ""}`);
  step(4, `${o.playbook} needs approval in ${o.env}: asking through CIBA`);
  // the audience is fixed here and shown to the approvers; the poll cannot change it
  const started = await client.initiateBackchannelAuthentication(config, {
    authorization_details: intent,
    resource: o.resource,
    ...(o.sponsor ? { login_hint: o.sponsor } : {}),
  });
  console.log(
    `   waiting for approvers (request ${started.auth_req_id}, expires in ${started.expires_in} s)`,
  );
  console.log(
    `   approve with: writ approve ${started.auth_req_id} --as <approver>   (reaches the running server)`,
  );
  console.log(
    `            or: POST ${o.server}/approvals/${started.auth_req_id}/approve with the approver's signed JWT`,
  );
  try {
    writ = await client.pollBackchannelAuthenticationGrant(config, started, {}, { DPoP });
  } catch (e) {
    fail(`no writ: ${reasonOf(e)}`);
  }
}
const details = writ.authorization_details?.[0] ?? {};
step(
  4,
  `writ ${writ.writ_id}: ${writ.expires_in} s (bound: ${writ.ttl_bound}), ${details.max_uses ?? "unlimited"} uses`,
);
for (const g of details.grants ?? []) console.log(`   grants ${g.action} on ${g.resource}`);

// 5. use it
const answer = await decide();
step(
  5,
  `with the writ, may ${o.agent} ${o.action} on ${o.target}? ${answer.decision ? "ALLOW" : "DENY"} (${answer.context?.reason_code})`,
);
const seen = await client.tokenIntrospection(config, writ.access_token);
console.log(
  `   introspection: active ${seen.active}, uses ${seen.uses ?? 0} of ${seen.max_uses ?? "unlimited"}`,
);
process.exit(answer.decision ? 0 : 1);
