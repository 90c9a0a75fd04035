import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluateIntent, type IntentInputs, type IntentRequest } from "../../src/broker/intent.js";
import { loadConfigText } from "../../src/config/index.js";
import type { Playbook, WritConfig } from "../../src/core/index.js";
import { ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart", "writ.yaml");
let config: WritConfig;
let text: string;
const WED_10 = new Date("2026-11-18T10:00:00Z"); // London is on GMT in November
const DEPLOY: IntentRequest = {
  agent: "release-bot",
  playbook: "deploy-service",
  params: { service: "checkout", tag: "v1.4.2" },
  environment: "prod",
  ticket: "CHG-1234",
  now: WED_10,
};

beforeAll(async () => {
  text = await readFile(QUICKSTART, "utf8");
  config = (await loadConfigText(text, { file: QUICKSTART })).config!;
});

const inputs = (over: Partial<IntentInputs> = {}): IntentInputs => ({
  config,
  approval: "approved",
  keySignUntil: new Date(WED_10.getTime() + 30 * 86400_000),
  ...over,
});

const reasonOf = (req: Partial<IntentRequest>, over: Partial<IntentInputs> = {}) => {
  const o = evaluateIntent({ ...DEPLOY, ...req }, inputs(over));
  return o.kind === "issue" ? "issue" : o.reason;
};

describe("intent checks, in order", () => {
  it("issues when every check passes", () => {
    const o = evaluateIntent(DEPLOY, inputs());
    expect(o.kind).toBe("issue");
    if (o.kind !== "issue") return;
    expect(o.grants.map((g) => g.rule.text.resource)).toEqual([
      "checkout/checkout",
      "checkout/*",
      "arn:aws:ecr:eu-west-2:111122223333:repository/acme/checkout",
      "acme/checkout",
    ]);
    expect(o.issuedAt).toEqual(WED_10);
    expect(o.maxUses).toBe(10);
  });

  it.each([
    [{ playbook: "restart-pods" }, {}, "playbook_not_allowed"],
    [{ playbook: "no-such" }, {}, "unknown_playbook"],
    [{ agent: "ghost" }, {}, "unknown_agent"],
    [{ environment: "staging" }, {}, "environment_not_allowed"],
    [{ params: { service: "billing", tag: "v1.0.0" } }, {}, "invalid_parameters"],
    [{ params: { service: "checkout" } }, {}, "invalid_parameters"],
    [{ params: { service: "checkout", tag: "v1.0.0", extra: 1 } }, {}, "invalid_parameters"],
    [{ ticket: undefined }, {}, "ticket_required"],
    [{ ticket: "JIRA-1" }, {}, "ticket_invalid"],
    [{ now: new Date("2026-11-21T10:00:00Z") }, {}, "outside_change_window"], // Saturday
    [{ now: new Date("2026-11-18T17:00:00Z") }, {}, "outside_change_window"], // window end is exclusive
    [{}, { kill: { id: "kill_1" } }, "kill_switch_engaged"],
    [{}, { approval: undefined }, "approval_required"],
    [{}, { approval: "pending" }, "approval_required"],
    [{}, { approval: "expired" }, "approval_required"],
    [{}, { approval: "denied" }, "approval_denied"],
  ] as const)("%j %j → %s", (req, over, reason) => {
    expect(reasonOf(req as Partial<IntentRequest>, over as Partial<IntentInputs>)).toBe(reason);
  });

  it("reports the first failure: a bad ticket before the window, the window before the kill switch", () => {
    expect(reasonOf({ ticket: "nope", now: new Date("2026-11-21T10:00:00Z") }, { kill: { id: "k" } })).toBe(
      "ticket_invalid",
    );
    expect(
      reasonOf({ now: new Date("2026-11-21T10:00:00Z") }, { kill: { id: "k" }, approval: "denied" }),
    ).toBe("outside_change_window");
  });

  it("dev has no ticket pattern, no window and no approval policy", () => {
    const saturdayNight = new Date("2026-11-21T03:00:00Z");
    // any ticket will do in dev (the playbook still requires one), at any time, unapproved
    expect(
      reasonOf({ environment: "dev", ticket: "anything", now: saturdayNight }, { approval: undefined }),
    ).toBe("issue");
    expect(
      reasonOf({ environment: "dev", ticket: undefined, now: saturdayNight }, { approval: undefined }),
    ).toBe("ticket_required");
    const restart = { agent: "ops-assistant", playbook: "restart-pods", params: { service: "search" } };
    expect(
      reasonOf(
        { ...restart, environment: "dev", ticket: undefined, now: saturdayNight },
        { approval: undefined },
      ),
    ).toBe("issue");
  });

  it("catches at issuance a grant the load-time proof never saw (defence in depth)", () => {
    const pb = config.playbooks.get("deploy-service")!;
    const wider: Playbook = {
      ...pb,
      grants: [
        ...pb.grants,
        { kind: "grant-template", action: "k8s:core/secrets:get", resource: "${service}/*", path: [] },
      ],
    };
    const tampered: WritConfig = {
      ...config,
      playbooks: new Map([...config.playbooks, ["deploy-service", wider]]),
    };
    const o = evaluateIntent(DEPLOY, inputs({ config: tampered }));
    expect(o.kind === "refused" && o.reason).toBe("grant_outside_ceiling");
  });
});

describe("effective TTL: the smallest bound, named", () => {
  const ttl = (req: Partial<IntentRequest>, over: Partial<IntentInputs> = {}) => {
    const o = evaluateIntent({ ...DEPLOY, ...req }, inputs(over));
    if (o.kind !== "issue") throw new Error(`not issued: ${o.kind === "refused" ? o.reason : o.kind}`);
    return { bound: o.ttl.bound, seconds: o.ttl.seconds, expiresAt: o.ttl.expiresAt.toISOString() };
  };

  it("the playbook's TTL", () => {
    expect(ttl({})).toEqual({ bound: "playbook", seconds: 1200, expiresAt: "2026-11-18T10:20:00.000Z" });
  });

  it("the end of the change window", () => {
    expect(ttl({ now: new Date("2026-11-18T16:50:00Z") })).toEqual({
      bound: "change_window",
      seconds: 600,
      expiresAt: "2026-11-18T17:00:00.000Z",
    });
  });

  it("the signing key's life", () => {
    expect(ttl({}, { keySignUntil: new Date("2026-11-18T10:05:00Z") })).toMatchObject({
      bound: "signing_key",
      seconds: 300,
    });
  });

  it("the ceiling's maximum", async () => {
    const capped = (await loadConfigText(text.replace("maxTtl: 30m", "maxTtl: 5m"), { file: QUICKSTART }))
      .config!;
    expect(ttl({}, { config: capped })).toMatchObject({ bound: "ceiling", seconds: 300 });
  });

  it("a key with no life left refuses rather than issuing a dead writ", () => {
    expect(reasonOf({}, { keySignUntil: WED_10 })).toBe("signing_key_exhausted");
  });
});

describe("regular expressions from writ.yaml cannot be made to backtrack (ReDoS)", () => {
  // On the native engine each of these takes minutes or more for the hostile values below.
  const hostile = async () =>
    (
      await loadConfigText(
        text
          .replace('pattern: "^(CHG|INC)-[0-9]{4,}$"', 'pattern: "^(CHG|INC)-([0-9]+)+$"')
          .replace('pattern: "^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$"', 'pattern: "^(v|[0-9]+|\\\\.)*!$"'),
        { file: QUICKSTART },
      )
    ).config!;

  it("nested quantifiers still load and still decide", async () => {
    const cfg = await hostile();
    expect(cfg.environments.get("prod")!.ticket!.source).toBe("^(CHG|INC)-([0-9]+)+$");
    expect(
      reasonOf({ ticket: "CHG-1234", params: { service: "checkout", tag: "v1.2!" } }, { config: cfg }),
    ).toBe("issue");
  });

  it("a hostile ticket and a hostile parameter of 2,000 characters are refused at once", async () => {
    const cfg = await hostile();
    // a backtracking engine would not finish on these: the answers coming at all is the check
    expect(
      reasonOf(
        { ticket: `CHG-${"1".repeat(1996)}x`, params: { service: "checkout", tag: "v1.2!" } },
        { config: cfg },
      ),
    ).toBe("ticket_invalid");
    const tag = `${"v1.".repeat(666)}xx`;
    expect(reasonOf({ params: { service: "checkout", tag } }, { config: cfg })).toBe("invalid_parameters");
  });
});
