/**
 * A delegated writ at the gateway's door (docs/broker.md#delegation): the identity read from the
 * token carries the chain from its nested `act` and the parent writ as stored, the root agent is
 * not mistaken for a human sponsor, and the call's audit record names the chain.
 */
import { describe, expect, it } from "vitest";
import type { AccessTokenClaims } from "../../src/broker/tokens.js";
import type { WritConfig } from "../../src/core/index.js";
import type { GatewayIdentity } from "../../src/gateway/gateway.js";
import type { GatewayHttpOptions } from "../../src/gateway/http.js";
import { identityOf, Unauthorized } from "../../src/gateway/http-auth.js";
import type { StoredWrit } from "../../src/store/index.js";

const NOW = Date.parse("2026-12-07T06:00:00Z") / 1000;

function optionsWith(stored: Partial<StoredWrit>): GatewayHttpOptions {
  const config = {
    agents: new Map([
      ["helper-bot", { id: "helper-bot", environments: ["dev"] }],
      ["lead-bot", { id: "lead-bot", environments: ["dev"] }],
    ]),
  } as unknown as WritConfig;
  const writ = {
    id: "w-child",
    agent: "helper-bot",
    environment: "dev",
    status: "active",
    playbook: "work",
    grants: [],
    issuedAt: new Date(NOW * 1000),
    expiresAt: new Date((NOW + 300) * 1000),
    uses: 0,
    ...stored,
  } as unknown as StoredWrit;
  return {
    config,
    store: { writs: { get: async (id: string) => (id === writ.id ? writ : undefined) } },
  } as unknown as GatewayHttpOptions;
}

const claims = (over: Partial<AccessTokenClaims>): AccessTokenClaims => ({
  iss: "https://writ.example/env/dev",
  sub: "lead-bot",
  aud: "https://gw.example",
  exp: NOW + 300,
  iat: NOW,
  jti: "j",
  client_id: "helper-bot",
  writ: "w-child",
  ...over,
});

/** The identity, a refusal failing the test. */
async function identityOk(...args: Parameters<typeof identityOf>): Promise<GatewayIdentity> {
  const id = await identityOf(...args);
  if (id instanceof Unauthorized) throw new Error(`refused: ${id.reason}`);
  return id;
}

describe("a delegated writ's identity at the gateway", () => {
  it("carries the act chain and the parent writ; the root agent is not a sponsor", async () => {
    const id = await identityOk(
      optionsWith({ parent: "w-parent" }),
      claims({ act: { sub: "helper-bot", act: { sub: "lead-bot" } } }),
      "dev",
    );
    expect(id.agent).toBe("helper-bot");
    expect(id.delegation).toEqual({ chain: ["helper-bot", "lead-bot"], parent: "w-parent" });
    expect(id.sponsor).toBeUndefined();
  });

  it("keeps a human sponsor of the root writ as the sponsor", async () => {
    const id = await identityOk(
      optionsWith({ parent: "w-parent" }),
      claims({ sub: "alice@acme.example", act: { sub: "helper-bot", act: { sub: "lead-bot" } } }),
      "dev",
    );
    expect(id.sponsor).toBe("alice@acme.example");
    expect(id.delegation?.chain).toEqual(["helper-bot", "lead-bot"]);
  });

  it("an ordinary writ has no delegation, and its sponsor is the token's sub", async () => {
    const id = await identityOk(
      optionsWith({}),
      claims({ sub: "bob@acme.example", act: { sub: "helper-bot" } }),
      "dev",
    );
    expect(id.delegation).toBeUndefined();
    expect(id.sponsor).toBe("bob@acme.example");
  });

  it("returns its refusal: an agent the environment does not declare is 403 unknown_agent", async () => {
    const id = await identityOf(optionsWith({}), claims({ client_id: "nobody" }), "dev");
    expect(id).toBeInstanceOf(Unauthorized);
    expect(id).toMatchObject({ status: 403, error: "insufficient_scope", reason: "unknown_agent" });
  });
});
