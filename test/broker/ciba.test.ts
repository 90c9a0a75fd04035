/**
 * Approvals over OpenID CIBA, poll mode, with openid-client as the agent: the agent asks at the
 * backchannel authentication endpoint, approvers decide, the agent polls the token endpoint and
 * gets its writ — with the sponsor as `sub` and the agent as `act`. A copy of the quickstart whose
 * `deploy-service` also needs one SRE in dev (dev has no change window, so the test runs any day).
 */

import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Policy, Server } from "../../src/app.js";
import { approvalService } from "../../src/broker/index.js";
import { approverJwt } from "./kit.js";
import { agentClient, type Live, quickstartWithDevApproval, startLive } from "./live.js";

const RESOURCE = "https://k8s.acme.example";
let dir: string;
let policy: Policy;
let live: Live;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-ciba-"));
  policy = await quickstartWithDevApproval(dir);
  live = await startLive(policy, join(dir, "data"), { stateCache: false });
  ({ server, base } = live);
}, 60_000);

afterAll(async () => {
  await live.stop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await server.store.db.deleteFrom("denial_counters").execute();
});

const agent = (name = "release-bot") => agentClient(base, "dev", name);

const deployIntent = (service = "checkout") =>
  JSON.stringify([
    {
      type: "writ_playbook",
      playbook: "deploy-service",
      parameters: { service, tag: "v2.0.0" },
      ticket: "CHG-7",
    },
  ]);

const decide = (id: string, approver: string, decision: "approve" | "deny", reason?: string) =>
  approvalService(server.store).decide(id, { approver, decision, reason }, { config: policy.config });

describe("CIBA poll mode with openid-client", () => {
  it("advertises the backchannel endpoint", async () => {
    const { config } = await agent();
    expect(config.serverMetadata().backchannel_authentication_endpoint).toBe(`${base}/env/dev/bc-authorize`);
    expect(config.serverMetadata().grant_types_supported).toContain("urn:openid:params:grant-type:ciba");
  });

  it("the token exchange points a playbook that needs approval at CIBA", async () => {
    const { config, DPoP } = await agent();
    const baseline = await client.clientCredentialsGrant(config, {}, { DPoP });
    const err = await client
      .genericGrantRequest(
        config,
        "urn:ietf:params:oauth:grant-type:token-exchange",
        {
          subject_token: baseline.access_token,
          subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
          resource: RESOURCE,
          authorization_details: deployIntent(),
        },
        { DPoP },
      )
      .catch((e) => e);
    expect(err.cause?.reason).toBe("approval_required");
  });

  it("pending, then approved by an SRE: the writ names the sponsor as sub and the agent as act", async () => {
    const { config, DPoP } = await agent();
    const started = await client.initiateBackchannelAuthentication(config, {
      login_hint: "erin@acme.example",
      resource: RESOURCE,
      authorization_details: deployIntent(),
    });
    expect(started.auth_req_id).toMatch(/^ar_/);
    expect(started.interval).toBe(5);
    // the agent itself cannot approve, nor can the owner of the agent (alice, an SRE)
    await expect(decide(started.auth_req_id, "alice@acme.example", "approve")).rejects.toMatchObject({
      code: "ERR_APPROVAL_SELF",
    });
    await expect(decide(started.auth_req_id, "carol@acme.example", "approve")).rejects.toMatchObject({
      code: "ERR_APPROVAL_NOT_APPROVER",
    });
    setTimeout(() => void decide(started.auth_req_id, "bob@acme.example", "approve"), 1000);
    const writ = await client.pollBackchannelAuthenticationGrant(
      config,
      started,
      { resource: RESOURCE },
      { DPoP },
    );
    expect(writ.token_type.toLowerCase()).toBe("dpop");
    const claims = JSON.parse(
      Buffer.from(writ.access_token.split(".")[1]!, "base64url").toString(),
    ) as Record<string, unknown>;
    expect(claims).toMatchObject({
      sub: "erin@acme.example",
      act: { sub: "release-bot" },
      client_id: "release-bot",
    });
    const approval = await approvalService(server.store).get(started.auth_req_id);
    expect(approval?.status).toBe("consumed");
    expect(approval?.writId).toBe(claims.writ);
  }, 30_000);

  it("a denied request ends with access_denied", async () => {
    const { config, DPoP } = await agent();
    const started = await client.initiateBackchannelAuthentication(config, {
      resource: RESOURCE,
      authorization_details: deployIntent("search"),
    });
    await decide(started.auth_req_id, "bob@acme.example", "deny", "not during the sale");
    const err = await client
      .pollBackchannelAuthenticationGrant(config, started, { resource: RESOURCE }, { DPoP })
      .catch((e) => e);
    expect(err.error).toBe("access_denied");
    expect(err.cause?.reason).toBe("approval_denied");
  }, 30_000);

  it("polling too fast is told to slow down", async () => {
    const { config, DPoP } = await agent();
    const started = await client.initiateBackchannelAuthentication(config, {
      resource: RESOURCE,
      authorization_details: deployIntent("payments"),
    });
    const poll = () =>
      client
        .genericGrantRequest(
          config,
          "urn:openid:params:grant-type:ciba",
          { auth_req_id: started.auth_req_id, resource: RESOURCE },
          { DPoP },
        )
        .catch((e) => e);
    const first = await poll();
    expect(first.error).toBe("authorization_pending");
    const second = await poll();
    expect(second.error).toBe("slow_down");
  });

  it("a playbook that needs no approval is sent back to token exchange", async () => {
    const { config } = await agent("ops-assistant");
    const err = await client
      .initiateBackchannelAuthentication(config, {
        resource: RESOURCE,
        authorization_details: JSON.stringify([
          { type: "writ_playbook", playbook: "restart-pods", parameters: { service: "search" } },
        ]),
      })
      .catch((e) => e);
    expect(err.cause?.reason).toBe("approval_not_needed");
  });

  it("approvers decide over HTTP, signing in with their registered keys", async () => {
    const { config, DPoP } = await agent();
    const started = await client.initiateBackchannelAuthentication(config, {
      resource: RESOURCE,
      authorization_details: deployIntent("search"),
    });
    const url = `${base}/approvals/${started.auth_req_id}`;
    const as = (who: string, jti = randomUUID()) => approverJwt(base, who, { claims: { jti } });
    const post = (path: string, token: string | undefined, body?: unknown) =>
      fetch(`${url}/${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    expect((await post("approve", undefined)).status).toBe(401);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("bob@acme.example")
      .setSubject("bob@acme.example")
      .setAudience(`${base}/approvals`)
      .setExpirationTime("1m")
      .setJti(randomUUID())
      .sign(new TextEncoder().encode("a shared secret is never enough"));
    expect((await post("approve", forged)).status).toBe(401);
    const self = await post("approve", await as("alice"));
    expect(self.status).toBe(403);
    expect(((await self.json()) as { code: string }).code).toBe("ERR_APPROVAL_SELF");
    const stranger = await post("approve", await as("carol"));
    expect(((await stranger.json()) as { code: string }).code).toBe("ERR_APPROVAL_NOT_APPROVER");

    const list = await fetch(`${base}/approvals?env=dev`, {
      headers: { authorization: `Bearer ${await as("bob")}` },
    });
    const pending = ((await list.json()) as { approvals: { id: string; missing?: string }[] }).approvals;
    expect(pending.find((a) => a.id === started.auth_req_id)?.missing).toBeDefined();

    const token = await as("bob");
    const ok = await post("approve", token, { reason: "search deploy reviewed" });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { status: string }).status).toBe("approved");
    const replayed = await post("approve", token);
    expect(replayed.status).toBe(401);
    expect(((await replayed.json()) as { code: string }).code).toBe("ERR_CLIENT_ASSERTION_REPLAY");

    const writ = await client.pollBackchannelAuthenticationGrant(
      config,
      started,
      { resource: RESOURCE },
      { DPoP },
    );
    expect(writ.access_token).toBeTruthy();
  }, 30_000);
  it("fixes the audience at bc-authorize, shows it to approvers, and refuses another at poll", async () => {
    const { config, DPoP } = await agent();
    const started = await client.initiateBackchannelAuthentication(config, {
      resource: RESOURCE,
      authorization_details: deployIntent("checkout"),
    });
    const bob = () => approverJwt(base, "bob");
    const shown = await fetch(`${base}/approvals/${started.auth_req_id}`, {
      headers: { authorization: `Bearer ${await bob()}` },
    });
    expect(((await shown.json()) as { audience?: string }).audience).toBe(RESOURCE);
    await decide(started.auth_req_id, "bob@acme.example", "approve");
    const other = await client
      .genericGrantRequest(
        config,
        "urn:openid:params:grant-type:ciba",
        { auth_req_id: started.auth_req_id, resource: "https://elsewhere.acme.example" },
        { DPoP },
      )
      .catch((e) => e);
    expect(other.error).toBe("invalid_target");
    expect(other.cause?.reason).toBe("resource_mismatch");
    // without `resource` at poll, the writ names the audience that was approved
    const writ = await client.genericGrantRequest(
      config,
      "urn:openid:params:grant-type:ciba",
      { auth_req_id: started.auth_req_id },
      { DPoP },
    );
    const claims = JSON.parse(Buffer.from(writ.access_token.split(".")[1]!, "base64url").toString()) as {
      aud: string;
    };
    expect(claims.aud).toBe(RESOURCE);
  }, 30_000);

  it("refuses an audience writ.yaml does not allow, and a sponsor declared nowhere", async () => {
    const { config } = await agent();
    const elsewhere = await client
      .initiateBackchannelAuthentication(config, {
        resource: "https://attacker.example",
        authorization_details: deployIntent("checkout"),
      })
      .catch((e) => e);
    expect(elsewhere.error).toBe("invalid_target");
    expect(elsewhere.cause?.reason).toBe("resource_not_allowed");
    await server.store.db.deleteFrom("denial_counters").execute();
    const stranger = await client
      .initiateBackchannelAuthentication(config, {
        login_hint: "mallory@evil.example",
        resource: RESOURCE,
        authorization_details: deployIntent("checkout"),
      })
      .catch((e) => e);
    expect(stranger.error).toBe("unknown_user_id");
    expect(stranger.cause?.reason).toBe("sponsor_unknown");
  });
});
