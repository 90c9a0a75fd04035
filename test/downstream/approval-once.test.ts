/**
 * `writ creds` on the approval path (issue 11): the direct path asks the token exchange, is told
 * `approval_required`, and hands over to the agent SDK for the approval wait — which must not ask
 * the token exchange again. One request: one `broker.approval_required` record, one approval
 * request, and the credential once it is approved. And the SDK's `approvalRequired` on its own.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redeemed } from "../../src/cli/creds.js";
import { createWritClient } from "../../src/client/index.js";
import { type AgentKey, agentKeyFromJwk } from "../../src/downstream/agent.js";
import { approverJwt } from "../broker/kit.js";
import { type DownstreamLive, QUICKSTART_KEYS, startDownstreamLive } from "./fixture.js";

let live: DownstreamLive;
let key: AgentKey;
let jwkText: string;

beforeAll(async () => {
  live = await startDownstreamLive();
  jwkText = await readFile(join(QUICKSTART_KEYS, "release-bot.DEVELOPMENT-ONLY.private.jwk"), "utf8");
  key = agentKeyFromJwk(jwkText);
}, 120_000);
afterAll(() => live?.stop());

/** The `broker.approval_required` records and the approval requests stored so far. */
async function counts() {
  const db = live.server.store.db;
  const records = await db
    .selectFrom("audit_records")
    .select("seq")
    .where("type", "=", "broker.approval_required")
    .execute();
  const requests = await db.selectFrom("approval_requests").select("id").execute();
  return { records: records.length, requests: requests.length };
}

/** Approves the request a progress line names, once it is printed. */
function approveWhenAsked(lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = setInterval(async () => {
      const line = lines.find((l) => l.includes("needs approval"));
      if (line === undefined) {
        if (Date.now() - started > 30_000) {
          clearInterval(tick);
          reject(new Error(`no approval line in ${JSON.stringify(lines)}`));
        }
        return;
      }
      clearInterval(tick);
      const id = /request (\S+) /.exec(line)![1]!;
      const res = await fetch(`${live.base}/approvals/${id}/approve?env=dev`, {
        method: "POST",
        headers: { authorization: `Bearer ${await approverJwt(live.base, "bob@acme.example")}` },
      });
      if (res.status === 200) resolve();
      else reject(new Error(`approve: ${res.status} ${await res.text()}`));
    }, 100);
  });
}

describe("one request, one approval", () => {
  it("writ creds: the direct path's approval_required is not asked again by the SDK", async () => {
    const before = await counts();
    const lines: string[] = [];
    const asking = {
      server: live.base,
      environment: "dev",
      agent: "release-bot",
      key,
      progress: (l: string) => lines.push(l),
      allowInsecureHttp: false,
    };
    const [r] = await Promise.all([
      redeemed(asking, { playbook: "guarded", params: {} }, "kubernetes"),
      approveWhenAsked(lines),
    ]);
    expect(r.system).toBe("kubernetes");
    expect(live.system.works(r.credential.token as string)).toBe(true);
    const after = await counts();
    expect(after.records - before.records).toBe(1);
    expect(after.requests - before.requests).toBe(1);
  }, 90_000);

  it("the SDK: approvalRequired goes straight to the approval request; without it, one exchange first", async () => {
    const client = createWritClient({
      issuer: `${live.base}/env/dev`,
      agentId: "release-bot",
      key: JSON.parse(jwkText),
    });
    const request = {
      playbook: "guarded",
      params: {},
      resource: `${live.base}/env/dev/downstream/kubernetes`,
    };
    for (const [approvalRequired, records] of [
      [true, 0],
      [false, 1],
    ] as const) {
      const before = await counts();
      const lines: string[] = [];
      const onProgress = (e: { kind: string; authReqId?: string }) => {
        if (e.kind === "approval_requested") lines.push(`needs approval: request ${e.authReqId} (`);
      };
      const [writ] = await Promise.all([
        client.getWrit(request, { reuse: false, approvalRequired, onProgress }),
        approveWhenAsked(lines),
      ]);
      expect(writ.id).toMatch(/^writ_/);
      const after = await counts();
      expect(after.records - before.records).toBe(records);
      expect(after.requests - before.requests).toBe(1);
    }
  }, 90_000);
});
