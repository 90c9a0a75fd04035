#!/usr/bin/env node
// An agent's side of writ, end to end, with writ's agent SDK (`writ/client`, docs/client.md):
//   1. a client for one agent in one environment, signing in with private_key_jwt (its dev key)
//   2. its DPoP-bound baseline token (client_credentials)
//   3. ask the decision point whether it may do the work: with the baseline alone, no
//   4. ask for a writ for one playbook run (token exchange); if the playbook needs approval, the
//      client asks through CIBA and waits while approvers decide (`writ approve ID`)
//   5. ask the decision point again: the writ allows it; introspection shows the uses left
//
// Run `npm start` at the top of the repository first (it builds dist/, which `writ/client` is),
// then for example:
//   node examples/quickstart/agent.mjs --env dev --agent release-bot --playbook deploy-service \
//     --params '{"service":"checkout","tag":"v1.4.2"}' --ticket CHG-1234
// or, to watch an approval at any hour (dev has no change window), `--approval`: a writ for
// `deploy-candidate` in dev, which waits for one SRE (bob@acme.example) to approve it in the web
// console at the server's `/` or with `writ approve`.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createWritClient, isWritRefusal } from "writ/client";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: o } = parseArgs({
  options: {
    server: { type: "string", default: "http://127.0.0.1:8080" },
    env: { type: "string", default: "dev" },
    agent: { type: "string", default: "release-bot" },
    // the playbook needing approval in dev, with parameters for it (--playbook and --params win)
    approval: { type: "boolean", default: false },
    playbook: { type: "string" },
    params: { type: "string" },
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

const playbook = o.playbook ?? (o.approval ? "deploy-candidate" : "deploy-service");
const paramsText =
  o.params ??
  (o.approval ? '{"service":"checkout","tag":"v1.5.0-rc.1"}' : '{"service":"checkout","tag":"v1.4.2"}');
let params;
try {
  params = JSON.parse(paramsText);
} catch {
  fail(`--params must be a JSON object, got ${paramsText}`);
}
const server = o.server.replace(/\/+$/, "");

// 1. the client, with the agent's key (a DEVELOPMENT key published with the quickstart)
const issuer = `${server}/env/${o.env}`;
const client = createWritClient({
  issuer,
  agentId: o.agent,
  key: await readFile(join(HERE, "keys", `${o.agent}.DEVELOPMENT-ONLY.private.jwk`), "utf8"),
});
step(1, `issuer ${issuer}: sign in as ${o.agent} (private_key_jwt)`);

// 2. baseline token (the SDK gets it before every exchange; shown here for the walk-through)
let baseline;
try {
  baseline = await client.baselineToken();
} catch (err) {
  fail(`no baseline token: ${err.message}`);
}
const claims = JSON.parse(Buffer.from(baseline.split(".")[1], "base64url").toString());
step(2, `baseline token: DPoP-bound, ${claims.exp - claims.iat} s, scope ${claims.scope}`);

const decide = async () => {
  const res = await fetch(`${server}/access/v1/evaluation`, {
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

// 4. the writ; approvals, when the playbook needs them, are waited on with progress
let writ;
try {
  writ = await client.getWrit(
    {
      playbook,
      params,
      ...(o.ticket ? { ticket: o.ticket } : {}),
      resource: o.resource,
      ...(o.sponsor ? { sponsor: o.sponsor } : {}),
    },
    {
      onProgress: (e) => {
        if (e.kind === "approval_requested") {
          step(4, `${playbook} needs approval in ${o.env}: asked through CIBA`);
          console.log(`   waiting for approvers (request ${e.authReqId}, expires in ${e.expiresIn} s)`);
          console.log(`   approve in the console: ${server}/ (sign in as an approver, then Approvals)`);
          console.log(
            `            or: writ approve ${e.authReqId} --as <approver>   (reaches the running server)`,
          );
          console.log(
            `            or: POST ${server}/approvals/${e.authReqId}/approve with the approver's signed JWT`,
          );
        } else if (e.kind === "approved") {
          console.log(`   approved: request ${e.authReqId}`);
        } else if (e.kind === "retrying") {
          console.log(`   slowed down (${e.reason}): asking again in ${e.retryAfter} s`);
        }
      },
    },
  );
} catch (err) {
  fail(isWritRefusal(err) ? `writ refused: ${err.reason}: ${err.description}` : `no writ: ${err.message}`);
}
const details = writ.authorizationDetails[0] ?? {};
const seconds = Math.round((writ.expiresAt.getTime() - Date.now()) / 1000);
step(4, `writ ${writ.id}: ${seconds} s (bound: ${writ.ttlBound}), ${details.max_uses ?? "unlimited"} uses`);
for (const g of details.grants ?? []) console.log(`   grants ${g.action} on ${g.resource}`);

// 5. use it
const answer = await decide();
step(
  5,
  `with the writ, may ${o.agent} ${o.action} on ${o.target}? ${answer.decision ? "ALLOW" : "DENY"} (${answer.context?.reason_code})`,
);
const seen = await client.introspect(writ);
console.log(
  `   introspection: active ${seen.active}, uses ${seen.uses ?? 0} of ${seen.max_uses ?? "unlimited"}`,
);
process.exit(answer.decision ? 0 : 1);
