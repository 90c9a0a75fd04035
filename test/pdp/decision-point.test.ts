import { afterEach, describe, expect, it, vi } from "vitest";
import { type ActiveWrit, compileRule } from "../../src/core/index.js";
import { cedar } from "../../src/pdp/cedar.js";
import { DecisionPoint, type PdpRequest } from "../../src/pdp/index.js";
import { load, withGuardrails } from "./fixture.js";

const GUARDRAILS = `@id("no-prod-delete")
forbid(principal, action == Writ::Action::"aws:s3:DeleteObject", resource)
when { context.environment == "prod" };

@id("secret-buckets")
forbid(principal, action in Writ::Action::"aws:s3", resource)
when { resource.id like "arn:aws:s3:::secret-*" };

@id("no-etc")
forbid(principal, action in Writ::Action::"mcp:filesystem", resource)
when { context.arguments.path like "/etc/*" };

@id("tainted-writes")
forbid(principal, action == Writ::Action::"mcp:filesystem:write_file", resource)
when { context.tainted };

@id("no-reading-infra")
forbid(principal, action in Writ::Action::"github:contents:read", resource)
when { resource.id == "acme/infra" };

@id("office-hours")
forbid(principal, action in Writ::Action::"aws", resource)
when { context.environment == "prod" && (context.time.local.hour < 9 || context.time.local.hour >= 17) };

@id("prod-needs-ticket")
forbid(principal, action == Writ::Action::"aws:s3:PutObject", resource)
when { context.environment == "prod" && !(context has ticket) };`;

// Tuesday 3 March 2026, 12:00 in London (GMT): inside office hours
const NOON = new Date("2026-03-03T12:00:00Z");
const EVENING = new Date("2026-03-03T19:30:00Z");

async function pdpWith(guardrails: string, writs?: readonly ActiveWrit[]) {
  const { load: loaded, compiled } = await load(withGuardrails(guardrails));
  expect(compiled.problems.filter((p) => p.severity === "error")).toEqual([]);
  return new DecisionPoint(loaded.config!, {
    guardrails: compiled.guardrails,
    vocab: loaded.vocab,
    ...(writs ? { writs } : {}),
  });
}

function req(over: Partial<PdpRequest>): PdpRequest {
  return {
    agent: "loader",
    action: "aws:s3:GetObject",
    resource: "arn:aws:s3:::reports/q1.csv",
    environment: "dev",
    now: NOON,
    ...over,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("DecisionPoint", () => {
  it("allows what the core allows when no guardrail objects", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const d = await pdp.decide(req({}));
    expect(d).toMatchObject({ allowed: true, code: "allowed" });
  });

  it("a Cedar forbid denies an otherwise-allowed request, naming the policy", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const core = await pdpWith("");
    const r = req({ action: "aws:s3:DeleteObject", environment: "prod" });
    expect((await core.decide(r)).allowed).toBe(true);
    const d = await pdp.decide(r);
    expect(d).toMatchObject({ allowed: false, code: "guardrail_forbid" });
    expect(d.reasons[0]).toEqual({ kind: "guardrail", policy: "no-prod-delete", effect: "forbid" });
    expect((await pdp.decide({ ...r, environment: "dev" })).allowed).toBe(true);
  });

  it("matches AWS actions case-insensitively, as the core does", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const d = await pdp.decide(req({ action: "aws:s3:deleteobject", environment: "prod" }));
    expect(d.code).toBe("guardrail_forbid");
  });

  it("group forbids reach actions the config never names", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    // granted through `aws:s3:Get*`; `GetObjectTagging` is named nowhere in writ.yaml
    const d = await pdp.decide(
      req({ action: "aws:s3:GetObjectTagging", resource: "arn:aws:s3:::secret-keys/a" }),
    );
    expect(d.code).toBe("guardrail_forbid");
    expect(d.reasons[0]).toMatchObject({ policy: "secret-buckets" });
  });

  it("a forbid on a GitHub level also stops the levels above it", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const d = await pdp.decide(req({ action: "github:contents:write", resource: "acme/infra" }));
    expect(d.code).toBe("guardrail_forbid");
    expect((await pdp.decide(req({ action: "github:contents:write", resource: "acme/web" }))).allowed).toBe(
      true,
    );
  });

  it("conditions on time use the environment's time zone", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    expect((await pdp.decide(req({ environment: "prod", now: NOON }))).allowed).toBe(true);
    const d = await pdp.decide(req({ environment: "prod", now: EVENING }));
    expect(d.code).toBe("guardrail_forbid");
    expect(d.reasons[0]).toMatchObject({ policy: "office-hours" });
    // 16:30 UTC is 17:30 in London in summer time: outside office hours there
    const summer = new Date("2026-07-07T16:30:00Z");
    expect((await pdp.decide(req({ environment: "prod", now: summer }))).code).toBe("guardrail_forbid");
  });

  it("conditions on context: ticket, taint and tool arguments", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const put = req({ action: "aws:s3:PutObject", environment: "prod" });
    expect((await pdp.decide(put)).code).toBe("guardrail_forbid");
    expect((await pdp.decide({ ...put, context: { ticket: "CHG-12" } })).allowed).toBe(true);

    const write = req({
      action: "mcp:filesystem:write_file",
      resource: "/srv/out/a.txt",
      context: { arguments: { path: "/srv/out/a.txt", content: "x" } },
    });
    expect((await pdp.decide(write)).allowed).toBe(true);
    expect((await pdp.decide({ ...write, context: { ...write.context, tainted: true } })).code).toBe(
      "guardrail_forbid",
    );
    const etc = { ...write, resource: "/etc/passwd", context: { arguments: { path: "/etc/passwd" } } };
    const d = await pdp.decide(etc);
    expect(d.code).toBe("guardrail_forbid");
    expect(d.reasons[0]).toMatchObject({ policy: "no-etc" });
  });

  it("a forbid that errors at evaluation denies with guardrail_error", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    // `no-etc` reads `context.arguments.path` without `has`: a call without a path makes it fail
    const d = await pdp.decide(
      req({ action: "mcp:filesystem:read_text_file", resource: "/srv/a", context: { arguments: {} } }),
    );
    expect(d).toMatchObject({ allowed: false, code: "guardrail_error" });
    expect(d.reasons.some((r) => r.kind === "error")).toBe(true);
  });

  it("an argument of the wrong type fails closed", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const d = await pdp.decide(
      req({
        action: "mcp:filesystem:read_text_file",
        resource: "/srv/a",
        context: { arguments: { path: 42 } },
      }),
    );
    expect(d.code).toBe("guardrail_error");
  });

  it("a failed or throwing Cedar call denies with guardrail_error", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    vi.spyOn(cedar, "statefulIsAuthorized").mockImplementationOnce(() => {
      throw new Error("wasm trap");
    });
    expect((await pdp.decide(req({}))).code).toBe("guardrail_error");
    vi.spyOn(cedar, "statefulIsAuthorized").mockReturnValueOnce({
      type: "failure",
      errors: [{ message: "boom", help: null, code: null, url: null, severity: null }],
      warnings: [],
    });
    expect((await pdp.decide(req({}))).code).toBe("guardrail_error");
  });

  it("nothing in Cedar can allow what the core denies", async () => {
    const pdp = await pdpWith(GUARDRAILS);
    const authorize = vi.spyOn(cedar, "statefulIsAuthorized").mockReturnValue({
      type: "success",
      response: { decision: "allow", diagnostics: { reason: ["writ:permit-all"], errors: [] } },
      warnings: [],
    });
    for (const [r, code] of [
      [req({ action: "aws:iam:CreateUser", resource: "*" }), "explicit_deny"],
      [req({ action: "aws:s3:PutBucketPolicy", resource: "arn:aws:s3:::reports" }), "no_grant"],
      [req({ action: "aws:s3:NoSuchAction" }), "unknown_action"],
      [req({ agent: "mallory" }), "unknown_agent"],
      [req({ environment: "staging" }), "unknown_environment"],
    ] as const) {
      expect(await pdp.decide(r)).toMatchObject({ allowed: false, code });
    }
    expect(authorize).not.toHaveBeenCalled();
  });

  it("takes active writs from a function or a list", async () => {
    const writ: ActiveWrit = {
      kind: "writ",
      id: "w-1",
      agent: "loader",
      playbook: "cleanup",
      environment: "dev",
      grants: [
        {
          kind: "grant",
          rule: compileRule({ action: "aws:s3:DeleteBucket", resource: "arn:aws:s3:::tmp-*" }),
          path: [],
        },
      ],
      issuedAt: new Date(NOON.getTime() - 60_000),
      expiresAt: new Date(NOON.getTime() + 60_000),
    };
    const r = req({ action: "aws:s3:DeleteBucket", resource: "arn:aws:s3:::tmp-1" });
    expect((await (await pdpWith(GUARDRAILS)).decide(r)).code).toBe("no_grant");
    expect((await (await pdpWith(GUARDRAILS, [writ])).decide(r)).allowed).toBe(true);
    const { load: loaded, compiled } = await load(withGuardrails(GUARDRAILS));
    const asked: string[] = [];
    const pdp = new DecisionPoint(loaded.config!, {
      guardrails: compiled.guardrails,
      writs: async (agent) => {
        asked.push(agent);
        return [writ];
      },
    });
    expect((await pdp.decide(r)).allowed).toBe(true);
    expect(asked).toEqual(["loader"]);
    expect(pdp.decideWith(r, []).code).toBe("no_grant");
    // a writ's grant is still subject to the guardrails
    const secret = { ...r, resource: "arn:aws:s3:::secret-tmp" };
    const w2 = {
      ...writ,
      grants: [{ ...writ.grants[0]!, rule: compileRule({ action: "aws:s3:DeleteBucket", resource: "*" }) }],
    };
    expect(pdp.decideWith(secret, [w2]).code).toBe("guardrail_forbid");
  });

  it("hands Cedar only the attributes the guardrails read", async () => {
    const pdp = await pdpWith(
      `forbid(principal, action, resource) when { principal.runnerClass == "x" && context.tainted };`,
    );
    const call = pdp.guardrails!.cedarCall(req({ context: { ticket: "CHG-1", arguments: { a: 1 } } }));
    const agent = call.entities.find((e) => "type" in e.uid && e.uid.type === "Writ::Agent");
    expect(Object.keys(agent!.attrs)).toEqual(["runnerClass"]);
    expect(Object.keys(call.context)).toEqual(["tainted"]);
    // `has` reads too: an attribute tested for presence is passed
    const has = await pdpWith(
      `forbid(principal, action, resource) when { principal has purpose && resource has id };`,
    );
    expect((await has.decide(req({}))).code).toBe("guardrail_forbid");
  });

  it("a policy that uses the context whole gets it whole", async () => {
    const pdp = await pdpWith(
      `forbid(principal, action, resource) when { (if context.tainted then context else context).environment == "prod" };`,
    );
    const call = pdp.guardrails!.cedarCall(req({ context: { ticket: "CHG-1" } }));
    expect(Object.keys(call.context).sort()).toEqual([
      "arguments",
      "environment",
      "tainted",
      "ticket",
      "time",
    ]);
    expect((await pdp.decide(req({ environment: "prod" }))).code).toBe("guardrail_forbid");
  });
});
