import { beforeAll, describe, expect, it } from "vitest";
import { DOCS_URL } from "../../src/http/problem.js";
import { type AuthzenRecord, authzenRoutes, DecisionPoint } from "../../src/pdp/index.js";
import { load, withGuardrails } from "./fixture.js";

const NOON = new Date("2026-03-03T12:00:00Z");

/** What the tests read from response bodies. */
interface Wire {
  decision?: boolean;
  context?: { reason_code: string; message: string; reasons: { kind: string; policy?: string }[] };
  evaluations?: { decision: boolean }[];
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  policy_decision_point?: string;
}

async function json(res: Response): Promise<Wire> {
  return (await res.json()) as Wire;
}

let pdp: DecisionPoint;
beforeAll(async () => {
  const { load: loaded, compiled } = await load(
    withGuardrails(`@id("no-prod-delete")
forbid(principal, action == Writ::Action::"aws:s3:DeleteObject", resource)
when { context.environment == "prod" };
@id("no-etc")
forbid(principal, action in Writ::Action::"mcp:filesystem", resource)
when { context.arguments has path && context.arguments.path like "/etc/*" };`),
  );
  pdp = new DecisionPoint(loaded.config!, { guardrails: compiled.guardrails, vocab: loaded.vocab });
});

function app(opts: Partial<Parameters<typeof authzenRoutes>[1]> = {}) {
  return authzenRoutes(pdp, { clock: () => NOON, baseUrl: "https://pdp.test", ...opts });
}

function post(a: ReturnType<typeof app>, path: string, body: unknown, headers: Record<string, string> = {}) {
  return a.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const subject = { type: "agent", id: "loader" };
const get = { name: "aws:s3:GetObject" };
const del = { name: "aws:s3:DeleteObject" };
const file = { type: "aws", id: "arn:aws:s3:::reports/q1.csv" };

describe("POST /access/v1/evaluation", () => {
  it("allows, with the reason code and reasons in the decision context", async () => {
    const res = await post(app(), "/access/v1/evaluation", {
      subject,
      action: get,
      resource: file,
      context: { environment: "dev" },
    });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ decision: true, context: { reason_code: "allowed" } });
    expect(body.context!.reasons.length).toBeGreaterThan(0);
  });

  it("denies with the guardrail that forbade it", async () => {
    const res = await post(app(), "/access/v1/evaluation", {
      subject,
      action: del,
      resource: file,
      context: { environment: "prod" },
    });
    const body = await json(res);
    expect(body).toMatchObject({ decision: false, context: { reason_code: "guardrail_forbid" } });
    expect(body.context!.reasons[0]).toMatchObject({ kind: "guardrail", policy: "no-prod-delete" });
  });

  it("maps the context: arguments, tainted, ticket, writ_id, prompt_context_id", async () => {
    const records: AuthzenRecord[] = [];
    const res = await post(
      app({ onDecision: (r) => void records.push(r) }),
      "/access/v1/evaluation",
      {
        subject,
        action: { name: "mcp:filesystem:write_file" },
        resource: { type: "path", id: "/etc/hosts" },
        context: {
          environment: "dev",
          arguments: { path: "/etc/hosts" },
          tainted: false,
          ticket: "CHG-1",
          writ_id: "w-1",
          prompt_context_id: "p-1",
        },
      },
      { "x-request-id": "req-7" },
    );
    expect(res.headers.get("x-request-id")).toBe("req-7");
    expect((await json(res)).context!.reason_code).toBe("guardrail_forbid");
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      requestId: "req-7",
      request: {
        agent: "loader",
        environment: "dev",
        context: { ticket: "CHG-1", writId: "w-1", promptContextId: "p-1", tainted: false },
      },
      decision: { code: "guardrail_forbid" },
    });
  });

  it("uses the server's clock, never the caller's", async () => {
    const records: AuthzenRecord[] = [];
    await post(app({ onDecision: (r) => void records.push(r) }), "/access/v1/evaluation", {
      subject,
      action: get,
      resource: file,
      context: { environment: "dev", time: "1999-01-01T00:00:00Z", now: "1999-01-01T00:00:00Z" },
    });
    expect(records[0]?.request.now).toEqual(NOON);
  });

  it("a subject that is not an agent is denied, not an error", async () => {
    const res = await post(app(), "/access/v1/evaluation", {
      subject: { type: "user", id: "alice" },
      action: get,
      resource: file,
      context: { environment: "dev" },
    });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ decision: false, context: { reason_code: "unknown_agent" } });
  });

  it("fails with 500, not a decision, when the decision cannot be recorded", async () => {
    const res = await post(
      app({
        onDecision: () => {
          throw new Error("disk full at /var/lib/writ");
        },
      }),
      "/access/v1/evaluation",
      { subject, action: get, resource: file, context: { environment: "dev" } },
    );
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const text = await res.text();
    expect(text).not.toContain("disk full");
    expect(text).not.toContain("at ");
  });
});

describe("malformed requests get RFC 9457 problems", () => {
  const cases: [string, unknown, string][] = [
    ["not JSON", "{ subject: ", "invalid_json"],
    ["not an object", "[1, 2]", "invalid_request"],
    ["no subject", { action: get, resource: file, context: { environment: "dev" } }, "invalid_request"],
    [
      "subject id not a string",
      { subject: { type: "agent", id: 7 }, action: get, resource: file },
      "invalid_request",
    ],
    [
      "no action name",
      { subject, action: {}, resource: file, context: { environment: "dev" } },
      "invalid_request",
    ],
    [
      "no resource type",
      { subject, action: get, resource: { id: "x" }, context: { environment: "dev" } },
      "invalid_request",
    ],
    ["no environment", { subject, action: get, resource: file, context: {} }, "invalid_request"],
    [
      "tainted not boolean",
      { subject, action: get, resource: file, context: { environment: "dev", tainted: "yes" } },
      "invalid_request",
    ],
    [
      "arguments not an object",
      { subject, action: get, resource: file, context: { environment: "dev", arguments: [1] } },
      "invalid_request",
    ],
  ];
  for (const [name, body, code] of cases) {
    it(name, async () => {
      const res = await post(app(), "/access/v1/evaluation", body);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      const p = await json(res);
      expect(p).toMatchObject({ reason: code, status: 400 });
      expect(String(p.type).startsWith(`${DOCS_URL}/`), String(p.type)).toBe(true);
      expect(typeof p.title).toBe("string");
      expect(typeof p.detail).toBe("string");
    });
  }

  it("a body that is not application/json is 415", async () => {
    const res = await app().request("/access/v1/evaluation", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "{}",
    });
    expect(res.status).toBe(415);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  it("a body over the limit is 413", async () => {
    const res = await post(app({ maxBodyBytes: 100 }), "/access/v1/evaluation", {
      subject,
      action: get,
      resource: file,
      context: { environment: "dev", arguments: { padding: "x".repeat(200) } },
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  it("a declared length over the limit is 413, one at the limit is read", async () => {
    const at = (length: number, size: number) =>
      app({ maxBodyBytes: 100 }).request("/access/v1/evaluation", {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(length) },
        body: `{"x":"${"x".repeat(size - 8)}"}`,
      });
    const over = await at(101, 101);
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ reason: "payload_too_large" });
    // within the limit the body is read: this one is valid JSON but not an evaluation
    const within = await at(100, 100);
    expect(within.status).toBe(400);
    expect(await within.json()).not.toMatchObject({ reason: "payload_too_large" });
  });
});

describe("POST /access/v1/evaluations", () => {
  const batch = (semantic?: string) => ({
    subject,
    context: { environment: "prod" },
    resource: file,
    evaluations: [
      { action: get },
      { action: del },
      { action: get, context: { environment: "dev" } },
      { action: del, context: { environment: "dev" } },
    ],
    ...(semantic ? { options: { evaluations_semantic: semantic } } : {}),
  });
  const decisions = async (res: Response) => (await json(res)).evaluations!.map((e) => e.decision);

  it("execute_all is the default: every evaluation, in order, with top-level defaults", async () => {
    const res = await post(app(), "/access/v1/evaluations", batch());
    expect(res.status).toBe(200);
    expect(await decisions(res)).toEqual([true, false, true, true]);
    const explicit = await post(app(), "/access/v1/evaluations", batch("execute_all"));
    expect(await decisions(explicit)).toEqual([true, false, true, true]);
  });

  it("deny_on_first_deny stops at the first denial", async () => {
    const res = await post(app(), "/access/v1/evaluations", batch("deny_on_first_deny"));
    expect(await decisions(res)).toEqual([true, false]);
  });

  it("permit_on_first_permit stops at the first permit", async () => {
    const b = batch("permit_on_first_permit");
    const res = await post(app(), "/access/v1/evaluations", { ...b, evaluations: b.evaluations.slice(1) });
    expect(await decisions(res)).toEqual([false, true]);
  });

  it("records each decision made, and only those", async () => {
    const records: AuthzenRecord[] = [];
    await post(
      app({ onDecision: (r) => void records.push(r) }),
      "/access/v1/evaluations",
      batch("deny_on_first_deny"),
    );
    expect(records.map((r) => r.decision.allowed)).toEqual([true, false]);
  });

  it("without `evaluations` it is a single evaluation", async () => {
    const res = await post(app(), "/access/v1/evaluations", {
      subject,
      action: get,
      resource: file,
      context: { environment: "dev" },
    });
    expect(await json(res)).toMatchObject({ decision: true });
  });

  it("refuses a whole batch when one evaluation is malformed", async () => {
    const records: AuthzenRecord[] = [];
    const b = batch();
    const res = await post(app({ onDecision: (r) => void records.push(r) }), "/access/v1/evaluations", {
      ...b,
      resource: undefined,
      evaluations: [{ action: get, resource: file }, { action: get }],
    });
    expect(res.status).toBe(400);
    expect((await json(res)).detail).toContain("evaluations[1].resource");
    expect(records).toEqual([]);
  });

  it("refuses an unknown semantic, a non-array and too many evaluations", async () => {
    expect((await post(app(), "/access/v1/evaluations", batch("first_wins"))).status).toBe(400);
    expect((await post(app(), "/access/v1/evaluations", { ...batch(), evaluations: {} })).status).toBe(400);
    const many = { ...batch(), evaluations: Array(5).fill({ action: get }) };
    expect((await post(app({ maxEvaluations: 4 }), "/access/v1/evaluations", many)).status).toBe(400);
  });
});

describe("GET /.well-known/authzen-configuration", () => {
  it("publishes the PDP identifier and both endpoints", async () => {
    const res = await app({ baseUrl: "https://pdp.example.com" }).request(
      "/.well-known/authzen-configuration",
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await json(res)).toEqual({
      policy_decision_point: "https://pdp.example.com",
      access_evaluation_endpoint: "https://pdp.example.com/access/v1/evaluation",
      access_evaluations_endpoint: "https://pdp.example.com/access/v1/evaluations",
    });
  });

  it("never reflects the request's Host: the identifier is the configured base URL", async () => {
    const res = await app({ baseUrl: () => "https://pdp.example.com/" }).request(
      "https://attacker.example:8443/.well-known/authzen-configuration",
      { headers: { host: "attacker.example:8443" } },
    );
    const body = await json(res);
    expect(body.policy_decision_point).toBe("https://pdp.example.com");
    expect(JSON.stringify(body)).not.toContain("attacker");
  });
});

describe("bearer token", () => {
  const body = { subject, action: get, resource: file, context: { environment: "dev" } };
  const secured = () => app({ token: "s3cret-token" });

  it("is required when configured", async () => {
    const res = await post(secured(), "/access/v1/evaluation", body);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });

  it("a wrong token is refused, the right one accepted", async () => {
    const wrong = await post(secured(), "/access/v1/evaluation", body, {
      authorization: "Bearer s3cret-tokex",
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const basic = await post(secured(), "/access/v1/evaluation", body, {
      authorization: "Basic czNjcmV0LXRva2Vu",
    });
    expect(basic.status).toBe(401);
    const right = await post(secured(), "/access/v1/evaluations", body, {
      authorization: "Bearer s3cret-token",
    });
    expect(right.status).toBe(200);
    expect((await json(right)).decision).toBe(true);
  });

  it("is checked before the body is read", async () => {
    const res = await post(secured(), "/access/v1/evaluation", "not json");
    expect(res.status).toBe(401);
  });

  it("is not needed without the option", async () => {
    expect((await post(app(), "/access/v1/evaluation", body)).status).toBe(200);
  });
});
