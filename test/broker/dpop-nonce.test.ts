/**
 * DPoP server nonces switched on (`writ serve --require-dpop-nonce`): a proof without a nonce is
 * refused with `use_dpop_nonce` and a `DPoP-Nonce` header; openid-client retries with it and gets
 * its baseline token and its writ; a made-up nonce is refused; every answer hands out the nonce.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, generateProof } from "dpop";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { agentClient, type Live, QUICKSTART, quickstartKey, requestWrit, startLive } from "./live.js";

let dir: string;
let live: Live;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-dpop-nonce-"));
  const { policy } = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  live = await startLive(policy!, dir, { dpopNonce: "require" });
}, 60_000);

afterAll(async () => {
  await live.stop();
  await rm(dir, { recursive: true, force: true });
});

async function baselineRequest(nonce?: string) {
  const issuer = `${live.base}/env/dev`;
  const { key, kid } = await quickstartKey("release-bot");
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", kid })
    .setIssuer("release-bot")
    .setSubject("release-bot")
    .setAudience(issuer)
    .setIssuedAt()
    .setExpirationTime("1m")
    .setJti(randomUUID())
    .sign(key);
  const dpopKey = await generateKeyPair("ES256");
  return fetch(`${issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      dpop: await generateProof(dpopKey, `${issuer}/token`, "POST", nonce),
    },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }),
  });
}

describe("DPoP server nonces required", () => {
  it("refuses a proof without a nonce, naming the one to use", async () => {
    const r = await baselineRequest();
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: "use_dpop_nonce", reason: "dpop_nonce" });
    const nonce = r.headers.get("dpop-nonce");
    expect(nonce).toMatch(/^[\w-]{20,}$/);
    const retried = await baselineRequest(nonce!);
    expect(retried.status).toBe(200);
    expect(retried.headers.get("dpop-nonce")).toBe(nonce);
  });

  it("refuses a made-up nonce", async () => {
    const r = await baselineRequest("A".repeat(43));
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: "use_dpop_nonce" });
  });

  it("openid-client follows the nonce on its own: baseline token, then a writ", async () => {
    const c = await agentClient(live.base, "dev");
    const writ = await requestWrit(c, {
      playbook: "deploy-service",
      parameters: { service: "checkout", tag: "v1.4.2" },
      environment: "dev",
      ticket: "CHG-1234",
    });
    expect(writ.writ_id).toMatch(/^writ_/);
  });
});
