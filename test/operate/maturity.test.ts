/**
 * The maturity check on a fixture where `good` follows each practice and `bad` breaks each: every
 * answer is asserted, so a rule that scores wrongly fails here. Unknown answers are asserted where
 * writ.yaml or the store cannot say.
 */
import { describe, expect, it } from "vitest";
import {
  type AgentMaturity,
  type AuditEvidence,
  assessMaturity,
  maturityHtml,
  maturityText,
  PRACTICES,
  type Practice,
} from "../../src/operate/index.js";
import { emptyState, fixtureYaml, loadFixture } from "./fixture.js";

const AT = new Date("2026-12-01T12:00:00Z");
const VERIFIED: AuditEvidence = {
  kind: "verified",
  ok: true,
  records: 250,
  checkpoints: 2,
  lastCheckpointSeq: 200,
  unsigned: 50,
  keys: ["kid-1"],
};
const FINDING = {
  id: "wf-1",
  workload: "k8s:Deployment:shop/bot",
  agent: "bad",
  category: "unjustified-use",
  severity: "high",
  status: "open",
  title: "bad read secrets outside its declared work",
};

function statuses(a: AgentMaturity | undefined): Record<Practice, string> {
  if (!a) throw new Error("agent missing from the report");
  return Object.fromEntries(a.answers.map((x) => [x.practice, x.status])) as Record<Practice, string>;
}

async function report(over: Parameters<typeof emptyState>[1] = {}, audit: AuditEvidence = VERIFIED) {
  const { config, locate } = await loadFixture();
  const state = emptyState(AT, { scanRecorded: true, findings: [FINDING], ...over });
  return assessMaturity(config, state, audit, { now: AT, locate });
}

describe("maturity check", () => {
  it("passes every practice for the agent that follows them", async () => {
    const r = await report();
    const good = r.agents.find((a) => a.agent === "good");
    expect(statuses(good)).toEqual(Object.fromEntries(PRACTICES.map((p) => [p, "pass"])));
    expect(good?.score).toBe(100);
  });

  it("fails every practice the bad agent breaks, with evidence and a fix", async () => {
    const r = await report();
    const bad = r.agents.find((a) => a.agent === "bad");
    expect(statuses(bad)).toEqual({
      "own-identity": "fail",
      "read-only-baseline": "fail",
      "resource-scoped-grants": "fail",
      "sandbox-egress": "fail",
      "human-gate-irreversible": "fail",
      "untrusted-separated": "fail",
      "tamper-resistant-log": "pass",
      "short-lived-credentials": "fail",
      "no-open-category-2": "fail",
    });
    expect(bad?.score).toBe(11);
    for (const a of bad?.answers ?? []) if (a.status === "fail") expect(a.fix).toBeTruthy();
    const notes = (p: Practice) =>
      bad?.answers
        .find((a) => a.practice === p)
        ?.evidence.map((e) => e.note)
        .join("\n") ?? "";
    // each way of sharing an identity is named
    expect(notes("own-identity")).toMatch(/same public key as agent `twin`/);
    expect(notes("own-identity")).toMatch(/service account `shop\/bot` is also agent `twin`'s/);
    expect(notes("own-identity")).toMatch(/upstream `web2` acts for this agent and `twin`/);
    expect(notes("sandbox-egress")).toMatch(
      /`web2:post_comment` derives domains but `gateway.bounds.domains`/,
    );
    expect(notes("sandbox-egress")).not.toMatch(/web2:fetch/);
    expect(notes("human-gate-irreversible")).toMatch(/`web2:delete_page` is named as a destructive tool/);
    expect(notes("human-gate-irreversible")).toMatch(
      /playbook `purge` grants `k8s:core\/pods:delete` in dev/,
    );
    expect(notes("untrusted-separated")).toMatch(/`web2:post_comment` acts but is not `privileged`/);
    expect(notes("short-lived-credentials")).toMatch(/header `Authorization` \(from \$\{env:WEB2_TOKEN\}\)/);
    expect(notes("short-lived-credentials")).toMatch(/playbook `purge` writs live 4h/);
    expect(notes("short-lived-credentials")).not.toMatch(/Bearer/);
    expect(notes("resource-scoped-grants")).toMatch(/reviewed exception: cleanup/);
    // evidence cites writ.yaml's line of the standing write
    const text = fixtureYaml();
    const line = text.split("\n").findIndex((l) => l.includes('- action: "k8s:apps/deployments:patch"')) + 1;
    const ro = bad?.answers.find((a) => a.practice === "read-only-baseline");
    expect(ro?.evidence[0]?.source).toEqual({ file: "writ.yaml", line, path: "agents.bad.baseline[0]" });
  });

  it("answers unknown where writ.yaml or the store cannot say", async () => {
    const r = await report({ scanRecorded: false, findings: [] }, { kind: "not-checked", reason: "no key" });
    const quiet = statuses(r.agents.find((a) => a.agent === "quiet"));
    expect(quiet["sandbox-egress"]).toBe("unknown");
    expect(quiet["untrusted-separated"]).toBe("unknown");
    // it runs as a service account whose credentials writ does not issue
    expect(quiet["short-lived-credentials"]).toBe("unknown");
    expect(quiet["no-open-category-2"]).toBe("unknown");
    expect(quiet["tamper-resistant-log"]).toBe("unknown");
    expect(quiet["own-identity"]).toBe("pass");
    // a category-2 finding tied to no agent leaves every agent's answer open
    const untied = await report({ findings: [{ ...FINDING, agent: undefined }] });
    expect(statuses(untied.agents.find((a) => a.agent === "good"))["no-open-category-2"]).toBe("unknown");
    // a risk-accepted finding is not open
    const accepted = await report({ findings: [{ ...FINDING, status: "risk-accepted" }] });
    expect(statuses(accepted.agents.find((a) => a.agent === "bad"))["no-open-category-2"]).toBe("pass");
  });

  it("judges the audit log: damage, no checkpoint and a long unsigned tail fail", async () => {
    const log = async (audit: AuditEvidence) =>
      statuses((await report({}, audit)).agents.find((a) => a.agent === "good"))["tamper-resistant-log"];
    expect(await log(VERIFIED)).toBe("pass");
    expect(
      await log({ ...VERIFIED, ok: false, firstBad: { seq: 7, problem: "edited", message: "changed" } }),
    ).toBe("fail");
    expect(await log({ ...VERIFIED, checkpoints: 0, lastCheckpointSeq: undefined, unsigned: 250 })).toBe(
      "fail",
    );
    expect(await log({ ...VERIFIED, unsigned: 101 })).toBe("fail");
    expect(await log({ ...VERIFIED, records: 0, checkpoints: 0, unsigned: 0 })).toBe("unknown");
  });

  it("reads the gateway's pinned definitions and the store's live credentials", async () => {
    const destructive = await report({
      toolPins: [{ server: "files", tool: "read_text_file", annotations: { destructiveHint: true } }],
    });
    const good = destructive.agents.find((a) => a.agent === "good");
    expect(statuses(good)["human-gate-irreversible"]).toBe("fail");
    expect(good?.answers.find((a) => a.practice === "human-gate-irreversible")?.evidence[0]?.note).toMatch(
      /annotated destructiveHint: true/,
    );
    const openWorld = await report({
      toolPins: [{ server: "files", tool: "read_text_file", annotations: { openWorldHint: true } }],
    });
    expect(statuses(openWorld.agents.find((a) => a.agent === "good"))["untrusted-separated"]).toBe("fail");
    const longWrit = await report({
      liveWrits: [
        {
          id: "w-long",
          agent: "good",
          playbook: "deploy",
          environment: "dev",
          issuedAt: new Date(AT.getTime() - 60_000),
          expiresAt: new Date(AT.getTime() + 3 * 3600_000),
          maxUses: undefined,
          uses: 0,
        },
      ],
    });
    const sl = longWrit.agents
      .find((a) => a.agent === "good")
      ?.answers.find((a) => a.practice === "short-lived-credentials");
    expect(sl?.status).toBe("fail");
    expect(sl?.evidence[0]?.source).toEqual({ path: "writs/w-long" });
  });

  it("renders text and a self-contained HTML page with every value escaped", async () => {
    const r = await report();
    const html = maturityHtml(r);
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).not.toContain("<script>alert(1)</script>");
    expect(html).toContain("mallory &lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).not.toMatch(/<script|src=|href=/i);
    expect(html).toContain("default-src 'none'");
    const text = maturityText(r);
    expect(text).toMatch(/^bad \(mallory <script>alert\(1\)<\/script>\): 11%/m);
    expect(text).toMatch(/FAIL {2}read-only baseline/);
  });
});
