/**
 * The approvals API tells an approver's refused JWT from a store that cannot answer: the refusal
 * is a 401 with its `ERR_CLIENT_*` code, a failing replay cache is the server's failure (a 500
 * problem, its cause in the server log) — before, both were answered 401 as if the JWT were bad.
 */
import { join } from "node:path";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import type { ApprovalService } from "../../src/broker/approvals.js";
import { approvalsApi } from "../../src/broker/approvals-api.js";
import type { ReplayCache } from "../../src/broker/replay.js";
import { type WritConfig, WritError } from "../../src/core/index.js";
import { httpApp } from "../../src/http/app.js";
import { createLogger, lineDestination } from "../../src/http/log.js";
import { approverJwt } from "./kit.js";
import { QUICKSTART } from "./live.js";

const BASE = "http://127.0.0.1:9";

let config: WritConfig;
beforeAll(async () => {
  const loaded = await loadPolicy(join(QUICKSTART, "writ.yaml"));
  config = loaded.policy!.config;
});

/** The server with only the approvals API behind it, its replay cache `replay`. */
async function serverWith(replay: ReplayCache, lines: string[]) {
  const approvals = {
    listPending: async () => [],
  } as unknown as ApprovalService;
  return httpApp({
    authzen: new Hono(),
    broker: approvalsApi({ config, approvals, replay, baseUrl: () => BASE }),
    ready: async () => true,
    version: "test",
    logger: await createLogger({ destination: lineDestination((line) => lines.push(line)) }),
  });
}

const list = async (app: Hono, jwt: string) =>
  app.request(`${BASE}/approvals`, { headers: { authorization: `Bearer ${jwt}` } });

describe("approvals API: an approver's JWT and the replay cache", () => {
  it("a replay cache that fails is a 500 problem with its cause logged, not a 401", async () => {
    const lines: string[] = [];
    const failing: ReplayCache = {
      remember: async () => {
        throw new WritError("ERR_STORE", "remember jti: the database is unreachable");
      },
    };
    const app = await serverWith(failing, lines);
    const res = await list(app, await approverJwt(BASE, "alice"));
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.headers.get("www-authenticate")).toBeNull();
    const failed = lines.filter((l) => l.includes('"http.request_failed"'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain("ERR_STORE");
    expect(failed[0]).toContain("the database is unreachable");
  });

  it("a replayed JWT is still refused 401 with ERR_CLIENT_ASSERTION_REPLAY", async () => {
    const lines: string[] = [];
    const seen = new Set<string>();
    const replay: ReplayCache = {
      remember: async (scope, jti) => {
        const k = `${scope}\0${jti}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      },
    };
    const app = await serverWith(replay, lines);
    const jwt = await approverJwt(BASE, "alice");
    const first = await list(app, jwt);
    expect(first.status).toBe(200);
    const again = await list(app, jwt);
    expect(again.status).toBe(401);
    expect(again.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(((await again.json()) as { code: string }).code).toBe("ERR_CLIENT_ASSERTION_REPLAY");
  });
});
