/**
 * Shadow mode at issuance (docs/shadow.md): a playbook in `mode: shadow` records a parameter schema
 * failure or a missing ticket instead of refusing; a runner class in `mode: shadow` records a grant
 * outside its ceiling. Everything else still refuses: grants that cannot be built, the environment's
 * ticket pattern, approvals, and an enforcing ceiling — with the shadow records alongside.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluateIntent, type IntentInputs, type IntentRequest } from "../../src/broker/intent.js";
import { loadConfigText } from "../../src/config/index.js";
import type { WritConfig } from "../../src/core/index.js";
import { ROOT } from "../support/cli.js";

const QUICKSTART = join(ROOT, "examples", "quickstart", "writ.yaml");
const WED_10 = new Date("2026-11-18T10:00:00Z");
const DEPLOY: IntentRequest = {
  agent: "release-bot",
  playbook: "deploy-service",
  params: { service: "checkout", tag: "v1.4.2" },
  environment: "prod",
  ticket: "CHG-1234",
  now: WED_10,
};

let playbookShadow: WritConfig;
let bothShadow: WritConfig;

async function load(edit: (t: string) => string): Promise<WritConfig> {
  const text = edit(await readFile(QUICKSTART, "utf8"));
  const r = await loadConfigText(text, { file: QUICKSTART });
  if (!r.config) throw new Error(r.problems.map((p) => p.message).join("; "));
  return r.config;
}

const shadowPlaybook = (t: string) =>
  t.replace("    ttl: 20m\n    maxUses: 10\n", "    ttl: 20m\n    maxUses: 10\n    mode: shadow\n");
const shadowDeploy = (t: string) =>
  t.replace("  deploy:\n    description:", "  deploy:\n    mode: shadow\n    description:");

beforeAll(async () => {
  playbookShadow = await load(shadowPlaybook);
  bothShadow = await load((t) => shadowDeploy(shadowPlaybook(t)));
  expect(playbookShadow.playbooks.get("deploy-service")!.mode).toBe("shadow");
  expect(bothShadow.runnerClasses.get("deploy")!.mode).toBe("shadow");
});

const inputs = (config: WritConfig, over: Partial<IntentInputs> = {}): IntentInputs => ({
  config,
  approval: "approved",
  keySignUntil: new Date(WED_10.getTime() + 30 * 86400_000),
  ...over,
});
const run = (config: () => WritConfig, req: Partial<IntentRequest>, over: Partial<IntentInputs> = {}) => {
  const o = evaluateIntent({ ...DEPLOY, ...req }, inputs(config(), over));
  return {
    kind: o.kind,
    reason: o.kind === "issue" ? undefined : o.reason,
    shadow: (o.shadow ?? []).map((s) => `${s.rule} ${s.kind} ${s.reason}`),
  };
};

describe("a playbook in shadow mode", () => {
  it("issues on parameters its schema refuses, and records it", () => {
    expect(run(() => playbookShadow, { params: { service: "checkout", tag: "latest" } })).toEqual({
      kind: "issue",
      reason: undefined,
      shadow: ["playbook:deploy-service playbook invalid_parameters"],
    });
  });

  it("issues without the ticket it requires, and records it; the environment's pattern still refuses", () => {
    expect(run(() => playbookShadow, { ticket: undefined })).toMatchObject({
      kind: "issue",
      shadow: ["playbook:deploy-service playbook ticket_required"],
    });
    expect(run(() => playbookShadow, { ticket: "nope" })).toMatchObject({
      kind: "refused",
      reason: "ticket_invalid",
    });
  });

  it("an enforcing ceiling still refuses what the parameters widen, the shadow record alongside", () => {
    expect(run(() => playbookShadow, { params: { service: "billing", tag: "v1.0.0" } })).toEqual({
      kind: "refused",
      reason: "grant_outside_ceiling",
      shadow: ["playbook:deploy-service playbook invalid_parameters"],
    });
  });

  it("grants that cannot be built from the parameters are refused", () => {
    expect(run(() => playbookShadow, { params: { tag: "v1.0.0" } })).toMatchObject({
      kind: "refused",
      reason: "invalid_parameters",
      shadow: ["playbook:deploy-service playbook invalid_parameters"],
    });
  });

  it("approvals still hold: a run that needs one is not issued without it", () => {
    expect(run(() => playbookShadow, { ticket: undefined }, { approval: undefined })).toMatchObject({
      kind: "needs-approval",
      shadow: ["playbook:deploy-service playbook ticket_required"],
    });
    expect(run(() => playbookShadow, {}, { approval: "denied" })).toMatchObject({
      kind: "refused",
      reason: "approval_denied",
    });
  });

  it("a valid request carries no records", () => {
    expect(run(() => playbookShadow, {})).toEqual({ kind: "issue", reason: undefined, shadow: [] });
    expect(evaluateIntent(DEPLOY, inputs(playbookShadow)).shadow).toBeUndefined();
  });
});

describe("a runner class in shadow mode", () => {
  it("issues a grant outside its ceiling, and records it", () => {
    const o = run(() => bothShadow, { params: { service: "billing", tag: "v1.0.0" } });
    expect(o.kind).toBe("issue");
    expect(o.shadow[0]).toBe("playbook:deploy-service playbook invalid_parameters");
    expect(o.shadow.slice(1).every((s) => s === "ceiling:deploy ceiling grant_outside_ceiling")).toBe(true);
    expect(o.shadow.length).toBeGreaterThan(1);
  });
});
