/**
 * The console's Shadow page in process: after a decision that a shadow ceiling would have denied,
 * the operator's page lists its rule, agent, reason, count and example; a bad `since` is a coded
 * refusal; without a session the page is not served.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, loadPolicy, type Server } from "../../src/app.js";
import { quickstartCopy } from "../http/support.js";

const BASE = "http://127.0.0.1:8080";
const PDP_TOKEN = "shadow-page-test-pdp-token-0123456789";
let dir: string;
let server: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "writ-console-shadow-"));
  const file = await quickstartCopy(dir, "", (yaml) =>
    yaml.replace(
      "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n",
      "  analyst:\n    description: Read-only analysis jobs; never write anywhere\n    mode: shadow\n",
    ),
  );
  const { policy } = await loadPolicy(file);
  server = await createServer({
    policy: policy!,
    dataDir: join(dir, "data"),
    version: "test",
    baseUrl: BASE,
    pdpToken: PDP_TOKEN,
    stateCache: false,
  });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function operatorCookie(): Promise<string> {
  const html = await (await server.app.request(`${BASE}/console/login`)).text();
  const challenge = /name="challenge" value="([^"]+)"/.exec(html)![1]!;
  const res = await server.app.request(`${BASE}/console/login/operator`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: BASE },
    body: new URLSearchParams({ challenge, name: "olivia", token: server.adminToken }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

describe("the Shadow page", () => {
  it("lists what a shadow rule would have blocked, by rule, agent and reason", async () => {
    // k8s secrets are in the analyst ceiling's deny list, and no grant covers them: denied, recorded
    const decide = await server.app.request(`${BASE}/access/v1/evaluation`, {
      method: "POST",
      headers: { authorization: `Bearer ${PDP_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        subject: { type: "agent", id: "cost-analyst" },
        action: { name: "k8s:core/secrets:get" },
        resource: { type: "k8s", id: "shop/<db>" },
        context: { environment: "dev" },
      }),
    });
    expect(((await decide.json()) as { decision: boolean }).decision).toBe(false);

    const cookie = await operatorCookie();
    const res = await server.app.request(`${BASE}/console/shadow?since=1h`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("<code>ceiling:analyst</code>");
    expect(html).toContain("cost-analyst");
    expect(html).toContain("explicit_deny");
    // inside the ceiling's allow (`k8s:*:get`): only its deny would have refused
    expect(html).not.toContain("outside_ceiling");
    expect(html).toContain("1 would-have-denied in 1 groups");
    expect(html).toContain("denied by an enforcing rule too");
    // the resource is escaped, never markup
    expect(html).toContain("shop/&lt;db&gt;");
    expect(html).not.toContain("shop/<db>");
    expect(html).toContain('href="/console/shadow"');
  });

  it("refuses a bad since with a code, and is not served without a session", async () => {
    const cookie = await operatorCookie();
    const bad = await server.app.request(`${BASE}/console/shadow?since=soon`, { headers: { cookie } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("ERR_CONSOLE_INPUT");
    const anon = await server.app.request(`${BASE}/console/shadow`);
    expect(anon.status).not.toBe(200);
  });
});
