/**
 * Signing in. Operators give the admin token (the secret in `<data>/serve.json`, the same one the
 * admin API takes) and a name for the records. Approvers prove they hold a key registered for them
 * under `approvers` in writ.yaml: their browser signs a JWT whose `jti` is the challenge this
 * server put in the form (`aud` = `<base>/console/login`), checked by the same code as an agent's
 * private_key_jwt; the private key never leaves the browser.
 */
import {
  approverPrincipals,
  ClientRefused,
  checkClient,
  JWT_BEARER_ASSERTION_TYPE,
} from "../broker/index.js";
import { q } from "../core/index.js";
import type { ConsoleDeps } from "./deps.js";
import { consoleError, ERR_CONSOLE_AUTH, ERR_CONSOLE_INPUT } from "./errors.js";
import { type Html, h } from "./html.js";
import type { Form } from "./routes.js";
import { sameSecret } from "./session.js";

export function loginPage(challenge: string, deps: ConsoleDeps): Html {
  const approvers = [...(deps.config.approvers?.keys() ?? [])];
  return h`<div class="cards">
<section class="card" aria-labelledby="op-h">
<h2 id="op-h">Operator</h2>
<p>With the admin token of this server (<code>adminToken</code> in <code>&lt;data&gt;/serve.json</code>).</p>
<form method="post" action="/console/login/operator">
<input type="hidden" name="challenge" value="${challenge}">
<label for="op-name">Your name (for the records)</label>
<input id="op-name" name="name" required maxlength="200" autocomplete="username">
<label for="op-token">Admin token</label>
<input id="op-token" name="token" type="password" required autocomplete="current-password">
<button type="submit">Sign in as operator</button>
</form>
</section>
<section class="card" aria-labelledby="ap-h">
<h2 id="ap-h">Approver</h2>
<p>With the private key registered for you in writ.yaml. It stays in this browser: the page signs a
challenge with it and keeps it, not extractable, for signing your decisions.</p>
<form method="post" action="/console/login/approver" id="approver-login">
<input type="hidden" name="challenge" value="${challenge}">
<input type="hidden" name="assertion" value="">
<label for="ap-id">Approver</label>
<input id="ap-id" name="approver" required list="approver-ids" maxlength="200" autocomplete="username">
<datalist id="approver-ids">${approvers.map((a) => h`<option value="${a}">`)}</datalist>
<label for="ap-file">Private key (JWK file)</label>
<input id="ap-file" type="file" accept=".jwk,.json,application/json" data-jwk-file>
<label for="ap-jwk">…or paste the JWK</label>
<textarea id="ap-jwk" rows="4" data-jwk spellcheck="false"></textarea>
<p class="status" role="status" aria-live="polite"></p>
<button type="submit">Sign in as approver</button>
</form>
</section>
</div>`;
}

export async function loginOperator(form: Form, deps: ConsoleDeps): Promise<string> {
  const name = (form.get("name") ?? "").trim();
  if (name === "" || name.length > 200) {
    throw consoleError(
      ERR_CONSOLE_INPUT,
      "give your name (at most 200 characters): it goes into the records",
    );
  }
  if (!sameSecret(form.get("token") ?? "", deps.adminToken)) {
    throw consoleError(ERR_CONSOLE_AUTH, "that is not the admin token of this server");
  }
  return name;
}

export async function loginApprover(form: Form, deps: ConsoleDeps): Promise<string> {
  const assertion = form.get("assertion") ?? "";
  if (assertion === "") {
    throw consoleError(
      ERR_CONSOLE_AUTH,
      "no signed challenge: the page signs it with your key (JavaScript is needed)",
    );
  }
  const challenge = form.get("challenge")!;
  // a failing replay cache is thrown on: the server's failure, not a refused challenge
  const who = await checkClient(
    { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion },
    {
      config: approverPrincipals(deps.config),
      audiences: [`${deps.baseUrl()}/console/login`],
      replay: deps.replay,
      clock: deps.clock,
    },
  );
  if (who instanceof ClientRefused) {
    throw consoleError(ERR_CONSOLE_AUTH, `the signed challenge was refused (${who.code}): ${who.message}`);
  }
  if (who.jti !== challenge) {
    throw consoleError(ERR_CONSOLE_AUTH, "the signed challenge is not the one this form was given");
  }
  const claimed = (form.get("approver") ?? "").trim();
  if (claimed !== "" && claimed !== who.agent.id) {
    throw consoleError(ERR_CONSOLE_AUTH, `the key signed as ${q(who.agent.id)}, not ${q(claimed)}`);
  }
  return who.agent.id;
}
