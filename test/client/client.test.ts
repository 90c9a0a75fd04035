/**
 * writ/client against a live broker (the quickstart, with `deploy-service` needing one SRE in dev
 * so that approvals run any day, and server nonces required, so every first request is answered
 * `use_dpop_nonce`): writs issued, kept and reused, revoked; the broker's refusals as typed errors
 * with their reason and `retryAfter`; a 429 waited out; the CIBA wait with its progress; and
 * `fetchWithWrit` against a resource server that checks the writ and the proof with writ's own
 * DPoP checker, asking for a nonce of its own.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Policy } from "../../src/app.js";
import {
  approvalService,
  createNonceService,
  DpopNonceError,
  memoryReplayCache,
  verifyDpopProof,
} from "../../src/broker/index.js";
import {
  createWritClient,
  ERR_CLIENT_APPROVAL_TIMEOUT,
  ERR_CLIENT_KEY,
  ERR_CLIENT_OPTIONS,
  ERR_CLIENT_REFUSED,
  ERR_CLIENT_UNREACHABLE,
  isWritError,
  type WritClient,
  type WritProgress,
  WritRefusal,
} from "../../src/client/index.js";
import { type Live, QUICKSTART, quickstartWithDevApproval, startLive } from "../broker/live.js";

const K8S = "https://k8s.acme.example";
const PDP = "pdp-token-for-the-client-test";
let dir: string;
let policy: Policy;
let live: Live;
let keyText: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-client-"));
  policy = await quickstartWithDevApproval(dir);
  live = await startLive(policy, join(dir, "data"), {
    stateCache: false,
    dpopNonce: "require",
    pdpToken: PDP,
  });
  keyText = await readFile(join(QUICKSTART, "keys", "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8");
}, 60_000);

afterAll(async () => {
  await live?.stop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await live.server.store.db.deleteFrom("denial_counters").execute();
});

const bot = (extra: Partial<Parameters<typeof createWritClient>[0]> = {}): WritClient =>
  createWritClient({ issuer: `${live.base}/env/dev`, agentId: "release-bot", key: keyText, ...extra });

const rollback = (service = "checkout") => ({
  playbook: "rollback-service",
  params: { service },
  ticket: "CHG-1234",
  resource: K8S,
});

async function refusalOf(p: Promise<unknown>): Promise<WritRefusal> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WritRefusal);
  return err as WritRefusal;
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${live.base}/env/dev/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${PDP}` },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await res.json()) as Record<string, unknown>;
}

describe("getWrit", () => {
  it("issues a DPoP-bound writ for the playbook run, and hands it out again while it is fresh", async () => {
    const c = bot();
    const w = await c.getWrit(rollback());
    expect(w.id).toMatch(/^writ_/);
    expect(w.tokenType).toBe("DPoP");
    expect(w.ttlBound).toBe("playbook");
    expect(w.expiresAt.getTime() - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(w.authorizationDetails[0]).toMatchObject({
      type: "writ_playbook",
      playbook: "rollback-service",
      max_uses: 3,
    });
    const claims = JSON.parse(Buffer.from(w.accessToken.split(".")[1]!, "base64url").toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ aud: K8S, writ: w.id, act: { sub: "release-bot" } });
    expect((claims.cnf as { jkt: string }).jkt).toMatch(/^[\w-]{43}$/);
    // a writ logged or serialised does not carry its token
    expect(JSON.stringify(w)).not.toContain(w.accessToken);
    expect(inspect(w)).not.toContain(w.accessToken);
    // the same request: the same writ; parameters in another order are the same request
    expect((await c.getWrit(rollback())).id).toBe(w.id);
    // concurrent asks for one request share one exchange
    const [a, b] = await Promise.all([c.getWrit(rollback("search")), c.getWrit(rollback("search"))]);
    expect(a.id).toBe(b.id);
    expect(a.id).not.toBe(w.id);
    // reuse: false asks anew
    expect((await c.getWrit(rollback(), { reuse: false })).id).not.toBe(w.id);
    const rows = await live.server.store.db
      .selectFrom("writs")
      .select(["id", "agent", "playbook"])
      .where("id", "=", w.id)
      .execute();
    expect(rows).toEqual([{ id: w.id, agent: "release-bot", playbook: "rollback-service" }]);
  });

  it("does not reuse a writ within the margin of its expiry", async () => {
    const c = bot({ reuseMargin: 3600 });
    const first = await c.getWrit(rollback());
    expect((await c.getWrit(rollback())).id).not.toBe(first.id);
  });

  it("surfaces the broker's refusal as a WritRefusal with its reason and the slow-down it started", async () => {
    const r = await refusalOf(bot().getWrit({ ...rollback(), params: { service: "billing" } }));
    expect(r.code).toBe(ERR_CLIENT_REFUSED);
    expect(isWritError(r, ERR_CLIENT_REFUSED)).toBe(true);
    expect({ status: r.status, error: r.error, reason: r.reason }).toEqual({
      status: 400,
      error: "invalid_authorization_details",
      reason: "invalid_parameters",
    });
    expect(r.retryAfter).toBe(1);
    expect(r.message).toMatch(/^refused: invalid_parameters: /);
  });

  it("waits out a 429 as told, reporting it, and then gets the writ", async () => {
    const c = bot();
    await refusalOf(c.getWrit({ ...rollback(), playbook: "no-such-playbook" }));
    const events: WritProgress[] = [];
    const w = await c.getWrit(rollback("payments"), { onProgress: (e) => events.push(e) });
    expect(w.id).toMatch(/^writ_/);
    const waited = events.filter((e) => e.kind === "retrying");
    expect(waited.length).toBeGreaterThan(0);
    expect(waited[0]).toMatchObject({ reason: "repeated_denial" });
  }, 20_000);

  it("gives the 429 back with retryAfter when the wait is longer than allowed", async () => {
    const c = bot({ maxRetryAfter: 0 });
    await refusalOf(c.getWrit({ ...rollback(), playbook: "no-such-playbook" }));
    const r = await refusalOf(c.getWrit(rollback("payments")));
    expect({ status: r.status, error: r.error, reason: r.reason }).toEqual({
      status: 429,
      error: "slow_down",
      reason: "repeated_denial",
    });
    expect(r.retryAfter).toBeGreaterThanOrEqual(1);
  });

  it("waits for approvers through CIBA, reporting progress, and gets the approved writ", async () => {
    const events: WritProgress[] = [];
    const c = bot();
    const asked = c.getWrit(
      {
        playbook: "deploy-service",
        params: { service: "search", tag: "v1.2.3" },
        ticket: "CHG-42",
        resource: K8S,
      },
      {
        onProgress: (e) => {
          events.push(e);
          if (e.kind === "approval_requested")
            void approvalService(live.server.store).decide(
              e.authReqId,
              { approver: "bob@acme.example", decision: "approve" },
              { config: policy.config },
            );
        },
      },
    );
    const w = await asked;
    expect(w.authorizationDetails[0]).toMatchObject({ playbook: "deploy-service" });
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe("approval_requested");
    expect(kinds).toContain("approval_pending");
    expect(kinds.at(-1)).toBe("approved");
  }, 30_000);

  it("a denied approval is the broker's refusal; an approval not decided in time is ERR_CLIENT_APPROVAL_TIMEOUT", async () => {
    const intent = {
      playbook: "deploy-service",
      params: { service: "payments", tag: "v1.2.3" },
      ticket: "CHG-43",
      resource: K8S,
    };
    const denied = await refusalOf(
      bot().getWrit(intent, {
        onProgress: (e) => {
          if (e.kind === "approval_requested")
            void approvalService(live.server.store).decide(
              e.authReqId,
              { approver: "bob@acme.example", decision: "deny", reason: "not today" },
              { config: policy.config },
            );
        },
      }),
    );
    expect({ error: denied.error, reason: denied.reason }).toEqual({
      error: "access_denied",
      reason: "approval_denied",
    });
    const late = await bot()
      .getWrit({ ...intent, ticket: "CHG-44" }, { approvalTimeout: 1 })
      .catch((e: unknown) => e);
    expect(isWritError(late, ERR_CLIENT_APPROVAL_TIMEOUT)).toBe(true);
  }, 30_000);
});

describe("bad input to the client", () => {
  it("refuses a public key, a non-JSON key and an unsupported key type with ERR_CLIENT_KEY", async () => {
    const pub = await readFile(join(QUICKSTART, "keys", "release-bot.jwks.json"), "utf8");
    const publicJwk = (JSON.parse(pub) as { keys: unknown[] }).keys[0];
    for (const key of [publicJwk, "not json", { kty: "oct", k: "AAAA", d: "x" }]) {
      const err = await bot({ key: key as never })
        .getWrit(rollback())
        .catch((e: unknown) => e);
      expect(isWritError(err, ERR_CLIENT_KEY), String(err)).toBe(true);
    }
  });

  it("refuses plain HTTP to another machine, and a non-URL issuer, with ERR_CLIENT_OPTIONS", () => {
    for (const issuer of ["http://writ.example/env/dev", "not a url", "ftp://writ.example/env/dev"]) {
      let err: unknown;
      try {
        createWritClient({ issuer, agentId: "release-bot", key: keyText });
      } catch (e) {
        err = e;
      }
      expect(isWritError(err, ERR_CLIENT_OPTIONS), issuer).toBe(true);
    }
  });

  it("a server that cannot be reached is ERR_CLIENT_UNREACHABLE", async () => {
    const err = await createWritClient({
      issuer: "http://127.0.0.1:9/env/dev",
      agentId: "release-bot",
      key: keyText,
    })
      .getWrit(rollback())
      .catch((e: unknown) => e);
    expect(isWritError(err, ERR_CLIENT_UNREACHABLE)).toBe(true);
  });

  it("a wrong key is the broker's invalid_client", async () => {
    const other = await readFile(
      join(QUICKSTART, "keys", "ops-assistant.DEVELOPMENT-ONLY.private.jwk"),
      "utf8",
    );
    const r = await refusalOf(bot({ key: other }).getWrit(rollback()));
    expect({ status: r.status, error: r.error }).toEqual({ status: 401, error: "invalid_client" });
    expect(r.reason).toMatch(/^client_assertion_/);
  });
});

describe("fetchWithWrit and revoke", () => {
  let rs: HttpServer;
  let rsUrl: string;
  const seen: { nonce: unknown; status: number }[] = [];

  beforeAll(async () => {
    // a resource server: the writ verified against the environment's published keys, the proof by
    // writ's DPoP checker with a nonce of this server's own (RFC 9449 §9)
    const nonce = createNonceService(randomBytes(32));
    const replay = memoryReplayCache();
    const jwks = createRemoteJWKSet(new URL(`${live.base}/env/dev/jwks`));
    rs = createHttpServer(async (req, res) => {
      const url = `${rsUrl}${req.url}`;
      const auth = req.headers.authorization ?? "";
      const token = auth.replace(/^DPoP /, "");
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        seen.push({ nonce: proofNonce(req.headers.dpop), status });
        res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
      };
      try {
        const { payload } = await jwtVerify(token, jwks, { audience: K8S, issuer: `${live.base}/env/dev` });
        const proof = await verifyDpopProof(req.headers.dpop as string, {
          method: req.method!,
          url,
          accessToken: token,
          replay,
          nonce,
          requireNonce: true,
        });
        if (proof.jkt !== (payload.cnf as { jkt: string }).jkt) return send(401, { error: "invalid_token" });
        send(200, { writ: payload.writ, method: req.method });
      } catch (err) {
        if (err instanceof DpopNonceError)
          return send(
            401,
            { error: "use_dpop_nonce" },
            { "www-authenticate": 'DPoP error="use_dpop_nonce"', "dpop-nonce": err.nonce },
          );
        send(401, { error: "invalid_token", message: (err as Error).message });
      }
    });
    await new Promise<void>((r) => rs.listen(0, "127.0.0.1", r));
    rsUrl = `http://127.0.0.1:${(rs.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => rs.close(() => r())));

  const proofNonce = (header: unknown) =>
    typeof header === "string"
      ? (JSON.parse(Buffer.from(header.split(".")[1]!, "base64url").toString()) as { nonce?: string }).nonce
      : undefined;

  it("calls the resource with a fresh proof bound to the writ, answering the nonce challenge once", async () => {
    const c = bot();
    const w = await c.getWrit(rollback());
    seen.length = 0;
    const res = await c.fetchWithWrit(`${rsUrl}/deployments/checkout`, { method: "PATCH", body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ writ: w.id, method: "PATCH" });
    expect(seen.map((s) => s.status)).toEqual([401, 200]);
    expect(seen[0]!.nonce).toBeUndefined();
    expect(typeof seen[1]!.nonce).toBe("string");
    // the nonce is kept for the origin: the next call needs no challenge, and its proof is new
    seen.length = 0;
    const again = await c.fetchWithWrit(`${rsUrl}/deployments/checkout`);
    expect(again.status).toBe(200);
    expect(seen.map((s) => s.status)).toEqual([200]);
  });

  it("returns the resource's refusal as it is, and throws a TypeError before any writ", async () => {
    const c = bot();
    await expect(c.fetchWithWrit(`${rsUrl}/x`)).rejects.toBeInstanceOf(TypeError);
    const w = await c.getWrit(rollback());
    const forged = { ...w, accessToken: `${w.accessToken.slice(0, -4)}AAAA` };
    const res = await c.fetchWithWrit(`${rsUrl}/x`, {}, { writ: forged });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_token");
  });

  it("revokes the writ (RFC 7009): the broker no longer takes it, and the client asks anew", async () => {
    const c = bot();
    const w = await c.getWrit(rollback());
    expect(await c.revoke()).toBe(1);
    const row = await live.server.store.db
      .selectFrom("writs")
      .select(["revoked_at"])
      .where("id", "=", w.id)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).not.toBeNull();
    expect(await introspect(w.accessToken)).toMatchObject({ active: false });
    expect((await c.getWrit(rollback())).id).not.toBe(w.id);
  });
});
