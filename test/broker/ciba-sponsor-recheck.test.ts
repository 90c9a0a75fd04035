/**
 * The CIBA poll checks the sponsor again at issuance: a request approved under one writ.yaml, whose
 * sponsor the writ.yaml the server runs now no longer declares, gets no writ naming that sponsor.
 * The quickstart with `deploy-service` approved by one SRE in dev; erin is declared as the owner of
 * an agent, then not (the server restarts on the same store with the edited writ.yaml).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Policy, type Server } from "../../src/app.js";
import { approvalService } from "../../src/broker/index.js";
import { ROOT } from "../support/cli.js";
import { exchangeClient } from "./exchange-client.js";

const BASE = "http://127.0.0.1:8080";
const RESOURCE = "https://k8s.acme.example";
const CIBA = "urn:openid:params:grant-type:ciba";
const intent = JSON.stringify([
  {
    type: "writ_playbook",
    playbook: "deploy-service",
    parameters: { service: "checkout", tag: "v2.0.0" },
    ticket: "CHG-7",
  },
]);

let dir = "";
const servers: Server[] = [];

async function policy(name: string, edit: (text: string) => string): Promise<Policy> {
  await cp(join(ROOT, "examples", "quickstart"), join(dir, name), { recursive: true });
  const file = join(dir, name, "writ.yaml");
  const text = await readFile(file, "utf8");
  const withDevApproval = text.replace(
    "    approval:\n      prod:\n        allOf:",
    "    approval:\n      dev: { group: sre, count: 1 }\n      prod:\n        allOf:",
  );
  expect(withDevApproval).not.toBe(text);
  const edited = edit(withDevApproval);
  await writeFile(file, edited);
  const loaded = await loadPolicy(file);
  expect(loaded.problems.filter((p) => p.severity === "error")).toEqual([]);
  return loaded.policy!;
}

async function start(p: Policy): Promise<Server> {
  const server = await createServer({
    policy: p,
    dataDir: join(dir, "data"),
    baseUrl: BASE,
    version: "test",
  });
  servers.push(server);
  return server;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-ciba-sponsor-"));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the CIBA poll re-checks the sponsor", () => {
  for (const [what, edit, expected] of [
    ["writ.yaml unchanged: the writ names erin", (t: string) => t, undefined],
    [
      "erin no longer declared: sponsor_unknown, and no writ",
      (t: string) => t.replace("owner: erin@acme.example", "owner: frank@acme.example"),
      "sponsor_unknown",
    ],
  ] as const) {
    it(what, async () => {
      const before = await policy("before", (t) => t);
      const after = await policy("after", edit);
      let current = await start(before);
      const agent = await exchangeClient(BASE, (url, init) => current.app.request(url, init));

      const asked = await agent.post(
        { login_hint: "erin@acme.example", resource: RESOURCE, authorization_details: intent },
        "bc-authorize",
      );
      expect(asked.status, JSON.stringify(asked.body)).toBe(200);
      const id = asked.body.auth_req_id as string;
      await approvalService(current.store).decide(
        id,
        { approver: "bob@acme.example", decision: "approve" },
        { config: before.config },
      );

      // the server restarts on the same store, under the writ.yaml of the case
      await current.close();
      servers.splice(servers.indexOf(current), 1);
      current = await start(after);

      const polled = await agent.post({ grant_type: CIBA, auth_req_id: id, resource: RESOURCE });
      if (expected === undefined) {
        expect(polled.status, JSON.stringify(polled.body)).toBe(200);
        const claims = JSON.parse(
          Buffer.from((polled.body.access_token as string).split(".")[1]!, "base64url").toString(),
        ) as Record<string, unknown>;
        expect(claims).toMatchObject({ sub: "erin@acme.example", act: { sub: "release-bot" } });
      } else {
        expect(polled.status).toBe(400);
        expect(polled.body).toMatchObject({ error: "unknown_user_id", reason: expected });
        expect(await current.store.db.selectFrom("writs").select("id").execute()).toEqual([]);
        const approval = await approvalService(current.store).get(id);
        expect(approval?.status).not.toBe("consumed");
      }
    }, 60_000);
  }
});
