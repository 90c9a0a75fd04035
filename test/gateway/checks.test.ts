/**
 * The gateway's per-call checks as plain functions (no server, no store): the order they run in,
 * and the pure parts of the ones that decide from their inputs alone.
 */
import { describe, expect, it } from "vitest";
import type { EngagedKill } from "../../src/broker/kill.js";
import { argumentsObject } from "../../src/gateway/checks/arguments.js";
import type { Call, CallEnv } from "../../src/gateway/checks/call.js";
import { CALL_CHECKS } from "../../src/gateway/checks/index.js";
import { splitToolName } from "../../src/gateway/checks/pins.js";
import { session, stillAlive } from "../../src/gateway/checks/session.js";
import { markTaint, taint } from "../../src/gateway/checks/taint.js";
import { uses } from "../../src/gateway/checks/uses.js";
import type { GatewayIdentity } from "../../src/gateway/gateway.js";
import { GatewayError } from "../../src/gateway/index.js";
import { killedWhy } from "../../src/gateway/kill.js";
import { Sessions } from "../../src/gateway/sessions.js";

/** The refusal a check (or one of its parts) returns; a thrown error fails the test. */
const refusalOf = (f: () => unknown): { reason: string; message: string } | undefined => {
  const out = f();
  return out instanceof GatewayError ? { reason: out.reason, message: out.message } : undefined;
};

describe("the gateway's call checks", () => {
  it("run the session check first and again after a use is spent, and taint after the decision", () => {
    const at = (c: unknown) => CALL_CHECKS.indexOf(c as (typeof CALL_CHECKS)[number]);
    expect(at(session)).toBe(0);
    expect(at(stillAlive)).toBe(at(uses) + 1);
    expect(at(taint)).toBeGreaterThan(0);
    expect(at(markTaint)).toBe(CALL_CHECKS.length - 1);
  });

  it("split exposed names at the first separator only", () => {
    expect(splitToolName("fs__read_text_file")).toEqual({ server: "fs", toolName: "read_text_file" });
    expect(splitToolName("a__b__c")).toEqual({ server: "a", toolName: "b__c" });
    expect(splitToolName("__x")).toEqual({ server: "", toolName: "" });
    expect(splitToolName("plain")).toEqual({ server: "", toolName: "" });
  });

  it("take absent arguments as {} and refuse what is not an object, or cannot be decided as sent", () => {
    expect(argumentsObject(undefined)).toEqual({});
    expect(refusalOf(() => argumentsObject([1]))?.reason).toBe("arguments_invalid");
    expect(refusalOf(() => argumentsObject("x"))?.reason).toBe("arguments_invalid");
    const nul = refusalOf(() => argumentsObject({ path: { to: "a\u0000b" } }));
    expect(nul?.reason).toBe("arguments_invalid");
    expect(nul?.message).toContain("path.to");
  });

  it("return their refusal instead of throwing it: an ended session, then a killed one", () => {
    let why: string | undefined;
    const sessions = new Sessions({
      audit: async () => undefined,
      now: () => new Date(0),
      killedWhy: () => why,
    });
    const env = { sessions } as unknown as CallEnv;
    const call = (id: string) => ({ sessionId: id }) as unknown as Call;
    expect(refusalOf(() => session(call("gws_gone"), env))?.reason).toBe("session_ended");
    const s = sessions.open({ agent: "bot", environment: "dev" } as GatewayIdentity);
    const live = call(s.id);
    expect(session(live, env)).toBeUndefined();
    expect(live.session).toBe(s);
    why = "kill k1 is engaged";
    expect(refusalOf(() => stillAlive(live, env))).toEqual({ reason: "killed", message: why });
    // the kill ended it: asked again, it is gone
    expect(refusalOf(() => session(call(s.id), env))?.reason).toBe("session_ended");
  });
});

describe("the kill switch as the gateway reads it", () => {
  const agents = new Map([["bot", { id: "bot", runnerClass: "assist" }]]);
  const agentOf = (id: string) => agents.get(id);
  const kill = (scope: EngagedKill["scope"], id = "k1"): EngagedKill => ({
    id,
    scope,
    reason: undefined,
    engagedAt: new Date(0),
    engagedBy: "test",
  });
  const bot = { agent: "bot", environment: "dev" };

  it("stops everyone while it cannot be read, and an agent no longer declared", () => {
    expect(killedWhy("unreadable", agentOf, bot)).toBe("the kill switch cannot be read");
    expect(killedWhy([], agentOf, { agent: "gone", environment: "dev" })).toContain("no longer declared");
  });

  it("stops an agent by its id, runner class, environment or all, and no one else", () => {
    expect(killedWhy([], agentOf, bot)).toBeUndefined();
    expect(killedWhy([kill({ kind: "agent", agent: "other" })], agentOf, bot)).toBeUndefined();
    expect(killedWhy([kill({ kind: "environment", environment: "prod" })], agentOf, bot)).toBeUndefined();
    expect(killedWhy([kill({ kind: "agent", agent: "bot" }, "k2")], agentOf, bot)).toContain("k2");
    expect(killedWhy([kill({ kind: "class", runnerClass: "assist" })], agentOf, bot)).toContain("engaged");
    expect(killedWhy([kill({ kind: "environment", environment: "dev" })], agentOf, bot)).toContain("engaged");
    expect(killedWhy([kill({ kind: "all" })], agentOf, bot)).toContain("engaged");
  });
});
